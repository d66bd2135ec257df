-- A delivery is counted when the job reaches a worker, not when it is claimed, and a requeue the
-- worker asks for is not a failure. `attempts` counts deliveries; `failures` counts those that
-- ended without an answer (what max_attempts caps); `delivered_at` marks a claim that reached a
-- worker, so that the claim of a node that dies counts as a delivery without an answer.
ALTER TABLE rr_jobs ADD COLUMN failures INTEGER NOT NULL DEFAULT 0, ADD COLUMN delivered_at BIGINT;
-- Until now every claim counted against max_attempts: keep those counts.
UPDATE rr_jobs SET failures = attempts;
