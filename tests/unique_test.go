package tests

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jobsProto "github.com/roadrunner-server/api/v4/build/jobs/v1"
)

// uniqueHeader is the header whose first value is a job's unique key.
const uniqueHeader = "x-sql-unique-key"

// TestUniqueJobsFromPHP: PHP pushes with the real spiral/roadrunner-jobs client, a unique key in
// a header; the duplicate push succeeds (no exception) without creating a second job, and the
// worker runs one job per key.
func TestUniqueJobsFromPHP(t *testing.T) {
	client := phpClient(t)
	forEachBackend(t, func(t *testing.T, b backend) {
		dir := t.TempDir()
		out := filepath.Join(dir, "out.jsonl")
		rr := start(t, options{pipelines: pipelineYAML("reports"), sqlSection: b.section(t, dir), out: out})
		cmd := exec.Command("php", phpPath(t, "unique_push.php"), "tcp://"+rr.rpcAddr, "reports", "report-1", "report-1", "report-2")
		cmd.Env = append(os.Environ(), "RR_PHP_CLIENT="+client)
		printed, err := cmd.Output()
		if err != nil {
			t.Fatalf("unique_push.php: %v\n%s", err, printed)
		}
		lines := strings.Fields(string(printed))
		if len(lines) != 6 {
			t.Fatalf("unique_push.php printed %q, want 3 pushes", printed)
		}
		first, dup, other := lines[1], lines[3], lines[5]
		if s := rr.sqlStats("reports"); s.Ready != 2 {
			t.Fatalf("after 3 pushes of 2 keys: %+v, want 2 jobs ready", s)
		}
		if dups := counterValue(t, rr, "rr_sql_jobs_duplicate_total", "reports"); dups != 1 {
			t.Fatalf("rr_sql_jobs_duplicate_total{pipeline=reports} = %v, want 1", dups)
		}
		rr.resume("reports")
		recs := waitRecords(t, out, 2, 15*time.Second)
		got := []string{recs[0].ID, recs[1].ID}
		slices.Sort(got)
		want := []string{first, other}
		slices.Sort(want)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("ran %v, want the first push of each key %v (not the duplicate %s)", got, want, dup)
		}
		for _, r := range recs {
			if len(r.Headers[uniqueHeader]) != 1 {
				t.Fatalf("the worker saw headers %v: want the %s header kept", r.Headers, uniqueHeader)
			}
		}
		waitFor(t, 10*time.Second, "both jobs acked", func() (bool, string) {
			s := rr.sqlStats("reports")
			return s.Ready+s.Reserved == 0, fmt.Sprintf("%+v", s)
		})
		stableFor(t, 500*time.Millisecond, "the duplicate never runs", func() (bool, string) {
			n := len(records(t, out))
			return n == 2, fmt.Sprintf("%d records", n)
		})
	})
}

// TestUniqueKeysAcrossThreeNodes: three RoadRunner nodes on one database, each pushing the same
// keys from several connections at once. Exactly one job per key is created and processed.
func TestUniqueKeysAcrossThreeNodes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dir := t.TempDir()
		out := filepath.Join(dir, "out.jsonl")
		o := options{pipelines: pipelineYAML("p", "prefetch: 20"), workers: 2, sqlSection: b.section(t, dir), out: out}
		nodes := []*roadrunner{start(t, o), start(t, o), start(t, o)}
		const (
			keys    = 40
			pushers = 3 // per node, each on its own RPC connection
		)
		var (
			wg    sync.WaitGroup
			ready = make(chan struct{})
			errs  = make(chan error, len(nodes)*pushers)
		)
		for n, node := range nodes {
			for p := range pushers {
				client := node.dial()
				t.Cleanup(func() { _ = client.Close() })
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-ready
					for _, k := range rand.Perm(keys) {
						j := job{id: fmt.Sprint("n", n, "-p", p, "-k", k), pipeline: "p", payload: map[string]any{"action": "ack"},
							headers: map[string][]string{uniqueHeader: {fmt.Sprint("key-", k)}}}
						if err := client.Call("jobs.Push", &jobsProto.PushRequest{Job: j.proto()}, &jobsProto.Empty{}); err != nil {
							errs <- fmt.Errorf("push %s: %w", j.id, err)
							return
						}
					}
				}()
			}
		}
		close(ready)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		// Every pipeline paused while pushing: the jobs all wait, one per key.
		for i, node := range nodes {
			if s := node.sqlStats("p"); s.Ready != keys || s.Delayed+s.Reserved != 0 {
				t.Fatalf("node %d sees %+v after %d pushes of %d keys: want %d ready", i, s, len(nodes)*pushers*keys, keys, keys)
			}
		}
		var dups float64
		for _, node := range nodes {
			dups += counterValue(t, node, "rr_sql_jobs_duplicate_total", "p")
		}
		if want := len(nodes)*pushers*keys - keys; dups != float64(want) {
			t.Fatalf("the nodes counted %v duplicate pushes, want %d", dups, want)
		}
		for _, node := range nodes {
			node.resume("p")
		}
		waitFor(t, 30*time.Second, "one job per key processed", func() (bool, string) {
			n := len(records(t, out))
			return n >= keys, fmt.Sprintf("%d records", n)
		})
		waitFor(t, 10*time.Second, "every job acked", func() (bool, string) {
			s := nodes[0].sqlStats("p")
			return s.Ready+s.Reserved == 0, fmt.Sprintf("%+v", s)
		})
		recs := records(t, out)
		perKey := map[string]int{}
		for _, r := range recs {
			perKey[strings.Join(r.Headers[uniqueHeader], ",")]++
		}
		if len(recs) != keys || len(perKey) != keys {
			t.Fatalf("%d jobs processed for %d keys (%v): want one per key", len(recs), len(perKey), perKey)
		}
	})
}

// TestUniqueWhileAtTheWorker: with unique_while: waiting a job at a worker no longer holds its
// key (a push of the key creates a job while it runs); with active it holds the key until it is
// acked.
func TestUniqueWhileAtTheWorker(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		for _, mode := range []string{"waiting", "active"} {
			t.Run(mode, func(t *testing.T) {
				dir := t.TempDir()
				out := filepath.Join(dir, "out.jsonl")
				rr := start(t, options{pipelines: pipelineYAML("p", "unique_while: "+mode), consume: []string{"p"}, workers: 1,
					sqlSection: b.section(t, dir), out: out})
				keyed := func(id string, sleepMs int) job {
					return job{id: id, pipeline: "p", payload: map[string]any{"action": "ack", "sleep_ms": sleepMs},
						headers: map[string][]string{uniqueHeader: {"k"}}}
				}
				waiting := func() int64 {
					s := rr.sqlStats("p")
					return s.Ready + s.Delayed + s.Reserved
				}
				rr.push(keyed("first", 2000))
				waitRecords(t, out, 1, 10*time.Second) // at the worker
				if mode == "waiting" {
					n := 0
					waitFor(t, 5*time.Second, "a push of the key creating a job while the first runs", func() (bool, string) {
						n++
						rr.push(keyed(fmt.Sprint("second-", n), 0))
						return waiting() == 2, fmt.Sprintf("%d jobs", waiting())
					})
				} else {
					rr.push(keyed("second", 0))
					stableFor(t, time.Second, "the first job alone while it runs", func() (bool, string) {
						return waiting() == 1, fmt.Sprintf("%d jobs", waiting())
					})
					waitFor(t, 10*time.Second, "the first job acked", func() (bool, string) { return waiting() == 0, fmt.Sprintf("%d jobs", waiting()) })
					rr.push(keyed("third", 0))
				}
				recs := waitRecords(t, out, 2, 10*time.Second)
				if recs[0].ID != "first" || recs[1].ID == "second" {
					t.Fatalf("ran %s then %s", recs[0].ID, recs[1].ID)
				}
				waitFor(t, 10*time.Second, "every job acked", func() (bool, string) { return waiting() == 0, fmt.Sprintf("%d jobs", waiting()) })
				if n := len(records(t, out)); n != 2 {
					t.Fatalf("%d jobs ran, want 2", n)
				}
			})
		}
	})
}

// TestUniqueKeyLength: a key of 255 characters (four-byte ones: the most MySQL's index takes) is
// stored and held; a longer one is refused with an error naming the header and the limit.
func TestUniqueKeyLength(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dir := t.TempDir()
		rr := start(t, options{pipelines: pipelineYAML("p"), sqlSection: b.section(t, dir), out: filepath.Join(dir, "out.jsonl")})
		longest := strings.Repeat("😀", 255)
		for _, id := range []string{"a", "b"} {
			rr.push(job{id: id, pipeline: "p", payload: map[string]any{"action": "ack"}, headers: map[string][]string{uniqueHeader: {longest}}})
		}
		if s := rr.sqlStats("p"); s.Ready != 1 {
			t.Fatalf("two pushes of one 255-character key: %+v, want 1 job", s)
		}
		err := rr.call("jobs.Push", &jobsProto.PushRequest{Job: job{id: "c", pipeline: "p", payload: "x",
			headers: map[string][]string{uniqueHeader: {longest + "x"}}}.proto()}, &jobsProto.Empty{})
		want := `the unique key (header "x-sql-unique-key") is 256 characters long: use at most 255`
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("push of a 256-character key: %v, want an error containing %s", err, want)
		}
	})
}
