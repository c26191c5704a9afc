-- Views of earlier versions that are gone: the classification's and the episodes' steps,
-- and `miss_causes`, now a table (dropped by src/ingest/setup.rs when it is still a view).
DROP VIEW IF EXISTS episode_misses;
DROP VIEW IF EXISTS episode_signals;
DROP VIEW IF EXISTS invalidation_followers;
DROP VIEW IF EXISTS signal_events;
