package tests

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// tenantJobs are n jobs of one tenant (header "tenant").
func tenantJobs(pipeline, tenant string, n int, payload string) []job {
	out := make([]job, n)
	for i := range out {
		out[i] = job{id: fmt.Sprintf("%s-%d", tenant, i), pipeline: pipeline, payload: payload, headers: map[string][]string{"tenant": {tenant}}}
	}
	return out
}

func tenantOf(id string) string { return id[:strings.LastIndexByte(id, '-')] }

// TestSmallTenantIsNotStuckBehindALargeOne: 1,000 jobs of tenant bob, then 10 of alice, in the
// database before consuming starts. With group_by all of alice's jobs finish while most of bob's
// still wait; without, alice waits for all of bob's (the contrast shows the case is real).
func TestSmallTenantIsNotStuckBehindALargeOne(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		for _, c := range []struct {
			name string
			opts []string
		}{
			{"group_by", []string{"group_by: tenant", "prefetch: 100"}},
			{"no group_by", []string{"prefetch: 100"}},
		} {
			t.Run(c.name, func(t *testing.T) {
				dir := t.TempDir()
				out := filepath.Join(dir, "out.jsonl")
				r := start(t, options{pipelines: pipelineYAML("tenants", c.opts...), workers: 2, sqlSection: b.section(t, dir), out: out,
					worker: workerScript(t, "spiral_worker.php")})
				r.pushBatch(tenantJobs("tenants", "bob", 1000, `{}`))
				r.pushBatch(tenantJobs("tenants", "alice", 10, `{}`))
				r.resume("tenants")
				var bobBefore int
				waitFor(t, time.Minute, "alice's 10 jobs", func() (bool, string) {
					recs := records(t, out)
					alice := 0
					bobBefore = 0
					for _, rec := range recs {
						if tenantOf(rec.ID) == "alice" {
							alice++
							if alice == 10 {
								return true, ""
							}
						} else {
							bobBefore++
						}
					}
					return false, fmt.Sprintf("%d of alice's after %d of bob's", alice, bobBefore)
				})
				t.Logf("%s, %s: bob's jobs run before alice's last one: %d of 1000", b.name, c.name, bobBefore)
				if fair := slices.Contains(c.opts, "group_by: tenant"); fair && bobBefore > 100 {
					t.Fatalf("with group_by, %d of bob's jobs ran before alice's 10: alice waited behind bob", bobBefore)
				} else if !fair && bobBefore < 900 {
					t.Fatalf("without group_by only %d of bob's jobs ran before alice's: the case does not show the wait it should", bobBefore)
				}
			})
		}
	})
}

// TestGroupConcurrencyAtThePHPWorkers: with group_concurrency 2 and four workers, the workers' own
// start and end records never show more than 2 of bob's jobs at once, and they do show 2.
func TestGroupConcurrencyAtThePHPWorkers(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dir := t.TempDir()
		out, end := filepath.Join(dir, "out.jsonl"), filepath.Join(dir, "end.jsonl")
		r := start(t, options{pipelines: pipelineYAML("tenants", "group_by: tenant", "group_concurrency: 2"), workers: 4,
			sqlSection: b.section(t, dir), out: out, worker: workerScript(t, "spiral_worker.php"), env: map[string]string{"RR_TEST_END_OUT": end}})
		r.pushBatch(tenantJobs("tenants", "bob", 60, `{"sleep_ms":20}`))
		r.pushBatch(tenantJobs("tenants", "alice", 20, `{"sleep_ms":20}`))
		r.resume("tenants")
		waitRecords(t, out, 80, time.Minute)
		waitFor(t, 30*time.Second, "every job's end", func() (bool, string) {
			n := len(endRecords(t, end))
			return n == 80, fmt.Sprint(n, " ends")
		})
		most := map[string]int{}
		for tenant, n := range mostAtOnce(records(t, out), endRecords(t, end)) {
			most[tenant] = n
		}
		t.Logf("%s: group_concurrency 2, 4 workers: most jobs of one tenant at the workers at once: %v", b.name, most)
		if most["bob"] != 2 || most["alice"] != 2 {
			t.Fatalf("most jobs at once per tenant %v: want exactly 2 each (never more, and the limit used)", most)
		}
	})
}

type endRecord struct {
	ID    string `json:"id"`
	PID   int    `json:"pid"`
	EndMs int64  `json:"end_ms"`
}

func endRecords(t *testing.T, file string) []endRecord { return jsonLines[endRecord](t, file) }

// mostAtOnce is, per tenant, the most jobs running at once: a sweep over the starts and ends the
// workers recorded (an end at the same millisecond as a start comes first).
func mostAtOnce(starts []record, ends []endRecord) map[string]int {
	type event struct {
		at     int64
		delta  int
		tenant string
	}
	var evs []event
	for _, s := range starts {
		evs = append(evs, event{s.TsMs, +1, tenantOf(s.ID)})
	}
	for _, e := range ends {
		evs = append(evs, event{e.EndMs, -1, tenantOf(e.ID)})
	}
	slices.SortFunc(evs, func(a, b event) int {
		if a.at != b.at {
			return int(a.at - b.at)
		}
		return a.delta - b.delta
	})
	now, most := map[string]int{}, map[string]int{}
	for _, e := range evs {
		now[e.tenant] += e.delta
		most[e.tenant] = max(most[e.tenant], now[e.tenant])
	}
	return most
}

// TestOverflowMovesABusyTenant: a tenant with more than ready_over ready jobs moves to the
// overflow pipeline, its new pushes follow, the other tenants stay; the PHP workers see bob's jobs
// on the overflow pipeline only.
func TestOverflowMovesABusyTenant(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dir := t.TempDir()
		out := filepath.Join(dir, "out.jsonl")
		pipelines := pipelineYAML("tenants", "group_by: tenant", "overflow_interval: 200ms", "overflow:", "  ready_over: 50", "  to: slow") +
			pipelineYAML("slow", "priority: 20")
		r := start(t, options{pipelines: pipelines, workers: 2, sqlSection: b.section(t, dir), out: out, worker: workerScript(t, "spiral_worker.php")})
		r.pushBatch(tenantJobs("tenants", "bob", 300, `{}`))
		r.pushBatch(tenantJobs("tenants", "alice", 5, `{}`))
		waitFor(t, 30*time.Second, "bob's jobs in the overflow pipeline", func() (bool, string) {
			// RoadRunner's "reserved" column is the jobs waiting (see Driver.State).
			st, slow := r.stat("tenants"), r.stat("slow")
			return st.GetReserved() == 5 && slow.GetReserved() == 300, fmt.Sprintf("tenants %d ready, slow %d", st.GetReserved(), slow.GetReserved())
		})
		// The mover may run while the batch is being pushed: what it moved is counted, the rest of
		// bob's pushes went straight to the overflow pipeline.
		if moved := counterValue(t, r, "rr_sql_overflow_moved_total", "tenants"); moved <= 50 || moved > 300 {
			t.Fatalf("rr_sql_overflow_moved_total{pipeline=tenants} = %v, want the jobs moved (more than ready_over, at most 300)", moved)
		}
		// New pushes of bob go straight to the overflow pipeline; alice's stay.
		more := tenantJobs("tenants", "bob", 310, `{}`)[300:]
		r.pushBatch(more)
		r.pushBatch(tenantJobs("tenants", "alice", 6, `{}`)[5:])
		if st, slow := r.stat("tenants"), r.stat("slow"); st.GetReserved() != 6 || slow.GetReserved() != 310 {
			t.Fatalf("after new pushes: tenants %d ready (want alice's 6), slow %d (want bob's 310)", st.GetReserved(), slow.GetReserved())
		}
		r.resume("tenants")
		r.resume("slow")
		recs := waitRecords(t, out, 316, time.Minute)
		for _, rec := range recs {
			if want := map[string]string{"bob": "slow", "alice": "tenants"}[tenantOf(rec.ID)]; rec.Pipeline != want {
				t.Fatalf("job %s ran on pipeline %s, want %s", rec.ID, rec.Pipeline, want)
			}
		}
	})
}

// counterValue reads one pipeline's sample of a counter from the plugin's collectors.
func counterValue(t *testing.T, r *roadrunner, name, pipeline string) float64 {
	t.Helper()
	if m := metricSample(t, r, name, pipeline); m != nil {
		return m.GetCounter().GetValue()
	}
	return 0
}

// metricSample is one pipeline's sample of a metric from the plugin's collectors (nil if none).
func metricSample(t *testing.T, r *roadrunner, name, pipeline string) *dto.Metric {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(r.plugin.MetricsCollector()...)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "pipeline" && l.GetValue() == pipeline {
					return m
				}
			}
		}
	}
	return nil
}
