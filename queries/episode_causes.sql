-- episode_causes: which kind of episode explains a miss of each cause. Filled from
-- `vocab::Cause::episode_kind` (the mapping is written once, in Rust) whenever the views are
-- installed, by `queries::install_views`.
CREATE OR REPLACE TABLE episode_causes (
    cause VARCHAR PRIMARY KEY,
    kind  VARCHAR NOT NULL
);
