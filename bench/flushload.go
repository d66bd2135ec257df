// flush.md: what an operator's sql.Flush of a large queue costs the other pipelines of its
// database. Pushes to another pipeline go on at a steady rate before and during the flush; a
// flush that holds the table (or SQLite's one writer) for long shows in their latency.

package main

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	jobsProto "github.com/roadrunner-server/api/v4/build/jobs/v1"
)

// flushResult is one database's flush under load, for one rr binary.
type flushResult struct {
	target, bin    string
	before, during []time.Duration // push latencies, by the push's start: before the flush, during it
	took           time.Duration   // the sql.Flush call
	flushed        int64
	flushErr       string
}

// runFlush measures the flush of each sql backend with the rr measured and, when given, the
// -before-rr one (each on a fresh database).
func runFlush(bin, root string, backends []func() target, st settings) []flushResult {
	var out []flushResult
	bins := []string{bin}
	if st.beforeRR != "" {
		bins = append(bins, st.beforeRR)
	}
	for _, next := range backends {
		name := nameOf(next)
		if !st.only.MatchString(name) {
			continue
		}
		for _, b := range bins {
			fmt.Fprintf(os.Stderr, "== flush of %s jobs while pushing %d/s to another pipeline, %s: %s\n", count(st.flushJobs), st.flushRate, b, name)
			r, err := flushUnderLoad(b, root, next(), st)
			if err != nil {
				fail("%s: flush: %v", name, err)
			}
			r.bin = b
			fmt.Fprintf(os.Stderr, "   flush %s (%d jobs%s); pushes before p50 %s max %s, during p50 %s max %s\n", r.took, r.flushed, r.flushErr,
				percentile(r.before, 50), slicesMax(r.before), percentile(r.during, 50), slicesMax(r.during))
			out = append(out, r)
		}
	}
	return out
}

// flushUnderLoad seeds -flush-jobs waiting jobs into paused pipeline p, pushes single jobs to
// pipeline q of the same database at -flush-rate per second (each push started on its tick, in
// its own goroutine, so that a slow one does not delay the next), and after -flush-baseline calls
// sql.Flush on p while the pushes go on.
func flushUnderLoad(bin, root string, tg target, st settings) (flushResult, error) {
	r := flushResult{target: tg.name}
	defer dropDB(tg)
	dir, _ := os.MkdirTemp("", "bench")
	defer os.RemoveAll(dir)
	rr, err := startRRWith(bin, root, dir, tg, st, st.workers, false, []string{"q"})
	if err != nil {
		return r, err
	}
	defer rr.stop()
	if err := seed(tg, dir, st.flushJobs, 0); err != nil {
		return r, fmt.Errorf("queue the backlog: %w", err)
	}

	type sample struct {
		start time.Time
		took  time.Duration
	}
	var (
		mu      sync.Mutex
		samples []sample
		pushErr error
		wg      sync.WaitGroup
	)
	stop := make(chan struct{})
	pushing := make(chan struct{})
	go func() {
		defer close(pushing)
		tick := time.NewTicker(time.Second / time.Duration(st.flushRate))
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				start := time.Now()
				err := rr.c.Call("jobs.Push", pushRequest(fmt.Sprint("q-", i), "q"), &jobsProto.Empty{})
				took := time.Since(start)
				mu.Lock()
				defer mu.Unlock()
				if err != nil && pushErr == nil {
					pushErr = err
				}
				samples = append(samples, sample{start, took})
			}()
		}
	}()
	time.Sleep(st.flushBaseline) // the baseline window
	flushStart := time.Now()
	var resp sqlCountResponse
	err = rr.c.Call("sql.Flush", &sqlFlushRequest{Pipeline: "p"}, &resp)
	r.took, r.flushed = time.Since(flushStart), resp.Count
	if err != nil {
		r.flushErr = ": " + err.Error()
	}
	close(stop)
	<-pushing
	wg.Wait()
	if pushErr != nil {
		return r, fmt.Errorf("push: %w", pushErr)
	}
	for _, s := range samples {
		if s.start.Before(flushStart) {
			r.before = append(r.before, s.took)
		} else {
			r.during = append(r.during, s.took)
		}
	}
	return r, nil
}

// pushRequest is one no-op job for pipeline.
func pushRequest(id, pipeline string) *jobsProto.PushRequest {
	j := job(id, `{"action":"ack"}`)
	j.Options.Pipeline = pipeline
	return &jobsProto.PushRequest{Job: j}
}

func slicesMax(ds []time.Duration) time.Duration { return percentile(ds, 100) }

// flushReport is flush.md.
func flushReport(rs []flushResult, st settings) string {
	var b strings.Builder
	b.WriteString("# sql.Flush of a large queue while another pipeline takes pushes\n\n")
	b.WriteString(runHeader(st))
	fmt.Fprintf(&b, "Per database, on a fresh rr and database: %s waiting jobs written straight into paused pipeline p (then settled),\n", count(st.flushJobs))
	fmt.Fprintf(&b, "single `jobs.Push` calls to pipeline q of the same database at %d/s (each started on its tick, timed to its answer)\n", st.flushRate)
	fmt.Fprintf(&b, "for %s, then `sql.Flush` of p while the pushes go on. Push latency in ms by when the push started: before the\n", st.flushBaseline)
	b.WriteString("flush, and during it.")
	if st.beforeRR != "" {
		fmt.Fprintf(&b, " The rows marked before are the prebuilt rr %s (-before-rr).", st.beforeRR)
	}
	b.WriteString("\n\n| database | rr | flush s | jobs flushed | pushes before: n | p50 | p99 | max | during: n | p50 | p99 | max |\n" +
		"|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rs {
		which := "measured"
		if st.beforeRR != "" && r.bin == st.beforeRR {
			which = "before"
		}
		flushed := fmt.Sprint(r.flushed)
		if r.flushErr != "" {
			flushed += " (failed" + r.flushErr + ")"
		}
		fmt.Fprintf(&b, "| %s | %s | %.2f | %s | %d | %s | %s | %s | %d | %s | %s | %s |\n", strings.TrimPrefix(r.target, "sql/"), which, r.took.Seconds(), flushed,
			len(r.before), ms(percentile(r.before, 50)), ms(percentile(r.before, 99)), ms(slicesMax(r.before)),
			len(r.during), ms(percentile(r.during, 50)), ms(percentile(r.during, 99)), ms(slicesMax(r.during)))
	}
	return b.String()
}
