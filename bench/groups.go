package main

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	jobsProto "github.com/roadrunner-server/api/v4/build/jobs/v1"
)

// The fairness rows (pipeline option group_by): what sharing each claim across groups costs, and
// what it buys a small tenant queued behind a large one. sql targets only.

// groupResult is one sql target's fairness figures.
type groupResult struct {
	target string
	// drain is the median drain rate (jobs/s) without group_by, then over 10 and 10,000 groups.
	drain [3]float64
	// backlogRate is the drain rate of a window at the front of a backlog, and claimMs the mean
	// time of one claim there: 10,000 ready jobs in 10 groups, then 1,000,000 in 10,000 groups.
	backlogRate, claimMs [2]float64
	// waitPlain and waitFair are a small tenant's wait (p50, p99) behind a large tenant's backlog,
	// without and with group_by.
	waitPlain, waitFair [2]time.Duration
}

// groupDrainCases are the drain rows: groups per drain (0: no group_by).
var groupDrainCases = []int{0, 10, 10_000}

// groupBacklogs are the claim-cost rows: ready jobs and their groups.
var groupBacklogs = [2][2]int{{10_000, 10}, {1_000_000, 10_000}}

func grouped(tg target) target {
	tg.pipeline += "\n        group_by: tenant"
	return tg
}

// runGroups measures the fairness rows of each sql backend.
func runGroups(bin, root string, backends []func() target, st settings) []groupResult {
	var out []groupResult
	for _, next := range backends {
		name := nameOf(next)
		if !st.only.MatchString(name) {
			continue
		}
		r := groupResult{target: name}
		for i, groups := range groupDrainCases {
			var rates []float64
			for round := range st.rounds {
				tg := next()
				if groups > 0 {
					tg = grouped(tg)
				}
				fmt.Fprintf(os.Stderr, "== groups: drain over %d groups, round %d: %s\n", groups, round+1, name)
				rate, err := groupDrain(bin, root, tg, st, groups)
				if err != nil {
					fail("%s: drain over %d groups: %v", name, groups, err)
				}
				fmt.Fprintf(os.Stderr, "   %.0f jobs/s\n", rate)
				rates = append(rates, rate)
			}
			r.drain[i] = median(rates)
		}
		for i, b := range groupBacklogs {
			fmt.Fprintf(os.Stderr, "== groups: claims at %d ready jobs in %d groups: %s\n", b[0], b[1], name)
			rate, claimMs, err := groupBacklog(bin, root, grouped(next()), st, b[0], b[1])
			if err != nil {
				fail("%s: backlog of %d jobs in %d groups: %v", name, b[0], b[1], err)
			}
			fmt.Fprintf(os.Stderr, "   %.0f jobs/s, %.2f ms a claim\n", rate, claimMs)
			r.backlogRate[i], r.claimMs[i] = rate, claimMs
		}
		for _, fair := range []bool{false, true} {
			tg := next()
			if fair {
				tg = grouped(tg)
			}
			fmt.Fprintf(os.Stderr, "== groups: a small tenant behind a large one (group_by %v): %s\n", fair, name)
			p50, p99, err := tenantWait(bin, root, tg, st)
			if err != nil {
				fail("%s: tenant wait: %v", name, err)
			}
			fmt.Fprintf(os.Stderr, "   p50 %s p99 %s\n", p50, p99)
			if fair {
				r.waitFair = [2]time.Duration{p50, p99}
			} else {
				r.waitPlain = [2]time.Duration{p50, p99}
			}
		}
		out = append(out, r)
	}
	return out
}

// pushTenants pushes n jobs named prefix-i with PushBatch, 500 a call, job i of tenant
// tenant(i).
func (p *rrProcess) pushTenants(prefix string, n int, tenant func(i int) string) error {
	for from := 0; from < n; from += 500 {
		req := &jobsProto.PushBatchRequest{}
		for i := from; i < min(from+500, n); i++ {
			j := job(fmt.Sprint(prefix, "-", i), `{"action":"ack"}`)
			j.Headers = map[string]*jobsProto.HeaderValue{"tenant": {Value: []string{tenant(i)}}}
			req.Jobs = append(req.Jobs, j)
		}
		if err := p.c.Call("jobs.PushBatch", req, &jobsProto.Empty{}); err != nil {
			return err
		}
	}
	return nil
}

// groupDrain is drainRound with the jobs spread over groups tenants (each job its own group's
// next, round robin).
func groupDrain(bin, root string, tg target, st settings, groups int) (float64, error) {
	defer dropDB(tg)
	dir, _ := os.MkdirTemp("", "bench")
	defer os.RemoveAll(dir)
	rr, err := startRR(bin, root, dir, tg, st, st.workers, false)
	if err != nil {
		return 0, err
	}
	defer rr.stop()
	total := st.pushJobs + st.drainJobs
	if err := rr.pushTenants("batch", total, func(i int) string { return fmt.Sprint("t", i%max(groups, 1)) }); err != nil {
		return 0, err
	}
	start := time.Now()
	if err := rr.resume(); err != nil {
		return 0, err
	}
	if err := waitLines(rr.out, total, 5*time.Minute); err != nil {
		return 0, err
	}
	return float64(total) / time.Since(start).Seconds(), nil
}

// groupBacklog writes jobs ready jobs over groups groups straight into the table (the
// transactional-enqueue contract, grp included), resumes, and measures the first window of
// st.window jobs: its rate and the mean time of a claim (rr's claim histogram).
func groupBacklog(bin, root string, tg target, st settings, jobs, groups int) (rate, claimMs float64, err error) {
	defer dropDB(tg)
	dir, _ := os.MkdirTemp("", "bench")
	defer os.RemoveAll(dir)
	rr, err := startRR(bin, root, dir, tg, st, st.workers, false)
	if err != nil {
		return 0, 0, err
	}
	defer rr.stop()
	if err := seed(tg, dir, jobs, groups); err != nil {
		return 0, 0, fmt.Errorf("queue the backlog: %w", err)
	}
	window := min(st.window, jobs)
	n0, s0 := claimCount(rr.metricsAddr), metricSum(rr.metricsAddr, "rr_sql_claim_seconds_sum")
	start := time.Now()
	if err := rr.resume(); err != nil {
		return 0, 0, err
	}
	if err := waitLines(rr.out, window, 5*time.Minute); err != nil {
		return 0, 0, err
	}
	rate = float64(window) / time.Since(start).Seconds()
	n, s := claimCount(rr.metricsAddr)-n0, metricSum(rr.metricsAddr, "rr_sql_claim_seconds_sum")-s0
	if n > 0 {
		claimMs = s / n * 1000
	}
	return rate, claimMs, nil
}

// tenantWait queues 20,000 jobs of tenant bob while paused, resumes, and pushes 200 jobs of tenant
// alice, one every 10 ms: alice's waits (push to the worker's record), p50 and p99.
func tenantWait(bin, root string, tg target, st settings) (p50, p99 time.Duration, err error) {
	defer dropDB(tg)
	dir, _ := os.MkdirTemp("", "bench")
	defer os.RemoveAll(dir)
	rr, err := startRR(bin, root, dir, tg, st, st.workers, false)
	if err != nil {
		return 0, 0, err
	}
	defer rr.stop()
	const backlog, small = 20_000, 200
	if err := rr.pushTenants("bob", backlog, func(int) string { return "bob" }); err != nil {
		return 0, 0, err
	}
	if err := rr.resume(); err != nil {
		return 0, 0, err
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	sent := map[string]time.Time{}
	for i := range small {
		<-tick.C
		j := job(fmt.Sprint("alice-", i), `{"action":"ack"}`)
		j.Headers = map[string]*jobsProto.HeaderValue{"tenant": {Value: []string{"alice"}}}
		sent[j.Id] = time.Now()
		if err := rr.c.Call("jobs.Push", &jobsProto.PushRequest{Job: j}, &jobsProto.Empty{}); err != nil {
			return 0, 0, err
		}
	}
	if err := waitLines(rr.out, backlog+small, 5*time.Minute); err != nil {
		return 0, 0, err
	}
	var waits []time.Duration
	for _, rec := range records(rr.out) {
		if t0, ok := sent[rec.ID]; ok {
			waits = append(waits, time.UnixMilli(rec.TsMs).Sub(t0.Truncate(time.Millisecond)))
		}
	}
	if len(waits) != small {
		return 0, 0, fmt.Errorf("%d of alice's %d jobs recorded", len(waits), small)
	}
	slices.Sort(waits)
	return waits[len(waits)/2], waits[len(waits)*99/100], nil
}

// groupReport is the fairness section of results.md.
func groupReport(rs []groupResult, st settings) string {
	if len(rs) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("\n## Fairness across tenants (group_by)\n\n")
	fmt.Fprintf(&b, "Drain of %d jobs pushed while paused (median of %d rounds), the jobs spread round robin over the groups:\n\n", st.pushJobs+st.drainJobs, st.rounds)
	b.WriteString("| driver | no group_by jobs/s | 10 groups | ratio | 10,000 groups | ratio |\n|---|---|---|---|---|---|\n")
	for _, r := range rs {
		fmt.Fprintf(&b, "| %s | %.0f | %.0f | %.2f | %.0f | %.2f |\n", r.target, r.drain[0], r.drain[1], r.drain[1]/r.drain[0], r.drain[2], r.drain[2]/r.drain[0])
	}
	fmt.Fprintf(&b, "\nClaims at the front of a backlog written straight into the table (a window of %d jobs):\n\n", st.window)
	b.WriteString("| driver | 10,000 jobs in 10 groups: jobs/s | ms a claim | 1,000,000 jobs in 10,000 groups: jobs/s | ms a claim | ratio (jobs/s) |\n|---|---|---|---|---|---|\n")
	for _, r := range rs {
		fmt.Fprintf(&b, "| %s | %.0f | %.2f | %.0f | %.2f | %.2f |\n", r.target, r.backlogRate[0], r.claimMs[0], r.backlogRate[1], r.claimMs[1], r.backlogRate[1]/r.backlogRate[0])
	}
	b.WriteString("\nA small tenant behind a large one: 20,000 jobs of bob queued, then 200 of alice pushed one every 10 ms while bob's drain:\n" +
		"alice's wait from the Push call to her worker's record.\n\n")
	b.WriteString("| driver | without group_by p50 | p99 | with group_by p50 | p99 |\n|---|---|---|---|---|\n")
	for _, r := range rs {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", r.target, millis(r.waitPlain[0]), millis(r.waitPlain[1]), millis(r.waitFair[0]), millis(r.waitFair[1]))
	}
	return b.String()
}
