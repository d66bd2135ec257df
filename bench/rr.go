// An rr process under test: starting and stopping it, pushing to it over RPC, and reading its
// metrics and its /proc figures.

package main

import (
	"bytes"
	"crypto/sha1"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/rpc"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"
	jobsProto "github.com/roadrunner-server/api/v4/build/jobs/v1"
	goridgeRpc "github.com/roadrunner-server/goridge/v3/pkg/rpc"
)

// buildRR builds the rr of this working tree (cmd/rr) as the release builds do, without cgo.
func buildRR(root string) string {
	bin := filepath.Join(os.TempDir(), "rr-bench")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = filepath.Join(root, "cmd/rr")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if o, err := build.CombinedOutput(); err != nil {
		fail("build rr: %v\n%s", err, o)
	}
	return bin
}

// prebuiltRR checks the binary given with -rr and makes its path absolute: rr runs in each run's
// own directory.
func prebuiltRR(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	info, err := os.Stat(abs)
	if err != nil {
		return "", err
	}
	if !info.Mode().IsRegular() || info.Mode().Perm()&0o111 == 0 {
		return "", fmt.Errorf("%s is not an executable file", abs)
	}
	return abs, nil
}

// rrProcess is one running rr serve with its RPC client.
type rrProcess struct {
	cmd         *exec.Cmd
	c           *rpc.Client
	rpcAddr     string
	out         string // the PHP workers' record of every job they received
	counts      string // with st.countOnly, instead: the directory of each worker's count of jobs
	metricsAddr string
	profile     string // where rr writes its CPU profile, if asked
}

var profileSeq int

// startRR serves pipeline p of tg in dir with the no-op PHP workers; consume starts p at once,
// otherwise it waits for jobs.Resume.
func startRR(bin, root, dir string, tg target, st settings, workers int, consume bool) (*rrProcess, error) {
	return startRRWith(bin, root, dir, tg, st, workers, consume, nil)
}

// startRRWith is startRR with more pipelines beside p, each with tg's driver and config and its
// own queue (the pipeline's name), never consumed until resumed.
func startRRWith(bin, root, dir string, tg target, st settings, workers int, consume bool, more []string) (*rrProcess, error) {
	p := &rrProcess{out: filepath.Join(dir, "out.jsonl"), metricsAddr: fmt.Sprintf("127.0.0.1:%d", freePort())}
	workerEnv := fmt.Sprintf("RR_TEST_OUT: %q", p.out)
	if st.countOnly {
		p.out, p.counts = "", filepath.Join(dir, "counts")
		if err := os.MkdirAll(p.counts, 0o755); err != nil {
			return nil, err
		}
		workerEnv = fmt.Sprintf("RR_TEST_COUNT_DIR: %q", p.counts)
	}
	rpcAddr := fmt.Sprintf("127.0.0.1:%d", freePort())
	p.rpcAddr = rpcAddr
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
    %s
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
`, rpcAddr, filepath.Join(root, "tests/php/worker.php"), workerEnv, p.metricsAddr, strings.ReplaceAll(tg.extra, "%DIR%", dir),
		consumeYAML, workers, strings.ReplaceAll(tg.pipeline, "%DIR%", dir))
	for _, name := range more {
		cfg += fmt.Sprintf("    %s:\n      %s\n", name, strings.ReplaceAll(tg.pipeline, "%DIR%", dir))
	}
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
	c, err := dialReady(rpcAddr, 1+len(more))
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

// job is one job for pipeline p, pushed under the id jobID gives its name.
func job(name, payload string) *jobsProto.Job {
	return &jobsProto.Job{Job: "Job", Id: jobID(name), Payload: []byte(payload), Options: &jobsProto.Options{Pipeline: "p"}}
}

// jobID is the id a job named name is pushed or seeded with: a UUID v4 in shape and spread, as the
// PHP client names every job (Ramsey's uuid4(), random), so that consecutive jobs land far apart in
// the job-id index as an application's do; names that count up would sort almost in push order and
// hide what random ids cost each ack (docs/bench/drain-cpu.md). Derived from the name, so a
// benchmark finds its jobs again.
func jobID(name string) string {
	return uuid.NewHash(sha1.New(), uuid.Nil, []byte(name), 4).String()
}

// push sends one job named name with jobs.Push.
func push(c *rpc.Client, name, payload string) error {
	return c.Call("jobs.Push", &jobsProto.PushRequest{Job: job(name, payload)}, &jobsProto.Empty{})
}

// dialReady connects once the pipelines' drivers exist (jobs.Stat lists all of them).
func dialReady(addr string, pipelines int) (*rpc.Client, error) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if conn, err := net.Dial("tcp", addr); err == nil {
			c := rpc.NewClientWithCodec(goridgeRpc.NewClientCodec(conn))
			var st jobsProto.Stats
			if c.Call("jobs.Stat", &jobsProto.Empty{}, &st) == nil && len(st.GetStats()) == pipelines {
				return c, nil
			}
			_ = c.Close()
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil, fmt.Errorf("rr did not come up")
}

// freePort is a loopback port free at the time of the call, for rr's RPC and metrics listeners.
func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail("%v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
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

// rssMB is the process's resident memory (VmRSS of /proc/PID/status).
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
