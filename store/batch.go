package store

import (
	"context"
	"fmt"
	"strings"
)

// batchBytesPerStatement bounds the values of one multi-row INSERT of a batch, to keep a statement
// of large payloads under MySQL's max_allowed_packet (16 MB by default on MariaDB, 64 MB on
// MySQL 8). Each dialect's rowsPerInsert bounds its rows.
const batchBytesPerStatement = 4 << 20

// InsertBatch commits jobs in one transaction, all of them or none, in INSERTs of up to the
// dialect's rowsPerInsert rows (BenchmarkInsertBatch compares the sizes on each database).
func (s *sqlStore) InsertBatch(ctx context.Context, jobs []NewJob) error {
	if err := s.check(); err != nil {
		return err
	}
	if len(jobs) == 0 {
		return nil
	}
	// Every job is encoded before anything is written.
	rows := make([][]any, len(jobs))
	for i, j := range jobs {
		args, err := insertArgs(j)
		if err != nil {
			return err
		}
		rows[i] = args
	}
	err := retryConflicts(ctx, func() error {
		if s.d.rowsPerInsert <= 1 {
			return s.insertRowByRow(ctx, rows)
		}
		return s.insertMultiRow(ctx, rows)
	})
	if err != nil {
		return fmt.Errorf("insert a batch of %d jobs: %w", len(jobs), err)
	}
	return nil
}

// insertRowByRow runs the one-row INSERT, prepared once per node, for each job in one transaction.
func (s *sqlStore) insertRowByRow(ctx context.Context, rows [][]any) error {
	// Before begin: SQLite's one write connection is the transaction's until it ends.
	one, err := s.prepared(ctx, s.w, insertJobSQL)
	if err != nil {
		return err
	}
	tx, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	row := tx.StmtContext(ctx, one.Stmt)
	defer row.Close()
	bound := &stmt{Stmt: row, now: one.now, clock: s.clock}
	// The transaction is bound to ctx; its statements need not be one by one (see execFencedOnce).
	rowCtx := context.WithoutCancel(ctx)
	for i, args := range rows {
		if _, err := bound.exec(rowCtx, args...); err != nil {
			return fmt.Errorf("job %d (id %s): %w", i+1, args[1], err)
		}
	}
	return tx.Commit()
}

// insertMultiRow inserts the jobs in statements of up to rowsPerInsert rows in one transaction:
// one round trip per statement, not per job.
func (s *sqlStore) insertMultiRow(ctx context.Context, rows [][]any) error {
	tx, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	for from := 0; from < len(rows); {
		n, size := 0, 0
		for from+n < len(rows) && n < s.d.rowsPerInsert && (n == 0 || size < batchBytesPerStatement) {
			r := rows[from+n]
			size += len(r[3].([]byte)) + len(r[4].([]byte)) + len(r[1].(string)) + len(r[2].(string))
			n++
		}
		args := make([]any, 0, n*len(rows[from]))
		for _, r := range rows[from : from+n] {
			args = append(args, r...)
		}
		// The text depends on the number of rows: rendered, not cached (see renderOnce).
		r := s.renderOnce(insertJob + insertRow + strings.Repeat(", "+insertRow, n-1))
		if r.now {
			args = append([]any{s.clock().UnixMilli()}, args...)
		}
		if _, err := tx.ExecContext(ctx, r.text, args...); err != nil {
			return fmt.Errorf("jobs %d to %d: %w", from+1, from+n, err)
		}
		from += n
	}
	return tx.Commit()
}
