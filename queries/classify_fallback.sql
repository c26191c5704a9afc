-- A reader of a database whose `miss_causes` table is missing or outdated (written before
-- it, and not opened by an ingester since): the causes classified from `events` at every query.
CREATE OR REPLACE TEMP VIEW miss_causes AS SELECT * FROM miss_causes_full;
