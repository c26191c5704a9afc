-- The fleet's views read every host.
DELETE FROM fleet_scope
