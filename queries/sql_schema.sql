-- `cachescope sql --schema`: the tables and views a user can query, with their columns.
SELECT table_name AS name, table_type AS kind,
       string_agg(column_name || ' ' || data_type, ', ' ORDER BY ordinal_position) AS columns
FROM information_schema.columns
JOIN information_schema.tables USING (table_catalog, table_schema, table_name)
WHERE table_schema = 'main'
GROUP BY ALL
ORDER BY kind, name
