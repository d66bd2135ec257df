package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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
	// Run, so that the plan shows what the subplans of a recursive CTE do.
	explain:      `EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) `,
	fencedWhere:  postgresFencedWhere,
	insertIgnore: insertOnConflictDoNothing,
	uniqueInsert: onConflictUniqueKey,
	created:      insertedOneRow,
	uniqueViolation: func(err error) bool {
		var pe *pgconn.PgError
		return errors.As(err, &pe) && pe.Code == "23505" // unique_violation
	},
	groupPage:  recursiveGroupPage,
	groupNames: waitingGroupNames,
	claimHeads: postgresClaimHeads,
	addHistory: addHistoryOnConflict,
	// A round trip per statement: 500 rows (4,500 of the 65,535 placeholders a statement takes)
	// inserted 1,000 jobs in a quarter or less of the time of a prepared one-row INSERT per job.
	rowsPerInsert: 500,
	// A group's head comes out of rr_jobs_group in order, a few rows. With LIMIT g.want unknown at
	// planning, the planner guesses 10% of the group and, once the index is bloated (a drained
	// backlog leaves a large B-tree over a small heap), scans the heap and sorts it for every group.
	groupClaimSetup: `SET LOCAL enable_sort = off`,
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

// postgresClaimHeadsSQL picks the heads of groups with one LATERAL probe of rr_jobs_group per
// group, reserves and returns them: one statement whose text is the same for any groups (planned
// once, unlike a UNION ALL branch per group). The update checks again that each row is still
// the queue's and unreserved: an operator's Move or Flush may have taken it. Arguments: groups,
// wants, queue, node, token, lease (ms), queue.
const postgresClaimHeadsSQL = `WITH picked AS MATERIALIZED (
		SELECT h.id FROM unnest(?::text[], ?::bigint[]) AS g (grp, want)
		CROSS JOIN LATERAL (SELECT id FROM rr_jobs
			WHERE queue = ? AND reserved_by IS NULL AND grp = g.grp AND available_at <= {now}
			ORDER BY priority, available_at, id
			LIMIT g.want) h)
	UPDATE rr_jobs SET ` + claimSet + `
	WHERE id = ANY(ARRAY(SELECT id FROM picked)) AND queue = ? AND reserved_by IS NULL
	RETURNING ` + claimedColumns + `, grp`

func postgresClaimHeads(ctx context.Context, s *sqlStore, tx *sql.Tx, c claimArgs, heads []groupHead) (map[string][]Job, error) {
	groups, wants := make([]string, len(heads)), make([]int64, len(heads))
	for i, h := range heads {
		groups[i], wants[i] = h.group, int64(h.want)
	}
	rows, err := s.query(ctx, tx, postgresClaimHeadsSQL, groups, wants, c.queue, c.node, c.token, c.leaseMs, c.queue)
	if err != nil {
		return nil, err
	}
	return scanClaimedGroups(rows, c.token)
}

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
