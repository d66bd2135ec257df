// Command bench measures the sql driver side by side with RoadRunner's memory and boltdb drivers,
// in one rr binary, with the same no-op PHP worker and pool: push rate (Push and PushBatch), drain
// rate (jobs pushed while paused, then resumed), push-to-worker latency at a steady low rate, and
// the idle cost. It writes docs/bench/results.md and docs/bench/rates.png.
//
//	make bench     (starts the database servers, then: cd cmd/rr && go run ./bench)
package main

import (
	"bytes"
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
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	jobsProto "github.com/roadrunner-server/api/v4/build/jobs/v1"
	goridgeRpc "github.com/roadrunner-server/goridge/v3/pkg/rpc"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// target is one driver configuration under test.
type target struct {
	name     string
	pipeline string // YAML of the pipeline's driver and config, indented for jobs.pipelines.p
	extra    string // top-level YAML (the sql: section)
}

type result struct {
	target                      string
	pushPerSec, batchPerSec     float64
	drainPerSec                 float64
	p50, p99                    time.Duration
	idleClaimsPerSec, idleCPUPc float64
	rssMB                       float64
}

func main() {
	drainJobs := flag.Int("drain", 50_000, "jobs pushed while paused, then drained")
	pushJobs := flag.Int("push", 5_000, "jobs pushed one Push call at a time")
	workers := flag.Int("workers", 4, "PHP workers")
	out := flag.String("out", "../../docs/bench", "where to write results.md and rates.png")
	flag.Parse()

	root, _ := filepath.Abs("../..")
	bin := filepath.Join(os.TempDir(), "rr-bench")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if o, err := build.CombinedOutput(); err != nil {
		fail("build rr: %v\n%s", err, o)
	}

	targets := []target{
		{name: "memory", pipeline: "driver: memory\n      config:\n        prefetch: 1000"},
		// boltdb counts every pushed job as in flight and stops delivering above prefetch, so a
		// backlog pushed while paused never drains unless prefetch exceeds it.
		{name: "boltdb", pipeline: "driver: boltdb\n      config:\n        prefetch: 10000000\n        file: %DIR%/bolt.db"},
		{name: "sql/sqlite", pipeline: "driver: sql\n      config:\n        prefetch: 1000",
			extra: "sql:\n  connections:\n    default:\n      dsn: %DIR%/jobs.db"},
	}
	if dsn := os.Getenv("SQLJOBS_POSTGRES_DSN"); dsn != "" {
		targets = append(targets, target{name: "sql/postgres", pipeline: "driver: sql\n      config:\n        prefetch: 1000",
			extra: fmt.Sprintf("sql:\n  connections:\n    default:\n      dsn: %q", freshDB("postgres", dsn))})
	}
	if dsn := os.Getenv("SQLJOBS_MYSQL_DSN"); dsn != "" {
		targets = append(targets, target{name: "sql/mariadb", pipeline: "driver: sql\n      config:\n        prefetch: 1000",
			extra: fmt.Sprintf("sql:\n  connections:\n    default:\n      dialect: mysql\n      dsn: %q", freshDB("mysql", dsn))})
	}

	var results []result
	for _, tg := range targets {
		fmt.Fprintf(os.Stderr, "== %s\n", tg.name)
		r, err := run(bin, root, tg, *workers, *pushJobs, *drainJobs)
		if err != nil {
			fail("%s: %v", tg.name, err)
		}
		fmt.Fprintf(os.Stderr, "   %+v\n", r)
		results = append(results, r)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fail("%v", err)
	}
	if err := os.WriteFile(filepath.Join(*out, "results.md"), []byte(report(results, *workers, *pushJobs, *drainJobs)), 0o644); err != nil {
		fail("%v", err)
	}
	if err := chart(results, filepath.Join(*out, "rates.png")); err != nil {
		fail("chart: %v", err)
	}
	fmt.Fprintf(os.Stderr, "wrote %s\n", *out)
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
	os.Exit(1)
}

// freshDB creates a database for the run (the DSN names the server's default one).
func freshDB(dialect, dsn string) string {
	name := fmt.Sprintf("bench_%d", time.Now().Unix())
	if dialect == "postgres" {
		if o, err := exec.Command("psql", dsn, "-qc", "CREATE DATABASE "+name).CombinedOutput(); err != nil {
			fail("create database: %v %s", err, o)
		}
		return strings.Replace(dsn, "/postgres?", "/"+name+"?", 1)
	}
	host := dsn[strings.Index(dsn, "tcp(")+4 : strings.Index(dsn, ")")]
	h, p, _ := net.SplitHostPort(host)
	user, pass, _ := strings.Cut(dsn[:strings.Index(dsn, "@")], ":")
	if o, err := exec.Command("mariadb", "--no-defaults", "-h", h, "-P", p, "-u"+user, "-p"+pass, "-e", "CREATE DATABASE "+name).CombinedOutput(); err != nil {
		fail("create database: %v %s", err, o)
	}
	return strings.Replace(dsn, "/rr", "/"+name, 1)
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail("%v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func run(bin, root string, tg target, workers, pushJobs, drainJobs int) (result, error) {
	r := result{target: tg.name}
	dir, _ := os.MkdirTemp("", "bench")
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "out.jsonl")
	rpcAddr := fmt.Sprintf("127.0.0.1:%d", freePort())
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", freePort())
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
  pool:
    num_workers: %d
  pipelines:
    p:
      %s
`, rpcAddr, filepath.Join(root, "tests/php/worker.php"), out, metricsAddr, strings.ReplaceAll(tg.extra, "%DIR%", dir), workers,
		strings.ReplaceAll(tg.pipeline, "%DIR%", dir))
	cfgPath := filepath.Join(dir, "rr.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return r, err
	}
	cmd := exec.Command(bin, "serve", "-c", cfgPath)
	cmd.Dir = dir
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		return r, err
	}
	defer func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() }()
	c, err := dialReady(rpcAddr)
	if err != nil {
		return r, fmt.Errorf("%w\n%s", err, logs.String())
	}
	defer c.Close()

	// Push rate, pipeline paused (nothing competes with the pushes).
	start := time.Now()
	for i := range pushJobs {
		if err := push(c, fmt.Sprint("single-", i), `{"action":"ack"}`); err != nil {
			return r, err
		}
	}
	r.pushPerSec = float64(pushJobs) / time.Since(start).Seconds()

	// PushBatch rate, then the drain of everything pushed.
	start = time.Now()
	for from := 0; from < drainJobs; from += 500 {
		req := &jobsProto.PushBatchRequest{}
		for i := from; i < min(from+500, drainJobs); i++ {
			req.Jobs = append(req.Jobs, job(fmt.Sprint("batch-", i), `{"action":"ack"}`))
		}
		if err := c.Call("jobs.PushBatch", req, &jobsProto.Empty{}); err != nil {
			return r, err
		}
	}
	r.batchPerSec = float64(drainJobs) / time.Since(start).Seconds()
	total := pushJobs + drainJobs
	start = time.Now()
	if err := c.Call("jobs.Resume", &jobsProto.Pipelines{Pipelines: []string{"p"}}, &jobsProto.Empty{}); err != nil {
		return r, err
	}
	// The drain window is capped: boltdb takes about two jobs a second, and would take hours.
	drained := waitLinesUpTo(out, total, 60*time.Second)
	r.drainPerSec = float64(drained) / time.Since(start).Seconds()
	if drained < total {
		r.p50, r.p99 = -1, -1 // the backlog is still draining: latency would measure the queue
		return r, nil
	}

	// Latency at a steady 200 jobs/s for 5 s: push time in the payload, worker time in its record.
	base := lines(out)
	tick := time.NewTicker(5 * time.Millisecond)
	sent := map[string]time.Time{}
	for i := range 1000 {
		<-tick.C
		id := fmt.Sprint("lat-", i)
		sent[id] = time.Now()
		if err := push(c, id, `{"action":"ack"}`); err != nil {
			return r, err
		}
	}
	tick.Stop()
	if err := waitLines(out, base+1000, time.Minute); err != nil {
		return r, err
	}
	var lat []time.Duration
	for _, rec := range records(out) {
		if t0, ok := sent[rec.ID]; ok {
			lat = append(lat, time.UnixMilli(rec.TsMs).Sub(t0.Truncate(time.Millisecond)))
		}
	}
	slices.Sort(lat)
	r.p50, r.p99 = lat[len(lat)/2], lat[len(lat)*99/100]

	// Idle: claims per second (sql only) and CPU over 5 s with nothing arriving.
	claims0, cpu0 := claimCount(metricsAddr), cpuTicks(cmd.Process.Pid)
	time.Sleep(5 * time.Second)
	claims1, cpu1 := claimCount(metricsAddr), cpuTicks(cmd.Process.Pid)
	r.idleClaimsPerSec = (claims1 - claims0) / 5
	r.idleCPUPc = float64(cpu1-cpu0) / 100 / 5 * 100 // USER_HZ = 100
	r.rssMB = rssMB(cmd.Process.Pid)
	return r, nil
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
	b, _ := os.ReadFile(file)
	return bytes.Count(b, []byte{'\n'})
}

// waitLinesUpTo waits for n jobs or until the window ends, and returns how many were processed.
func waitLinesUpTo(file string, n int, window time.Duration) int {
	deadline := time.Now().Add(window)
	for lines(file) < n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	return min(lines(file), n)
}

func waitLines(file string, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for lines(file) < n {
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d jobs processed after %s", lines(file), n, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
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

// claimCount sums rr_sql_claim_seconds_count from the metrics endpoint (0 for other drivers).
func claimCount(addr string) float64 {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var sum float64
	for _, l := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(l, "rr_sql_claim_seconds_count") {
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

func report(rs []result, workers, pushJobs, drainJobs int) string {
	var b strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(&b, "# Benchmark: the sql driver beside RoadRunner's memory and boltdb drivers\n\n")
	fmt.Fprintf(&b, "One rr binary (RoadRunner 2025.1.15 plugins), %d no-op PHP workers, on %s (%d cores, %s), %s.\n",
		workers, host, runtime.NumCPU(), runtime.GOOS, time.Now().UTC().Format("2006-01-02"))
	fmt.Fprintf(&b, "SQLite with the default `synchronous: full`; PostgreSQL 15 with fsync=off; MariaDB with innodb_flush_log_at_trx_commit=0.\n\n")
	fmt.Fprintf(&b, "| driver | Push jobs/s (%d calls) | PushBatch jobs/s | drain jobs/s (%d queued) | latency p50 | p99 | idle claims/s | idle CPU %% | RSS MB |\n", pushJobs, pushJobs+drainJobs)
	b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rs {
		p50, p99, idle := r.p50.String(), r.p99.String(), fmt.Sprintf("%.1f | %.1f | %.0f", r.idleClaimsPerSec, r.idleCPUPc, r.rssMB)
		if r.p50 < 0 {
			p50, p99, idle = "n/a", "n/a", "n/a | n/a | n/a" // still draining after the window
		}
		fmt.Fprintf(&b, "| %s | %.0f | %.0f | %.0f | %s | %s | %s |\n", r.target, r.pushPerSec, r.batchPerSec, r.drainPerSec, p50, p99, idle)
	}
	b.WriteString("\nThe drain window is capped at 60 s (rate = jobs done / time); n/a: the driver had not drained its backlog by then.\n")
	b.WriteString("Latency is from the Push call to the worker's record of the job, at 200 jobs/s, millisecond resolution.\n")
	b.WriteString("Not measured yet: the drain rate against a 100k and 1M backlog, and RSS with 1M jobs queued.\n\n![rates](rates.png)\n")
	return b.String()
}

func chart(rs []result, file string) error {
	p := plot.New()
	p.Title.Text = "jobs per second (higher is better)"
	p.Y.Label.Text = "jobs/s"
	w := vg.Points(14)
	var names []string
	series := []struct {
		label string
		get   func(result) float64
	}{{"Push", func(r result) float64 { return r.pushPerSec }}, {"PushBatch", func(r result) float64 { return r.batchPerSec }}, {"drain", func(r result) float64 { return r.drainPerSec }}}
	for i, s := range series {
		vals := make(plotter.Values, len(rs))
		for j, r := range rs {
			vals[j] = s.get(r)
		}
		bars, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return err
		}
		bars.Offset = w * vg.Length(i-1)
		bars.LineStyle.Width = 0
		bars.Color = []color.RGBA{{70, 130, 180, 255}, {60, 179, 113, 255}, {205, 92, 92, 255}}[i]
		p.Add(bars)
		p.Legend.Add(s.label, bars)
	}
	for _, r := range rs {
		names = append(names, r.target)
	}
	p.NominalX(names...)
	p.Legend.Top = true
	return p.Save(8*vg.Inch, 4*vg.Inch, file)
}
