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
// Its cost follows the batch, not the backlog, in a few statements whatever the groups: a page
// statement lists the next groups after the cursor (one index probe per group inside the
// database: a recursive CTE on PostgreSQL and SQLite, a loose index scan on MySQL), then per round
// one statement picks and reserves every served group's head jobs (priority then FIFO, straight
// from rr_jobs_group: LATERAL on PostgreSQL, UNION ALL of a branch per group elsewhere; MySQL
// reads the rows back by id). What differs is in each dialect's file.

// maxGroupsPerClaim bounds the groups one share of a claim serves (see groupClaim).
const maxGroupsPerClaim = 100

// maxGroupVisits bounds the groups one claim visits when most are at their group_concurrency:
// the claim gives up after that many, and the next one goes on from there.
const maxGroupVisits = 1000

// groupPageSize is the most groups one page statement lists when every group is read (overflow
// check, metrics); a claim asks for what it can serve.
const groupPageSize = 1000

// groupPageArgs says which groups a page lists: those after a group (all when not valid), up to
// and including a bound (none when not valid), at most size.
type groupPageArgs struct {
	queue       string
	after, upTo sql.NullString
	size        int
}

// bounds renders the range condition of a page on a group column and its arguments: every comparison of groups is the database's, in its collation.
func (p groupPageArgs) bounds(column string) (string, []any) {
	cond, args := column+` >= ''`, []any{}
	if p.after.Valid {
		cond, args = column+` > ?`, []any{p.after.String}
	}
	if p.upTo.Valid {
		cond, args = cond+` AND `+column+` <= ?`, append(args, p.upTo.String)
	}
	return cond, args
}

// recursiveGroupPage lists a page of groups with a ready job, one index probe per group inside
// one statement (a loose index scan written as a recursive CTE: each step finds the first ready
// row of the next group in rr_jobs_group). PostgreSQL and SQLite.
func recursiveGroupPage(p groupPageArgs) (string, []any) {
	first, firstArgs := p.bounds("grp")
	next, nextArgs := `j.grp > page.grp`, []any{}
	if p.upTo.Valid {
		next, nextArgs = next+` AND j.grp <= ?`, []any{p.upTo.String}
	}
	args := append(append([]any{p.queue}, firstArgs...), p.queue)
	args = append(append(args, nextArgs...), p.size)
	return `WITH RECURSIVE page (grp, n) AS (
		SELECT (SELECT grp FROM rr_jobs WHERE queue = ? AND reserved_by IS NULL AND grp IS NOT NULL AND ` + first + ` AND available_at <= {now}
			ORDER BY grp LIMIT 1), 1
		UNION ALL
		SELECT (SELECT j.grp FROM rr_jobs j WHERE j.queue = ? AND j.reserved_by IS NULL AND j.grp IS NOT NULL AND ` + next + ` AND j.available_at <= {now}
			ORDER BY j.grp LIMIT 1), page.n + 1
		FROM page WHERE page.grp IS NOT NULL AND page.n < ?)
	SELECT grp, 1, NULL FROM page WHERE grp IS NOT NULL`, args
}

// groupReservedSQL counts each group's reserved jobs: what group_concurrency bounds. Reserved rows
// are the jobs in flight in the whole cluster, a few per worker. Argument: queue.
const groupReservedSQL = `SELECT grp, COUNT(*) FROM rr_jobs
	WHERE queue = ? AND {held} AND grp IS NOT NULL GROUP BY grp`

// groupClaim reserves up to c.limit ready jobs shared round robin across the queue's groups, at
// most c.groupLimit reserved per group (0: no limit).
func (s *sqlStore) groupClaim(ctx context.Context, c claimArgs) ([]Job, error) {
	var out []Job
	err := retryConflicts(ctx, func() error {
		out = nil
		// Without a flush of its own on SQLite, as the other claims (see sqliteClaim).
		tx, end, err := s.beginMaybeUnflushed(ctx, true)
		if err != nil {
			return err
		}
		defer end()
		defer func() { _ = tx.Rollback() }()
		if s.d.groupClaimSetup != "" {
			if _, err := s.exec(ctx, tx, s.d.groupClaimSetup); err != nil {
				return err
			}
		}
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
		walk := newGroupWalk(s, tx, c.queue, cursor)
		share := &groupShare{left: c.limit, taken: map[string]int{}, free: free, byGroup: map[string][]Job{}}
		var turn []string // the groups served, in their turn
		for share.left > 0 {
			// The next groups that may take a job, as many as there are jobs left to claim (at most
			// maxGroupsPerClaim: a batch of 500 over 10,000 groups takes 5 jobs each from the next 100
			// groups rather than 1 from 500; the cursor moves on, every group gets its turn).
			want := min(share.left, maxGroupsPerClaim)
			var groups []pageGroup
			for len(groups) < want && walk.visits < maxGroupVisits {
				g, ok, err := walk.next(ctx, want)
				if err != nil {
					return err
				}
				if !ok {
					break
				}
				if g.ready && free(g.name) > 0 {
					groups = append(groups, g)
				}
			}
			if len(groups) == 0 {
				break
			}
			if err := share.claim(ctx, s, tx, c, groups); err != nil {
				return err
			}
			for _, g := range groups {
				turn = append(turn, g.name)
			}
		}
		if walk.last.Valid && walk.last != cursor {
			if _, err = s.exec(ctx, tx, `UPDATE rr_queues SET cursor_grp = ? WHERE queue = ?`, walk.last.String, c.queue); err != nil {
				return err
			}
		}
		// Committed even when nothing was claimed: the cursor goes on past groups at their limit.
		if err = tx.Commit(); err != nil {
			return err
		}
		out = roundRobin(turn, share.byGroup)
		return nil
	})
	return out, err
}

// groupShare shares the jobs left to claim among groups: in rounds, each group takes an equal
// share of what is left (at least one job) within its free slots, and a group that had fewer
// ready jobs than its share drops out. The dialect claims the heads of every group of a round at
// once.
type groupShare struct {
	left    int
	taken   map[string]int
	free    func(group string) int
	byGroup map[string][]Job // the jobs claimed
}

func (sh *groupShare) claim(ctx context.Context, s *sqlStore, tx *sql.Tx, c claimArgs, groups []pageGroup) error {
	var active []string
	first := map[string]int64{} // the head ids the page read, good for the first round only
	for _, g := range groups {
		active = append(active, g.name)
		first[g.name] = g.head
	}
	for round := 0; sh.left > 0 && len(active) > 0; round++ {
		share := max(1, sh.left/len(active))
		var heads []groupHead
		budget := sh.left
		for _, g := range active {
			if want := min(share, budget, sh.free(g)-sh.taken[g]); want > 0 {
				h := groupHead{group: g, want: want}
				if round == 0 {
					h.first = first[g]
				}
				heads = append(heads, h)
				budget -= want
			}
		}
		got, err := s.d.claimHeads(ctx, s, tx, c, heads)
		if err != nil {
			return fmt.Errorf("claim the heads of %d groups: %w", len(heads), err)
		}
		var next []string
		for _, h := range heads {
			n := len(got[h.group])
			if n > 0 {
				sh.byGroup[h.group] = append(sh.byGroup[h.group], got[h.group]...)
			}
			sh.taken[h.group] += n
			sh.left -= n
			if n == h.want && sh.free(h.group)-sh.taken[h.group] > 0 {
				next = append(next, h.group)
			}
		}
		active = next
	}
	return nil
}

// groupWalk visits a queue's groups once round the circle from a cursor: those after it, then
// from the first up to it; a page statement lists the next ones.
type groupWalk struct {
	s      *sqlStore
	on     execer
	queue  string
	cursor sql.NullString
	// after is the last group listed; wrapped: the walk is past the last group, from the first
	// up to the cursor.
	after   sql.NullString
	wrapped bool
	// page holds groups listed and not yet visited; fetched and full say whether a page was read
	// on this side of the circle and whether it came back full (there may be more).
	page          []pageGroup
	fetched, full bool
	visits        int
	last          sql.NullString // the last group visited
}

// pageGroup is a group listed by a page, whether it has a ready job and, where the dialect's page
// reads it (MySQL), the id of its first ready job (0: not read).
type pageGroup struct {
	name  string
	ready bool
	head  int64
}

// newGroupWalk starts a walk after cursor (from the first group when not valid).
func newGroupWalk(s *sqlStore, on execer, queue string, cursor sql.NullString) *groupWalk {
	return &groupWalk{s: s, on: on, queue: queue, cursor: cursor, after: cursor}
}

// next visits the next group, reading pages of size groups; false when the circle is complete.
func (w *groupWalk) next(ctx context.Context, size int) (pageGroup, bool, error) {
	for len(w.page) == 0 {
		if w.fetched && !w.full {
			if w.wrapped || !w.cursor.Valid {
				return pageGroup{}, false, nil
			}
			w.wrapped, w.after, w.fetched = true, sql.NullString{}, false
			continue
		}
		p := groupPageArgs{queue: w.queue, after: w.after, size: size}
		if w.wrapped {
			p.upTo = w.cursor
		}
		var err error
		if w.page, err = w.s.groupPage(ctx, w.on, p); err != nil {
			return pageGroup{}, false, err
		}
		w.fetched, w.full = true, len(w.page) == size
	}
	g := w.page[0]
	w.page = w.page[1:]
	w.after = sql.NullString{String: g.name, Valid: true}
	w.last = w.after
	w.visits++
	return g, true, nil
}

// groupPage lists a page of groups (the dialect's statement).
func (s *sqlStore) groupPage(ctx context.Context, on execer, p groupPageArgs) ([]pageGroup, error) {
	query, args := s.d.groupPage(p)
	rows, err := s.query(ctx, on, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list groups of queue %s: %w", p.queue, err)
	}
	defer rows.Close()
	var out []pageGroup
	for rows.Next() {
		var (
			g    pageGroup
			head sql.NullInt64
		)
		if err := rows.Scan(&g.name, &g.ready, &head); err != nil {
			return nil, err
		}
		g.head = head.Int64
		out = append(out, g)
	}
	return out, rows.Err()
}

// eachReadyGroup calls fn with every group of the queue that has a ready job, in order.
func (s *sqlStore) eachReadyGroup(ctx context.Context, on execer, queue string, fn func(group string) error) error {
	walk := newGroupWalk(s, on, queue, sql.NullString{})
	for {
		g, ok, err := walk.next(ctx, groupPageSize)
		if err != nil || !ok {
			return err
		}
		if g.ready {
			if err := fn(g.name); err != nil {
				return err
			}
		}
	}
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

// groupHead asks for up to want jobs at the head of a group, and says the id of its first ready
// job when a page read it (0: not known).
type groupHead struct {
	group string
	want  int
	first int64
}

// groupHeadSQL picks the head of one group, in (priority, available_at, id) order straight from
// rr_jobs_group, followed by its LIMIT. Arguments: queue, group, then the limit's.
const groupHeadSQL = `SELECT id FROM rr_jobs
	WHERE queue = ? AND reserved_by IS NULL AND grp = ? AND available_at <= {now}
	ORDER BY priority, available_at, id`

// unionMember says how a dialect makes a limited SELECT a member of a UNION: SQLite wraps it in a
// subquery and limits by `? + 0` (a bare parameter there makes it recompile the statement at
// every run); MySQL puts it in parentheses, which spares it a derived table per branch.
type unionMember struct{ open, limit, close string }

// groupHeadsUnion picks the heads of several groups in one statement, a groupHeadSQL branch per
// group joined with UNION ALL (at most maxGroupsPerClaim: SQLite allows 500). Column: id.
func groupHeadsUnion(m unionMember, queue string, heads []groupHead) (string, []any) {
	branches := make([]string, len(heads))
	args := make([]any, 0, 3*len(heads))
	for i, h := range heads {
		branches[i] = m.open + groupHeadSQL + "\n\tLIMIT " + m.limit + m.close
		args = append(args, queue, h.group, h.want)
	}
	return strings.Join(branches, "\nUNION ALL\n"), args
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

// ExplainGroupClaim shows the plans of a group claim's two statements that read rr_jobs: a page
// of the queue's groups from the first, and the pick of one group's head.
func (s *sqlStore) ExplainGroupClaim(ctx context.Context, queue, group string) (page, head string, err error) {
	query, args := s.d.groupPage(groupPageArgs{queue: queue, size: maxGroupsPerClaim})
	rows, err := s.query(ctx, s.r, s.d.explain+query, args...)
	if err != nil {
		return "", "", fmt.Errorf("explain group page: %w", err)
	}
	if page, err = planText(rows); err != nil {
		return "", "", err
	}
	rows, err = s.query(ctx, s.r, s.d.explain+groupHeadSQL+` LIMIT ?`, queue, group, 10)
	if err != nil {
		return "", "", fmt.Errorf("explain group head claim: %w", err)
	}
	head, err = planText(rows)
	return page, head, err
}
