-- The version each derived table was built with.
SELECT name, version FROM derived_tables;
