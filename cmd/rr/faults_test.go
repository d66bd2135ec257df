package main

// Faults on real rr processes and real databases: kill loops, a frozen node, killed database
// connections, a full disk, a deleted SQLite file, a stop with jobs waiting for a worker. Each
// test counts the jobs lost and the jobs run twice, and asserts both.

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	jobsProto "github.com/roadrunner-server/api/v4/build/jobs/v1"
	sqlrpc "github.com/rr-sql/sqljobs/rpc"
)

// failedJobs lists the ids of pipeline p's failed jobs.
func failedJobs(t *testing.T, n *node) []string {
	t.Helper()
	c := n.client()
	defer c.Close()
	var ids []string
	after := int64(0)
	for {
		var page sqlrpc.FailedListResponse
		if err := c.Call("sql.FailedList", &sqlrpc.FailedListRequest{Pipeline: "p", AfterID: after, Limit: 1000}, &page); err != nil {
			t.Fatal(err)
		}
		for _, j := range page.Jobs {
			ids = append(ids, j.JobID)
		}
		if page.NextAfterID == 0 {
			return ids
		}
		after = page.NextAfterID
	}
}

// settled tells whether pipeline p has no job left waiting or reserved. It asks sql.Stats, which
// answers an error when the database does (jobs.Stat would show zeros).
func settled(t *testing.T, n *node) (bool, string) {
	c := n.client()
	defer c.Close()
	var st sqlrpc.StatsResponse
	if err := c.Call("sql.Stats", &sqlrpc.StatsRequest{Pipelines: []string{"p"}}, &st); err != nil {
		return false, err.Error()
	}
	s := st.Stats[0]
	return s.Ready+s.Delayed+s.Reserved == 0, fmt.Sprintf("%+v", s)
}

// TestKillLoopFailsNoJobNoWorkerSaw: rr SIGKILLed six times while slow jobs run, with jobs
// claimed into its queue each time. None is lost, and none goes to the failed jobs without a
// worker having seen it: a claim is not a delivery.
func TestKillLoopFailsNoJobNoWorkerSaw(t *testing.T) {
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "out.jsonl")
			section := sqliteSection(dir)
			if db == "postgres" {
				section = freshDatabase(t, db)
			}
			o := nodeOptions{sqlSection: section, out: out, workers: 2}
			n := startNode(t, o)
			const total = 300
			pushAll(t, n, total, `{"action":"ack","sleep_ms":100}`)
			for kill := range 6 {
				seen := len(readRecords(t, out))
				waitFor(t, 30*time.Second, "a few jobs run", func() (bool, string) {
					c := len(readRecords(t, out))
					return c >= seen+4, fmt.Sprint(c)
				})
				if err := n.cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				<-n.done
				t.Logf("kill %d after %d deliveries", kill+1, len(readRecords(t, out)))
				n = startNode(t, o)
			}
			waitFor(t, 2*time.Minute, "every job run or failed", func() (bool, string) { return settled(t, n) })
			ran := distinct(readRecords(t, out))
			failed := failedJobs(t, n)
			unseen := 0
			for _, id := range failed {
				if ran[id] == 0 {
					unseen++
				}
			}
			lost := 0
			for i := range total {
				if id := fmt.Sprint("job-", i); ran[id] == 0 && !slices.Contains(failed, id) {
					lost++
				}
			}
			t.Logf("%s: %d jobs, 6 SIGKILLs: %d run, %d failed (%d of them never seen by a worker), %d lost", db, total, len(ran), len(failed), unseen, lost)
			if unseen != 0 || lost != 0 {
				t.Fatalf("%d jobs failed without a worker seeing them, %d lost", unseen, lost)
			}
			// The counts are kept by the database with each write, never recounted: six SIGKILLs
			// in the middle of claims and acks leave them equal to the rows.
			c := n.client()
			defer c.Close()
			var st sqlrpc.StatsResponse
			if err := c.Call("sql.Stats", &sqlrpc.StatsRequest{Pipelines: []string{"p"}}, &st); err != nil {
				t.Fatal(err)
			}
			if s := st.Stats[0]; s.Failed != int64(len(failed)) || s.Ready+s.Delayed+s.Reserved != 0 {
				t.Fatalf("sql.Stats after the kills = %+v: want no job waiting and %d failed, as the rows say", s, len(failed))
			}
		})
	}
}

// run is one job's work on one node, from its worker's records.
type run struct {
	id         string
	pid        int
	start, end int64 // end 0: the run never finished (its worker was killed)
	// cut: its node was gone before the run ended, so no answer came from it.
	cut bool
}

// runs pairs the start and end records of the workers.
func runs(t *testing.T, startFile, endFile string) []run {
	t.Helper()
	var out []run
	open := map[string][]int{} // id/pid -> indexes of runs without an end
	for _, r := range readRecords(t, startFile) {
		out = append(out, run{id: r.ID, pid: r.PID, start: r.TsMs})
		open[fmt.Sprint(r.ID, "/", r.PID)] = append(open[fmt.Sprint(r.ID, "/", r.PID)], len(out)-1)
	}
	b, err := os.ReadFile(endFile)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var e struct {
			ID    string `json:"id"`
			PID   int    `json:"pid"`
			EndMs int64  `json:"end_ms"`
		}
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			continue
		}
		key := fmt.Sprint(e.ID, "/", e.PID)
		if idx := open[key]; len(idx) > 0 {
			out[idx[0]].end = e.EndMs
			open[key] = idx[1:]
		}
	}
	return out
}

// overlaps counts the jobs that ran on two workers at the same time (a run without an end lasts
// until the end of the test).
func overlaps(rs []run) []string {
	byID := map[string][]run{}
	for _, r := range rs {
		byID[r.id] = append(byID[r.id], r)
	}
	var out []string
	for id, list := range byID {
		for i := range list {
			for j := i + 1; j < len(list); j++ {
				a, b := list[i], list[j]
				aEnd, bEnd := a.end, b.end
				if aEnd == 0 {
					aEnd = 1 << 62
				}
				if bEnd == 0 {
					bEnd = 1 << 62
				}
				if a.start < bEnd && b.start < aEnd {
					out = append(out, fmt.Sprintf("%s (pids %d and %d)", id, a.pid, b.pid))
				}
			}
		}
	}
	return out
}

// nodeCount is the number of nodes registered in a database.
func nodeCount(t *testing.T, db *sql.DB) int {
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM rr_nodes`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// openDatabase opens the database a section of freshDatabase points at.
func openDatabase(t *testing.T, dialect, section string) *sql.DB {
	t.Helper()
	dsn := section[strings.Index(section, "dsn: ")+len("dsn: "):]
	dsn = dsn[:strings.Index(dsn, "\n")]
	var unquoted string
	if err := json.Unmarshal([]byte(dsn), &unquoted); err != nil {
		t.Fatal(err)
	}
	driver := map[string]string{"postgres": "pgx", "mysql": "mysql"}[dialect]
	db, err := sql.Open(driver, unquoted)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// TestFrozenNodeRunsNoJobTwiceAtOnce: a node frozen (SIGSTOP) past node_ttl is declared dead and
// its jobs run elsewhere; when it wakes up it must not hand the jobs it had claimed to its
// workers. No job runs on two workers at the same time, none is lost, and the only jobs that run
// twice are those the frozen node had handed out before it froze (see frozenTwice).
func TestFrozenNodeRunsNoJobTwiceAtOnce(t *testing.T) {
	for _, dialect := range sharedDialects {
		t.Run(dialect, func(t *testing.T) {
			dir := t.TempDir()
			out, end := filepath.Join(dir, "out.jsonl"), filepath.Join(dir, "end.jsonl")
			section := freshDatabase(t, dialect)
			db := openDatabase(t, dialect, section)
			nodes := make([]*node, 2)
			for i := range nodes {
				nodes[i] = startNode(t, nodeOptions{sqlSection: section, out: out, endOut: end, workers: 2})
			}
			const total = 400
			pushPaused(t, nodes, total, `{"action":"ack","sleep_ms":100}`)
			waitFor(t, 30*time.Second, "some jobs run", func() (bool, string) {
				c := len(readRecords(t, out))
				return c >= 40, fmt.Sprint(c)
			})
			frozen := nodes[0]
			frozenWorkers := frozen.workerPIDs()
			if err := frozen.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 10*time.Second, "the node to stop", func() (bool, string) {
				state := processState(frozen.cmd.Process.Pid)
				return state == "T" || state == "t", state
			})
			frozeAt := time.Now().UnixMilli()
			waitFor(t, 30*time.Second, "the other node to declare the frozen one dead", func() (bool, string) {
				c := nodeCount(t, db)
				return c == 1, fmt.Sprint(c, " nodes")
			})
			atWake := len(readRecords(t, out))
			wokeAt := time.Now().UnixMilli()
			if err := frozen.cmd.Process.Signal(syscall.SIGCONT); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 2*time.Minute, "every job run", func() (bool, string) {
				c := len(distinct(readRecords(t, out)))
				return c == total, fmt.Sprintf("%d of %d", c, total)
			})
			rs := runs(t, out, end)
			both := overlaps(rs)
			f := frozenTwice(rs, frozenWorkers, frozeAt, wokeAt)
			t.Logf("%s: %d jobs, one of 2 nodes frozen past node_ttl (%d deliveries when it woke): %d runs, %d run twice "+
				"(%d at its workers or answered but not yet acknowledged when it froze, %d taken out of RoadRunner's queue before it froze and run after it woke), "+
				"%d on two workers at once, 0 lost",
				dialect, total, atWake, len(rs), len(rs)-total, f.beforeFreeze, f.afterWake, len(both))
			if len(both) > 0 {
				t.Fatalf("jobs ran on two workers at once: %v", both)
			}
			if len(f.elsewhere) > 0 {
				t.Fatalf("jobs the frozen node never ran ran twice: %v", f.elsewhere)
			}
			// RoadRunner's pollers (workers + 2) each hold at most one job taken out of its queue;
			// those whose job was at a worker when the node froze hold no other.
			if pollers := 2 + 2; f.afterWake > pollers-f.busyAtFreeze {
				t.Fatalf("the frozen node ran %d jobs after it woke that other nodes ran too; its %d pollers, %d of them at a worker, held at most %d: it handed out jobs other nodes had taken over",
					f.afterWake, pollers, f.busyAtFreeze, pollers-f.busyAtFreeze)
			}
		})
	}
}

// frozenRuns sorts the jobs that ran twice around a node's freeze.
type frozenRuns struct {
	// busyAtFreeze: runs at the frozen node's workers when it froze.
	busyAtFreeze int
	// beforeFreeze: jobs run twice whose run on the frozen node began before it froze (at a worker
	// then, or finished with its acknowledgement not yet committed): expected, each is a delivery
	// whose node died as far as the others can tell.
	beforeFreeze int
	// afterWake: jobs run twice whose run on the frozen node began after it woke: only the jobs
	// RoadRunner had taken out of its queue before the freeze may be among them.
	afterWake int
	// elsewhere: jobs run twice without a run on the frozen node: never expected.
	elsewhere []string
}

func frozenTwice(rs []run, frozenWorkers []int, frozeAt, wokeAt int64) frozenRuns {
	var f frozenRuns
	byID := map[string][]run{}
	for _, r := range rs {
		byID[r.id] = append(byID[r.id], r)
		if slices.Contains(frozenWorkers, r.pid) && r.start < frozeAt && (r.end == 0 || r.end > frozeAt) {
			f.busyAtFreeze++
		}
	}
	for id, list := range byID {
		if len(list) < 2 {
			continue
		}
		i := slices.IndexFunc(list, func(r run) bool { return slices.Contains(frozenWorkers, r.pid) })
		switch {
		case i < 0:
			f.elsewhere = append(f.elsewhere, id)
		case list[i].start >= wokeAt:
			f.afterWake++
		default:
			f.beforeFreeze++
		}
	}
	return f
}

// processState is the state letter of a process (R, S, T for stopped...), from /proc.
func processState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return err.Error()
	}
	// The command name in parentheses may hold spaces: the state follows the last ')'.
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(fields) == 0 {
		return ""
	}
	return fields[0]
}

// cutTwice lists the jobs that ran more than once although none of their runs was cut short.
func cutTwice(rs []run) []string {
	byID := map[string][]run{}
	for _, r := range rs {
		byID[r.id] = append(byID[r.id], r)
	}
	var out []string
	for id, list := range byID {
		cut := false
		for _, r := range list {
			cut = cut || r.end == 0 || r.cut
		}
		if len(list) > 1 && !cut {
			out = append(out, id)
		}
	}
	return out
}

// TestKilledConnectionsLoseNoAck: the database kills rr's connections again and again while jobs
// run and pushes arrive (a failover, pg_terminate_backend, KILL). No acknowledged push is lost,
// no job runs twice; pushes that failed yet were stored are counted.
func TestKilledConnectionsLoseNoAck(t *testing.T) {
	for _, dialect := range sharedDialects {
		t.Run(dialect, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "out.jsonl")
			section := freshDatabase(t, dialect)
			db := openDatabase(t, dialect, section)
			n := startNode(t, nodeOptions{sqlSection: section, out: out, workers: 2, pipeline: []string{"lease: 5s"}})
			const total = 1500
			var (
				mu       sync.Mutex
				pushedOK = map[string]bool{}
				failed   = map[string]bool{}
			)
			ctx, stop := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			wg.Add(2)
			go func() { // the pusher
				defer wg.Done()
				c := n.client()
				defer c.Close()
				for i := range total {
					id := fmt.Sprint("job-", i)
					err := c.Call("jobs.Push", &jobsProto.PushRequest{Job: &jobsProto.Job{Job: "Job", Id: id, Payload: []byte(`{"action":"ack","sleep_ms":5}`),
						Options: &jobsProto.Options{Pipeline: "p"}}}, &jobsProto.Empty{})
					mu.Lock()
					if err == nil {
						pushedOK[id] = true
					} else {
						failed[id] = true
					}
					mu.Unlock()
				}
			}()
			kills := 0
			go func() { // the database, killing rr's sessions every 200 ms
				defer wg.Done()
				kill := map[string]string{
					"postgres": `SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`,
				}[dialect]
				for ctx.Err() == nil {
					if dialect == "mysql" {
						rows, err := db.Query(`SELECT id FROM information_schema.processlist WHERE db = DATABASE() AND id <> CONNECTION_ID()`)
						if err == nil {
							var ids []int64
							for rows.Next() {
								var id int64
								_ = rows.Scan(&id)
								ids = append(ids, id)
							}
							_ = rows.Close()
							for _, id := range ids {
								_, _ = db.Exec(fmt.Sprintf("KILL CONNECTION %d", id))
							}
						}
					} else {
						_, _ = db.Exec(kill)
					}
					kills++
					select {
					case <-ctx.Done():
					case <-time.After(200 * time.Millisecond):
					}
				}
			}()
			// The kills go on until every push is answered and every stored job has run.
			waitFor(t, 2*time.Minute, "the pushes done", func() (bool, string) {
				mu.Lock()
				defer mu.Unlock()
				return len(pushedOK)+len(failed) == total, fmt.Sprint(len(pushedOK) + len(failed))
			})
			waitFor(t, 2*time.Minute, "every stored job run", func() (bool, string) { return settled(t, n) })
			stop()
			wg.Wait()
			ran := distinct(readRecords(t, out))
			lost, twice, storedDespiteError := 0, 0, 0
			for id := range pushedOK {
				if ran[id] == 0 {
					lost++
				}
			}
			for id, c := range ran {
				if c > 1 {
					twice += c - 1
				}
				if failed[id] {
					storedDespiteError++
				}
			}
			t.Logf("%s: %d pushes during %d rounds of killed connections: %d acknowledged, %d failed (%d of those stored anyway); %d run, %d run twice, %d lost",
				dialect, total, kills, len(pushedOK), len(failed), storedDespiteError, len(ran), twice, lost)
			if lost != 0 || twice != 0 {
				t.Fatalf("%d acknowledged pushes lost, %d runs twice", lost, twice)
			}
		})
	}
}

// TestDiskFullAcksLand: the disk of the SQLite file fills up while jobs run, then frees again.
// The acks that failed meanwhile are written once there is room: no job runs twice, none is lost.
func TestDiskFullAcksLand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "small-disk")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs here (%v %s): the disk-full case needs root and mount", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	out := filepath.Join(t.TempDir(), "out.jsonl")
	n := startNode(t, nodeOptions{sqlSection: sqliteSection(dir), out: out, workers: 2, pipeline: []string{"lease: 30s"}})
	const total = 2000
	pushPaused(t, []*node{n}, total, `{"action":"ack","sleep_ms":1}`)
	waitFor(t, time.Minute, "some jobs run", func() (bool, string) {
		c := len(readRecords(t, out))
		return c >= 200, fmt.Sprint(c)
	})
	// SQLite reuses its WAL file once it has reached its size (4 MB after the pushes), so acks
	// written into it need no new disk space and a full disk alone may never fail one. Emptying
	// the WAL first makes the next commits grow it, onto the full disk.
	truncateWAL(t, filepath.Join(dir, "jobs.db"))
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	_ = f.Close()
	waitFor(t, 30*time.Second, "an ack batch to fail on the full disk", func() (bool, string) {
		return strings.Contains(n.log.String(), "ack batch failed"), "no failed ack batch in the log yet"
	})
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Minute, "every job run", func() (bool, string) { return settled(t, n) })
	ran := distinct(readRecords(t, out))
	recs := len(readRecords(t, out))
	t.Logf("sqlite on a full disk: %d jobs, %d run, %d run twice, %d lost", total, len(ran), recs-len(ran), total-len(ran))
	if len(ran) != total || recs != total {
		t.Fatalf("%d of %d jobs run, %d runs in all", len(ran), total, recs)
	}
}

// truncateWAL checkpoints an SQLite database and truncates its WAL file to zero bytes, retrying
// while a running rr's transactions keep the checkpoint from completing.
func truncateWAL(t *testing.T, file string) {
	t.Helper()
	db, err := sql.Open("sqlite", file+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	waitFor(t, 30*time.Second, "the WAL truncated", func() (bool, string) {
		var busy, logFrames, checkpointed int
		if err := db.QueryRow("PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logFrames, &checkpointed); err != nil {
			return false, err.Error()
		}
		return busy == 0, fmt.Sprintf("checkpoint busy, %d of %d frames checkpointed", checkpointed, logFrames)
	})
}

// TestDeletedSQLiteFileRefusesPushes: the SQLite file deleted under a running rr: pushes fail
// with an error that says so, instead of being acknowledged and lost at the next start.
func TestDeletedSQLiteFileRefusesPushes(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, nodeOptions{sqlSection: sqliteSection(dir), out: filepath.Join(dir, "out.jsonl")})
	if err := os.Remove(filepath.Join(dir, "jobs.db")); err != nil {
		t.Fatal(err)
	}
	c := n.client()
	defer c.Close()
	accepted := 0
	var last error
	for i := range 20 {
		err := c.Call("jobs.Push", &jobsProto.PushRequest{Job: &jobsProto.Job{Job: "Job", Id: fmt.Sprint("after-", i), Payload: []byte(`{}`),
			Options: &jobsProto.Options{Pipeline: "p"}}}, &jobsProto.Empty{})
		if err == nil {
			accepted++
		}
		last = err
	}
	t.Logf("20 pushes after the file was deleted: %d accepted; the error: %v", accepted, last)
	if accepted != 0 || last == nil || !strings.Contains(last.Error(), "deleted or replaced") {
		t.Fatalf("%d pushes accepted into a deleted file; last error %v", accepted, last)
	}
}

// TestStopRunsNoJobItGaveBack: two nodes share a database; one gets SIGTERM while its one worker
// is busy and RoadRunner's pollers hold the next jobs for it. The stopping node gives back only
// what no worker will run: no job runs on two workers at once, none is lost.
func TestStopRunsNoJobItGaveBack(t *testing.T) {
	dir := t.TempDir()
	out, end := filepath.Join(dir, "out.jsonl"), filepath.Join(dir, "end.jsonl")
	section := freshDatabase(t, "postgres")
	stopping := startNode(t, nodeOptions{sqlSection: section, out: out, endOut: end, workers: 1})
	const total = 12
	pushPaused(t, []*node{stopping}, total, `{"action":"ack","sleep_ms":1500}`)
	waitFor(t, 10*time.Second, "the first job at the worker", func() (bool, string) {
		c := len(readRecords(t, out))
		return c >= 1, fmt.Sprint(c)
	})
	other := startNode(t, nodeOptions{sqlSection: section, out: out, endOut: end, workers: 2})
	stoppingWorkers := map[int]bool{}
	for _, pid := range stopping.workerPIDs() {
		stoppingWorkers[pid] = true
	}
	stopping.signal(syscall.SIGTERM, 15*time.Second)
	exited := time.Now().UnixMilli()
	waitFor(t, 2*time.Minute, "every job run", func() (bool, string) {
		c := len(distinct(readRecords(t, out)))
		return c == total, fmt.Sprintf("%d of %d", c, total)
	})
	waitFor(t, time.Minute, "the queue empty", func() (bool, string) { return settled(t, other) })
	rs := runs(t, out, end)
	for i, r := range rs {
		// rr exits at the end of its grace period; its PHP worker finishes the job in hand on its
		// own, but nothing answers for it any more: that run was cut.
		if stoppingWorkers[r.pid] && r.end > exited {
			rs[i].cut = true
		}
	}
	both := overlaps(rs)
	t.Logf("%d jobs of 1.5 s, a node stopped with its worker busy: %d runs, %d run twice, %d on two workers at once, 0 lost", total, len(rs), len(rs)-total, len(both))
	if len(both) > 0 {
		t.Fatalf("jobs given back at Stop ran on two workers at once: %v", both)
	}
	// A job may run again only if its run on the stopping node was cut by its exit.
	if again := cutTwice(rs); len(again) > 0 {
		t.Fatalf("jobs ran to the end twice: %v (given back by the stopping node, which ran them anyway)", again)
	}
}
