package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
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
// after the cursor with a ready job, at most maxGroupsPerClaim served), then per round one
// statement that picks every served group's head jobs (priority then FIFO, straight from the
// index) and one that reserves them. The same SQL on every database.

// maxGroupsPerClaim bounds the groups one claim visits: a batch of 500 over 10,000 groups takes
// 5 jobs each from the next 100 groups rather than 1 from 500 (the cursor moves on; every group
// still gets its turn), so a claim costs at most this many index probes.
const maxGroupsPerClaim = 100

// maxGroupVisits bounds the index probes of one claim when most groups are at their
// group_concurrency: the claim gives up after that many, and the next one goes on from there.
const maxGroupVisits = 1000

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

// groupClaimedSQL reads back the rows one claim reserved, through the reserved index (which
// starts with the queue on PostgreSQL and SQLite). Arguments: queue, node, token.
const groupClaimedSQL = `SELECT ` + claimedColumns + `, grp FROM rr_jobs WHERE queue = ? AND reserved_by = ? AND claim_token = ?`

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
		groups, last, err := s.readyGroups(ctx, tx, c.queue, cursor, min(c.limit, maxGroupsPerClaim), func(g string) bool { return free(g) > 0 })
		if err != nil {
			return err
		}
		if len(groups) == 0 {
			if last.Valid && last != cursor {
				// Every group visited is at its limit: the next claim goes on after them.
				if _, err = s.exec(ctx, tx, `UPDATE rr_queues SET cursor_grp = ? WHERE queue = ?`, last.String, c.queue); err != nil {
					return err
				}
				return tx.Commit()
			}
			return nil
		}
		// Rounds: each group takes an equal share of what is left (at least one job), within its
		// free slots; a group that had fewer ready jobs than its share drops out. One statement
		// picks the heads of every group of a round, one reserves them.
		left, taken := c.limit, map[string]int{}
		active := groups
		for left > 0 && len(active) > 0 {
			share := max(1, left/len(active))
			wants := map[string]int{}
			var order []string
			budget := left
			for _, g := range active {
				if want := min(share, budget, free(g)-taken[g]); want > 0 {
					wants[g] = want
					order = append(order, g)
					budget -= want
				}
			}
			got, err := s.claimHeads(ctx, tx, c, order, wants)
			if err != nil {
				return err
			}
			var next []string
			for _, g := range order {
				taken[g] += got[g]
				left -= got[g]
				if got[g] == wants[g] && free(g)-taken[g] > 0 {
					next = append(next, g)
				}
			}
			active = next
		}
		if _, err = s.exec(ctx, tx, `UPDATE rr_queues SET cursor_grp = ? WHERE queue = ?`, groups[len(groups)-1], c.queue); err != nil {
			return err
		}
		rows, err := s.query(ctx, tx, groupClaimedSQL, c.queue, c.node, c.token)
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
// order: those after the cursor, then from the first one round to the cursor. It visits at most
// maxGroupVisits groups (those at their group_concurrency are visited and passed over) and says
// which it visited last.
func (s *sqlStore) readyGroups(ctx context.Context, tx *sql.Tx, queue string, cursor sql.NullString, limit int, ok func(string) bool) (groups []string, last sql.NullString, err error) {
	after, wrapped := cursor, !cursor.Valid
	for visits := 0; len(groups) < limit && visits < maxGroupVisits; visits++ {
		g, found, err := s.nextReadyGroup(ctx, tx, queue, after)
		if err != nil {
			return nil, last, err
		}
		if !found {
			if wrapped {
				return groups, last, nil
			}
			after, wrapped = sql.NullString{}, true
			continue
		}
		if wrapped && cursor.Valid && g > cursor.String || slices.Contains(groups, g) {
			return groups, last, nil // round the whole circle
		}
		after = sql.NullString{String: g, Valid: true}
		last = after
		if ok(g) {
			groups = append(groups, g)
		}
	}
	return groups, last, nil
}

// groupHeadSQL picks the head of one group, in (priority, available_at, id) order straight from
// rr_jobs_group; a claim joins one such branch per group with UNION ALL. Arguments: queue, group,
// limit.
const groupHeadSQL = `SELECT id, grp FROM (SELECT id, grp FROM rr_jobs
	WHERE queue = ? AND reserved_by IS NULL AND grp = ? AND available_at <= {now}
	ORDER BY priority, available_at, id
	LIMIT ?) head`

// claimHeads reserves up to wants[g] jobs at the head of each group g and says how many each got.
// The queue's lock is held, so no other claim competes for these rows; the update still checks
// that each is unreserved (an operator's Flush or Move may have taken it meanwhile).
func (s *sqlStore) claimHeads(ctx context.Context, tx *sql.Tx, c claimArgs, groups []string, wants map[string]int) (map[string]int, error) {
	got := map[string]int{}
	var ids []int64
	// Branches per statement are bounded like every list of placeholders.
	for chunk := range slices.Chunk(groups, maxGroupsPerClaim) {
		branches := make([]string, len(chunk))
		args := make([]any, 0, 3*len(chunk))
		for i, g := range chunk {
			branches[i] = groupHeadSQL
			args = append(args, c.queue, g, wants[g])
		}
		rows, err := s.query(ctx, tx, strings.Join(branches, "\nUNION ALL\n"), args...)
		if err != nil {
			return nil, fmt.Errorf("pick the head of %d groups: %w", len(chunk), err)
		}
		for rows.Next() {
			var (
				id int64
				g  string
			)
			if err := rows.Scan(&id, &g); err != nil {
				rows.Close()
				return nil, err
			}
			ids = append(ids, id)
			got[g]++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	for chunk := range slices.Chunk(ids, fencesPerStatement) {
		if _, err := s.exec(ctx, tx, `UPDATE rr_jobs SET `+claimSet+` WHERE id IN (`+marks(len(chunk))+`) AND reserved_by IS NULL`,
			append([]any{c.node, c.token, c.leaseMs}, anySlice(chunk)...)...); err != nil {
			return nil, fmt.Errorf("reserve the heads of %d groups: %w", len(groups), err)
		}
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
	rows, err = s.query(ctx, s.r, s.d.explain+groupHeadSQL, queue, group, 10)
	if err != nil {
		return "", "", fmt.Errorf("explain group head claim: %w", err)
	}
	head, err = planText(rows)
	return next, head, err
}
