package main

import (
	"fmt"
	"os"
	"time"
)

// backlogResult is the drain rate of one window of jobs taken from the front of a backlog.
type backlogResult struct {
	target  string
	rates   []float64   // per backlog size: the median of the windows
	windows [][]float64 // per backlog size, each window's rate
	rssMB   float64     // after the window at the largest backlog
	seedSec float64     // time to write the largest backlog
}

// runBacklogs measures each target's drain against each backlog size.
func runBacklogs(bin, root string, targets []func() target, st settings) []backlogResult {
	var backlog []backlogResult
	for _, next := range targets {
		var br backlogResult
		for _, n := range st.backlogs {
			tg := next()
			if !st.only.MatchString(tg.name) {
				break
			}
			br.target = tg.name
			tst := st
			if tg.name == "memory" {
				// The memory driver holds only memoryPausedCap jobs while paused: fewer windows, or n/a.
				tst.windows = min(st.windows, (memoryPausedCap-n)/st.window)
				if tst.windows < 1 {
					br.rates, br.windows = append(br.rates, 0), append(br.windows, nil)
					continue
				}
			}
			fmt.Fprintf(os.Stderr, "== backlog %d: %s\n", n, tg.name)
			windows, rss, seedSec, err := drainFromBacklog(bin, root, tg, tst, n)
			if err != nil {
				fail("backlog %d, %s: %v", n, tg.name, err)
			}
			fmt.Fprintf(os.Stderr, "   windows %.0f jobs/s, RSS %.0f MB, queued in %.1f s\n", windows, rss, seedSec)
			br.rates, br.windows = append(br.rates, median(windows)), append(br.windows, windows)
			br.rssMB, br.seedSec = rss, seedSec
		}
		if br.rates != nil {
			backlog = append(backlog, br)
		}
	}
	return backlog
}

// drainFromBacklog queues backlog + windows × window jobs while p is paused, resumes it, and
// measures the rate of each of those windows of jobs: every claim runs with at least
// backlog jobs behind it. The sql targets' backlog is written straight into the jobs table (the
// documented enqueue contract), the memory driver's through PushBatch. It returns the windows'
// rates, rr's RSS after them, and the seeding time.
func drainFromBacklog(bin, root string, tg target, st settings, backlog int) (windows []float64, rss, seedSec float64, err error) {
	defer dropDB(tg) // after rr stops (deferred below)
	dir, _ := os.MkdirTemp("", "bench")
	defer os.RemoveAll(dir)
	rr, err := startRR(bin, root, dir, tg, st, st.workers, false)
	if err != nil {
		return nil, 0, 0, err
	}
	defer rr.stop()
	start := time.Now()
	queued := backlog + st.windows*st.window
	if tg.dialect == "" {
		err = rr.pushBatches("seed", queued)
	} else {
		err = seed(tg, dir, queued, 0)
	}
	if err != nil {
		return nil, 0, 0, fmt.Errorf("queue the backlog: %w", err)
	}
	seedSec = time.Since(start).Seconds()
	start = time.Now()
	if err := rr.resume(); err != nil {
		return nil, 0, 0, err
	}
	done := lineCounter{file: rr.out}
	for w := 1; w <= st.windows; w++ {
		if err := done.wait(w*st.window, 5*time.Minute); err != nil {
			return nil, 0, 0, err
		}
		windows = append(windows, float64(st.window)/time.Since(start).Seconds())
		start = time.Now()
	}
	return windows, rssMB(rr.cmd.Process.Pid), seedSec, nil
}
