-- Empties the kept episodes before they are rebuilt from `events`.
DELETE FROM episode_clusters;
DELETE FROM episode_state;
