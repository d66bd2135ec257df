package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRestartRecovery stops RoadRunner with jobs queued and at workers, starts it again on the
// same database, and checks that every job is processed and the counters never go negative.
func TestRestartRecovery(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dir := t.TempDir()
		out := filepath.Join(dir, "out.jsonl")
		o := options{pipelines: pipelineYAML("p", "prefetch: 10"), consume: []string{"p"}, workers: 2, sqlSection: b.section(t, dir), out: out}
		rr := start(t, o)
		var batch []job
		for i := range 60 {
			batch = append(batch, job{id: fmt.Sprint("j", i), pipeline: "p", payload: map[string]any{"action": "ack", "sleep_ms": 40}})
		}
		rr.pushBatch(batch)
		waitRecords(t, out, 5, 10*time.Second)
		rr.stop() // jobs in flight, jobs queued in RoadRunner, jobs ready in the database

		rr = start(t, o)
		var last string
		waitFor(t, 60*time.Second, "all 60 jobs processed after the restart", func() (bool, string) {
			s := rr.stat("p")
			if s.GetActive() < 0 || s.GetReserved() < 0 || s.GetDelayed() < 0 {
				t.Fatalf("negative counter: %v", s)
			}
			last = fmt.Sprint(s)
			return len(countByID(records(t, out))) == 60 && s.GetActive()+s.GetReserved() == 0, fmt.Sprintf("%d distinct processed; %s", len(countByID(records(t, out))), last)
		})
		// A job may run twice only if it was at a worker when the first instance stopped.
		for id, n := range countByID(records(t, out)) {
			if n > 2 {
				t.Fatalf("job %s processed %d times", id, n)
			}
		}
	})
}

// TestTenThousandJobsFourWorkers pushes 10,000 jobs and checks that 4 PHP workers process each
// exactly once. The time is logged, not asserted (timings belong to benchmarks).
func TestTenThousandJobsFourWorkers(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dir := t.TempDir()
		out := filepath.Join(dir, "out.jsonl")
		rr := start(t, options{pipelines: pipelineYAML("p", "prefetch: 200"), consume: []string{"p"}, workers: 4, sqlSection: b.section(t, dir), out: out})
		const total = 10_000
		startAt := time.Now()
		batch := make([]job, 0, 500)
		for i := range total {
			batch = append(batch, job{id: fmt.Sprint("job-", i), pipeline: "p", payload: map[string]any{"action": "ack"}})
			if len(batch) == cap(batch) {
				rr.pushBatch(batch)
				batch = batch[:0]
			}
		}
		pushed := time.Since(startAt)
		recs := waitRecords(t, out, total, 5*time.Minute)
		elapsed := time.Since(startAt)
		byID := countByID(recs)
		if len(byID) != total || len(recs) != total {
			t.Fatalf("%d records of %d distinct jobs, want %d exactly once", len(recs), len(byID), total)
		}
		for i := range total {
			if byID[fmt.Sprint("job-", i)] != 1 {
				t.Fatalf("job-%d processed %d times", i, byID[fmt.Sprint("job-", i)])
			}
		}
		pids := map[int]bool{}
		for _, r := range recs {
			pids[r.PID] = true
		}
		if len(pids) != 4 {
			t.Fatalf("jobs ran on %d PHP processes, want 4", len(pids))
		}
		t.Logf("%s: 10,000 jobs pushed in %s, all processed by 4 PHP workers in %s (%.0f jobs/s end to end)",
			b.name, pushed.Round(time.Millisecond), elapsed.Round(time.Millisecond), total/elapsed.Seconds())
		waitFor(t, 10*time.Second, "acks to empty the queue", func() (bool, string) {
			s := rr.stat("p")
			return s.GetActive()+s.GetReserved()+s.GetDelayed() == 0, fmt.Sprint(s)
		})
	})
}

// TestBadConfigurationStopsRoadRunner checks that each configuration mistake stops RoadRunner at
// start with an error that names the key and what is allowed.
func TestBadConfigurationStopsRoadRunner(t *testing.T) {
	unwritable := filepath.Join(t.TempDir(), "ro")
	if err := os.Mkdir(unwritable, 0o500); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, pipelines, section string
		want                     []string
	}{
		{"unknown option", pipelineYAML("p", "prefetchh: 5"), "", []string{`unknown option "prefetchh"`, "allowed:"}},
		{"wrong type", pipelineYAML("p", "prefetch: many"), "", []string{`option "prefetch"`, "integer"}},
		{"unknown connection", pipelineYAML("p", "connection: nope"), "", []string{`unknown connection "nope"`, "default"}},
		{"unknown dialect", pipelineYAML("p"), "sql:\n  connections:\n    default:\n      dialect: oracle\n      dsn: x\n", []string{`option "dialect"`, "sqlite, postgres, mysql"}},
		{"unwritable sqlite path", pipelineYAML("p"), fmt.Sprintf("sql:\n  connections:\n    default:\n      dsn: %q\n", filepath.Join(unwritable, "sub", "jobs.db")), []string{"does not exist"}},
	}
	if os.Geteuid() != 0 { // root writes anywhere: only a missing directory can be tested as root
		cases = append(cases, struct {
			name, pipelines, section string
			want                     []string
		}{"read-only directory", pipelineYAML("p"), fmt.Sprintf("sql:\n  connections:\n    default:\n      dsn: %q\n", filepath.Join(unwritable, "jobs.db")), []string{"jobs.db"}})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			section := tc.section
			if section == "" {
				section = fmt.Sprintf("sql:\n  connections:\n    default:\n      dsn: %q\n", filepath.Join(dir, "jobs.db"))
			}
			err := startErr(t, options{pipelines: tc.pipelines, consume: []string{"p"}, sqlSection: section, out: filepath.Join(dir, "out.jsonl")})
			if err == nil {
				t.Fatal("RoadRunner started")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
		})
	}
}

// TestAnswerAfterDestroy destroys a pipeline while its job is at a worker: Stop waits for the
// answer, so the job is acked once and never comes back.
func TestAnswerAfterDestroy(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dir := t.TempDir()
		out := filepath.Join(dir, "out.jsonl")
		rr := start(t, options{pipelines: pipelineYAML("static"), sqlSection: b.section(t, dir), out: out})
		if err := rr.declare(map[string]string{"driver": "sql", "name": "dyn", "poll_interval": "100ms"}); err != nil {
			t.Fatal(err)
		}
		rr.resume("dyn")
		gate := filepath.Join(dir, "gate-open")
		rr.push(job{id: "slow", pipeline: "dyn", payload: map[string]any{"action": "ack", "hold_file": gate}})
		waitRecords(t, out, 1, 10*time.Second)
		rr.destroyBlockedWhile("dyn", "the job is at the worker", 500*time.Millisecond, func() {
			if err := os.WriteFile(gate, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		})
		if err := rr.declare(map[string]string{"driver": "sql", "name": "dyn", "poll_interval": "100ms"}); err != nil {
			t.Fatal(err)
		}
		rr.resume("dyn")
		stableFor(t, 1500*time.Millisecond, "the acked job does not come back", func() (bool, string) {
			n := countByID(records(t, out))["slow"]
			return n == 1, fmt.Sprint(n, " deliveries")
		})
		if s := rr.stat("dyn"); s.GetActive()+s.GetReserved()+s.GetDelayed() != 0 {
			t.Fatalf("stat after the late ack = %v", s)
		}
	})
}
