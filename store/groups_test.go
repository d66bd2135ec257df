package store

import (
	"database/sql"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func groupJob(group string, i int) NewJob {
	return NewJob{JobID: fmt.Sprintf("%s-%d", group, i), Grouped: true, Group: group}
}

func groupClaim(s Store, node string, limit, concurrency int) ([]Job, error) {
	return s.Claim(ctx, ClaimRequest{Queue: "q", Node: node, Limit: limit, Lease: time.Minute, Groups: true, GroupConcurrency: concurrency})
}

func groupOf(j Job) string { return j.JobID[:strings.LastIndexByte(j.JobID, '-')] }

// TestGroupClaimIsRoundRobin: claims of one job each take the groups in turn (the cursor is in
// the database, so it holds whichever node claims), and within a group priority then FIFO.
func TestGroupClaimIsRoundRobin(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		for i := range 5 {
			mustInsert(t, s, groupJob("a", i))
		}
		for i := range 3 {
			mustInsert(t, s, groupJob("b", i))
		}
		mustInsert(t, s, groupJob("c", 0))
		urgent := groupJob("b", 9)
		urgent.Priority = -1
		mustInsert(t, s, urgent)
		var order []string
		for i := range 10 {
			got, err := groupClaim(s, fmt.Sprint("node", i%3), 1, 0)
			if err != nil || len(got) != 1 {
				t.Fatalf("claim %d: %d jobs, %v", i, len(got), err)
			}
			order = append(order, got[0].JobID)
		}
		want := []string{"a-0", "b-9", "c-0", "a-1", "b-0", "a-2", "b-1", "a-3", "b-2", "a-4"}
		if !slices.Equal(order, want) {
			t.Fatalf("claim order %v, want %v", order, want)
		}
		if got, _ := groupClaim(s, "node0", 1, 0); len(got) != 0 {
			t.Fatalf("claimed %v from an empty queue", ids(got))
		}
	})
}

// TestGroupClaimWalksEveryGroupInTurn: the groups are listed a page at a time (pages of the size
// a claim can serve, so claims of 1 read pages of 1 and claims of 100 span pages); whatever the
// batch, a round of claims serves every group with a ready job once before any twice, passes over
// groups with only delayed jobs (MySQL lists them: a claim goes on to the next groups instead of
// coming back short) and wraps round to the first group.
func TestGroupClaimWalksEveryGroupInTurn(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		const groups = 250
		for g := range groups {
			name := fmt.Sprintf("g%03d", g)
			if g%5 == 4 { // only delayed jobs
				j := groupJob(name, 0)
				j.Delay = time.Hour
				mustInsert(t, s, j)
				continue
			}
			for i := range 3 {
				mustInsert(t, s, groupJob(name, i))
			}
		}
		const ready = groups / 5 * 4
		served := map[string]int{}
		claimed := 0
		for _, limit := range []int{1, 7, 100, 50, 42} {
			got, err := groupClaim(s, "n", limit, 0)
			if err != nil || len(got) != limit {
				t.Fatalf("claim of %d after %d jobs: %d jobs, %v", limit, claimed, len(got), err)
			}
			for _, j := range got {
				served[groupOf(j)]++
			}
			claimed += limit
		}
		// 200 jobs over 200 ready groups: each exactly once, none of the delayed ones.
		if len(served) != ready {
			t.Fatalf("%d jobs went to %d groups, want each of the %d ready groups once", claimed, len(served), ready)
		}
		for g, n := range served {
			if n != 1 {
				t.Fatalf("group %s served %d times in the first round", g, n)
			}
		}
		// The next claim wraps round: the first ready groups again, second jobs.
		got, err := groupClaim(s, "n", 3, 0)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"g000-1", "g001-1", "g002-1"}; !slices.Equal(ids(got), want) {
			t.Fatalf("after a full round the claim took %v, want %v", ids(got), want)
		}
	})
}

// TestGroupClaimSharesEquallyFromTheCursor: a claim that goes round the whole circle from the
// middle visits each group once, so the share is equal.
func TestGroupClaimSharesEquallyFromTheCursor(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		for _, g := range []string{"a", "b", "c"} {
			for i := range 10 {
				mustInsert(t, s, groupJob(g, i))
			}
		}
		if got, err := groupClaim(s, "n", 1, 0); err != nil || len(got) != 1 || groupOf(got[0]) != "a" {
			t.Fatalf("first claim: %v, %v", ids(got), err)
		}
		got, err := groupClaim(s, "n", 6, 0)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"b-0", "c-0", "a-1", "b-1", "c-1", "a-2"}; !slices.Equal(ids(got), want) {
			t.Fatalf("claim of 6 from cursor a took %v, want %v", ids(got), want)
		}
	})
}

// TestSmallGroupIsNotStuckBehindALargeOne: 1,000 jobs of one group, then 10 of another: the first
// batch carries all 10, where the plain claim would take 100 of the large group.
func TestSmallGroupIsNotStuckBehindALargeOne(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		for i := range 1000 {
			mustInsert(t, s, groupJob("bob", i))
		}
		for i := range 10 {
			mustInsert(t, s, groupJob("alice", i))
		}
		got, err := groupClaim(s, "n", 100, 0)
		if err != nil {
			t.Fatal(err)
		}
		perGroup := map[string]int{}
		for _, j := range got {
			perGroup[groupOf(j)]++
		}
		if len(got) != 100 || perGroup["alice"] != 10 {
			t.Fatalf("first batch: %d jobs, %v: want 100 with all 10 of alice", len(got), perGroup)
		}
		// The batch is in turn order, so the workers see alice's jobs among the first 20.
		for i, j := range got[:20] {
			if want := []string{"alice", "bob"}[i%2]; groupOf(j) != want {
				t.Fatalf("job %d of the batch is %s, want one of %s: the batch is not in round-robin order (%v)", i, j.JobID, want, ids(got[:20]))
			}
		}
	})
}

// TestGroupConcurrencyIsNeverExceeded: three nodes claim and acknowledge concurrently; at no
// moment does a group have more than its limit reserved.
func TestGroupConcurrencyIsNeverExceeded(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		const limit, groups, perGroup = 2, 5, 40
		for i := range perGroup {
			for g := range groups {
				mustInsert(t, s, groupJob(fmt.Sprint("g", g), i))
			}
		}
		var (
			mu        sync.Mutex
			inFlight  = map[string]int{}
			most      int
			overshoot []string
			done      int
			wg        sync.WaitGroup
		)
		for n := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				node := fmt.Sprint("node", n)
				idle := 0
				for idle < 20 {
					got, err := groupClaim(s, node, 10, limit)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					for _, j := range got {
						g := groupOf(j)
						inFlight[g]++
						most = max(most, inFlight[g])
						if inFlight[g] > limit {
							overshoot = append(overshoot, fmt.Sprintf("%s: %d reserved", g, inFlight[g]))
						}
					}
					mu.Unlock()
					if len(got) == 0 {
						idle++
						time.Sleep(time.Millisecond) // a poll interval: nothing is awaited here
						continue
					}
					idle = 0
					for _, j := range got {
						// The slot is given up before the ack, so the count here never exceeds
						// the database's: an overshoot the database allowed shows.
						mu.Lock()
						inFlight[groupOf(j)]--
						done++
						mu.Unlock()
						if _, err := ack(s, j.Fence); err != nil {
							t.Error(err)
							return
						}
						if rand.IntN(4) == 0 {
							time.Sleep(time.Millisecond)
						}
					}
				}
			}()
		}
		wg.Wait()
		if len(overshoot) > 0 {
			t.Fatalf("group_concurrency %d exceeded: %v", limit, overshoot)
		}
		if done != groups*perGroup || most != limit {
			t.Fatalf("%d of %d jobs done, at most %d of a group at once (want exactly %d)", done, groups*perGroup, most, limit)
		}
		t.Logf("%s: %d jobs in %d groups, 3 nodes, group_concurrency %d: at most %d of a group reserved at once", s.Dialect(), done, groups, limit, most)
	})
}

// TestGroupSlotsFreeOnEveryAnswer: a slot comes back on ack, requeue, fail and when the reaper
// returns a dead node's jobs; nothing else frees one.
func TestGroupSlotsFreeOnEveryAnswer(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		for i := range 10 {
			mustInsert(t, s, groupJob("g", i))
		}
		for _, n := range []string{"dies", "lives"} {
			if err := s.RegisterNode(ctx, Node{ID: n, Host: "h", PID: 1}); err != nil {
				t.Fatal(err)
			}
		}
		claimOne := func(node string, want int) []Job {
			t.Helper()
			got, err := groupClaim(s, node, 5, 2)
			if err != nil || len(got) != want {
				t.Fatalf("%s claimed %d (%v), want %d", node, len(got), err, want)
			}
			return got
		}
		claimOne("dies", 2)
		claimOne("lives", 0)
		if _, err := s.Reap(ctx, time.Hour, []string{"dies"}); err != nil {
			t.Fatal(err)
		}
		held := claimOne("lives", 2)
		if _, err := ack(s, held[0].Fence); err != nil {
			t.Fatal(err)
		}
		held = append(held[1:], claimOne("lives", 1)...)
		if ok, err := s.Requeue(ctx, held[0].Fence, Requeue{}); !ok || err != nil {
			t.Fatal("requeue", err)
		}
		held = append(held[1:], claimOne("lives", 1)...)
		if ok, err := s.Fail(ctx, held[0].Fence, "boom", 1); !ok || err != nil {
			t.Fatal("fail", err)
		}
		claimOne("lives", 1)
		claimOne("lives", 0)
	})
}

// TestOverflowMovesBusyGroupsAndEnds: one node at a time gets the overflow turn; the groups over
// ready_over move whole to the target and are listed as overflowing until nothing of theirs waits
// there.
func TestOverflowMovesBusyGroupsAndEnds(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		for i := range 2500 {
			mustInsert(t, s, groupJob("bob", i))
		}
		for i := range 3 {
			mustInsert(t, s, groupJob("alice", i))
		}
		// Groups are checked a page of 100 at a time: one more busy group after 150 small ones.
		for g := range 150 {
			mustInsert(t, s, groupJob(fmt.Sprintf("small-%03d", g), 0))
		}
		for i := range 120 {
			mustInsert(t, s, groupJob("zed", i))
		}
		turns := 0
		for range 3 {
			ok, err := s.OverflowTurn(ctx, "q", time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				turns++
			}
		}
		if turns != 1 {
			t.Fatalf("%d of 3 nodes got the overflow turn of one interval, want 1", turns)
		}
		moves, err := s.Overflow(ctx, OverflowRequest{Queue: "q", Target: "slow", ReadyOver: 100})
		if err != nil {
			t.Fatal(err)
		}
		if want := []OverflowMove{{Group: "bob", Jobs: 2500}, {Group: "zed", Jobs: 120}}; !slices.Equal(moves, want) {
			t.Fatalf("moves %+v, want %+v", moves, want)
		}
		if c, _ := s.Counts(ctx, "slow"); c.Ready != 2620 {
			t.Fatalf("target has %+v", c)
		}
		if c, _ := s.Counts(ctx, "q"); c.Ready != 153 {
			t.Fatalf("source has %+v, want alice's 3 and the small groups' 150", c)
		}
		groups, err := s.OverflowGroups(ctx, "q")
		if err != nil || len(groups) != 2 || groups["bob"] != "slow" || groups["zed"] != "slow" {
			t.Fatalf("overflow groups %v (%v), want bob and zed → slow", groups, err)
		}
		// A push of bob that raced with the move follows at the next check, however few.
		mustInsert(t, s, groupJob("bob", 2500))
		if moves, err := s.Overflow(ctx, OverflowRequest{Queue: "q", Target: "slow", ReadyOver: 100}); err != nil || len(moves) != 1 || moves[0] != (OverflowMove{Group: "bob", Jobs: 1}) {
			t.Fatalf("moves %+v (%v), want bob's straggler", moves, err)
		}
		// The target drains: the overflow ends.
		for {
			got, err := s.Claim(ctx, ClaimRequest{Queue: "slow", Node: "n", Limit: 1000, Lease: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) == 0 {
				break
			}
			fences := fencesOf(got)
			if _, err := ack(s, fences...); err != nil {
				t.Fatal(err)
			}
		}
		if groups, _ := s.OverflowGroups(ctx, "q"); len(groups) != 0 {
			t.Fatalf("overflow groups %v after the target drained, want none", groups)
		}
	})
}

// TestGroupsAreCountedAndMovedByColumn: a group_by queue's counts per group come from the stored
// column with the overflow; jobs moved into a group_by queue get their group from its header.
func TestGroupsAreCountedAndMovedByColumn(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		for i := range 3 {
			mustInsert(t, s, NewJob{JobID: fmt.Sprint("plain-", i), Queue: "plain", Headers: map[string][]string{"tenant": {[]string{"acme", "acme", "globex"}[i]}}})
		}
		mustInsert(t, s, NewJob{JobID: "nohdr", Queue: "plain"})
		if n, err := s.Move(ctx, "plain", "q", nil, Group{}, "tenant"); err != nil || n != 4 {
			t.Fatalf("move = %d, %v", n, err)
		}
		mustInsert(t, s, groupJob("globex", 9))
		if _, err := groupClaim(s, "n", 1, 0); err != nil { // one of "" (the first group)
			t.Fatal(err)
		}
		if _, err := s.Overflow(ctx, OverflowRequest{Queue: "q", Target: "slow", ReadyOver: 1}); err != nil {
			t.Fatal(err)
		}
		got, err := s.CountGroups(ctx, "q", "", 100)
		if err != nil {
			t.Fatal(err)
		}
		// acme and globex had 2 ready jobs each (over 1): they moved to "slow" and overflow there.
		want := []GroupCount{
			{Value: "", Counts: Counts{Reserved: 1}},
			{Value: "acme", OverflowTo: "slow"},
			{Value: "globex", OverflowTo: "slow"},
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("groups of q = %+v, want %+v", got, want)
		}
		if slow, _ := s.Counts(ctx, "slow"); slow.Ready != 4 {
			t.Fatalf("slow has %+v, want the 4 moved jobs", slow)
		}
	})
}

// TestGroupClaimPlansUseTheGroupIndex: both statements of a group claim that read rr_jobs go
// through rr_jobs_group (a page of groups, one index probe each; a group's head in order), with
// no sort and no scan of the backlog. On MySQL the page is a loose index scan, and only its
// page of at most 100 groups is sorted.
func TestGroupClaimPlansUseTheGroupIndex(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		st := s.(*sqlStore)
		tx, err := st.w.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		// 20,000 jobs of 4 queues in 500 groups and one big group (half of queue q1), a third
		// delayed, one queue without groups.
		stmt, err := tx.PrepareContext(ctx, st.q(`INSERT INTO rr_jobs (queue, job_id, name, payload, headers, priority, available_at, created_at, attempts, auto_ack, grp)
			VALUES (?, ?, 'Job', ?, '{}', ?, ?, 0, 0, ?, ?)`))
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now().UnixMilli()
		for i := range 20000 {
			var group any = fmt.Sprint("tenant-", i%500)
			if i%2 == 1 && i/4%2 == 0 {
				group = "big"
			}
			if i%4 == 3 {
				group = nil
			}
			if _, err := stmt.ExecContext(ctx, fmt.Sprint("q", i%4), fmt.Sprint(i), []byte("x"), i%5, now+int64(i%3)*3600_000, false, group); err != nil {
				t.Fatal(err)
			}
		}
		_ = stmt.Close()
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		analyze := map[string]string{"sqlite": "ANALYZE", "postgres": "ANALYZE rr_jobs", "mysql": "ANALYZE TABLE rr_jobs"}[s.Dialect()]
		if _, err := st.w.ExecContext(ctx, analyze); err != nil {
			t.Fatal(err)
		}
		page, head, err := st.ExplainGroupClaim(ctx, "q1", "big")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("group page plan (%s):\n%s\ngroup head claim plan:\n%s", s.Dialect(), page, head)
		pageBad := []string{"TEMP B-TREE", "Seq Scan on rr_jobs", "Sort", "filesort", "SCAN rr_jobs "}
		if s.Dialect() == "mysql" {
			if !strings.Contains(page, "Using index for group-by") {
				t.Errorf("page plan is not a loose index scan")
			}
			pageBad = []string{"type=ALL possible_keys", "table=rr_jobs type=index"}
		}
		for what, plan := range map[string]string{"page": page, "head claim": head} {
			if !strings.Contains(plan, "rr_jobs_group") {
				t.Errorf("%s plan does not use rr_jobs_group", what)
			}
			if what == "page" && strings.Count(plan, "rr_jobs_group") < 2 {
				t.Errorf("page plan does not probe rr_jobs_group for the first group and for each next one")
			}
			bad := []string{"TEMP B-TREE", "Seq Scan on rr_jobs", "Sort", "filesort", "SCAN rr_jobs "}
			if what == "page" {
				bad = pageBad
			}
			for _, b := range bad {
				if strings.Contains(plan, b) {
					t.Errorf("%s plan has %q", what, b)
				}
			}
		}
	})
}

// TestGroupHeadsTakeNoRowMovedAway: between the statement that finds a group's head and the one
// that reserves it, an operator's Move may take the row to another queue; the claim must not
// reserve it there. (MySQL's page reads the head's id; the claim then reserves it by id.)
func TestGroupHeadsTakeNoRowMovedAway(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		st := s.(*sqlStore)
		mustInsert(t, s, groupJob("g", 0))
		var id int64
		if err := st.queryRow(ctx, st.w, `SELECT id FROM rr_jobs WHERE job_id = ?`, "g-0").Scan(&id); err != nil {
			t.Fatal(err)
		}
		if _, err := st.exec(ctx, st.w, `UPDATE rr_jobs SET queue = ? WHERE id = ?`, "elsewhere", id); err != nil {
			t.Fatal(err)
		}
		tx, err := st.begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = tx.Rollback() }()
		got, err := st.d.claimHeads(ctx, st, tx, claimArgs{queue: "q", node: "n", token: 7, limit: 1, leaseMs: 60_000},
			[]groupHead{{group: "g", want: 1, first: id}})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 0 {
			t.Fatalf("claimed %v of queue q: a row moved to another queue", got)
		}
		var reservedBy sql.NullString
		if err := tx.QueryRowContext(ctx, st.q(`SELECT reserved_by FROM rr_jobs WHERE id = ?`), id).Scan(&reservedBy); err != nil || reservedBy.Valid {
			t.Fatalf("the moved row is reserved by %v (%v)", reservedBy, err)
		}
	})
}
