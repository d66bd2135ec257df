package main

import (
	"fmt"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	jobsProto "github.com/roadrunner-server/api/v4/build/jobs/v1"
)

// TestKilledNodeLeaksNoGroupSlot: with group_concurrency 2, a node holding both of a group's
// slots is SIGKILLed; the other node gets the slots back (the reaper returns the dead node's jobs)
// and runs every job of the group, never more than 2 at once.
func TestKilledNodeLeaksNoGroupSlot(t *testing.T) {
	for _, dialect := range sharedDialects {
		t.Run(dialect, func(t *testing.T) {
			dir := t.TempDir()
			out, end := filepath.Join(dir, "out.jsonl"), filepath.Join(dir, "end.jsonl")
			section := freshDatabase(t, dialect)
			opts := nodeOptions{sqlSection: section, out: out, endOut: end, workers: 2, pipeline: []string{"group_by: tenant", "group_concurrency: 2"}}
			victim, survivor := startNode(t, opts), startNode(t, opts)
			call := func(n *node, method string, in, reply any) {
				c := n.client()
				defer c.Close()
				if err := c.Call(method, in, reply); err != nil {
					t.Fatalf("%s: %v", method, err)
				}
			}
			for _, n := range []*node{victim, survivor} {
				call(n, "jobs.Pause", &jobsProto.Pipelines{Pipelines: []string{"p"}}, &jobsProto.Empty{})
			}
			const total = 12
			req := &jobsProto.PushBatchRequest{}
			for i := range total {
				req.Jobs = append(req.Jobs, &jobsProto.Job{Job: "Job", Id: fmt.Sprint("bob-", i), Payload: []byte(`{"action":"ack","sleep_ms":300}`),
					Headers: map[string]*jobsProto.HeaderValue{"tenant": {Value: []string{"bob"}}}, Options: &jobsProto.Options{Pipeline: "p"}})
			}
			call(victim, "jobs.PushBatch", req, &jobsProto.Empty{})
			victimWorkers := victim.workerPIDs()
			call(victim, "jobs.Resume", &jobsProto.Pipelines{Pipelines: []string{"p"}}, &jobsProto.Empty{})
			waitFor(t, 30*time.Second, "the victim's workers to run bob's 2 slots", func() (bool, string) {
				n := len(readRecords(t, out))
				return n >= 2, fmt.Sprint(n, " runs")
			})
			if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-victim.done
			call(survivor, "jobs.Resume", &jobsProto.Pipelines{Pipelines: []string{"p"}}, &jobsProto.Empty{})
			waitFor(t, time.Minute, "every job of bob run", func() (bool, string) {
				c := len(distinct(readRecords(t, out)))
				return c == total, fmt.Sprintf("%d of %d", c, total)
			})
			var onSurvivor []run
			for _, r := range runs(t, out, end) {
				if !slices.Contains(victimWorkers, r.pid) {
					onSurvivor = append(onSurvivor, r)
				}
			}
			most := mostAtOnce(onSurvivor)
			t.Logf("%s: group_concurrency 2, the node holding both slots killed: the other ran %d jobs, at most %d at once", dialect, len(onSurvivor), most)
			if most > 2 {
				t.Fatalf("%d of bob's jobs ran at once on the surviving node; group_concurrency is 2", most)
			}
		})
	}
}

// mostAtOnce is the most runs in progress at once (a run without an end lasts until the end).
func mostAtOnce(rs []run) int {
	type event struct {
		at    int64
		delta int
	}
	var evs []event
	for _, r := range rs {
		evs = append(evs, event{r.start, +1})
		if r.end != 0 {
			evs = append(evs, event{r.end, -1})
		}
	}
	slices.SortFunc(evs, func(a, b event) int {
		if a.at != b.at {
			return int(a.at - b.at)
		}
		return a.delta - b.delta
	})
	now, most := 0, 0
	for _, e := range evs {
		now += e.delta
		most = max(most, now)
	}
	return most
}
