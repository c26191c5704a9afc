-- Whether the database has the `derived_tables` record (databases written before it do not).
SELECT count(*) AS n FROM duckdb_tables() WHERE table_name = 'derived_tables' AND schema_name = 'main';
