package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// A queue's counts come from rr_job_counts, which the triggers of migration 0006 keep in step with
// every write to rr_jobs and rr_failed_jobs, in the writing statement: reading them costs the
// same with ten jobs queued or a million, and no crash can leave them behind the rows. Ready and
// delayed are told apart by bucket (see the migration): a delayed job counts as ready from the
// first whole second at or after its due time.

// Counts reports a queue's jobs by state.
func (s *sqlStore) Counts(ctx context.Context, queue string) (Counts, error) {
	if err := s.check(); err != nil {
		return Counts{}, err
	}
	c, _, err := s.readCounts(ctx, queue)
	return c, err
}

// readCounts sums the queue's count rows: its jobs by state and its failed jobs.
func (s *sqlStore) readCounts(ctx context.Context, queue string) (c Counts, failed int64, err error) {
	err = s.queryRow(ctx, s.r, `SELECT
			COALESCE(SUM(CASE WHEN bucket * 1000 <= {now} THEN waiting ELSE 0 END), 0),
			COALESCE(SUM(CASE WHEN bucket * 1000 > {now} THEN waiting ELSE 0 END), 0),
			COALESCE(SUM(reserved), 0), COALESCE(SUM(failed), 0)
		FROM rr_job_counts WHERE queue = ?`, queue).Scan(&c.Ready, &c.Delayed, &c.Reserved, &failed)
	if err != nil {
		return c, 0, fmt.Errorf("count jobs of queue %s: %w", queue, err)
	}
	return c, failed, nil
}

func (s *sqlStore) Stats(ctx context.Context, queue string) (QueueStats, error) {
	var st QueueStats
	if err := s.check(); err != nil {
		return st, err
	}
	var err error
	if st.Counts, st.Failed, err = s.readCounts(ctx, queue); err != nil {
		return st, err
	}
	if st.Ready == 0 {
		return st, nil
	}
	age, err := s.oldestReady(ctx, queue)
	if err != nil {
		return st, fmt.Errorf("oldest ready job of queue %s: %w", queue, err)
	}
	st.OldestReady = age
	return st, nil
}

// oldestReady is the age of the queue's oldest ready job: the first due entry of one of the
// priorities in use, each found by a probe of the claim index that starts where the previous
// priority ended (a loose index scan done by hand: MySQL and MariaDB walk every entry for a
// correlated "priority > p", and nothing else depends on the backlog). Past maxPriorityProbes
// priorities the answer is the oldest among them.
func (s *sqlStore) oldestReady(ctx context.Context, queue string) (time.Duration, error) {
	const maxPriorityProbes = 64
	var (
		now    int64
		oldest *int64
		prio   *int64
	)
	if err := s.queryRow(ctx, s.r, `SELECT {now}`).Scan(&now); err != nil {
		return 0, err
	}
	for range maxPriorityProbes {
		var next int64
		var err error
		if prio == nil {
			err = s.queryRow(ctx, s.r, `SELECT priority FROM rr_jobs WHERE queue = ? AND reserved_by IS NULL
				ORDER BY priority LIMIT 1`, queue).Scan(&next)
		} else {
			err = s.queryRow(ctx, s.r, `SELECT priority FROM rr_jobs WHERE queue = ? AND reserved_by IS NULL AND priority > ?
				ORDER BY priority LIMIT 1`, queue, *prio).Scan(&next)
		}
		if errors.Is(err, sql.ErrNoRows) {
			break
		}
		if err != nil {
			return 0, err
		}
		prio = &next
		var due int64
		err = s.queryRow(ctx, s.r, `SELECT available_at FROM rr_jobs WHERE queue = ? AND reserved_by IS NULL AND priority = ? AND available_at <= ?
			ORDER BY available_at LIMIT 1`, queue, next, now).Scan(&due)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return 0, err
		case oldest == nil || due < *oldest:
			oldest = &due
		}
	}
	if oldest == nil {
		return 0, nil
	}
	return time.Duration(now-*oldest) * time.Millisecond, nil
}

// FoldCounts moves the counts of the buckets whose second has passed into bucket 0 (their jobs
// are ready either way), so that a count reads a few rows per queue however the delays spread.
// Sums are unchanged: a later decrement of a folded bucket's job writes a negative row that the
// next fold folds again. Returns the rows folded.
func (s *sqlStore) FoldCounts(ctx context.Context) (int64, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	var now int64
	if err := s.queryRow(ctx, s.w, `SELECT {now}`).Scan(&now); err != nil {
		return 0, fmt.Errorf("fold counts: %w", err)
	}
	cut := now/1000 - 1 // buckets before the current second
	rows, err := s.query(ctx, s.w, `SELECT DISTINCT queue FROM rr_job_counts WHERE bucket > 0 AND bucket <= ?`, cut)
	if err != nil {
		return 0, fmt.Errorf("fold counts: %w", err)
	}
	var queues []string
	for rows.Next() {
		var q string
		if err := rows.Scan(&q); err != nil {
			rows.Close()
			return 0, fmt.Errorf("fold counts: %w", err)
		}
		queues = append(queues, q)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("fold counts: %w", err)
	}
	var folded int64
	for _, q := range queues {
		var n int64
		err := retryConflicts(ctx, func() (err error) {
			n, err = s.foldQueue(ctx, q, cut)
			return err
		})
		if err != nil {
			return folded, fmt.Errorf("fold counts of queue %s: %w", q, err)
		}
		folded += n
	}
	return folded, nil
}

type countKey struct{ bucket, stripe int64 }

// foldQueue folds one queue's past buckets in one transaction. It locks the queue's bucket 0 rows
// before the others, the order in which the triggers lock them (keys ascending), and deletes
// exactly the rows it summed, each locked since it was read.
func (s *sqlStore) foldQueue(ctx context.Context, queue string, cut int64) (int64, error) {
	tx, err := s.begin(ctx)
	if err != nil {
		return 0, err
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := s.exec(ctx, tx, `SELECT stripe FROM rr_job_counts WHERE queue = ? AND bucket = 0 ORDER BY stripe`+s.d.forUpdate, queue); err != nil {
		return 0, err
	}
	rows, err := s.query(ctx, tx, `SELECT bucket, stripe, waiting, reserved FROM rr_job_counts
		WHERE queue = ? AND bucket > 0 AND bucket <= ? ORDER BY bucket, stripe`+s.d.forUpdate, queue, cut)
	if err != nil {
		return 0, err
	}
	type sums struct{ waiting, reserved int64 }
	byStripe := map[int64]sums{}
	var keys []countKey
	for rows.Next() {
		var (
			k    countKey
			w, r int64
		)
		if err := rows.Scan(&k.bucket, &k.stripe, &w, &r); err != nil {
			rows.Close()
			return 0, err
		}
		keys = append(keys, k)
		t := byStripe[k.stripe]
		byStripe[k.stripe] = sums{t.waiting + w, t.reserved + r}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	for stripe, t := range byStripe {
		if err := s.addToBucketZero(ctx, tx, queue, stripe, t.waiting, t.reserved); err != nil {
			return 0, err
		}
	}
	for _, k := range keys {
		if _, err := s.exec(ctx, tx, `DELETE FROM rr_job_counts WHERE queue = ? AND bucket = ? AND stripe = ?`, queue, k.bucket, k.stripe); err != nil {
			return 0, err
		}
	}
	return int64(len(keys)), tx.Commit()
}

func (s *sqlStore) addToBucketZero(ctx context.Context, tx *sql.Tx, queue string, stripe, waiting, reserved int64) error {
	res, err := s.exec(ctx, tx, `UPDATE rr_job_counts SET waiting = waiting + ?, reserved = reserved + ?
		WHERE queue = ? AND bucket = 0 AND stripe = ?`, waiting, reserved, queue, stripe)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nil
	}
	_, err = s.exec(ctx, tx, `INSERT INTO rr_job_counts (queue, bucket, stripe, waiting, reserved) VALUES (?, 0, ?, ?, ?)`,
		queue, stripe, waiting, reserved)
	return err
}
