// Command bench measures the sql driver side by side with RoadRunner's memory and boltdb drivers,
// in one rr binary, with the same no-op PHP worker and pool: push rate (Push and PushBatch), drain
// rate (jobs pushed while paused, then resumed), push-to-worker latency at a steady low rate, the
// idle cost, and the drain rate against the backlog. It writes docs/bench/results.md and the charts.
//
// The machine's speed drifts by ±10 % from one minute to the next (a shared VM), more than the
// margins of some targets, so each drain is measured in several rounds, the drivers' rounds
// interleaved, and the median is reported beside every round.
//
//	make bench     (starts the database servers, then: cd bench && go run .)
//
// With -rr PATH it measures a prebuilt rr instead of building ../cmd/rr, so that one bench can
// compare an rr built from an older commit with the current one.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// settings are the run's flags, and what it measured of the machine for the report.
type settings struct {
	workers, pushJobs, drainJobs, window int
	rounds                               int // drain rounds per target
	windows                              int // measured windows per backlog
	backlogs                             []int
	only                                 *regexp.Regexp // run only the targets whose name it matches
	profileDir                           string         // rr writes a CPU profile of each run here
	flush                                time.Duration  // the disk's time to flush a small overwrite (fsync)
	machine                              string         // CPU model and the database servers' versions
	prebuilt                             string         // the rr binary given with -rr ("": built from ../cmd/rr)
}

func main() {
	var st settings
	flag.IntVar(&st.drainJobs, "drain", 50_000, "jobs pushed while paused, then drained")
	flag.IntVar(&st.pushJobs, "push", 5_000, "jobs pushed one Push call at a time")
	flag.IntVar(&st.workers, "workers", 4, "PHP workers")
	flag.IntVar(&st.window, "window", 30_000, "jobs in each measured window of a backlog")
	flag.IntVar(&st.rounds, "rounds", 5, "drain rounds per driver (interleaved); the median is reported")
	flag.IntVar(&st.windows, "windows", 5, "measured windows per backlog; the median is reported")
	backlogs := flag.String("backlogs", "10000,100000,1000000", "backlog sizes (jobs queued behind the measured windows)")
	out := flag.String("out", "../docs/bench", "where to write results.md and the charts")
	only := flag.String("only", "", "run only the targets whose name matches this regular expression, e.g. '^(memory|sql/sqlite)$' (for profiling)")
	flag.StringVar(&st.profileDir, "cpuprofile", "", "directory where rr writes a pprof CPU profile of each run")
	flag.StringVar(&st.prebuilt, "rr", "", "measure this prebuilt rr binary instead of building ../cmd/rr, e.g. one built from an older commit (a relative path is from bench/)")
	groupsOnly := flag.Bool("groups-only", false, "run only the fairness rows (group_by) and write groups.md")
	flag.Parse()
	if st.rounds < 1 || st.windows < 1 {
		fail("-rounds and -windows must be at least 1")
	}
	var err error
	if st.only, err = regexp.Compile(*only); err != nil {
		fail("-only: %v", err)
	}
	for _, f := range strings.FieldsFunc(*backlogs, func(r rune) bool { return r == ',' }) {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 {
			fail("-backlogs: %q is not a list of job counts", *backlogs)
		}
		st.backlogs = append(st.backlogs, n)
	}

	root, _ := filepath.Abs("..")
	var bin string
	if st.prebuilt == "" {
		bin = buildRR(root)
	} else {
		if st.prebuilt, err = prebuiltRR(st.prebuilt); err != nil {
			fail("-rr: %v", err)
		}
		bin = st.prebuilt
	}
	pgDSN, myDSN := os.Getenv("SQLJOBS_POSTGRES_DSN"), os.Getenv("SQLJOBS_MYSQL_DSN")
	flush, err := flushTime(os.TempDir())
	if err != nil {
		fail("measure the disk's flush time: %v", err)
	}
	st.flush = flush
	st.machine = machine(pgDSN, myDSN)
	fmt.Fprintf(os.Stderr, "== the disk flushes an 8 KiB overwrite in %s (median)\n", flush)

	memory, boltdb, sqliteNormal, backends := defineTargets(pgDSN, myDSN)

	if *groupsOnly {
		if err := os.MkdirAll(*out, 0o755); err != nil {
			fail("%v", err)
		}
		if err := os.WriteFile(filepath.Join(*out, "groups.md"), []byte(groupReport(runGroups(bin, root, backends, st), st)), 0o644); err != nil {
			fail("%v", err)
		}
		fmt.Fprintf(os.Stderr, "wrote %s\n", filepath.Join(*out, "groups.md"))
		return
	}

	same := func(tg target) func() target { return func() target { return tg } }
	rowTargets := []func() target{same(memory), same(boltdb), backends[0], same(sqliteNormal)}
	rowTargets = append(rowTargets, backends[1:]...)
	results := runRows(bin, root, rowTargets, st)
	backlog := runBacklogs(bin, root, append([]func() target{same(memory)}, backends...), st)

	remote := runCrossNode(bin, root, pgDSN, st)
	groups := runGroups(bin, root, backends, st)

	if err := os.MkdirAll(*out, 0o755); err != nil {
		fail("%v", err)
	}
	if err := os.WriteFile(filepath.Join(*out, "results.md"), []byte(report(results, backlog, remote, st)+groupReport(groups, st)), 0o644); err != nil {
		fail("%v", err)
	}
	if len(results) > 0 {
		if err := chart(results, filepath.Join(*out, "rates.png")); err != nil {
			fail("chart: %v", err)
		}
	}
	if len(backlog) > 0 {
		if err := backlogChart(backlog, st.backlogs, filepath.Join(*out, "backlog.png")); err != nil {
			fail("chart: %v", err)
		}
	}
	fmt.Fprintf(os.Stderr, "wrote %s\n", *out)
}

// fail stops the bench: a run that lost one figure would write tables that mislead.
func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
	os.Exit(1)
}
