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
// dialect's rowsPerInsert rows (BenchmarkInsertBatch compares the sizes on each database). A job
// with a unique key goes in a one-row INSERT of its own, in its place in the batch, so that the
// answer says whether it was created (MySQL cannot tell that of one row of many).
func (s *sqlStore) InsertBatch(ctx context.Context, jobs []NewJob) (created []bool, err error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if len(jobs) == 0 {
		return nil, nil
	}
	// Every job is encoded before anything is written.
	rows := make([][]any, len(jobs))
	for i, j := range jobs {
		args, err := insertArgs(j)
		if err != nil {
			return nil, err
		}
		rows[i] = args
	}
	err = retryConflicts(ctx, func() (err error) {
		if s.d.rowsPerInsert <= 1 {
			created, err = s.insertRowByRow(ctx, rows)
		} else {
			created, err = s.insertMultiRow(ctx, rows)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("insert a batch of %d jobs: %w", len(jobs), err)
	}
	return created, nil
}

// hasKey: the row (insertArgs) has a unique key.
func hasKey(row []any) bool { return row[len(row)-1] != nil }

// insertRowByRow runs the one-row INSERT of a push, prepared once per node, for each job in one
// transaction.
func (s *sqlStore) insertRowByRow(ctx context.Context, rows [][]any) ([]bool, error) {
	// Before begin: SQLite's one write connection is the transaction's until it ends.
	one, err := s.prepared(ctx, s.w, insertJobSQL+s.d.uniqueInsert)
	if err != nil {
		return nil, err
	}
	tx, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = tx.Rollback() }()
	row := tx.StmtContext(ctx, one.Stmt)
	defer row.Close()
	bound := &stmt{Stmt: row, now: one.now, clock: s.clock}
	rowCtx, err := s.writeCtx(ctx)
	if err != nil {
		return nil, err
	}
	created := make([]bool, len(rows))
	for i, args := range rows {
		res, err := bound.exec(rowCtx, args...)
		if err == nil {
			created[i], err = s.d.created(res)
		}
		if err != nil {
			return nil, fmt.Errorf("job %d (id %s): %w", i+1, args[1], err)
		}
	}
	return created, tx.Commit()
}

// insertMultiRow inserts the jobs in statements of up to rowsPerInsert rows in one transaction:
// one round trip per statement, not per job. A job with a unique key is a statement of its own.
func (s *sqlStore) insertMultiRow(ctx context.Context, rows [][]any) ([]bool, error) {
	tx, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = tx.Rollback() }()
	created := make([]bool, len(rows))
	for from := 0; from < len(rows); {
		if hasKey(rows[from]) {
			res, err := s.exec(ctx, tx, insertJobSQL+s.d.uniqueInsert, rows[from]...)
			if err == nil {
				created[from], err = s.d.created(res)
			}
			if err != nil {
				return nil, fmt.Errorf("job %d (id %s): %w", from+1, rows[from][1], err)
			}
			from++
			continue
		}
		n, size := 0, 0
		for from+n < len(rows) && !hasKey(rows[from+n]) && n < s.d.rowsPerInsert && (n == 0 || size < batchBytesPerStatement) {
			r := rows[from+n]
			size += len(r[3].([]byte)) + len(r[4].([]byte)) + len(r[1].(string)) + len(r[2].(string))
			created[from+n] = true
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
			return nil, fmt.Errorf("jobs %d to %d: %w", from+1, from+n, err)
		}
		from += n
	}
	return created, tx.Commit()
}
