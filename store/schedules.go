package store

import (
	"context"
	"database/sql"
	"fmt"
)

// A schedule's ticks (sql.schedules) are pushed once across every node by rr_schedules: one row
// per schedule holding the last tick pushed. Each node that sees a tick due runs Tick, and only
// the transaction that moves the row forward to that tick inserts the tick's job; a node that
// comes second finds the row already there and inserts nothing. The row lock (PostgreSQL,
// MySQL) or the one writer (SQLite) orders concurrent attempts, and the primary key on the name
// settles two nodes creating the row at once.

// Tick is one tick of a schedule.
type Tick struct {
	Schedule string
	// At is the tick's time (unix milliseconds).
	At int64
	// Job is inserted if this call advances the schedule to At; nil: only advance (a missed tick
	// skipped, or a schedule seen for the first time).
	Job *NewJob
}

// Tick advances the schedule's last tick to t.At if it is behind (or the schedule has no row
// yet) and then inserts t.Job, in one transaction. False: another node had already advanced it
// to At or beyond, and nothing changed.
func (s *sqlStore) Tick(ctx context.Context, t Tick) (advanced bool, err error) {
	if err := s.check(); err != nil {
		return false, err
	}
	err = retryConflicts(ctx, func() (err error) {
		advanced, err = s.tickOnce(ctx, t)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("tick %d of schedule %s: %w", t.At, t.Schedule, err)
	}
	return advanced, nil
}

func (s *sqlStore) tickOnce(ctx context.Context, t Tick) (bool, error) {
	tx, err := s.begin(ctx)
	if err != nil {
		return false, err
	}
	defer func() { _ = tx.Rollback() }()
	res, err := s.exec(ctx, tx, `UPDATE rr_schedules SET last_tick = ?, updated_at = {now} WHERE name = ? AND last_tick < ?`,
		t.At, t.Schedule, t.At)
	if err != nil {
		return false, err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		// Behind no more, or no row: the row is created here unless another session has one.
		if res, err = s.exec(ctx, tx, s.d.insertIgnore(`rr_schedules (name, last_tick, updated_at) VALUES (?, ?, {now})`), t.Schedule, t.At); err != nil {
			return false, err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return false, nil
		}
	}
	if t.Job != nil {
		// A job whose unique key (from the schedule's headers) is held is not written: the tick
		// is still pushed, as a duplicate push succeeds.
		if _, err := s.insert(ctx, tx, *t.Job); err != nil {
			return false, err
		}
	}
	return true, tx.Commit()
}

// ScheduleTicks returns the last tick of every schedule with a row (unix milliseconds).
func (s *sqlStore) ScheduleTicks(ctx context.Context) (map[string]int64, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	rows, err := s.query(ctx, s.r, `SELECT name, last_tick FROM rr_schedules`)
	if err != nil {
		return nil, fmt.Errorf("read schedules: %w", err)
	}
	return scanTicks(rows)
}

func scanTicks(rows *sql.Rows) (map[string]int64, error) {
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var (
			name string
			at   int64
		)
		if err := rows.Scan(&name, &at); err != nil {
			return nil, fmt.Errorf("read schedules: %w", err)
		}
		out[name] = at
	}
	return out, rows.Err()
}
