-- An attempt's lease: when its process last said it was alive. A running process renews it every
-- few seconds; a running attempt whose heartbeat is older than the lease is dead, on whatever host
-- it ran (a pid says so only on its own host). NULL for attempts from before this migration.
ALTER TABLE attempts ADD COLUMN heartbeat_at TEXT;
