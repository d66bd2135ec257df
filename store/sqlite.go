package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"modernc.org/sqlite" // pure Go SQLite: RoadRunner builds are CGO_ENABLED=0
	sqlite3 "modernc.org/sqlite/lib"
)

// SQLiteOptions are the connection settings of an SQLite file.
type SQLiteOptions struct {
	Path         string
	Synchronous  string // full | normal | off
	BusyTimeout  time.Duration
	MaxReadConns int
	// SkipMigrations: the schema is applied by hand; only check it.
	SkipMigrations bool
	// MigrateTimeout bounds the schema check or migration (0: none).
	MigrateTimeout time.Duration
	// Clock is the store's time (default time.Now): the file belongs to this host, so its clock is
	// the database's. Tests move it.
	Clock func() time.Time
}

// sqliteDialect: the store's clock is bound as parameter 1 where a statement reads {now}.
var sqliteDialect = dialect{name: "sqlite", claim: sqliteClaim, claimSQL: sqliteClaimSQL,
	explainPrefix: "EXPLAIN QUERY PLAN ", explain: "EXPLAIN QUERY PLAN ", insertIgnore: insertOnConflictDoNothing,
	groupPage: recursiveGroupPage, claimHeads: sqliteClaimHeads,
	groupNames: waitingGroupNames, primaryKeyScan: " NOT INDEXED", historyByMinute: " INDEXED BY rr_history_minute",
	// In process, a statement costs no round trip: a prepared one-row INSERT per job took 1,000
	// jobs in 13 ms here, statements of 20 rows 21 ms and of 500 rows 120 ms (parsing and binding
	// a long statement costs more than it saves).
	rowsPerInsert: 1,
	uniqueInsert:  onConflictUniqueKey, created: insertedOneRow, uniqueViolation: sqliteUniqueViolation,
	addHistory: addHistoryOnConflict,
	// In process, a cancel has nothing to cut short and its watcher costs more than most writes.
	uninterrupted: true,
	// The pusher's ids are random: a delete per ack would write a random page of the job id index
	// per job (migration 0015).
	ackMarks: true,
	// The job id index holds the ids' last 12 characters (migration 0017).
	jobKey: func(id string) string { return "substr(" + id + ", -12)" }}

// onConflictUniqueKey ends the insert of a job on SQLite and PostgreSQL: a job whose key its queue
// holds is not written; any other conflict (none is expected) is still an error.
const onConflictUniqueKey = `ON CONFLICT (queue, unique_key) WHERE unique_key IS NOT NULL DO NOTHING`

// sqliteUniqueViolation: SQLITE_CONSTRAINT_UNIQUE.
func sqliteUniqueViolation(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE
}

// sqliteClaimSQL reserves and returns a batch in one statement. The subquery walks the partial
// claim index in (priority, available_at, id) order and stops after limit rows.
// Arguments: node, token, lease (ms), queue, limit.
// `LIMIT ? + 0`, not `LIMIT ?`: with a bare parameter there, SQLite recompiles the prepared
// statement on every run (about 30 µs, a third of a small claim).
const sqliteClaimSQL = `UPDATE rr_jobs
	SET ` + claimSet + `
	WHERE id IN (
		SELECT id FROM rr_jobs
		WHERE queue = ? AND reserved_by IS NULL AND available_at <= {now}
		ORDER BY priority, available_at, id
		LIMIT ? + 0)
	RETURNING ` + claimedColumns

// sqliteClaimHeads picks, reserves and returns the heads of groups in one statement.
func sqliteClaimHeads(ctx context.Context, s *sqlStore, tx *sql.Tx, c claimArgs, heads []groupHead) (map[string][]Job, error) {
	pick, args := groupHeadsUnion(unionMember{open: `SELECT id FROM (`, limit: `? + 0`, close: `) head`}, c.queue, heads)
	// One statement under SQLite's one writer: nothing can move or take a row between the pick and
	// the update, so no condition beyond the ids (one on the queue would tempt the planner to scan
	// the queue's index instead of looking the ids up).
	rows, err := s.query(ctx, tx, `UPDATE rr_jobs SET `+claimSet+` WHERE id IN (`+pick+`)
		RETURNING `+claimedColumns+`, grp`, append([]any{c.node, c.token, c.leaseMs}, args...)...)
	if err != nil {
		return nil, err
	}
	return scanClaimedGroups(rows, c.token)
}

// sqliteClaim runs the claim prepared: SQLite would otherwise parse and plan it on every claim.
// At `synchronous: full` it commits without a flush of its own, like the answers (see
// sqliteUnflushed): a claim that a power loss undoes leaves its jobs waiting, to be claimed and
// delivered again, which at-least-once allows; the acks that followed it are undone with it.
func sqliteClaim(ctx context.Context, s *sqlStore, c claimArgs) ([]Job, error) {
	claim, err := s.prepared(ctx, s.w, sqliteClaimSQL) // before begin: the one write connection is the transaction's
	if err != nil {
		return nil, err
	}
	tx, end, err := s.beginMaybeUnflushed(ctx, true)
	if err != nil {
		return nil, err
	}
	defer end()
	defer func() { _ = tx.Rollback() }()
	run, err := s.writeCtx(ctx)
	if err != nil {
		return nil, err
	}
	bound := tx.StmtContext(run, claim.Stmt)
	defer bound.Close()
	rows, err := bound.QueryContext(run, claim.args([]any{c.node, c.token, c.leaseMs, c.queue, c.limit})...)
	if err != nil {
		return nil, err
	}
	jobs, err := scanClaimed(rows, c.token)
	if err != nil {
		return nil, err
	}
	return jobs, tx.Commit()
}

// sqliteUnflushed begins write transactions whose commit does not wait for the disk: the write
// connection, held for the transaction, runs it at `synchronous = NORMAL`, then goes back to FULL.
// In WAL mode such a commit is atomic and survives rr crashing; only a power loss can undo it,
// and only until the next flushed commit (which flushes the whole WAL, the frames before its own
// included) or checkpoint. For claims and their answers (acks, delivery marks): a claim or an ack
// undone delivers its job again, which at-least-once allows, and each claim and answer batch no
// longer pays a flush (on a VM, a flush costs CPU as well as time). Pushes still wait for theirs.
func sqliteUnflushed(s *sqlStore) func(ctx context.Context) (*sql.Tx, func(), error) {
	return func(ctx context.Context) (*sql.Tx, func(), error) {
		run, err := s.writeCtx(ctx)
		if err != nil {
			return nil, nil, err
		}
		conn, err := s.w.Conn(run)
		if err != nil {
			return nil, nil, err
		}
		end := func() {
			if _, err := conn.ExecContext(context.Background(), `PRAGMA synchronous = FULL`); err != nil {
				// A connection left unflushed must not serve a push: the pool drops it.
				_ = conn.Raw(func(any) error { return driver.ErrBadConn })
			}
			_ = conn.Close()
		}
		if _, err := conn.ExecContext(run, `PRAGMA synchronous = NORMAL`); err != nil {
			end()
			return nil, nil, err
		}
		tx, err := conn.BeginTx(run, nil)
		if err != nil {
			end()
			return nil, nil, err
		}
		return tx, end, nil
	}
}

// writerCacheKiB is the write connection's page cache (SQLite's default is 2,000 KiB): filled only
// as far as the database's size, at most 32 MB more of rr's memory.
const writerCacheKiB = 32_000

// OpenSQLite opens (creating if needed) an SQLite file in WAL mode and applies the migrations.
func OpenSQLite(ctx context.Context, o SQLiteOptions) (Store, error) {
	if dir := filepath.Dir(o.Path); dir != "" {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("sqlite file %s: directory %s does not exist (create it, or point dsn at a writable directory)", o.Path, dir)
		}
	}
	// A new database is created readable by rr's user alone; SQLite gives its -wal and -shm files
	// the database file's permissions.
	if f, err := os.OpenFile(o.Path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
		_ = f.Close()
	} else if !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("sqlite file %s: %w", o.Path, err)
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", o.BusyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous("+o.Synchronous+")")
	q.Add("_pragma", "foreign_keys(on)")
	// Writers take the write lock at BEGIN: a deferred transaction that later writes fails with
	// SQLITE_BUSY at once instead of waiting for busy_timeout.
	q.Set("_txlock", "immediate")
	dsn := o.Path + "?" + q.Encode()

	// The writer keeps its page cache from one transaction to the next (no other connection of
	// this process writes), and it does every claim, mark and sweep: with SQLite's default 2 MB it
	// read the random pages of the job-id index back from the OS again and again once a backlog
	// outgrew a few thousand jobs. Readers keep the default: each commit of the writer empties
	// their caches anyway.
	w, err := sql.Open("sqlite", dsn+"&"+url.Values{"_pragma": {fmt.Sprintf("cache_size(-%d)", writerCacheKiB)}}.Encode())
	if err != nil {
		return nil, fmt.Errorf("open sqlite file %s: %w", o.Path, err)
	}
	// One writer at a time is all SQLite allows; queueing writers in Go is cheaper than busy waits.
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)

	r, err := sql.Open("sqlite", dsn)
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("open sqlite file %s: %w", o.Path, err)
	}
	r.SetMaxOpenConns(max(o.MaxReadConns, 1))

	clock := o.Clock
	if clock == nil {
		clock = time.Now
	}
	s := &sqlStore{d: sqliteDialect, w: w, r: r, clock: clock}
	opened, err := os.Stat(o.Path)
	if err != nil {
		return nil, fmt.Errorf("sqlite file %s: %w", o.Path, err)
	}
	s.sound = func() error { return sameFile(o.Path, opened) }
	if o.Synchronous == "full" {
		s.beginUnflushed = sqliteUnflushed(s)
	}
	if err := s.start(ctx, !o.SkipMigrations, 0, o.MigrateTimeout); err != nil {
		return nil, fmt.Errorf("sqlite file %s (check the path and its permissions): %w", o.Path, err)
	}
	return s, nil
}

// ErrFileGone: the SQLite file was deleted or replaced while the store had it open.
var ErrFileGone = errors.New("the SQLite file was deleted or replaced while rr had it open: what is written now would be lost; restore the file or restart rr")

// sameFile checks that path is still the file that was opened. SQLite writes on through its open
// descriptor after the file is deleted: every push would be acknowledged, then lost at restart.
// One stat per call: a microsecond beside a write.
func sameFile(path string, opened os.FileInfo) error {
	now, err := os.Stat(path)
	if err != nil || !os.SameFile(opened, now) {
		return fmt.Errorf("sqlite file %s: %w", path, ErrFileGone)
	}
	return nil
}
