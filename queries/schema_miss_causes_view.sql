-- Whether `miss_causes` is still the view of earlier versions (a table now).
SELECT count(*) AS n FROM duckdb_views() WHERE view_name = 'miss_causes' AND NOT temporary AND database_name = current_database()
