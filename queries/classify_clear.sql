-- Empties the classification before it is rebuilt from `events`.
DELETE FROM miss_causes;
DELETE FROM classify_carry;
DELETE FROM classify_batch;
DELETE FROM classify_state;
