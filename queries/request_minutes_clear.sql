-- Empties `request_minutes` before a rebuild (in the rebuild's transaction).
DELETE FROM request_minutes;
