package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"
	// Headers are encoded on every push and decoded on every claim: this encoder (already in every
	// rr through goridge) takes about a third of encoding/json's time on a job's trace headers.
	json "github.com/goccy/go-json"
	"github.com/jackc/pgx/v5/pgconn"
)

// dialect is what differs between databases. Shared statements are written with `?`
// placeholders and rebound for dialects that number them.
type dialect struct {
	name string
	// numbered placeholders ($1, $2, ...) instead of ?
	numbered bool
	// claim reserves up to limit jobs and returns them (in any order).
	claim func(ctx context.Context, s *sqlStore, c claimArgs) ([]Job, error)
	// claimSQL is the statement that picks the jobs (what ExplainClaim explains), and
	// explainPrefix what makes the database show its plan.
	claimSQL, explainPrefix string
	// lockMigrations serialises schema changes between nodes starting at once (nil: the
	// database's own write lock is enough).
	lockMigrations func(ctx context.Context, c *sql.Conn) (unlock func(), err error)
	// txOptions are the options of every write transaction (MySQL: READ COMMITTED, so no gap or
	// next-key locks that deadlock a delete against a claim).
	txOptions *sql.TxOptions
	// noTransactionalDDL: each DDL statement commits on its own (MySQL), so migrations run statement
	// by statement and must be written to be re-runnable.
	noTransactionalDDL bool
	// fencedWhere matches a whole batch of fences (id and claim token) in one condition, with `?`
	// placeholders: a network round trip per batch instead of per job. nil: one statement per
	// fence (SQLite, which runs in process).
	fencedWhere func(fences []Fence) (where string, args []any)
}

// sqlStore implements Store on database/sql for every dialect.
type sqlStore struct {
	d dialect
	// w takes every write; r serves counts. They are the same pool except on SQLite, where writes go
	// through one connection (one writer at a time) and reads use a pool of their own.
	w, r   *sql.DB
	closed atomic.Bool
	// listen is the dialect's notification loop (nil: none).
	listen func(ctx context.Context, onReady func(queue string)) error

	stmts sync.Map // stmtKey → *sql.Stmt, see prepared
}

// stmtKey is a statement as written (with ? placeholders) and the pool it is prepared on.
type stmtKey struct {
	db    *sql.DB
	query string
}

// prepared returns query prepared once on db, for the statements a node runs all the time: each
// push, and even while idle the polls, heartbeats and the reaper. Otherwise SQLite parses the
// statement again on every call (an eighth of rr's CPU in a push benchmark) and MySQL spends
// three round trips (prepare, execute, close) on one statement with arguments. The lookup takes
// no lock: it is on the push path.
func (s *sqlStore) prepared(ctx context.Context, db *sql.DB, query string) (*sql.Stmt, error) {
	key := stmtKey{db, query}
	if st, ok := s.stmts.Load(key); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := db.PrepareContext(ctx, s.q(query))
	if err != nil {
		return nil, err
	}
	if first, lost := s.stmts.LoadOrStore(key, st); lost {
		_ = st.Close() // another caller prepared it at the same time
		return first.(*sql.Stmt), nil
	}
	return st, nil
}

// execPrepared runs a prepared (see prepared) statement on the write pool.
func (s *sqlStore) execPrepared(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := s.prepared(ctx, s.w, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

func (s *sqlStore) Listen(ctx context.Context, onReady func(queue string)) error {
	if s.listen == nil {
		return ErrNoListen
	}
	if err := s.check(); err != nil {
		return err
	}
	return s.listen(ctx, onReady)
}

func (s *sqlStore) Dialect() string { return s.d.name }

// q rebinds a statement written with ? placeholders for the dialect.
func (s *sqlStore) q(query string) string {
	if !s.d.numbered {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (s *sqlStore) check() error {
	if s.closed.Load() {
		return ErrClosed
	}
	return nil
}

func encodeHeaders(h map[string][]string) ([]byte, error) {
	if len(h) == 0 {
		return []byte("{}"), nil
	}
	return json.Marshal(h)
}

func decodeHeaders(b []byte) (map[string][]string, error) {
	h := map[string][]string{}
	if len(b) == 0 {
		return h, nil
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("decode headers: %w", err)
	}
	return h, nil
}

func (s *sqlStore) Insert(ctx context.Context, j NewJob) error {
	if err := s.check(); err != nil {
		return err
	}
	headers, err := encodeHeaders(j.Headers)
	if err != nil {
		return fmt.Errorf("encode headers of job %s: %w", j.JobID, err)
	}
	now := time.Now()
	available := j.AvailableAt
	if available.IsZero() {
		available = now
	}
	payload := j.Payload
	if payload == nil {
		payload = []byte{}
	}
	_, err = s.execPrepared(ctx, `INSERT INTO rr_jobs
		(queue, job_id, name, payload, headers, priority, available_at, created_at, attempts, auto_ack)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?)`,
		j.Queue, j.JobID, j.Name, payload, headers, j.Priority, ms(available), ms(now), j.AutoAck)
	if err != nil {
		return fmt.Errorf("insert job %s into queue %s: %w", j.JobID, j.Queue, err)
	}
	return nil
}

// claimArgs are a claim's values as the statements take them.
type claimArgs struct {
	queue, node     string
	token           int64
	limit           int
	now, leaseUntil int64
}

func (s *sqlStore) Claim(ctx context.Context, req ClaimRequest) ([]Job, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if req.Limit <= 0 {
		return nil, nil
	}
	// A fresh random token per claim: even a node that claims the same row twice can tell its claims apart.
	args := claimArgs{queue: req.Queue, node: req.Node, token: rand.Int64N(1<<62) + 1, limit: req.Limit,
		now: ms(req.Now), leaseUntil: ms(req.LeaseUntil)}
	jobs, err := s.d.claim(ctx, s, args)
	if err != nil {
		return nil, fmt.Errorf("claim from queue %s: %w", req.Queue, err)
	}
	sort.Slice(jobs, func(a, b int) bool {
		x, y := jobs[a], jobs[b]
		if x.Priority != y.Priority {
			return x.Priority < y.Priority
		}
		if !x.AvailableAt.Equal(y.AvailableAt) {
			return x.AvailableAt.Before(y.AvailableAt)
		}
		return x.Row < y.Row
	})
	return jobs, nil
}

// claimedColumns is the column list every dialect's claim returns, in scanClaimed's order.
const claimedColumns = `id, job_id, name, payload, headers, priority, available_at, attempts, auto_ack`

func scanClaimed(rows *sql.Rows, token int64) ([]Job, error) {
	defer rows.Close()
	var out []Job
	for rows.Next() {
		var (
			j         Job
			headers   []byte
			available int64
		)
		if err := rows.Scan(&j.Row, &j.JobID, &j.Name, &j.Payload, &headers, &j.Priority, &available, &j.Attempts, &j.AutoAck); err != nil {
			return nil, err
		}
		h, err := decodeHeaders(headers)
		if err != nil {
			return nil, fmt.Errorf("job %s: %w", j.JobID, err)
		}
		j.Headers = h
		j.Token = token
		j.AvailableAt = time.UnixMilli(available)
		out = append(out, j)
	}
	return out, rows.Err()
}

// begin starts a write transaction.
func (s *sqlStore) begin(ctx context.Context) (*sql.Tx, error) {
	return s.w.BeginTx(ctx, s.d.txOptions)
}

// retryConflicts reruns fn after a deadlock or lock-wait timeout (MySQL 1213/1205, PostgreSQL
// 40P01/40001), with a growing jittered pause, up to five tries.
func retryConflicts(ctx context.Context, fn func() error) error {
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || attempt == 5 || !isConflict(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt) * jitterMs(10)):
		}
	}
}

func isConflict(err error) bool {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number == 1213 || me.Number == 1205
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "40P01" || pe.Code == "40001"
	}
	return false
}

// execFenced runs head (a statement ending in WHERE, with lead as its first arguments) on the
// rows the fences still hold, in one transaction, and returns how many rows it changed. Rows are
// locked in id order, so concurrent batches cannot deadlock each other.
func (s *sqlStore) execFenced(ctx context.Context, head string, fences []Fence, lead ...any) (int64, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	if len(fences) == 0 {
		return 0, nil
	}
	fences = slices.Clone(fences)
	slices.SortFunc(fences, func(a, b Fence) int { return cmp.Compare(a.Row, b.Row) })
	var total int64
	err := retryConflicts(ctx, func() error {
		var err error
		total, err = s.execFencedOnce(ctx, head, fences, lead)
		return err
	})
	return total, err
}

// fencesPerStatement bounds a set-based fenced statement (MySQL allows 65,535 placeholders).
const fencesPerStatement = 1000

func (s *sqlStore) execFencedOnce(ctx context.Context, head string, fences []Fence, lead []any) (int64, error) {
	var perRow *sql.Stmt
	if s.d.fencedWhere == nil {
		// Prepared once per node (see prepared), not once per batch: parsing it took a tenth of an
		// ack. Before begin: SQLite's one write connection is the transaction's until it ends.
		var err error
		if perRow, err = s.prepared(ctx, s.w, head+"id = ? AND claim_token = ?"); err != nil {
			return 0, err
		}
	}
	tx, err := s.begin(ctx)
	if err != nil {
		return 0, err
	}
	defer func() { _ = tx.Rollback() }()
	var total int64
	if perRow == nil {
		// One statement per chunk of fences: one round trip, not one per job.
		for chunk := range slices.Chunk(fences, fencesPerStatement) {
			where, args := s.d.fencedWhere(chunk)
			res, err := tx.ExecContext(ctx, s.q(head+where), append(slices.Clone(lead), args...)...)
			if err != nil {
				return 0, err
			}
			n, _ := res.RowsAffected()
			total += n
		}
		return total, tx.Commit()
	}
	stmt := tx.StmtContext(ctx, perRow)
	defer stmt.Close()
	// The transaction is bound to ctx; its statements need not be one by one. (With a cancellable
	// context each statement costs the SQLite driver a goroutine that waits for the cancel.)
	rowCtx := context.WithoutCancel(ctx)
	for _, f := range fences {
		res, err := stmt.ExecContext(rowCtx, append(lead, f.Row, f.Token)...)
		if err != nil {
			return 0, err
		}
		n, _ := res.RowsAffected()
		total += n
	}
	return total, tx.Commit()
}

func (s *sqlStore) Ack(ctx context.Context, fences []Fence) (int64, error) {
	n, err := s.execFenced(ctx, `DELETE FROM rr_jobs WHERE `, fences)
	if err != nil {
		return 0, fmt.Errorf("ack %d jobs: %w", len(fences), err)
	}
	return n, nil
}

func (s *sqlStore) Extend(ctx context.Context, fences []Fence, until time.Time) (int64, error) {
	n, err := s.execFenced(ctx, `UPDATE rr_jobs SET lease_until = ? WHERE `, fences, ms(until))
	if err != nil {
		return 0, fmt.Errorf("extend the lease of %d jobs: %w", len(fences), err)
	}
	return n, nil
}

func (s *sqlStore) Release(ctx context.Context, fences []Fence) (int64, error) {
	n, err := s.execFenced(ctx, `UPDATE rr_jobs
		SET reserved_by = NULL, claim_token = NULL, reserved_at = NULL, lease_until = NULL, attempts = attempts - 1
		WHERE `, fences)
	if err != nil {
		return 0, fmt.Errorf("release %d jobs: %w", len(fences), err)
	}
	return n, nil
}

func (s *sqlStore) Requeue(ctx context.Context, f Fence, headers map[string][]string, availableAt time.Time, lastError string) (bool, error) {
	if err := s.check(); err != nil {
		return false, err
	}
	h, err := encodeHeaders(headers)
	if err != nil {
		return false, fmt.Errorf("requeue: encode headers: %w", err)
	}
	res, err := s.w.ExecContext(ctx, s.q(`UPDATE rr_jobs
		SET reserved_by = NULL, claim_token = NULL, reserved_at = NULL, lease_until = NULL, headers = ?, available_at = ?, last_error = ?
		WHERE id = ? AND claim_token = ?`), h, ms(availableAt), nullIfEmpty(lastError), f.Row, f.Token)
	if err != nil {
		return false, fmt.Errorf("requeue: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

func (s *sqlStore) Fail(ctx context.Context, f Fence, reason string, now time.Time) (bool, error) {
	if err := s.check(); err != nil {
		return false, err
	}
	tx, err := s.begin(ctx)
	if err != nil {
		return false, fmt.Errorf("fail job: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	res, err := tx.ExecContext(ctx, s.q(`INSERT INTO rr_failed_jobs
		(queue, job_id, name, payload, headers, priority, attempts, error, failed_at)
		SELECT queue, job_id, name, payload, headers, priority, attempts, ?, ?
		FROM rr_jobs WHERE id = ? AND claim_token = ?`), reason, ms(now), f.Row, f.Token)
	if err != nil {
		return false, fmt.Errorf("fail job: copy to failed jobs: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return false, nil
	}
	if _, err = tx.ExecContext(ctx, s.q(`DELETE FROM rr_jobs WHERE id = ? AND claim_token = ?`), f.Row, f.Token); err != nil {
		return false, fmt.Errorf("fail job: delete: %w", err)
	}
	if err = tx.Commit(); err != nil {
		return false, fmt.Errorf("fail job: commit: %w", err)
	}
	return true, nil
}

func (s *sqlStore) Counts(ctx context.Context, queue string, now time.Time) (Counts, error) {
	var c Counts
	if err := s.check(); err != nil {
		return c, err
	}
	// Two index-only counts: the claim index for ready/delayed, the reserved index for reserved.
	err := s.r.QueryRowContext(ctx, s.q(`SELECT
			COALESCE(SUM(CASE WHEN available_at <= ? THEN 1 ELSE 0 END), 0),
			COALESCE(SUM(CASE WHEN available_at > ? THEN 1 ELSE 0 END), 0)
		FROM rr_jobs WHERE queue = ? AND reserved_by IS NULL`), ms(now), ms(now), queue).Scan(&c.Ready, &c.Delayed)
	if err != nil {
		return c, fmt.Errorf("count jobs of queue %s: %w", queue, err)
	}
	err = s.r.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM rr_jobs WHERE queue = ? AND reserved_by IS NOT NULL`), queue).Scan(&c.Reserved)
	if err != nil {
		return c, fmt.Errorf("count reserved jobs of queue %s: %w", queue, err)
	}
	return c, nil
}

func (s *sqlStore) FailedCount(ctx context.Context, queue string) (int64, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	var n int64
	err := s.r.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM rr_failed_jobs WHERE queue = ?`), queue).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count failed jobs of queue %s: %w", queue, err)
	}
	return n, nil
}

func (s *sqlStore) RegisterNode(ctx context.Context, n Node, now time.Time) error {
	if err := s.check(); err != nil {
		return err
	}
	_, err := s.w.ExecContext(ctx, s.q(`INSERT INTO rr_nodes (id, host, pid, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?)`),
		n.ID, n.Host, n.PID, ms(now), ms(now))
	if err != nil {
		return fmt.Errorf("register node %s: %w", n.ID, err)
	}
	return nil
}

func (s *sqlStore) Heartbeat(ctx context.Context, node string, now time.Time) (bool, error) {
	if err := s.check(); err != nil {
		return false, err
	}
	res, err := s.execPrepared(ctx, `UPDATE rr_nodes SET heartbeat_at = ? WHERE id = ?`, ms(now), node)
	if err != nil {
		return false, fmt.Errorf("heartbeat of node %s: %w", node, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

func (s *sqlStore) Nodes(ctx context.Context) ([]Node, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT id, host, pid, heartbeat_at FROM rr_nodes`)
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	defer rows.Close()
	var out []Node
	for rows.Next() {
		var (
			n  Node
			hb int64
		)
		if err := rows.Scan(&n.ID, &n.Host, &n.PID, &hb); err != nil {
			return nil, fmt.Errorf("list nodes: %w", err)
		}
		n.HeartbeatAt = time.UnixMilli(hb)
		out = append(out, n)
	}
	return out, rows.Err()
}

// releaseOrphans returns to ready the jobs reserved by nodes that are no longer registered, and
// those whose lease ran out (a node that lost track of a job stops extending it).
// The attempt they were delivered on still counts: the job may have run.
const releaseOrphans = `UPDATE rr_jobs SET reserved_by = NULL, claim_token = NULL, reserved_at = NULL, lease_until = NULL
	WHERE reserved_by IS NOT NULL AND (lease_until < ? OR reserved_by NOT IN (SELECT id FROM rr_nodes))`

func (s *sqlStore) Reap(ctx context.Context, now, staleBefore time.Time, dead []string) (int64, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	// Every node runs this at each heartbeat, so it is a few prepared statements, each atomic on its
	// own, not a transaction. Nodes go first; a job whose node is gone is released by the last
	// statement, now or at the next reap.
	if _, err := s.execPrepared(ctx, `DELETE FROM rr_nodes WHERE heartbeat_at < ?`, ms(staleBefore)); err != nil {
		return 0, fmt.Errorf("reap stale nodes: %w", err)
	}
	for _, id := range dead {
		if _, err := s.w.ExecContext(ctx, s.q(`DELETE FROM rr_nodes WHERE id = ?`), id); err != nil {
			return 0, fmt.Errorf("reap node %s: %w", id, err)
		}
	}
	res, err := s.execPrepared(ctx, releaseOrphans, ms(now))
	if err != nil {
		return 0, fmt.Errorf("release jobs of dead nodes: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

func (s *sqlStore) RemoveNode(ctx context.Context, node string) (int64, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	tx, err := s.begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("remove node %s: %w", node, err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err = tx.ExecContext(ctx, s.q(`DELETE FROM rr_nodes WHERE id = ?`), node); err != nil {
		return 0, fmt.Errorf("remove node %s: %w", node, err)
	}
	res, err := tx.ExecContext(ctx, s.q(`UPDATE rr_jobs SET reserved_by = NULL, claim_token = NULL, reserved_at = NULL, lease_until = NULL
		WHERE reserved_by = ?`), node)
	if err != nil {
		return 0, fmt.Errorf("release jobs of node %s: %w", node, err)
	}
	n, _ := res.RowsAffected()
	return n, tx.Commit()
}

func (s *sqlStore) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.stmts.Range(func(key, st any) bool {
		_ = st.(*sql.Stmt).Close()
		s.stmts.Delete(key)
		return true
	})
	err := s.w.Close()
	if s.r != s.w {
		if errR := s.r.Close(); err == nil {
			err = errR
		}
	}
	return err
}

// jitterMs is a random duration of 1..n milliseconds.
func jitterMs(n int) time.Duration { return time.Duration(1+rand.IntN(n)) * time.Millisecond }

// ExplainClaim returns the database's plan for the claim statement, exactly as the claim runs it,
// one line per plan row. The tests assert that it reads the claim index in order.
func (s *sqlStore) ExplainClaim(ctx context.Context, queue string) (string, error) {
	now := time.Now().UnixMilli()
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	var rows *sql.Rows
	switch s.d.name {
	case "postgres":
		// PostgreSQL 15 has no EXPLAIN (GENERIC_PLAN): force the generic plan of a prepared claim.
		for _, st := range []string{"SET plan_cache_mode = force_generic_plan", "PREPARE rr_claim_explain AS " + s.d.claimSQL} {
			if _, err = conn.ExecContext(ctx, st); err != nil {
				return "", fmt.Errorf("explain claim: %w", err)
			}
		}
		defer func() {
			_, _ = conn.ExecContext(context.Background(), "DEALLOCATE rr_claim_explain")
			_, _ = conn.ExecContext(context.Background(), "RESET plan_cache_mode")
		}()
		// The values do not matter: a generic plan ignores them.
		rows, err = conn.QueryContext(ctx, s.d.explainPrefix+"('node', 1, 0, 0, 'queue', 0, 100)")
	case "mysql":
		rows, err = conn.QueryContext(ctx, s.d.explainPrefix+s.d.claimSQL, queue, now, 100)
	default:
		rows, err = conn.QueryContext(ctx, s.d.explainPrefix+s.d.claimSQL, "node", int64(1), now, now, queue, now, 100)
	}
	if err != nil {
		return "", fmt.Errorf("explain claim: %w", err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var lines []string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return "", err
		}
		var parts []string
		for i, v := range vals {
			if v.Valid {
				parts = append(parts, cols[i]+"="+v.String)
			}
		}
		lines = append(lines, strings.Join(parts, " "))
	}
	return strings.Join(lines, "\n"), rows.Err()
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}
