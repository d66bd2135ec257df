package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// The drain is bound by CPU on a small machine: rr, its PHP workers and the database server share
// the cores. A rate swings with what else the machine does; the CPU each job cost does far less,
// and says where a driver spends it.

// cpuSample is the CPU time used so far, in clock ticks (USER_HZ, 100 a second): rr's process,
// its PHP workers (rr's child processes) and the whole machine.
type cpuSample struct {
	rr, php, machine int64
}

func sampleCPU(rrPid int) cpuSample {
	s := cpuSample{rr: cpuTicks(rrPid), machine: machineBusyTicks()}
	for _, child := range childPIDs(rrPid) {
		s.php += cpuTicks(child)
	}
	return s
}

// cpuPerJob is the CPU a drained job cost, in microseconds, split by process.
type cpuPerJob struct {
	rr, php, rest float64 // rest: the database server, the bench itself, anything else running
}

func (s cpuPerJob) total() float64 { return s.rr + s.php + s.rest }

// perJob spreads the CPU used between two samples over jobs.
func perJob(from, to cpuSample, jobs int) cpuPerJob {
	µs := func(ticks int64) float64 { return float64(ticks) * 10_000 / float64(jobs) }
	rr, php := to.rr-from.rr, to.php-from.php
	return cpuPerJob{rr: µs(rr), php: µs(php), rest: µs(max(0, to.machine-from.machine-rr-php))}
}

// meanCPU averages the rounds' figures.
func meanCPU(rounds []cpuPerJob) cpuPerJob {
	var m cpuPerJob
	for _, r := range rounds {
		m.rr += r.rr / float64(len(rounds))
		m.php += r.php / float64(len(rounds))
		m.rest += r.rest / float64(len(rounds))
	}
	return m
}

func (s cpuPerJob) String() string {
	return fmt.Sprintf("%.0f µs a job (rr %.0f, PHP %.0f, rest %.0f)", s.total(), s.rr, s.php, s.rest)
}

// machineBusyTicks is the time all CPUs spent on anything but idling and waiting for the disk
// (the first line of /proc/stat).
func machineBusyTicks() int64 {
	b, _ := os.ReadFile("/proc/stat")
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var busy int64
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		if i == 3 || i == 4 || i >= 8 { // idle, iowait; guest time is already in user time
			continue
		}
		busy += n
	}
	return busy
}

// childPIDs lists the processes whose parent is pid.
func childPIDs(pid int) []int {
	var out []int
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, t := range tasks {
		b, _ := os.ReadFile(t)
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}
