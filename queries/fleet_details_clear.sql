-- Empties the fleet's misses and episodes before loading another period's.
DELETE FROM fleet_misses;
DELETE FROM fleet_episodes;
