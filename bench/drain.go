package main

import (
	"fmt"
	"os"
	"time"
)

// result is one target's row of the main table.
type result struct {
	target                      string
	pushPerSec, batchPerSec     float64
	drainPerSec                 float64     // the median of drainRounds
	drainRounds                 []float64   // one per round, in the order run
	drainCPU                    []cpuPerJob // one per round: what the drained jobs cost in CPU
	p50, p99                    time.Duration
	idleClaimsPerSec, idleCPUPc float64
	idleQueriesPerSec           float64 // MariaDB only: the server's own count of statements (0: not measured)
	rssMB                       float64
}

// runRows measures the main table's row of each target, then the further drain rounds.
func runRows(bin, root string, targets []func() target, st settings) []result {
	var results []result
	var repeated []func() target // the targets whose drain gets more rounds
	for _, next := range targets {
		tg := next()
		if !st.only.MatchString(tg.name) {
			continue
		}
		fmt.Fprintf(os.Stderr, "== %s\n", tg.name)
		r, err := measureRow(bin, root, tg, st)
		if err != nil {
			fail("%s: %v", tg.name, err)
		}
		fmt.Fprintf(os.Stderr, "   %+v\n", r)
		results = append(results, r)
		if tg.name != "boltdb" { // boltdb drains 2 jobs/s: its one capped round is far from any target
			repeated = append(repeated, next)
		}
	}
	// More drain rounds, the drivers interleaved, so that a slow minute of the machine falls on
	// all of them rather than on one.
	for round := 2; round <= st.rounds; round++ {
		for _, next := range repeated {
			tg := next()
			fmt.Fprintf(os.Stderr, "== drain round %d: %s\n", round, tg.name)
			rate, cpu, err := drainRound(bin, root, tg, st)
			if err != nil {
				fail("%s: %v", tg.name, err)
			}
			fmt.Fprintf(os.Stderr, "   %.0f jobs/s, %s\n", rate, cpu)
			for i := range results {
				if results[i].target == tg.name {
					results[i].drainRounds = append(results[i].drainRounds, rate)
					results[i].drainCPU = append(results[i].drainCPU, cpu)
				}
			}
		}
	}
	for i := range results {
		results[i].drainPerSec = median(results[i].drainRounds)
	}
	return results
}

// measureRow is one target's row on a fresh rr (and database): the push rates, the first drain
// round, the latency, and the idle cost.
func measureRow(bin, root string, tg target, st settings) (result, error) {
	r := result{target: tg.name}
	defer dropDB(tg) // after rr stops (deferred below)
	dir, _ := os.MkdirTemp("", "bench")
	defer os.RemoveAll(dir)
	rr, err := startRR(bin, root, dir, tg, st, st.workers, false)
	if err != nil {
		return r, err
	}
	defer rr.stop()

	// Push rate, pipeline paused (nothing competes with the pushes).
	start := time.Now()
	for i := range st.pushJobs {
		if err := push(rr.c, fmt.Sprint("single-", i), `{"action":"ack"}`); err != nil {
			return r, err
		}
	}
	r.pushPerSec = float64(st.pushJobs) / time.Since(start).Seconds()

	// PushBatch rate, then the drain of everything pushed.
	start = time.Now()
	if err := rr.pushBatches("batch", st.drainJobs); err != nil {
		return r, err
	}
	r.batchPerSec = float64(st.drainJobs) / time.Since(start).Seconds()
	total := st.pushJobs + st.drainJobs
	claims0, acks0, ackSec0 := claimCount(rr.metricsAddr), metricSum(rr.metricsAddr, "rr_sql_ack_batch_seconds_count"), metricSum(rr.metricsAddr, "rr_sql_ack_batch_seconds_sum")
	start, cpuStart := time.Now(), sampleCPU(rr.cmd.Process.Pid)
	if err := rr.resume(); err != nil {
		return r, err
	}
	// The drain window is capped: boltdb takes about two jobs a second, and would take hours.
	drained := waitLinesUpTo(rr.out, total, 60*time.Second)
	r.drainRounds = []float64{float64(drained) / time.Since(start).Seconds()}
	r.drainCPU = []cpuPerJob{perJob(cpuStart, sampleCPU(rr.cmd.Process.Pid), max(drained, 1))}
	fmt.Fprintf(os.Stderr, "   drain: %.0f jobs/s, %s\n", r.drainRounds[0], r.drainCPU[0])
	if tg.dialect != "" {
		claims, acks := claimCount(rr.metricsAddr)-claims0, metricSum(rr.metricsAddr, "rr_sql_ack_batch_seconds_count")-acks0
		fmt.Fprintf(os.Stderr, "   drain: %.0f claims, %.0f ack batches of %.1f ms on average\n", claims, acks,
			(metricSum(rr.metricsAddr, "rr_sql_ack_batch_seconds_sum")-ackSec0)/acks*1000)
	}
	if drained < total {
		r.p50, r.p99 = -1, -1 // the backlog is still draining: latency would measure the queue
		return r, nil
	}

	if r.p50, r.p99, err = latency(rr, rr); err != nil {
		return r, err
	}

	// Idle: claims per second (sql only), every statement the server ran (MariaDB counts them at
	// once; heartbeats and the reaper included) and CPU, over 10 s with nothing arriving.
	const idle = 10 * time.Second
	claims0, cpu0, queries0 := claimCount(rr.metricsAddr), cpuTicks(rr.cmd.Process.Pid), serverQueries(tg)
	time.Sleep(idle) // a measurement window, not a wait for a condition
	claims1, cpu1, queries1 := claimCount(rr.metricsAddr), cpuTicks(rr.cmd.Process.Pid), serverQueries(tg)
	r.idleClaimsPerSec = (claims1 - claims0) / idle.Seconds()
	r.idleCPUPc = float64(cpu1-cpu0) / 100 / idle.Seconds() * 100 // USER_HZ = 100
	if queries0 >= 0 && queries1 >= 0 {
		r.idleQueriesPerSec = float64(queries1-queries0-1) / idle.Seconds() // less the SHOW STATUS that reads it
	}
	r.rssMB = rssMB(rr.cmd.Process.Pid)
	return r, nil
}

// drainRound is one more round of the drain: a fresh rr (and database), the same jobs pushed with
// PushBatch while paused, then resumed until all are done. It returns the rate and the CPU the
// jobs cost.
func drainRound(bin, root string, tg target, st settings) (float64, cpuPerJob, error) {
	defer dropDB(tg) // after rr stops (deferred below)
	dir, _ := os.MkdirTemp("", "bench")
	defer os.RemoveAll(dir)
	rr, err := startRR(bin, root, dir, tg, st, st.workers, false)
	if err != nil {
		return 0, cpuPerJob{}, err
	}
	defer rr.stop()
	total := st.pushJobs + st.drainJobs
	if err := rr.pushBatches("batch", total); err != nil {
		return 0, cpuPerJob{}, err
	}
	start, cpuStart := time.Now(), sampleCPU(rr.cmd.Process.Pid)
	if err := rr.resume(); err != nil {
		return 0, cpuPerJob{}, err
	}
	if err := waitLines(rr.out, total, 5*time.Minute); err != nil {
		return 0, cpuPerJob{}, err
	}
	rate := float64(total) / time.Since(start).Seconds()
	return rate, perJob(cpuStart, sampleCPU(rr.cmd.Process.Pid), total), nil
}
