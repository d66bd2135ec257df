package tests

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	sqlrpc "github.com/rr-sql/sqljobs/rpc"
)

// pipelineYAML is one sql pipeline's YAML under jobs.pipelines, polling every 200ms unless an
// option sets poll_interval.
func pipelineYAML(name string, opts ...string) string {
	s := fmt.Sprintf("    %s:\n      driver: sql\n      config:\n", name)
	if !slices.ContainsFunc(opts, func(o string) bool { return strings.HasPrefix(o, "poll_interval:") }) {
		s += "        poll_interval: 200ms\n"
	}
	for _, o := range opts {
		s += "        " + o + "\n"
	}
	return s
}

func TestPriorityThenFIFO(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dir := t.TempDir()
		out := filepath.Join(dir, "out.jsonl")
		// One worker, and every job in the database before consuming starts: the order PHP sees is
		// the order the driver delivers.
		rr := start(t, options{pipelines: pipelineYAML("p", "prefetch: 50"), workers: 1, sqlSection: b.section(t, dir), out: out})
		var want []string
		for _, prio := range []int64{3, 1, 2} {
			for i := range 5 {
				rr.push(job{id: fmt.Sprintf("p%d-%d", prio, i), pipeline: "p", priority: prio, payload: map[string]any{"action": "ack"}})
			}
		}
		for _, prio := range []int64{1, 2, 3} {
			for i := range 5 {
				want = append(want, fmt.Sprintf("p%d-%d", prio, i))
			}
		}
		rr.resume("p")
		recs := waitRecords(t, out, 15, 20*time.Second)
		var got []string
		for _, r := range recs {
			got = append(got, r.ID)
		}
		// RoadRunner runs num_workers+2 pollers (it ignores num_pollers): with one worker, three
		// pollers each take a job out of its queue in order and race for the worker. A job may run
		// late by any number of places (its poller can keep losing), but none runs early by more
		// than two: the earlier jobs it overtakes are held by the two other pollers.
		if n := maxOvertaken(got, want); n > 2 {
			t.Fatalf("a job ran before %d jobs due before it (RoadRunner's pollers explain at most 2)\n got %v\nwant %v", n, got, want)
		}
	})
}

// A job pushed with priority 0 takes the pipeline's priority, config.priority, through jobs.Push
// and jobs.PushBatch alike: RoadRunner fills it in before the driver sees the job, from its
// pipeline entry's priority, which it reads from the config section when the entry has none.
func TestPriorityZeroTakesTheConfiguredPriority(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dir := t.TempDir()
		out := filepath.Join(dir, "out.jsonl")
		rr := start(t, options{pipelines: pipelineYAML("p", "priority: 3", "prefetch: 50"), workers: 1, sqlSection: b.section(t, dir), out: out})
		var want []string
		for i := range 5 {
			rr.push(job{id: fmt.Sprintf("five-%d", i), pipeline: "p", priority: 5, payload: map[string]any{"action": "ack"}})
		}
		// Three through jobs.Push, then two through jobs.PushBatch: FIFO within priority 3.
		var batch []job
		for i := range 5 {
			j := job{id: fmt.Sprintf("zero-%d", i), pipeline: "p", payload: map[string]any{"action": "ack"}}
			if i < 3 {
				rr.push(j)
			} else {
				batch = append(batch, j)
			}
			want = append(want, j.id)
		}
		rr.pushBatch(batch)
		for i := range 5 {
			want = append(want, fmt.Sprintf("five-%d", i))
		}
		rr.resume("p")
		var got []string
		for _, r := range waitRecords(t, out, 10, 20*time.Second) {
			got = append(got, r.ID)
		}
		// Pushed with priority 0 after the priority-5 jobs, the zero-* jobs run first only if they
		// took priority 3 (see TestPriorityThenFIFO for the 2 places RoadRunner's pollers explain).
		if n := maxOvertaken(got, want); n > 2 {
			t.Fatalf("a job ran before %d jobs due before it: priority 0 did not become config.priority 3\n got %v\nwant %v", n, got, want)
		}
	})
}

// maxOvertaken is the most jobs due earlier (in want) that any job ran before (in got).
func maxOvertaken(got, want []string) int {
	pos := map[string]int{}
	for i, id := range want {
		pos[id] = i
	}
	most := 0
	for i, id := range got {
		n := 0
		for _, later := range got[i+1:] {
			if pos[later] < pos[id] {
				n++
			}
		}
		most = max(most, n)
	}
	return most
}

func TestDelayedJobs(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dir := t.TempDir()
		out := filepath.Join(dir, "out.jsonl")
		rr := start(t, options{pipelines: pipelineYAML("p"), consume: []string{"p"}, workers: 2, sqlSection: b.section(t, dir), out: out})
		pushed := time.Now()
		// Many jobs due in the same second must all survive.
		var batch []job
		for i := range 30 {
			batch = append(batch, job{id: fmt.Sprint("delayed-", i), pipeline: "p", delay: 2, payload: map[string]any{"action": "ack"}})
		}
		rr.pushBatch(batch)
		rr.push(job{id: "now", pipeline: "p", payload: map[string]any{"action": "ack"}})
		waitFor(t, 5*time.Second, "the undelayed job, and the delayed ones counted as delayed", func() (bool, string) {
			s := rr.stat("p")
			return len(records(t, out)) >= 1 && s.GetDelayed() == 30, fmt.Sprint(s)
		})
		recs := waitRecords(t, out, 31, 20*time.Second)
		byID := countByID(recs)
		for i := range 30 {
			if byID[fmt.Sprint("delayed-", i)] != 1 {
				t.Fatalf("delayed-%d processed %d times", i, byID[fmt.Sprint("delayed-", i)])
			}
		}
		for _, r := range recs {
			if strings.HasPrefix(r.ID, "delayed-") && time.UnixMilli(r.TsMs).Sub(pushed) < 1900*time.Millisecond {
				t.Fatalf("%s ran %s after its push, before its 2s delay", r.ID, time.UnixMilli(r.TsMs).Sub(pushed))
			}
		}
	})
}

func TestRequeueWithHeaders(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dir := t.TempDir()
		out := filepath.Join(dir, "out.jsonl")
		rr := start(t, options{pipelines: pipelineYAML("p"), consume: []string{"p"}, sqlSection: b.section(t, dir), out: out})
		rr.push(job{id: "rq", pipeline: "p", headers: map[string][]string{"origin": {"test"}},
			payload: map[string]any{"action": "requeue_until", "header": "retried", "delay": 1}})
		recs := waitRecords(t, out, 2, 15*time.Second)
		first, second := recs[0], recs[1]
		if _, ok := first.Headers["retried"]; ok {
			t.Fatalf("first delivery already had the header: %v", first.Headers)
		}
		if second.Headers["retried"][0] != "1" || second.Headers["origin"][0] != "test" || second.Headers["x-sql-delivery"][0] != "2" {
			t.Fatalf("second delivery headers = %v, want retried=1 merged with origin=test, x-sql-delivery=2", second.Headers)
		}
		if gap := second.TsMs - first.TsMs; gap < 900 {
			t.Fatalf("requeued with delay 1s but redelivered after %dms", gap)
		}
		waitFor(t, 5*time.Second, "the job acked", func() (bool, string) {
			s := rr.stat("p")
			return s.GetActive()+s.GetReserved()+s.GetDelayed() == 0, fmt.Sprint(s)
		})
	})
}

// sqlStats calls the plugin's own RPC.
func (r *roadrunner) sqlStats(p string) sqlrpc.PipelineStats {
	r.t.Helper()
	var out sqlrpc.StatsResponse
	if err := r.call("sql.Stats", &sqlrpc.StatsRequest{Pipelines: []string{p}}, &out); err != nil {
		r.t.Fatalf("sql.Stats: %v", err)
	}
	return out.Stats[0]
}

func TestNackGoesToFailedJobs(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dir := t.TempDir()
		out := filepath.Join(dir, "out.jsonl")
		rr := start(t, options{pipelines: pipelineYAML("p", "max_attempts: 2", "backoff: 100ms"), consume: []string{"p"}, sqlSection: b.section(t, dir), out: out})
		rr.push(job{id: "rejected", pipeline: "p", payload: map[string]any{"action": "nack"}})
		rr.push(job{id: "broken", pipeline: "p", payload: map[string]any{"action": "fail"}})
		waitFor(t, 15*time.Second, "both jobs in the failed jobs", func() (bool, string) {
			s := rr.sqlStats("p")
			return s.Failed == 2, fmt.Sprintf("%+v", s)
		})
		byID := countByID(records(t, out))
		// A PHP nack fails at once; a worker error is retried up to max_attempts.
		if byID["rejected"] != 1 || byID["broken"] != 2 {
			t.Fatalf("deliveries = %v, want rejected once and broken twice (max_attempts 2)", byID)
		}
		var failed sqlrpc.FailedListResponse
		if err := rr.call("sql.FailedList", &sqlrpc.FailedListRequest{Pipeline: "p"}, &failed); err != nil {
			t.Fatal(err)
		}
		reasons := map[string]string{}
		for _, f := range failed.Jobs {
			reasons[f.JobID] = f.Error
		}
		if !strings.Contains(reasons["rejected"], "nack") || !strings.Contains(reasons["broken"], "max_attempts is 2") {
			t.Fatalf("failed jobs = %+v", failed.Jobs)
		}
		s := rr.stat("p")
		if s.GetActive()+s.GetReserved()+s.GetDelayed() != 0 {
			t.Fatalf("failed jobs still counted in the queue: %v", s)
		}
	})
}

func TestAutoAck(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dir := t.TempDir()
		out := filepath.Join(dir, "out.jsonl")
		rr := start(t, options{pipelines: pipelineYAML("p"), consume: []string{"p"}, sqlSection: b.section(t, dir), out: out})
		// auto_ack is at-most-once: the job leaves the database as it leaves for the worker, so even
		// a failing job is neither retried nor failed.
		rr.push(job{id: "fire-and-forget", pipeline: "p", autoAck: true, payload: map[string]any{"action": "fail"}})
		rr.push(job{id: "marker", pipeline: "p", payload: map[string]any{"action": "ack", "sleep_ms": 300}})
		waitRecords(t, out, 2, 10*time.Second)
		waitFor(t, 10*time.Second, "an empty queue", func() (bool, string) {
			s := rr.stat("p")
			return s.GetActive()+s.GetReserved()+s.GetDelayed() == 0, fmt.Sprint(s)
		})
		if n := countByID(records(t, out))["fire-and-forget"]; n != 1 {
			t.Fatalf("auto_ack job delivered %d times", n)
		}
		if s := rr.sqlStats("p"); s.Failed != 0 {
			t.Fatalf("auto_ack job reached the failed jobs: %+v", s)
		}
	})
}

func TestPauseResumeStrandsNothing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dir := t.TempDir()
		out := filepath.Join(dir, "out.jsonl")
		rr := start(t, options{pipelines: pipelineYAML("p", "prefetch: 20"), consume: []string{"p"}, workers: 2, sqlSection: b.section(t, dir), out: out})
		var batch []job
		for i := range 40 {
			batch = append(batch, job{id: fmt.Sprint("j", i), pipeline: "p", payload: map[string]any{"action": "ack", "sleep_ms": 50}})
		}
		rr.pushBatch(batch)
		waitRecords(t, out, 4, 10*time.Second)
		rr.pause("p")
		// Jobs at workers finish; those waiting in RoadRunner's queue go back to ready.
		var paused string
		waitFor(t, 10*time.Second, "nothing reserved while paused", func() (bool, string) {
			s := rr.stat("p")
			paused = fmt.Sprint(s)
			return !s.GetReady() && s.GetActive() == 0 && s.GetReserved()+int64(len(countByID(records(t, out)))) == 40, paused
		})
		done := len(countByID(records(t, out)))
		stableFor(t, 600*time.Millisecond, "no job runs while paused", func() (bool, string) {
			n := len(countByID(records(t, out)))
			return n == done, fmt.Sprintf("%d processed, %d at pause", n, done)
		})
		rr.resume("p")
		recs := waitRecords(t, out, 40, 30*time.Second)
		for id, n := range countByID(recs) {
			if n != 1 {
				t.Fatalf("job %s processed %d times", id, n)
			}
		}
		if len(countByID(recs)) != 40 {
			t.Fatalf("processed %d distinct jobs, want 40", len(countByID(recs)))
		}
	})
}

func TestDeclareAndDestroyAtRuntime(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dir := t.TempDir()
		out := filepath.Join(dir, "out.jsonl")
		rr := start(t, options{pipelines: pipelineYAML("static"), sqlSection: b.section(t, dir), out: out})

		err := rr.declare(map[string]string{"driver": "sql", "name": "bad", "prefetch": "lots"})
		if err == nil || !strings.Contains(err.Error(), `option "prefetch"`) || !strings.Contains(err.Error(), "integer") {
			t.Fatalf("declare with a bad option: err = %v", err)
		}
		err = rr.declare(map[string]string{"driver": "sql", "name": "bad2", "prefech": "1"})
		if err == nil || !strings.Contains(err.Error(), `unknown option "prefech"`) {
			t.Fatalf("declare with an unknown option: err = %v", err)
		}
		if l := rr.list(); slices.Contains(l, "bad") || slices.Contains(l, "bad2") {
			t.Fatalf("a rejected pipeline was created: %v", l)
		}

		if err := rr.declare(map[string]string{"driver": "sql", "name": "dyn", "priority": "3", "prefetch": "5", "poll_interval": "100ms"}); err != nil {
			t.Fatal(err)
		}
		rr.resume("dyn")
		rr.push(job{id: "d1", pipeline: "dyn", payload: map[string]any{"action": "ack"}})
		recs := waitRecords(t, out, 1, 10*time.Second)
		if recs[0].Pipeline != "dyn" {
			t.Fatalf("record = %+v", recs[0])
		}
		if s := rr.stat("dyn"); s.GetPriority() != 3 || !s.GetReady() || s.GetDriver() != "sql" {
			t.Fatalf("stat of the declared pipeline = %v", s)
		}
		rr.pause("dyn")
		rr.push(job{id: "kept", pipeline: "dyn", payload: map[string]any{"action": "ack"}})
		if err := rr.destroy("dyn"); err != nil {
			t.Fatal(err)
		}
		if slices.Contains(rr.list(), "dyn") {
			t.Fatal("destroyed pipeline still listed")
		}
		// Its jobs stay in the database: declaring it again delivers them.
		if err := rr.declare(map[string]string{"driver": "sql", "name": "dyn"}); err != nil {
			t.Fatal(err)
		}
		rr.resume("dyn")
		recs = waitRecords(t, out, 2, 10*time.Second)
		if recs[1].ID != "kept" {
			t.Fatalf("after re-declare got %+v", recs[1])
		}
	})
}

func TestStatWhilePausedAndAfterRestart(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dir := t.TempDir()
		out := filepath.Join(dir, "out.jsonl")
		section := b.section(t, dir)
		o := options{pipelines: pipelineYAML("p", "priority: 7"), sqlSection: section, out: out}
		rr := start(t, o)
		for i := range 5 {
			rr.push(job{id: fmt.Sprint("r", i), pipeline: "p", payload: map[string]any{"action": "ack"}})
		}
		for i := range 3 {
			rr.push(job{id: fmt.Sprint("d", i), pipeline: "p", delay: 600, payload: map[string]any{"action": "ack"}})
		}
		check := func(rr *roadrunner) {
			s := rr.stat("p")
			if s.GetReady() || s.GetReserved() != 5 || s.GetDelayed() != 3 || s.GetActive() != 0 || s.GetPriority() != 7 || s.GetDriver() != "sql" || s.GetQueue() != "p" {
				t.Fatalf("stat = %v; want paused with 5 ready (Reserved), 3 delayed, 0 active, priority 7", s)
			}
		}
		check(rr)
		rr.stop()
		check(start(t, o))
	})
}
