package tests

import (
	"cmp"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	jobsProto "github.com/roadrunner-server/api/v4/build/jobs/v1"
)

// sqlPushBatch sends jobs through sql.PushBatch: the protobuf request of jobs.PushBatch, over the
// same goridge client.
func (r *roadrunner) sqlPushBatch(js []job) error {
	req := &jobsProto.PushBatchRequest{}
	for _, j := range js {
		req.Jobs = append(req.Jobs, j.proto())
	}
	return r.call("sql.PushBatch", req, &jobsProto.Empty{})
}

// waiting is a pipeline's ready and delayed jobs in the database (jobs.Stat).
func (r *roadrunner) waiting(p string) (ready, delayed int64) {
	s := r.stat(p)
	return s.GetReserved(), s.GetDelayed()
}

// TestSQLPushBatch: 1,000 jobs for two sql pipelines of one connection, with priorities (0
// taking the pipeline's, as jobs.PushBatch gives it), delays, auto_ack and headers, sent in one
// sql.PushBatch: all are in the database when the call returns, the PHP worker runs each once,
// the ready ones of a pipeline by priority then in the batch's order, the delayed ones not before
// their delay.
func TestSQLPushBatch(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dir := t.TempDir()
		out := filepath.Join(dir, "out.jsonl")
		rr := start(t, options{pipelines: pipelineYAML("a", "prefetch: 1000") + pipelineYAML("b"), workers: 1,
			sqlSection: b.section(t, dir), out: out})
		const delay = 3
		var batch []job
		priorities := []int64{0, 1, 2, 20, 3} // 0: the pipeline's (10)
		for i := range 1000 {
			j := job{id: fmt.Sprintf("j%04d", i), pipeline: []string{"a", "b"}[i%2], priority: priorities[i/2%5],
				payload: map[string]any{"action": "ack"}, headers: map[string][]string{"x-batch": {fmt.Sprint(i)}}, autoAck: i%7 == 0}
			if i/2%10 == 9 { // every tenth job of each pipeline
				j.delay = delay
			}
			batch = append(batch, j)
		}
		pushed := time.Now()
		if err := rr.sqlPushBatch(batch); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"a", "b"} {
			if ready, delayed := rr.waiting(p); ready != 450 || delayed != 50 {
				t.Fatalf("pipeline %s right after sql.PushBatch: %d ready, %d delayed; want 450 and 50", p, ready, delayed)
			}
			if n := counterValue(t, rr, "rr_sql_jobs_pushed_total", p); n != 500 {
				t.Fatalf("rr_sql_jobs_pushed_total of %s: %v, want 500", p, n)
			}
		}

		// Pipeline a alone, one worker: its ready jobs run by priority, then in the batch's order.
		rr.resume("a")
		var want []job
		delayed := map[string]bool{}
		for _, j := range batch {
			delayed[j.id] = j.delay > 0
			if j.pipeline == "a" && j.delay == 0 {
				want = append(want, j)
			}
		}
		effective := func(j job) int64 { return cmp.Or(j.priority, 10) }
		slices.SortStableFunc(want, func(x, y job) int { return cmp.Compare(effective(x), effective(y)) })
		wantIDs := make([]string, len(want))
		for i, j := range want {
			wantIDs[i] = j.id
		}
		recs := waitRecords(t, out, len(want), 60*time.Second)
		var got []string
		for _, r := range recs {
			if r.Pipeline == "a" && !delayed[r.ID] {
				got = append(got, r.ID)
			}
		}
		// RoadRunner's pollers (workers+2) may let a job overtake at most two (see TestPriorityThenFIFO).
		if n := maxOvertaken(got, wantIDs); n > 2 {
			t.Fatalf("a job of pipeline a ran before %d jobs due before it\n got %v\nwant %v", n, got, wantIDs)
		}

		rr.resume("b")
		recs = waitRecords(t, out, 1000, 60*time.Second)
		byID := map[string]record{}
		for _, r := range recs {
			if _, twice := byID[r.ID]; twice {
				t.Fatalf("job %s ran twice", r.ID)
			}
			byID[r.ID] = r
		}
		for i, j := range batch {
			r, ok := byID[j.id]
			switch {
			case !ok:
				t.Fatalf("job %s never ran (%d jobs ran)", j.id, len(byID))
			case r.Pipeline != j.pipeline || r.Driver != "sql" || len(r.Headers["x-batch"]) != 1 || r.Headers["x-batch"][0] != fmt.Sprint(i):
				t.Fatalf("job %s reached the worker as %+v, want pipeline %s and header x-batch %d", j.id, r, j.pipeline, i)
			case j.delay > 0 && time.UnixMilli(r.TsMs).Before(pushed.Add(delay*time.Second)):
				t.Fatalf("job %s, delayed %ds, ran %s after the push", j.id, delay, time.UnixMilli(r.TsMs).Sub(pushed))
			}
		}
		stableFor(t, time.Second, "every job ran once", func() (bool, string) {
			n := len(records(t, out))
			return n == 1000, fmt.Sprintf("%d records", n)
		})
	})
}

// TestSQLPushBatchIsAllOrNone: a batch whose jobs span two connections is refused with an error
// naming them, and a batch with one job the driver refuses (over max_payload) is refused whole:
// neither writes a job.
func TestSQLPushBatchIsAllOrNone(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dir := t.TempDir()
		section := b.section(t, dir) + fmt.Sprintf("    other:\n      dsn: %q\n      synchronous: normal\n", filepath.Join(dir, "other.db"))
		rr := start(t, options{pipelines: pipelineYAML("a") + pipelineYAML("b", "max_payload: 1KB") + pipelineYAML("elsewhere", "connection: other"),
			sqlSection: section, out: filepath.Join(dir, "out.jsonl")})
		var batch []job
		for i := range 1000 {
			batch = append(batch, job{id: fmt.Sprint("j", i), pipeline: []string{"a", "b"}[i%2], payload: map[string]any{"action": "ack"}})
		}

		spanning := slices.Clone(batch)
		spanning[700].pipeline = "elsewhere"
		err := rr.sqlPushBatch(spanning)
		if err == nil || !strings.Contains(err.Error(), "connection default (pipelines a, b) and connection other (pipelines elsewhere)") {
			t.Fatalf("a batch over two connections: error %v; want one naming both connections and their pipelines", err)
		}

		oversized := slices.Clone(batch)
		oversized[901].payload = strings.Repeat("x", 2000)
		err = rr.sqlPushBatch(oversized)
		if err == nil || !strings.Contains(err.Error(), "job 902: push job j901 to pipeline b: the payload is 2000 bytes, more than max_payload (1000 bytes)") {
			t.Fatalf("a batch with a job over max_payload: error %v; want one naming the job and max_payload", err)
		}

		for _, p := range []string{"a", "b", "elsewhere"} {
			if ready, delayed := rr.waiting(p); ready != 0 || delayed != 0 || counterValue(t, rr, "rr_sql_jobs_pushed_total", p) != 0 {
				t.Fatalf("pipeline %s after two refused batches: %d ready, %d delayed, %v counted pushed; want nothing", p, ready, delayed,
					counterValue(t, rr, "rr_sql_jobs_pushed_total", p))
			}
		}
		// The same batch without its bad job goes in whole.
		if err := rr.sqlPushBatch(batch); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"a", "b"} {
			if ready, _ := rr.waiting(p); ready != 500 {
				t.Fatalf("pipeline %s: %d ready, want 500", p, ready)
			}
		}
	})
}

// TestSQLPushBatchFromPHP: the real spiral/roadrunner-jobs client sends its own PushBatchRequest
// (Queue::dispatchMany, routed to sql.PushBatch) and one built from its protobuf classes, over
// goridge's ProtobufCodec; the worker runs every job once with its headers, and a batch for an
// unknown pipeline comes back to PHP as an exception naming it.
func TestSQLPushBatchFromPHP(t *testing.T) {
	client := phpClient(t)
	forEachBackend(t, func(t *testing.T, b backend) {
		dir := t.TempDir()
		out := filepath.Join(dir, "out.jsonl")
		rr := start(t, options{pipelines: pipelineYAML("reports"), consume: []string{"reports"}, sqlSection: b.section(t, dir), out: out})
		const count = 300
		cmd := exec.Command("php", phpPath(t, "push_batch.php"), "tcp://"+rr.rpcAddr, "reports", fmt.Sprint(count))
		cmd.Env = append(os.Environ(), "RR_PHP_CLIENT="+client)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		stdout, err := cmd.Output()
		if err != nil {
			t.Fatalf("push_batch.php: %v\n%s%s", err, stdout, stderr.String())
		}
		var sent struct {
			Dispatched, Built []string
			Error             string
		}
		if err := json.Unmarshal(stdout, &sent); err != nil {
			t.Fatalf("push_batch.php printed %q: %v", stdout, err)
		}
		if len(sent.Dispatched) != count || len(sent.Built) != count {
			t.Fatalf("push_batch.php sent %d and %d jobs, want %d each", len(sent.Dispatched), len(sent.Built), count)
		}
		if !strings.Contains(sent.Error, `unknown sql pipeline "no-such-pipeline"`) {
			t.Fatalf("the batch for an unknown pipeline: PHP caught %q, want the pipeline named", sent.Error)
		}
		recs := waitRecords(t, out, 2*count, 60*time.Second)
		byID := map[string]record{}
		for _, r := range recs {
			if _, twice := byID[r.ID]; twice {
				t.Fatalf("job %s ran twice", r.ID)
			}
			byID[r.ID] = r
		}
		for from, ids := range map[string][]string{"dispatchMany": sent.Dispatched, "built": sent.Built} {
			for _, id := range ids {
				r, ok := byID[id]
				if !ok || r.Pipeline != "reports" || len(r.Headers["x-from"]) != 1 || r.Headers["x-from"][0] != from {
					t.Fatalf("job %s (%s) reached the worker as %+v (found: %v)", id, from, r, ok)
				}
			}
		}
	})
}

// TestSQLPushBatchWithUniqueKeys: in a sql.PushBatch, a job whose unique key a waiting job holds,
// or an earlier job of the batch, creates nothing and is counted as a duplicate; the rest of the
// batch is stored and run.
func TestSQLPushBatchWithUniqueKeys(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dir := t.TempDir()
		out := filepath.Join(dir, "out.jsonl")
		rr := start(t, options{pipelines: pipelineYAML("p"), sqlSection: b.section(t, dir), out: out})
		ack := map[string]any{"action": "ack"}
		key := func(k string) map[string][]string { return map[string][]string{uniqueHeader: {k}} }
		rr.push(job{id: "held", pipeline: "p", payload: ack, headers: key("k1")})
		err := rr.sqlPushBatch([]job{
			{id: "a", pipeline: "p", payload: ack},
			{id: "dup-of-held", pipeline: "p", payload: ack, headers: key("k1")},
			{id: "first-k2", pipeline: "p", payload: ack, headers: key("k2")},
			{id: "second-k2", pipeline: "p", payload: ack, headers: key("k2")},
			{id: "b", pipeline: "p", payload: ack},
		})
		if err != nil {
			t.Fatal(err)
		}
		if s := rr.sqlStats("p"); s.Ready != 4 {
			t.Fatalf("after a batch of 5 jobs, 2 of them duplicates, behind 1 job: %+v, want 4 ready", s)
		}
		if dups := counterValue(t, rr, "rr_sql_jobs_duplicate_total", "p"); dups != 2 {
			t.Fatalf("rr_sql_jobs_duplicate_total{pipeline=p} = %v, want 2", dups)
		}
		rr.resume("p")
		var got []string
		for _, r := range waitRecords(t, out, 4, 15*time.Second) {
			got = append(got, r.ID)
		}
		slices.Sort(got)
		if want := []string{"a", "b", "first-k2", "held"}; !slices.Equal(got, want) {
			t.Fatalf("ran %v, want %v", got, want)
		}
		stableFor(t, time.Second, "no duplicate runs", func() (bool, string) {
			n := len(records(t, out))
			return n == 4, fmt.Sprintf("%d jobs ran", n)
		})
	})
}
