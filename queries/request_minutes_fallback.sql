-- A reader of a database whose `request_minutes` is missing or outdated (written before it,
-- and not opened by an ingester since): the figures computed from `events` at every query.
CREATE OR REPLACE TEMP VIEW request_minutes AS
SELECT * FROM request_minutes_of('-infinity'::TIMESTAMP, 'infinity'::TIMESTAMP);
