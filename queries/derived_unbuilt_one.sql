-- Records that one derived table ($1) is not built (a rebuild of it alone has begun).
DELETE FROM derived_tables WHERE name = $1;
