package tests

// The harness: a real RoadRunner (config, logger, server, rpc, jobs, informer, resetter plugins
// and the sql plugin in an Endure container), real PHP workers (php/worker.php), and the jobs RPC
// over goridge, as a PHP application would call it.

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/rpc"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"
	jobsProto "github.com/roadrunner-server/api/v4/build/jobs/v1"
	configPlugin "github.com/roadrunner-server/config/v5"
	"github.com/roadrunner-server/endure/v2"
	goridgeRpc "github.com/roadrunner-server/goridge/v3/pkg/rpc"
	"github.com/roadrunner-server/informer/v5"
	"github.com/roadrunner-server/jobs/v5"
	"github.com/roadrunner-server/logger/v5"
	"github.com/roadrunner-server/memory/v5"
	"github.com/roadrunner-server/resetter/v5"
	rpcPlugin "github.com/roadrunner-server/rpc/v5"
	"github.com/roadrunner-server/server/v5"
	sqljobs "github.com/rr-sql/sqljobs"
)

// backend is a database the suites run on.
type backend struct {
	name string
	// section is the `sql:` section for a fresh database of this backend.
	section func(t *testing.T, dir string) string
}

// lastDSN remembers the DSN of the database section() made last (for tests that reach the database
// from PHP too).
var lastDSN string

// backends are SQLite (always) and the servers CI starts. Outside CI a missing server skips its
// cases, with the reason; in CI it fails them.
func backends() []backend {
	return []backend{
		{"sqlite", func(_ *testing.T, dir string) string {
			lastDSN = filepath.Join(dir, "jobs.db")
			return fmt.Sprintf("sql:\n  connections:\n    default:\n      dsn: %q\n      synchronous: normal\n", filepath.Join(dir, "jobs.db"))
		}},
		{"postgres", func(t *testing.T, _ string) string {
			return fmt.Sprintf("sql:\n  connections:\n    default:\n      dialect: postgres\n      dsn: %q\n", freshDatabase(t, "pgx", "SQLJOBS_POSTGRES_DSN"))
		}},
		{"mysql", func(t *testing.T, _ string) string {
			return fmt.Sprintf("sql:\n  connections:\n    default:\n      dialect: mysql\n      dsn: %q\n", freshDatabase(t, "mysql", "SQLJOBS_MYSQL_DSN"))
		}},
	}
}

// forEachBackend runs a case on every database.
func forEachBackend(t *testing.T, run func(t *testing.T, b backend)) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) { run(t, b) })
	}
}

// freshDatabase creates an empty database on the server named by env and returns its DSN.
func freshDatabase(t *testing.T, driverName, env string) string {
	t.Helper()
	dsn := os.Getenv(env)
	if dsn == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set: CI must start the database servers (scripts/db-servers.sh)", env)
		}
		t.Skipf("%s is not set; start the servers with: eval \"$(scripts/db-servers.sh start)\"", env)
	}
	name := fmt.Sprintf("it_%d_%d", time.Now().UnixNano()%1e9, rand.IntN(1e6))
	db, err := sql.Open(driverName, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err = db.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		db, err := sql.Open(driverName, dsn)
		if err == nil {
			_, _ = db.Exec("DROP DATABASE " + name + map[string]string{"pgx": " WITH (FORCE)", "mysql": ""}[driverName])
			_ = db.Close()
		}
	})
	if driverName == "pgx" {
		lastDSN = strings.Replace(dsn, "/postgres?", "/"+name+"?", 1)
	} else {
		lastDSN = strings.Replace(dsn, "/rr", "/"+name, 1)
	}
	return lastDSN
}

// options of one RoadRunner instance.
type options struct {
	// pipelines is the YAML under jobs.pipelines, indented by 4 spaces.
	pipelines string
	consume   []string
	workers   int
	// sqlSection is the `sql:` section (from backend.section).
	sqlSection string
	// out is the file the PHP workers record jobs to.
	out string
	// worker is the PHP worker script (default php/worker.php, the hand-written protocol worker).
	worker string
	// env is added to the PHP workers' environment.
	env map[string]string
}

// roadrunner is a running Endure container.
type roadrunner struct {
	t       *testing.T
	cont    *endure.Endure
	plugin  *sqljobs.Plugin
	rpcAddr string
	errCh   <-chan *endure.Result
	once    sync.Once
	client  *rpc.Client
}

func workerPath(t *testing.T) string { return phpPath(t, "worker.php") }

// phpPath is the absolute path of a script under php/.
func phpPath(t *testing.T, name string) string {
	p, err := filepath.Abs(filepath.Join("php", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// phpClient is the folder of the real spiral/roadrunner-jobs client and its dependencies
// (RR_PHP_CLIENT, set by .ci/run). Outside CI, without it, the test skips.
func phpClient(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("RR_PHP_CLIENT")
	if dir == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("RR_PHP_CLIENT is not set: CI must point it at the spiral/roadrunner-jobs sources (../shared/php-client)")
		}
		t.Skip("RR_PHP_CLIENT is not set: this test runs the real spiral/roadrunner-jobs client (see ../shared/php-client/README.md)")
	}
	if _, err := os.Stat(filepath.Join(dir, "autoload.php")); err != nil {
		t.Fatalf("RR_PHP_CLIENT=%s has no autoload.php: %v", dir, err)
	}
	return dir
}

func requirePHP(t *testing.T) {
	if _, err := exec.LookPath("php"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("php is not installed: CI must install php-cli")
		}
		t.Skip("php is not installed (apt-get install php-cli): the tests run real PHP workers")
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

func (o options) yaml(t *testing.T, rpcAddr string) string {
	workers := o.workers
	if workers == 0 {
		workers = 2
	}
	consume := "[]"
	if len(o.consume) > 0 {
		consume = `["` + strings.Join(o.consume, `", "`) + `"]`
	}
	worker := o.worker
	if worker == "" {
		worker = workerPath(t)
	}
	env := fmt.Sprintf("    RR_TEST_OUT: %q\n", o.out)
	if dir := os.Getenv("RR_PHP_CLIENT"); dir != "" {
		env += fmt.Sprintf("    RR_PHP_CLIENT: %q\n", dir)
	}
	keys := make([]string, 0, len(o.env))
	for k := range o.env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env += fmt.Sprintf("    %s: %q\n", k, o.env[k])
	}
	return fmt.Sprintf(`version: "3"
rpc:
  listen: tcp://%s
server:
  command: "php %s"
  env:
%slogs:
  mode: development
  level: error
%s
jobs:
  timeout: 20
  num_pollers: %d
  pool:
    num_workers: %d
    allocate_timeout: 20s
    destroy_timeout: 3s
  pipelines:
%s
  consume: %s
`, rpcAddr, worker, env, o.sqlSection, workers+2, workers, o.pipelines, consume)
}

// start serves a RoadRunner with the sql plugin; it is stopped at the end of the test.
func start(t *testing.T, o options) *roadrunner {
	t.Helper()
	requirePHP(t)
	rpcAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	text := o.yaml(t, rpcAddr)
	if err := checkAgainstSchema(text); err != nil {
		t.Fatalf("the test's config is not valid against schema.json:\n%v\n%s", err, text)
	}
	cfg := &configPlugin.Plugin{Version: "2025.1.15", Type: "yaml", ReadInCfg: []byte(text), Timeout: 10 * time.Second}
	cont := endure.New(slog.LevelError, endure.GracefulShutdownTimeout(3*time.Second))
	plugin := &sqljobs.Plugin{}
	if err := cont.RegisterAll(cfg, &logger.Plugin{}, &server.Plugin{}, &rpcPlugin.Plugin{}, &jobs.Plugin{},
		&informer.Plugin{}, &resetter.Plugin{}, &memory.Plugin{}, plugin); err != nil {
		t.Fatal(err)
	}
	if err := cont.Init(); err != nil {
		t.Fatalf("init: %v", err)
	}
	errCh, err := cont.Serve()
	if err != nil {
		t.Fatalf("serve: %v", err)
	}
	r := &roadrunner{t: t, cont: cont, plugin: plugin, rpcAddr: rpcAddr, errCh: errCh}
	t.Cleanup(r.stop)
	go func() {
		for e := range errCh {
			if e != nil && e.Error != nil {
				t.Errorf("roadrunner: %s: %v", e.VertexID, e.Error)
			}
		}
	}()
	r.client = r.dial()
	return r
}

// startErr starts RoadRunner expecting it to fail, and returns the error.
func startErr(t *testing.T, o options) error {
	t.Helper()
	requirePHP(t)
	rpcAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg := &configPlugin.Plugin{Version: "2025.1.15", Type: "yaml", ReadInCfg: []byte(o.yaml(t, rpcAddr)), Timeout: 10 * time.Second}
	cont := endure.New(slog.LevelError, endure.GracefulShutdownTimeout(5*time.Second))
	if err := cont.RegisterAll(cfg, &logger.Plugin{}, &server.Plugin{}, &rpcPlugin.Plugin{}, &jobs.Plugin{},
		&informer.Plugin{}, &resetter.Plugin{}, &memory.Plugin{}, &sqljobs.Plugin{}); err != nil {
		t.Fatal(err)
	}
	if err := cont.Init(); err != nil {
		return err
	}
	errCh, err := cont.Serve()
	if err != nil {
		return err
	}
	defer func() { _ = cont.Stop() }()
	select {
	case e := <-errCh:
		return e.Error
	case <-time.After(15 * time.Second):
		return nil
	}
}

func (r *roadrunner) dial() *rpc.Client {
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.Dial("tcp", r.rpcAddr)
		if err == nil {
			return rpc.NewClientWithCodec(goridgeRpc.NewClientCodec(conn))
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("rpc %s: %v", r.rpcAddr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop stops the container (once); the database and worker output stay for a restart.
func (r *roadrunner) stop() {
	r.once.Do(func() {
		if r.client != nil {
			_ = r.client.Close()
		}
		done := make(chan error, 1)
		go func() { done <- r.cont.Stop() }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			r.t.Error("roadrunner did not stop within 30s")
		}
	})
}

// job is one job to push.
type job struct {
	id, name, pipeline string
	payload            any
	priority, delay    int64
	headers            map[string][]string
	autoAck            bool
}

func (j job) proto() *jobsProto.Job {
	body, _ := json.Marshal(j.payload)
	if s, ok := j.payload.(string); ok {
		body = []byte(s)
	}
	name := j.name
	if name == "" {
		name = "App\\Jobs\\Test"
	}
	h := map[string]*jobsProto.HeaderValue{}
	for k, v := range j.headers {
		h[k] = &jobsProto.HeaderValue{Value: v}
	}
	return &jobsProto.Job{Job: name, Id: j.id, Payload: body, Headers: h,
		Options: &jobsProto.Options{Pipeline: j.pipeline, Priority: j.priority, Delay: j.delay, AutoAck: j.autoAck}}
}

func (r *roadrunner) call(method string, in, out any) error {
	return r.client.Call(method, in, out)
}

func (r *roadrunner) push(j job) {
	r.t.Helper()
	if err := r.call("jobs.Push", &jobsProto.PushRequest{Job: j.proto()}, &jobsProto.Empty{}); err != nil {
		r.t.Fatalf("push %s: %v", j.id, err)
	}
}

func (r *roadrunner) pushBatch(js []job) {
	r.t.Helper()
	req := &jobsProto.PushBatchRequest{}
	for _, j := range js {
		req.Jobs = append(req.Jobs, j.proto())
	}
	if err := r.call("jobs.PushBatch", req, &jobsProto.Empty{}); err != nil {
		r.t.Fatalf("push batch: %v", err)
	}
}

func (r *roadrunner) pause(p string) {
	r.t.Helper()
	if err := r.call("jobs.Pause", &jobsProto.Pipelines{Pipelines: []string{p}}, &jobsProto.Empty{}); err != nil {
		r.t.Fatalf("pause %s: %v", p, err)
	}
}

func (r *roadrunner) resume(p string) {
	r.t.Helper()
	if err := r.call("jobs.Resume", &jobsProto.Pipelines{Pipelines: []string{p}}, &jobsProto.Empty{}); err != nil {
		r.t.Fatalf("resume %s: %v", p, err)
	}
}

func (r *roadrunner) declare(opts map[string]string) error {
	return r.call("jobs.Declare", &jobsProto.DeclareRequest{Pipeline: opts}, &jobsProto.Empty{})
}

func (r *roadrunner) destroy(p string) error {
	return r.call("jobs.Destroy", &jobsProto.Pipelines{Pipelines: []string{p}}, &jobsProto.Pipelines{})
}

// destroyBlockedWhile calls jobs.Destroy for a pipeline while something holds it (a job at its
// worker, an answer not yet committed): Destroy must stay blocked for d, then return without an
// error once release has let go.
func (r *roadrunner) destroyBlockedWhile(pipeline, holding string, d time.Duration, release func()) {
	r.t.Helper()
	destroyed := make(chan error, 1)
	go func() { destroyed <- r.destroy(pipeline) }()
	stableFor(r.t, d, "Destroy waiting for "+holding, func() (bool, string) {
		select {
		case err := <-destroyed:
			return false, fmt.Sprintf("Destroy returned (%v) while %s", err, holding)
		default:
			return true, ""
		}
	})
	release()
	select {
	case err := <-destroyed:
		if err != nil {
			r.t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		r.t.Fatalf("Destroy did not return after %s ended", holding)
	}
}

func (r *roadrunner) list() []string {
	out := &jobsProto.Pipelines{}
	if err := r.call("jobs.List", &jobsProto.Empty{}, out); err != nil {
		r.t.Fatalf("list: %v", err)
	}
	sort.Strings(out.GetPipelines())
	return out.GetPipelines()
}

func (r *roadrunner) stat(p string) *jobsProto.Stat {
	r.t.Helper()
	out := &jobsProto.Stats{}
	if err := r.call("jobs.Stat", &jobsProto.Empty{}, out); err != nil {
		r.t.Fatalf("stat: %v", err)
	}
	for _, s := range out.GetStats() {
		if s.GetPipeline() == p {
			return s
		}
	}
	r.t.Fatalf("stat: no pipeline %s in %v", p, out.GetStats())
	return nil
}

// record is one job as a PHP worker saw it.
type record struct {
	ID       string              `json:"id"`
	Job      string              `json:"job"`
	Pipeline string              `json:"pipeline"`
	Queue    string              `json:"queue"`
	Driver   string              `json:"driver"`
	Headers  map[string][]string `json:"headers"`
	Payload  string              `json:"payload"`
	Action   string              `json:"action"`
	PID      int                 `json:"pid"`
	TsMs     int64               `json:"ts_ms"`
}

// records reads what the workers recorded so far.
func records(t *testing.T, file string) []record { return jsonLines[record](t, file) }

// jsonLines reads a file of JSON lines the workers append to (a line being written is skipped).
func jsonLines[T any](t *testing.T, file string) []T {
	t.Helper()
	b, err := os.ReadFile(file)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []T
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var r T
		if len(sc.Bytes()) == 0 || json.Unmarshal(sc.Bytes(), &r) != nil {
			continue
		}
		out = append(out, r)
	}
	return out
}

// waitFor polls cond until it holds or the timeout ends (then it fails with what it saw).
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last seen: %s", timeout, what, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitRecords waits until the workers recorded at least n jobs and returns them.
func waitRecords(t *testing.T, file string, n int, timeout time.Duration) []record {
	t.Helper()
	var recs []record
	waitFor(t, timeout, fmt.Sprintf("%d jobs processed", n), func() (bool, string) {
		recs = records(t, file)
		return len(recs) >= n, fmt.Sprintf("%d processed", len(recs))
	})
	return recs
}

func countByID(recs []record) map[string]int {
	out := map[string]int{}
	for _, r := range recs {
		out[r.ID]++
	}
	return out
}

// stableFor asserts that cond keeps holding for d (used only to check that nothing more happens).
func stableFor(t *testing.T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for ctx.Err() == nil {
		if ok, state := cond(); !ok {
			t.Fatalf("%s no longer holds: %s", what, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
