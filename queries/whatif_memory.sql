-- What-if sorts every request of the period into time order: its DuckDB memory is capped
-- (beyond it DuckDB spills to disk) so that sizing a month does not take the trading host's
-- memory (the runbook's cause 4).
SET memory_limit = '512MB';
