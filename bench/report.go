// results.md: the tables of a run and the targets checked against it.

package main

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// report is results.md up to the fairness section.
func report(rs []result, backlog []backlogResult, remote *result, st settings) string {
	var b strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(&b, "# Benchmark: the sql driver beside RoadRunner's memory and boltdb drivers\n\n")
	fmt.Fprintf(&b, "One rr binary (RoadRunner 2025.1.15 plugins), %d no-op PHP workers, on %s (%d cores, %s, %s), %s.\n",
		st.workers, host, runtime.NumCPU(), runtime.GOOS, runtime.Version(), time.Now().UTC().Format("2006-01-02"))
	fmt.Fprintf(&b, "%s.\n", st.machine)
	if st.prebuilt != "" {
		fmt.Fprintf(&b, "The rr measured is the prebuilt binary %s (-rr), not one built from this tree.\n", st.prebuilt)
	}
	b.WriteString("Durability: every persistent backend flushes each commit to disk, as in production. boltdb syncs each\n" +
		"transaction; SQLite runs with the default `synchronous: full` (one row shows `normal`, the trade-off);\n" +
		"PostgreSQL 15 with `fsync=on`, `synchronous_commit=on`; MariaDB with `innodb_flush_log_at_trx_commit=1`.\n" +
		"Every job carries a UUID v4 id, spread like the random ones the PHP client gives (runs before 2026-12-02: ids that counted up).\n\n")
	fmt.Fprintf(&b, "| driver | Push jobs/s (%d calls) | PushBatch jobs/s | drain jobs/s (%d queued, median) | latency p50 | p99 | idle claims/s | idle CPU %% | RSS MB |\n", st.pushJobs, st.pushJobs+st.drainJobs)
	b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rs {
		p50, p99, idle := millis(r.p50), millis(r.p99), fmt.Sprintf("%.1f | %.1f | %.0f", r.idleClaimsPerSec, r.idleCPUPc, r.rssMB)
		if r.p50 < 0 {
			p50, p99, idle = "n/a", "n/a", "n/a | n/a | n/a" // still draining after the window
		}
		fmt.Fprintf(&b, "| %s | %.0f | %.0f | %.0f | %s | %s | %s |\n", r.target, r.pushPerSec, r.batchPerSec, r.drainPerSec, p50, p99, idle)
	}
	if remote != nil {
		fmt.Fprintf(&b, "| %s | | | | %s | %s | | | |\n", remote.target, millis(remote.p50), millis(remote.p99))
	}
	fmt.Fprintf(&b, "\nThe drain is the median of %d rounds (below), each on a fresh rr and database, the drivers' rounds interleaved;\n", st.rounds)
	b.WriteString("boltdb runs one round, capped at 60 s (rate = jobs done / time); n/a: the driver had not drained its backlog by then.\n")
	b.WriteString("Idle: over 10 s with nothing arriving; claims from rr's metrics, CPU from /proc. MariaDB's server also counts\n" +
		"every statement the node ran in that time (claims, heartbeats, the reaper): see the targets below.\n")
	b.WriteString("Latency is from the Push call to the worker's record of the job, at 200 jobs/s, millisecond resolution.\n")
	b.WriteString("Push on another node: two rr processes on one PostgreSQL database, jobs pushed to the one that does not consume.\n\n")

	if st.rounds > 1 {
		b.WriteString("## Drain rounds\n\n| driver |")
		for round := 1; round <= st.rounds; round++ {
			fmt.Fprintf(&b, " round %d |", round)
		}
		b.WriteString(" median | slowest ÷ fastest |\n|---|" + strings.Repeat("---|", st.rounds+2) + "\n")
		for _, r := range rs {
			if len(r.drainRounds) < 2 {
				continue
			}
			fmt.Fprintf(&b, "| %s |", r.target)
			for _, rate := range r.drainRounds {
				fmt.Fprintf(&b, " %.0f |", rate)
			}
			fmt.Fprintf(&b, " %.0f | %.2f |\n", r.drainPerSec, slices.Min(r.drainRounds)/slices.Max(r.drainRounds))
		}
		b.WriteString("\n")
		b.WriteString("### CPU a drained job\n\nThe CPU time each drained job cost, averaged over the rounds, in microseconds: rr's process, its PHP workers,\n" +
			"and the rest of the machine (the database server, the bench reading the workers' records). A rate swings with what\n" +
			"else the machine does; this far less. On a machine whose cores the drain keeps busy, the rates' ratio follows the\n" +
			"inverse ratio of these totals.\n\n| driver | total µs | rr | PHP | rest | total ÷ memory's |\n|---|---|---|---|---|---|\n")
		var memoryCPU float64
		for _, r := range rs {
			if r.target == "memory" && len(r.drainCPU) > 0 {
				memoryCPU = meanCPU(r.drainCPU).total()
			}
		}
		for _, r := range rs {
			if len(r.drainCPU) == 0 {
				continue
			}
			c := meanCPU(r.drainCPU)
			ratio := "n/a"
			if memoryCPU > 0 {
				ratio = fmt.Sprintf("%.2f", c.total()/memoryCPU)
			}
			fmt.Fprintf(&b, "| %s | %.0f | %.0f | %.0f | %.0f | %s |\n", r.target, c.total(), c.rr, c.php, c.rest, ratio)
		}
		b.WriteString("\n")
	}

	if len(backlog) > 0 {
		fmt.Fprintf(&b, "## Drain rate against the backlog\n\nThe median of %d consecutive windows of %d jobs, drained from the front of a backlog queued behind them\n", st.windows, st.window)
		b.WriteString("(pushed while paused; the sql backlogs written straight into the jobs table, the memory driver's through PushBatch).\n" +
			"Before the windows the database is settled as a backlog grown over time would be: analyzed, SQLite's WAL checkpointed,\n" +
			"PostgreSQL vacuumed and checkpointed, InnoDB's dirty pages written out. Each run's database is dropped after it.\n" +
			"Every claim runs with at least the backlog behind it. RSS is rr's after the windows at the largest backlog.\n")
		fmt.Fprintf(&b, "The memory driver holds at most %d jobs while paused (its local channel): it runs as many windows as fit, n/a when none does.\n\n", memoryPausedCap)
		b.WriteString("| driver |")
		for _, n := range st.backlogs {
			fmt.Fprintf(&b, " %s queued jobs/s |", count(n))
		}
		fmt.Fprintf(&b, " largest ÷ smallest | RSS MB, %s queued |\n|---|", count(st.backlogs[len(st.backlogs)-1]))
		for range st.backlogs {
			b.WriteString("---|")
		}
		b.WriteString("---|---|\n")
		for _, br := range backlog {
			fmt.Fprintf(&b, "| %s |", br.target)
			for _, r := range br.rates {
				if r == 0 {
					b.WriteString(" n/a |")
				} else {
					fmt.Fprintf(&b, " %.0f |", r)
				}
			}
			if last := br.rates[len(br.rates)-1]; last > 0 {
				fmt.Fprintf(&b, " %.2f | %.0f |\n", last/br.rates[0], br.rssMB)
			} else {
				b.WriteString(" n/a | n/a |\n")
			}
		}
		b.WriteString("\nEach window's rate (jobs/s):\n\n")
		for _, br := range backlog {
			for i, windows := range br.windows {
				if windows != nil {
					fmt.Fprintf(&b, "- %s, %s queued: %s\n", br.target, count(st.backlogs[i]), joinRates(windows))
				}
			}
		}
	}
	b.WriteString(targetsTable(rs, backlog, remote, st.flush))
	b.WriteString(pushCeiling(rs, st.flush, st.flushAfterIdle))
	b.WriteString("\n![rates](rates.png)\n\n![backlog](backlog.png)\n")
	return b.String()
}

// targetsTable checks the run against the speed targets, as ratios within this run.
func targetsTable(rs []result, backlog []backlogResult, remote *result, flush time.Duration) string {
	byName := map[string]result{}
	for _, r := range rs {
		byName[r.target] = r
	}
	var b strings.Builder
	b.WriteString("\n## Targets\n\n| target | required | measured | met |\n|---|---|---|---|\n")
	row := func(what, required string, measured float64, format string, met bool) {
		mark := "yes"
		if !met {
			mark = "**no**"
		}
		fmt.Fprintf(&b, "| %s | %s | "+format+" | %s |\n", what, required, measured, mark)
	}
	// info is a row shown beside the targets, met by nothing.
	info := func(what, says string, measured float64, format string) {
		fmt.Fprintf(&b, "| %s | %s | "+format+" | — |\n", what, says, measured)
	}
	memory, boltdb := byName["memory"], byName["boltdb"]
	for _, t := range []struct {
		name string
		min  float64
	}{{"sql/sqlite", 0.9}, {"sql/postgres", 0.6}, {"sql/mariadb", 0.7}} {
		r, ok := byName[t.name]
		if !ok || memory.drainPerSec == 0 {
			continue
		}
		row("drain "+t.name+" ÷ memory", fmt.Sprintf("≥ %.1f", t.min), r.drainPerSec/memory.drainPerSec, "%.3f", r.drainPerSec/memory.drainPerSec >= t.min)
		// The rates swing by a quarter between rounds on a small machine; the CPU a job costs
		// does not. With the cores busy, the rates' ratio tends to the inverse of the CPU's.
		if len(r.drainCPU) > 0 && len(memory.drainCPU) > 0 {
			info("drain "+t.name+" ÷ memory, from the CPU a drained job (memory's ÷ its)", "the same target, seen through the CPU",
				meanCPU(memory.drainCPU).total()/meanCPU(r.drainCPU).total(), "%.3f")
		}
	}
	for _, r := range rs {
		if strings.HasPrefix(r.target, "sql/") && boltdb.drainPerSec > 0 {
			row("drain "+r.target+" ÷ boltdb", "≥ 50", r.drainPerSec/boltdb.drainPerSec, "%.0f", r.drainPerSec/boltdb.drainPerSec >= 50)
		}
	}
	if r, ok := byName["sql/sqlite"]; ok && memory.pushPerSec > 0 {
		info("Push sql/sqlite ÷ memory (default durability)", "no target of its own: see the ceiling", r.pushPerSec/memory.pushPerSec, "%.3f")
		if ceiling := pushCeilingRate(memory.pushPerSec, flush); ceiling > 0 {
			row("Push sql/sqlite ÷ the ceiling (memory's Push plus one flush, below)", "≥ 0.9", r.pushPerSec/ceiling, "%.3f", r.pushPerSec/ceiling >= 0.9)
		}
	}
	if r, ok := byName["sql/sqlite (synchronous: normal)"]; ok && memory.pushPerSec > 0 {
		info("Push sql/sqlite (synchronous: normal) ÷ memory", "the trade-off, no target", r.pushPerSec/memory.pushPerSec, "%.2f")
	}
	for _, r := range rs {
		if strings.HasPrefix(r.target, "sql/") && r.p50 >= 0 {
			row("latency p50 "+r.target+" (ms)", "≤ 5", float64(r.p50.Milliseconds()), "%.0f", r.p50 <= 5*time.Millisecond)
		}
	}
	if remote != nil {
		row("latency p50 "+remote.target+" (ms)", "≤ 5", float64(remote.p50.Milliseconds()), "%.0f", remote.p50 <= 5*time.Millisecond)
	}
	for _, br := range backlog {
		if strings.HasPrefix(br.target, "sql/") && len(br.rates) > 1 {
			ratio := br.rates[len(br.rates)-1] / br.rates[0]
			row("drain at the largest ÷ smallest backlog, "+br.target, "≥ 0.9", ratio, "%.3f", ratio >= 0.9)
		}
	}
	for _, r := range rs {
		if r.idleQueriesPerSec > 0 {
			row("idle statements per second, "+r.target, "≤ 5", r.idleQueriesPerSec, "%.1f", r.idleQueriesPerSec <= 5)
		}
	}
	return b.String()
}

// pushCeiling explains the Push target at full durability with this machine's figures: RoadRunner
// calls the driver once per job, one call after another, and a durable Push returns only after
// its commit is flushed, so no durable driver can push faster than one flush per job plus the
// memory driver's own cost per Push.
//
// afterIdle, when measured, is the same flush started after the idle wait a push's commit follows;
// the ceiling it gives is printed beside, for what a durable driver can reach on this machine.
func pushCeiling(rs []result, flush, afterIdle time.Duration) string {
	var memoryPush, sqlitePush float64
	for _, r := range rs {
		switch r.target {
		case "memory":
			memoryPush = r.pushPerSec
		case "sql/sqlite":
			sqlitePush = r.pushPerSec
		}
	}
	if memoryPush == 0 || sqlitePush == 0 || flush <= 0 {
		return ""
	}
	perPush := time.Duration(float64(time.Second) / memoryPush)
	ceiling := pushCeilingRate(memoryPush, flush)
	idleNote := ""
	if idleCeiling := pushCeilingRate(memoryPush, afterIdle); idleCeiling > 0 {
		idleNote = fmt.Sprintf("A push's flush starts after rr waited for the call, and a flush after %s idle takes %s here\n"+
			"(median): with that flush the ceiling is %.0f jobs/s, %.2f of the one above, and sql/sqlite reaches %.2f of it.\n",
			pushIdle, afterIdle.Round(time.Microsecond), idleCeiling, idleCeiling/ceiling, sqlitePush/idleCeiling)
	}
	return fmt.Sprintf("\nThe Push target at full durability: RoadRunner calls the driver's Push once per job, one call after another\n"+
		"(PushBatch too), and a durable Push returns only once its commit is on disk. The memory driver takes %s per Push\n"+
		"and this disk takes %s to flush an 8 KiB overwrite (median of 1000 fsyncs, measured by the bench), so no driver\n"+
		"that flushes each Push can exceed %.0f jobs/s here: %.2f × memory. sql/sqlite reaches %.2f of that ceiling;\n"+
		"`synchronous: normal` (no flush per commit) is the row that shows the trade-off.\n%s",
		perPush.Round(time.Microsecond), flush.Round(time.Microsecond), ceiling, ceiling/memoryPush, sqlitePush/ceiling, idleNote)
}

// pushCeilingRate is the most Pushes a second a driver that flushes each one could take here:
// one flush per job on top of the memory driver's own cost per Push (0 when either is unknown).
func pushCeilingRate(memoryPush float64, flush time.Duration) float64 {
	if memoryPush <= 0 || flush <= 0 {
		return 0
	}
	return 1 / (1/memoryPush + flush.Seconds())
}

// millis writes a latency measured at millisecond resolution: "< 1ms" below the first tick.
func millis(d time.Duration) string {
	if d < time.Millisecond {
		return "< 1ms"
	}
	return d.String()
}

// count writes 10000 as 10k and 1000000 as 1M.
func count(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return strconv.Itoa(n)
}

// joinRates writes rates as "9801, 10022, 9950".
func joinRates(rates []float64) string {
	parts := make([]string, len(rates))
	for i, r := range rates {
		parts[i] = fmt.Sprintf("%.0f", r)
	}
	return strings.Join(parts, ", ")
}

// median of rates (0 for none).
func median(rates []float64) float64 {
	if len(rates) == 0 {
		return 0
	}
	sorted := slices.Sorted(slices.Values(rates))
	if len(sorted)%2 == 1 {
		return sorted[len(sorted)/2]
	}
	return (sorted[len(sorted)/2-1] + sorted[len(sorted)/2]) / 2
}
