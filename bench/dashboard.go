// dashboard.md: what the web dashboard (sql.dashboard) costs against a large backlog: each page's
// render time, and the database statements per second it adds while a page is left open (its
// script reloads the page every 5 seconds).

package main

import (
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// dashboardPages are the pages and API answers timed, with what each shows.
var dashboardPages = []struct{ path, what string }{
	{"/", "overview (10 pipelines)"},
	{"/pipelines/p", "pipeline (counts, hour chart, options)"},
	{"/pipelines/p?range=day", "pipeline (day chart)"},
	{"/failed?pipeline=p", "failed jobs (first page)"},
	{"/jobs?pipeline=p&ids=" + jobID("seed-1") + "+" + jobID("seed-999999") + "+none", "job lookup (3 ids)"},
	{"/nodes", "nodes"},
	{"/api/overview", "GET /api/overview"},
}

// dashboardPollEvery is how often a page left open reloads itself (dashboard/static/app.js).
const dashboardPollEvery = 5 * time.Second

// dashboardRunIn is how long each polling runs before its statements are counted.
const dashboardRunIn = 12 * time.Second

// dashboardPipelines is how many pipelines the overview shows: p holds the backlog, the others none.
const dashboardPipelines = 10

type dashboardResult struct {
	target string
	queued int
	pages  map[string]callTiming
	// statements per second on the database: idle rr, then with the overview, then the pipeline
	// page, polled as the page's script does (negative: the database gives no count).
	idle, overview, pipeline float64
}

func runDashboard(bin, root string, backends []func() target, st settings) []dashboardResult {
	var out []dashboardResult
	for _, next := range backends {
		name := nameOf(next)
		if !st.only.MatchString(name) {
			continue
		}
		for _, n := range st.dashboardSizes {
			fmt.Fprintf(os.Stderr, "== dashboard: %s queued: %s\n", count(n), name)
			r, err := dashboardRun(bin, root, next(), st, n)
			if err != nil {
				fail("%s: dashboard at %d queued: %v", name, n, err)
			}
			out = append(out, r)
		}
	}
	return out
}

func dashboardRun(bin, root string, tg target, st settings, n int) (dashboardResult, error) {
	r := dashboardResult{target: tg.name, queued: n, pages: map[string]callTiming{}}
	defer dropDB(tg)
	dir, _ := os.MkdirTemp("", "bench")
	defer os.RemoveAll(dir)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort())
	tg.extra += "\n  dashboard:\n    listen: " + addr
	var more []string
	for i := 1; i < dashboardPipelines; i++ {
		more = append(more, fmt.Sprint("q", i))
	}
	rr, err := startRRWith(bin, root, dir, tg, st, st.workers, false, more)
	if err != nil {
		return r, err
	}
	defer rr.stop()
	if err := seed(tg, dir, n, 0); err != nil {
		return r, fmt.Errorf("queue the backlog: %w", err)
	}
	base := "http://" + addr
	get := func(path string) func() error {
		return func() error {
			resp, err := http.Get(base + path)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err == nil && resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, body)
			}
			return err
		}
	}
	// The overview must show the backlog: the page reads the kept counts.
	if err := get("/")(); err != nil {
		return r, err
	}
	for _, p := range dashboardPages {
		t, err := timeCalls(st.monitorWarmup, st.monitorCalls, get(p.path))
		if err != nil {
			return r, err
		}
		fmt.Fprintf(os.Stderr, "   %s: median %s, p95 %s\n", p.path, t.median, t.p95)
		r.pages[p.path] = t
	}
	counter, err := statementCounter(tg, dir)
	if err != nil {
		return r, err
	}
	if counter == nil {
		r.idle, r.overview, r.pipeline = -1, -1, -1
		return r, nil
	}
	defer counter.Close()
	// poll does what a page left open does (nothing for ""), for d.
	poll := func(path string, d time.Duration) error {
		began := time.Now()
		for time.Since(began) < d {
			if path != "" {
				if err := get(path)(); err != nil {
					return err
				}
			}
			time.Sleep(min(dashboardPollEvery, d-time.Since(began)))
		}
		return nil
	}
	// rate counts the statements of a window of polling, after as long a run-in: PostgreSQL's
	// statistics arrive up to ten seconds late, so each window starts in the steady state of what
	// it measures (what arrives late from the run-in makes up for what leaves late at its end).
	rate := func(path string) (float64, error) {
		if err := poll(path, dashboardRunIn); err != nil {
			return 0, err
		}
		start, err := counter.count()
		if err != nil {
			return 0, err
		}
		began := time.Now()
		if err := poll(path, st.dashboardWindow); err != nil {
			return 0, err
		}
		end, err := counter.count()
		return float64(end-start-1) / time.Since(began).Seconds(), err // -1: the first probe
	}
	if r.idle, err = rate(""); err != nil {
		return r, err
	}
	if r.overview, err = rate("/"); err != nil {
		return r, err
	}
	if r.pipeline, err = rate("/pipelines/p"); err != nil {
		return r, err
	}
	fmt.Fprintf(os.Stderr, "   statements/s: idle %.1f, overview polled %.1f, pipeline page polled %.1f\n", r.idle, r.overview, r.pipeline)
	return r, nil
}

// counter reads how many statements a database server has run so far.
type counter struct {
	db    *sql.DB
	query string
}

func (c *counter) count() (int64, error) {
	var n int64
	if strings.HasPrefix(c.query, "SHOW") {
		var name string
		err := c.db.QueryRow(c.query).Scan(&name, &n)
		return n, err
	}
	// PostgreSQL: a fresh snapshot of the statistics each time.
	tx, err := c.db.Begin()
	if err != nil {
		return 0, err
	}
	defer tx.Rollback() //nolint:errcheck
	if _, err := tx.Exec(`SELECT pg_stat_clear_snapshot()`); err != nil {
		return 0, err
	}
	err = tx.QueryRow(c.query).Scan(&n)
	return n, err
}

func (c *counter) Close() error { return c.db.Close() }

// statementCounter counts what the server runs: MariaDB's Questions (every statement a client
// sends), PostgreSQL's transactions of the run's database (every statement outside a transaction
// is one; its statistics reach the view within a second or, from an idle session, up to ten: the
// windows are long beside that). SQLite, a file in rr's process, counts nothing: nil.
func statementCounter(tg target, dir string) (*counter, error) {
	switch tg.dialect {
	case "postgres":
		db, err := sql.Open(driverNames[tg.dialect], tg.dsn)
		return &counter{db: db, query: `SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()`}, err
	case "mysql":
		db, err := sql.Open(driverNames[tg.dialect], tg.dsn)
		return &counter{db: db, query: `SHOW GLOBAL STATUS LIKE 'Questions'`}, err
	}
	return nil, nil
}

func dashboardReport(rs []dashboardResult, st settings) string {
	var b strings.Builder
	b.WriteString("# The dashboard against the backlog\n\n")
	b.WriteString(runHeader(st))
	fmt.Fprintf(&b, "rr serves %d sql pipelines, none consuming; `p` holds the backlog, written straight into the table. Each page\n"+
		"fetched %d times one after another over HTTP after %d untimed fetches (the time to the last byte of the answer).\n"+
		"Then the database's statements per second over %s (after %s of the same): rr idle with the dashboard closed, then\n"+
		"with the overview and the pipeline page polled every %s as their script does. PostgreSQL counts transactions (each statement outside\n"+
		"one is one; rr's heartbeats and reaps are in every column), MariaDB counts every statement (Questions). SQLite, a file\n"+
		"inside rr, counts nothing. Cells: median / p95 in ms.\n\n",
		dashboardPipelines, st.monitorCalls, st.monitorWarmup, st.dashboardWindow, dashboardRunIn, dashboardPollEvery)
	b.WriteString("| page | ")
	sep := "|---|"
	for _, r := range rs {
		fmt.Fprintf(&b, "%s, %s queued | ", strings.TrimPrefix(r.target, "sql/"), count(r.queued))
		sep += "---|"
	}
	b.WriteString("target |\n" + sep + "---|\n")
	for _, p := range dashboardPages {
		fmt.Fprintf(&b, "| %s `%s` |", p.what, p.path)
		for _, r := range rs {
			t := r.pages[p.path]
			fmt.Fprintf(&b, " %s / %s |", ms(t.median), ms(t.p95))
		}
		b.WriteString(" < 100 ms |\n")
	}
	b.WriteString("\n| statements per second | ")
	for _, r := range rs {
		fmt.Fprintf(&b, "%s, %s queued | ", strings.TrimPrefix(r.target, "sql/"), count(r.queued))
	}
	b.WriteString("\n" + sep + "\n")
	rateRow := func(name string, v func(dashboardResult) float64) {
		fmt.Fprintf(&b, "| %s |", name)
		for _, r := range rs {
			if v(r) < 0 {
				b.WriteString(" — |")
				continue
			}
			fmt.Fprintf(&b, " %.1f |", v(r))
		}
		b.WriteString("\n")
	}
	rateRow("rr idle, dashboard closed", func(r dashboardResult) float64 { return r.idle })
	rateRow("overview open (polled every 5 s)", func(r dashboardResult) float64 { return r.overview })
	rateRow("pipeline page open", func(r dashboardResult) float64 { return r.pipeline })
	rateRow("added by the open overview", func(r dashboardResult) float64 {
		if r.idle < 0 {
			return -1
		}
		return r.overview - r.idle
	})
	return b.String()
}
