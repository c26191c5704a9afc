-- Whether the database has the derived tables' record $1 (`derived_tables`, `derived_events`):
-- databases written before it do not.
SELECT count(*) AS n FROM duckdb_tables() WHERE table_name = $1 AND schema_name = 'main';
