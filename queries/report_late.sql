-- Report: lines classified out of the log's order since the last rebuild.
SELECT late_events FROM classify_state
