package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
)

// Find and Cancel: a job looked up by the id its pusher gave it (Task::getId() in PHP), through
// the job id indexes of rr_jobs and rr_failed_jobs (migration 0009, 0010 on MySQL; on SQLite
// rr_jobs' holds the ids' last characters, migration 0017: see dialect.jobKey).
// Nothing makes a job id unique: a pusher may reuse one, so an id can match several jobs, and
// each is reported.

// findSQL reads the jobs of a queue with the listed ids from both tables in one statement, so a
// job failing meanwhile is seen in one place or the other, never in both or neither. `%[1]s` is
// the list of placeholders, `%[2]s` the condition on rr_jobs' ids (jobIDIn). Arguments: queue, the
// condition's, queue, ids. Columns: failed (0 or 1), row id,
// job_id, name, headers, attempts, available_at, due (1 if available_at has passed), reserved_by,
// delivered (0 or 1), error, failed_at.
const findSQL = `SELECT 0, id, job_id, name, headers, attempts, available_at,
		CASE WHEN available_at <= {now} THEN 1 ELSE 0 END, reserved_by,
		CASE WHEN delivered_at IS NULL THEN 0 ELSE 1 END, NULL, NULL
	FROM rr_jobs WHERE queue = ? AND %[2]s AND {live}
	UNION ALL
	SELECT 1, id, job_id, name, headers, attempts, NULL, 0, NULL, 0, error, failed_at
	FROM rr_failed_jobs WHERE queue = ? AND job_id IN (%[1]s)`

// cancelPickSQL locks the jobs of a queue with the listed ids, waiting and reserved: in id order on
// PostgreSQL, as acks do (InnoDB locks them as it reads the job id index; a deadlock with an ack
// there rolls the cancel back, and it runs again). A claim that took a row first has committed when the lock is
// granted, and the row reads reserved; a claim that comes later skips the locked row (SKIP
// LOCKED). Either way the claim wins or the cancel does, cleanly. `%[1]s` is the condition on the
// ids (jobIDIn), `%[2]s` the dialect's locking clause. Arguments: queue, the condition's.
const cancelPickSQL = `SELECT id, job_id, reserved_by FROM rr_jobs WHERE queue = ? AND %[1]s AND {live} ORDER BY id%[2]s`

// jobIDIn is the condition on rr_jobs' job ids for Find and Cancel, and its arguments. Where the
// job id index holds a key of the id (dialect.jobKey), the keys are matched too, for the index.
func (s *sqlStore) jobIDIn(ids []string) (string, []any) {
	in, args := "job_id IN ("+marks(len(ids))+")", anySlice(ids)
	if s.d.jobKey == nil {
		return in, args
	}
	keys := make([]string, len(ids))
	for i := range keys {
		keys[i] = s.d.jobKey("?")
	}
	return s.d.jobKey("job_id") + " IN (" + strings.Join(keys, ", ") + ") AND " + in, append(slices.Clone(args), args...)
}

// cancelDeleteSQL deletes the picked waiting rows. They are locked, so the condition on
// reserved_by changes nothing; it is there so that this statement can never delete a job at a
// worker. `%[1]s`: the placeholders of the row ids. Arguments: queue, row ids.
const cancelDeleteSQL = `DELETE FROM rr_jobs WHERE queue = ? AND reserved_by IS NULL AND id IN (%[1]s)`

// uniqueIDs is ids without repeats, in the order of their first appearance.
func uniqueIDs(ids []string) []string {
	seen := make(map[string]bool, len(ids))
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// inIDOrder sorts entries by the position of their job id in ids, keeping the order within an id.
func inIDOrder[T any](entries []T, ids []string, jobID func(T) string) {
	pos := make(map[string]int, len(ids))
	for i, id := range ids {
		pos[id] = i
	}
	slices.SortStableFunc(entries, func(a, b T) int { return cmp.Compare(pos[jobID(a)], pos[jobID(b)]) })
}

func (s *sqlStore) Find(ctx context.Context, queue string, jobIDs []string) ([]FoundJob, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	ids := uniqueIDs(jobIDs)
	var out []FoundJob
	for chunk := range slices.Chunk(ids, fencesPerStatement) {
		found, err := s.find(ctx, queue, chunk)
		if err != nil {
			return nil, fmt.Errorf("find jobs of queue %s: %w", queue, err)
		}
		out = append(out, found...)
	}
	inIDOrder(out, ids, func(f FoundJob) string { return f.JobID })
	return out, nil
}

// foundRow is a FoundJob with where it was read, for the order of one id's jobs.
type foundRow struct {
	FoundJob
	failed bool
	row    int64
}

func (s *sqlStore) find(ctx context.Context, queue string, ids []string) ([]FoundJob, error) {
	query, args := s.findQuery(queue, ids)
	rows, err := s.query(ctx, s.r, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var found []foundRow
	for rows.Next() {
		var (
			f                      foundRow
			failed, due, delivered int64
			headers                []byte
			available, failedAt    sql.NullInt64
			node, reason           sql.NullString
		)
		if err := rows.Scan(&failed, &f.row, &f.JobID, &f.Name, &headers, &f.Attempts, &available, &due, &node, &delivered, &reason, &failedAt); err != nil {
			return nil, err
		}
		if f.Headers, err = decodeHeaders(headers); err != nil {
			f.Headers = map[string][]string{} // a job with malformed headers is still found
		}
		f.failed = failed == 1
		switch {
		case f.failed:
			f.State, f.Error, f.FailedAt, f.FailedID = StateFailed, reason.String, failedAt.Int64, f.row
		case node.Valid:
			f.State, f.Node, f.Delivered, f.AvailableAt = StateReserved, node.String, delivered == 1, available.Int64
			if f.Delivered {
				f.Attempts++ // the delivery in progress (the column counts those that ended)
			}
		case due == 1:
			f.State, f.AvailableAt = StateReady, available.Int64
		default:
			f.State, f.AvailableAt = StateDelayed, available.Int64
		}
		found = append(found, f)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// One id's jobs: those queued in the order they were pushed, then the failed ones.
	slices.SortFunc(found, func(a, b foundRow) int {
		return cmp.Or(cmp.Compare(a.JobID, b.JobID), cmpBool(a.failed, b.failed), cmp.Compare(a.row, b.row))
	})
	out := make([]FoundJob, len(found))
	for i, f := range found {
		out[i] = f.FoundJob
	}
	return out, nil
}

// findQuery is findSQL for ids, with its arguments.
func (s *sqlStore) findQuery(queue string, ids []string) (string, []any) {
	cond, condArgs := s.jobIDIn(ids)
	return fmt.Sprintf(findSQL, marks(len(ids)), cond), append(append(append([]any{queue}, condArgs...), queue), anySlice(ids)...)
}

// cancelPickQuery is cancelPickSQL for ids, with its arguments.
func (s *sqlStore) cancelPickQuery(queue string, ids []string) (string, []any) {
	cond, condArgs := s.jobIDIn(ids)
	return fmt.Sprintf(cancelPickSQL, cond, s.d.forUpdate), append([]any{queue}, condArgs...)
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	default:
		return 1
	}
}

func (s *sqlStore) Cancel(ctx context.Context, queue string, jobIDs []string) ([]CancelledJob, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	ids := uniqueIDs(jobIDs)
	var out []CancelledJob
	for chunk := range slices.Chunk(ids, fencesPerStatement) {
		var done []CancelledJob
		err := retryConflicts(ctx, func() (err error) { // a deadlock with an ack or a reap rolls the whole chunk back
			done, err = s.cancel(ctx, queue, chunk)
			return err
		})
		if err != nil {
			return out, fmt.Errorf("cancel jobs of queue %s (%d cancelled before): %w", queue, countCancelled(out), err)
		}
		out = append(out, done...)
	}
	inIDOrder(out, ids, func(c CancelledJob) string { return c.JobID })
	return out, nil
}

func countCancelled(jobs []CancelledJob) int {
	n := 0
	for _, j := range jobs {
		if j.Cancelled {
			n++
		}
	}
	return n
}

// cancel locks the chunk's jobs, then deletes the waiting ones, in one transaction: what it
// reports reserved is held by its node until the commit at least, and what it reports cancelled
// is deleted.
func (s *sqlStore) cancel(ctx context.Context, queue string, ids []string) ([]CancelledJob, error) {
	tx, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = tx.Rollback() }()
	pick, pickArgs := s.cancelPickQuery(queue, ids)
	rows, err := s.query(ctx, tx, pick, pickArgs...)
	if err != nil {
		return nil, err
	}
	var (
		out     []CancelledJob
		waiting []int64
	)
	for rows.Next() {
		var (
			row  int64
			c    CancelledJob
			node sql.NullString
		)
		if err := rows.Scan(&row, &c.JobID, &node); err != nil {
			rows.Close()
			return nil, err
		}
		c.Cancelled, c.Node = !node.Valid, node.String
		if c.Cancelled {
			waiting = append(waiting, row)
		}
		out = append(out, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(waiting) > 0 {
		res, err := s.exec(ctx, tx, fmt.Sprintf(cancelDeleteSQL, marks(len(waiting))), append([]any{queue}, anySlice(waiting)...)...)
		if err != nil {
			return nil, err
		}
		if n, _ := res.RowsAffected(); n != int64(len(waiting)) {
			// The rows are locked: nothing can have changed them. Report nothing rather than a lie.
			return nil, fmt.Errorf("deleted %d of the %d waiting jobs locked", n, len(waiting))
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	return out, nil
}

// ExplainFind returns the database's plans of Find's read and of Cancel's lock and delete (the
// latter run, where the explain runs the statement, in a transaction rolled back), one line per
// plan row. The tests assert that they read the job id indexes.
func (s *sqlStore) ExplainFind(ctx context.Context, queue string, ids []string) (find, pick, del string, err error) {
	tx, err := s.begin(ctx)
	if err != nil {
		return "", "", "", err
	}
	defer func() { _ = tx.Rollback() }()
	explain := func(query string, args ...any) (string, error) {
		rows, err := s.query(ctx, tx, s.d.explain+query, args...)
		if err != nil {
			return "", err
		}
		return planText(rows)
	}
	findQuery, findArgs := s.findQuery(queue, ids)
	if find, err = explain(findQuery, findArgs...); err != nil {
		return "", "", "", fmt.Errorf("explain find: %w", err)
	}
	pickQuery, pickArgs := s.cancelPickQuery(queue, ids)
	if pick, err = explain(pickQuery, pickArgs...); err != nil {
		return "", "", "", fmt.Errorf("explain cancel: %w", err)
	}
	rowIDs := []any{int64(1), int64(2), int64(3)}
	if del, err = explain(fmt.Sprintf(cancelDeleteSQL, marks(len(rowIDs))), append([]any{queue}, rowIDs...)...); err != nil {
		return "", "", "", fmt.Errorf("explain cancel's delete: %w", err)
	}
	return find, pick, del, nil
}
