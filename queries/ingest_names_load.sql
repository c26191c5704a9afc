-- The ids of symbols, feature sets and file ids in `hit_rows`.
SELECT id, name FROM ingest_names;
