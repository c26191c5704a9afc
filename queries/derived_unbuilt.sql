-- Records that no derived table is built (a rebuild has begun).
DELETE FROM derived_tables;
