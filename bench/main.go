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
//
// Four measurements run on their own, each writing its own file (several may be given at once):
// -monitor-only (monitoring.md: jobs.Stat, the metrics scrape, sql.Stats and sql.Groups against
// 10k and 1M queued), -flush-only (flush.md: push latency on another pipeline during a flush of
// 1M jobs), -churn (churn.md: producer and workers together for -churn-duration), -batch-only
// (batch.md: batches of 100 and 1,000 jobs through sql.PushBatch against jobs.PushBatch). -before-rr PATH
// adds the figures of an older rr beside the current ones to the first two. -quick shortens every
// run (sizes and durations) for a check that the bench works, not for figures.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
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
	flushAfterIdle                       time.Duration  // the same after pushIdle idle, as a push's flush starts
	machine                              string         // CPU model and the database servers' versions
	prebuilt                             string         // the rr binary given with -rr ("": built from ../cmd/rr)
	beforeRR                             string         // -before-rr: an older rr measured beside, in monitoring.md and flush.md
	countOnly                            bool           // the workers count the jobs (counts dir) instead of a line per job

	monitorSizes                                  []int // monitoring.md: the backlogs
	monitorCalls, monitorWarmup, monitorGroupSize int
	flushJobs, flushRate                          int // flush.md
	flushBaseline                                 time.Duration
	churnDuration, churnBucket                    time.Duration // churn.md
	churnBacklog, churnProducers, churnBatch      int
	churnProducer                                 string
	batchJobs                                     int   // batch.md: jobs per batch size and round
	batchSizes                                    []int // batch.md
	dashboardSizes                                []int // dashboard.md: the backlogs
	dashboardWindow                               time.Duration
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
	noGroups := flag.Bool("no-groups", false, "leave the fairness rows (group_by) out of results.md (a shorter run of the main rows)")
	monitorOnly := flag.Bool("monitor-only", false, "run only the monitoring calls against the backlog and write monitoring.md")
	monitorSizes := flag.String("monitor-sizes", "10000,1000000", "monitoring.md: the backlogs the calls are timed against")
	flag.IntVar(&st.monitorCalls, "monitor-calls", 50, "monitoring.md: timed calls of each kind per backlog")
	flag.IntVar(&st.monitorWarmup, "monitor-warmup", 5, "monitoring.md: untimed calls before them")
	flag.IntVar(&st.monitorGroupSize, "monitor-group-size", 100, "monitoring.md: jobs per group of the group_by pipeline sql.Groups reads (1M jobs: 10,000 groups)")
	flushOnly := flag.Bool("flush-only", false, "run only the flush under load and write flush.md")
	flag.IntVar(&st.flushJobs, "flush-jobs", 1_000_000, "flush.md: waiting jobs flushed")
	flag.IntVar(&st.flushRate, "flush-rate", 100, "flush.md: pushes per second to the other pipeline")
	flag.DurationVar(&st.flushBaseline, "flush-baseline", 10*time.Second, "flush.md: pushes timed before the flush")
	churn := flag.Bool("churn", false, "run only the sustained load (producer and workers together) and write churn.md")
	flag.DurationVar(&st.churnDuration, "churn-duration", 10*time.Minute, "churn.md: how long each database runs")
	flag.DurationVar(&st.churnBucket, "churn-bucket", time.Minute, "churn.md: the period jobs are counted over (reported per minute)")
	flag.IntVar(&st.churnBacklog, "churn-backlog", 10_000, "churn.md: the producers push while fewer jobs than this wait")
	// One producer by default: on SQLite, producers are other processes writing the same file, and
	// several of them contend with rr's claims for the one write lock (SQLite's busy handler sleeps
	// 1 to 100 ms a try), which measures that contention more than the churned table. One producer
	// of 400 jobs a commit still outruns the workers on every database.
	flag.IntVar(&st.churnProducers, "churn-producers", 1, "churn.md: concurrent producers")
	flag.IntVar(&st.churnBatch, "churn-batch", 400, "churn.md: jobs per producer call")
	flag.StringVar(&st.churnProducer, "churn-producer", "insert", "churn.md: insert (multi-row INSERTs straight into the jobs table, the transactional-enqueue contract: producers that outrun the workers, so that the claims are measured) or rpc (jobs.PushBatch, one commit per job: the run is push-bound)")
	flag.StringVar(&st.beforeRR, "before-rr", "", "monitoring.md and flush.md: also measure this prebuilt rr (e.g. one built from an older commit) and show its figures beside")
	batchOnly := flag.Bool("batch-only", false, "run only the one-commit batches (sql.PushBatch against jobs.PushBatch) and write batch.md")
	flag.IntVar(&st.batchJobs, "batch-jobs", 20_000, "batch.md: jobs pushed per batch size and round")
	batchSizes := flag.String("batch-sizes", "100,1000", "batch.md: the batch sizes")
	dashboardOnly := flag.Bool("dashboard-only", false, "run only the dashboard's pages against the backlog and write dashboard.md")
	dashboardSizes := flag.String("dashboard-sizes", "1000000", "dashboard.md: the backlogs the pages are timed against")
	flag.DurationVar(&st.dashboardWindow, "dashboard-window", time.Minute, "dashboard.md: how long the statements are counted, idle and with each page polled")
	quick := flag.Bool("quick", false, "shorter runs to check that the bench works (not for figures): flags not given take quick values")
	flag.Parse()
	if *quick {
		given := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { given[f.Name] = true })
		for name, value := range quickValues {
			if !given[name] {
				if err := flag.Set(name, value); err != nil {
					fail("-quick: %s: %v", name, err)
				}
			}
		}
	}
	if st.monitorCalls < 1 || st.flushRate < 1 || st.churnProducers < 1 || st.churnBatch < 1 || st.monitorGroupSize < 1 {
		fail("-monitor-calls, -monitor-group-size, -flush-rate, -churn-producers and -churn-batch must be at least 1")
	}
	if st.churnBucket <= 0 || st.churnDuration < st.churnBucket {
		fail("-churn-duration must be at least one -churn-bucket")
	}
	if st.rounds < 1 || st.windows < 1 {
		fail("-rounds and -windows must be at least 1")
	}
	var err error
	if st.only, err = regexp.Compile(*only); err != nil {
		fail("-only: %v", err)
	}
	if st.backlogs, err = jobCounts(*backlogs); err != nil {
		fail("-backlogs: %v", err)
	}
	if st.monitorSizes, err = jobCounts(*monitorSizes); err != nil || len(st.monitorSizes) == 0 {
		fail("-monitor-sizes: %q is not a list of job counts", *monitorSizes)
	}
	if st.dashboardSizes, err = jobCounts(*dashboardSizes); err != nil || len(st.dashboardSizes) == 0 {
		fail("-dashboard-sizes: %q is not a list of job counts", *dashboardSizes)
	}
	if st.batchSizes, err = jobCounts(*batchSizes); err != nil || len(st.batchSizes) == 0 || slices.Contains(st.batchSizes, 0) || st.batchJobs < 1 {
		fail("-batch-sizes: %q is not a list of batch sizes (at least 1 each), or -batch-jobs is below 1", *batchSizes)
	}
	if st.beforeRR != "" {
		if st.beforeRR, err = prebuiltRR(st.beforeRR); err != nil {
			fail("-before-rr: %v", err)
		}
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
	flush, err := flushTime(os.TempDir(), 0)
	if err != nil {
		fail("measure the disk's flush time: %v", err)
	}
	st.flush = flush
	if st.flushAfterIdle, err = flushTime(os.TempDir(), pushIdle); err != nil {
		fail("measure the disk's flush time after idle: %v", err)
	}
	st.machine = machine(pgDSN, myDSN)
	fmt.Fprintf(os.Stderr, "== the disk flushes an 8 KiB overwrite in %s (median), %s after %s idle\n", flush, st.flushAfterIdle, pushIdle)

	memory, boltdb, sqliteNormal, backends := defineTargets(pgDSN, myDSN)

	if *monitorOnly || *flushOnly || *churn || *batchOnly || *dashboardOnly {
		if err := os.MkdirAll(*out, 0o755); err != nil {
			fail("%v", err)
		}
		write := func(name, text string) {
			if err := os.WriteFile(filepath.Join(*out, name), []byte(text), 0o644); err != nil {
				fail("%v", err)
			}
			fmt.Fprintf(os.Stderr, "wrote %s\n", filepath.Join(*out, name))
		}
		if *monitorOnly {
			write("monitoring.md", monitorReport(runMonitor(bin, root, backends, st), st, bin))
		}
		if *flushOnly {
			write("flush.md", flushReport(runFlush(bin, root, backends, st), st))
		}
		if *churn {
			write("churn.md", churnReport(runChurn(bin, root, backends, st), st))
		}
		if *batchOnly {
			write("batch.md", batchReport(runBatch(bin, root, memory, backends, st), st))
		}
		if *dashboardOnly {
			write("dashboard.md", dashboardReport(runDashboard(bin, root, backends, st), st))
		}
		return
	}

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
	var groups []groupResult
	if !*noGroups {
		groups = runGroups(bin, root, backends, st)
	}

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

// quickValues are what -quick sets of the flags not given: a pass through each measurement in a few
// minutes, to check that the bench works.
var quickValues = map[string]string{
	"rounds": "1", "windows": "2", "backlogs": "10000,100000",
	"monitor-sizes": "10000,100000", "monitor-calls": "20",
	"flush-jobs": "100000", "flush-baseline": "5s",
	"churn-duration": "1m", "churn-bucket": "10s",
	"batch-jobs":      "2000",
	"dashboard-sizes": "100000", "dashboard-window": "15s",
}

// jobCounts parses a comma-separated list of job counts.
func jobCounts(list string) ([]int, error) {
	var out []int
	for _, f := range strings.FieldsFunc(list, func(r rune) bool { return r == ',' }) {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%q is not a list of job counts", list)
		}
		out = append(out, n)
	}
	return out, nil
}

// fail stops the bench: a run that lost one figure would write tables that mislead.
func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
	os.Exit(1)
}
