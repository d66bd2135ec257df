package main

// These tests hold the binary to the stock rr's command line: its commands and flags are accepted,
// and jobs, reset, serve -p/stop, --dotenv and -o do what RoadRunner's documentation says, against
// a real rr serving PHP workers on SQLite.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/rpc"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/roadrunner-server/api/v4/plugins/v4/jobs"
	goridgeRpc "github.com/roadrunner-server/goridge/v3/pkg/rpc"
	"github.com/roadrunner-server/informer/v5"
)

// cliNode is an `rr serve` started with the arguments a test chose, on a config whose rpc port
// comes from the environment (${CLI_RPC_PORT}) and with pipelines p and q on SQLite.
type cliNode struct {
	t    *testing.T
	dir  string // the config's directory
	cfg  string
	port int
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan error
}

// cliConfig is .rr.yaml for a cliNode. ${CLI_RPC_PORT} must be set for the config to be valid.
const cliConfig = `version: "3"
rpc:
  listen: tcp://127.0.0.1:${CLI_RPC_PORT}
server:
  command: "php worker.php"
logs:
  mode: production
  level: warn
endure:
  grace_period: 2s
sql:
  connections:
    default:
      dsn: "jobs.db"
jobs:
  pool:
    num_workers: 2
    allocate_timeout: 20s
    destroy_timeout: 2s
  pipelines:
    p:
      driver: sql
      config:
        poll_interval: 100ms
    q:
      driver: sql
      config:
        poll_interval: 100ms
  consume: ["p", "q"]
`

// newCLIDir writes the config and the PHP worker into a fresh directory; the config names them
// by relative paths, which rr resolves from the config's directory as the stock rr does.
func newCLIDir(t *testing.T) string {
	t.Helper()
	requirePHP(t)
	dir := t.TempDir()
	src, err := os.ReadFile(filepath.Join("..", "..", "tests", "php", "worker.php"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "worker.php"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".rr.yaml"), []byte(cliConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// startCLINode runs `rr serve ARGS -c DIR/.rr.yaml` from another directory, with env added, and
// waits until pipelines p and q are served on port.
func startCLINode(t *testing.T, dir string, port int, env []string, args ...string) *cliNode {
	t.Helper()
	n := &cliNode{t: t, dir: dir, cfg: filepath.Join(dir, ".rr.yaml"), port: port, out: &bytes.Buffer{}, done: make(chan error, 1)}
	n.cmd = exec.Command(rrBinary, append(append([]string{"serve"}, args...), "-c", n.cfg)...)
	n.cmd.Dir = t.TempDir()
	n.cmd.Env = append(os.Environ(), env...)
	n.cmd.Stdout, n.cmd.Stderr = n.out, n.out
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
	waitFor(t, 30*time.Second, "rr serving pipelines p and q", func() (bool, string) {
		select {
		case err := <-n.done:
			n.done <- err
			t.Fatalf("rr exited at start: %v\n%s", err, n.out)
		default:
		}
		states, err := n.pipelines()
		if err != nil {
			return false, err.Error()
		}
		return states["p"] != nil && states["q"] != nil, fmt.Sprint(states)
	})
	return n
}

func (n *cliNode) client() (*rpc.Client, error) {
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", n.port))
	if err != nil {
		return nil, err
	}
	return rpc.NewClientWithCodec(goridgeRpc.NewClientCodec(conn)), nil
}

// pipelines is the jobs plugin's state of each pipeline, asked over RPC.
func (n *cliNode) pipelines() (map[string]*jobs.State, error) {
	c, err := n.client()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var states []*jobs.State
	if err := c.Call("informer.Jobs", "jobs", &states); err != nil {
		return nil, err
	}
	out := map[string]*jobs.State{}
	for _, s := range states {
		out[s.Pipeline] = s
	}
	return out, nil
}

// workerPIDs are the jobs plugin's PHP workers, asked over RPC.
func (n *cliNode) workerPIDs() ([]int64, error) {
	c, err := n.client()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	list := &informer.WorkerList{}
	if err := c.Call("informer.Workers", "jobs", &list); err != nil {
		return nil, err
	}
	var pids []int64
	for _, w := range list.Workers {
		pids = append(pids, w.Pid)
	}
	slices.Sort(pids)
	return pids, nil
}

// rr runs a CLI command against this node (from yet another directory) and returns its stdout
// and stderr.
func (n *cliNode) rr(env []string, args ...string) (stdout, stderr string, err error) {
	n.t.Helper()
	cmd := exec.Command(rrBinary, append(args, "-c", n.cfg)...)
	cmd.Dir = n.t.TempDir()
	cmd.Env = append(os.Environ(), env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// mustRR is rr that must succeed.
func (n *cliNode) mustRR(env []string, args ...string) (stdout, stderr string) {
	n.t.Helper()
	o, e, err := n.rr(env, args...)
	if err != nil {
		n.t.Fatalf("rr %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, o, e)
	}
	return o, e
}

// tableCells are the rows of a stock rr table (box drawing), header included, as cells.
func tableCells(out string) [][]string {
	var rows [][]string
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "│") {
			rows = append(rows, tableRow(line))
		}
	}
	return rows
}

// pipelineColumn is the single column of `rr jobs` output: its header, then the names.
func pipelineColumn(t *testing.T, out string) []string {
	t.Helper()
	rows := tableCells(out)
	if len(rows) == 0 || strings.Join(rows[0], "") != "PIPELINE(S)" {
		t.Fatalf("not the stock `rr jobs` table (header PIPELINE(S)):\n%s", out)
	}
	var names []string
	for _, r := range rows[1:] {
		names = append(names, strings.Join(r, " "))
	}
	slices.Sort(names)
	return names
}

// jobsRow is the row of pipeline in the "Jobs of [jobs]" table of `rr workers`.
func jobsRow(out, pipeline string) []string {
	for _, r := range tableCells(out) {
		if len(r) == 7 && r[1] == pipeline {
			return r
		}
	}
	return nil
}

// TestCLIAcceptsStockCommandsAndFlags parses every command and flag of the stock rr (with --help,
// so nothing runs): none may be unknown. The controls show that an unknown one is reported.
func TestCLIAcceptsStockCommandsAndFlags(t *testing.T) {
	global := []string{"-c", "x.yaml", "-w", t.TempDir(), "--WorkDir", t.TempDir(), "--dotenv", "x.env", "-d", "-s", "-e", "-p", "-f",
		"-o", "a.b=c", "--config=x.yaml", "--debug", "--silent", "--enable-experimental", "--pid", "--force", "--override", "d=e"}
	for _, c := range [][]string{
		{"serve"},
		{"stop"},
		{"reset"},
		{"reset", "jobs", "http"},
		{"workers"},
		{"workers", "-i"},
		{"workers", "--interactive", "jobs"},
		{"jobs", "--list"},
		{"jobs", "--pause", "a,b"},
		{"jobs", "--resume", "a,b"},
		{"jobs", "--destroy", "a,b"},
		{"schema", "sqlite"},
	} {
		args := append(append(append([]string{}, c...), global...), "--help")
		out, err := exec.Command(rrBinary, args...).CombinedOutput()
		if err != nil || strings.Contains(string(out), "unknown") || !strings.Contains(string(out), "Usage:") {
			t.Errorf("rr %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	for _, v := range []string{"-v", "--version"} {
		if out, err := exec.Command(rrBinary, v).CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "rr version 2025.1.15") {
			t.Errorf("rr %s = %q, %v", v, out, err)
		}
	}
	for _, bad := range [][]string{{"bogus"}, {"serve", "--bogus"}, {"jobs", "--bogus"}} {
		out, err := exec.Command(rrBinary, bad...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "unknown") {
			t.Errorf("rr %s was accepted: %v\n%s", strings.Join(bad, " "), err, out)
		}
	}
}

// TestCLIJobs: `rr jobs` lists, pauses, resumes and destroys pipelines and prints the stock
// tables; `rr workers` shows each pipeline's state.
func TestCLIJobs(t *testing.T) {
	dir := newCLIDir(t)
	port := freePort(t)
	env := []string{"CLI_RPC_PORT=" + strconv.Itoa(port)}
	n := startCLINode(t, dir, port, env)
	ready := func(pipeline string, want bool) func() (bool, string) {
		return func() (bool, string) {
			st, err := n.pipelines()
			if err != nil {
				return false, err.Error()
			}
			s := st[pipeline]
			return s != nil && s.Ready == want, fmt.Sprintf("%+v", s)
		}
	}

	for _, list := range [][]string{{"jobs", "--list"}, {"jobs", "list"}} {
		out, _ := n.mustRR(env, list...)
		if got := pipelineColumn(t, out); !slices.Equal(got, []string{"p", "q"}) {
			t.Fatalf("rr %s: pipelines %v, want [p q]:\n%s", strings.Join(list, " "), got, out)
		}
	}
	out, _ := n.mustRR(env, "workers")
	if !strings.Contains(out, "Jobs of [jobs]:") || !slices.Equal(jobsRow(out, "p"), []string{"READY", "p", "sql", "p", "0", "0", "0"}) {
		t.Fatalf("rr workers: no READY row for p under Jobs of [jobs]:\n%s", out)
	}

	out, _ = n.mustRR(env, "jobs", "--pause", "p")
	if got := pipelineColumn(t, out); !slices.Equal(got, []string{"p"}) {
		t.Fatalf("rr jobs --pause p printed %v:\n%s", got, out)
	}
	waitFor(t, 10*time.Second, "p paused", ready("p", false))
	out, _ = n.mustRR(env, "workers", "jobs")
	if r := jobsRow(out, "p"); len(r) == 0 || r[0] != "PAUSED/STOPPED" {
		t.Fatalf("rr workers after pause: p is %v:\n%s", r, out)
	}
	if r := jobsRow(out, "q"); len(r) == 0 || r[0] != "READY" {
		t.Fatalf("rr workers after pausing p: q is %v:\n%s", r, out)
	}

	n.mustRR(env, "jobs", "resume", "p")
	waitFor(t, 10*time.Second, "p resumed", ready("p", true))

	// -s: the pause happens, nothing is printed
	out, _ = n.mustRR(env, "jobs", "--pause", "p,q", "-s")
	if out != "" {
		t.Fatalf("rr jobs --pause -s printed:\n%s", out)
	}
	waitFor(t, 10*time.Second, "q paused", ready("q", false))
	n.mustRR(env, "jobs", "--resume", "p,q")
	waitFor(t, 10*time.Second, "q resumed", ready("q", true))

	out, _ = n.mustRR(env, "jobs", "--destroy", "q")
	if got := pipelineColumn(t, out); !slices.Equal(got, []string{"q"}) {
		t.Fatalf("rr jobs --destroy q printed %v:\n%s", got, out)
	}
	waitFor(t, 10*time.Second, "q gone", func() (bool, string) {
		st, err := n.pipelines()
		return err == nil && st["q"] == nil && st["p"] != nil, fmt.Sprint(st, err)
	})
	out, _ = n.mustRR(env, "jobs", "--list")
	if got := pipelineColumn(t, out); !slices.Equal(got, []string{"p"}) {
		t.Fatalf("rr jobs --list after destroying q: %v:\n%s", got, out)
	}

	if _, e, err := n.rr(env, "jobs", "--pause"); err == nil || !strings.Contains(e, "rr jobs --pause pipe1,pipe2") {
		t.Fatalf("rr jobs --pause without pipelines: %v %s", err, e)
	}
	if _, e, err := n.rr(env, "jobs"); err == nil || !strings.Contains(e, "rr jobs --<destroy/resume/pause> pipe1,pipe2") {
		t.Fatalf("rr jobs without a verb: %v %s", err, e)
	}
}

// TestCLIReset: `rr reset` restarts the workers and logs as the stock rr does.
func TestCLIReset(t *testing.T) {
	dir := newCLIDir(t)
	port := freePort(t)
	env := []string{"CLI_RPC_PORT=" + strconv.Itoa(port)}
	n := startCLINode(t, dir, port, env)
	before, err := n.workerPIDs()
	if err != nil || len(before) != 2 {
		t.Fatalf("workers before reset: %v %v", before, err)
	}
	for _, args := range [][]string{{"reset"}, {"reset", "jobs"}} {
		out, e := n.mustRR(env, args...)
		if out != "" || !strings.Contains(e, "resetting plugin: [jobs]") || !strings.Contains(e, "plugin reset: [jobs]") {
			t.Fatalf("rr %s: stdout %q, stderr:\n%s", strings.Join(args, " "), out, e)
		}
		var after []int64
		waitFor(t, 10*time.Second, "two new workers after rr "+strings.Join(args, " "), func() (bool, string) {
			pids, err := n.workerPIDs()
			after = pids
			fresh := !slices.ContainsFunc(pids, func(p int64) bool { return slices.Contains(before, p) })
			return err == nil && len(pids) == 2 && fresh, fmt.Sprint(before, " -> ", pids, err)
		})
		before = after
	}
	if out, e := n.mustRR(env, "reset", "-s"); out != "" || e != "" {
		t.Fatalf("rr reset -s printed %q %q", out, e)
	}
	if _, e, err := n.rr(env, "reset", "nosuchplugin"); err == nil || !strings.Contains(e, "nosuchplugin") {
		t.Fatalf("rr reset nosuchplugin: %v\n%s", err, e)
	}
}

// TestCLIServePidFileAndStop: `serve -p` writes .pid next to the config (rr works in the config's
// directory) and `rr stop` stops that process.
func TestCLIServePidFileAndStop(t *testing.T) {
	dir := newCLIDir(t)
	port := freePort(t)
	env := []string{"CLI_RPC_PORT=" + strconv.Itoa(port)}

	probe := exec.Command(rrBinary, "stop", "-c", filepath.Join(dir, ".rr.yaml"))
	if out, err := probe.CombinedOutput(); err == nil || !strings.Contains(string(out), "./rr serve -p") {
		t.Fatalf("rr stop without a .pid file: %v\n%s", err, out)
	}

	n := startCLINode(t, dir, port, env, "-p")
	pidFile := filepath.Join(dir, ".pid")
	b, err := os.ReadFile(pidFile)
	if err != nil || string(b) != strconv.Itoa(n.cmd.Process.Pid) {
		t.Fatalf(".pid = %q (%v), want %d", b, err, n.cmd.Process.Pid)
	}
	_, e := n.mustRR(env, "stop")
	if !strings.Contains(e, fmt.Sprintf("stopping process with PID: %d", n.cmd.Process.Pid)) {
		t.Fatalf("rr stop said:\n%s", e)
	}
	select {
	case err := <-n.done:
		if err != nil {
			t.Fatalf("rr serve exited with %v after rr stop\n%s", err, n.out)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("rr serve still running 10s after rr stop (grace period 2s)\n%s", n.out)
	}
	for _, want := range []string{"[INFO] RoadRunner server started", "stop signal received, grace timeout is: 2 seconds"} {
		if !strings.Contains(n.out.String(), want) {
			t.Fatalf("rr serve did not say %q:\n%s", want, n.out)
		}
	}
	if _, err := os.Stat(pidFile); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf(".pid left behind after a clean exit: %v", err)
	}

	// -s: no startup message
	port = freePort(t)
	env = []string{"CLI_RPC_PORT=" + strconv.Itoa(port)}
	n = startCLINode(t, dir, port, env, "-s", "-p")
	if _, e := n.mustRR(env, "stop", "-f", "-s"); e != "" {
		t.Fatalf("rr stop -s said:\n%s", e)
	}
	select {
	case <-n.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("rr serve still running 10s after rr stop -f\n%s", n.out)
	}
	if n.out.Len() != 0 {
		t.Fatalf("rr serve -s printed: %q", n.out)
	}
}

// TestCLIStopForceWhenTheFirstSignalSufficed: `rr stop -f` signals a second time a second after
// the first; a process that the first signal already ended has stopped, which is what was asked,
// not an error. The process is one that ends at once on SIGTERM and is reaped at once.
func TestCLIStopForceWhenTheFirstSignalSufficed(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ".rr.yaml"), []byte(cliConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	target := exec.Command("sleep", "60")
	if err := target.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- target.Wait() }()
	t.Cleanup(func() { _ = target.Process.Kill() })
	if err := os.WriteFile(filepath.Join(dir, ".pid"), []byte(strconv.Itoa(target.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	n := &cliNode{t: t, dir: dir, cfg: filepath.Join(dir, ".rr.yaml")}
	_, e := n.mustRR(nil, "stop", "-f")
	if !strings.Contains(e, fmt.Sprintf("stopping process with PID: %d", target.Process.Pid)) {
		t.Fatalf("rr stop -f said:\n%s", e)
	}
	select {
	case err := <-exited:
		if err == nil {
			t.Fatal("the process exited cleanly; want it ended by SIGTERM")
		}
	default:
		t.Fatal("the process still runs after rr stop -f returned")
	}
}

// TestCLIDotenvAndOverride: the config's ${CLI_RPC_PORT} comes from a --dotenv file (or the file
// DOTENV_PATH names), for serve and for the commands that dial its RPC; -o overrides a value for
// both too.
func TestCLIDotenvAndOverride(t *testing.T) {
	dir := newCLIDir(t)
	port := freePort(t)
	// relative to the config's directory, where rr works
	if err := os.WriteFile(filepath.Join(dir, "cli.env"), []byte(fmt.Sprintf("CLI_RPC_PORT=%d\n", port)), 0o644); err != nil {
		t.Fatal(err)
	}
	n := startCLINode(t, dir, port, nil, "--dotenv", "cli.env", "-o", "jobs.pool.num_workers=3")
	waitFor(t, 10*time.Second, "3 workers (-o jobs.pool.num_workers=3)", func() (bool, string) {
		pids, err := n.workerPIDs()
		return err == nil && len(pids) == 3, fmt.Sprint(pids, err)
	})

	for _, c := range []struct {
		env  []string
		args []string
	}{
		{nil, []string{"jobs", "--list", "--dotenv", "cli.env"}},
		{[]string{"DOTENV_PATH=cli.env"}, []string{"jobs", "--list"}},
		{nil, []string{"jobs", "--list", "-o", fmt.Sprintf("rpc.listen=tcp://127.0.0.1:%d", port)}},
	} {
		out, _ := n.mustRR(c.env, c.args...)
		if got := pipelineColumn(t, out); !slices.Equal(got, []string{"p", "q"}) {
			t.Fatalf("rr %s: %v\n%s", strings.Join(c.args, " "), got, out)
		}
	}
	// controls: without the .env file the config's rpc address is empty; -o wins over the file
	if _, e, err := n.rr(nil, "jobs", "--list"); err == nil {
		t.Fatalf("rr jobs --list without the .env file reached rr:\n%s", e)
	}
	wrong := freePort(t)
	if _, e, err := n.rr(nil, "jobs", "--list", "--dotenv", "cli.env", "-o", fmt.Sprintf("rpc.listen=tcp://127.0.0.1:%d", wrong)); err == nil || !strings.Contains(e, strconv.Itoa(wrong)) {
		t.Fatalf("rr jobs --list -o rpc.listen=...:%d: %v\n%s", wrong, err, e)
	}
}

// TestCLIDebugAndExperimental: -d serves pprof on :6061 as the stock rr does; -e turns on the
// config plugin's experimental `envfile` (here the rpc port comes from it).
func TestCLIDebugAndExperimental(t *testing.T) {
	if l, err := net.Listen("tcp", ":6061"); err != nil {
		t.Skipf("port 6061, where -d serves pprof, is taken: %v", err)
	} else {
		_ = l.Close()
	}
	dir := newCLIDir(t)
	port := freePort(t)
	if err := os.WriteFile(filepath.Join(dir, "exp.env"), []byte(fmt.Sprintf("CLI_RPC_PORT=%d\n", port)), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(filepath.Join(dir, ".rr.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".rr.yaml"), append([]byte("envfile: exp.env\n"), cfg...), 0o644); err != nil {
		t.Fatal(err)
	}
	n := startCLINode(t, dir, port, nil, "-d", "-e")
	resp, err := http.Get("http://127.0.0.1:6061/debug/pprof/cmdline")
	if err != nil {
		t.Fatalf("pprof of rr serve -d: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if !strings.Contains(string(body), n.cfg) {
		t.Fatalf("pprof on :6061 is not this rr's: %q", body)
	}
}

// lockedBuffer is a bytes.Buffer a running process writes while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestCLIWorkersInteractive: `rr workers -i` redraws the tables every second until Ctrl+C.
func TestCLIWorkersInteractive(t *testing.T) {
	dir := newCLIDir(t)
	port := freePort(t)
	env := []string{"CLI_RPC_PORT=" + strconv.Itoa(port)}
	n := startCLINode(t, dir, port, env)
	cmd := exec.Command(rrBinary, "workers", "-i", "-c", n.cfg)
	cmd.Env = append(os.Environ(), env...)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-done
		}
	})
	waitFor(t, 10*time.Second, "two redraws of the tables", func() (bool, string) {
		s := out.String()
		return strings.Count(s, "Jobs of [jobs]:") >= 2 && strings.Count(s, "Workers of [jobs]:") >= 2, s
	})
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("rr workers -i after Ctrl+C: %v\n%s", err, out)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("rr workers -i still running 5s after SIGINT")
	}
}
