-- Stages a minute a commit added to (its evaluations are recomputed by evaluations_update.sql).
INSERT INTO evaluations_stage VALUES ($1);
