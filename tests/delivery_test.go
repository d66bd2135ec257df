package tests

// The delivery promise: nothing pushed is lost, each job runs once unless its node dies, and the
// driver's bookkeeping never gets in the way of what PHP code asks for.

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// workerKinds are the two PHP workers the suites run: the hand-written protocol worker and the
// real spiral/roadrunner-jobs client.
func workerKinds(t *testing.T) []struct{ name, script string } {
	return []struct{ name, script string }{
		{"protocol-worker", "worker.php"},
		{"spiral-client", "spiral_worker.php"},
	}
}

// workerScript returns the script of a worker kind, skipping (or failing in CI) when the real
// client is not available.
func workerScript(t *testing.T, script string) string {
	if script == "spiral_worker.php" {
		phpClient(t)
	}
	return phpPath(t, script)
}

// TestAutoAckJobsSurvivePauseAndStop: an auto_ack job may leave the database only once a worker
// has it. Jobs claimed into this node's queue come back on Pause and on Stop.
func TestAutoAckJobsSurvivePauseAndStop(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dir := t.TempDir()
		out := filepath.Join(dir, "out.jsonl")
		o := options{pipelines: pipelineYAML("p", "prefetch: 100"), consume: []string{"p"}, workers: 1, sqlSection: b.section(t, dir), out: out}
		rr := start(t, o)
		const total = 30
		var batch []job
		for i := range total {
			batch = append(batch, job{id: fmt.Sprint("aa", i), pipeline: "p", autoAck: true, payload: map[string]any{"action": "ack", "sleep_ms": 150}})
		}
		rr.pushBatch(batch)
		waitRecords(t, out, 1, 10*time.Second)
		rr.pause("p")
		waitFor(t, 10*time.Second, "every job at a worker or back in the database", func() (bool, string) {
			s := rr.stat("p")
			delivered := len(countByID(records(t, out)))
			return s.GetActive() == 0 && s.GetReserved()+int64(delivered) == total,
				fmt.Sprintf("%d delivered, %d ready, %d reserved", delivered, s.GetReserved(), s.GetActive())
		})

		// Stop with jobs claimed into RoadRunner's queue: they must be there after a restart.
		rr.resume("p")
		waitFor(t, 10*time.Second, "more jobs delivered", func() (bool, string) {
			n := len(countByID(records(t, out)))
			return n >= 6, fmt.Sprint(n, " delivered")
		})
		rr.stop()
		rr = start(t, o)
		recs := waitRecords(t, out, total, 30*time.Second)
		if n := len(countByID(recs)); n != total {
			t.Fatalf("%d distinct auto_ack jobs delivered, want all %d", n, total)
		}
		for id, n := range countByID(recs) {
			if n != 1 {
				t.Errorf("auto_ack job %s delivered %d times", id, n)
			}
		}
	})
}

// TestRequeueIsAnAnswer: a job the worker requeues on purpose is not a failed delivery, with the
// hand-written worker and with the real PHP client; max_attempts counts deliveries without an answer.
func TestRequeueIsAnAnswer(t *testing.T) {
	for _, w := range workerKinds(t) {
		t.Run(w.name, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, b backend) {
				dir := t.TempDir()
				out := filepath.Join(dir, "out.jsonl")
				rr := start(t, options{pipelines: pipelineYAML("p", "max_attempts: 2", "backoff: 100ms"), consume: []string{"p"},
					sqlSection: b.section(t, dir), out: out, worker: workerScript(t, w.script)})
				rr.push(job{id: "rq", pipeline: "p", payload: map[string]any{"requeue_times": 4}})
				recs := waitRecords(t, out, 5, 20*time.Second)
				for i, r := range recs {
					if got := r.Headers["x-sql-delivery"]; len(got) != 1 || got[0] != fmt.Sprint(i+1) {
						t.Errorf("delivery %d carries x-sql-delivery %v", i+1, got)
					}
				}
				waitFor(t, 10*time.Second, "the job acked at its fifth delivery", func() (bool, string) {
					s := rr.stat("p")
					return s.GetActive()+s.GetReserved()+s.GetDelayed() == 0, fmt.Sprint(s)
				})
				if s := rr.sqlStats("p"); s.Failed != 0 {
					t.Fatalf("a job requeued by its worker 4 times was failed (max_attempts 2): %+v", s)
				}
			})
		})
	}
}

// TestUserHeadersAreTheUsers: the driver's delivery number has a header of its own; a header the
// application calls `attempts` (spiral's retry policies keep one) reaches PHP untouched.
func TestUserHeadersAreTheUsers(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dir := t.TempDir()
		out := filepath.Join(dir, "out.jsonl")
		rr := start(t, options{pipelines: pipelineYAML("p"), consume: []string{"p"}, sqlSection: b.section(t, dir), out: out})
		rr.push(job{id: "h", pipeline: "p", headers: map[string][]string{"attempts": {"7"}}, payload: map[string]any{"requeue_times": 1}})
		recs := waitRecords(t, out, 2, 10*time.Second)
		for i, r := range recs {
			if got := r.Headers["attempts"]; !slices.Equal(got, []string{"7"}) {
				t.Errorf("delivery %d: header attempts = %v, want the pusher's [7]", i+1, got)
			}
			if got := r.Headers["x-sql-delivery"]; !slices.Equal(got, []string{fmt.Sprint(i + 1)}) {
				t.Errorf("delivery %d: x-sql-delivery = %v", i+1, got)
			}
		}
	})
}

// TestPriorityAgainstOtherDrivers: RoadRunner's queue is shared by every driver of the rr, so an sql
// job's Priority() must be its real priority: sql jobs of priority 1 run before memory jobs of
// priority 5, and still in FIFO order among themselves.
func TestPriorityAgainstOtherDrivers(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dir := t.TempDir()
		out := filepath.Join(dir, "out.jsonl")
		pipelines := pipelineYAML("gate", "priority: 1") + pipelineYAML("sq", "priority: 1", "prefetch: 50") +
			"    mem:\n      driver: memory\n      config:\n        priority: 5\n        prefetch: 100\n"
		rr := start(t, options{pipelines: pipelines, consume: []string{"gate"}, workers: 1, sqlSection: b.section(t, dir), out: out})
		// The one worker holds the gate job while both pipelines fill RoadRunner's queue.
		gate := filepath.Join(dir, "gate-open")
		rr.push(job{id: "gate", pipeline: "gate", payload: map[string]any{"action": "ack", "hold_file": gate}})
		waitRecords(t, out, 1, 10*time.Second)
		var want []string
		for i := range 10 {
			rr.push(job{id: fmt.Sprint("mem", i), pipeline: "mem", payload: map[string]any{"action": "ack"}})
			rr.push(job{id: fmt.Sprint("sq", i), pipeline: "sq", payload: map[string]any{"action": "ack"}})
			want = append(want, fmt.Sprint("sq", i))
		}
		rr.resume("sq")
		rr.resume("mem")
		waitFor(t, 15*time.Second, "every job of both pipelines taken by their drivers", func() (bool, string) {
			sq, mem := rr.stat("sq"), rr.stat("mem")
			return sq.GetActive() == 10 && mem.GetActive() == 10, fmt.Sprintf("sq %v, mem %v", sq, mem)
		})
		if err := os.WriteFile(gate, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		recs := waitRecords(t, out, 21, 30*time.Second)
		var order, sq []string
		for _, r := range recs[1:] {
			order = append(order, r.ID)
			if strings.HasPrefix(r.ID, "sq") {
				sq = append(sq, r.ID)
			}
		}
		// RoadRunner runs num_workers+2 pollers; each takes a job out of the queue and then waits for
		// a worker, and the waiting pollers get the worker in no set order. So two pollers may hold
		// a memory job while the gate runs, and at the end a poller takes a memory job as soon as the
		// last sql job is held by another one, and may get the worker first. Before the sql job
		// next to last, only the first two can run.
		nextToLast := slices.Index(order, sq[len(sq)-2])
		memBefore := 0
		for _, id := range order[:nextToLast] {
			if strings.HasPrefix(id, "mem") {
				memBefore++
			}
		}
		if memBefore > 2 {
			t.Fatalf("%d memory jobs (priority 5) ran before the sql job next to last (priority 1): %v", memBefore, order)
		}
		if n := maxOvertaken(sq, want); n > 2 {
			t.Fatalf("an sql job ran before %d sql jobs of its priority pushed before it (the pollers explain 2): %v", n, sq)
		}
	})
}

// TestDestroyIsForgottenWhateverTheTracing: jobs.Destroy forgets a declared pipeline even when
// every span is sampled out, and a shutdown never forgets one.
func TestDestroyIsForgottenWhateverTheTracing(t *testing.T) {
	t.Setenv("OTEL_TRACES_SAMPLER", "always_off") // RoadRunner's tracer provider reads it
	forEachBackend(t, func(t *testing.T, b backend) {
		dir := t.TempDir()
		out := filepath.Join(dir, "out.jsonl")
		o := options{pipelines: pipelineYAML("static"), sqlSection: b.section(t, dir), out: out}
		rr := start(t, o)
		for _, name := range []string{"destroyed", "kept"} {
			if err := rr.declare(map[string]string{"driver": "sql", "name": name}); err != nil {
				t.Fatal(err)
			}
		}
		if err := rr.destroy("destroyed"); err != nil {
			t.Fatal(err)
		}
		rr.stop()
		rr = start(t, o)
		waitFor(t, 15*time.Second, "the kept pipeline restored", func() (bool, string) {
			l := rr.list()
			return slices.Contains(l, "kept"), fmt.Sprint(l)
		})
		if l := rr.list(); slices.Contains(l, "destroyed") {
			t.Fatalf("a destroyed pipeline came back after a restart: %v", l)
		}
	})
}

// TestStopWaitsForAnswersInFlight: jobs.Destroy (like a shutdown) returns only once the statement
// of an answer given before it has committed, so the job is in exactly one place afterwards.
func TestStopWaitsForAnswersInFlight(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		if b.name == "sqlite" {
			t.Skip("SQLite has one writer: a lock held by the test would block every statement, not the answer alone")
		}
		dir := t.TempDir()
		out := filepath.Join(dir, "out.jsonl")
		section := b.section(t, dir)
		dsn := lastDSN
		rr := start(t, options{pipelines: pipelineYAML("static") + pipelineYAML("p"), consume: []string{"p"}, sqlSection: section, out: out})
		rr.push(job{id: "slow", pipeline: "p", payload: map[string]any{"action": "nack_requeue", "sleep_ms": 700}})
		waitRecords(t, out, 1, 10*time.Second)

		// Lock the row while the worker is still on the job: its requeue will wait for the lock.
		db := openTestDB(t, b.name, dsn)
		tx, err := db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = tx.Rollback() }()
		var id int64
		if err := tx.QueryRow(`SELECT id FROM rr_jobs WHERE job_id = 'slow' FOR UPDATE`).Scan(&id); err != nil {
			t.Fatal(err)
		}
		waitBlockedOnLock(t, b.name, db)

		rr.destroyBlockedWhile("p", "the requeue has not committed", 800*time.Millisecond, func() {
			if err := tx.Rollback(); err != nil {
				t.Fatal(err)
			}
		})
		var reserved sql.NullString
		if err := db.QueryRow(`SELECT reserved_by FROM rr_jobs WHERE job_id = 'slow'`).Scan(&reserved); err != nil {
			t.Fatalf("the requeued job is not in the database: %v", err)
		}
		if reserved.Valid {
			t.Fatalf("the requeued job is still reserved by %s", reserved.String)
		}
	})
}

// TestJobsPastMaxAttemptsAreFailed: a job whose deliveries kept ending without an answer (its
// node died each time) is failed at its next claim without reaching a worker, auto_ack or not,
// instead of being claimed again for ever.
func TestJobsPastMaxAttemptsAreFailed(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dir := t.TempDir()
		out := filepath.Join(dir, "out.jsonl")
		section := b.section(t, dir)
		dsn := lastDSN
		rr := start(t, options{pipelines: pipelineYAML("p", "max_attempts: 2"), sqlSection: section, out: out})
		rr.push(job{id: "plain", pipeline: "p", payload: map[string]any{"action": "ack"}})
		rr.push(job{id: "auto", pipeline: "p", autoAck: true, payload: map[string]any{"action": "ack"}})
		// What two deaths of the node holding them at a worker leave behind.
		if _, err := openTestDB(t, b.name, dsn).Exec(`UPDATE rr_jobs SET attempts = 2, failures = 2`); err != nil {
			t.Fatal(err)
		}
		rr.resume("p")
		waitFor(t, 10*time.Second, "both jobs failed", func() (bool, string) {
			s := rr.sqlStats("p")
			return s.Failed == 2 && s.Ready+s.Reserved == 0, fmt.Sprintf("%+v", s)
		})
		if recs := records(t, out); len(recs) != 0 {
			t.Fatalf("a job past max_attempts reached a worker: %+v", recs)
		}
	})
}

// openTestDB opens the test database a backend section points at.
func openTestDB(t *testing.T, backend, dsn string) *sql.DB {
	t.Helper()
	driver := map[string]string{"sqlite": "sqlite", "postgres": "pgx", "mysql": "mysql"}[backend]
	if backend == "sqlite" {
		dsn += "?_pragma=busy_timeout(10000)" // rr writes the file too
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// waitBlockedOnLock waits until some session of the database waits for a row lock.
func waitBlockedOnLock(t *testing.T, backend string, db *sql.DB) {
	t.Helper()
	query := map[string]string{
		"postgres": `SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`,
		"mysql":    `SELECT COUNT(*) FROM information_schema.innodb_trx WHERE trx_state = 'LOCK WAIT'`,
	}[backend]
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		if err := db.QueryRow(query).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no statement waits for the row lock")
		}
		// InnoDB refreshes what information_schema shows of transactions only when it was last read
		// more than 0.1 s ago: polling faster would read a stale view for ever.
		time.Sleep(150 * time.Millisecond)
	}
}
