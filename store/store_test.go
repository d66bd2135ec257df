package store

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// backends opens one empty store per database the suite runs on. Every case below runs on each:
// the behaviour the driver relies on must not depend on the database.
func backends() map[string]func(t testing.TB) Store {
	return map[string]func(t testing.TB) Store{
		"sqlite": func(t testing.TB) Store {
			s, err := OpenSQLite(context.Background(), SQLiteOptions{
				Path: filepath.Join(t.TempDir(), "jobs.db"), Synchronous: "normal", BusyTimeout: 5 * time.Second, MaxReadConns: 2,
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		},
		"postgres": func(t testing.TB) Store {
			dsn := serverDSN(t, "SQLJOBS_POSTGRES_DSN")
			s, err := OpenPostgres(ctx, dsn, 8, true)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return emptied(t, s)
		},
		"mysql": func(t testing.TB) Store {
			dsn := serverDSN(t, "SQLJOBS_MYSQL_DSN")
			s, err := OpenMySQL(ctx, dsn, 8, true)
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
	for _, table := range []string{"rr_jobs", "rr_failed_jobs", "rr_nodes", "rr_pipelines"} {
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
	if err := s.Insert(ctx, j); err != nil {
		t.Fatal(err)
	}
}

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
		got, err := claim(s, "q", "n1", 10, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"j1", "j3", "j4", "j0", "j2"}
		if fmt.Sprint(ids(got)) != fmt.Sprint(want) {
			t.Fatalf("claim order = %v, want %v", ids(got), want)
		}
		if got[0].Attempts != 1 {
			t.Fatalf("attempts after first claim = %d, want 1", got[0].Attempts)
		}
		again, _ := claim(s, "q", "n2", 10, time.Now())
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
		got, _ := claim(s, "a", "n", 3, time.Now())
		if len(got) != 3 {
			t.Fatalf("claimed %d, want 3", len(got))
		}
		c, _ := s.Counts(ctx, "a", time.Now())
		if c != (Counts{Ready: 2, Reserved: 3}) {
			t.Fatalf("counts = %+v", c)
		}
	})
}

func TestDelayedJobsWaitAndSameSecondSurvive(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		due := time.Now().Add(time.Hour)
		for i := range 50 {
			mustInsert(t, s, NewJob{JobID: fmt.Sprint(i), AvailableAt: due})
		}
		if got, _ := claim(s, "q", "n", 100, time.Now()); len(got) != 0 {
			t.Fatalf("claimed %d delayed jobs before their time", len(got))
		}
		c, _ := s.Counts(ctx, "q", time.Now())
		if c.Delayed != 50 || c.Ready != 0 {
			t.Fatalf("counts = %+v, want 50 delayed", c)
		}
		got, _ := claim(s, "q", "n", 100, due.Add(time.Millisecond))
		if len(got) != 50 {
			t.Fatalf("claimed %d jobs due in the same millisecond, want all 50", len(got))
		}
	})
}

func TestAckIsFenced(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		mustInsert(t, s, NewJob{JobID: "a"})
		first, _ := claim(s, "q", "n1", 1, time.Now())
		// The job goes back and another claim takes it: the first holder's ack must not delete it.
		if n, _ := s.Release(ctx, []Fence{first[0].Fence}); n != 1 {
			t.Fatalf("released %d, want 1", n)
		}
		second, _ := claim(s, "q", "n2", 1, time.Now())
		if len(second) != 1 || second[0].Attempts != 1 {
			t.Fatalf("second claim = %+v (a release must not count an attempt)", second)
		}
		if n, _ := s.Ack(ctx, []Fence{first[0].Fence}); n != 0 {
			t.Fatalf("stale ack deleted %d rows", n)
		}
		if n, _ := s.Ack(ctx, []Fence{second[0].Fence}); n != 1 {
			t.Fatalf("ack deleted %d rows, want 1", n)
		}
		c, _ := s.Counts(ctx, "q", time.Now())
		if c != (Counts{}) {
			t.Fatalf("counts after ack = %+v", c)
		}
	})
}

func TestRequeueStoresHeadersAndDelay(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		mustInsert(t, s, NewJob{JobID: "a", Headers: map[string][]string{"k": {"1"}}})
		got, _ := claim(s, "q", "n", 1, time.Now())
		later := time.Now().Add(2 * time.Second)
		ok, err := s.Requeue(ctx, got[0].Fence, map[string][]string{"k": {"1"}, "retry": {"yes"}}, later, "worker crashed")
		if err != nil || !ok {
			t.Fatalf("requeue = %v, %v", ok, err)
		}
		if ok, _ := s.Requeue(ctx, got[0].Fence, nil, time.Now(), ""); ok {
			t.Fatal("a second requeue with the same fence succeeded")
		}
		if again, _ := claim(s, "q", "n", 1, time.Now()); len(again) != 0 {
			t.Fatal("requeued job claimable before its delay")
		}
		again, _ := claim(s, "q", "n", 1, later.Add(time.Millisecond))
		if len(again) != 1 || again[0].Headers["retry"][0] != "yes" || again[0].Headers["k"][0] != "1" || again[0].Attempts != 2 {
			t.Fatalf("requeued job = %+v", again)
		}
	})
}

func TestFailMovesToFailedJobs(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		mustInsert(t, s, NewJob{JobID: "a"})
		got, _ := claim(s, "q", "n", 1, time.Now())
		ok, err := s.Fail(ctx, got[0].Fence, "boom", time.Now())
		if err != nil || !ok {
			t.Fatalf("fail = %v, %v", ok, err)
		}
		if ok, _ := s.Fail(ctx, got[0].Fence, "again", time.Now()); ok {
			t.Fatal("failed twice with one fence")
		}
		n, _ := s.FailedCount(ctx, "q")
		c, _ := s.Counts(ctx, "q", time.Now())
		if n != 1 || c != (Counts{}) {
			t.Fatalf("failed = %d, counts = %+v", n, c)
		}
	})
}

func TestReapReturnsJobsOfDeadNodes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		now := time.Now()
		for _, id := range []string{"alive", "stale", "crashed"} {
			if err := s.RegisterNode(ctx, Node{ID: id, Host: "h", PID: 1}, now); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 3 {
			mustInsert(t, s, NewJob{JobID: fmt.Sprint(i)})
		}
		for _, id := range []string{"alive", "stale", "crashed"} {
			if got, _ := claim(s, "q", id, 1, time.Now()); len(got) != 1 {
				t.Fatalf("node %s claimed %d", id, len(got))
			}
		}
		later := now.Add(time.Minute)
		if ok, _ := s.Heartbeat(ctx, "alive", later); !ok {
			t.Fatal("heartbeat of a registered node reported it gone")
		}
		released, err := s.Reap(ctx, later, later.Add(-30*time.Second), []string{"crashed"})
		if err != nil || released != 2 {
			t.Fatalf("reap released %d (%v), want 2", released, err)
		}
		if ok, _ := s.Heartbeat(ctx, "stale", later); ok {
			t.Fatal("a reaped node's heartbeat still finds its row")
		}
		c, _ := s.Counts(ctx, "q", later)
		if c.Ready != 2 || c.Reserved != 1 {
			t.Fatalf("counts = %+v, want 2 ready and the live node's 1 reserved", c)
		}
		if n, _ := s.RemoveNode(ctx, "alive"); n != 1 {
			t.Fatalf("RemoveNode released %d, want 1", n)
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
					got, err := claim(s, "q", fmt.Sprint("n", w), 25, time.Now())
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
		if _, err := claim(s, "q1", "n", 500, time.Now()); err != nil {
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
		mustNot := []string{"TEMP B-TREE", "Seq Scan on rr_jobs", "Sort", "filesort", "SCAN rr_jobs"}
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

func claim(s Store, queue, node string, limit int, now time.Time) ([]Job, error) {
	return s.Claim(ctx, ClaimRequest{Queue: queue, Node: node, Limit: limit, Now: now, LeaseUntil: now.Add(time.Minute)})
}

func TestExpiredLeaseReturnsToReadyAndExtendKeepsIt(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		now := time.Now()
		if err := s.RegisterNode(ctx, Node{ID: "n", Host: "h", PID: 1}, now); err != nil {
			t.Fatal(err)
		}
		mustInsert(t, s, NewJob{JobID: "kept"})
		mustInsert(t, s, NewJob{JobID: "lost"})
		got, err := s.Claim(ctx, ClaimRequest{Queue: "q", Node: "n", Limit: 2, Now: time.Now(), LeaseUntil: now.Add(time.Second)})
		if err != nil || len(got) != 2 {
			t.Fatalf("claim = %d, %v", len(got), err)
		}
		kept := got[0]
		if kept.JobID != "kept" {
			kept = got[1]
		}
		if n, _ := s.Extend(ctx, []Fence{kept.Fence}, now.Add(time.Hour)); n != 1 {
			t.Fatalf("extended %d leases, want 1", n)
		}
		later := now.Add(2 * time.Second)
		// The node is alive (no stale heartbeat cut-off in the past): only the lapsed lease counts.
		released, err := s.Reap(ctx, later, now.Add(-time.Hour), nil)
		if err != nil || released != 1 {
			t.Fatalf("reap released %d (%v), want the one job whose lease lapsed", released, err)
		}
		again, _ := claim(s, "q", "n2", 5, later)
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
		mustInsert(t, s, NewJob{JobID: "later", Headers: tenant("acme"), AvailableAt: time.Now().Add(time.Hour)})
		if got, _ := claim(s, "q", "n", 1, time.Now()); len(got) != 1 {
			t.Fatal("claim one")
		}
		groups, err := s.CountByHeader(ctx, "q", "tenant", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		want := "[{acme {2 1 1}} {globex {3 0 0}}]"
		if fmt.Sprint(groups) != want {
			t.Fatalf("groups = %v, want %v", groups, want)
		}
		st, err := s.Stats(ctx, "q", time.Now().Add(10*time.Millisecond))
		if err != nil || st.Ready != 5 || st.Delayed != 1 || st.Reserved != 1 || st.OldestReady <= 0 {
			t.Fatalf("stats = %+v, %v", st, err)
		}
		prio := int64(1)
		if n, err := s.Move(ctx, "q", "q2", &prio, Group{Header: "tenant", Value: "globex"}); err != nil || n != 3 {
			t.Fatalf("move = %d, %v; want the 3 ready globex jobs", n, err)
		}
		moved, _ := claim(s, "q2", "n", 10, time.Now())
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
			if ok, _ := s.Fail(ctx, j.Fence, "boom "+j.JobID, time.Now()); !ok {
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
		if n, err := s.RetryFailed(ctx, Selection{Queue: "q2", IDs: []int64{failed[0].ID}}, time.Now()); err != nil || n != 1 {
			t.Fatalf("retry one = %d, %v", n, err)
		}
		if n, err := s.DeleteFailed(ctx, Selection{Queue: "q2", IDs: []int64{failed[1].ID}}); err != nil || n != 1 {
			t.Fatalf("delete one = %d, %v", n, err)
		}
		if n, err := s.RetryFailed(ctx, Selection{Queue: "q2", All: true}, time.Now()); err != nil || n != 1 {
			t.Fatalf("retry all = %d, %v", n, err)
		}
		again, _ := claim(s, "q2", "n", 10, time.Now())
		if len(again) != 2 || again[0].Attempts != 1 {
			t.Fatalf("retried jobs claimed = %+v (a retry starts the attempts again)", again)
		}
		for _, j := range again {
			_, _ = s.Fail(ctx, j.Fence, "again", time.Now().Add(-48*time.Hour))
		}
		if n, err := s.PruneFailed(ctx, time.Now().Add(-24*time.Hour), 1); err != nil || n != 2 {
			t.Fatalf("prune = %d, %v", n, err)
		}
	})
}

func TestDeclaredPipelinesAreKept(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		now := time.Now()
		if err := s.SavePipeline(ctx, "dyn", map[string]string{"driver": "sql", "prefetch": "5"}, now); err != nil {
			t.Fatal(err)
		}
		if err := s.SetConsuming(ctx, "dyn", true, now); err != nil {
			t.Fatal(err)
		}
		// Declaring again (at restart) updates the options and keeps the consuming flag.
		if err := s.SavePipeline(ctx, "dyn", map[string]string{"driver": "sql", "prefetch": "6"}, now); err != nil {
			t.Fatal(err)
		}
		_ = s.SavePipeline(ctx, "other", map[string]string{"driver": "sql"}, now)
		got, err := s.DeclaredPipelines(ctx)
		if err != nil || len(got) != 2 || got[0].Name != "dyn" || !got[0].Consuming || got[0].Options["prefetch"] != "6" || got[1].Consuming {
			t.Fatalf("declared = %+v, %v", got, err)
		}
		if err := s.DeletePipeline(ctx, "dyn"); err != nil {
			t.Fatal(err)
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
				if _, err := s.Extend(ctx, fences, time.Now().Add(time.Minute)); err != nil {
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
					got, err := claim(s, "q", fmt.Sprint("n", w), 20, time.Now())
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
					n, err := s.Ack(ctx, fences)
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
