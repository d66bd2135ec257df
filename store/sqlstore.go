package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
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
// placeholders and `{now}` for the database's clock (unix milliseconds), and rendered for each
// dialect by render.
type dialect struct {
	name string
	// numbered placeholders ($1, $2, ...) instead of ?
	numbered bool
	// now is the SQL expression of the database's clock in unix milliseconds. Empty: the store's
	// own clock, bound as the first argument of the statement (SQLite: a file of this host).
	now string
	// claim reserves up to limit jobs and returns them (in any order).
	claim func(ctx context.Context, s *sqlStore, c claimArgs) ([]Job, error)
	// claimSQL is the statement that picks the jobs (what ExplainClaim explains), and
	// explainPrefix what makes the database show its plan.
	claimSQL, explainPrefix string
	// explain shows the plan of the statement that follows it.
	explain string
	// lockMigrations serialises schema changes between nodes starting at once (nil: the
	// database's own write lock is enough).
	lockMigrations func(ctx context.Context, c *sql.Conn) (unlock func(), err error)
	// noTransactionalDDL: each DDL statement commits on its own (MySQL), so migrations run statement
	// by statement and must be written to be re-runnable.
	noTransactionalDDL bool
	// fencedWhere matches a whole batch of fences (id and claim token) in one condition, with `?`
	// placeholders: a network round trip per batch instead of per job. nil: one statement per
	// fence (SQLite, which runs in process).
	fencedWhere func(fences []Fence) (where string, args []any)
	// primaryKeyScan makes a read walk the primary key (Flush and Move page along it in id order)
	// where the planner would rather take the queue's index and sort what it finds.
	primaryKeyScan string
	// historyByMinute makes a read of rr_history's recent minutes use its minute index, where the
	// planner would rather walk the whole primary key for its (pipeline) order (SQLite).
	historyByMinute string
	// forUpdate locks the rows a read selects until the transaction ends ("" where one write
	// transaction runs at a time anyway).
	forUpdate string
	// insertIgnore turns "table (columns) VALUES (...)" into an insert that does nothing when the
	// key exists.
	insertIgnore func(into string) string
	// uniqueInsert ends the insert of a job: it does nothing when the job's unique key is held in
	// its queue (and fails on any other error), and created tells from its result whether it
	// wrote the row.
	uniqueInsert string
	created      func(res sql.Result) (bool, error)
	// uniqueViolation says that a statement failed on a unique index (a move into a queue where a
	// job pushed meanwhile holds a moved job's key).
	uniqueViolation func(err error) bool
	// groupPage lists a page of a queue's groups in order, each with whether it has a ready job
	// (groups with only delayed or reserved jobs may be left out or listed as not ready); fewer
	// rows than asked: the last group was reached. Its columns: grp, ready, and the id of the
	// group's first ready job where the statement reads it (NULL otherwise).
	groupPage func(p groupPageArgs) (query string, args []any)
	// groupClaimSetup runs first in a group claim's transaction ("" for none).
	groupClaimSetup string
	// groupNames lists a page of the groups of a queue's waiting jobs in order, straight from
	// rr_jobs_group (it may list groups of reserved jobs too), for the page of sql.Groups: a `%[1]s`
	// stands for the cursor's condition on grp (pageAfter). Arguments: queue, the cursor's, limit.
	groupNames string
	// groupIndexAll: rr_jobs_group holds the reserved rows too (no partial index, MySQL). A page's
	// counts then read it alone, every row of the page's groups, and take the reserved rows off:
	// a condition on reserved_by would read each row itself.
	groupIndexAll bool
	// rowsPerInsert is how many rows one INSERT of a batch (InsertBatch) takes; 1: a prepared
	// one-row INSERT run once per job in the batch's transaction. Each row takes 9 placeholders.
	rowsPerInsert int
	// claimHeads reserves up to want jobs at the head of each group and returns them by group.
	// The queue's turn is held, so no other group claim competes for these rows; it still takes
	// only unreserved ones (an operator's Flush or Move may have taken some meanwhile).
	claimHeads func(ctx context.Context, s *sqlStore, tx *sql.Tx, c claimArgs, heads []groupHead) (map[string][]Job, error)
	// addHistory adds a node's counts to its row of a pipeline's minute, replacing the depth.
	// Arguments: pipeline, minute, node, pushed, processed, failed, depth.
	addHistory string
	// uninterrupted: a write statement checks its context before it runs and is not interrupted
	// by a cancel while it runs (see writeCtx; SQLite).
	uninterrupted bool
	// jobKey is the expression of a job id that rr_jobs' job id index holds, where that is not
	// (queue, job_id): Find and Cancel match it as well, so that the index serves them (nil: none).
	jobKey func(id string) string
	// ackMarks: an ack marks its job's row (markAcked) and SweepAcked deletes the marked rows later,
	// a few thousand at a time (SQLite, migration 0015: a delete writes a random page of the job id
	// index per row). Without it an ack deletes the row. A marked row is neither waiting nor held:
	// statements that read held rows say `{held}`, and those that read rows whatever their state
	// say `{live}` (see render).
	ackMarks bool
}

// Acks without marks delete the row; with them (dialect.ackMarks), they set reserved_by to the
// empty string, which no node id is, and drop what a fence, a lease or a unique key could still
// match.
const (
	deleteAcked = `DELETE FROM rr_jobs WHERE `
	markAcked   = `UPDATE rr_jobs SET reserved_by = '', claim_token = NULL, lease_until = NULL, unique_key = NULL WHERE `
	// sweepAfter is how many marks an ack batch may leave before it sweeps them: each page of the
	// job id index is then written about once per sweep instead of once per ack batch.
	sweepAfter = 5000
	// sweepHold is how long one transaction of a sweep should hold the writer: pushes and claims
	// wait behind it. A sweep deletes its marks in as many transactions as that takes. 50 ms keeps
	// a small table's sweep whole (5,000 marks beside 60,000 jobs took 40-60 ms, and splitting it
	// rewrites the index pages its parts share) and halves a large table's.
	sweepHold = 50 * time.Millisecond
	// sweepRowsMin and sweepRowsMax bound the rows of one sweep transaction; the store's first
	// sweep starts at sweepRowsFirst.
	sweepRowsMin, sweepRowsFirst, sweepRowsMax = 100, 1000, sweepAfter
)

// sweepAcked deletes up to ? marked rows, found through the partial index rr_jobs_acked (named:
// without it the planner walks every held job's entry in rr_jobs_reserved).
const sweepAcked = `DELETE FROM rr_jobs WHERE id IN (
	SELECT id FROM rr_jobs INDEXED BY rr_jobs_acked WHERE reserved_by = '' LIMIT ?)`

// sweepRowsFor is how many rows the next sweep transaction deletes, from the last one's pace: what
// fits in sweepHold. A row's delete costs more the larger the table (with random job ids it writes
// a page of the job id index that fewer other marks share): the 5,000 marks of a sweep took
// 40-60 ms in one transaction beside 60,000 jobs, 220-270 ms beside 1,000,000.
func sweepRowsFor(rows int64, took time.Duration) int64 {
	if rows <= 0 || took <= 0 {
		return sweepRowsMax
	}
	return min(max(int64(sweepHold)*rows/int64(took), sweepRowsMin), sweepRowsMax)
}

// renderings of `{held}` and `{live}` (see dialect.ackMarks).
const (
	heldWithMarks = `reserved_by > ''`
	liveWithMarks = `(reserved_by IS NULL OR reserved_by > '')`
	heldPlain     = `reserved_by IS NOT NULL`
	livePlain     = `1 = 1`
)

// sqlStore implements Store on database/sql for every dialect.
type sqlStore struct {
	d dialect
	// w takes every write; r serves counts. They are the same pool except on SQLite, where writes go
	// through one connection (one writer at a time) and reads use a pool of their own.
	w, r   *sql.DB
	closed atomic.Bool
	// clock is the time of dialects whose clock is the store's (SQLite).
	clock func() time.Time
	// sound checks, before every call, that the database is still the one opened (SQLite: the
	// file was not deleted or replaced under it); nil where there is nothing to check.
	sound func() error
	// listen is the dialect's notification loop (nil: none).
	listen func(ctx context.Context, onReady func(queue string)) error

	// unswept counts the acks marked since the last sweep (dialect.ackMarks); swept: a sweep ran
	// since the store opened, so no mark a previous process left remains.
	unswept atomic.Int64
	swept   atomic.Bool
	// sweepRows is how many rows the next sweep transaction deletes (see sweepRowsFor).
	sweepRows atomic.Int64
	// beginUnflushed starts a write transaction whose commit does not wait for the disk, and end
	// gives its connection back (nil: every commit waits as the connection's settings say). See
	// sqliteUnflushed.
	beginUnflushed func(ctx context.Context) (tx *sql.Tx, end func(), err error)

	stmts    sync.Map // stmtKey → *stmt, see prepared
	rendered sync.Map // statement as written → rendering
}

// rendering is a statement as the dialect runs it.
type rendering struct {
	text string
	// now: the statement's first argument is the store's clock.
	now bool
}

// render turns a statement written with `?`, `{now}`, `{held}` and `{live}` into the dialect's
// text (cached: the statements are constants).
func (s *sqlStore) render(query string) rendering {
	if r, ok := s.rendered.Load(query); ok {
		return r.(rendering)
	}
	out := s.renderOnce(query)
	s.rendered.Store(query, out)
	return out
}

// renderOnce renders a statement without caching it: for statements built per call (a batch of
// rows), whose texts would fill the cache.
func (s *sqlStore) renderOnce(query string) rendering {
	var (
		b   strings.Builder
		n   int
		out rendering
	)
	if s.d.now == "" && strings.Contains(query, "{now}") {
		// SQLite: the clock is parameter 1 wherever it appears, the others follow.
		out.now, n = true, 1
	}
	held, live := heldPlain, livePlain
	if s.d.ackMarks {
		held, live = heldWithMarks, liveWithMarks
	}
	for i := 0; i < len(query); i++ {
		switch {
		case strings.HasPrefix(query[i:], "{held}"):
			i += len("{held}") - 1
			b.WriteString(held)
		case strings.HasPrefix(query[i:], "{live}"):
			i += len("{live}") - 1
			b.WriteString(live)
		case strings.HasPrefix(query[i:], "{now}"):
			i += len("{now}") - 1
			if out.now {
				b.WriteString("?1")
			} else {
				b.WriteString(s.d.now)
			}
		case query[i] == '?':
			n++
			switch {
			case s.d.numbered:
				b.WriteString("$" + strconv.Itoa(n))
			case out.now:
				b.WriteString("?" + strconv.Itoa(n))
			default:
				b.WriteByte('?')
			}
		default:
			b.WriteByte(query[i])
		}
	}
	out.text = b.String()
	return out
}

// bind renders a statement and puts the store's clock before its arguments where it needs it.
func (s *sqlStore) bind(query string, args []any) (string, []any) {
	r := s.render(query)
	if r.now {
		args = append([]any{s.clock().UnixMilli()}, args...)
	}
	return r.text, args
}

// q renders a statement that does not read the clock.
func (s *sqlStore) q(query string) string { return s.render(query).text }

// execer is a pool, a connection or a transaction.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// exec runs a statement. One on a pool commits on its own, and is run again after a deadlock: the
// count triggers make every write to rr_jobs also lock a count row, so two writers can now wait
// for each other, and the database rolls the chosen one back whole.
func (s *sqlStore) exec(ctx context.Context, on execer, query string, args ...any) (res sql.Result, err error) {
	text, args := s.bind(query, args)
	run, err := s.writeCtx(ctx)
	if err != nil {
		return nil, err
	}
	if _, pool := on.(*sql.DB); !pool {
		return on.ExecContext(run, text, args...)
	}
	err = retryConflicts(ctx, func() (err error) {
		res, err = on.ExecContext(run, text, args...)
		return err
	})
	return res, err
}

func (s *sqlStore) query(ctx context.Context, on execer, query string, args ...any) (*sql.Rows, error) {
	text, args := s.bind(query, args)
	return on.QueryContext(ctx, text, args...)
}

func (s *sqlStore) queryRow(ctx context.Context, on execer, query string, args ...any) *sql.Row {
	text, args := s.bind(query, args)
	return on.QueryRowContext(ctx, text, args...)
}

// stmt is a statement prepared once (see prepared).
type stmt struct {
	*sql.Stmt
	now   bool
	clock func() time.Time
}

func (st *stmt) args(args []any) []any {
	if st.now {
		return append([]any{st.clock().UnixMilli()}, args...)
	}
	return args
}

func (st *stmt) exec(ctx context.Context, args ...any) (sql.Result, error) {
	return st.ExecContext(ctx, st.args(args)...)
}

// stmtKey is a statement as written and the pool it is prepared on.
type stmtKey struct {
	db    *sql.DB
	query string
}

// prepared returns query prepared once on db, for the statements a node runs all the time: each
// push, and even while idle the polls, heartbeats and the reaper. Otherwise SQLite parses the
// statement again on every call (an eighth of rr's CPU in a push benchmark) and MySQL spends
// three round trips (prepare, execute, close) on one statement with arguments. The lookup takes
// no lock: it is on the push path.
func (s *sqlStore) prepared(ctx context.Context, db *sql.DB, query string) (*stmt, error) {
	key := stmtKey{db, query}
	if st, ok := s.stmts.Load(key); ok {
		return st.(*stmt), nil
	}
	r := s.render(query)
	prepared, err := db.PrepareContext(ctx, r.text)
	if err != nil {
		return nil, err
	}
	st := &stmt{Stmt: prepared, now: r.now, clock: s.clock}
	if first, lost := s.stmts.LoadOrStore(key, st); lost {
		_ = prepared.Close() // another caller prepared it at the same time
		return first.(*stmt), nil
	}
	return st, nil
}

// execPrepared runs a prepared (see prepared) statement on the write pool.
func (s *sqlStore) execPrepared(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := s.prepared(ctx, s.w, query)
	if err != nil {
		return nil, err
	}
	run, err := s.writeCtx(ctx)
	if err != nil {
		return nil, err
	}
	var res sql.Result
	err = retryConflicts(ctx, func() (err error) { // see exec
		res, err = st.exec(run, args...)
		return err
	})
	return res, err
}

// writeCtx is the context a write statement runs with: ctx, or on an uninterrupted dialect ctx
// without its cancel once checked. The SQLite driver watches a cancellable context with a
// goroutine per statement (and database/sql one per transaction): with the thread it wakes, a
// push at synchronous=normal cost about 15 µs of its 105 here (BenchmarkInsert). SQLite's writes
// are short (one row, or a batch), and busy_timeout bounds a wait for another process's lock, so
// there is nothing long for a cancel to cut.
func (s *sqlStore) writeCtx(ctx context.Context) (context.Context, error) {
	if !s.d.uninterrupted {
		return ctx, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return context.WithoutCancel(ctx), nil
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

func (s *sqlStore) ClockSkew(ctx context.Context) (time.Duration, error) {
	if s.d.now == "" {
		return 0, nil // the store's clock is the database's
	}
	before := s.clock()
	var dbNow int64
	if err := s.queryRow(ctx, s.r, `SELECT {now}`).Scan(&dbNow); err != nil {
		return 0, fmt.Errorf("read the database's clock: %w", err)
	}
	local := before.Add(s.clock().Sub(before) / 2)
	return time.UnixMilli(dbNow).Sub(local), nil
}

func (s *sqlStore) check() error {
	if s.closed.Load() {
		return ErrClosed
	}
	if s.sound != nil {
		return s.sound()
	}
	return nil
}

func encodeHeaders(h map[string][]string) ([]byte, error) {
	if len(h) == 0 {
		return []byte("{}"), nil
	}
	return json.Marshal(h)
}

// decodeHeaders reads the headers column: a JSON object of string to list of strings. Rows written
// by hand (the transactional enqueue) may hold a plain string for a one-value header, or null:
// both are read the way they obviously mean. Anything else is an error for this row alone.
func decodeHeaders(b []byte) (map[string][]string, error) {
	if len(b) == 0 {
		return map[string][]string{}, nil
	}
	// What this driver writes decodes in one pass; the lenient reading below decodes each value
	// again, which cost a job as much as the rest of its claim's scan.
	var h map[string][]string
	if err := json.Unmarshal(b, &h); err == nil {
		for name, values := range h {
			if values == nil { // a null header is no header, as below
				delete(h, name)
			}
		}
		if h == nil {
			h = map[string][]string{}
		}
		return h, nil
	}
	h = map[string][]string{}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("headers are not a JSON object of string lists: %w", err)
	}
	for name, v := range raw {
		if string(v) == "null" {
			continue
		}
		var values []string
		if err := json.Unmarshal(v, &values); err == nil {
			h[name] = values
			continue
		}
		var one string
		if err := json.Unmarshal(v, &one); err == nil {
			h[name] = []string{one}
			continue
		}
		return nil, fmt.Errorf("header %q is %s: want a string or a list of strings", name, v)
	}
	return h, nil
}

func (s *sqlStore) Insert(ctx context.Context, j NewJob) (bool, error) {
	if err := s.check(); err != nil {
		return false, err
	}
	return s.insert(ctx, nil, j)
}

// insertJob and insertRow are the insert of jobs: one row for a push, the row repeated for a
// batch (InsertBatch). Arguments of a row: insertArgs.
const (
	insertJob = `INSERT INTO rr_jobs
		(queue, job_id, name, payload, headers, priority, available_at, created_at, auto_ack, grp, unique_key)
		VALUES `
	insertRow = `(?, ?, ?, ?, ?, ?, {now} + ?, {now}, ?, ?, ?)`
	// insertJobSQL is the insert of one job, to which the dialect's uniqueInsert is added: a job
	// whose unique key its queue holds is not written.
	insertJobSQL = insertJob + insertRow + ` `
)

// insertArgs are a job's values in insertRow's order.
func insertArgs(j NewJob) ([]any, error) {
	headers, err := encodeHeaders(j.Headers)
	if err != nil {
		return nil, fmt.Errorf("encode headers of job %s: %w", j.JobID, err)
	}
	payload := j.Payload
	if payload == nil {
		payload = []byte{}
	}
	var group any // NULL: the pipeline has no group_by
	if j.Grouped {
		group = j.Group
	}
	return []any{j.Queue, j.JobID, j.Name, payload, headers, j.Priority, j.Delay.Milliseconds(), j.AutoAck, group, nullIfEmpty(j.UniqueKey)}, nil
}

// insert writes a job: in tx when one is given, else on its own (committed on return). Every job
// enters rr_jobs here or in InsertBatch (the same row, the same arguments), whoever pushes it (a
// push, a batch, a schedule's tick), so the count triggers, the group column, the unique key and
// the notification on PostgreSQL are the same for all. created is false when the job's unique
// key is held in its queue: nothing was written.
func (s *sqlStore) insert(ctx context.Context, tx *sql.Tx, j NewJob) (bool, error) {
	args, err := insertArgs(j)
	if err != nil {
		return false, err
	}
	var res sql.Result
	if tx == nil {
		res, err = s.execPrepared(ctx, insertJobSQL+s.d.uniqueInsert, args...)
	} else {
		res, err = s.exec(ctx, tx, insertJobSQL+s.d.uniqueInsert, args...)
	}
	if err != nil {
		return false, fmt.Errorf("insert job %s into queue %s: %w", j.JobID, j.Queue, err)
	}
	created, err := s.d.created(res)
	if err != nil {
		return false, fmt.Errorf("insert job %s into queue %s: %w", j.JobID, j.Queue, err)
	}
	return created, nil
}

// insertedOneRow: the insert wrote a row (PostgreSQL and SQLite count none for DO NOTHING).
func insertedOneRow(res sql.Result) (bool, error) {
	n, err := res.RowsAffected()
	return n == 1, err
}

// claimArgs are a claim's values as the statements take them.
type claimArgs struct {
	queue, node string
	token       int64
	limit       int
	leaseMs     int64
	groupLimit  int
}

func (s *sqlStore) Claim(ctx context.Context, req ClaimRequest) ([]Job, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if req.Limit <= 0 {
		return nil, nil
	}
	// A fresh random token per claim: even a node that claims the same row twice can tell its claims apart.
	args := claimArgs{queue: req.Queue, node: req.Node, token: rand.Int64N(1<<62) + 1, limit: req.Limit, leaseMs: req.Lease.Milliseconds(),
		groupLimit: req.GroupConcurrency}
	var (
		jobs []Job
		err  error
	)
	if req.Groups {
		jobs, err = s.groupClaim(ctx, args) // in round-robin order already
	} else {
		jobs, err = s.d.claim(ctx, s, args)
		slices.SortFunc(jobs, claimOrder)
	}
	if err != nil {
		return nil, fmt.Errorf("claim from queue %s: %w", req.Queue, err)
	}
	return jobs, nil
}

// claimOrder is the order jobs are claimed and handed to workers in: priority, due time, insertion.
func claimOrder(x, y Job) int {
	return cmp.Or(cmp.Compare(x.Priority, y.Priority), cmp.Compare(x.AvailableAt, y.AvailableAt), cmp.Compare(x.Row, y.Row))
}

// claimedColumns is the column list every dialect's claim returns, in scanClaimed's order.
const claimedColumns = `id, job_id, name, payload, headers, priority, available_at, attempts, failures, auto_ack`

// claimSet is what a claim writes on a row. Arguments: node, token, lease in milliseconds.
const claimSet = `reserved_by = ?, claim_token = ?, reserved_at = {now}, lease_until = {now} + ?`

func scanClaimed(rows *sql.Rows, token int64) ([]Job, error) {
	defer rows.Close()
	var out []Job
	for rows.Next() {
		j, err := scanJob(rows, token)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// scanJob reads one row of claimedColumns (then the extra columns a statement adds).
func scanJob(rows *sql.Rows, token int64, extra ...any) (Job, error) {
	var (
		j       Job
		headers []byte
	)
	dest := append([]any{&j.Row, &j.JobID, &j.Name, &j.Payload, &headers, &j.Priority, &j.AvailableAt, &j.Deliveries, &j.Failures, &j.AutoAck}, extra...)
	if err := rows.Scan(dest...); err != nil {
		return j, err
	}
	// A row that cannot be read is still claimed, with its error, so that it is failed at once
	// and the rest of the batch runs.
	j.Headers, j.Unreadable = decodeHeaders(headers)
	j.Token = token
	return j, nil
}

// beginMaybeUnflushed starts a write transaction, one whose commit does not wait for the disk if
// unflushed and the store has them (beginUnflushed). end gives the connection back after the
// transaction ends.
func (s *sqlStore) beginMaybeUnflushed(ctx context.Context, unflushed bool) (tx *sql.Tx, end func(), err error) {
	if unflushed && s.beginUnflushed != nil {
		return s.beginUnflushed(ctx)
	}
	tx, err = s.begin(ctx)
	return tx, func() {}, err
}

// begin starts a write transaction.
func (s *sqlStore) begin(ctx context.Context) (*sql.Tx, error) {
	run, err := s.writeCtx(ctx)
	if err != nil {
		return nil, err
	}
	return s.w.BeginTx(run, nil)
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

// fencedStatement is one statement applied to the rows a set of fences still holds: head is a
// statement ending in WHERE, with lead as its first arguments.
type fencedStatement struct {
	head   string
	fences []Fence
	lead   []any
}

// execFenced runs fenced statements in one transaction and returns how many rows each changed.
// Rows are locked in id order, so concurrent batches cannot deadlock each other. unflushed: the
// commit need not be on disk when it returns (see beginUnflushed), for the answers to claims.
func (s *sqlStore) execFenced(ctx context.Context, unflushed bool, statements ...fencedStatement) ([]int64, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	total := 0
	for i := range statements {
		statements[i].fences = slices.Clone(statements[i].fences)
		slices.SortFunc(statements[i].fences, func(a, b Fence) int { return cmp.Compare(a.Row, b.Row) })
		total += len(statements[i].fences)
	}
	if total == 0 {
		return make([]int64, len(statements)), nil
	}
	var counts []int64
	err := retryConflicts(ctx, func() error {
		var err error
		counts, err = s.execFencedOnce(ctx, unflushed, statements)
		return err
	})
	return counts, err
}

// singleStatement says whether the statements come down to one set-based statement: one of them
// has fences, no more than one chunk of them.
func singleStatement(statements []fencedStatement) (int, bool) {
	one := -1
	for i, st := range statements {
		switch {
		case len(st.fences) == 0:
		case one >= 0 || len(st.fences) > fencesPerStatement:
			return 0, false
		default:
			one = i
		}
	}
	return one, one >= 0
}

// fencesPerStatement bounds a set-based fenced statement (MySQL allows 65,535 placeholders).
const fencesPerStatement = 1000

func (s *sqlStore) execFencedOnce(ctx context.Context, unflushed bool, statements []fencedStatement) ([]int64, error) {
	perRow := make([]*stmt, len(statements))
	if s.d.fencedWhere == nil {
		// Prepared once per node (see prepared), not once per batch: parsing took a tenth of an ack.
		// Before begin: SQLite's one write connection is the transaction's until it ends.
		for i, st := range statements {
			if len(st.fences) == 0 {
				continue
			}
			var err error
			if perRow[i], err = s.prepared(ctx, s.w, st.head+"id = ? AND claim_token = ?"); err != nil {
				return nil, err
			}
		}
	}
	counts := make([]int64, len(statements))
	if one, ok := singleStatement(statements); ok && s.d.fencedWhere != nil {
		// One statement is atomic on its own: no BEGIN and COMMIT round trips around it.
		where, args := s.d.fencedWhere(statements[one].fences)
		res, err := s.exec(ctx, s.w, statements[one].head+where, append(slices.Clone(statements[one].lead), args...)...)
		if err != nil {
			return nil, err
		}
		counts[one], _ = res.RowsAffected()
		return counts, nil
	}
	tx, end, err := s.beginMaybeUnflushed(ctx, unflushed)
	if err != nil {
		return nil, err
	}
	defer end()
	defer func() { _ = tx.Rollback() }()
	for i, st := range statements {
		if len(st.fences) == 0 {
			continue
		}
		if s.d.fencedWhere != nil {
			// One statement per chunk of fences: one round trip, not one per job.
			for chunk := range slices.Chunk(st.fences, fencesPerStatement) {
				where, args := s.d.fencedWhere(chunk)
				res, err := s.exec(ctx, tx, st.head+where, append(slices.Clone(st.lead), args...)...)
				if err != nil {
					return nil, err
				}
				n, _ := res.RowsAffected()
				counts[i] += n
			}
			continue
		}
		row := tx.StmtContext(ctx, perRow[i].Stmt)
		bound := &stmt{Stmt: row, now: perRow[i].now, clock: s.clock}
		rowCtx, err := s.writeCtx(ctx)
		if err != nil {
			_ = row.Close()
			return nil, err
		}
		for _, f := range st.fences {
			res, err := bound.exec(rowCtx, append(slices.Clone(st.lead), f.Row, f.Token)...)
			if err != nil {
				_ = row.Close()
				return nil, err
			}
			n, _ := res.RowsAffected()
			counts[i] += n
		}
		_ = row.Close()
	}
	return counts, tx.Commit()
}

// unreserve is what every statement that ends a claim writes.
const unreserve = `reserved_by = NULL, claim_token = NULL, reserved_at = NULL, lease_until = NULL, delivered_at = NULL`

// releaseSet returns a row to ready. A claim that had reached a worker (delivered_at set) and ends
// this way ended without an answer: it counts a delivery and a failed one.
const releaseSet = `attempts = attempts + CASE WHEN delivered_at IS NULL THEN 0 ELSE 1 END,
	failures = failures + CASE WHEN delivered_at IS NULL THEN 0 ELSE 1 END, ` + unreserve

func (s *sqlStore) Write(ctx context.Context, b Batch) (int64, error) {
	ack := deleteAcked
	if s.d.ackMarks {
		ack = markAcked
	}
	// Answers, not pushes: a power loss that undoes them delivers the jobs again (at-least-once).
	counts, err := s.execFenced(ctx, true,
		fencedStatement{head: ack, fences: b.Acks},
		fencedStatement{head: `UPDATE rr_jobs SET delivered_at = {now} WHERE `, fences: b.Delivered},
		fencedStatement{head: `UPDATE rr_jobs SET delivered_at = {now}, unique_key = NULL WHERE `, fences: b.DeliveredKeyed})
	if err != nil {
		return 0, fmt.Errorf("ack %d jobs and mark %d delivered: %w", len(b.Acks), len(b.Delivered)+len(b.DeliveredKeyed), err)
	}
	if s.d.ackMarks && s.unswept.Add(counts[0]) >= sweepAfter {
		// The acks have committed; a sweep that fails here is tried again at the node's next
		// upkeep, which reports it.
		_, _ = s.SweepAcked(ctx)
	}
	return counts[0], nil
}

// SweepAcked deletes the rows that acks marked (dialect.ackMarks), in transactions of what
// sweepRowsFor allows, so that pushes and claims get the writer in between.
func (s *sqlStore) SweepAcked(ctx context.Context) (int64, error) {
	if !s.d.ackMarks {
		return 0, nil
	}
	if s.unswept.Load() == 0 && s.swept.Load() {
		return 0, nil // an idle node's upkeep: no write transaction for nothing
	}
	if err := s.check(); err != nil {
		return 0, err
	}
	s.unswept.Store(0)
	var swept int64
	for {
		limit := s.sweepRows.Load()
		if limit == 0 {
			limit = sweepRowsFirst
		}
		n, took, err := s.sweepOnce(ctx, limit)
		if err != nil {
			return swept, fmt.Errorf("delete acked jobs: %w", err)
		}
		swept += n
		if n < limit {
			s.swept.Store(true)
			return swept, nil
		}
		s.sweepRows.Store(sweepRowsFor(n, took)) // a full transaction: its pace is the table's
	}
}

// sweepOnce runs sweepAcked once, without a flush of its own: a power loss that undoes it
// leaves the marks for the next sweep.
func (s *sqlStore) sweepOnce(ctx context.Context, limit int64) (n int64, took time.Duration, err error) {
	sweep, err := s.prepared(ctx, s.w, sweepAcked) // before begin: SQLite's one write connection is the transaction's
	if err != nil {
		return 0, 0, err
	}
	tx, end, err := s.beginMaybeUnflushed(ctx, true)
	if err != nil {
		return 0, 0, err
	}
	defer end()
	defer func() { _ = tx.Rollback() }()
	start := time.Now() // the writer is the sweep's from here: how long it held it
	run, err := s.writeCtx(ctx)
	if err != nil {
		return 0, 0, err
	}
	bound := tx.StmtContext(ctx, sweep.Stmt)
	defer bound.Close()
	res, err := bound.ExecContext(run, limit)
	if err != nil {
		return 0, 0, err
	}
	n, _ = res.RowsAffected()
	err = tx.Commit()
	return n, time.Since(start), err
}

func (s *sqlStore) Extend(ctx context.Context, fences []Fence, lease time.Duration) (int64, error) {
	counts, err := s.execFenced(ctx, false, fencedStatement{head: `UPDATE rr_jobs SET lease_until = {now} + ? WHERE `, fences: fences, lead: []any{lease.Milliseconds()}})
	if err != nil {
		return 0, fmt.Errorf("extend the lease of %d jobs: %w", len(fences), err)
	}
	return counts[0], nil
}

func (s *sqlStore) Release(ctx context.Context, fences []Fence) (int64, error) {
	counts, err := s.execFenced(ctx, false, fencedStatement{head: `UPDATE rr_jobs SET ` + releaseSet + ` WHERE `, fences: fences})
	if err != nil {
		return 0, fmt.Errorf("release %d jobs: %w", len(fences), err)
	}
	return counts[0], nil
}

func (s *sqlStore) Requeue(ctx context.Context, f Fence, r Requeue) (bool, error) {
	if err := s.check(); err != nil {
		return false, err
	}
	h, err := encodeHeaders(r.Headers)
	if err != nil {
		return false, fmt.Errorf("requeue: encode headers: %w", err)
	}
	failed := 0
	if r.Failed {
		failed = 1
	}
	freeKey := ``
	if r.FreeUniqueKey {
		freeKey = `, unique_key = NULL` // see Batch.DeliveredKeyed
	}
	res, err := s.exec(ctx, s.w, `UPDATE rr_jobs
		SET `+unreserve+`, attempts = attempts + 1, failures = failures + ?, headers = ?, available_at = {now} + ?, queued_at = {now}, last_error = ?`+freeKey+`
		WHERE id = ? AND claim_token = ?`, failed, h, r.Delay.Milliseconds(), nullIfEmpty(r.LastError), f.Row, f.Token)
	if err != nil {
		return false, fmt.Errorf("requeue: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// Fail copies the job to the failed jobs and deletes it in one transaction; both statements must
// find the claim, or nothing changes.
func (s *sqlStore) Fail(ctx context.Context, f Fence, reason string, deliveries int64) (ok bool, err error) {
	if err := s.check(); err != nil {
		return false, err
	}
	err = retryConflicts(ctx, func() (err error) {
		ok, err = s.failOnce(ctx, f, reason, deliveries)
		return err
	})
	return ok, err
}

func (s *sqlStore) failOnce(ctx context.Context, f Fence, reason string, deliveries int64) (bool, error) {
	tx, err := s.begin(ctx)
	if err != nil {
		return false, fmt.Errorf("fail job: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	res, err := s.exec(ctx, tx, `INSERT INTO rr_failed_jobs
		(queue, job_id, name, payload, headers, priority, attempts, error, failed_at)
		SELECT queue, job_id, name, payload, headers, priority, ?, ?, {now}
		FROM rr_jobs WHERE id = ? AND claim_token = ?`, deliveries, reason, f.Row, f.Token)
	if err != nil {
		return false, fmt.Errorf("fail job: copy to failed jobs: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return false, nil
	}
	// The copy read the row without locking it: the delete checks the claim again under the row
	// lock, and if another session released the job in between, the copy is rolled back.
	res, err = s.exec(ctx, tx, `DELETE FROM rr_jobs WHERE id = ? AND claim_token = ?`, f.Row, f.Token)
	if err != nil {
		return false, fmt.Errorf("fail job: delete: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return false, nil
	}
	if err = tx.Commit(); err != nil {
		return false, fmt.Errorf("fail job: commit: %w", err)
	}
	return true, nil
}

func (s *sqlStore) RegisterNode(ctx context.Context, n Node) error {
	if err := s.check(); err != nil {
		return err
	}
	_, err := s.exec(ctx, s.w, `INSERT INTO rr_nodes (id, host, pid, started_at, heartbeat_at) VALUES (?, ?, ?, {now}, {now})`,
		n.ID, n.Host, n.PID)
	if err != nil {
		return fmt.Errorf("register node %s: %w", n.ID, err)
	}
	return nil
}

func (s *sqlStore) Heartbeat(ctx context.Context, node string) (bool, error) {
	if err := s.check(); err != nil {
		return false, err
	}
	res, err := s.execPrepared(ctx, `UPDATE rr_nodes SET heartbeat_at = {now} WHERE id = ?`, node)
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
	rows, err := s.query(ctx, s.r, `SELECT id, host, pid, heartbeat_at FROM rr_nodes`)
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	defer rows.Close()
	var out []Node
	for rows.Next() {
		var n Node
		if err := rows.Scan(&n.ID, &n.Host, &n.PID, &n.HeartbeatAt); err != nil {
			return nil, fmt.Errorf("list nodes: %w", err)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// releaseOrphans returns to ready the jobs reserved by nodes that are no longer registered, and
// those whose lease ran out (a node that lost track of a job stops extending it). Acked rows
// awaiting their sweep are held by no node: they stay as they are.
const releaseOrphans = `UPDATE rr_jobs SET ` + releaseSet + `
	WHERE {held} AND (lease_until < {now} OR reserved_by NOT IN (SELECT id FROM rr_nodes))`

func (s *sqlStore) Reap(ctx context.Context, ttl time.Duration, dead []string) (int64, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	// Every node runs this at each heartbeat, so it is a few prepared statements, each atomic on its
	// own, not a transaction. Nodes go first; a job whose node is gone is released by the last
	// statement, now or at the next reap.
	if _, err := s.execPrepared(ctx, `DELETE FROM rr_nodes WHERE heartbeat_at < {now} - ?`, ttl.Milliseconds()); err != nil {
		return 0, fmt.Errorf("reap stale nodes: %w", err)
	}
	for _, id := range dead {
		if _, err := s.exec(ctx, s.w, `DELETE FROM rr_nodes WHERE id = ?`, id); err != nil {
			return 0, fmt.Errorf("reap node %s: %w", id, err)
		}
	}
	res, err := s.execPrepared(ctx, releaseOrphans)
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
	if _, err = s.exec(ctx, tx, `DELETE FROM rr_nodes WHERE id = ?`, node); err != nil {
		return 0, fmt.Errorf("remove node %s: %w", node, err)
	}
	res, err := s.exec(ctx, tx, `UPDATE rr_jobs SET `+releaseSet+` WHERE reserved_by = ?`, node)
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
		_ = st.(*stmt).Close()
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
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	var rows *sql.Rows
	switch s.d.name {
	case "postgres":
		// PostgreSQL 15 has no EXPLAIN (GENERIC_PLAN): force the generic plan of a prepared claim.
		for _, st := range []string{"SET plan_cache_mode = force_generic_plan", "PREPARE rr_claim_explain AS " + s.q(s.d.claimSQL)} {
			if _, err = conn.ExecContext(ctx, st); err != nil {
				return "", fmt.Errorf("explain claim: %w", err)
			}
		}
		defer func() {
			_, _ = conn.ExecContext(context.Background(), "DEALLOCATE rr_claim_explain")
			_, _ = conn.ExecContext(context.Background(), "RESET plan_cache_mode")
		}()
		// The values do not matter: a generic plan ignores them.
		rows, err = conn.QueryContext(ctx, s.d.explainPrefix+"('queue', 100, 'node', 1, 60000)")
	case "mysql":
		rows, err = s.query(ctx, conn, s.d.explainPrefix+s.d.claimSQL, queue, 100, "node", int64(1), int64(60000))
	default:
		rows, err = s.query(ctx, conn, s.d.explainPrefix+s.d.claimSQL, "node", int64(1), int64(60000), queue, 100)
	}
	if err != nil {
		return "", fmt.Errorf("explain claim: %w", err)
	}
	return planText(rows)
}

// planText joins the rows of an EXPLAIN into lines of column=value.
func planText(rows *sql.Rows) (string, error) {
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
