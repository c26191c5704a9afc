-- A reader of a database whose `evaluations_5m` is missing or outdated (written before it,
-- and not opened by an ingester since): the evaluations computed from `request_minutes` at
-- every query.
CREATE OR REPLACE TEMP VIEW evaluations_5m AS
SELECT * FROM evaluations_5m_of('-infinity'::TIMESTAMP, 'infinity'::TIMESTAMP);
