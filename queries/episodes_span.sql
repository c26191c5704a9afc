-- Episodes: where the next advance starts, the lowest frontier (NULL when nothing is kept yet
-- or a late line reopened everything: queries/episodes_first.sql then).
SELECT CASE WHEN isfinite(min(frontier)) THEN min(frontier) END AS lowest FROM episode_state;
