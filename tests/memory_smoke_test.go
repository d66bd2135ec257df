package tests_test

// Smoke tests of the harness and the PHP worker on RoadRunner's own in-memory driver: they prove
// the test machinery independently of the sql driver.

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/roadrunner-server/memory/v5"
	"github.com/rr-sql/sqljobs/tests/harness"
)

const memPipeline = `
mem:
  driver: memory
  config:
    priority: 10
    prefetch: 1000
`

func startMemory(t *testing.T, workers int) *harness.RR {
	t.Helper()
	return harness.Start(t, harness.Options{
		Pipelines: memPipeline,
		Consume:   []string{"mem"},
		Workers:   workers,
		Plugins:   []any{&memory.Plugin{}},
	})
}

func TestMemorySmokeExactlyOnce(t *testing.T) {
	rr := startMemory(t, 4)
	var batch []harness.Job
	for i := range 50 {
		batch = append(batch, harness.Job{ID: fmt.Sprint("b-", i), Pipeline: "mem", Payload: harness.Task{N: i},
			Headers: map[string][]string{"tenant": {"acme"}}})
	}
	harness.Must(t, rr.Jobs.PushBatch(batch...))
	for i := range 50 {
		harness.Must(t, rr.Jobs.Push(harness.Job{ID: fmt.Sprint("p-", i), Pipeline: "mem", Payload: harness.Task{Action: "ack", N: i}}))
	}
	recs := rr.WaitFor(t, 30*time.Second, "100 distinct jobs", func(rs []harness.Record) bool { return len(harness.CountByID(rs)) == 100 })
	for id, n := range harness.CountByID(recs) {
		if n != 1 {
			t.Errorf("job %s delivered %d times", id, n)
		}
	}
	pids := map[int]bool{}
	for _, r := range recs {
		pids[r.PID] = true
		if r.Driver != "memory" || r.Pipeline != "mem" || r.Job != harness.DefaultJobName || r.Action != "ack" {
			t.Fatalf("unexpected record %+v", r)
		}
	}
	b7 := harness.Deliveries(recs, "b-7")[0]
	if b7.Header("tenant") != "acme" || b7.Payload != `{"n":7}` {
		t.Fatalf("headers or payload lost: %+v", b7)
	}
	t.Logf("100 jobs through %d PHP workers", len(pids))
	harness.Eventually(t, 10*time.Second, "no active jobs", func() (bool, string) {
		s, err := rr.Jobs.StatOf("mem")
		if err != nil {
			return false, err.Error()
		}
		return s.GetActive() == 0, s.String()
	})
	harness.Consistently(t, 300*time.Millisecond, "exactly 100 deliveries", func() (bool, string) {
		n := len(rr.Records(t))
		return n == 100, fmt.Sprint(n, " deliveries")
	})
}

func TestMemorySmokeRequeueHeaders(t *testing.T) {
	rr := startMemory(t, 2)
	harness.Must(t, rr.Jobs.Push(harness.Job{ID: "rq", Pipeline: "mem", Headers: map[string][]string{"tenant": {"acme"}},
		Payload: harness.Task{RequeueUntilHeader: "retried", DelaySeconds: 1, Headers: map[string][]string{"note": {"a", "b"}}}}))
	recs := rr.WaitFor(t, 15*time.Second, "the requeued delivery", func(rs []harness.Record) bool { return len(harness.Deliveries(rs, "rq")) >= 2 })
	d := harness.Deliveries(recs, "rq")
	if d[0].Action != "requeue" || d[0].Header("retried") != "" || d[0].Header("tenant") != "acme" {
		t.Fatalf("first delivery %+v", d[0])
	}
	if d[1].Action != "ack" || d[1].Header("retried") != "1" || !slices.Equal(d[1].Headers["note"], []string{"a", "b"}) || d[1].Header("tenant") != "acme" {
		t.Fatalf("second delivery (headers must reach PHP) %+v", d[1])
	}
	if gap := d[1].TsMs - d[0].TsMs; gap < 900 {
		t.Fatalf("requeued with delay_seconds 1, redelivered after %d ms", gap)
	}
	harness.Consistently(t, 300*time.Millisecond, "two deliveries", func() (bool, string) {
		n := len(harness.Deliveries(rr.Records(t), "rq"))
		return n == 2, fmt.Sprint(n, " deliveries")
	})
}

// TestMemorySmokeFailures: the memory driver drops a job on Nack (worker error, crash, nack
// without requeue): the worker sees it once, and later jobs still run.
func TestMemorySmokeFailures(t *testing.T) {
	rr := startMemory(t, 2)
	for _, j := range []harness.Job{
		{ID: "fail", Payload: harness.Task{Action: "fail", Message: "boom"}},
		{ID: "nack", Payload: harness.Task{Action: "nack"}},
		{ID: "crash", Payload: harness.Task{Action: "crash"}},
		{ID: "text", Payload: "not json at all"},
		{ID: "list", Payload: "[1,2]"},
	} {
		j.Pipeline = "mem"
		harness.Must(t, rr.Jobs.Push(j))
	}
	recs := rr.WaitFor(t, 20*time.Second, "5 jobs", func(rs []harness.Record) bool { return len(harness.CountByID(rs)) == 5 })
	want := map[string]string{"fail": "fail", "nack": "nack", "crash": "crash", "text": "ack", "list": "ack"}
	for _, r := range recs {
		if want[r.ID] != r.Action {
			t.Errorf("job %s: worker action %s, want %s", r.ID, r.Action, want[r.ID])
		}
	}
	if p := harness.Deliveries(recs, "text")[0].Payload; p != "not json at all" {
		t.Errorf("raw payload recorded as %q", p)
	}
	// After a crash the pool starts a new worker: jobs keep flowing.
	harness.Must(t, rr.Jobs.Push(harness.Job{ID: "after", Pipeline: "mem"}))
	rr.WaitFor(t, 20*time.Second, "a job after the crash", func(rs []harness.Record) bool { return len(harness.Deliveries(rs, "after")) == 1 })
	harness.Eventually(t, 10*time.Second, "no active jobs", func() (bool, string) {
		s, err := rr.Jobs.StatOf("mem")
		if err != nil {
			return false, err.Error()
		}
		return s.GetActive() == 0, s.String()
	})
	harness.Consistently(t, time.Second, "no redelivery of failed jobs", func() (bool, string) {
		c := harness.CountByID(rr.Records(t))
		return c["fail"] == 1 && c["nack"] == 1 && c["crash"] == 1, fmt.Sprint(c)
	})
}

func TestMemorySmokeRPC(t *testing.T) {
	rr := startMemory(t, 2)
	s, err := rr.Jobs.StatOf("mem")
	harness.Must(t, err)
	if s.GetDriver() != "memory" || s.GetPriority() != 10 || !s.GetReady() {
		t.Fatalf("stat %v", s)
	}
	if err := rr.Jobs.Push(harness.Job{Pipeline: "mem"}); err == nil {
		t.Fatal("push without an id: want an error")
	}

	// Pause: pushed jobs wait; Resume: they run.
	harness.Must(t, rr.Jobs.Pause("mem"))
	for i := range 3 {
		harness.Must(t, rr.Jobs.Push(harness.Job{ID: fmt.Sprint("paused-", i), Pipeline: "mem"}))
	}
	harness.Consistently(t, 500*time.Millisecond, "nothing runs while paused", func() (bool, string) {
		n := len(rr.Records(t))
		return n == 0, fmt.Sprint(n, " deliveries")
	})
	harness.Must(t, rr.Jobs.Resume("mem"))
	rr.WaitFor(t, 10*time.Second, "the 3 jobs pushed while paused", func(rs []harness.Record) bool { return len(rs) == 3 })

	// Declare: a pipeline not in jobs.consume exists but is not running until Resume.
	harness.Must(t, rr.Jobs.Declare(map[string]string{"driver": "memory", "name": "dyn", "priority": "3", "prefetch": "10"}))
	names, err := rr.Jobs.List()
	harness.Must(t, err)
	if !slices.Equal(names, []string{"dyn", "mem"}) {
		t.Fatalf("list %v", names)
	}
	harness.Must(t, rr.Jobs.Resume("dyn"))
	harness.Must(t, rr.Jobs.Push(harness.Job{ID: "on-dyn", Pipeline: "dyn"}))
	recs := rr.WaitFor(t, 10*time.Second, "the job on the declared pipeline", func(rs []harness.Record) bool { return len(harness.Deliveries(rs, "on-dyn")) == 1 })
	if r := harness.Deliveries(recs, "on-dyn")[0]; r.Pipeline != "dyn" {
		t.Fatalf("record %+v", r)
	}
	s, err = rr.Jobs.StatOf("dyn")
	harness.Must(t, err)
	if s.GetPriority() != 3 {
		t.Fatalf("declared priority: stat %v", s)
	}
	destroyed, err := rr.Jobs.Destroy("dyn")
	harness.Must(t, err)
	if !slices.Equal(destroyed, []string{"dyn"}) {
		t.Fatalf("destroyed %v", destroyed)
	}
	names, err = rr.Jobs.List()
	harness.Must(t, err)
	if !slices.Equal(names, []string{"mem"}) {
		t.Fatalf("list after destroy %v", names)
	}
	rr.Stop(t)
	rr.Stop(t) // idempotent
}

// TestHarnessStartErr: a pipeline RoadRunner cannot build is reported by StartErr.
func TestHarnessStartErr(t *testing.T) {
	err := harness.StartErr(t, harness.Options{
		Pipelines: "mem:\n  driver: memory\n  config:\n    prefetch: lots\n",
		Consume:   []string{"mem"},
		Plugins:   []any{&memory.Plugin{}},
	}, 10*time.Second)
	if err == nil {
		t.Fatal("want an error for a bad prefetch")
	}
	t.Logf("start error: %v", err)
}

// TestHarnessRestartSameOut: a second RoadRunner on the same records file sees both runs.
func TestHarnessRestartSameOut(t *testing.T) {
	rr := startMemory(t, 1)
	harness.Must(t, rr.Jobs.Push(harness.Job{ID: "run-1", Pipeline: "mem"}))
	rr.WaitFor(t, 10*time.Second, "run-1", func(rs []harness.Record) bool { return len(rs) == 1 })
	rr.Stop(t)

	o := rr.Options
	o.Plugins = []any{&memory.Plugin{}}
	o.Overrides = []string{"jobs.pool.num_workers=3"}
	rr2 := harness.Start(t, o)
	harness.Must(t, rr2.Jobs.Push(harness.Job{ID: "run-2", Pipeline: "mem"}))
	recs := rr2.WaitFor(t, 10*time.Second, "run-2", func(rs []harness.Record) bool { return len(rs) == 2 })
	if recs[0].ID != "run-1" || recs[1].ID != "run-2" || recs[0].PID == recs[1].PID {
		t.Fatalf("records %+v", recs)
	}
}
