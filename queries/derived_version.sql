-- The version a derived table was built with ($1: its name).
SELECT version FROM derived_tables WHERE name = $1;
