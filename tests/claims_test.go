package tests

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// TestAnswersAfterTheQueueEmptiedClaimNothing: once a claim has come back short, the queue had
// nothing more; the answers to the jobs still at the workers must not each run a claim of their
// own. (They did: every answer that left half the prefetch free woke the consumer, so the last
// prefetch/2 jobs of every drain, and every job of a queue that keeps up with its pushes, cost an
// empty claim, a statement and on SQLite a write lock.) Claims still come for a push, a full
// claim's freed prefetch, and the idle poll.
func TestAnswersAfterTheQueueEmptiedClaimNothing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dir := t.TempDir()
		out := filepath.Join(dir, "out.jsonl")
		// poll_interval 1h: the idle poll backs off from 50 ms by doubling, a handful of polls in
		// the seconds the test runs.
		rr := start(t, options{pipelines: pipelineYAML("p", "poll_interval: 1h", "prefetch: 100"), workers: 2, sqlSection: b.section(t, dir), out: out})
		const total = 300
		var js []job
		for i := range total {
			js = append(js, job{id: fmt.Sprint("j-", i), pipeline: "p", payload: map[string]any{"action": "ack", "sleep_ms": 5}})
		}
		rr.pushBatch(js)
		rr.resume("p")
		waitRecords(t, out, total, time.Minute)
		waitFor(t, 20*time.Second, "the queue empty", func() (bool, string) {
			st := rr.stat("p")
			return st.GetActive()+st.GetReserved() == 0, fmt.Sprintf("%d ready, %d reserved", st.GetActive(), st.GetReserved())
		})
		claims := histogramCount(t, rr, "rr_sql_claim_seconds", "p")
		// 100 at first, then about 50 at a time as half the prefetch frees: 6 claims that find
		// jobs, one that comes back short, and the idle polls (50 ms doubling). One claim per
		// answer after the queue emptied would be 50 to 100 more.
		t.Logf("%d jobs with prefetch 100: %.0f claims", total, claims)
		if claims > 25 {
			t.Fatalf("%.0f claims for %d jobs claimed 50 to 100 at a time: the answers after the queue emptied claimed again", claims, total)
		}
	})
}

// histogramCount reads one pipeline's observation count of a histogram from the plugin's collectors.
func histogramCount(t *testing.T, r *roadrunner, name, pipeline string) float64 {
	t.Helper()
	m := metricSample(t, r, name, pipeline)
	if m == nil {
		t.Fatalf("no %s sample for pipeline %s", name, pipeline)
	}
	return float64(m.GetHistogram().GetSampleCount())
}
