package tests

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

const onePipeline = `    default:
      driver: sql
      config:
        prefetch: 10
        poll_interval: 200ms
`

func TestPushConsumeAck(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dir := t.TempDir()
		out := filepath.Join(dir, "out.jsonl")
		rr := start(t, options{pipelines: onePipeline, consume: []string{"default"}, sqlSection: b.section(t, dir), out: out})
		for i := range 20 {
			rr.push(job{id: fmt.Sprint("job-", i), pipeline: "default", payload: map[string]any{"action": "ack", "n": i},
				headers: map[string][]string{"tenant": {"acme"}}})
		}
		recs := waitRecords(t, out, 20, 20*time.Second)
		byID := countByID(recs)
		for i := range 20 {
			if byID[fmt.Sprint("job-", i)] != 1 {
				t.Fatalf("job-%d processed %d times", i, byID[fmt.Sprint("job-", i)])
			}
		}
		r := recs[0]
		if r.Driver != "sql" || r.Pipeline != "default" || r.Queue != "default" || r.Job != "App\\Jobs\\Test" || r.Headers["tenant"][0] != "acme" || r.Headers["x-sql-delivery"][0] != "1" {
			t.Fatalf("context seen by PHP = %+v", r)
		}
		waitFor(t, 10*time.Second, "acks to empty the queue", func() (bool, string) {
			s := rr.stat("default")
			return s.GetActive() == 0 && s.GetReserved() == 0 && s.GetDelayed() == 0, fmt.Sprint(s)
		})
	})
}
