package main

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// What churn.md shows beside each period's throughput, to tell a slower minute's cause: the mean
// claim and ack batch (rr's own histograms) and the state of the churned table.

// planReadsClaimIndex: the plan reads rr_jobs through rr_jobs_claim (an index scan, or a bitmap
// scan of it, which PostgreSQL picks when its statistics say few rows wait) and never sequentially.
func planReadsClaimIndex(plan string) bool {
	return (strings.Contains(plan, "using rr_jobs_claim") || strings.Contains(plan, "Bitmap Index Scan on rr_jobs_claim")) &&
		!strings.Contains(plan, "Seq Scan on rr_jobs")
}

// histogram is a Prometheus histogram's count and sum at one moment.
type histogram struct{ count, sum float64 }

func readHistogram(addr, name string) histogram {
	return histogram{count: metricSum(addr, name+"_count"), sum: metricSum(addr, name+"_sum")}
}

// claimAndAck reads rr's claim and ack batch histograms.
func claimAndAck(addr string) (claims, acks histogram) {
	return readHistogram(addr, "rr_sql_claim_seconds"), readHistogram(addr, "rr_sql_ack_batch_seconds")
}

// meanMsSince is the mean observation in milliseconds since an earlier reading (0 without any).
func (h histogram) meanMsSince(earlier histogram) float64 {
	if h.count <= earlier.count {
		return 0
	}
	return (h.sum - earlier.sum) / (h.count - earlier.count) * 1000
}

// tableProbe reads what churns in the database at the end of each period: PostgreSQL's dead rows
// in rr_jobs, its autovacuums and the server's checkpoints so far, InnoDB's purge lag (undo history
// not yet purged), SQLite's free pages and the size of its WAL file.
type tableProbe struct {
	db    *sql.DB
	query string
	show  func(row *sql.Row) string
}

func tableState(tg target, dir string) tableProbe {
	dsn := tg.dsn
	var p tableProbe
	switch tg.dialect {
	case "postgres":
		p.query = `SELECT n_dead_tup, autovacuum_count, (SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter)
			FROM pg_stat_user_tables WHERE relname = 'rr_jobs'`
		p.show = func(row *sql.Row) string {
			var dead, vacuums, checkpoints int64
			if err := row.Scan(&dead, &vacuums, &checkpoints); err != nil {
				return err.Error()
			}
			return fmt.Sprintf("%d dead rows, %d autovacuums, %d checkpoints", dead, vacuums, checkpoints)
		}
	case "mysql":
		p.query = `SELECT count FROM information_schema.INNODB_METRICS WHERE name = 'trx_rseg_history_len'`
		p.show = func(row *sql.Row) string {
			var history int64
			if err := row.Scan(&history); err != nil {
				return err.Error()
			}
			return fmt.Sprintf("purge lag %d", history)
		}
	case "sqlite":
		dsn = "file:" + filepath.Join(dir, "jobs.db") + "?mode=ro&_pragma=busy_timeout(10000)"
		p.query = `SELECT (SELECT freelist_count FROM pragma_freelist_count), (SELECT page_count FROM pragma_page_count)`
		wal := filepath.Join(dir, "jobs.db-wal")
		p.show = func(row *sql.Row) string {
			var free, pages int64
			if err := row.Scan(&free, &pages); err != nil {
				return err.Error()
			}
			var walMB float64
			if st, err := os.Stat(wal); err == nil {
				walMB = float64(st.Size()) / (1 << 20)
			}
			return fmt.Sprintf("%d free pages of %d, WAL %.1f MB", free, pages, walMB)
		}
	default:
		return p
	}
	p.db, _ = sql.Open(driverNames[tg.dialect], dsn)
	return p
}

func (p tableProbe) read() string {
	if p.db == nil {
		return ""
	}
	return p.show(p.db.QueryRow(p.query))
}

func (p tableProbe) close() {
	if p.db != nil {
		_ = p.db.Close()
	}
}

// cpuShare is the CPU time of the machine's processes over a period: which of rr, its PHP
// workers, the database server and the rest took the cores (a slower minute with the same claim
// and ack times is a minute in which something else took them). Processes are keyed "pid group",
// so that a process that ended during the period takes nothing away from its group; the machine's
// own lines (kernel, idle, steal) by their name.
type cpuShare map[string]int64

// readCPU reads utime+stime (clock ticks) of every process, keyed by pid and the group cpuGroup
// gives it, and the machine's kernel, idle and steal time.
func readCPU() cpuShare {
	out := cpuShare{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || close < open {
			continue
		}
		f := strings.Fields(s[close+2:])
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		k, _ := strconv.ParseInt(f[12], 10, 64)
		out[e.Name()+" "+cpuGroup(s[open+1:close])] = u + k
	}
	// The machine's line: the kernel's own time (interrupts and softirqs), the idle time (iowait
	// included), and the time the hypervisor gave the VM's cores to others (steal): a VM slowed
	// by its neighbours shows there, not in its processes.
	b, _ := os.ReadFile("/proc/stat")
	if f := strings.Fields(strings.SplitN(string(b), "\n", 2)[0]); len(f) > 8 {
		tick := func(i int) int64 { v, _ := strconv.ParseInt(f[i], 10, 64); return v }
		out["kernel"] = tick(6) + tick(7)
		out["idle"] = tick(4) + tick(5)
		out["steal"] = tick(8)
	}
	return out
}

// cpuGroup names a process by what it is in the run.
func cpuGroup(comm string) string {
	switch {
	case strings.HasPrefix(comm, "rr"):
		return "rr"
	case comm == "php":
		return "php"
	case comm == "postgres" || comm == "mariadbd" || comm == "mysqld":
		return "database"
	case comm == "bench" || comm == "go":
		return "bench"
	}
	return "other"
}

// since is each group's share of the machine's cores over the period since earlier, e.g.
// "rr 41 %, php 35 %, database 80 %, bench 5 %, kernel 2 %, other 3 %, idle 34 %, steal 0 %" (of
// 200 % on two cores).
func (c cpuShare) since(earlier cpuShare, period time.Duration) string {
	const ticksPerSecond = 100 // USER_HZ
	var parts []string
	ticks := map[string]int64{}
	for key, now := range c {
		_, group, isProcess := strings.Cut(key, " ")
		if !isProcess {
			group = key
		}
		ticks[group] += now - earlier[key] // a process started in the period: all of its time
	}
	for _, g := range []string{"rr", "php", "database", "bench", "kernel", "other", "idle", "steal"} {
		pc := float64(ticks[g]) / ticksPerSecond / period.Seconds() * 100
		parts = append(parts, fmt.Sprintf("%s %.0f %%", g, pc))
	}
	return strings.Join(parts, ", ")
}
