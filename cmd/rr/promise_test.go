package main

// The delivery promise, tried on the real binary: crashes, and the otel plugin in the build.

import (
	"fmt"
	"net/rpc"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	jobsProto "github.com/roadrunner-server/api/v4/build/jobs/v1"
)

// TestAutoAckJobsSurviveACrash: auto_ack jobs claimed into rr's queue when rr is SIGKILLed had
// reached no worker: after a restart they run. The only ones lost are those RoadRunner had already
// taken out of its queue for a worker (it asks for the job's Context() then, the last moment a
// driver hears of an auto_ack job): with one busy worker, its two extra pollers hold one each.
func TestAutoAckJobsSurviveACrash(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.jsonl")
	o := nodeOptions{sqlSection: sqliteSection(dir), out: out, workers: 1}
	n := startNode(t, o)
	const total = 30
	c := n.client()
	req := &jobsProto.PushBatchRequest{}
	for i := range total {
		req.Jobs = append(req.Jobs, &jobsProto.Job{Job: "Job", Id: fmt.Sprint("auto-", i), Payload: []byte(`{"action":"ack","sleep_ms":200}`),
			Options: &jobsProto.Options{Pipeline: "p", AutoAck: true}})
	}
	if err := c.Call("jobs.PushBatch", req, &jobsProto.Empty{}); err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	waitFor(t, 10*time.Second, "the first job at the worker", func() (bool, string) {
		n := len(readRecords(t, out))
		return n >= 1, fmt.Sprint(n)
	})
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.done
	before := len(distinct(readRecords(t, out)))
	n = startNode(t, o)
	const handedOver = 2 // jobs.num_pollers (num_workers+2) minus the one worker
	waitFor(t, time.Minute, "the auto_ack jobs no worker had run after the restart", func() (bool, string) {
		c := len(distinct(readRecords(t, out)))
		return c >= total-handedOver && queueEmpty(t, n), fmt.Sprintf("%d of %d run", c, total)
	})
	after := len(distinct(readRecords(t, out)))
	t.Logf("%d auto_ack jobs: %d run before the SIGKILL, %d after the restart; %d lost (handed to RoadRunner's pollers for the busy worker)",
		total, before, after, total-after)
}

// TestDestroyWithTheOtelPlugin: with RoadRunner's otel plugin in the build, sampling every span
// or none, a destroyed pipeline stays destroyed after a restart and a declared one comes back.
func TestDestroyWithTheOtelPlugin(t *testing.T) {
	for _, sampler := range []string{"always_on", "always_off"} {
		t.Run(sampler, func(t *testing.T) {
			dir := t.TempDir()
			o := nodeOptions{extra: "otel:\n  exporter: stderr\n", env: []string{"OTEL_TRACES_SAMPLER=" + sampler},
				sqlSection: sqliteSection(dir), out: filepath.Join(dir, "out.jsonl")}
			n := startNode(t, o)
			c := n.client()
			for _, name := range []string{"destroyed", "kept"} {
				if err := c.Call("jobs.Declare", &jobsProto.DeclareRequest{Pipeline: map[string]string{"driver": "sql", "name": name}}, &jobsProto.Empty{}); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.Call("jobs.Destroy", &jobsProto.Pipelines{Pipelines: []string{"destroyed"}}, &jobsProto.Pipelines{}); err != nil {
				t.Fatal(err)
			}
			_ = c.Close()
			n.signal(syscall.SIGTERM, 10*time.Second)

			n = startNode(t, o)
			var listed []string
			waitFor(t, 15*time.Second, "the kept pipeline restored", func() (bool, string) {
				listed = list(t, n.client())
				return slices.Contains(listed, "kept"), fmt.Sprint(listed)
			})
			if slices.Contains(listed, "destroyed") {
				t.Fatalf("a destroyed pipeline came back after a restart: %v", listed)
			}
		})
	}
}

// queueEmpty tells whether pipeline p has no job left in the database.
func queueEmpty(t *testing.T, n *node) bool {
	t.Helper()
	c := n.client()
	defer c.Close()
	var st jobsProto.Stats
	if err := c.Call("jobs.Stat", &jobsProto.Empty{}, &st); err != nil {
		t.Fatal(err)
	}
	for _, s := range st.GetStats() {
		if s.GetPipeline() == "p" {
			return s.GetActive()+s.GetReserved()+s.GetDelayed() == 0
		}
	}
	return false
}

func list(t *testing.T, c *rpc.Client) []string {
	t.Helper()
	defer c.Close()
	var out jobsProto.Pipelines
	if err := c.Call("jobs.List", &jobsProto.Empty{}, &out); err != nil {
		t.Fatal(err)
	}
	return out.GetPipelines()
}
