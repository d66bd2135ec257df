package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
)

// Fair scheduling across the groups of a queue (pipeline option group_by).
//
// A job's group is stored in rr_jobs.grp at push (NULL for pipelines without group_by). A group
// claim takes turns with the other group claims of its queue (it locks the queue's rr_queues row;
// on SQLite the one writer does that), so that:
//   - round robin holds across nodes: the cursor (the group served last) is in that row, and each
//     claim starts with the group after it;
//   - group_concurrency is exact across nodes: a group's reserved jobs are counted under the lock
//     and no other claim can add to them meanwhile. Nothing is counted in a column: a slot frees when
//     its row is deleted (ack, fail) or released (requeue, nack, reaper), so a crashed node cannot
//     leak one.
//
// Its cost follows the batch, not the backlog: one index probe per group visited (the next group
// after the cursor with a ready job) and one statement per group served (its head jobs, in
// priority then FIFO order, straight from the index).

// groupNextSQL finds the next group after a cursor with a ready job. Arguments: queue, cursor.
const groupNextSQL = `SELECT grp FROM rr_jobs
	WHERE queue = ? AND reserved_by IS NULL AND grp IS NOT NULL AND grp > ? AND available_at <= {now}
	ORDER BY grp LIMIT 1`

// groupFirstSQL finds the first group with a ready job. Argument: queue.
const groupFirstSQL = `SELECT grp FROM rr_jobs
	WHERE queue = ? AND reserved_by IS NULL AND grp IS NOT NULL AND grp >= '' AND available_at <= {now}
	ORDER BY grp LIMIT 1`

// groupReservedSQL counts each group's reserved jobs: what group_concurrency bounds. Reserved rows
// are the jobs in flight in the whole cluster, a few per worker. Argument: queue.
const groupReservedSQL = `SELECT grp, COUNT(*) FROM rr_jobs
	WHERE queue = ? AND reserved_by IS NOT NULL AND grp IS NOT NULL GROUP BY grp`

// groupClaimedSQL reads back the rows one claim reserved. Arguments: node, token.
const groupClaimedSQL = `SELECT ` + claimedColumns + `, grp FROM rr_jobs WHERE reserved_by = ? AND claim_token = ?`

// groupClaim reserves up to c.limit ready jobs shared round robin across the queue's groups, at
// most c.groupLimit reserved per group (0: no limit).
func (s *sqlStore) groupClaim(ctx context.Context, c claimArgs) ([]Job, error) {
	var out []Job
	err := retryConflicts(ctx, func() error {
		tx, err := s.begin(ctx)
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback() }()
		cursor, err := s.lockQueue(ctx, tx, c.queue)
		if err != nil {
			return err
		}
		var reserved map[string]int
		if c.groupLimit > 0 {
			if reserved, err = s.groupReserved(ctx, tx, c.queue); err != nil {
				return err
			}
		}
		free := func(g string) int {
			if c.groupLimit == 0 {
				return c.limit
			}
			return c.groupLimit - reserved[g]
		}
		groups, err := s.readyGroups(ctx, tx, c.queue, cursor, c.limit, func(g string) bool { return free(g) > 0 })
		if err != nil || len(groups) == 0 {
			return err
		}
		// Rounds: each group takes an equal share of what is left (at least one job), within its
		// free slots; a group that had fewer ready jobs than its share drops out.
		left, taken := c.limit, map[string]int{}
		active := groups
		for left > 0 && len(active) > 0 {
			share := max(1, left/len(active))
			var next []string
			for _, g := range active {
				want := min(share, left, free(g)-taken[g])
				if want <= 0 {
					continue
				}
				n, err := s.claimGroupHead(ctx, tx, c, g, want)
				if err != nil {
					return err
				}
				taken[g] += n
				left -= n
				if n == want && free(g)-taken[g] > 0 {
					next = append(next, g)
				}
				if left == 0 {
					break
				}
			}
			active = next
		}
		if _, err = s.exec(ctx, tx, `UPDATE rr_queues SET cursor_grp = ? WHERE queue = ?`, groups[len(groups)-1], c.queue); err != nil {
			return err
		}
		rows, err := s.query(ctx, tx, groupClaimedSQL, c.node, c.token)
		if err != nil {
			return err
		}
		jobs, err := scanClaimedGroups(rows, c.token)
		if err != nil {
			return err
		}
		if err = tx.Commit(); err != nil {
			return err
		}
		out = roundRobin(groups, jobs)
		return nil
	})
	return out, err
}

// lockQueue takes the queue's turn for group claims and returns its cursor ("" before the first).
func (s *sqlStore) lockQueue(ctx context.Context, tx *sql.Tx, queue string) (cursor sql.NullString, err error) {
	for range 2 {
		err = s.queryRow(ctx, tx, `SELECT cursor_grp FROM rr_queues WHERE queue = ?`+s.d.forUpdate, queue).Scan(&cursor)
		if !errors.Is(err, sql.ErrNoRows) {
			return cursor, err
		}
		if _, err = s.exec(ctx, tx, s.d.insertIgnore(`rr_queues (queue) VALUES (?)`), queue); err != nil {
			return cursor, err
		}
	}
	return cursor, err
}

// groupReserved counts the reserved jobs of each group of the queue.
func (s *sqlStore) groupReserved(ctx context.Context, tx *sql.Tx, queue string) (map[string]int, error) {
	rows, err := s.query(ctx, tx, groupReservedSQL, queue)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var (
			g string
			n int
		)
		if err := rows.Scan(&g, &n); err != nil {
			return nil, err
		}
		out[g] = n
	}
	return out, rows.Err()
}

// readyGroups lists up to limit groups with a ready job that may take one (ok), in round-robin
// order: those after the cursor, then from the first one round to the cursor.
func (s *sqlStore) readyGroups(ctx context.Context, tx *sql.Tx, queue string, cursor sql.NullString, limit int, ok func(string) bool) ([]string, error) {
	var out []string
	after, wrapped := cursor, !cursor.Valid
	for len(out) < limit {
		g, found, err := s.nextReadyGroup(ctx, tx, queue, after)
		if err != nil {
			return nil, err
		}
		if !found {
			if wrapped {
				return out, nil
			}
			after, wrapped = sql.NullString{}, true
			continue
		}
		if wrapped && cursor.Valid && g > cursor.String || slices.Contains(out, g) {
			return out, nil // round the whole circle
		}
		after = sql.NullString{String: g, Valid: true}
		if ok(g) {
			out = append(out, g)
		}
	}
	return out, nil
}

// claimGroupHead reserves up to n of a group's ready jobs, its head in (priority, available_at,
// id) order, and says how many it got.
func (s *sqlStore) claimGroupHead(ctx context.Context, tx *sql.Tx, c claimArgs, group string, n int) (int, error) {
	got, err := s.d.claimGroupHead(ctx, s, tx, c, group, n)
	if err != nil {
		return 0, fmt.Errorf("claim jobs of group %q: %w", group, err)
	}
	return got, nil
}

// scanClaimedGroups reads claimed rows with their group.
func scanClaimedGroups(rows *sql.Rows, token int64) (map[string][]Job, error) {
	defer rows.Close()
	out := map[string][]Job{}
	for rows.Next() {
		var group string
		j, err := scanJob(rows, token, &group)
		if err != nil {
			return nil, err
		}
		out[group] = append(out[group], j)
	}
	return out, rows.Err()
}

// roundRobin orders a group claim for the workers: each group's first job in the groups' turn,
// then each one's second, and so on; within a group, priority then FIFO.
func roundRobin(groups []string, byGroup map[string][]Job) []Job {
	var out []Job
	for _, g := range groups {
		slices.SortFunc(byGroup[g], claimOrder)
	}
	for k := 0; ; k++ {
		added := false
		for _, g := range groups {
			if k < len(byGroup[g]) {
				out = append(out, byGroup[g][k])
				added = true
			}
		}
		if !added {
			return out
		}
	}
}

// ExplainGroupClaim shows the plans of a group claim's two statements: the probe for the next
// group with a ready job and the claim of one group's head.
func (s *sqlStore) ExplainGroupClaim(ctx context.Context, queue, group string) (next, head string, err error) {
	rows, err := s.query(ctx, s.r, s.d.explain+groupNextSQL, queue, group)
	if err != nil {
		return "", "", fmt.Errorf("explain group probe: %w", err)
	}
	if next, err = planText(rows); err != nil {
		return "", "", err
	}
	rows, err = s.query(ctx, s.r, s.d.explain+s.d.groupHeadSQL, s.d.groupHeadArgs(queue, group)...)
	if err != nil {
		return "", "", fmt.Errorf("explain group head claim: %w", err)
	}
	head, err = planText(rows)
	return next, head, err
}
