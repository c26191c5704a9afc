-- Empties `evaluations_5m` before a rebuild (in the rebuild's transaction): dropped, and
-- created again by queries/schema.sql, like `request_minutes` (deleting from a primary key's
-- index costs memory per row).
DROP TABLE IF EXISTS evaluations_5m;
DELETE FROM evaluations_stage;
