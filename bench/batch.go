// batch.md: durable batches through sql.PushBatch (one commit a batch) against the memory driver's
// jobs.PushBatch and the sql driver's jobs.PushBatch (one commit a job).

package main

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	jobsProto "github.com/roadrunner-server/api/v4/build/jobs/v1"
)

// batchRow is one target, RPC method and batch size, with the rate of each round.
type batchRow struct {
	target, method string
	size           int
	rounds         []float64 // jobs/s
}

// runBatch measures, in st.rounds rounds on a fresh rr each (the targets interleaved), the push
// rate of st.batchJobs jobs in batches of each size, the pipeline paused (nothing competes): the
// memory driver and each sql backend through jobs.PushBatch, and each sql backend through
// sql.PushBatch.
func runBatch(bin, root string, memory target, backends []func() target, st settings) []batchRow {
	if st.batchJobs*len(st.batchSizes) > memoryPausedCap {
		fail("-batch-jobs × the batch sizes is %d jobs: the paused memory driver holds %d", st.batchJobs*len(st.batchSizes), memoryPausedCap)
	}
	type run struct {
		tg      func() target
		methods []string
	}
	runs := []run{{func() target { return memory }, []string{"jobs.PushBatch"}}}
	for _, b := range backends {
		runs = append(runs, run{b, []string{"sql.PushBatch", "jobs.PushBatch"}})
	}
	var rows []batchRow
	for round := range st.rounds {
		i := 0
		for _, r := range runs {
			tg := r.tg()
			if !st.only.MatchString(tg.name) {
				dropDB(tg)
				continue
			}
			for _, method := range r.methods {
				// A fresh rr (and database) for each method: one's rows do not slow the other's inserts.
				rates, err := batchRound(bin, root, tg, method, st)
				if err != nil {
					fail("%s %s: %v", tg.name, method, err)
				}
				for k, size := range st.batchSizes {
					if round == 0 {
						rows = append(rows, batchRow{target: tg.name, method: method, size: size})
					}
					rows[i].rounds = append(rows[i].rounds, rates[k])
					fmt.Fprintf(os.Stderr, "== batch round %d: %s %s of %d: %.0f jobs/s\n", round+1, tg.name, method, size, rates[k])
					i++
				}
				if method != r.methods[len(r.methods)-1] {
					tg = r.tg()
				}
			}
		}
	}
	return rows
}

// batchRound pushes st.batchJobs jobs in batches of each size with method on a fresh rr, and
// returns the rate of each size.
func batchRound(bin, root string, tg target, method string, st settings) ([]float64, error) {
	defer dropDB(tg) // after rr stops (deferred below)
	dir, _ := os.MkdirTemp("", "bench")
	defer os.RemoveAll(dir)
	rr, err := startRR(bin, root, dir, tg, st, 1, false)
	if err != nil {
		return nil, err
	}
	defer rr.stop()
	var rates []float64
	for _, size := range st.batchSizes {
		start := time.Now()
		for from := 0; from < st.batchJobs; from += size {
			req := &jobsProto.PushBatchRequest{}
			for i := from; i < min(from+size, st.batchJobs); i++ {
				req.Jobs = append(req.Jobs, job(fmt.Sprint("b", size, "-", i), `{"action":"ack"}`))
			}
			if err := rr.c.Call(method, req, &jobsProto.Empty{}); err != nil {
				return nil, err
			}
		}
		rates = append(rates, float64(st.batchJobs)/time.Since(start).Seconds())
	}
	return rates, nil
}

// batchReport is batch.md.
func batchReport(rows []batchRow, st settings) string {
	var b strings.Builder
	host, _ := os.Hostname()
	b.WriteString("# Benchmark: one-commit batches (sql.PushBatch)\n\n")
	fmt.Fprintf(&b, "One rr binary (RoadRunner 2025.1.15 plugins) on %s (%d cores, %s, %s), %s. %s.\n",
		host, runtime.NumCPU(), runtime.GOOS, runtime.Version(), time.Now().UTC().Format("2006-01-02"), st.machine)
	fmt.Fprintf(&b, "The disk flushes an 8 KiB overwrite in %s (median). The machine is shared: the figures are indicative.\n\n", st.flush)
	fmt.Fprintf(&b, "%d jobs pushed in batches of each size to a paused pipeline (nothing competes with the pushes),\n"+
		"%d rounds on a fresh rr and database each, the targets interleaved; the median is reported.\n"+
		"SQLite runs with the default `synchronous: full`: every commit is flushed to disk. jobs.PushBatch\n"+
		"calls the driver once per job (one commit each); sql.PushBatch commits the whole batch once.\n\n", st.batchJobs, st.rounds)
	memory := map[int]float64{}
	for _, r := range rows {
		if r.target == "memory" {
			memory[r.size] = median(r.rounds)
		}
	}
	b.WriteString("| driver | call | batch | jobs/s (median) | × memory | rounds |\n|---|---|---|---|---|---|\n")
	for _, r := range rows {
		ratio := ""
		if m := memory[r.size]; m > 0 && r.target != "memory" {
			ratio = fmt.Sprintf("%.2f", median(r.rounds)/m)
		}
		var rounds []string
		for _, v := range r.rounds {
			rounds = append(rounds, fmt.Sprintf("%.0f", v))
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %.0f | %s | %s |\n", r.target, r.method, r.size, median(r.rounds), ratio, strings.Join(rounds, ", "))
	}
	b.WriteString("\nTarget: durable SQLite batches through sql.PushBatch at ≥ 0.5 × the memory driver's jobs.PushBatch.\n")
	return b.String()
}
