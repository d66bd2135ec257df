-- rr_jobs_reserved holds the jobs held by a node, not the rows acks marked (reserved_by = ''):
-- a mark then takes the row's entry out of this index instead of moving it to a key of its own,
-- and the sweep has one index entry fewer to delete per row. Every statement that reads held
-- rows says `reserved_by > ''` on SQLite, which is this index's condition.
DROP INDEX rr_jobs_reserved;
CREATE INDEX rr_jobs_reserved ON rr_jobs (queue, reserved_by) WHERE reserved_by > '';
