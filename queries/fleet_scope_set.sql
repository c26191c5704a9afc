-- The fleet's views read one host (after fleet_scope_clear.sql).
INSERT INTO fleet_scope VALUES (CAST($1 AS VARCHAR))
