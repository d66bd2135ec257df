package store

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Operations beyond the job's own path: what the `sql` RPC service offers operators.

// Group selects the jobs whose header Name has Value as its first value. The zero Group selects all.
type Group struct {
	Header string
	Value  string
}

// HeaderName is what a header name used for grouping may look like: it reaches SQL only as a
// bound JSON path, and this keeps the path's quoting trivial.
var HeaderName = regexp.MustCompile(`^[A-Za-z0-9_.\-]{1,128}$`)

// QueueStats are a queue's counts plus what an operator watches.
type QueueStats struct {
	Counts
	Failed int64
	// OldestReady is the age of the oldest job ready to run (0 when none): how far behind workers are.
	OldestReady time.Duration
}

// GroupCount is the number of jobs per state for one header value.
type GroupCount struct {
	Value string
	Counts
	// OverflowTo is the queue the group's jobs and pushes go to while it overflows ("" if not).
	OverflowTo string
}

// FailedJob is a row of the failed jobs.
type FailedJob struct {
	ID       int64
	JobID    string
	Queue    string
	Name     string
	Payload  []byte
	Headers  map[string][]string
	Attempts int64
	Error    string
	FailedAt time.Time
}

// Selection picks failed jobs: the listed ids, or every one of the queue when All is set.
type Selection struct {
	Queue string
	IDs   []int64
	All   bool
}

// Ops is implemented by every store.
type Ops interface {
	Stats(ctx context.Context, queue string) (QueueStats, error)
	// CountByHeader counts a page of a queue's jobs per first value of a header: up to limit values
	// after the value after ("" starts with the first), in value order. It reads the whole queue.
	CountByHeader(ctx context.Context, queue, header, after string, limit int) ([]GroupCount, error)
	// CountGroups counts a page of a group_by queue's jobs per group (the stored column) with their
	// overflow, as CountByHeader pages, reading only the page's groups through the indexes.
	CountGroups(ctx context.Context, queue, after string, limit int) ([]GroupCount, error)
	Flush(ctx context.Context, queue string, g Group) (int64, error)
	// Move re-routes waiting jobs; regroup names the target's group_by header ("" when it has
	// none), whose first value becomes each moved job's group.
	Move(ctx context.Context, from, to string, priority *int64, g Group, regroup string) (int64, error)
	ListFailed(ctx context.Context, queue string, afterID int64, limit int) ([]FailedJob, error)
	// RetryFailed puts the selected failed jobs back to ready, their deliveries counted afresh.
	RetryFailed(ctx context.Context, sel Selection) (int64, error)
	DeleteFailed(ctx context.Context, sel Selection) (int64, error)
	// PruneFailed deletes the failed jobs older than retention, batch rows per statement.
	PruneFailed(ctx context.Context, retention time.Duration, batch int) (int64, error)
	// Find reports the jobs of a queue whose pusher's ids are listed, waiting, reserved or failed,
	// in the order of the ids (an id listed twice counts once), the jobs of one id in the order
	// they were pushed and its failed ones after. An id that matches nothing has no entry. It
	// reads in one statement per 1,000 ids, and locks nothing.
	Find(ctx context.Context, queue string, jobIDs []string) ([]FoundJob, error)
	// Cancel deletes the waiting (ready or delayed) jobs of a queue whose pusher's ids are listed
	// and reports those a node holds, which are left to finish at their worker. Failed jobs are
	// left alone (DeleteFailed deletes them). Entries come in Find's order; an id that matches no
	// waiting or reserved job has none.
	Cancel(ctx context.Context, queue string, jobIDs []string) ([]CancelledJob, error)
}

// Where a job is, as Find reports it.
const (
	StateReady    = "ready"    // waiting, due
	StateDelayed  = "delayed"  // waiting, due later
	StateReserved = "reserved" // claimed by a node
	StateFailed   = "failed"   // in the failed jobs
)

// FoundJob is one job Find found.
type FoundJob struct {
	JobID string
	// State is StateReady, StateDelayed, StateReserved or StateFailed; ready and delayed by the
	// database's clock.
	State   string
	Name    string
	Headers map[string][]string
	// Attempts is how many times the job reached a worker: the delivery in progress included for a
	// reserved job that reached its worker, the last one included for a failed job.
	Attempts int64
	// AvailableAt is when a waiting or reserved job is or was due (unix milliseconds, the
	// database's clock); 0 for a failed job.
	AvailableAt int64
	// Node holds a reserved job; Delivered: the job reached a worker of that node (not only its
	// prefetch).
	Node      string
	Delivered bool
	// Error, FailedAt (unix milliseconds) and FailedID (the id RetryFailed and DeleteFailed take)
	// describe a failed job.
	Error    string
	FailedAt int64
	FailedID int64
}

// CancelledJob is one job Cancel found: deleted (Cancelled), or held by Node and left to finish.
type CancelledJob struct {
	JobID     string
	Cancelled bool
	Node      string
}

var _ Ops = (*sqlStore)(nil)

// headerExpr is the SQL expression of the first value of a header whose JSON path is bound.
func (s *sqlStore) headerExpr() string {
	switch s.d.name {
	case "postgres":
		return `(headers::jsonb #>> ?::text[])`
	case "mysql":
		return `JSON_UNQUOTE(JSON_EXTRACT(headers, ?))`
	default:
		return `json_extract(headers, ?)`
	}
}

// headerPath is the bound argument of headerExpr for a header's first value.
func (s *sqlStore) headerPath(header string) any {
	if s.d.name == "postgres" {
		return "{" + header + ",0}"
	}
	return `$."` + header + `"[0]`
}

// groupFilter is the extra WHERE clause and arguments of a Group.
func (s *sqlStore) groupFilter(g Group) (string, []any, error) {
	if g.Header == "" {
		return "", nil, nil
	}
	if !HeaderName.MatchString(g.Header) {
		return "", nil, fmt.Errorf("header name %q: use 1-128 letters, digits, '_', '-' or '.'", g.Header)
	}
	return " AND " + s.headerExpr() + " = ?", []any{s.headerPath(g.Header), g.Value}, nil
}

// opBatch is how many rows one statement of Flush or Move writes: each batch is its own short
// transaction, so that pushes and claims run between batches instead of waiting seconds behind
// one statement over a million rows (SQLite's single writer, PostgreSQL's and InnoDB's row locks).
const opBatch = 1000

func (s *sqlStore) Flush(ctx context.Context, queue string, g Group) (int64, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	n, err := s.inBatches(ctx, queue, g, func(ids []int64) (sql.Result, error) {
		return s.exec(ctx, s.w, `DELETE FROM rr_jobs WHERE queue = ? AND reserved_by IS NULL AND id IN (`+marks(len(ids))+`)`,
			append([]any{queue}, anySlice(ids)...)...)
	})
	if err != nil {
		return n, fmt.Errorf("flush queue %s (%d jobs deleted): %w", queue, n, err)
	}
	return n, nil
}

func (s *sqlStore) Move(ctx context.Context, from, to string, priority *int64, g Group, regroup string) (int64, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	if from == to {
		return 0, fmt.Errorf("move jobs from %s to itself: name another queue", from)
	}
	set, lead := "queue = ?", []any{to}
	if priority != nil {
		set, lead = set+", priority = ?", append(lead, *priority)
	}
	if regroup != "" {
		if !HeaderName.MatchString(regroup) {
			return 0, fmt.Errorf("header name %q: use 1-128 letters, digits, '_', '-' or '.'", regroup)
		}
		set, lead = set+", grp = COALESCE("+s.headerExpr()+", '')", append(lead, s.headerPath(regroup))
	}
	n, err := s.inBatches(ctx, from, g, func(ids []int64) (res sql.Result, err error) {
		args := append(append(slices.Clone(lead), from), anySlice(ids)...)
		err = s.retryKeyRaces(ctx, func() error {
			if err := s.dropTakenKeys(ctx, s.w, ids, to); err != nil {
				return err
			}
			res, err = s.exec(ctx, s.w, `UPDATE rr_jobs SET `+set+` WHERE queue = ? AND reserved_by IS NULL AND id IN (`+marks(len(ids))+`)`, args...)
			return err
		})
		return res, err
	})
	if err != nil {
		return n, fmt.Errorf("move jobs from %s to %s (%d moved): %w", from, to, n, err)
	}
	return n, nil
}

// inBatches applies write to the waiting jobs of a queue (of one group when g is set), opBatch
// ids at a time in id order, up to the last id when it began (jobs pushed meanwhile stay: a flush
// under a steady stream of pushes ends). Each pick starts after the previous one's last id along
// the primary key, so it never walks again over what earlier batches deleted (PostgreSQL and InnoDB
// keep those entries until vacuum or purge). The write re-checks queue and reserved_by: a job
// claimed or moved between the read and the write is left alone. Returns the rows written.
func (s *sqlStore) inBatches(ctx context.Context, queue string, g Group, write func(ids []int64) (sql.Result, error)) (int64, error) {
	filter, args, err := s.groupFilter(g)
	if err != nil {
		return 0, err
	}
	var last *int64
	if err := s.queryRow(ctx, s.w, `SELECT MAX(id) FROM rr_jobs`).Scan(&last); err != nil || last == nil {
		return 0, err
	}
	pick := `SELECT id FROM rr_jobs` + s.d.primaryKeyScan + ` WHERE id > ? AND id <= ? AND queue = ? AND reserved_by IS NULL` + filter +
		` ORDER BY id LIMIT ?`
	var total, after int64
	for {
		ids, err := s.ids(ctx, s.r, pick, append(append([]any{after, *last, queue}, args...), opBatch)...) // a reader: SQLite's writer is held by the writes alone
		if err != nil || len(ids) == 0 {
			return total, err
		}
		res, err := write(ids)
		if err != nil {
			return total, err
		}
		n, _ := res.RowsAffected()
		total += n
		if len(ids) < opBatch {
			return total, nil
		}
		after = ids[len(ids)-1]
	}
}

func (s *sqlStore) ListFailed(ctx context.Context, queue string, afterID int64, limit int) ([]FailedJob, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	rows, err := s.query(ctx, s.r, `SELECT id, job_id, queue, name, payload, headers, attempts, error, failed_at
		FROM rr_failed_jobs WHERE queue = ? AND id > ? ORDER BY id LIMIT ?`, queue, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("list failed jobs of %s: %w", queue, err)
	}
	return scanFailed(rows)
}

// scanFailed reads rows of failed jobs (the columns of ListFailed).
func scanFailed(rows *sql.Rows) ([]FailedJob, error) {
	defer rows.Close()
	var out []FailedJob
	for rows.Next() {
		var (
			f       FailedJob
			headers []byte
			at      int64
		)
		if err := rows.Scan(&f.ID, &f.JobID, &f.Queue, &f.Name, &f.Payload, &headers, &f.Attempts, &f.Error, &at); err != nil {
			return nil, err
		}
		var err error
		if f.Headers, err = decodeHeaders(headers); err != nil {
			f.Headers = map[string][]string{} // a row that failed for its headers still lists
		}
		f.FailedAt = time.UnixMilli(at)
		out = append(out, f)
	}
	return out, rows.Err()
}

// selectedIDs fixes the failed jobs a selection means, in id order (in a transaction: locked
// where the database can lock them), so that what is retried is exactly what is deleted.
func (s *sqlStore) selectedIDs(ctx context.Context, on execer, sel Selection) ([]int64, error) {
	if !sel.All {
		if len(sel.IDs) == 0 {
			return nil, fmt.Errorf("select failed jobs by ids, or all of the pipeline")
		}
		var out []int64
		for chunk := range slices.Chunk(slices.Sorted(slices.Values(sel.IDs)), fencesPerStatement) {
			ids, err := s.failedIDs(ctx, on, `queue = ? AND id IN (`+marks(len(chunk))+`)`, append([]any{sel.Queue}, anySlice(chunk)...))
			if err != nil {
				return nil, err
			}
			out = append(out, ids...)
		}
		return out, nil
	}
	return s.failedIDs(ctx, on, `queue = ?`, []any{sel.Queue})
}

func (s *sqlStore) failedIDs(ctx context.Context, on execer, where string, args []any) ([]int64, error) {
	return s.ids(ctx, on, `SELECT id FROM rr_failed_jobs WHERE `+where+` ORDER BY id`+s.d.forUpdate, args...)
}

// marks is n placeholders separated by commas.
func marks(n int) string { return strings.TrimSuffix(strings.Repeat("?,", n), ",") }

func anySlice[T any](v []T) []any {
	out := make([]any, len(v))
	for i := range v {
		out[i] = v[i]
	}
	return out
}

// RetryFailed copies the selected failed jobs back to ready and deletes them, exactly the same
// ids, in one transaction and in chunks (a statement's placeholders are bounded).
func (s *sqlStore) RetryFailed(ctx context.Context, sel Selection) (int64, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	tx, err := s.begin(ctx)
	if err != nil {
		return 0, err
	}
	defer func() { _ = tx.Rollback() }()
	ids, err := s.selectedIDs(ctx, tx, sel)
	if err != nil {
		return 0, fmt.Errorf("retry failed jobs: %w", err)
	}
	var total int64
	for chunk := range slices.Chunk(ids, fencesPerStatement) {
		in := `id IN (` + marks(len(chunk)) + `)`
		res, err := s.exec(ctx, tx, `INSERT INTO rr_jobs
			(queue, job_id, name, payload, headers, priority, available_at, created_at, auto_ack)
			SELECT queue, job_id, name, payload, headers, priority, {now}, {now}, ?
			FROM rr_failed_jobs WHERE `+in+` ORDER BY id`, append([]any{false}, anySlice(chunk)...)...)
		if err != nil {
			return 0, fmt.Errorf("retry failed jobs: %w", err)
		}
		n, _ := res.RowsAffected()
		total += n
		if _, err = s.exec(ctx, tx, `DELETE FROM rr_failed_jobs WHERE `+in, anySlice(chunk)...); err != nil {
			return 0, fmt.Errorf("retry failed jobs: %w", err)
		}
	}
	return total, tx.Commit()
}

func (s *sqlStore) DeleteFailed(ctx context.Context, sel Selection) (int64, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	if sel.All {
		res, err := s.exec(ctx, s.w, `DELETE FROM rr_failed_jobs WHERE queue = ?`, sel.Queue)
		if err != nil {
			return 0, fmt.Errorf("delete failed jobs: %w", err)
		}
		return res.RowsAffected()
	}
	if len(sel.IDs) == 0 {
		return 0, fmt.Errorf("select failed jobs by ids, or all of the pipeline")
	}
	var total int64
	for chunk := range slices.Chunk(sel.IDs, fencesPerStatement) {
		res, err := s.exec(ctx, s.w, `DELETE FROM rr_failed_jobs WHERE queue = ? AND id IN (`+marks(len(chunk))+`)`,
			append([]any{sel.Queue}, anySlice(chunk)...)...)
		if err != nil {
			return total, fmt.Errorf("delete failed jobs: %w", err)
		}
		n, _ := res.RowsAffected()
		total += n
	}
	return total, nil
}

// PruneFailed deletes failed jobs older than olderThan, batch rows per statement, so no statement
// holds locks for long. Returns how many it deleted.
func (s *sqlStore) PruneFailed(ctx context.Context, retention time.Duration, batch int) (int64, error) {
	var total int64
	for {
		if err := s.check(); err != nil {
			return total, err
		}
		var (
			res sqlResult
			err error
		)
		if s.d.name == "mysql" {
			res, err = s.exec(ctx, s.w, `DELETE FROM rr_failed_jobs WHERE failed_at < {now} - ? ORDER BY id LIMIT ?`, retention.Milliseconds(), batch)
		} else {
			res, err = s.exec(ctx, s.w, `DELETE FROM rr_failed_jobs WHERE id IN (
				SELECT id FROM rr_failed_jobs WHERE failed_at < {now} - ? ORDER BY id LIMIT ?)`, retention.Milliseconds(), batch)
		}
		if err != nil {
			return total, fmt.Errorf("prune failed jobs: %w", err)
		}
		n, _ := res.RowsAffected()
		total += n
		if n < int64(batch) {
			return total, nil
		}
	}
}

type sqlResult interface{ RowsAffected() (int64, error) }

// dropTakenKeys prepares a move of jobs to another queue: a moved job keeps its unique key, unless
// a job of the target queue holds that key already; then it moves without one (a move never drops
// a job, and a collision does not fail the whole move). Jobs without a key cost one probe of the
// primary key per batch.
func (s *sqlStore) dropTakenKeys(ctx context.Context, on execer, ids []int64, target string) error {
	taken, err := s.ids(ctx, on, `SELECT m.id FROM rr_jobs m JOIN rr_jobs t ON t.queue = ? AND t.unique_key = m.unique_key
		WHERE m.id IN (`+marks(len(ids))+`) AND m.unique_key IS NOT NULL`, append([]any{target}, anySlice(ids)...)...)
	if err != nil || len(taken) == 0 {
		return err
	}
	_, err = s.exec(ctx, on, `UPDATE rr_jobs SET unique_key = NULL WHERE id IN (`+marks(len(taken))+`)`, anySlice(taken)...)
	return err
}

// retryKeyRaces reruns a move whose statement failed on the unique index: a job pushed into the
// target queue after dropTakenKeys looked took a moved job's key. The next try sees it.
func (s *sqlStore) retryKeyRaces(ctx context.Context, move func() error) error {
	for attempt := 1; ; attempt++ {
		err := retryConflicts(ctx, move)
		if err == nil || attempt == 5 || !s.d.uniqueViolation(err) {
			return err
		}
	}
}
