package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// A queue's counts come from rr_counts, which the triggers of migrations 0006 and 0007 keep in
// step with every insert, delete, requeue and move of rr_jobs and rr_failed_jobs, in the writing
// statement: reading them costs the same with ten jobs queued or a million, and no crash can leave
// them behind the rows. Ready and delayed are told apart by bucket (see 0006): a delayed job counts
// as ready from the first whole second at or after its due time. A claim writes no count: the
// reserved jobs, counted in their buckets with the waiting ones, are read from the reserved rows
// themselves (an index range as long as the jobs in flight) in the same statement.

// Counts reports a queue's jobs by state.
func (s *sqlStore) Counts(ctx context.Context, queue string) (Counts, error) {
	if err := s.check(); err != nil {
		return Counts{}, err
	}
	c, _, err := s.readCounts(ctx, queue)
	return c, err
}

// readCounts sums the queue's count rows (its jobs by bucket, and its failed jobs) and counts its
// reserved jobs, in one statement: one snapshot. A reserved job sits in the bucket it was claimed
// from: a future one (bucket * 1000 > now) when it was due less than a whole second ago, that is
// due after the current second began and later than it was queued.
func (s *sqlStore) readCounts(ctx context.Context, queue string) (c Counts, failed int64, err error) {
	var ready, future, reserved, reservedFuture int64
	err = s.queryRow(ctx, s.r, `SELECT counted.ready, counted.future, counted.failed, held.reserved, held.future FROM
		(SELECT COALESCE(SUM(CASE WHEN bucket * 1000 <= {now} THEN queued ELSE 0 END), 0) AS ready,
				COALESCE(SUM(CASE WHEN bucket * 1000 > {now} THEN queued ELSE 0 END), 0) AS future,
				COALESCE(SUM(failed), 0) AS failed
			FROM rr_counts WHERE queue = ?) counted,
		(SELECT COUNT(*) AS reserved,
				COALESCE(SUM(CASE WHEN available_at > {now} - {now} % 1000 AND available_at > COALESCE(queued_at, created_at) THEN 1 ELSE 0 END), 0) AS future
			FROM rr_jobs WHERE queue = ? AND {held}) held`, queue, queue).
		Scan(&ready, &future, &failed, &reserved, &reservedFuture)
	if err != nil {
		return c, 0, fmt.Errorf("count jobs of queue %s: %w", queue, err)
	}
	return Counts{Ready: ready - (reserved - reservedFuture), Delayed: future - reservedFuture, Reserved: reserved}, failed, nil
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
	queues, err := queryColumn[string](ctx, s, s.w, `SELECT DISTINCT queue FROM rr_counts WHERE bucket > 0 AND bucket <= ?`, cut)
	if err != nil {
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
	if _, err := s.exec(ctx, tx, `SELECT stripe FROM rr_counts WHERE queue = ? AND bucket = 0 ORDER BY stripe`+s.d.forUpdate, queue); err != nil {
		return 0, err
	}
	rows, err := s.query(ctx, tx, `SELECT bucket, stripe, queued FROM rr_counts
		WHERE queue = ? AND bucket > 0 AND bucket <= ? ORDER BY bucket, stripe`+s.d.forUpdate, queue, cut)
	if err != nil {
		return 0, err
	}
	byStripe := map[int64]int64{}
	var keys []countKey
	for rows.Next() {
		var (
			k      countKey
			queued int64
		)
		if err := rows.Scan(&k.bucket, &k.stripe, &queued); err != nil {
			rows.Close()
			return 0, err
		}
		keys = append(keys, k)
		byStripe[k.stripe] += queued
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	for stripe, queued := range byStripe {
		if err := s.addToBucketZero(ctx, tx, queue, stripe, queued); err != nil {
			return 0, err
		}
	}
	for _, k := range keys {
		if _, err := s.exec(ctx, tx, `DELETE FROM rr_counts WHERE queue = ? AND bucket = ? AND stripe = ?`, queue, k.bucket, k.stripe); err != nil {
			return 0, err
		}
	}
	return int64(len(keys)), tx.Commit()
}

func (s *sqlStore) addToBucketZero(ctx context.Context, tx *sql.Tx, queue string, stripe, queued int64) error {
	res, err := s.exec(ctx, tx, `UPDATE rr_counts SET queued = queued + ?
		WHERE queue = ? AND bucket = 0 AND stripe = ?`, queued, queue, stripe)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nil
	}
	_, err = s.exec(ctx, tx, `INSERT INTO rr_counts (queue, bucket, stripe, queued) VALUES (?, 0, ?, ?)`,
		queue, stripe, queued)
	return err
}
