// Command bench measures the sql driver side by side with RoadRunner's memory and boltdb drivers,
// in one rr binary, with the same no-op PHP worker and pool: push rate (Push and PushBatch), drain
// rate (jobs pushed while paused, then resumed), push-to-worker latency at a steady low rate, the
// idle cost, and the drain rate against the backlog. It writes docs/bench/results.md and the charts.
//
// The machine's speed drifts by ±10 % from one minute to the next (a shared VM), more than the
// margins of some targets, so each drain is measured in several rounds, the drivers' rounds
// interleaved, and the median is reported beside every round.
//
//	make bench     (starts the database servers, then: cd bench && go run .)
package main

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"image/color"
	"io"
	"net"
	"net/http"
	"net/rpc"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	jobsProto "github.com/roadrunner-server/api/v4/build/jobs/v1"
	goridgeRpc "github.com/roadrunner-server/goridge/v3/pkg/rpc"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"
)

// memoryPausedCap is what RoadRunner's memory driver can hold while paused: pushes go to a
// channel of this size that only a consuming pipeline empties.
const memoryPausedCap = 100_000

// target is one driver configuration under test.
type target struct {
	name     string
	pipeline string // YAML of the pipeline's driver and config, indented for jobs.pipelines.p
	extra    string // top-level YAML (the sql: section)
	dialect  string // sql targets: sqlite, postgres or mysql (the backlog is written straight into its table)
	dsn      string // sql targets on a server: the run's own database
	server   string // sql targets on a server: the DSN of the server's default database
	db       string // sql targets on a server: the run's database, dropped after the run
}

type result struct {
	target                      string
	pushPerSec, batchPerSec     float64
	drainPerSec                 float64   // the median of drainRounds
	drainRounds                 []float64 // one per round, in the order run
	p50, p99                    time.Duration
	idleClaimsPerSec, idleCPUPc float64
	idleQueriesPerSec           float64 // MariaDB only: the server's own count of statements (0: not measured)
	rssMB                       float64
}

// backlogResult is the drain rate of one window of jobs taken from the front of a backlog.
type backlogResult struct {
	target  string
	rates   []float64   // per backlog size: the median of the windows
	windows [][]float64 // per backlog size, each window's rate
	rssMB   float64     // after the window at the largest backlog
	seedSec float64     // time to write the largest backlog
}

type settings struct {
	workers, pushJobs, drainJobs, window int
	rounds                               int // drain rounds per target
	windows                              int // measured windows per backlog
	backlogs                             []int
	only                                 *regexp.Regexp // run only the targets whose name it matches
	profileDir                           string         // rr writes a CPU profile of each run here
	flush                                time.Duration  // the disk's time to flush a small overwrite (fsync)
	machine                              string         // CPU model and the database servers' versions
}

func main() {
	var st settings
	flag.IntVar(&st.drainJobs, "drain", 50_000, "jobs pushed while paused, then drained")
	flag.IntVar(&st.pushJobs, "push", 5_000, "jobs pushed one Push call at a time")
	flag.IntVar(&st.workers, "workers", 4, "PHP workers")
	flag.IntVar(&st.window, "window", 30_000, "jobs in each measured window of a backlog")
	flag.IntVar(&st.rounds, "rounds", 5, "drain rounds per driver (interleaved); the median is reported")
	flag.IntVar(&st.windows, "windows", 5, "measured windows per backlog; the median is reported")
	backlogs := flag.String("backlogs", "10000,100000,1000000", "backlog sizes (jobs queued behind the measured windows)")
	out := flag.String("out", "../docs/bench", "where to write results.md and the charts")
	only := flag.String("only", "", "run only the targets whose name matches this regular expression, e.g. '^(memory|sql/sqlite)$' (for profiling)")
	flag.StringVar(&st.profileDir, "cpuprofile", "", "directory where rr writes a pprof CPU profile of each run")
	groupsOnly := flag.Bool("groups-only", false, "run only the fairness rows (group_by) and write groups.md")
	flag.Parse()
	if st.rounds < 1 || st.windows < 1 {
		fail("-rounds and -windows must be at least 1")
	}
	var err error
	if st.only, err = regexp.Compile(*only); err != nil {
		fail("-only: %v", err)
	}
	for _, f := range strings.FieldsFunc(*backlogs, func(r rune) bool { return r == ',' }) {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 {
			fail("-backlogs: %q is not a list of job counts", *backlogs)
		}
		st.backlogs = append(st.backlogs, n)
	}

	root, _ := filepath.Abs("..")
	bin := filepath.Join(os.TempDir(), "rr-bench")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = filepath.Join(root, "cmd/rr")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if o, err := build.CombinedOutput(); err != nil {
		fail("build rr: %v\n%s", err, o)
	}
	pgDSN, myDSN := os.Getenv("SQLJOBS_POSTGRES_DSN"), os.Getenv("SQLJOBS_MYSQL_DSN")
	flush, err := flushTime(os.TempDir())
	if err != nil {
		fail("measure the disk's flush time: %v", err)
	}
	st.flush = flush
	st.machine = machine(pgDSN, myDSN)
	fmt.Fprintf(os.Stderr, "== the disk flushes an 8 KiB overwrite in %s (median)\n", flush)

	// Each backend's target is made anew for each run: a fresh database on each server.
	backends := []func() target{func() target { return sqlTarget("sql/sqlite", "sqlite", "", "") }}
	if pgDSN != "" {
		backends = append(backends, func() target { return sqlTarget("sql/postgres", "postgres", pgDSN, "") })
	}
	if myDSN != "" {
		backends = append(backends, func() target { return sqlTarget("sql/mariadb", "mysql", myDSN, "") })
	}
	memory := target{name: "memory", pipeline: "driver: memory\n      config:\n        prefetch: 1000"}
	// boltdb counts every pushed job as in flight and stops delivering above prefetch, so a
	// backlog pushed while paused never drains unless prefetch exceeds it.
	boltdb := target{name: "boltdb", pipeline: "driver: boltdb\n      config:\n        prefetch: 10000000\n        file: %DIR%/bolt.db"}
	// The durability trade-off: SQLite without an fsync per commit.
	sqliteNormal := sqlTarget("sql/sqlite (synchronous: normal)", "sqlite", "", "normal")

	if *groupsOnly {
		if err := os.MkdirAll(*out, 0o755); err != nil {
			fail("%v", err)
		}
		if err := os.WriteFile(filepath.Join(*out, "groups.md"), []byte(groupReport(runGroups(bin, root, backends, st), st)), 0o644); err != nil {
			fail("%v", err)
		}
		fmt.Fprintf(os.Stderr, "wrote %s\n", filepath.Join(*out, "groups.md"))
		return
	}

	var results []result
	same := func(tg target) func() target { return func() target { return tg } }
	mainTargets := []func() target{same(memory), same(boltdb), backends[0], same(sqliteNormal)}
	mainTargets = append(mainTargets, backends[1:]...)
	var repeated []func() target // the targets whose drain gets more rounds
	for _, next := range mainTargets {
		tg := next()
		if !st.only.MatchString(tg.name) {
			continue
		}
		fmt.Fprintf(os.Stderr, "== %s\n", tg.name)
		r, err := run(bin, root, tg, st)
		if err != nil {
			fail("%s: %v", tg.name, err)
		}
		fmt.Fprintf(os.Stderr, "   %+v\n", r)
		results = append(results, r)
		if tg.name != boltdb.name { // boltdb drains 2 jobs/s: its one capped round is far from any target
			repeated = append(repeated, next)
		}
	}
	// More drain rounds, the drivers interleaved, so that a slow minute of the machine falls on
	// all of them rather than on one.
	for round := 2; round <= st.rounds; round++ {
		for _, next := range repeated {
			tg := next()
			fmt.Fprintf(os.Stderr, "== drain round %d: %s\n", round, tg.name)
			rate, err := drainRound(bin, root, tg, st)
			if err != nil {
				fail("%s: %v", tg.name, err)
			}
			fmt.Fprintf(os.Stderr, "   %.0f jobs/s\n", rate)
			for i := range results {
				if results[i].target == tg.name {
					results[i].drainRounds = append(results[i].drainRounds, rate)
				}
			}
		}
	}
	for i := range results {
		results[i].drainPerSec = median(results[i].drainRounds)
	}

	var backlog []backlogResult
	for _, next := range append([]func() target{func() target { return memory }}, backends...) {
		var br backlogResult
		for _, n := range st.backlogs {
			tg := next()
			if !st.only.MatchString(tg.name) {
				break
			}
			br.target = tg.name
			tst := st
			if tg.name == memory.name {
				// The memory driver holds only memoryPausedCap jobs while paused: fewer windows, or n/a.
				tst.windows = min(st.windows, (memoryPausedCap-n)/st.window)
				if tst.windows < 1 {
					br.rates, br.windows = append(br.rates, 0), append(br.windows, nil)
					continue
				}
			}
			fmt.Fprintf(os.Stderr, "== backlog %d: %s\n", n, tg.name)
			windows, rss, seed, err := drainFromBacklog(bin, root, tg, tst, n)
			if err != nil {
				fail("backlog %d, %s: %v", n, tg.name, err)
			}
			fmt.Fprintf(os.Stderr, "   windows %.0f jobs/s, RSS %.0f MB, queued in %.1f s\n", windows, rss, seed)
			br.rates, br.windows = append(br.rates, median(windows)), append(br.windows, windows)
			br.rssMB, br.seedSec = rss, seed
		}
		if br.rates != nil {
			backlog = append(backlog, br)
		}
	}

	var remote *result
	if pgDSN != "" && st.only.MatchString("sql/postgres") {
		fmt.Fprintf(os.Stderr, "== push on another node: sql/postgres\n")
		r, err := crossNodeLatency(bin, root, sqlTarget("sql/postgres", "postgres", pgDSN, ""), st)
		if err != nil {
			fail("push on another node: %v", err)
		}
		fmt.Fprintf(os.Stderr, "   p50 %s p99 %s\n", r.p50, r.p99)
		remote = &r
	}

	groups := runGroups(bin, root, backends, st)

	if err := os.MkdirAll(*out, 0o755); err != nil {
		fail("%v", err)
	}
	if err := os.WriteFile(filepath.Join(*out, "results.md"), []byte(report(results, backlog, remote, st)+groupReport(groups, st)), 0o644); err != nil {
		fail("%v", err)
	}
	if len(results) > 0 {
		if err := chart(results, filepath.Join(*out, "rates.png")); err != nil {
			fail("chart: %v", err)
		}
	}
	if len(backlog) > 0 {
		if err := backlogChart(backlog, st.backlogs, filepath.Join(*out, "backlog.png")); err != nil {
			fail("chart: %v", err)
		}
	}
	fmt.Fprintf(os.Stderr, "wrote %s\n", *out)
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
	os.Exit(1)
}

// sqlTarget is the sql driver on one database: SQLite in the run's directory, or a fresh database
// on the server that serverDSN names. synchronous is SQLite's setting ("" for the default).
func sqlTarget(name, dialect, serverDSN, synchronous string) target {
	tg := target{name: name, dialect: dialect, pipeline: "driver: sql\n      config:\n        prefetch: 1000"}
	switch dialect {
	case "sqlite":
		tg.extra = "sql:\n  connections:\n    default:\n      dsn: %DIR%/jobs.db"
		if synchronous != "" {
			tg.extra += "\n      synchronous: " + synchronous
		}
	case "postgres":
		tg.db, tg.dsn = freshDB(dialect, serverDSN)
		tg.server = serverDSN
		tg.extra = fmt.Sprintf("sql:\n  connections:\n    default:\n      dsn: %q", tg.dsn)
	case "mysql":
		tg.db, tg.dsn = freshDB(dialect, serverDSN)
		tg.server = serverDSN
		tg.extra = fmt.Sprintf("sql:\n  connections:\n    default:\n      dialect: mysql\n      dsn: %q", tg.dsn)
	}
	return tg
}

var dbSeq int

// freshDB creates a database for one run (the DSN names the server's default one) and returns
// its name and DSN.
func freshDB(dialect, dsn string) (name, dbDSN string) {
	dbSeq++
	name = fmt.Sprintf("bench_%d_%d", time.Now().Unix(), dbSeq)
	if err := serverExec(dialect, dsn, "CREATE DATABASE "+name); err != nil {
		fail("create database: %v", err)
	}
	if dialect == "postgres" {
		return name, strings.Replace(dsn, "/postgres?", "/"+name+"?", 1)
	}
	return name, strings.Replace(dsn, "/rr", "/"+name, 1)
}

// dropDB drops a run's database once its rr has stopped: a million rows left behind would be
// vacuumed or purged by the server while the next runs are measured.
func dropDB(tg target) {
	if tg.db == "" {
		return
	}
	stmt := "DROP DATABASE " + tg.db
	if tg.dialect == "postgres" {
		stmt += " WITH (FORCE)"
	}
	if err := serverExec(tg.dialect, tg.server, stmt); err != nil {
		fmt.Fprintf(os.Stderr, "   drop database %s: %v\n", tg.db, err)
	}
}

// serverExec runs one statement on the server's default database.
func serverExec(dialect, dsn, stmt string) error {
	db, err := sql.Open(driverNames[dialect], dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.Exec(stmt); err != nil {
		return fmt.Errorf("%s: %w", stmt, err)
	}
	return nil
}

// driverNames are the database/sql drivers of the targets' dialects.
var driverNames = map[string]string{"sqlite": "sqlite", "postgres": "pgx", "mysql": "mysql"}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail("%v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// rrProcess is one running rr serve with its RPC client.
type rrProcess struct {
	cmd         *exec.Cmd
	c           *rpc.Client
	out         string // the PHP workers' record of every job they received
	metricsAddr string
	profile     string // where rr writes its CPU profile, if asked
}

var profileSeq int

// startRR serves pipeline p of tg in dir with the no-op PHP workers; consume starts p at once,
// otherwise it waits for jobs.Resume.
func startRR(bin, root, dir string, tg target, st settings, workers int, consume bool) (*rrProcess, error) {
	p := &rrProcess{out: filepath.Join(dir, "out.jsonl"), metricsAddr: fmt.Sprintf("127.0.0.1:%d", freePort())}
	rpcAddr := fmt.Sprintf("127.0.0.1:%d", freePort())
	consumeYAML := "[]"
	if consume {
		consumeYAML = "[p]"
	}
	cfg := fmt.Sprintf(`version: "3"
rpc:
  listen: tcp://%s
server:
  command: "php %s"
  env:
    RR_TEST_OUT: %q
logs:
  level: error
metrics:
  address: %s
endure:
  grace_period: 3s
%s
jobs:
  pipeline_size: 2000000
  consume: %s
  pool:
    num_workers: %d
  pipelines:
    p:
      %s
`, rpcAddr, filepath.Join(root, "tests/php/worker.php"), p.out, p.metricsAddr, strings.ReplaceAll(tg.extra, "%DIR%", dir),
		consumeYAML, workers, strings.ReplaceAll(tg.pipeline, "%DIR%", dir))
	cfgPath := filepath.Join(dir, "rr.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	args := []string{"serve", "-c", cfgPath}
	if st.profileDir != "" {
		profileSeq++
		p.profile = filepath.Join(st.profileDir, fmt.Sprintf("%02d-%s.pprof", profileSeq, strings.NewReplacer("/", "-", " ", "", ":", "", "(", "", ")", "").Replace(tg.name)))
		args = append(args, "--cpuprofile", p.profile)
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Dir = dir
	var logs bytes.Buffer
	p.cmd.Stdout, p.cmd.Stderr = &logs, &logs
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	c, err := dialReady(rpcAddr)
	if err != nil {
		p.stop()
		return nil, fmt.Errorf("%w\n%s", err, logs.String())
	}
	p.c = c
	return p, nil
}

func (p *rrProcess) stop() {
	if p.c != nil {
		_ = p.c.Close()
	}
	if p.profile != "" {
		// A clean stop, so that rr writes its profile.
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _, _ = p.cmd.Process.Wait(); close(done) }()
		select {
		case <-done:
			return
		case <-time.After(10 * time.Second):
		}
	}
	_ = p.cmd.Process.Kill()
	_, _ = p.cmd.Process.Wait()
}

func (p *rrProcess) resume() error {
	return p.c.Call("jobs.Resume", &jobsProto.Pipelines{Pipelines: []string{"p"}}, &jobsProto.Empty{})
}

// pushBatches pushes n jobs named prefix-i with PushBatch, 500 a call.
func (p *rrProcess) pushBatches(prefix string, n int) error {
	for from := 0; from < n; from += 500 {
		req := &jobsProto.PushBatchRequest{}
		for i := from; i < min(from+500, n); i++ {
			req.Jobs = append(req.Jobs, job(fmt.Sprint(prefix, "-", i), `{"action":"ack"}`))
		}
		if err := p.c.Call("jobs.PushBatch", req, &jobsProto.Empty{}); err != nil {
			return err
		}
	}
	return nil
}

func run(bin, root string, tg target, st settings) (result, error) {
	r := result{target: tg.name}
	defer dropDB(tg) // after rr stops (deferred below)
	dir, _ := os.MkdirTemp("", "bench")
	defer os.RemoveAll(dir)
	rr, err := startRR(bin, root, dir, tg, st, st.workers, false)
	if err != nil {
		return r, err
	}
	defer rr.stop()

	// Push rate, pipeline paused (nothing competes with the pushes).
	start := time.Now()
	for i := range st.pushJobs {
		if err := push(rr.c, fmt.Sprint("single-", i), `{"action":"ack"}`); err != nil {
			return r, err
		}
	}
	r.pushPerSec = float64(st.pushJobs) / time.Since(start).Seconds()

	// PushBatch rate, then the drain of everything pushed.
	start = time.Now()
	if err := rr.pushBatches("batch", st.drainJobs); err != nil {
		return r, err
	}
	r.batchPerSec = float64(st.drainJobs) / time.Since(start).Seconds()
	total := st.pushJobs + st.drainJobs
	claims0, acks0, ackSec0 := claimCount(rr.metricsAddr), metricSum(rr.metricsAddr, "rr_sql_ack_batch_seconds_count"), metricSum(rr.metricsAddr, "rr_sql_ack_batch_seconds_sum")
	start = time.Now()
	if err := rr.resume(); err != nil {
		return r, err
	}
	// The drain window is capped: boltdb takes about two jobs a second, and would take hours.
	drained := waitLinesUpTo(rr.out, total, 60*time.Second)
	r.drainRounds = []float64{float64(drained) / time.Since(start).Seconds()}
	if tg.dialect != "" {
		claims, acks := claimCount(rr.metricsAddr)-claims0, metricSum(rr.metricsAddr, "rr_sql_ack_batch_seconds_count")-acks0
		fmt.Fprintf(os.Stderr, "   drain: %.0f claims, %.0f ack batches of %.1f ms on average\n", claims, acks,
			(metricSum(rr.metricsAddr, "rr_sql_ack_batch_seconds_sum")-ackSec0)/acks*1000)
	}
	if drained < total {
		r.p50, r.p99 = -1, -1 // the backlog is still draining: latency would measure the queue
		return r, nil
	}

	if r.p50, r.p99, err = latency(rr, rr); err != nil {
		return r, err
	}

	// Idle: claims per second (sql only), every statement the server ran (MariaDB counts them at
	// once; heartbeats and the reaper included) and CPU, over 10 s with nothing arriving.
	const idle = 10 * time.Second
	claims0, cpu0, queries0 := claimCount(rr.metricsAddr), cpuTicks(rr.cmd.Process.Pid), serverQueries(tg)
	time.Sleep(idle) // a measurement window, not a wait for a condition
	claims1, cpu1, queries1 := claimCount(rr.metricsAddr), cpuTicks(rr.cmd.Process.Pid), serverQueries(tg)
	r.idleClaimsPerSec = (claims1 - claims0) / idle.Seconds()
	r.idleCPUPc = float64(cpu1-cpu0) / 100 / idle.Seconds() * 100 // USER_HZ = 100
	if queries0 >= 0 && queries1 >= 0 {
		r.idleQueriesPerSec = float64(queries1-queries0-1) / idle.Seconds() // less the SHOW STATUS that reads it
	}
	r.rssMB = rssMB(rr.cmd.Process.Pid)
	return r, nil
}

// drainRound is one more round of the drain: a fresh rr (and database), the same jobs pushed with
// PushBatch while paused, then resumed until all are done. It returns the rate.
func drainRound(bin, root string, tg target, st settings) (float64, error) {
	defer dropDB(tg) // after rr stops (deferred below)
	dir, _ := os.MkdirTemp("", "bench")
	defer os.RemoveAll(dir)
	rr, err := startRR(bin, root, dir, tg, st, st.workers, false)
	if err != nil {
		return 0, err
	}
	defer rr.stop()
	total := st.pushJobs + st.drainJobs
	if err := rr.pushBatches("batch", total); err != nil {
		return 0, err
	}
	start := time.Now()
	if err := rr.resume(); err != nil {
		return 0, err
	}
	if err := waitLines(rr.out, total, 5*time.Minute); err != nil {
		return 0, err
	}
	return float64(total) / time.Since(start).Seconds(), nil
}

// serverQueries reads MariaDB's count of statements run since it started (Queries), which moves
// as each statement runs; -1 for the other targets.
func serverQueries(tg target) int64 {
	if tg.dialect != "mysql" {
		return -1
	}
	db, err := sql.Open("mysql", tg.dsn)
	if err != nil {
		return -1
	}
	defer db.Close()
	var name string
	var n int64
	if err := db.QueryRow("SHOW GLOBAL STATUS LIKE 'Queries'").Scan(&name, &n); err != nil {
		return -1
	}
	return n
}

// latency pushes 1000 jobs at a steady 200 jobs/s to pusher and reads, from the consumer's worker
// records, when each reached a PHP worker: push time from the clock here, worker time in its record.
func latency(pusher, consumer *rrProcess) (p50, p99 time.Duration, err error) {
	base := lines(consumer.out)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	sent := map[string]time.Time{}
	for i := range 1000 {
		<-tick.C
		id := fmt.Sprint("lat-", i)
		sent[id] = time.Now()
		if err := push(pusher.c, id, `{"action":"ack"}`); err != nil {
			return 0, 0, err
		}
	}
	if err := waitLines(consumer.out, base+1000, time.Minute); err != nil {
		return 0, 0, err
	}
	var lat []time.Duration
	for _, rec := range records(consumer.out) {
		if t0, ok := sent[rec.ID]; ok {
			lat = append(lat, time.UnixMilli(rec.TsMs).Sub(t0.Truncate(time.Millisecond)))
		}
	}
	slices.Sort(lat)
	return lat[len(lat)/2], lat[len(lat)*99/100], nil
}

// drainFromBacklog queues backlog + windows × window jobs while p is paused, resumes it, and
// measures the rate of each of those windows of jobs: every claim runs with at least
// backlog jobs behind it. The sql targets' backlog is written straight into the jobs table (the
// documented enqueue contract), the memory driver's through PushBatch. It returns the windows'
// rates, rr's RSS after them, and the seeding time.
func drainFromBacklog(bin, root string, tg target, st settings, backlog int) (windows []float64, rss, seedSec float64, err error) {
	defer dropDB(tg) // after rr stops (deferred below)
	dir, _ := os.MkdirTemp("", "bench")
	defer os.RemoveAll(dir)
	rr, err := startRR(bin, root, dir, tg, st, st.workers, false)
	if err != nil {
		return nil, 0, 0, err
	}
	defer rr.stop()
	start := time.Now()
	queued := backlog + st.windows*st.window
	if tg.dialect == "" {
		err = rr.pushBatches("seed", queued)
	} else {
		err = seed(tg, dir, queued, 0)
	}
	if err != nil {
		return nil, 0, 0, fmt.Errorf("queue the backlog: %w", err)
	}
	seedSec = time.Since(start).Seconds()
	start = time.Now()
	if err := rr.resume(); err != nil {
		return nil, 0, 0, err
	}
	done := lineCounter{file: rr.out}
	for w := 1; w <= st.windows; w++ {
		if err := done.wait(w*st.window, 5*time.Minute); err != nil {
			return nil, 0, 0, err
		}
		windows = append(windows, float64(st.window)/time.Since(start).Seconds())
		start = time.Now()
	}
	return windows, rssMB(rr.cmd.Process.Pid), seedSec, nil
}

// crossNodeLatency runs two rr nodes on one database: jobs pushed to a node that does not consume
// p reach the PHP workers of the node that does (woken by PostgreSQL's NOTIFY).
func crossNodeLatency(bin, root string, tg target, st settings) (result, error) {
	r := result{target: tg.name + ", push on another node"}
	defer dropDB(tg)
	consumerDir, _ := os.MkdirTemp("", "bench")
	defer os.RemoveAll(consumerDir)
	pusherDir, _ := os.MkdirTemp("", "bench")
	defer os.RemoveAll(pusherDir)
	consumer, err := startRR(bin, root, consumerDir, tg, st, st.workers, true)
	if err != nil {
		return r, err
	}
	defer consumer.stop()
	pusher, err := startRR(bin, root, pusherDir, tg, st, 1, false)
	if err != nil {
		return r, err
	}
	defer pusher.stop()
	r.p50, r.p99, err = latency(pusher, consumer)
	if err == nil && lines(pusher.out) != 0 {
		err = fmt.Errorf("the pushing node ran %d jobs; it does not consume p", lines(pusher.out))
	}
	return r, err
}

// seed writes n ready jobs of queue p into the sql target's table with multi-row INSERTs, in
// transactions of 50,000: the columns of the transactional-enqueue contract (examples/enqueue.php).
// With groups > 0, job i belongs to group t(i % groups) (column grp and header tenant).
func seed(tg target, dir string, n, groups int) error {
	driverName, dsn := driverNames[tg.dialect], tg.dsn
	if tg.dialect == "sqlite" {
		dsn = "file:" + filepath.Join(dir, "jobs.db") + "?_pragma=busy_timeout(10000)"
	}
	db, err := sql.Open(driverName, dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	cols := []string{"queue", "job_id", "name", "payload", "headers", "priority", "available_at", "created_at"}
	if groups > 0 {
		cols = append(cols, "grp")
	}
	const rowsPerInsert, rowsPerTx = 500, 50_000
	now := time.Now().UnixMilli()
	payload := []byte(`{"action":"ack"}`)
	for from := 0; from < n; from += rowsPerTx {
		tx, err := db.Begin()
		if err != nil {
			return err
		}
		for i := from; i < min(from+rowsPerTx, n); i += rowsPerInsert {
			rows := min(rowsPerInsert, n-i, from+rowsPerTx-i)
			args := make([]any, 0, rows*len(cols))
			for j := i; j < i+rows; j++ {
				if groups == 0 {
					args = append(args, "p", fmt.Sprint("seed-", j), "Job", payload, "{}", 10, now, now)
					continue
				}
				group := fmt.Sprint("t", j%groups)
				args = append(args, "p", fmt.Sprint("seed-", j), "Job", payload, `{"tenant":["`+group+`"]}`, 10, now, now, group)
			}
			if _, err := tx.Exec(insertColumns(tg.dialect, cols, rows), args...); err != nil {
				_ = tx.Rollback()
				return err
			}
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	// A backlog that built up over time would have been analyzed, vacuumed and written out to the
	// data files as it grew; one written in seconds has not, and the database would do it during
	// the measured windows.
	settle := map[string][]string{
		"sqlite":   {"ANALYZE", "PRAGMA wal_checkpoint(TRUNCATE)"},
		"postgres": {"VACUUM (ANALYZE) rr_jobs", "CHECKPOINT"},
		"mysql":    {"ANALYZE TABLE rr_jobs"},
	}[tg.dialect]
	for _, stmt := range settle {
		if _, err := db.Exec(stmt); err != nil {
			return fmt.Errorf("%s: %w", stmt, err)
		}
	}
	if tg.dialect == "mysql" {
		return flushInnoDB(db)
	}
	return nil
}

// flushInnoDB has InnoDB write out the pages the seeding dirtied (about 100 MB for a million jobs)
// and waits until at most 1 % of the buffer pool is dirty, then restores the server's setting.
func flushInnoDB(db *sql.DB) error {
	var was float64
	if err := db.QueryRow("SELECT @@GLOBAL.innodb_max_dirty_pages_pct").Scan(&was); err != nil {
		return err
	}
	if _, err := db.Exec("SET GLOBAL innodb_max_dirty_pages_pct = 0"); err != nil {
		return err
	}
	defer func() { _, _ = db.Exec("SET GLOBAL innodb_max_dirty_pages_pct = ?", was) }()
	status := func(name string) (n int64, err error) {
		err = db.QueryRow("SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = ?", name).Scan(&n)
		return n, err
	}
	total, err := status("INNODB_BUFFER_POOL_PAGES_TOTAL")
	if err != nil {
		return err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		dirty, err := status("INNODB_BUFFER_POOL_PAGES_DIRTY")
		if err != nil {
			return err
		}
		if dirty*100 <= total {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("InnoDB still has %d of %d pages dirty after 2 minutes", dirty, total)
		}
		time.Sleep(100 * time.Millisecond) // polling the server's counter
	}
}

func job(id, payload string) *jobsProto.Job {
	return &jobsProto.Job{Job: "Job", Id: id, Payload: []byte(payload), Options: &jobsProto.Options{Pipeline: "p"}}
}

func push(c *rpc.Client, id, payload string) error {
	return c.Call("jobs.Push", &jobsProto.PushRequest{Job: job(id, payload)}, &jobsProto.Empty{})
}

// dialReady connects once pipeline p's driver exists (jobs.Stat lists it).
func dialReady(addr string) (*rpc.Client, error) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if conn, err := net.Dial("tcp", addr); err == nil {
			c := rpc.NewClientWithCodec(goridgeRpc.NewClientCodec(conn))
			var st jobsProto.Stats
			if c.Call("jobs.Stat", &jobsProto.Empty{}, &st) == nil && len(st.GetStats()) == 1 {
				return c, nil
			}
			_ = c.Close()
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil, fmt.Errorf("rr did not come up")
}

func lines(file string) int {
	c := lineCounter{file: file}
	return c.count()
}

// lineCounter counts the lines of the file the PHP workers append their records to, reading only
// what was added since the last call: a drain is polled every 20 ms, and reading its tens of
// megabytes again each time would take CPU from the processes being measured.
type lineCounter struct {
	file string
	read int64 // bytes counted so far
	n    int
}

func (c *lineCounter) count() int {
	f, err := os.Open(c.file)
	if err != nil {
		return c.n
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for {
		k, err := f.ReadAt(buf, c.read)
		c.n += bytes.Count(buf[:k], []byte{'\n'})
		c.read += int64(k)
		if err != nil || k < len(buf) {
			return c.n
		}
	}
}

// wait polls until n lines are there, or fails after timeout.
func (c *lineCounter) wait(n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for c.count() < n {
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d jobs processed after %s", c.n, n, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// waitLinesUpTo waits for n jobs or until the window ends, and returns how many were processed.
func waitLinesUpTo(file string, n int, window time.Duration) int {
	c := lineCounter{file: file}
	deadline := time.Now().Add(window)
	for c.count() < n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	return min(c.n, n)
}

func waitLines(file string, n int, timeout time.Duration) error {
	c := lineCounter{file: file}
	return c.wait(n, timeout)
}

// joinRates writes rates as "9801, 10022, 9950".
func joinRates(rates []float64) string {
	parts := make([]string, len(rates))
	for i, r := range rates {
		parts[i] = fmt.Sprintf("%.0f", r)
	}
	return strings.Join(parts, ", ")
}

// median of rates (0 for none).
func median(rates []float64) float64 {
	if len(rates) == 0 {
		return 0
	}
	sorted := slices.Sorted(slices.Values(rates))
	if len(sorted)%2 == 1 {
		return sorted[len(sorted)/2]
	}
	return (sorted[len(sorted)/2-1] + sorted[len(sorted)/2]) / 2
}

type record struct {
	ID   string `json:"id"`
	TsMs int64  `json:"ts_ms"`
}

func records(file string) []record {
	b, _ := os.ReadFile(file)
	var out []record
	for _, l := range bytes.Split(b, []byte{'\n'}) {
		var r record
		if json.Unmarshal(l, &r) == nil {
			out = append(out, r)
		}
	}
	return out
}

// claimCount is how many claim statements rr ran (0 for drivers other than sql).
func claimCount(addr string) float64 { return metricSum(addr, "rr_sql_claim_seconds_count") }

// metricSum sums the samples of one metric from rr's metrics endpoint (0 when it has none).
func metricSum(addr, name string) float64 {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var sum float64
	for _, l := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(l, name+"{") || strings.HasPrefix(l, name+" ") {
			f := strings.Fields(l)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			sum += v
		}
	}
	return sum
}

// cpuTicks is the process's user+system time in clock ticks (/proc/PID/stat fields 14 and 15).
func cpuTicks(pid int) int64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	s := string(b)
	f := strings.Fields(s[strings.LastIndex(s, ")")+2:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	k, _ := strconv.ParseInt(f[12], 10, 64)
	return u + k
}

func rssMB(pid int) float64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			kb, _ := strconv.ParseFloat(strings.Fields(l)[1], 64)
			return kb / 1024
		}
	}
	return 0
}

func report(rs []result, backlog []backlogResult, remote *result, st settings) string {
	var b strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(&b, "# Benchmark: the sql driver beside RoadRunner's memory and boltdb drivers\n\n")
	fmt.Fprintf(&b, "One rr binary (RoadRunner 2025.1.15 plugins), %d no-op PHP workers, on %s (%d cores, %s, %s), %s.\n",
		st.workers, host, runtime.NumCPU(), runtime.GOOS, runtime.Version(), time.Now().UTC().Format("2006-01-02"))
	fmt.Fprintf(&b, "%s.\n", st.machine)
	b.WriteString("Durability: every persistent backend flushes each commit to disk, as in production. boltdb syncs each\n" +
		"transaction; SQLite runs with the default `synchronous: full` (one row shows `normal`, the trade-off);\n" +
		"PostgreSQL 15 with `fsync=on`, `synchronous_commit=on`; MariaDB with `innodb_flush_log_at_trx_commit=1`.\n\n")
	fmt.Fprintf(&b, "| driver | Push jobs/s (%d calls) | PushBatch jobs/s | drain jobs/s (%d queued, median) | latency p50 | p99 | idle claims/s | idle CPU %% | RSS MB |\n", st.pushJobs, st.pushJobs+st.drainJobs)
	b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rs {
		p50, p99, idle := millis(r.p50), millis(r.p99), fmt.Sprintf("%.1f | %.1f | %.0f", r.idleClaimsPerSec, r.idleCPUPc, r.rssMB)
		if r.p50 < 0 {
			p50, p99, idle = "n/a", "n/a", "n/a | n/a | n/a" // still draining after the window
		}
		fmt.Fprintf(&b, "| %s | %.0f | %.0f | %.0f | %s | %s | %s |\n", r.target, r.pushPerSec, r.batchPerSec, r.drainPerSec, p50, p99, idle)
	}
	if remote != nil {
		fmt.Fprintf(&b, "| %s | | | | %s | %s | | | |\n", remote.target, millis(remote.p50), millis(remote.p99))
	}
	fmt.Fprintf(&b, "\nThe drain is the median of %d rounds (below), each on a fresh rr and database, the drivers' rounds interleaved;\n", st.rounds)
	b.WriteString("boltdb runs one round, capped at 60 s (rate = jobs done / time); n/a: the driver had not drained its backlog by then.\n")
	b.WriteString("Idle: over 10 s with nothing arriving; claims from rr's metrics, CPU from /proc. MariaDB's server also counts\n" +
		"every statement the node ran in that time (claims, heartbeats, the reaper): see the targets below.\n")
	b.WriteString("Latency is from the Push call to the worker's record of the job, at 200 jobs/s, millisecond resolution.\n")
	b.WriteString("Push on another node: two rr processes on one PostgreSQL database, jobs pushed to the one that does not consume.\n\n")

	if st.rounds > 1 {
		b.WriteString("## Drain rounds\n\n| driver |")
		for round := 1; round <= st.rounds; round++ {
			fmt.Fprintf(&b, " round %d |", round)
		}
		b.WriteString(" median | slowest ÷ fastest |\n|---|" + strings.Repeat("---|", st.rounds+2) + "\n")
		for _, r := range rs {
			if len(r.drainRounds) < 2 {
				continue
			}
			fmt.Fprintf(&b, "| %s |", r.target)
			for _, rate := range r.drainRounds {
				fmt.Fprintf(&b, " %.0f |", rate)
			}
			fmt.Fprintf(&b, " %.0f | %.2f |\n", r.drainPerSec, slices.Min(r.drainRounds)/slices.Max(r.drainRounds))
		}
		b.WriteString("\n")
	}

	if len(backlog) > 0 {
		fmt.Fprintf(&b, "## Drain rate against the backlog\n\nThe median of %d consecutive windows of %d jobs, drained from the front of a backlog queued behind them\n", st.windows, st.window)
		b.WriteString("(pushed while paused; the sql backlogs written straight into the jobs table, the memory driver's through PushBatch).\n" +
			"Before the windows the database is settled as a backlog grown over time would be: analyzed, SQLite's WAL checkpointed,\n" +
			"PostgreSQL vacuumed and checkpointed, InnoDB's dirty pages written out. Each run's database is dropped after it.\n" +
			"Every claim runs with at least the backlog behind it. RSS is rr's after the windows at the largest backlog.\n")
		fmt.Fprintf(&b, "The memory driver holds at most %d jobs while paused (its local channel): it runs as many windows as fit, n/a when none does.\n\n", memoryPausedCap)
		b.WriteString("| driver |")
		for _, n := range st.backlogs {
			fmt.Fprintf(&b, " %s queued jobs/s |", count(n))
		}
		fmt.Fprintf(&b, " largest ÷ smallest | RSS MB, %s queued |\n|---|", count(st.backlogs[len(st.backlogs)-1]))
		for range st.backlogs {
			b.WriteString("---|")
		}
		b.WriteString("---|---|\n")
		for _, br := range backlog {
			fmt.Fprintf(&b, "| %s |", br.target)
			for _, r := range br.rates {
				if r == 0 {
					b.WriteString(" n/a |")
				} else {
					fmt.Fprintf(&b, " %.0f |", r)
				}
			}
			if last := br.rates[len(br.rates)-1]; last > 0 {
				fmt.Fprintf(&b, " %.2f | %.0f |\n", last/br.rates[0], br.rssMB)
			} else {
				b.WriteString(" n/a | n/a |\n")
			}
		}
		b.WriteString("\nEach window's rate (jobs/s):\n\n")
		for _, br := range backlog {
			for i, windows := range br.windows {
				if windows != nil {
					fmt.Fprintf(&b, "- %s, %s queued: %s\n", br.target, count(st.backlogs[i]), joinRates(windows))
				}
			}
		}
	}
	b.WriteString(targetsTable(rs, backlog, remote))
	b.WriteString(pushCeiling(rs, st.flush))
	b.WriteString("\n![rates](rates.png)\n\n![backlog](backlog.png)\n")
	return b.String()
}

// targetsTable checks the run against the speed targets, as ratios within this run.
func targetsTable(rs []result, backlog []backlogResult, remote *result) string {
	byName := map[string]result{}
	for _, r := range rs {
		byName[r.target] = r
	}
	var b strings.Builder
	b.WriteString("\n## Targets\n\n| target | required | measured | met |\n|---|---|---|---|\n")
	row := func(what, required string, measured float64, format string, met bool) {
		mark := "yes"
		if !met {
			mark = "**no**"
		}
		fmt.Fprintf(&b, "| %s | %s | "+format+" | %s |\n", what, required, measured, mark)
	}
	memory, boltdb := byName["memory"], byName["boltdb"]
	for _, t := range []struct {
		name string
		min  float64
	}{{"sql/sqlite", 0.8}, {"sql/postgres", 0.6}, {"sql/mariadb", 0.4}} {
		if r, ok := byName[t.name]; ok && memory.drainPerSec > 0 {
			row("drain "+t.name+" ÷ memory", fmt.Sprintf("≥ %.1f", t.min), r.drainPerSec/memory.drainPerSec, "%.3f", r.drainPerSec/memory.drainPerSec >= t.min)
		}
	}
	for _, r := range rs {
		if strings.HasPrefix(r.target, "sql/") && boltdb.drainPerSec > 0 {
			row("drain "+r.target+" ÷ boltdb", "≥ 50", r.drainPerSec/boltdb.drainPerSec, "%.0f", r.drainPerSec/boltdb.drainPerSec >= 50)
		}
	}
	if r, ok := byName["sql/sqlite"]; ok && memory.pushPerSec > 0 {
		row("Push sql/sqlite ÷ memory (default durability)", "≥ 0.5", r.pushPerSec/memory.pushPerSec, "%.3f", r.pushPerSec/memory.pushPerSec >= 0.5)
	}
	if r, ok := byName["sql/sqlite (synchronous: normal)"]; ok && memory.pushPerSec > 0 {
		fmt.Fprintf(&b, "| Push sql/sqlite (synchronous: normal) ÷ memory | the trade-off, no target | %.2f | — |\n", r.pushPerSec/memory.pushPerSec)
	}
	for _, r := range rs {
		if strings.HasPrefix(r.target, "sql/") && r.p50 >= 0 {
			row("latency p50 "+r.target+" (ms)", "≤ 5", float64(r.p50.Milliseconds()), "%.0f", r.p50 <= 5*time.Millisecond)
		}
	}
	if remote != nil {
		row("latency p50 "+remote.target+" (ms)", "≤ 5", float64(remote.p50.Milliseconds()), "%.0f", remote.p50 <= 5*time.Millisecond)
	}
	for _, br := range backlog {
		if strings.HasPrefix(br.target, "sql/") && len(br.rates) > 1 {
			ratio := br.rates[len(br.rates)-1] / br.rates[0]
			row("drain at the largest ÷ smallest backlog, "+br.target, "≥ 0.9", ratio, "%.3f", ratio >= 0.9)
		}
	}
	for _, r := range rs {
		if r.idleQueriesPerSec > 0 {
			row("idle statements per second, "+r.target, "≤ 5", r.idleQueriesPerSec, "%.1f", r.idleQueriesPerSec <= 5)
		}
	}
	return b.String()
}

// machine names the CPU and the versions of SQLite and the database servers, as they answer.
func machine(pgDSN, myDSN string) string {
	cpu := "CPU unknown"
	if info, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(info)) {
			if name, ok := strings.CutPrefix(line, "model name"); ok {
				cpu = "CPU " + strings.TrimSpace(strings.TrimLeft(name, " \t:"))
				break
			}
		}
	}
	parts := []string{cpu}
	version := func(label, driverName, dsn, query string) {
		db, err := sql.Open(driverName, dsn)
		if err != nil {
			return
		}
		defer db.Close()
		var v string
		if db.QueryRow(query).Scan(&v) == nil {
			parts = append(parts, label+" "+v)
		}
	}
	version("SQLite", driverNames["sqlite"], ":memory:", "SELECT sqlite_version()")
	if pgDSN != "" {
		version("PostgreSQL", driverNames["postgres"], pgDSN, "SHOW server_version")
	}
	if myDSN != "" {
		version("MariaDB", driverNames["mysql"], myDSN, "SELECT VERSION()")
	}
	return strings.Join(parts, "; ")
}

// flushTime is the median time to overwrite 8 KiB of a file in dir and fsync it: what one
// durable commit must wait for at least, whatever the database.
func flushTime(dir string) (time.Duration, error) {
	f, err := os.CreateTemp(dir, "flush")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	block := make([]byte, 8192)
	if _, err := f.Write(make([]byte, 64*len(block))); err != nil {
		return 0, err
	}
	if err := f.Sync(); err != nil {
		return 0, err
	}
	times := make([]float64, 1000)
	for i := range times {
		start := time.Now()
		if _, err := f.WriteAt(block, int64(i%64*len(block))); err != nil {
			return 0, err
		}
		if err := f.Sync(); err != nil {
			return 0, err
		}
		times[i] = float64(time.Since(start))
	}
	return time.Duration(median(times)), nil
}

// pushCeiling explains the Push target at full durability with this machine's figures: RoadRunner
// calls the driver once per job, one call after another, and a durable Push returns only after
// its commit is flushed, so no durable driver can push faster than one flush per job plus the
// memory driver's own cost per Push.
func pushCeiling(rs []result, flush time.Duration) string {
	var memoryPush, sqlitePush float64
	for _, r := range rs {
		switch r.target {
		case "memory":
			memoryPush = r.pushPerSec
		case "sql/sqlite":
			sqlitePush = r.pushPerSec
		}
	}
	if memoryPush == 0 || sqlitePush == 0 || flush <= 0 {
		return ""
	}
	perPush := time.Duration(float64(time.Second) / memoryPush)
	ceiling := 1 / (1/memoryPush + flush.Seconds())
	return fmt.Sprintf("\nThe Push target at full durability: RoadRunner calls the driver's Push once per job, one call after another\n"+
		"(PushBatch too), and a durable Push returns only once its commit is on disk. The memory driver takes %s per Push\n"+
		"and this disk takes %s to flush an 8 KiB overwrite (median of 1000 fsyncs, measured by the bench), so no driver\n"+
		"that flushes each Push can exceed %.0f jobs/s here: %.2f × memory. sql/sqlite reaches %.2f of that ceiling;\n"+
		"`synchronous: normal` (no flush per commit) is the row that shows the trade-off.\n",
		perPush.Round(time.Microsecond), flush.Round(time.Microsecond), ceiling, ceiling/memoryPush, sqlitePush/ceiling)
}

// millis writes a latency measured at millisecond resolution: "< 1ms" below the first tick.
func millis(d time.Duration) string {
	if d < time.Millisecond {
		return "< 1ms"
	}
	return d.String()
}

// count writes 10000 as 10k and 1000000 as 1M.
func count(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return strconv.Itoa(n)
}

func chart(rs []result, file string) error {
	var names []string
	for _, r := range rs {
		names = append(names, r.target)
	}
	series := map[string][]float64{}
	for _, r := range rs {
		series["Push"] = append(series["Push"], r.pushPerSec)
		series["PushBatch"] = append(series["PushBatch"], r.batchPerSec)
		series["drain"] = append(series["drain"], r.drainPerSec)
	}
	return bars("jobs per second (higher is better)", names, []string{"Push", "PushBatch", "drain"}, series, file)
}

func backlogChart(bs []backlogResult, sizes []int, file string) error {
	var names, labels []string
	for _, br := range bs {
		names = append(names, br.target)
	}
	series := map[string][]float64{}
	for i, n := range sizes {
		label := count(n) + " queued"
		labels = append(labels, label)
		for _, br := range bs {
			series[label] = append(series[label], br.rates[i])
		}
	}
	return bars("drain jobs per second against the backlog", names, labels, series, file)
}

// bars draws grouped bars: one group per name, one bar per label.
func bars(title string, names, labels []string, series map[string][]float64, file string) error {
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = "jobs/s"
	w := vg.Points(14)
	colors := []color.RGBA{{70, 130, 180, 255}, {60, 179, 113, 255}, {205, 92, 92, 255}, {218, 165, 32, 255}}
	for i, label := range labels {
		b, err := plotter.NewBarChart(plotter.Values(series[label]), w)
		if err != nil {
			return err
		}
		b.Offset = w * vg.Length(float64(i)-float64(len(labels)-1)/2)
		b.LineStyle.Width = 0
		b.Color = colors[i%len(colors)]
		p.Add(b)
		p.Legend.Add(label, b)
	}
	p.NominalX(names...)
	p.Legend.Top = true
	return p.Save(vg.Length(max(8, len(names)*3/2))*vg.Inch, 4*vg.Inch, file)
}
