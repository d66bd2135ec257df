// churn.md: producer and workers together for a sustained period. Every job is inserted, claimed
// and deleted, so the tables churn as in production: PostgreSQL's dead rows, its autovacuum and
// index bloat, InnoDB's purge, SQLite's free pages. Nothing settles the database here (no VACUUM,
// ANALYZE or CHECKPOINT: autovacuum runs as configured); the jobs processed per minute must not
// fall by more than 10 % from the first minute to the last.

package main

import (
	"context"
	"database/sql"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net"
	"net/rpc"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jobsProto "github.com/roadrunner-server/api/v4/build/jobs/v1"
	goridgeRpc "github.com/roadrunner-server/goridge/v3/pkg/rpc"
)

// churnResult is one database's sustained run.
type churnResult struct {
	target    string
	processed []int     // jobs the workers received, per bucket
	pushed    []int     // jobs pushed, per bucket
	claimMs   []float64 // mean duration of each bucket's claims
	ackMs     []float64 // mean duration of each bucket's ack batches
	table     []string  // the churned table at the end of each bucket (tableState)
	cpu       []string  // each bucket's CPU by process group (cpuShare)
	backlog   int       // pushed but not yet received at the end
	warmup    time.Duration
	plan      string // PostgreSQL: the claim statement's generic plan
	planOK    bool   // it reads rr_jobs_claim, no sequential scan of rr_jobs
	tableStat string // PostgreSQL: rr_jobs' live and dead rows and its autovacuums
}

// runChurn runs the sustained load on each sql backend.
func runChurn(bin, root string, backends []func() target, st settings) []churnResult {
	var out []churnResult
	for _, next := range backends {
		tg := next()
		if !st.only.MatchString(tg.name) {
			dropDB(tg)
			continue
		}
		fmt.Fprintf(os.Stderr, "== churn for %s: %s\n", st.churnDuration, tg.name)
		r, err := churnRun(bin, root, tg, st)
		if err != nil {
			fail("%s: churn: %v", tg.name, err)
		}
		fmt.Fprintf(os.Stderr, "   processed per bucket %v, backlog at the end %d\n", r.processed, r.backlog)
		out = append(out, r)
	}
	return out
}

// churnRun serves p consuming from the start, with -churn-producers clients queueing -churn-batch
// jobs a call (PushBatch, or INSERTs straight into the table), each on its own connection, as fast
// as they can while fewer than -churn-backlog jobs wait and pausing while as many do. When the
// producers outrun the workers, the workers always have work and the queue stays at about that
// size; when they do not (PushBatch commits each job, and the workers share the machine), the run
// is push-bound and nothing waits. Either way the jobs processed per minute are the rate the node
// sustains. The periods start once the backlog first reaches its size (at most 10 s).
func churnRun(bin, root string, tg target, st settings) (churnResult, error) {
	r := churnResult{target: tg.name}
	defer dropDB(tg)
	dir, _ := os.MkdirTemp("", "bench")
	defer os.RemoveAll(dir)
	// The workers count the jobs: a line per job, as the other runs record, would grow a file by
	// over a gigabyte in ten minutes, and its writes would share the disk with the database's.
	st.countOnly = true
	rr, err := startRR(bin, root, dir, tg, st, st.workers, true)
	if err != nil {
		return r, err
	}
	defer rr.stop()

	var pushed, processed atomic.Int64
	var pushErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range st.churnProducers {
		produce, closeProducer, err := churnProducer(rr, tg, dir, st, w)
		if err != nil {
			return r, err
		}
		defer closeProducer()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i += st.churnBatch {
				select {
				case <-stop:
					return
				default:
				}
				if pushed.Load()-processed.Load() >= int64(st.churnBacklog) {
					time.Sleep(5 * time.Millisecond) // the backlog is full: wait for the workers
					continue
				}
				if err := produce(i); err != nil {
					pushErr.CompareAndSwap(nil, err)
					return
				}
				pushed.Add(int64(st.churnBatch))
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()

	poll := func() { processed.Store(int64(countedJobs(rr.counts))) }
	start := time.Now()
	for pushed.Load()-processed.Load() < int64(st.churnBacklog) && time.Since(start) < 10*time.Second {
		time.Sleep(100 * time.Millisecond)
		poll()
	}
	r.warmup = time.Since(start)
	start = time.Now()
	prevDone, prevPushed := processed.Load(), pushed.Load()
	prevClaims, prevAcks := claimAndAck(rr.metricsAddr)
	state := tableState(tg, dir)
	defer state.close()
	prevCPU, prevAt := readCPU(), time.Now()
	for b := 1; time.Duration(b)*st.churnBucket <= st.churnDuration; b++ {
		for time.Since(start) < time.Duration(b)*st.churnBucket {
			time.Sleep(100 * time.Millisecond)
			poll()
			if err, _ := pushErr.Load().(error); err != nil {
				return r, fmt.Errorf("push: %w", err)
			}
		}
		poll()
		d, p := processed.Load(), pushed.Load()
		claims, acks := claimAndAck(rr.metricsAddr)
		r.processed, r.pushed = append(r.processed, int(d-prevDone)), append(r.pushed, int(p-prevPushed))
		r.claimMs, r.ackMs = append(r.claimMs, claims.meanMsSince(prevClaims)), append(r.ackMs, acks.meanMsSince(prevAcks))
		r.table = append(r.table, state.read())
		cpu := readCPU()
		r.cpu = append(r.cpu, cpu.since(prevCPU, time.Since(prevAt)))
		prevCPU, prevAt = cpu, time.Now()
		fmt.Fprintf(os.Stderr, "   %s: %d processed, %d pushed, claim %.2f ms, ack batch %.2f ms, %s; CPU %s\n", time.Duration(b)*st.churnBucket,
			d-prevDone, p-prevPushed, r.claimMs[len(r.claimMs)-1], r.ackMs[len(r.ackMs)-1], r.table[len(r.table)-1], r.cpu[len(r.cpu)-1])
		prevDone, prevPushed, prevClaims, prevAcks = d, p, claims, acks
	}
	r.backlog = int(pushed.Load() - processed.Load())
	if tg.dialect == "postgres" {
		if r.plan, err = postgresClaimPlan(root, tg.dsn); err != nil {
			return r, fmt.Errorf("the claim's plan: %w", err)
		}
		r.planOK = planReadsClaimIndex(r.plan)
		r.tableStat = postgresTableStat(tg.dsn)
	}
	return r, nil
}

// churnProducer is producer w's call that queues -churn-batch jobs numbered from i: a PushBatch
// on its own RPC connection (-churn-producer rpc), or a multi-row INSERT straight into the jobs
// table, the transactional-enqueue contract (-churn-producer insert), one commit per call.
func churnProducer(rr *rrProcess, tg target, dir string, st settings, w int) (produce func(i int) error, closer func(), err error) {
	payload := `{"action":"ack"}`
	switch st.churnProducer {
	case "rpc":
		conn, err := net.Dial("tcp", rr.rpcAddr)
		if err != nil {
			return nil, nil, err
		}
		c := rpc.NewClientWithCodec(goridgeRpc.NewClientCodec(conn))
		return func(i int) error {
			req := &jobsProto.PushBatchRequest{}
			for k := i; k < i+st.churnBatch; k++ {
				req.Jobs = append(req.Jobs, job(fmt.Sprint("c", w, "-", k), payload))
			}
			return c.Call("jobs.PushBatch", req, &jobsProto.Empty{})
		}, func() { _ = c.Close() }, nil
	case "insert":
		dsn := tg.dsn
		if tg.dialect == "sqlite" {
			dsn = "file:" + filepath.Join(dir, "jobs.db") + "?_pragma=busy_timeout(10000)"
		}
		db, err := sql.Open(driverNames[tg.dialect], dsn)
		if err != nil {
			return nil, nil, err
		}
		stmt := insertColumns(tg.dialect, []string{"queue", "job_id", "name", "payload", "headers", "priority", "available_at", "created_at"}, st.churnBatch)
		return func(i int) error {
			now := time.Now().UnixMilli()
			args := make([]any, 0, 8*st.churnBatch)
			for k := i; k < i+st.churnBatch; k++ {
				args = append(args, "p", fmt.Sprint("c", w, "-", k), "Job", []byte(payload), "{}", 10, now, now)
			}
			_, err := db.Exec(stmt, args...)
			return err
		}, func() { _ = db.Close() }, nil
	}
	return nil, nil, fmt.Errorf("-churn-producer %q: use rpc or insert", st.churnProducer)
}

// postgresClaimPlan is the generic plan of the claim statement, as a prepared claim may run it
// after five executions: the statement is the store's own (store/postgres.go, read from the
// source of this tree), prepared and explained without running.
func postgresClaimPlan(root, dsn string) (string, error) {
	stmt, err := postgresClaimStatement(filepath.Join(root, "store"))
	if err != nil {
		return "", err
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return "", err
	}
	defer db.Close()
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	for _, s := range []string{"SET plan_cache_mode = force_generic_plan", "PREPARE rr_claim_explain AS " + stmt} {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			return "", fmt.Errorf("%s: %w", s, err)
		}
	}
	// Queue, limit, node, token, lease (ms): a generic plan does not look at them.
	rows, err := conn.QueryContext(ctx, "EXPLAIN EXECUTE rr_claim_explain('p', 100, 'node', 1, 60000)")
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var l string
		if err := rows.Scan(&l); err != nil {
			return "", err
		}
		lines = append(lines, l)
	}
	return "SET plan_cache_mode = force_generic_plan;\nPREPARE rr_claim_explain AS " + stmt + ";\nEXPLAIN EXECUTE rr_claim_explain('p', 100, 'node', 1, 60000);\n\n" +
		strings.Join(lines, "\n"), rows.Err()
}

// postgresTableStat is rr_jobs' live and dead rows and its vacuums, as PostgreSQL counts them.
func postgresTableStat(dsn string) string {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return err.Error()
	}
	defer db.Close()
	var live, dead, autovacuums, autoanalyzes int64
	var size string
	err = db.QueryRow(`SELECT n_live_tup, n_dead_tup, autovacuum_count, autoanalyze_count, pg_size_pretty(pg_total_relation_size(relid))
		FROM pg_stat_user_tables WHERE relname = 'rr_jobs'`).Scan(&live, &dead, &autovacuums, &autoanalyzes, &size)
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("rr_jobs at the end: %d live rows, %d dead, %d autovacuums and %d autoanalyzes during the run, %s with its indexes",
		live, dead, autovacuums, autoanalyzes, size)
}

// postgresClaimStatement reads the PostgreSQL claim statement from the store's source (the
// constant its dialect names as claimSQL) and renders it as the store does for PostgreSQL: {now}
// as the dialect's clock expression, each ? as $1, $2, ...
func postgresClaimStatement(storeDir string) (string, error) {
	entries, err := os.ReadDir(storeDir)
	if err != nil {
		return "", err
	}
	fset := token.NewFileSet()
	consts := map[string]ast.Expr{}
	var dialect *ast.CompositeLit
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(storeDir, e.Name()), nil, 0)
		if err != nil {
			return "", err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.ValueSpec:
				for i, name := range n.Names {
					if i < len(n.Values) {
						consts[name.Name] = n.Values[i]
					}
				}
			case *ast.CompositeLit:
				if field(n, "claimSQL") != nil && isIdent(field(n, "claimSQL"), "postgresClaimSQL") {
					dialect = n
				}
			}
			return true
		})
	}
	if dialect == nil {
		return "", fmt.Errorf("no dialect with claimSQL: postgresClaimSQL in %s", storeDir)
	}
	var eval func(ast.Expr) (string, error)
	eval = func(e ast.Expr) (string, error) {
		switch e := e.(type) {
		case *ast.BasicLit:
			if e.Kind == token.STRING {
				return strconv.Unquote(e.Value)
			}
		case *ast.Ident:
			if v, ok := consts[e.Name]; ok {
				return eval(v)
			}
		case *ast.ParenExpr:
			return eval(e.X)
		case *ast.BinaryExpr:
			if e.Op == token.ADD {
				x, err := eval(e.X)
				if err != nil {
					return "", err
				}
				y, err := eval(e.Y)
				return x + y, err
			}
		}
		return "", fmt.Errorf("%s: not a string constant", fset.Position(e.Pos()))
	}
	claim, err := eval(field(dialect, "claimSQL"))
	if err != nil {
		return "", err
	}
	now, err := eval(field(dialect, "now"))
	if err != nil {
		return "", err
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(claim); i++ {
		switch {
		case strings.HasPrefix(claim[i:], "{now}"):
			i += len("{now}") - 1
			b.WriteString(now)
		case claim[i] == '?':
			n++
			b.WriteString("$" + strconv.Itoa(n))
		default:
			b.WriteByte(claim[i])
		}
	}
	return b.String(), nil
}

// field is the value of key in a keyed composite literal (nil without it).
func field(lit *ast.CompositeLit, key string) ast.Expr {
	for _, el := range lit.Elts {
		if kv, ok := el.(*ast.KeyValueExpr); ok && isIdent(kv.Key, key) {
			return kv.Value
		}
	}
	return nil
}

func isIdent(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}

// churnReport is churn.md.
func churnReport(rs []churnResult, st settings) string {
	var b strings.Builder
	b.WriteString("# Sustained load: producer and workers together\n\n")
	b.WriteString(runHeader(st))
	producer := fmt.Sprintf("`jobs.PushBatch` calls of %d jobs", st.churnBatch)
	if st.churnProducer == "insert" {
		producer = fmt.Sprintf("multi-row INSERTs of %d jobs straight into the jobs table (the transactional-enqueue contract)", st.churnBatch)
	}
	producers := "one producer"
	if st.churnProducers > 1 {
		producers = fmt.Sprintf("%d producers (each on its own connection)", st.churnProducers)
	}
	fmt.Fprintf(&b, "Per database, on a fresh rr and database, for %s: pipeline p consumed from the start by the no-op PHP workers, and\n", st.churnDuration)
	fmt.Fprintf(&b, "%s queueing %s, as fast as they can while fewer than %s\n", producers, producer, count(st.churnBacklog))
	b.WriteString("jobs wait, pausing while as many do. When the producers outrun the workers, the workers never run dry and the queue keeps\n" +
		"about that size; when they do not (\"waiting at the end\" near 0: PushBatch commits each job, and the producers share the\n" +
		"machine with the workers), the run is push-bound. Either way the jobs processed per minute are what the node sustains\n" +
		"while every job is inserted, claimed and deleted. Nothing settles the database before or during the run: autovacuum\n" +
		"(PostgreSQL) and purge (InnoDB) run as configured, no VACUUM, ANALYZE or CHECKPOINT. Processed: jobs the workers received\n" +
		"(each worker keeps its count in a small file, rewritten every 100 jobs); the periods start once the backlog first reached its size (at most 10 s after the start).\n\n")
	per := float64(time.Minute) / float64(st.churnBucket)
	b.WriteString("Jobs processed per minute:\n\n| period |")
	sep := "|---|"
	for _, r := range rs {
		fmt.Fprintf(&b, " %s |", strings.TrimPrefix(r.target, "sql/"))
		sep += "---|"
	}
	b.WriteString("\n" + sep + "\n")
	rows := 0
	for _, r := range rs {
		rows = max(rows, len(r.processed))
	}
	for i := range rows {
		fmt.Fprintf(&b, "| %s–%s |", bucketEdge(time.Duration(i)*st.churnBucket), bucketEdge(time.Duration(i+1)*st.churnBucket))
		for _, r := range rs {
			if i < len(r.processed) {
				fmt.Fprintf(&b, " %.0f |", float64(r.processed[i])*per)
			} else {
				b.WriteString(" — |")
			}
		}
		b.WriteString("\n")
	}
	b.WriteString("\n| database | first period /min | last /min | change | met (≥ −10 %) | pushed /min (mean) | waiting at the end | warm-up |\n|---|---|---|---|---|---|---|---|\n")
	for _, r := range rs {
		if len(r.processed) == 0 {
			continue
		}
		first, last := float64(r.processed[0])*per, float64(r.processed[len(r.processed)-1])*per
		change := last/first - 1
		mark := "yes"
		if change < -0.10 {
			mark = "**no**"
		}
		total := 0
		for _, p := range r.pushed {
			total += p
		}
		fmt.Fprintf(&b, "| %s | %.0f | %.0f | %+.1f %% | %s | %.0f | %d | %s |\n", strings.TrimPrefix(r.target, "sql/"), first, last, change*100, mark,
			float64(total)/float64(len(r.pushed))*per, r.backlog, r.warmup.Round(100*time.Millisecond))
	}
	for _, r := range rs {
		fmt.Fprintf(&b, "\n## %s: each period\n\nThe mean claim and ack batch of the period (rr's histograms), the jobs table at its end, and the CPU\n"+
			"each group of processes took (%% of one core; the machine has %d).\n\n"+
			"| period | processed /min | claim ms | ack batch ms | table | CPU |\n|---|---|---|---|---|---|\n", r.target, runtime.NumCPU())
		for i := range r.processed {
			fmt.Fprintf(&b, "| %s–%s | %.0f | %.2f | %.2f | %s | %s |\n", bucketEdge(time.Duration(i)*st.churnBucket), bucketEdge(time.Duration(i+1)*st.churnBucket),
				float64(r.processed[i])*per, r.claimMs[i], r.ackMs[i], r.table[i], r.cpu[i])
		}
	}
	for _, r := range rs {
		if r.plan == "" {
			continue
		}
		verdict := "an index scan of rr_jobs_claim, no sequential scan of rr_jobs"
		if !r.planOK {
			verdict = "**not** an index scan of rr_jobs_claim alone"
		}
		fmt.Fprintf(&b, "\n## %s: the claim's generic plan after the run\n\n%s. %s.\n\n```\n%s\n```\n", r.target, verdict, r.tableStat, r.plan)
	}
	return b.String()
}

// bucketEdge writes 60s as 1m and 90s as 1m30s.
func bucketEdge(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
