package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// openSQLite opens a new SQLite store in t's temporary directory at the given synchronous level.
func openSQLite(t testing.TB, synchronous string) Store {
	s, err := OpenSQLite(context.Background(), SQLiteOptions{
		Path: filepath.Join(t.TempDir(), "jobs.db"), Synchronous: synchronous, BusyTimeout: 5 * time.Second, MaxReadConns: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// backends opens one empty store per database the suite runs on. Every case below runs on each:
// the behaviour the driver relies on must not depend on the database.
func backends() map[string]func(t testing.TB) Store {
	return map[string]func(t testing.TB) Store{
		"sqlite": func(t testing.TB) Store { return openSQLite(t, "normal") },
		"postgres": func(t testing.TB) Store {
			dsn := serverDSN(t, "SQLJOBS_POSTGRES_DSN")
			s, err := OpenPostgres(ctx, ServerOptions{DSN: dsn, MaxOpenConns: 8, Migrate: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return emptied(t, s)
		},
		"mysql": func(t testing.TB) Store {
			dsn := serverDSN(t, "SQLJOBS_MYSQL_DSN")
			s, err := OpenMySQL(ctx, ServerOptions{DSN: dsn, MaxOpenConns: 8, Migrate: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return emptied(t, s)
		},
	}
}

// serverDSN is the DSN of a database server the suite needs; outside CI a missing one skips.
func serverDSN(t testing.TB, env string) string {
	dsn := os.Getenv(env)
	if dsn == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set: CI must start the database server (scripts/db-servers.sh)", env)
		}
		t.Skipf("%s is not set: start the servers with `eval \"$(scripts/db-servers.sh start)\"`", env)
	}
	return dsn
}

// emptied clears the tables: the store suite runs its cases one after another on one database
// (the integration suites use databases of their own).
func emptied(t testing.TB, s Store) Store {
	db := s.(*sqlStore).w
	for _, table := range []string{"rr_jobs", "rr_failed_jobs", "rr_nodes", "rr_pipelines", "rr_queues", "rr_overflow", "rr_counts", "rr_schedules", "rr_history"} {
		if _, err := db.ExecContext(ctx, "DELETE FROM "+table); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func forEachBackend(t *testing.T, run func(t *testing.T, s Store)) {
	for name, open := range backends() {
		t.Run(name, func(t *testing.T) { run(t, open(t)) })
	}
}

var ctx = context.Background()

func mustInsert(t *testing.T, s Store, j NewJob) {
	t.Helper()
	if j.Queue == "" {
		j.Queue = "q"
	}
	if j.Name == "" {
		j.Name = "Job"
	}
	if _, err := s.Insert(ctx, j); err != nil {
		t.Fatal(err)
	}
}

// elapse lets d pass for what a store holds: every time it stored moves d into the past. (The
// clocks of PostgreSQL and MySQL cannot be moved; the data can, the same way on every database.)
func elapse(t testing.TB, s Store, d time.Duration) {
	t.Helper()
	ms := d.Milliseconds()
	for _, st := range []struct {
		query string
		n     int
	}{
		{`UPDATE rr_jobs SET available_at = available_at - ?, created_at = created_at - ?, lease_until = lease_until - ?,
			reserved_at = reserved_at - ?, delivered_at = delivered_at - ?, queued_at = queued_at - ?`, 6},
		{`UPDATE rr_nodes SET heartbeat_at = heartbeat_at - ?, started_at = started_at - ?`, 2},
		{`UPDATE rr_failed_jobs SET failed_at = failed_at - ?`, 1},
	} {
		args := make([]any, st.n)
		for i := range args {
			args[i] = ms
		}
		if _, err := s.(*sqlStore).exec(ctx, s.(*sqlStore).w, st.query, args...); err != nil {
			t.Fatal(err)
		}
	}
}

// ack deletes acknowledged jobs.
func ack(s Store, fences ...Fence) (int64, error) { return s.Write(ctx, Batch{Acks: fences}) }

func ids(jobs []Job) []string {
	out := make([]string, len(jobs))
	for i, j := range jobs {
		out[i] = j.JobID
	}
	return out
}

func TestClaimOrderPriorityThenFIFO(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		for i, p := range []int64{5, 1, 5, 1, 3} {
			mustInsert(t, s, NewJob{JobID: fmt.Sprintf("j%d", i), Priority: p, Payload: []byte("x")})
		}
		got, err := claim(s, "q", "n1", 10)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"j1", "j3", "j4", "j0", "j2"}
		if fmt.Sprint(ids(got)) != fmt.Sprint(want) {
			t.Fatalf("claim order = %v, want %v", ids(got), want)
		}
		if got[0].Deliveries != 0 || got[0].Failures != 0 {
			t.Fatalf("a first claim counts %d deliveries and %d failures, want none: a claim is not a delivery", got[0].Deliveries, got[0].Failures)
		}
		again, _ := claim(s, "q", "n2", 10)
		if len(again) != 0 {
			t.Fatalf("reserved jobs claimed twice: %v", ids(again))
		}
	})
}

func TestClaimLimitAndQueues(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		for i := range 5 {
			mustInsert(t, s, NewJob{JobID: fmt.Sprint(i), Queue: "a"})
		}
		mustInsert(t, s, NewJob{JobID: "other", Queue: "b"})
		got, _ := claim(s, "a", "n", 3)
		if len(got) != 3 {
			t.Fatalf("claimed %d, want 3", len(got))
		}
		c, _ := s.Counts(ctx, "a")
		if c != (Counts{Ready: 2, Reserved: 3}) {
			t.Fatalf("counts = %+v", c)
		}
	})
}

func TestDelayedJobsWaitAndSameSecondSurvive(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		for i := range 50 {
			mustInsert(t, s, NewJob{JobID: fmt.Sprint(i), Delay: time.Hour})
		}
		if got, _ := claim(s, "q", "n", 100); len(got) != 0 {
			t.Fatalf("claimed %d delayed jobs before their time", len(got))
		}
		c, _ := s.Counts(ctx, "q")
		if c.Delayed != 50 || c.Ready != 0 {
			t.Fatalf("counts = %+v, want 50 delayed", c)
		}
		elapse(t, s, time.Hour+time.Second)
		got, _ := claim(s, "q", "n", 100)
		if len(got) != 50 {
			t.Fatalf("claimed %d jobs due in the same millisecond, want all 50", len(got))
		}
	})
}

// TestOneBatchFencesEachClaim acks, in one batch, the jobs of two claims and a stale fence of a
// third (its job released and claimed again): each row is deleted only under the token that holds
// it, the statement matching several claims' tokens at once.
func TestOneBatchFencesEachClaim(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		for _, id := range []string{"a", "b", "c", "d", "e"} {
			mustInsert(t, s, NewJob{JobID: id})
		}
		first, _ := claim(s, "q", "n1", 2)  // a, b
		second, _ := claim(s, "q", "n2", 2) // c, d
		stale, _ := claim(s, "q", "n3", 1)  // e, released and held again below
		if len(first) != 2 || len(second) != 2 || len(stale) != 1 {
			t.Fatalf("claimed %d, %d and %d jobs, want 2, 2 and 1", len(first), len(second), len(stale))
		}
		if n, _ := s.Release(ctx, []Fence{stale[0].Fence}); n != 1 {
			t.Fatalf("released %d, want 1", n)
		}
		held, _ := claim(s, "q", "n4", 1)
		if len(held) != 1 || held[0].JobID != "e" {
			t.Fatalf("claim after release = %v, want e", ids(held))
		}
		// The stale fence of e first, then the two claims' jobs interleaved.
		batch := []Fence{stale[0].Fence, first[0].Fence, second[0].Fence, first[1].Fence, second[1].Fence}
		if n, err := ack(s, batch...); err != nil || n != 4 {
			t.Fatalf("acked %d (%v), want the 4 jobs of the two live claims", n, err)
		}
		c, _ := s.Counts(ctx, "q")
		if c.Reserved != 1 || c.Ready != 0 {
			t.Fatalf("counts = %+v, want e still reserved by its new claim", c)
		}
		if n, _ := ack(s, held[0].Fence); n != 1 {
			t.Fatalf("ack of e under its live claim deleted %d rows, want 1", n)
		}
	})
}

func TestAckIsFenced(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		mustInsert(t, s, NewJob{JobID: "a"})
		first, _ := claim(s, "q", "n1", 1)
		// The job goes back and another claim takes it: the first holder's ack must not delete it.
		if n, _ := s.Release(ctx, []Fence{first[0].Fence}); n != 1 {
			t.Fatalf("released %d, want 1", n)
		}
		second, _ := claim(s, "q", "n2", 1)
		if len(second) != 1 || second[0].Deliveries != 0 || second[0].Failures != 0 {
			t.Fatalf("second claim = %+v (a job taken back before a worker saw it counts no delivery)", second)
		}
		if n, _ := ack(s, first[0].Fence); n != 0 {
			t.Fatalf("stale ack deleted %d rows", n)
		}
		if n, _ := ack(s, second[0].Fence); n != 1 {
			t.Fatalf("ack deleted %d rows, want 1", n)
		}
		c, _ := s.Counts(ctx, "q")
		if c != (Counts{}) {
			t.Fatalf("counts after ack = %+v", c)
		}
	})
}

func TestRequeueStoresHeadersAndDelay(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		mustInsert(t, s, NewJob{JobID: "a", Headers: map[string][]string{"k": {"1"}}})
		got, _ := claim(s, "q", "n", 1)
		ok, err := s.Requeue(ctx, got[0].Fence, Requeue{Headers: map[string][]string{"k": {"1"}, "retry": {"yes"}}, Delay: 2 * time.Second})
		if err != nil || !ok {
			t.Fatalf("requeue = %v, %v", ok, err)
		}
		if ok, _ := s.Requeue(ctx, got[0].Fence, Requeue{}); ok {
			t.Fatal("a second requeue with the same fence succeeded")
		}
		if again, _ := claim(s, "q", "n", 1); len(again) != 0 {
			t.Fatal("requeued job claimable before its delay")
		}
		elapse(t, s, 2*time.Second+time.Millisecond)
		again, _ := claim(s, "q", "n", 1)
		if len(again) != 1 || again[0].Headers["retry"][0] != "yes" || again[0].Headers["k"][0] != "1" || again[0].Deliveries != 1 || again[0].Failures != 0 {
			t.Fatalf("requeued job = %+v: want its headers, one delivery and no failure (the worker answered)", again)
		}
		// A delivery that failed without an answer counts against max_attempts.
		if ok, _ := s.Requeue(ctx, again[0].Fence, Requeue{Failed: true, LastError: "worker crashed"}); !ok {
			t.Fatal("requeue after a failed delivery")
		}
		third, _ := claim(s, "q", "n", 1)
		if len(third) != 1 || third[0].Deliveries != 2 || third[0].Failures != 1 {
			t.Fatalf("after a failed delivery = %+v, want 2 deliveries, 1 failure", third)
		}
	})
}

func TestFailMovesToFailedJobs(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		mustInsert(t, s, NewJob{JobID: "a"})
		got, _ := claim(s, "q", "n", 1)
		ok, err := s.Fail(ctx, got[0].Fence, "boom", 1)
		if err != nil || !ok {
			t.Fatalf("fail = %v, %v", ok, err)
		}
		if ok, _ := s.Fail(ctx, got[0].Fence, "again", 1); ok {
			t.Fatal("failed twice with one fence")
		}
		st, _ := s.Stats(ctx, "q")
		if st.Failed != 1 || st.Counts != (Counts{}) {
			t.Fatalf("failed = %d, counts = %+v", st.Failed, st.Counts)
		}
	})
}

func TestReapReturnsJobsOfDeadNodes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		for _, id := range []string{"alive", "stale", "crashed"} {
			if err := s.RegisterNode(ctx, Node{ID: id, Host: "h", PID: 1}); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 3 {
			mustInsert(t, s, NewJob{JobID: fmt.Sprint(i)})
		}
		held := map[string]Job{}
		for _, id := range []string{"alive", "stale", "crashed"} {
			got, _ := claim(s, "q", id, 1)
			if len(got) != 1 {
				t.Fatalf("node %s claimed %d", id, len(got))
			}
			held[id] = got[0]
		}
		// The stale node's job had reached a worker: its end without an answer is a failed delivery.
		if _, err := s.Write(ctx, Batch{Delivered: []Fence{held["stale"].Fence}}); err != nil {
			t.Fatal(err)
		}
		elapse(t, s, time.Minute)
		// A live node heartbeats and extends the leases of what it holds.
		if ok, _ := s.Heartbeat(ctx, "alive"); !ok {
			t.Fatal("heartbeat of a registered node reported it gone")
		}
		if n, _ := s.Extend(ctx, []Fence{held["alive"].Fence}, time.Minute); n != 1 {
			t.Fatal("extend the live node's lease")
		}
		released, err := s.Reap(ctx, 30*time.Second, []string{"crashed"})
		if err != nil || released != 2 {
			t.Fatalf("reap released %d (%v), want 2", released, err)
		}
		if ok, _ := s.Heartbeat(ctx, "stale"); ok {
			t.Fatal("a reaped node's heartbeat still finds its row")
		}
		c, _ := s.Counts(ctx, "q")
		if c.Ready != 2 || c.Reserved != 1 {
			t.Fatalf("counts = %+v, want 2 ready and the live node's 1 reserved", c)
		}
		again, _ := claim(s, "q", "alive", 5)
		counted := map[string][2]int64{}
		for _, j := range again {
			counted[j.JobID] = [2]int64{j.Deliveries, j.Failures}
		}
		if counted[held["stale"].JobID] != [2]int64{1, 1} || counted[held["crashed"].JobID] != [2]int64{0, 0} {
			t.Fatalf("deliveries and failures after the reap = %v: want 1/1 for the delivered job, 0/0 for the one no worker saw", counted)
		}
		if n, _ := s.RemoveNode(ctx, "alive"); n != 3 {
			t.Fatalf("RemoveNode released %d, want 3", n)
		}
	})
}

func TestConcurrentClaimsTakeEachJobOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		const total = 2000
		for i := range total {
			mustInsert(t, s, NewJob{JobID: fmt.Sprint(i)})
		}
		var (
			mu   sync.Mutex
			seen = map[string]int{}
			wg   sync.WaitGroup
		)
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					got, err := claim(s, "q", fmt.Sprint("n", w), 25)
					if err != nil {
						t.Error(err)
						return
					}
					if len(got) == 0 {
						return
					}
					mu.Lock()
					for _, j := range got {
						seen[j.JobID]++
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(seen) != total {
			t.Fatalf("claimed %d distinct jobs, want %d", len(seen), total)
		}
		for id, n := range seen {
			if n != 1 {
				t.Fatalf("job %s claimed %d times", id, n)
			}
		}
	})
}

func TestMigrationsAreIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.db")
	for range 2 {
		s, err := OpenSQLite(ctx, SQLiteOptions{Path: path, Synchronous: "normal", BusyTimeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		_ = s.Close()
	}
}

func TestOpenSQLiteInMissingDirectoryNamesIt(t *testing.T) {
	_, err := OpenSQLite(ctx, SQLiteOptions{Path: "/nonexistent-dir/x/jobs.db", Synchronous: "full"})
	if err == nil || !strings.Contains(err.Error(), "/nonexistent-dir/x") {
		t.Fatalf("err = %v", err)
	}
}

// TestClaimPlanUsesTheIndex checks, with a backlog, that the claim reads the claim index in
// (priority, available_at, id) order: no sequential scan, no sort, no filesort.
func TestClaimPlanUsesTheIndex(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		db := s.(*sqlStore).w
		// A backlog with several queues and priorities, a third of it delayed and some reserved.
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		stmt, err := tx.PrepareContext(ctx, s.(*sqlStore).q(`INSERT INTO rr_jobs (queue, job_id, name, payload, headers, priority, available_at, created_at, attempts, auto_ack)
			VALUES (?, ?, 'Job', ?, '{}', ?, ?, 0, 0, ?)`))
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now().UnixMilli()
		for i := range 20000 {
			if _, err := stmt.ExecContext(ctx, fmt.Sprint("q", i%4), fmt.Sprint(i), []byte("x"), i%5, now+int64(i%3)*3600_000, false); err != nil {
				t.Fatal(err)
			}
		}
		_ = stmt.Close()
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		if _, err := claim(s, "q1", "n", 500); err != nil {
			t.Fatal(err)
		}
		analyze := map[string]string{"sqlite": "ANALYZE", "postgres": "ANALYZE rr_jobs", "mysql": "ANALYZE TABLE rr_jobs"}[s.Dialect()]
		if _, err := db.ExecContext(ctx, analyze); err != nil {
			t.Fatal(err)
		}
		plan, err := s.(*sqlStore).ExplainClaim(ctx, "q2")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("claim plan (%s):\n%s", s.Dialect(), plan)
		must := map[string][]string{
			"sqlite":   {"USING INDEX rr_jobs_claim", "USING INTEGER PRIMARY KEY"},
			"postgres": {"Index", "rr_jobs_claim", "LockRows"},
			"mysql":    {"key=rr_jobs_claim"},
		}[s.Dialect()]
		mustNot := []string{"TEMP B-TREE", "Seq Scan on rr_jobs", "Sort", "filesort", "SCAN rr_jobs", "table=rr_jobs type=index key=PRIMARY", "table=rr_jobs type=ALL"}
		for _, w := range must {
			if !strings.Contains(plan, w) {
				t.Errorf("claim plan lacks %q", w)
			}
		}
		for _, w := range mustNot {
			if strings.Contains(plan, w) {
				t.Errorf("claim plan has %q", w)
			}
		}
	})
}

func claim(s Store, queue, node string, limit int) ([]Job, error) {
	return s.Claim(ctx, ClaimRequest{Queue: queue, Node: node, Limit: limit, Lease: time.Minute})
}

func TestExpiredLeaseReturnsToReadyAndExtendKeepsIt(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		if err := s.RegisterNode(ctx, Node{ID: "n", Host: "h", PID: 1}); err != nil {
			t.Fatal(err)
		}
		mustInsert(t, s, NewJob{JobID: "kept"})
		mustInsert(t, s, NewJob{JobID: "lost"})
		got, err := s.Claim(ctx, ClaimRequest{Queue: "q", Node: "n", Limit: 2, Lease: time.Second})
		if err != nil || len(got) != 2 {
			t.Fatalf("claim = %d, %v", len(got), err)
		}
		kept := got[0]
		if kept.JobID != "kept" {
			kept = got[1]
		}
		if n, _ := s.Extend(ctx, []Fence{kept.Fence}, time.Hour); n != 1 {
			t.Fatalf("extended %d leases, want 1", n)
		}
		elapse(t, s, 2*time.Second)
		if ok, _ := s.Heartbeat(ctx, "n"); !ok {
			t.Fatal("heartbeat")
		}
		// The node is alive: only the lapsed lease counts.
		released, err := s.Reap(ctx, time.Hour, nil)
		if err != nil || released != 1 {
			t.Fatalf("reap released %d (%v), want the one job whose lease lapsed", released, err)
		}
		again, _ := claim(s, "q", "n2", 5)
		if len(again) != 1 || again[0].JobID != "lost" {
			t.Fatalf("after reap claimed %v, want [lost]", ids(again))
		}
	})
}

func TestOperatorCalls(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		tenant := func(v string) map[string][]string { return map[string][]string{"tenant": {v}} }
		for i := range 6 {
			mustInsert(t, s, NewJob{JobID: fmt.Sprint("a", i), Headers: tenant([]string{"acme", "globex"}[i%2])})
		}
		mustInsert(t, s, NewJob{JobID: "later", Headers: tenant("acme"), Delay: time.Hour})
		if got, _ := claim(s, "q", "n", 1); len(got) != 1 {
			t.Fatal("claim one")
		}
		groups, err := s.CountByHeader(ctx, "q", "tenant", "", 100)
		if err != nil {
			t.Fatal(err)
		}
		want := "[{acme {2 1 1} } {globex {3 0 0} }]"
		if fmt.Sprint(groups) != want {
			t.Fatalf("groups = %v, want %v", groups, want)
		}
		elapse(t, s, 10*time.Millisecond)
		st, err := s.Stats(ctx, "q")
		if err != nil || st.Ready != 5 || st.Delayed != 1 || st.Reserved != 1 || st.OldestReady < 10*time.Millisecond {
			t.Fatalf("stats = %+v, %v", st, err)
		}
		prio := int64(1)
		if n, err := s.Move(ctx, "q", "q2", &prio, Group{Header: "tenant", Value: "globex"}, ""); err != nil || n != 3 {
			t.Fatalf("move = %d, %v; want the 3 ready globex jobs", n, err)
		}
		moved, _ := claim(s, "q2", "n", 10)
		if len(moved) != 3 || moved[0].Priority != 1 {
			t.Fatalf("moved jobs claimed = %+v", moved)
		}
		if n, err := s.Flush(ctx, "q", Group{}); err != nil || n != 3 {
			t.Fatalf("flush = %d, %v; want the 2 ready and 1 delayed acme jobs (the reserved one stays)", n, err)
		}
		if _, err := s.Flush(ctx, "q", Group{Header: "bad name'", Value: "x"}); err == nil {
			t.Fatal("a header name outside the allowed pattern was accepted")
		}
		for _, j := range moved {
			if ok, _ := s.Fail(ctx, j.Fence, "boom "+j.JobID, 1); !ok {
				t.Fatal("fail")
			}
		}
		failed, err := s.ListFailed(ctx, "q2", 0, 2)
		if err != nil || len(failed) != 2 || failed[0].Error == "" || failed[0].Attempts != 1 || failed[0].Headers["tenant"][0] != "globex" {
			t.Fatalf("failed page 1 = %+v, %v", failed, err)
		}
		rest, _ := s.ListFailed(ctx, "q2", failed[1].ID, 10)
		if len(rest) != 1 {
			t.Fatalf("failed page 2 = %+v", rest)
		}
		if n, err := s.RetryFailed(ctx, Selection{Queue: "q2", IDs: []int64{failed[0].ID}}); err != nil || n != 1 {
			t.Fatalf("retry one = %d, %v", n, err)
		}
		if n, err := s.DeleteFailed(ctx, Selection{Queue: "q2", IDs: []int64{failed[1].ID}}); err != nil || n != 1 {
			t.Fatalf("delete one = %d, %v", n, err)
		}
		if n, err := s.RetryFailed(ctx, Selection{Queue: "q2", All: true}); err != nil || n != 1 {
			t.Fatalf("retry all = %d, %v", n, err)
		}
		again, _ := claim(s, "q2", "n", 10)
		if len(again) != 2 || again[0].Deliveries != 0 || again[0].Failures != 0 {
			t.Fatalf("retried jobs claimed = %+v (a retry starts the counts again)", again)
		}
		for _, j := range again {
			_, _ = s.Fail(ctx, j.Fence, "again", 1)
		}
		elapse(t, s, 48*time.Hour)
		if n, err := s.PruneFailed(ctx, 24*time.Hour, 1); err != nil || n != 2 {
			t.Fatalf("prune = %d, %v", n, err)
		}
	})
}

func TestDeclaredPipelinesAreKept(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		if err := s.SavePipeline(ctx, "dyn", map[string]string{"driver": "sql", "prefetch": "5"}); err != nil {
			t.Fatal(err)
		}
		if err := s.SetConsuming(ctx, "dyn", true); err != nil {
			t.Fatal(err)
		}
		// Declaring again updates the options and keeps the consuming flag.
		if err := s.SavePipeline(ctx, "dyn", map[string]string{"driver": "sql", "prefetch": "6"}); err != nil {
			t.Fatal(err)
		}
		_ = s.SavePipeline(ctx, "other", map[string]string{"driver": "sql"})
		got, err := s.DeclaredPipelines(ctx)
		if err != nil || len(got) != 2 || got[0].Name != "dyn" || !got[0].Consuming || got[0].Options["prefetch"] != "6" || got[1].Consuming {
			t.Fatalf("declared = %+v, %v", got, err)
		}
		// A restore confirms what it read; if another node destroyed it since, it stays destroyed.
		if err := s.KeepPipeline(ctx, "dyn", got[0].Options); err != nil {
			t.Fatal(err)
		}
		if err := s.DeletePipeline(ctx, "dyn"); err != nil {
			t.Fatal(err)
		}
		if err := s.KeepPipeline(ctx, "dyn", got[0].Options); !errors.Is(err, ErrPipelineGone) {
			t.Fatalf("keeping a destroyed pipeline: err = %v, want ErrPipelineGone", err)
		}
		if got, _ := s.DeclaredPipelines(ctx); len(got) != 1 {
			t.Fatalf("after delete: %+v", got)
		}
	})
}

func TestSkipMigrationsChecksTheSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.db")
	_, err := OpenSQLite(ctx, SQLiteOptions{Path: path, Synchronous: "normal", SkipMigrations: true})
	if err == nil || !strings.Contains(err.Error(), "rr schema sqlite") {
		t.Fatalf("opening an empty database with migrations off: err = %v", err)
	}
	s, err := OpenSQLite(ctx, SQLiteOptions{Path: path, Synchronous: "normal"})
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	s, err = OpenSQLite(ctx, SQLiteOptions{Path: path, Synchronous: "normal", SkipMigrations: true})
	if err != nil {
		t.Fatalf("migrated database with migrations off: %v", err)
	}
	_ = s.Close()
}

func TestSchemaSQLAppliesByHand(t *testing.T) {
	script, err := SchemaSQL("sqlite")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "dba.db")
	s, err := OpenSQLite(ctx, SQLiteOptions{Path: path, Synchronous: "normal", SkipMigrations: true})
	if err == nil {
		_ = s.Close()
		t.Fatal("an empty database passed the schema check")
	}
	db, err := sqlOpen(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, script); err != nil {
		t.Fatalf("the printed schema does not apply: %v", err)
	}
	_ = db.Close()
	s, err = OpenSQLite(ctx, SQLiteOptions{Path: path, Synchronous: "normal", SkipMigrations: true})
	if err != nil {
		t.Fatalf("schema applied by hand is not accepted: %v", err)
	}
	_ = s.Close()
}

func sqlOpen(path string) (*sql.DB, error) { return sql.Open("sqlite", path) }

// TestConcurrentClaimAckExtendDoNotConflict runs claimers that ack in batches while a heartbeat
// extends every held lease: no statement may fail (a deadlock here once lost acks on MariaDB).
func TestConcurrentClaimAckExtendDoNotConflict(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		const total = 3000
		for i := range total {
			mustInsert(t, s, NewJob{JobID: fmt.Sprint(i)})
		}
		var (
			mu   sync.Mutex
			held = map[Fence]struct{}{}
			wg   sync.WaitGroup
			stop = make(chan struct{})
		)
		wg.Add(1)
		go func() { // the heartbeat
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				mu.Lock()
				fences := make([]Fence, 0, len(held))
				for f := range held {
					fences = append(fences, f)
				}
				mu.Unlock()
				if _, err := s.Extend(ctx, fences, time.Minute); err != nil {
					t.Error("extend:", err)
					return
				}
			}
		}()
		var acked sync.WaitGroup
		deleted := make(chan int64, 16)
		for w := range 4 {
			acked.Add(1)
			go func() {
				defer acked.Done()
				for {
					got, err := claim(s, "q", fmt.Sprint("n", w), 20)
					if err != nil {
						t.Error("claim:", err)
						return
					}
					if len(got) == 0 {
						return
					}
					fences := make([]Fence, len(got))
					mu.Lock()
					for i, j := range got {
						fences[i] = j.Fence
						held[j.Fence] = struct{}{}
					}
					mu.Unlock()
					n, err := ack(s, fences...)
					if err != nil {
						t.Error("ack:", err)
						return
					}
					deleted <- n
					mu.Lock()
					for _, f := range fences {
						delete(held, f)
					}
					mu.Unlock()
				}
			}()
		}
		go func() { acked.Wait(); close(deleted) }()
		var sum int64
		for n := range deleted {
			sum += n
		}
		close(stop)
		wg.Wait()
		if sum != total {
			t.Fatalf("acks deleted %d jobs, want %d", sum, total)
		}
	})
}

// dropSchema drops every table and function of the schema, for a test that migrates from an older one.
func dropSchema(t *testing.T, st *sqlStore) {
	t.Helper()
	drop := []string{"DROP TABLE rr_jobs", "DROP TABLE rr_failed_jobs", "DROP TABLE rr_nodes", "DROP TABLE rr_pipelines", "DROP TABLE rr_schema_migrations",
		"DROP TABLE rr_queues", "DROP TABLE rr_overflow", "DROP TABLE rr_counts", "DROP TABLE rr_schedules", "DROP TABLE rr_history"}
	if st.Dialect() == "postgres" {
		for _, f := range []string{"rr_jobs_notify", "rr_jobs_count_insert", "rr_jobs_count_update", "rr_jobs_count_delete", "rr_failed_jobs_count"} {
			drop = append(drop, "DROP FUNCTION IF EXISTS "+f+" CASCADE")
		}
	}
	for _, q := range drop {
		if _, err := st.w.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
}

// TestMigrationUpgradesTheSchemaBefore: a database created before the delivery counts (migration
// 0003) keeps its jobs, and what their attempts meant: every claim counted against max_attempts.
func TestMigrationUpgradesTheSchemaBefore(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		st := s.(*sqlStore)
		dropSchema(t, st)
		if err := st.migrateUpTo(ctx, 2); err != nil {
			t.Fatal(err)
		}
		now := time.Now().UnixMilli()
		if _, err := st.w.ExecContext(ctx, st.q(`INSERT INTO rr_jobs (queue, job_id, name, payload, headers, priority, available_at, created_at, attempts)
			VALUES ('q', 'old', 'Job', ?, '{}', 10, ?, ?, 2)`), []byte("x"), now, now); err != nil {
			t.Fatal(err)
		}
		if err := st.migrate(ctx); err != nil {
			t.Fatalf("upgrade: %v", err)
		}
		if err := st.migrate(ctx); err != nil {
			t.Fatalf("upgrade again: %v", err)
		}
		exact(t, s, "after the upgrade (migrations 0006 and 0007 count the rows already queued)", "q")
		got, err := claim(s, "q", "n", 1)
		if err != nil || len(got) != 1 || got[0].JobID != "old" || got[0].Deliveries != 2 || got[0].Failures != 2 {
			t.Fatalf("the job from before the upgrade = %+v, %v; want 2 deliveries that count as 2 failures", got, err)
		}
	})
}

// TestSQLiteFilesAreOwnerOnly: the database and its -wal and -shm files hold every job's payload:
// a new database is readable and writable by rr's user alone.
func TestSQLiteFilesAreOwnerOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jobs.db")
	s, err := OpenSQLite(ctx, SQLiteOptions{Path: path, Synchronous: "normal", BusyTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mustInsert(t, s, NewJob{JobID: "a"})
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s is %s: others than rr's user can read it", filepath.Base(f), st.Mode().Perm())
		}
	}
}

// TestMalformedRowsDoNotBlockTheQueue: rows written by hand with headers that are not a JSON
// object of string lists are claimed with their error (the driver fails them at once) while the
// rows around them are claimed normally; a plain string for a one-value header is read as a list.
func TestMalformedRowsDoNotBlockTheQueue(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		st := s.(*sqlStore)
		for i, headers := range []string{`{"tenant":"acme"}`, `{"tenant":["acme"],"n":null}`, `not json`, `{"n":1}`, `["a"]`} {
			if _, err := st.exec(ctx, st.w, `INSERT INTO rr_jobs (queue, job_id, name, payload, headers, priority, available_at, created_at)
				VALUES ('q', ?, 'Job', ?, ?, 10, {now}, {now})`, fmt.Sprint("row", i), []byte("x"), headers); err != nil {
				t.Fatal(err)
			}
		}
		got, err := claim(s, "q", "n", 10)
		if err != nil || len(got) != 5 {
			t.Fatalf("claimed %d of 5 rows (%v): a malformed row must not fail the claim", len(got), err)
		}
		for i, j := range got {
			readable := i < 2
			if (j.Unreadable == nil) != readable {
				t.Errorf("%s: unreadable = %v, want readable %v", j.JobID, j.Unreadable, readable)
			}
			if readable && (len(j.Headers["tenant"]) != 1 || j.Headers["tenant"][0] != "acme") {
				t.Errorf("%s: headers %v, want tenant [acme]", j.JobID, j.Headers)
			}
		}
	})
}

// TestDeletedSQLiteFileFailsEveryCall: the file deleted (or replaced) under a running store:
// pushes and claims fail with a clear error instead of writing into a file no one will read again.
func TestDeletedSQLiteFileFailsEveryCall(t *testing.T) {
	for _, replace := range []bool{false, true} {
		path := filepath.Join(t.TempDir(), "jobs.db")
		s, err := OpenSQLite(ctx, SQLiteOptions{Path: path, Synchronous: "normal", BusyTimeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		mustInsert(t, s, NewJob{JobID: "before"})
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		if replace {
			if err := os.WriteFile(path, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		_, err = s.Insert(ctx, NewJob{JobID: "after", Queue: "q", Name: "Job"})
		if !errors.Is(err, ErrFileGone) || !strings.Contains(err.Error(), path) {
			t.Errorf("push after the file was deleted (replaced %v): err = %v", replace, err)
		}
		if _, err := claim(s, "q", "n", 1); !errors.Is(err, ErrFileGone) {
			t.Errorf("claim after the file was deleted (replaced %v): err = %v", replace, err)
		}
		_ = s.Close()
	}
}

// TestCancelledContextWritesNothing: a write whose context is already cancelled fails with the
// context's error and writes nothing, on every database (SQLite checks the context itself before
// a write, which then runs without a watcher of it: see writeCtx), and the store goes on working.
func TestCancelledContextWritesNothing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		job := NewJob{JobID: "j", Queue: "q", Name: "Job", Payload: []byte("x")}
		if _, err := s.Insert(cancelled, job); !errors.Is(err, context.Canceled) {
			t.Fatalf("Insert with a cancelled context: %v, want context.Canceled", err)
		}
		if _, err := s.InsertBatch(cancelled, []NewJob{job, job}); !errors.Is(err, context.Canceled) {
			t.Fatalf("InsertBatch with a cancelled context: %v, want context.Canceled", err)
		}
		if c, err := s.Counts(ctx, "q"); err != nil || c != (Counts{}) {
			t.Fatalf("counts after the cancelled writes: %+v, %v; want none", c, err)
		}
		if _, err := s.Insert(ctx, job); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Claim(cancelled, ClaimRequest{Queue: "q", Node: "n", Limit: 10, Lease: time.Minute}); !errors.Is(err, context.Canceled) {
			t.Fatalf("Claim with a cancelled context: %v, want context.Canceled", err)
		}
		got, err := s.Claim(ctx, ClaimRequest{Queue: "q", Node: "n", Limit: 10, Lease: time.Minute})
		if err != nil || len(got) != 1 {
			t.Fatalf("claim after the cancelled writes: %d jobs, %v; want the one job", len(got), err)
		}
		if n, err := s.Write(cancelled, Batch{Acks: []Fence{got[0].Fence}}); !errors.Is(err, context.Canceled) || n != 0 {
			t.Fatalf("ack with a cancelled context: %d, %v; want 0, context.Canceled", n, err)
		}
		if c, err := s.Counts(ctx, "q"); err != nil || c.Reserved != 1 {
			t.Fatalf("counts after the cancelled ack: %+v, %v; want the job reserved", c, err)
		}
	})
}

// fencesOf lists the fences of claimed jobs, for the acks and marks that answer them.
func fencesOf(jobs []Job) []Fence {
	fences := make([]Fence, len(jobs))
	for i, j := range jobs {
		fences[i] = j.Fence
	}
	return fences
}
