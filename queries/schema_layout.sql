-- Whether `events` is still a table (a database written before `hit_rows` existed).
SELECT count(*) FROM duckdb_tables()
WHERE database_name = current_database() AND schema_name = 'main' AND table_name = 'events';
