package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// migrationLockKey is the advisory lock every node takes to migrate ("rrsql" in ASCII).
const migrationLockKey = 0x7272_7371_6c

var postgresDialect = dialect{
	name:     "postgres",
	numbered: true,
	// statement_timestamp() is stable within a statement, so a comparison with it can bound an
	// index scan (clock_timestamp() could not).
	now:       `(extract(epoch FROM statement_timestamp()) * 1000)::bigint`,
	forUpdate: " FOR UPDATE",
	claim:     postgresClaim,
	claimSQL:  postgresClaimSQL,
	// A generic plan is what a prepared claim may run after five executions: check that one.
	explainPrefix: "EXPLAIN EXECUTE rr_claim_explain",
	explain:       `EXPLAIN `,
	fencedWhere:   postgresFencedWhere,
	insertIgnore:  insertOnConflictDoNothing,
	lockMigrations: func(ctx context.Context, c *sql.Conn) (func(), error) {
		if _, err := c.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, migrationLockKey); err != nil {
			return nil, err
		}
		return func() { _, _ = c.ExecContext(context.Background(), `SELECT pg_advisory_unlock($1)`, migrationLockKey) }, nil
	},
}

// postgresFencedWhere finds the rows by primary key (= ANY) and keeps those whose claim token
// still matches, with the fences as two arrays: the statement text is the same for every batch.
func postgresFencedWhere(fences []Fence) (string, []any) {
	ids, tokens := make([]int64, len(fences)), make([]int64, len(fences))
	for i, f := range fences {
		ids[i], tokens[i] = f.Row, f.Token
	}
	return `id = ANY(?::bigint[]) AND (id, claim_token) IN (SELECT * FROM unnest(?::bigint[], ?::bigint[]))`,
		[]any{ids, ids, tokens}
}

func insertOnConflictDoNothing(into string) string {
	return `INSERT INTO ` + into + ` ON CONFLICT DO NOTHING`
}

// postgresClaimSQL is one statement. The MATERIALIZED CTE is a planner fence: it picks at most
// limit ids from the partial claim index, skipping rows other nodes hold locked, before the update.
// The update looks the ids up by primary key (= ANY(ARRAY(...))): joining the CTE instead lets a
// generic plan hash-join it against a sequential scan of the whole table.
// Arguments: queue, limit, node, token, lease (ms).
const postgresClaimSQL = `WITH c AS MATERIALIZED (
		SELECT id FROM rr_jobs
		WHERE queue = ? AND reserved_by IS NULL AND available_at <= {now}
		ORDER BY priority, available_at, id
		LIMIT ?
		FOR NO KEY UPDATE SKIP LOCKED)
	UPDATE rr_jobs j
	SET ` + claimSet + `
	WHERE j.id = ANY(ARRAY(SELECT id FROM c))
	RETURNING j.id, j.job_id, j.name, j.payload, j.headers, j.priority, j.available_at, j.attempts, j.failures, j.auto_ack`

func postgresClaim(ctx context.Context, s *sqlStore, c claimArgs) ([]Job, error) {
	rows, err := s.query(ctx, s.w, postgresClaimSQL, c.queue, c.limit, c.node, c.token, c.leaseMs)
	if err != nil {
		return nil, err
	}
	return scanClaimed(rows, c.token)
}

// OpenPostgres connects with pgx and applies the migrations. ctx bounds the start.
func OpenPostgres(ctx context.Context, o ServerOptions) (Store, error) {
	cfg, err := pgx.ParseConfig(o.DSN)
	if err != nil {
		return nil, fmt.Errorf("parse dsn: %w", err)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = o.ConnectTimeout
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(o.MaxOpenConns)
	db.SetMaxIdleConns(o.MaxOpenConns)
	s := &sqlStore{d: postgresDialect, w: db, r: db, clock: o.clock()}
	s.listen = func(ctx context.Context, onReady func(string)) error {
		return postgresListen(ctx, cfg, onReady)
	}
	if err := s.start(ctx, o.Migrate, o.ConnectTimeout, o.MigrateTimeout); err != nil {
		return nil, err
	}
	return s, nil
}

// postgresListen holds one session connection on LISTEN rr_jobs (the trigger of migration 0002
// notifies it). It needs a real session: not a PgBouncer transaction-mode pool.
func postgresListen(ctx context.Context, cfg *pgx.ConnConfig, onReady func(string)) error {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("listen: connect: %w", err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	if _, err = conn.Exec(ctx, "LISTEN rr_jobs"); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	onReady("") // (re)connected: notifications may have been missed, every consumer should look
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("listen: %w", err)
		}
		onReady(n.Payload)
	}
}
