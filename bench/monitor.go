// monitoring.md: what a monitoring call costs against a large backlog. `rr workers -i` and
// `rr jobs list` call jobs.Stat each second, Prometheus scrapes rr's metrics (the per-pipeline
// gauges of driver/metrics.go), operators call sql.Stats and sql.Groups: each must stay cheap
// whatever the queue holds.

package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	jobsProto "github.com/roadrunner-server/api/v4/build/jobs/v1"
)

// The sql RPC's requests and answers as the bench sends and reads them. The codec is gob, which
// matches fields by name: an rr whose request lacks a field (an older sql.Groups without After and
// Limit) ignores it.
type (
	sqlStatsRequest struct{ Pipelines []string }
	sqlStats        struct {
		Pipeline                                        string
		Ready, Delayed, Reserved, Failed, OldestReadyMs int64
	}
	sqlStatsResponse struct{ Stats []sqlStats }
	sqlGroupsRequest struct {
		Pipeline, Header, After string
		Limit                   int
	}
	sqlGroupStats     struct{ Value string }
	sqlGroupsResponse struct {
		Groups    []sqlGroupStats
		NextAfter string
	}
	sqlFlushRequest  struct{ Pipeline, Header, Value string }
	sqlCountResponse struct{ Count int64 }
)

// monitorCalls are the rows of monitoring.md, in order, with the target each must meet at the
// largest backlog (ms, the median).
var monitorCalls = []struct {
	name     string
	targetMs float64
}{
	{"jobs.Stat", 10},
	{"metrics scrape", 10},
	{"sql.Stats", 10},
	{"sql.Groups", 100},
}

// callTiming is the median and p95 of one call's timed repetitions.
type callTiming struct{ median, p95 time.Duration }

// monitorResult is one database's timings: per binary (0: the rr measured, 1: -before-rr), per
// call, per backlog size.
type monitorResult struct {
	target string
	timing [2]map[string][]callTiming
}

// runMonitor times the monitoring calls of each sql backend at each backlog size, with the rr
// measured and, when given, the -before-rr one (the two interleaved, each on a fresh database).
func runMonitor(bin, root string, backends []func() target, st settings) []monitorResult {
	var out []monitorResult
	bins := []string{bin}
	if st.beforeRR != "" {
		bins = append(bins, st.beforeRR)
	}
	for _, next := range backends {
		name := nameOf(next)
		if !st.only.MatchString(name) {
			continue
		}
		r := monitorResult{target: name}
		for i := range bins {
			r.timing[i] = map[string][]callTiming{}
		}
		for _, n := range st.monitorSizes {
			for i, b := range bins {
				for _, groupBy := range []bool{false, true} {
					fmt.Fprintf(os.Stderr, "== monitoring: %s queued (group_by %v), %s: %s\n", count(n), groupBy, b, name)
					timings, err := monitorRun(b, root, next(), st, n, groupBy)
					if err != nil {
						fail("%s: monitoring at %d queued: %v", name, n, err)
					}
					for _, c := range monitorCalls {
						if t, ok := timings[c.name]; ok {
							fmt.Fprintf(os.Stderr, "   %s: median %s, p95 %s\n", c.name, t.median, t.p95)
							r.timing[i][c.name] = append(r.timing[i][c.name], t)
						}
					}
				}
			}
		}
		out = append(out, r)
	}
	return out
}

// monitorRun seeds n ready jobs into paused pipeline p and times the calls: jobs.Stat, the metrics
// scrape and sql.Stats on a plain pipeline; sql.Groups on a group_by one, its n jobs spread over
// n / -monitor-group-size groups.
func monitorRun(bin, root string, tg target, st settings, n int, groupBy bool) (map[string]callTiming, error) {
	groups := 0
	if groupBy {
		tg = grouped(tg)
		groups = max(1, n/st.monitorGroupSize)
	}
	defer dropDB(tg)
	dir, _ := os.MkdirTemp("", "bench")
	defer os.RemoveAll(dir)
	rr, err := startRR(bin, root, dir, tg, st, st.workers, false)
	if err != nil {
		return nil, err
	}
	defer rr.stop()
	if err := seed(tg, dir, n, groups); err != nil {
		return nil, fmt.Errorf("queue the backlog: %w", err)
	}
	out := map[string]callTiming{}
	if groupBy {
		var first int
		call := func() error {
			var resp sqlGroupsResponse
			err := rr.c.Call("sql.Groups", &sqlGroupsRequest{Pipeline: "p", Limit: 100}, &resp)
			first = len(resp.Groups)
			return err
		}
		t, err := timeCalls(st.monitorWarmup, st.monitorCalls, call)
		if err != nil {
			return nil, fmt.Errorf("sql.Groups: %w", err)
		}
		fmt.Fprintf(os.Stderr, "   sql.Groups answered %d groups (of %d)\n", first, groups)
		out["sql.Groups"] = t
		return out, nil
	}
	var stat jobsProto.Stats
	if err := rr.c.Call("jobs.Stat", &jobsProto.Empty{}, &stat); err != nil {
		return nil, err
	}
	if s := stat.GetStats()[0]; s.GetActive()+s.GetDelayed()+s.GetReserved() != int64(n) {
		return nil, fmt.Errorf("jobs.Stat counts %d jobs, not the %d queued", s.GetActive()+s.GetDelayed()+s.GetReserved(), n)
	}
	calls := map[string]func() error{
		"jobs.Stat": func() error { return rr.c.Call("jobs.Stat", &jobsProto.Empty{}, &jobsProto.Stats{}) },
		"metrics scrape": func() error {
			resp, err := http.Get("http://" + rr.metricsAddr + "/metrics")
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err == nil && !strings.Contains(string(body), "rr_sql_jobs{") {
				err = fmt.Errorf("no rr_sql_jobs gauge in the scrape")
			}
			return err
		},
		"sql.Stats": func() error {
			return rr.c.Call("sql.Stats", &sqlStatsRequest{Pipelines: []string{"p"}}, &sqlStatsResponse{})
		},
	}
	for _, c := range monitorCalls[:3] {
		t, err := timeCalls(st.monitorWarmup, st.monitorCalls, calls[c.name])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.name, err)
		}
		out[c.name] = t
	}
	return out, nil
}

// nameOf is the name of the targets next makes (the database it made for it dropped at once).
func nameOf(next func() target) string {
	tg := next()
	dropDB(tg)
	return tg.name
}

// timeCalls makes warmup untimed calls, then n timed ones, one after another.
func timeCalls(warmup, n int, call func() error) (callTiming, error) {
	for range warmup {
		if err := call(); err != nil {
			return callTiming{}, err
		}
	}
	times := make([]time.Duration, n)
	for i := range times {
		start := time.Now()
		if err := call(); err != nil {
			return callTiming{}, err
		}
		times[i] = time.Since(start)
	}
	return callTiming{median: durationMedian(times), p95: percentile(times, 95)}, nil
}

// percentile is the smallest of ds at or above pc % of them (nearest rank).
func percentile(ds []time.Duration, pc int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	sorted := slices.Sorted(slices.Values(ds))
	return sorted[max(0, (len(sorted)*pc+99)/100-1)]
}

func durationMedian(ds []time.Duration) time.Duration {
	fs := make([]float64, len(ds))
	for i, d := range ds {
		fs[i] = float64(d)
	}
	return time.Duration(median(fs))
}

// ms writes a duration in milliseconds, two decimals.
func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }

// monitorReport is monitoring.md.
func monitorReport(rs []monitorResult, st settings, bin string) string {
	var b strings.Builder
	b.WriteString("# Monitoring calls against the backlog\n\n")
	b.WriteString(runHeader(st))
	fmt.Fprintf(&b, "Each call timed %d times one after another, after %d untimed ones, on a fresh rr and database per backlog, the pipeline paused\n", st.monitorCalls, st.monitorWarmup)
	b.WriteString("with its jobs written straight into the table (then settled: analyzed, vacuumed, checkpointed). `jobs.Stat` is what\n" +
		"`rr workers -i` and `rr jobs list` call each second; the scrape is a GET of rr's metrics endpoint (the per-pipeline gauges);\n")
	fmt.Fprintf(&b, "`sql.Stats` names the pipeline; `sql.Groups` asks for a page of 100 groups of a group_by pipeline whose jobs are spread over\n"+
		"one group per %d jobs (%s jobs: %s groups). Cells: median / p95 in ms.\n", st.monitorGroupSize, count(st.monitorSizes[len(st.monitorSizes)-1]), count(max(1, st.monitorSizes[len(st.monitorSizes)-1]/st.monitorGroupSize)))
	if st.beforeRR != "" {
		fmt.Fprintf(&b, "The before columns are the prebuilt rr %s (-before-rr), measured the same way, interleaved with the rr measured (%s).\n", st.beforeRR, bin)
	}
	b.WriteString("\n| call | database |")
	sep := "|---|---|"
	for _, n := range st.monitorSizes {
		if st.beforeRR != "" {
			fmt.Fprintf(&b, " before, %s queued ms |", count(n))
			sep += "---|"
		}
		fmt.Fprintf(&b, " %s queued ms |", count(n))
		sep += "---|"
	}
	fmt.Fprintf(&b, " target (median, %s queued) | met |\n%s---|---|\n", count(st.monitorSizes[len(st.monitorSizes)-1]), sep)
	for _, c := range monitorCalls {
		for _, r := range rs {
			fmt.Fprintf(&b, "| %s | %s |", c.name, strings.TrimPrefix(r.target, "sql/"))
			now := r.timing[0][c.name]
			for i := range st.monitorSizes {
				if st.beforeRR != "" {
					b.WriteString(" " + timingCell(r.timing[1][c.name], i) + " |")
				}
				b.WriteString(" " + timingCell(now, i) + " |")
			}
			mark := "—"
			if len(now) == len(st.monitorSizes) {
				mark = "yes"
				if float64(now[len(now)-1].median)/float64(time.Millisecond) > c.targetMs {
					mark = "**no**"
				}
			}
			fmt.Fprintf(&b, " ≤ %.0f ms | %s |\n", c.targetMs, mark)
		}
	}
	return b.String()
}

func timingCell(ts []callTiming, i int) string {
	if i >= len(ts) {
		return "—"
	}
	return ms(ts[i].median) + " / " + ms(ts[i].p95)
}

// runHeader is the first lines of the separate reports: the machine, the rr and the databases.
func runHeader(st settings) string {
	host, _ := os.Hostname()
	s := fmt.Sprintf("On %s (%s), %s. %d no-op PHP workers.\n", host, st.machine, time.Now().UTC().Format("2006-01-02"), st.workers)
	if st.prebuilt != "" {
		s += fmt.Sprintf("The rr measured is the prebuilt binary %s (-rr), not one built from this tree.\n", st.prebuilt)
	}
	return s + "PostgreSQL with `fsync=on`, MariaDB with `innodb_flush_log_at_trx_commit=1`, SQLite `synchronous: full`.\n\n"
}
