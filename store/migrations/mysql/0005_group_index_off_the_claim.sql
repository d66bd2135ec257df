-- rr_jobs_group without reserved_by: MySQL has no partial index, so every row is in it, those of
-- pipelines without group_by too; with reserved_by in the key, every claim and release of any
-- pipeline moved its entry (the plain MariaDB drain lost 4-14 %). Now a claim leaves it alone,
-- and the group claim skips a group's reserved head rows (the jobs in flight) by primary key.
ALTER TABLE rr_jobs DROP KEY rr_jobs_group, ADD KEY rr_jobs_group (queue, grp, priority, available_at, id);
