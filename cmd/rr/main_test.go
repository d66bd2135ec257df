package main

// These tests run the real binary: rr serve with PHP workers, rr workers, signals, and several
// rr processes sharing one database.

import (
	"bufio"
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/rpc"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"
	jobsProto "github.com/roadrunner-server/api/v4/build/jobs/v1"
	goridgeRpc "github.com/roadrunner-server/goridge/v3/pkg/rpc"
)

var rrBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rr-bin")
	if err != nil {
		panic(err)
	}
	rrBinary = filepath.Join(dir, "rr")
	build := exec.Command("go", "build", "-o", rrBinary, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build rr: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

func requirePHP(t *testing.T) {
	if _, err := exec.LookPath("php"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("php is not installed: CI must install php-cli")
		}
		t.Skip("php is not installed (apt-get install php-cli): rr serves real PHP workers")
	}
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// node is one `rr serve` process.
type node struct {
	t      *testing.T
	cmd    *exec.Cmd
	config string
	rpc    string
	worker string // this node's copy of the PHP worker: its processes are findable by path
	log    *bytes.Buffer
	done   chan error
}

type nodeOptions struct {
	// extra is top-level YAML added to the config (another plugin's section).
	extra      string
	sqlSection string
	workers    int
	out        string
	grace      string
	// env is added to rr's environment.
	env []string
	// endOut is where the PHP workers record the end of each job (RR_TEST_END_OUT).
	endOut string
	// pipeline are more options of pipeline p, one "key: value" each.
	pipeline []string
}

// startNode writes a config and starts `rr serve` on it.
func startNode(t *testing.T, o nodeOptions) *node {
	t.Helper()
	requirePHP(t)
	dir := t.TempDir()
	src, err := os.ReadFile(filepath.Join("..", "..", "tests", "php", "worker.php"))
	if err != nil {
		t.Fatal(err)
	}
	worker := filepath.Join(dir, "worker.php")
	if err := os.WriteFile(worker, src, 0o644); err != nil {
		t.Fatal(err)
	}
	if o.workers == 0 {
		o.workers = 2
	}
	if o.grace == "" {
		o.grace = "2s"
	}
	n := &node{t: t, rpc: fmt.Sprintf("127.0.0.1:%d", freePort(t)), worker: worker, log: &bytes.Buffer{}, done: make(chan error, 1)}
	n.config = filepath.Join(dir, ".rr.yaml")
	cfg := fmt.Sprintf(`version: "3"
rpc:
  listen: tcp://%s
server:
  command: "php %s"
  env:
    RR_TEST_OUT: %q
    RR_TEST_END_OUT: %q
logs:
  mode: production
  level: warn
endure:
  grace_period: %s
%s
%s
jobs:
  pool:
    num_workers: %d
    allocate_timeout: 20s
    destroy_timeout: 2s
  pipelines:
    p:
      driver: sql
      config:
        prefetch: 50
        poll_interval: 200ms
%s  consume: ["p"]
`, n.rpc, worker, o.out, o.endOut, o.grace, o.extra, o.sqlSection, o.workers, pipelineOptions(o.pipeline))
	if err := os.WriteFile(n.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	n.cmd = exec.Command(rrBinary, "serve", "-c", n.config)
	n.cmd.Dir = dir
	n.cmd.Env = append(os.Environ(), o.env...)
	n.cmd.Stdout, n.cmd.Stderr = n.log, n.log
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { n.done <- n.cmd.Wait() }()
	t.Cleanup(func() {
		if n.cmd.ProcessState == nil {
			_ = n.cmd.Process.Kill()
			<-n.done
		}
	})
	n.waitPipeline()
	return n
}

// pipelineOptions renders more options of pipeline p.
func pipelineOptions(opts []string) string {
	var b strings.Builder
	for _, o := range opts {
		b.WriteString("        " + o + "\n")
	}
	return b.String()
}

func (n *node) client() *rpc.Client {
	conn, err := net.Dial("tcp", n.rpc)
	if err != nil {
		n.t.Fatal(err)
	}
	return rpc.NewClientWithCodec(goridgeRpc.NewClientCodec(conn))
}

// waitPipeline waits until rr answers RPC with pipeline p's driver built (jobs.List shows a
// pipeline before its driver exists; jobs.Stat asks the driver).
func (n *node) waitPipeline() {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-n.done:
			n.t.Fatalf("rr exited at start: %v\n%s", err, n.log)
		default:
		}
		if conn, err := net.Dial("tcp", n.rpc); err == nil {
			c := rpc.NewClientWithCodec(goridgeRpc.NewClientCodec(conn))
			var st jobsProto.Stats
			err = c.Call("jobs.Stat", &jobsProto.Empty{}, &st)
			_ = c.Close()
			if err == nil && slices.ContainsFunc(st.GetStats(), func(s *jobsProto.Stat) bool { return s.GetPipeline() == "p" }) {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	n.t.Fatalf("rr did not come up\n%s", n.log)
}

// signal sends sig and returns how long rr took to exit.
func (n *node) signal(sig syscall.Signal, limit time.Duration) time.Duration {
	n.t.Helper()
	start := time.Now()
	if err := n.cmd.Process.Signal(sig); err != nil {
		n.t.Fatal(err)
	}
	select {
	case <-n.done:
		return time.Since(start)
	case <-time.After(limit):
		n.t.Fatalf("rr did not exit within %s of %s\n%s", limit, sig, n.log)
		return 0
	}
}

// workerPIDs are the PHP worker processes of this node (found by their script path).
func (n *node) workerPIDs() []int {
	out, _ := exec.Command("pgrep", "-f", n.worker).Output()
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

type record struct {
	ID   string `json:"id"`
	PID  int    `json:"pid"`
	TsMs int64  `json:"ts_ms"`
}

func readRecords(t *testing.T, file string) []record {
	b, err := os.ReadFile(file)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []record
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var r record
		if json.Unmarshal(sc.Bytes(), &r) == nil {
			out = append(out, r)
		}
	}
	return out
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last: %s", timeout, what, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func sqliteSection(dir string) string {
	return fmt.Sprintf("sql:\n  connections:\n    default:\n      dsn: %q\n", filepath.Join(dir, "jobs.db"))
}

func TestServeWorkersAndSignals(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			dir := t.TempDir()
			n := startNode(t, nodeOptions{sqlSection: sqliteSection(dir), out: filepath.Join(dir, "out.jsonl")})
			out, err := exec.Command(rrBinary, "workers", "-c", n.config).CombinedOutput()
			if err != nil {
				t.Fatalf("rr workers: %v\n%s", err, out)
			}
			table := string(out)
			for _, want := range []string{"Workers of [jobs]", "PID", "STATUS", "PIPELINE", "DRIVER", "QUEUE", "ACTIVE", "DELAYED", "RESERVED"} {
				if !strings.Contains(table, want) {
					t.Fatalf("rr workers output lacks %q:\n%s", want, table)
				}
			}
			row := false
			for _, line := range strings.Split(table, "\n") {
				f := tableRow(line)
				if len(f) == 7 && f[0] == "READY" && f[1] == "p" && f[2] == "sql" && f[3] == "p" {
					row = true
				}
			}
			if !row {
				t.Fatalf("no READY row for pipeline p:\n%s", table)
			}
			if pids := n.workerPIDs(); len(pids) != 2 {
				t.Fatalf("PHP workers running: %v, want 2", pids)
			}
			// grace_period is 2s: rr must be gone within it plus a little.
			took := n.signal(sig, 6*time.Second)
			t.Logf("rr exited %s after %s", took.Round(time.Millisecond), sig)
			waitFor(t, 3*time.Second, "PHP workers gone", func() (bool, string) {
				p := n.workerPIDs()
				return len(p) == 0, fmt.Sprint(p)
			})
		})
	}
}

// tableRow is the cells of one row of the stock rr's tables (drawn with box characters).
func tableRow(line string) []string {
	return strings.Fields(strings.NewReplacer("│", " ", "|", " ").Replace(line))
}

func TestVersion(t *testing.T) {
	out, err := exec.Command(rrBinary, "--version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "2025.1.15") || !strings.Contains(string(out), "sql") {
		t.Fatalf("rr --version = %q, %v", out, err)
	}
}

// serverDSN is the test database server of env; outside CI a missing one skips.
func serverDSN(t *testing.T, env string) string {
	dsn := os.Getenv(env)
	if dsn == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set: CI must start the database servers (scripts/db-servers.sh)", env)
		}
		t.Skipf("%s is not set; start the servers with: eval \"$(scripts/db-servers.sh start)\"", env)
	}
	return dsn
}

// freshDatabase makes an empty database and returns the `sql:` section that points at it.
func freshDatabase(t *testing.T, dialect string) string {
	driverName, env := "pgx", "SQLJOBS_POSTGRES_DSN"
	if dialect == "mysql" {
		driverName, env = "mysql", "SQLJOBS_MYSQL_DSN"
	}
	dsn := serverDSN(t, env)
	name := fmt.Sprintf("nodes_%d_%d", time.Now().UnixNano()%1e9, rand.IntN(1e6))
	db, err := sql.Open(driverName, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err = db.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	if dialect == "mysql" {
		dsn = strings.Replace(dsn, "/rr", "/"+name, 1)
	} else {
		dsn = strings.Replace(dsn, "/postgres?", "/"+name+"?", 1)
	}
	// Fast failure detection for the fault tests: a node is declared dead 2s after its last heartbeat.
	return fmt.Sprintf("sql:\n  connections:\n    default:\n      dialect: %s\n      dsn: %q\n      heartbeat_interval: 500ms\n      node_ttl: 2s\n", dialect, dsn)
}

func TestMetricsExported(t *testing.T) {
	dir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	n := startNode(t, nodeOptions{extra: "metrics:\n  address: " + addr, sqlSection: sqliteSection(dir), out: filepath.Join(dir, "out.jsonl"),
		pipeline: []string{"group_by: tenant"}})
	c := n.client()
	for i, action := range []string{"ack", "nack"} {
		err := c.Call("jobs.Push", &jobsProto.PushRequest{Job: &jobsProto.Job{Job: "Job", Id: fmt.Sprint("m", i),
			Payload: []byte(`{"action":"` + action + `"}`), Options: &jobsProto.Options{Pipeline: "p"}}}, &jobsProto.Empty{})
		if err != nil {
			t.Fatal(err)
		}
	}
	_ = c.Close()
	want := []string{
		`rr_sql_jobs{pipeline="p",state="failed"} 1`,
		`rr_sql_jobs{pipeline="p",state="ready"} 0`,
		`rr_sql_jobs_failed_total{pipeline="p"} 1`,
		`rr_sql_claim_seconds_count{pipeline="p"}`,
		`rr_sql_ack_batch_seconds_count{pipeline="p"}`,
		`rr_sql_oldest_ready_seconds{pipeline="p"} 0`,
		`rr_sql_groups_waiting{pipeline="p"} 0`,
	}
	var body string
	waitFor(t, 10*time.Second, "the sql series on /metrics", func() (bool, string) {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return false, err.Error()
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		body = string(b)
		for _, w := range want {
			if !strings.Contains(body, w) {
				return false, "missing " + w
			}
		}
		return true, ""
	})
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "rr_sql_jobs") || strings.HasPrefix(line, "rr_sql_claim_seconds_count") || strings.HasPrefix(line, "rr_sql_groups") || strings.HasPrefix(line, "rr_sql_oldest") {
			t.Log(line)
		}
	}
}
