-- Whether the database has the classification's state (written by this version's ingester).
SELECT count(*) AS n FROM duckdb_tables() WHERE table_name = 'classify_state' AND database_name = current_database()
