-- Records that a derived table is built ($1 name, $2 version, $3 when).
INSERT OR REPLACE INTO derived_tables (name, version, built_at) VALUES ($1, $2, $3);
