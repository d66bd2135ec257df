package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

var mysqlDialect = dialect{
	name:               "mysql",
	claim:              mysqlClaim,
	claimSQL:           mysqlClaimSQL,
	explainPrefix:      "EXPLAIN ",
	noTransactionalDDL: true,
	txOptions:          &sql.TxOptions{Isolation: sql.LevelReadCommitted},
	fencedWhere:        mysqlFencedWhere,
	lockMigrations: func(ctx context.Context, c *sql.Conn) (func(), error) {
		var got sql.NullInt64
		if err := c.QueryRowContext(ctx, `SELECT GET_LOCK('rr_sql_migrations', 60)`).Scan(&got); err != nil {
			return nil, err
		}
		if got.Int64 != 1 {
			return nil, errors.New("another node held the migration lock for 60s")
		}
		return func() { _, _ = c.ExecContext(context.Background(), `SELECT RELEASE_LOCK('rr_sql_migrations')`) }, nil
	},
}

// mysqlFencedWhere finds the rows by a primary key range (id IN) and keeps those whose claim token
// still matches (a row constructor list).
func mysqlFencedWhere(fences []Fence) (string, []any) {
	args := make([]any, 0, 3*len(fences))
	for _, f := range fences {
		args = append(args, f.Row)
	}
	for _, f := range fences {
		args = append(args, f.Row, f.Token)
	}
	return "id IN (?" + strings.Repeat(", ?", len(fences)-1) + ") AND (id, claim_token) IN ((?, ?)" +
		strings.Repeat(", (?, ?)", len(fences)-1) + ")", args
}

// mysqlClaimableWhere selects the jobs of a queue that can be claimed now. Arguments: queue, now.
const mysqlClaimableWhere = `WHERE queue = ? AND reserved_by IS NULL AND available_at <= ?`

// mysqlClaimSQL is the locking read of the claim. Arguments: queue, now, limit.
const mysqlClaimSQL = `SELECT ` + claimedColumns + ` FROM rr_jobs ` + mysqlClaimableWhere + `
	ORDER BY priority, available_at, id
	LIMIT ?
	FOR UPDATE SKIP LOCKED`

// mysqlReadySQL finds whether the queue has a job to claim, from the claim index alone.
const mysqlReadySQL = `SELECT 1 FROM rr_jobs ` + mysqlClaimableWhere + ` LIMIT 1`

// mysqlClaim: MySQL and MariaDB have no UPDATE ... RETURNING, so a locking read with SKIP LOCKED
// and an update by primary key share one short READ COMMITTED transaction (no gap locks).
//
// A plain read goes first: an idle poll is then one statement (kept prepared), not a transaction
// of six round trips.
func mysqlClaim(ctx context.Context, s *sqlStore, c claimArgs) ([]Job, error) {
	probe, err := s.prepared(ctx, s.r, mysqlReadySQL)
	if err != nil {
		return nil, err
	}
	var ready int
	switch err := probe.QueryRowContext(ctx, c.queue, c.now).Scan(&ready); {
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, err
	}
	var out []Job
	err = retryConflicts(ctx, func() error {
		out = nil
		tx, err := s.begin(ctx)
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback() }()
		rows, err := tx.QueryContext(ctx, mysqlClaimSQL, c.queue, c.now, c.limit)
		if err != nil {
			return err
		}
		jobs, err := scanClaimed(rows, c.token)
		if err != nil || len(jobs) == 0 {
			return err
		}
		args := make([]any, 0, len(jobs)+4)
		args = append(args, c.node, c.token, c.now, c.leaseUntil)
		for _, j := range jobs {
			args = append(args, j.Row)
		}
		marks := strings.TrimSuffix(strings.Repeat("?,", len(jobs)), ",")
		if _, err = tx.ExecContext(ctx, `UPDATE rr_jobs SET reserved_by = ?, claim_token = ?, reserved_at = ?, lease_until = ?, attempts = attempts + 1
			WHERE id IN (`+marks+`)`, args...); err != nil {
			return err
		}
		if err = tx.Commit(); err != nil {
			return err
		}
		for i := range jobs {
			jobs[i].Attempts++
		}
		out = jobs
		return nil
	})
	return out, err
}

// OpenMySQL connects with go-sql-driver/mysql and applies the migrations.
func OpenMySQL(ctx context.Context, dsn string, maxOpen int, migrate bool) (Store, error) {
	cfg, err := mysql.ParseDSN(strings.TrimPrefix(dsn, "mysql://"))
	if err != nil {
		return nil, fmt.Errorf("parse dsn: %w", err)
	}
	cfg.ParseTime = true
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("parse dsn: %w", err)
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(maxOpen)
	db.SetMaxIdleConns(maxOpen)
	db.SetConnMaxLifetime(5 * time.Minute)
	s := &sqlStore{d: mysqlDialect, w: db, r: db}
	if err := s.start(ctx, migrate); err != nil {
		return nil, err
	}
	return s, nil
}
