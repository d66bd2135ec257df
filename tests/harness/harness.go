// Package harness runs a real RoadRunner for integration tests: the real config, logger, server,
// rpc, jobs, informer and resetter plugins (plus the driver plugins a test passes, e.g.
// &sqljobs.Plugin{} or &memory.Plugin{}) in an Endure v2 container, real PHP workers
// (tests/php/worker.php, whose payload language is documented at its top and mirrored by [Task]),
// and the jobs RPC over goridge, as a PHP application would call it.
//
// A test:
//
//	rr := harness.Start(t, harness.Options{
//		Pipelines: "mem:\n  driver: memory\n  config:\n    prefetch: 100\n",
//		Consume:   []string{"mem"},
//		Plugins:   []any{&memory.Plugin{}},
//	})
//	harness.Must(t, rr.Jobs.Push(harness.Job{ID: "a", Pipeline: "mem", Payload: harness.Task{Action: "ack"}}))
//	recs := rr.WaitFor(t, 10*time.Second, "job a", func(rs []harness.Record) bool { return len(rs) == 1 })
//
// The API:
//
//	func Start(t testing.TB, o Options) *RR              // serve; stopped by t.Cleanup (or rr.Stop(t))
//	func StartErr(t testing.TB, o Options, within time.Duration) error // expect a start failure
//	func Config(o Options, rpcAddr string) string         // the .rr.yaml Start writes (o with defaults)
//	func (r *RR) Stop(t testing.TB)                       // idempotent, fails the test if it hangs
//	func (r *RR) Records(t testing.TB) []Record           // every job the workers received so far
//	func (r *RR) WaitFor(t testing.TB, timeout time.Duration, what string, cond func([]Record) bool) []Record
//	func (r *RR) Errors() []error                         // errors the container reported
//	r.Jobs  *Client                                        // jobs RPC: Push, PushBatch, Pause, Resume,
//	                                                       // List, Declare, Destroy, Stat, StatOf, Call
//	r.Options                                              // the options as started (Out, Dir filled in):
//	                                                       // restart with harness.Start(t, o) on the same Out
//	func Dial(addr string, timeout time.Duration) (*Client, error)
//	func ReadRecords(file string) ([]Record, error)
//	func CountByID(recs []Record) map[string]int
//	func Deliveries(recs []Record, id string) []Record
//	func Eventually(t testing.TB, timeout time.Duration, what string, cond func() (bool, string))
//	func Consistently(t testing.TB, d time.Duration, what string, cond func() (bool, string))
//	func RequirePHP(t testing.TB); func WorkerPath(t testing.TB) string; func FreePort(t testing.TB) int
//	func Must(t testing.TB, err error)
//
// Tests that need PHP call RequirePHP (Start does): without php they are skipped, unless CI=true,
// where they fail. Set RR_TEST_LOG_LEVEL=debug to see RoadRunner's logs and RR_WORKER_VERBOSE=1
// to have the PHP workers log every job to stderr.
package harness

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	configPlugin "github.com/roadrunner-server/config/v5"
	"github.com/roadrunner-server/endure/v2"
	"github.com/roadrunner-server/informer/v5"
	"github.com/roadrunner-server/jobs/v5"
	"github.com/roadrunner-server/logger/v5"
	"github.com/roadrunner-server/resetter/v5"
	rpcPlugin "github.com/roadrunner-server/rpc/v5"
	"github.com/roadrunner-server/server/v5"
)

// Version is the RoadRunner version the config plugin reports.
const Version = "2025.1.15"

// GracePeriod is endure.grace_period in the generated config and the container's shutdown timeout.
const GracePeriod = 3 * time.Second

// StopTimeout bounds Stop: a container that takes longer fails the test.
const StopTimeout = 30 * time.Second

// Options describe one RoadRunner. The YAML fragments may be indented as you like: the harness
// removes their common indentation and places them.
type Options struct {
	// Pipelines is the YAML mapping placed under jobs.pipelines, e.g.
	// "default:\n  driver: sql\n  config:\n    prefetch: 10\n".
	Pipelines string
	// Consume lists the pipelines consumed from the start (jobs.consume).
	Consume []string
	// Workers is jobs.pool.num_workers (default 2).
	Workers int
	// Extra is YAML appended at the top level, e.g. the `sql:` section.
	Extra string
	// Overrides are "key=value" config overrides, as `rr serve -o` takes them
	// (e.g. "jobs.timeout=5"). They replace whole leaf values only.
	Overrides []string
	// Plugins are the plugins registered next to the RoadRunner ones (the driver plugins). Pass
	// fresh instances to every Start.
	Plugins []any
	// Out is the file the PHP workers append their records to (RR_TEST_OUT). Default: out.jsonl in
	// Dir. Keep it when restarting to see the records of both runs.
	Out string
	// Dir is where .rr.yaml is written (default: a new t.TempDir()).
	Dir string
	// LogLevel is logs.level (default "error", or $RR_TEST_LOG_LEVEL).
	LogLevel string
	// Env is extra environment for the PHP workers (server.env).
	Env map[string]string
	// Worker is the PHP script the workers run (default: the absolute path of tests/php/worker.php).
	Worker string
}

// withDefaults fills in Workers, Dir, Out and LogLevel.
func (o Options) withDefaults(t testing.TB) Options {
	if o.Workers <= 0 {
		o.Workers = 2
	}
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	if o.Out == "" {
		o.Out = filepath.Join(o.Dir, "out.jsonl")
	}
	if o.LogLevel == "" {
		o.LogLevel = os.Getenv("RR_TEST_LOG_LEVEL")
	}
	if o.LogLevel == "" {
		o.LogLevel = "error"
	}
	if o.Env == nil {
		o.Env = map[string]string{}
	}
	if o.Worker == "" {
		o.Worker = WorkerPath(t)
	}
	return o
}

// Config renders the .rr.yaml for o (call it with defaults filled in, as Start does) and an RPC
// address host:port.
func Config(o Options, rpcAddr string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "version: \"3\"\n")
	fmt.Fprintf(&b, "rpc:\n  listen: tcp://%s\n", rpcAddr)
	fmt.Fprintf(&b, "server:\n  command: %s\n  relay: pipes\n  env:\n", quote("php "+o.Worker))
	env := map[string]string{"RR_TEST_OUT": o.Out}
	for k, v := range o.Env {
		env[k] = v
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "    %s: %s\n", k, quote(env[k]))
	}
	fmt.Fprintf(&b, "logs:\n  mode: development\n  level: %s\n", o.LogLevel)
	fmt.Fprintf(&b, "endure:\n  grace_period: %s\n  log_level: error\n", GracePeriod)
	fmt.Fprintf(&b, "jobs:\n  timeout: 20\n  pool:\n    num_workers: %d\n    allocate_timeout: 20s\n    destroy_timeout: 3s\n", o.Workers)
	if p := strings.TrimSpace(o.Pipelines); p != "" {
		fmt.Fprintf(&b, "  pipelines:\n%s", indent(dedent(o.Pipelines), "    "))
	}
	consume := make([]string, len(o.Consume))
	for i, c := range o.Consume {
		consume[i] = quote(c)
	}
	fmt.Fprintf(&b, "  consume: [%s]\n", strings.Join(consume, ", "))
	if strings.TrimSpace(o.Extra) != "" {
		b.WriteString(dedent(o.Extra))
	}
	return b.String()
}

// RR is a running RoadRunner.
type RR struct {
	// Options as started, with defaults filled in.
	Options Options
	// ConfigPath is the .rr.yaml the config plugin read.
	ConfigPath string
	// RPCAddr is host:port of the RPC listener.
	RPCAddr string
	// Jobs is an RPC client connected to RPCAddr.
	Jobs *Client

	cont    *endure.Endure
	results <-chan *endure.Result
	doneCh  chan struct{}

	mu      sync.Mutex
	stopped bool
	errs    []error
	t       testing.TB

	recMu  sync.Mutex
	recs   []Record
	recOff int64
}

// Start serves a RoadRunner with the RoadRunner plugins and o.Plugins. It fails the test if
// RoadRunner does not start; errors the container reports later fail the test too. It is stopped
// at the end of the test.
func Start(t testing.TB, o Options) *RR {
	t.Helper()
	r, err := start(t, o)
	if err != nil {
		t.Fatalf("roadrunner: %v\nconfig %s:\n%s", err, r.ConfigPath, Config(r.Options, r.RPCAddr))
	}
	t.Cleanup(func() { r.Stop(t) })
	go r.watch()
	r.Jobs, err = Dial(r.RPCAddr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// StartErr starts a RoadRunner that is expected to fail: it returns the error of Init or Serve, or
// the first error the container reports within the given time (nil if none), and stops it.
func StartErr(t testing.TB, o Options, within time.Duration) error {
	t.Helper()
	r, err := start(t, o)
	if err != nil {
		return err
	}
	defer r.Stop(t)
	select {
	case e, ok := <-r.resultCh():
		if ok && e != nil {
			return fmt.Errorf("%s: %w", e.VertexID, e.Error)
		}
		return nil
	case <-time.After(within):
		return nil
	}
}

// start registers, inits and serves. On an Init error r.cont is nil; on a Serve error it is stopped.
func start(t testing.TB, o Options) (*RR, error) {
	t.Helper()
	RequirePHP(t)
	o = o.withDefaults(t)
	r := &RR{
		Options:    o,
		ConfigPath: filepath.Join(o.Dir, ".rr.yaml"),
		RPCAddr:    fmt.Sprintf("127.0.0.1:%d", FreePort(t)),
		doneCh:     make(chan struct{}),
		t:          t,
		stopped:    true, // until served
	}
	if err := os.WriteFile(r.ConfigPath, []byte(Config(o, r.RPCAddr)), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := &configPlugin.Plugin{
		Path:    r.ConfigPath,
		Prefix:  "rr",
		Version: Version,
		Flags:   o.Overrides,
		Timeout: GracePeriod,
	}
	cont := endure.New(slog.LevelError, endure.GracefulShutdownTimeout(GracePeriod))
	plugins := append([]any{cfg, &logger.Plugin{}, &server.Plugin{}, &rpcPlugin.Plugin{}, &jobs.Plugin{},
		&informer.Plugin{}, &resetter.Plugin{}}, o.Plugins...)
	if err := cont.RegisterAll(plugins...); err != nil {
		return r, fmt.Errorf("register: %w", err)
	}
	if err := cont.Init(); err != nil {
		return r, fmt.Errorf("init: %w", err)
	}
	r.cont = cont
	ch, err := cont.Serve()
	r.mu.Lock()
	r.stopped = false
	r.results = ch
	r.mu.Unlock()
	if err != nil {
		r.Stop(t)
		return r, fmt.Errorf("serve: %w", err)
	}
	return r, nil
}

func (r *RR) resultCh() <-chan *endure.Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.results
}

// watch reports the container's errors until Stop.
func (r *RR) watch() {
	ch := r.resultCh()
	for {
		select {
		case <-r.doneCh:
			return
		case e, ok := <-ch:
			if !ok {
				return
			}
			if e == nil || e.Error == nil {
				continue
			}
			r.mu.Lock()
			r.errs = append(r.errs, fmt.Errorf("%s: %w", e.VertexID, e.Error))
			if !r.stopped {
				r.t.Errorf("roadrunner reported an error: %s: %v", e.VertexID, e.Error)
			}
			r.mu.Unlock()
		}
	}
}

// Errors returns the errors the container reported so far.
func (r *RR) Errors() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.errs...)
}

// Stop stops the container (once; later calls do nothing). It fails the test if stopping fails or
// takes longer than StopTimeout. The database and the records file stay, for a restart.
func (r *RR) Stop(t testing.TB) {
	t.Helper()
	r.mu.Lock()
	if r.stopped || r.cont == nil {
		r.stopped = true
		r.mu.Unlock()
		return
	}
	r.stopped = true
	close(r.doneCh)
	r.mu.Unlock()
	if r.Jobs != nil {
		_ = r.Jobs.Close()
	}
	done := make(chan error, 1)
	go func() { done <- r.cont.Stop() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("roadrunner stop: %v", err)
		}
	case <-time.After(StopTimeout):
		t.Errorf("roadrunner did not stop within %s", StopTimeout)
	}
}

// WorkerPath is the absolute path of tests/php/worker.php.
func WorkerPath(t testing.TB) string {
	t.Helper()
	var candidates []string
	if _, file, _, ok := runtime.Caller(0); ok {
		candidates = append(candidates, filepath.Join(filepath.Dir(file), "..", "php", "worker.php"))
	}
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			candidates = append(candidates, filepath.Join(d, "php", "worker.php"), filepath.Join(d, "tests", "php", "worker.php"))
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	for _, c := range candidates {
		if _, err := os.Stat(c); err == nil {
			abs, err := filepath.Abs(c)
			if err != nil {
				t.Fatal(err)
			}
			return abs
		}
	}
	t.Fatalf("tests/php/worker.php not found (looked at %v)", candidates)
	return ""
}

// RequirePHP skips the test when php is not installed, unless CI=true, where it fails it.
func RequirePHP(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("php"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("php is not installed: CI must install php-cli (apt-get install -y php-cli)")
		}
		t.Skip("php is not installed (apt-get install -y php-cli): these tests run real PHP workers")
	}
}

// FreePort returns a TCP port free on 127.0.0.1 right now.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Must fails the test on a non-nil error.
func Must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Eventually polls cond (every 20 ms) until it holds, or fails the test after timeout with what
// and the last state cond described.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() (ok bool, state string)) {
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

// Consistently checks that cond keeps holding for d (to assert that nothing more happens); it
// fails the test as soon as cond does not hold.
func Consistently(t testing.TB, d time.Duration, what string, cond func() (ok bool, state string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if ok, state := cond(); !ok {
			t.Fatalf("%s no longer holds: %s", what, state)
		}
		if time.Now().After(deadline) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// dedent removes the common leading whitespace of the non-blank lines and ends s with a newline.
func dedent(s string) string {
	lines := strings.Split(strings.TrimRight(strings.ReplaceAll(s, "\t", "  "), " \n"), "\n")
	common := -1
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		n := len(l) - len(strings.TrimLeft(l, " "))
		if common < 0 || n < common {
			common = n
		}
	}
	var b strings.Builder
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			if b.Len() > 0 {
				b.WriteString("\n")
			}
			continue
		}
		b.WriteString(l[common:])
		b.WriteString("\n")
	}
	return b.String()
}

func indent(s, prefix string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(s, "\n") {
		if strings.TrimSpace(l) != "" {
			b.WriteString(prefix)
		}
		b.WriteString(l)
	}
	return b.String()
}
