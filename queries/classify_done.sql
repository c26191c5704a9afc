-- After a transaction's last step: its staged rows are all classified.
DELETE FROM classify_batch;
RESET VARIABLE classify_staged_until;
