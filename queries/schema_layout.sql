-- Whether `events` is still a table (a database written before `hit_rows` existed).
SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'main' AND table_name = 'events';
