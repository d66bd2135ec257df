package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	jobsProto "github.com/roadrunner-server/api/v4/build/jobs/v1"
)

// Several rr processes share one PostgreSQL or MariaDB database: each job goes to one node at a
// time, a killed node's jobs are recovered, and a database restart loses nothing.

var sharedDialects = []string{"postgres", "mysql"}

// pushAll pushes ids job-0..job-(total-1) through a node's jobs RPC in batches.
func pushAll(t *testing.T, n *node, total int, payload string) {
	t.Helper()
	c := n.client()
	defer c.Close()
	const batch = 1000
	for from := 0; from < total; from += batch {
		req := &jobsProto.PushBatchRequest{}
		for i := from; i < min(from+batch, total); i++ {
			req.Jobs = append(req.Jobs, &jobsProto.Job{Job: "Job", Id: fmt.Sprint("job-", i), Payload: []byte(payload),
				Options: &jobsProto.Options{Pipeline: "p"}})
		}
		if err := c.Call("jobs.PushBatch", req, &jobsProto.Empty{}); err != nil {
			t.Fatalf("push batch at %d: %v", from, err)
		}
	}
}

// pushPaused pushes while every node is paused, then resumes them all: the run starts with the whole
// backlog in the database, so a fault lands in the middle of the work.
func pushPaused(t *testing.T, nodes []*node, total int, payload string) {
	t.Helper()
	call := func(n *node, method string) {
		c := n.client()
		defer c.Close()
		if err := c.Call(method, &jobsProto.Pipelines{Pipelines: []string{"p"}}, &jobsProto.Empty{}); err != nil {
			t.Fatalf("%s: %v", method, err)
		}
	}
	for _, n := range nodes {
		call(n, "jobs.Pause")
	}
	pushAll(t, nodes[0], total, payload)
	for _, n := range nodes {
		call(n, "jobs.Resume")
	}
}

func distinct(recs []record) map[string]int {
	out := map[string]int{}
	for _, r := range recs {
		out[r.ID]++
	}
	return out
}

func startNodes(t *testing.T, count int, section, out string) []*node {
	nodes := make([]*node, count)
	for i := range nodes {
		nodes[i] = startNode(t, nodeOptions{sqlSection: section, out: out, workers: 2})
	}
	return nodes
}

func TestThreeNodesProcessEachJobOnce(t *testing.T) {
	for _, dialect := range sharedDialects {
		t.Run(dialect, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out.jsonl")
			nodes := startNodes(t, 3, freshDatabase(t, dialect), out)
			const total = 20_000
			start := time.Now()
			pushAll(t, nodes[0], total, `{"action":"ack"}`)
			waitFor(t, 3*time.Minute, "every job processed", func() (bool, string) {
				recs := readRecords(t, out)
				return len(distinct(recs)) == total, fmt.Sprintf("%d distinct of %d", len(distinct(recs)), total)
			})
			elapsed := time.Since(start)
			recs := readRecords(t, out)
			perNode := make([]int, len(nodes))
			for i, n := range nodes {
				pids := map[int]bool{}
				for _, p := range n.workerPIDs() {
					pids[p] = true
				}
				for _, r := range recs {
					if pids[r.PID] {
						perNode[i]++
					}
				}
			}
			dups := len(recs) - total
			t.Logf("%s: %d jobs, 3 nodes, processed in %s; per node %v; duplicates %d, lost 0", dialect, total, elapsed.Round(time.Millisecond), perNode, dups)
			if dups != 0 {
				t.Fatalf("%d jobs processed more than once without any fault", dups)
			}
			for i, c := range perNode {
				if c == 0 {
					t.Fatalf("node %d processed no job: %v", i, perNode)
				}
			}
		})
	}
}

func TestNodeKilledMidRun(t *testing.T) {
	for _, dialect := range sharedDialects {
		t.Run(dialect, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out.jsonl")
			nodes := startNodes(t, 3, freshDatabase(t, dialect), out)
			const total = 20_000
			pushPaused(t, nodes, total, `{"action":"ack","sleep_ms":2}`)
			victim := nodes[2]
			victimPIDs := map[int]bool{}
			for _, p := range victim.workerPIDs() {
				victimPIDs[p] = true
			}
			waitFor(t, time.Minute, "a quarter of the jobs processed", func() (bool, string) {
				n := len(readRecords(t, out))
				return n >= total/4, fmt.Sprint(n)
			})
			if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-victim.done
			killedAt := len(readRecords(t, out))
			if killedAt >= total {
				t.Fatalf("all jobs were done before the kill: the test proves nothing")
			}
			waitFor(t, 3*time.Minute, "every job processed by the surviving nodes", func() (bool, string) {
				recs := readRecords(t, out)
				return len(distinct(recs)) == total, fmt.Sprintf("%d distinct of %d", len(distinct(recs)), total)
			})
			recs := readRecords(t, out)
			seenOnVictim := map[string]bool{}
			for _, r := range recs {
				if victimPIDs[r.PID] {
					seenOnVictim[r.ID] = true
				}
			}
			dups := 0
			for id, n := range distinct(recs) {
				if n > 1 {
					dups += n - 1
					// Only a job the killed node had started may run again.
					if !seenOnVictim[id] || n > 2 {
						t.Errorf("job %s ran %d times and was not in flight on the killed node", id, n)
					}
				}
			}
			t.Logf("%s: %d jobs, 3 nodes, 1 killed with SIGKILL after %d processed; duplicates %d (all in flight on the killed node), lost 0",
				dialect, total, killedAt, dups)
		})
	}
}

func TestDatabaseRestartMidRun(t *testing.T) {
	script, err := filepath.Abs(filepath.Join("..", "..", "scripts", "db-servers.sh"))
	if err != nil {
		t.Fatal(err)
	}
	for _, dialect := range sharedDialects {
		t.Run(dialect, func(t *testing.T) {
			if os.Geteuid() != 0 {
				t.Skip("restarting the throwaway database server needs root (scripts/db-servers.sh)")
			}
			out := filepath.Join(t.TempDir(), "out.jsonl")
			nodes := startNodes(t, 2, freshDatabase(t, dialect), out)
			const total = 6000
			pushPaused(t, nodes, total, `{"action":"ack","sleep_ms":2}`)
			waitFor(t, time.Minute, "some jobs processed", func() (bool, string) {
				n := len(readRecords(t, out))
				return n >= 500, fmt.Sprint(n)
			})
			if o, err := exec.Command(script, "stop-"+dialect).CombinedOutput(); err != nil {
				t.Fatalf("stop %s: %v\n%s", dialect, err, o)
			}
			stoppedAt := len(distinct(readRecords(t, out)))
			if stoppedAt >= total {
				t.Fatal("all jobs were done before the database stopped: the test proves nothing")
			}
			restarted := false
			defer func() {
				if !restarted {
					_ = exec.Command(script, "start-"+dialect).Run()
				}
			}()
			// While the database is down a push fails at once with an error the caller can act on.
			c := nodes[1].client()
			began := time.Now()
			err := c.Call("jobs.Push", &jobsProto.PushRequest{Job: &jobsProto.Job{Job: "Job", Id: "during-outage", Payload: []byte(`{}`),
				Options: &jobsProto.Options{Pipeline: "p"}}}, &jobsProto.Empty{})
			_ = c.Close()
			if err == nil {
				t.Fatal("a push succeeded while the database was down")
			}
			if took := time.Since(began); took > 10*time.Second {
				t.Fatalf("a push took %s to fail while the database was down", took)
			}
			t.Logf("push during the outage failed after %s: %s", time.Since(began).Round(time.Millisecond), strings.Join(strings.Fields(err.Error()), " "))
			if o, err := exec.Command(script, "start-"+dialect).CombinedOutput(); err != nil {
				t.Fatalf("start %s: %v\n%s", dialect, err, o)
			}
			restarted = true
			waitFor(t, 3*time.Minute, "every job processed after the restart", func() (bool, string) {
				recs := readRecords(t, out)
				return len(distinct(recs)) == total, fmt.Sprintf("%d distinct of %d", len(distinct(recs)), total)
			})
			recs := readRecords(t, out)
			dups := len(recs) - total
			t.Logf("%s: %d jobs, 2 nodes, database stopped (%d done) and started again; duplicates %d, lost 0", dialect, total, stoppedAt, dups)
			// Acks that fail during the outage are written again once it ends. What may still run
			// twice: the jobs at the workers of a node the other declared dead meanwhile (node_ttl is
			// 2s here), at most num_workers + 2 pollers per node.
			if limit := 2 * (2 + 2); dups > limit {
				t.Fatalf("%d jobs ran twice, more than the %d a node declared dead could have had at its workers", dups, limit)
			}
			for _, n := range nodes {
				if n.cmd.ProcessState != nil {
					t.Fatalf("a node exited during the outage:\n%s", n.log)
				}
			}
		})
	}
}

// TestSQLiteKilledAndRestarted kills rr (SIGKILL) with jobs in flight on an SQLite file and starts
// it again: the jobs the dead process held are delivered again at once (its pid is gone), and none
// is lost.
func TestSQLiteKilledAndRestarted(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.jsonl")
	o := nodeOptions{sqlSection: sqliteSection(dir), out: out, workers: 2}
	n := startNode(t, o)
	const total = 3000
	pushPaused(t, []*node{n}, total, `{"action":"ack","sleep_ms":2}`)
	waitFor(t, time.Minute, "some jobs processed", func() (bool, string) {
		c := len(readRecords(t, out))
		return c >= 300, fmt.Sprint(c)
	})
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.done
	killedAt := len(distinct(readRecords(t, out)))
	if killedAt >= total {
		t.Fatal("all jobs were done before the kill: the test proves nothing")
	}
	startNode(t, o)
	waitFor(t, 2*time.Minute, "every job processed after the restart", func() (bool, string) {
		c := len(distinct(readRecords(t, out)))
		return c == total, fmt.Sprintf("%d of %d", c, total)
	})
	recs := readRecords(t, out)
	dups := len(recs) - total
	t.Logf("sqlite: %d jobs, killed after %d, restarted: duplicates %d, lost 0", total, killedAt, dups)
	// What may run again: the jobs at the workers or held by the pollers at the kill (2 workers + 2
	// pollers), and the acks of the last few milliseconds not yet written (one batch lingers 5 ms:
	// at most a dozen of these 2 ms jobs on two workers).
	if limit := 4 + 12; dups > limit {
		t.Fatalf("%d jobs ran twice after the kill, more than the %d that can be in flight", dups, limit)
	}
}
