package store

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Overflow routing of a group_by queue: the waiting jobs of a group with too many ready jobs move
// to another queue (usually a pipeline with fewer workers or a lower priority), and while the group
// has jobs waiting there its new pushes go there too.

// OverflowRequest moves the waiting jobs of every group of Queue with more than ReadyOver ready
// jobs to Target.
type OverflowRequest struct {
	Queue, Target string
	ReadyOver     int
}

// OverflowMove is one group moved.
type OverflowMove struct {
	Group string
	Jobs  int64
}

// overflowChunk is how many jobs one statement moves: a big group moves in short statements that
// do not hold the writer (SQLite) or many row locks for long.
const overflowChunk = 1000

// OverflowTurn says whether this node checks the queue's overflow now: one node per interval, by a
// lease in the queue's rr_queues row (no node-local state: the lease moves when its node dies).
func (s *sqlStore) OverflowTurn(ctx context.Context, queue string, interval time.Duration) (bool, error) {
	if err := s.check(); err != nil {
		return false, err
	}
	if _, err := s.exec(ctx, s.w, s.d.insertIgnore(`rr_queues (queue) VALUES (?)`), queue); err != nil {
		return false, fmt.Errorf("overflow turn of queue %s: %w", queue, err)
	}
	res, err := s.exec(ctx, s.w, `UPDATE rr_queues SET overflow_at = {now} + ? WHERE queue = ? AND overflow_at <= {now}`, interval.Milliseconds(), queue)
	if err != nil {
		return false, fmt.Errorf("overflow turn of queue %s: %w", queue, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// Overflow moves the waiting jobs of the groups over the limit, and those still here of the groups
// in overflow, and ends the overflow of groups with nothing left waiting in the target. Returns
// the groups moved.
func (s *sqlStore) Overflow(ctx context.Context, r OverflowRequest) ([]OverflowMove, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	var moves []OverflowMove
	// Groups in overflow first: whatever of theirs still waits here (a push that raced with their
	// move) follows, whatever its count.
	overflowing, err := s.OverflowGroups(ctx, r.Queue)
	if err != nil {
		return nil, err
	}
	for _, g := range slices.Sorted(maps.Keys(overflowing)) {
		n, err := s.moveGroup(ctx, r, g)
		if n > 0 {
			moves = append(moves, OverflowMove{Group: g, Jobs: n})
		}
		if err != nil {
			return moves, err
		}
	}
	// The other groups with a ready job, counted a page at a time.
	var page []string
	check := func() error {
		over, err := s.groupsOver(ctx, r.Queue, page, r.ReadyOver)
		page = page[:0]
		for _, g := range over {
			n, err := s.moveGroup(ctx, r, g)
			if n > 0 {
				moves = append(moves, OverflowMove{Group: g, Jobs: n})
			}
			if err != nil {
				return err
			}
		}
		return err
	}
	err = s.eachReadyGroup(ctx, s.r, r.Queue, func(g string) error {
		if _, moved := overflowing[g]; moved {
			return nil
		}
		if page = append(page, g); len(page) == maxGroupsPerClaim {
			return check()
		}
		return nil
	})
	if err == nil && len(page) > 0 {
		err = check()
	}
	return moves, err
}

// groupReadyCountSQL counts one group's ready jobs up to a cap, in a branch of groupsOver's
// statement: a group of a million jobs costs cap index entries. Arguments: queue, group, cap.
const groupReadyCountSQL = `(SELECT COUNT(*) FROM (SELECT 1 FROM rr_jobs
	WHERE queue = ? AND grp = ? AND reserved_by IS NULL AND available_at <= {now} LIMIT ?) capped)`

// groupsOver says which of the groups have more than limit ready jobs, in one statement.
func (s *sqlStore) groupsOver(ctx context.Context, queue string, groups []string, limit int) ([]string, error) {
	if len(groups) == 0 {
		return nil, nil
	}
	branches := make([]string, len(groups))
	args := make([]any, 0, 3*len(groups))
	for i, g := range groups {
		// The branch's number says which group a count is: UNION ALL does not promise the order.
		branches[i] = `SELECT ` + strconv.Itoa(i) + ` AS branch, ` + groupReadyCountSQL
		args = append(args, queue, g, limit+1)
	}
	rows, err := s.query(ctx, s.r, strings.Join(branches, "\nUNION ALL\n"), args...)
	if err != nil {
		return nil, fmt.Errorf("count ready jobs of %d groups of queue %s: %w", len(groups), queue, err)
	}
	defer rows.Close()
	var over []string
	for rows.Next() {
		var branch, ready int
		if err := rows.Scan(&branch, &ready); err != nil {
			return nil, err
		}
		if ready > limit {
			over = append(over, groups[branch])
		}
	}
	return over, rows.Err()
}

// moveGroup moves a group's waiting jobs to the target, a chunk per transaction, and records the
// group as overflowing (in the same transaction as the first chunk, so pushes follow at once).
func (s *sqlStore) moveGroup(ctx context.Context, r OverflowRequest, group string) (int64, error) {
	var total int64
	for {
		var moved int64
		err := s.retryKeyRaces(ctx, func() error {
			tx, err := s.begin(ctx)
			if err != nil {
				return err
			}
			defer func() { _ = tx.Rollback() }()
			ids, err := s.ids(ctx, tx, `SELECT id FROM rr_jobs WHERE queue = ? AND grp = ? AND reserved_by IS NULL LIMIT ?`, r.Queue, group, overflowChunk)
			if err != nil || len(ids) == 0 {
				return err
			}
			if err = s.dropTakenKeys(ctx, tx, ids, r.Target); err != nil {
				return err
			}
			res, err := s.exec(ctx, tx, `UPDATE rr_jobs SET queue = ? WHERE id IN (`+marks(len(ids))+`) AND queue = ? AND reserved_by IS NULL`,
				append(append([]any{r.Target}, anySlice(ids)...), r.Queue)...)
			if err != nil {
				return err
			}
			if moved, err = res.RowsAffected(); err != nil {
				return err
			}
			if _, err = s.exec(ctx, tx, s.d.insertIgnore(`rr_overflow (queue, grp, target_queue, since) VALUES (?, ?, ?, {now})`), r.Queue, group, r.Target); err != nil {
				return err
			}
			if _, err = s.exec(ctx, tx, `UPDATE rr_overflow SET target_queue = ?, moved = moved + ? WHERE queue = ? AND grp = ?`, r.Target, moved, r.Queue, group); err != nil {
				return err
			}
			return tx.Commit()
		})
		if err != nil {
			return total, fmt.Errorf("move group %q from queue %s to %s: %w", group, r.Queue, r.Target, err)
		}
		total += moved
		if moved < overflowChunk {
			return total, nil
		}
	}
}

// ids reads a column of ids.
func (s *sqlStore) ids(ctx context.Context, on execer, query string, args ...any) ([]int64, error) {
	return queryColumn[int64](ctx, s, on, query, args...)
}

// queryColumn runs a query of one column and reads every row's value.
func queryColumn[T any](ctx context.Context, s *sqlStore, on execer, query string, args ...any) ([]T, error) {
	rows, err := s.query(ctx, on, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var v T
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// OverflowGroups lists the queue's groups in overflow and their target queue, after ending the
// overflow of those with no job left waiting in the target: their next pushes stay here.
func (s *sqlStore) OverflowGroups(ctx context.Context, queue string) (map[string]string, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if _, err := s.exec(ctx, s.w, `DELETE FROM rr_overflow WHERE queue = ? AND NOT EXISTS (
			SELECT 1 FROM rr_jobs j WHERE j.queue = rr_overflow.target_queue AND j.grp = rr_overflow.grp AND j.reserved_by IS NULL)`, queue); err != nil {
		return nil, fmt.Errorf("end overflow of drained groups of queue %s: %w", queue, err)
	}
	rows, err := s.query(ctx, s.r, `SELECT grp, target_queue FROM rr_overflow WHERE queue = ?`, queue)
	if err != nil {
		return nil, fmt.Errorf("overflow groups of queue %s: %w", queue, err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var g, target string
		if err := rows.Scan(&g, &target); err != nil {
			return nil, err
		}
		out[g] = target
	}
	return out, rows.Err()
}

// CountReadyGroups is the number of a group_by queue's groups with a ready job: one index probe
// per group (a page of them per statement), never a scan of their jobs.
func (s *sqlStore) CountReadyGroups(ctx context.Context, queue string) (int64, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	var n int64
	if err := s.eachReadyGroup(ctx, s.r, queue, func(string) error { n++; return nil }); err != nil {
		return n, fmt.Errorf("count ready groups of queue %s: %w", queue, err)
	}
	return n, nil
}
