package store

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// The storage layer's cost per operation on each database:
//
//	eval "$(scripts/db-servers.sh start)"; go test -run '^$' -bench . ./store
//
// The conformance suite's SQLite runs with synchronous=normal; the driver's default is full (an
// fsync per commit), measured as sqlite-full.
func forEachBackendB(b *testing.B, run func(b *testing.B, s Store)) {
	all := backends()
	all["sqlite-full"] = openSQLiteFull
	for _, name := range slices.Sorted(maps.Keys(all)) {
		b.Run(name, func(b *testing.B) { run(b, all[name](b)) })
	}
}

// openSQLiteFull opens a new SQLite store at the driver's default durability (synchronous: full).
func openSQLiteFull(t testing.TB) Store { return openSQLite(t, "full") }

func BenchmarkInsert(b *testing.B) {
	forEachBackendB(b, func(b *testing.B, s Store) {
		payload := []byte(`{"action":"ack"}`)
		// A push's context, as the jobs plugin gives it to the driver: with its timeout.
		push, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			if _, err := s.Insert(push, NewJob{JobID: fmt.Sprint(i), Queue: "bench", Name: "Job", Payload: payload, Priority: 10}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkClaimAndAck100 claims batches of 100 and acks them, from a backlog: one op is one job.
func BenchmarkClaimAndAck100(b *testing.B) { claimAndAck(b, false) }

// BenchmarkClaimDeliverAck100 is BenchmarkClaimAndAck100 with the delivery mark in between, the
// path of a job that runs longer than a batch: claim, mark delivered, ack. Jobs without a unique
// key, as most are: their mark is the plain one (only keyed jobs' marks free a key).
func BenchmarkClaimDeliverAck100(b *testing.B) { claimAndAck(b, true) }

// claimAndAck claims batches of 100 from a backlog refilled as it empties, marks them delivered
// when asked, and acks them: one op is one job.
func claimAndAck(b *testing.B, mark bool) {
	forEachBackendB(b, func(b *testing.B, s Store) {
		const batch = 100
		fill := func(n int) {
			for i := range n {
				if _, err := s.Insert(ctx, NewJob{JobID: fmt.Sprint(i), Queue: "bench", Name: "Job", Payload: []byte("x"), Priority: 10}); err != nil {
					b.Fatal(err)
				}
			}
		}
		fill(batch * 10)
		b.ResetTimer()
		done := 0
		for done < b.N {
			got, err := s.Claim(ctx, ClaimRequest{Queue: "bench", Node: "n", Limit: batch, Lease: time.Minute})
			if err != nil {
				b.Fatal(err)
			}
			if len(got) == 0 {
				b.StopTimer()
				fill(batch * 10)
				b.StartTimer()
				continue
			}
			fences := fencesOf(got)
			if mark {
				if _, err := s.Write(ctx, Batch{Delivered: fences}); err != nil {
					b.Fatal(err)
				}
			}
			if _, err := s.Write(ctx, Batch{Acks: fences}); err != nil {
				b.Fatal(err)
			}
			done += len(got)
		}
	})
}

// BenchmarkClaimAndAckJobIDs drains a backlog whose jobs carry the pusher's ids as the PHP client
// makes them (UUID v4: random) and, beside it, ids that grow with each push. Every ack deletes its
// job's entry from the (queue, job_id) index: random ids put those entries on random pages of it,
// and SQLite's WAL writes each page a commit touches whole. One op is one job: claims of 500, acks
// of 100, from 30,000 jobs queued in front of 10,000 more.
func BenchmarkClaimAndAckJobIDs(b *testing.B) {
	ids := map[string]func(i int) string{
		"sequential": func(i int) string { return fmt.Sprintf("job-%09d", i) },
		"uuid4":      func(int) string { return uuid.NewString() }, // v4, as Ramsey's uuid4() in the PHP client
	}
	for _, kind := range []string{"sequential", "uuid4"} {
		b.Run(kind, func(b *testing.B) {
			forEachBackendB(b, func(b *testing.B, s Store) {
				next := 0
				fill := func(n int) {
					jobs := make([]NewJob, 0, 1000)
					for range n {
						jobs = append(jobs, NewJob{JobID: ids[kind](next), Queue: "bench", Name: "Job", Payload: []byte(`{"action":"ack"}`), Priority: 10})
						next++
						if len(jobs) == cap(jobs) {
							if _, err := s.InsertBatch(ctx, jobs); err != nil {
								b.Fatal(err)
							}
							jobs = jobs[:0]
						}
					}
				}
				fill(40_000)
				b.ResetTimer()
				for done := 0; done < b.N; {
					got, err := s.Claim(ctx, ClaimRequest{Queue: "bench", Node: "n", Limit: min(500, b.N-done), Lease: time.Minute})
					if err != nil {
						b.Fatal(err)
					}
					if len(got) == 0 {
						b.StopTimer()
						fill(30_000)
						b.StartTimer()
						continue
					}
					for batch := range slices.Chunk(got, 100) {
						fences := fencesOf(batch)
						if _, err := s.Write(ctx, Batch{Acks: fences}); err != nil {
							b.Fatal(err)
						}
					}
					done += len(got)
				}
			})
		})
	}
}

// BenchmarkPushDuringDrain times single pushes to one queue while a drain of 60,000 jobs runs on
// another, with a backlog of 0 or 1M more waiting behind them: claims of 500, acks of 100, UUID
// job ids as the PHP client gives them. The pushes, one every 2 ms, wait for whatever holds the
// writer then (on SQLite a claim, an ack batch and the sweep it may run). It reports the pushes'
// p50, p99 and max, and the claims' and ack batches' own times, in milliseconds; one op is one
// whole drain.
func BenchmarkPushDuringDrain(b *testing.B) {
	const drain = 60_000
	for _, backlog := range []int{0, 1_000_000} {
		b.Run(fmt.Sprintf("backlog-%d", backlog), func(b *testing.B) {
			forEachBackendB(b, func(b *testing.B, s Store) {
				for b.Loop() {
					b.StopTimer()
					jobs := make([]NewJob, 0, 1000)
					for range (drain + backlog) / cap(jobs) {
						jobs = jobs[:0]
						for range cap(jobs) {
							jobs = append(jobs, NewJob{JobID: uuid.NewString(), Queue: "drain", Name: "Job", Payload: []byte(`{"action":"ack"}`), Priority: 10})
						}
						if _, err := s.InsertBatch(ctx, jobs); err != nil {
							b.Fatal(err)
						}
					}
					b.StartTimer()
					claims, acks, pushes := pushDuringDrain(b, s, drain)
					for name, took := range map[string][]time.Duration{"push": pushes, "claim": claims, "ack": acks} {
						slices.Sort(took)
						ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
						b.ReportMetric(ms(took[len(took)/2]), name+"-p50-ms")
						b.ReportMetric(ms(took[len(took)*99/100]), name+"-p99-ms")
						b.ReportMetric(ms(took[len(took)-1]), name+"-max-ms")
					}
				}
			})
		})
	}
}

// pushDuringDrain claims and acks n jobs of queue drain while it pushes to queue push every 2 ms,
// and returns how long each claim, ack batch and push took.
func pushDuringDrain(b *testing.B, s Store, n int) (claims, acks, pushes []time.Duration) {
	drained := make(chan error, 1)
	go func() {
		for done := 0; done < n; {
			start := time.Now()
			got, err := s.Claim(ctx, ClaimRequest{Queue: "drain", Node: "n", Limit: min(500, n-done), Lease: time.Minute})
			claims = append(claims, time.Since(start))
			if err == nil && len(got) == 0 {
				err = fmt.Errorf("the queue ran dry after %d of %d jobs", done, n)
			}
			if err != nil {
				drained <- err
				return
			}
			for batch := range slices.Chunk(got, 100) {
				start := time.Now()
				if _, err := s.Write(ctx, Batch{Acks: fencesOf(batch)}); err != nil {
					drained <- err
					return
				}
				acks = append(acks, time.Since(start))
			}
			done += len(got)
		}
		drained <- nil
	}()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-drained:
			if err != nil {
				b.Fatal(err)
			}
			return claims, acks, pushes
		case <-tick.C:
			start := time.Now()
			if _, err := s.Insert(ctx, NewJob{JobID: uuid.NewString(), Queue: "push", Name: "Job", Payload: []byte(`{}`)}); err != nil {
				b.Fatal(err)
			}
			pushes = append(pushes, time.Since(start))
		}
	}
}

// BenchmarkGroupClaim claims batches of 50 (a pipeline's default refill) from a grouped backlog
// and acks them: one op is one claim. The backlog is written straight into the table, its groups
// interleaved; sizes are ready jobs and groups.
func BenchmarkGroupClaim(b *testing.B) {
	for _, size := range [][2]int{{10_000, 10}, {1_000_000, 10_000}} {
		b.Run(fmt.Sprintf("%d-in-%d", size[0], size[1]), func(b *testing.B) {
			forEachBackendB(b, func(b *testing.B, s Store) {
				// A queue per size: what earlier runs left in the index (dead entries awaiting vacuum
				// or purge) stays out of the way.
				queue := fmt.Sprint("bench-", size[1])
				seedGroups(b, s.(*sqlStore), queue, size[0], size[1])
				b.ResetTimer()
				for b.Loop() {
					got, err := s.Claim(ctx, ClaimRequest{Queue: queue, Node: "n", Limit: 50, Lease: time.Minute, Groups: true})
					if err != nil {
						b.Fatal(err)
					}
					if len(got) != 50 {
						b.Fatalf("claimed %d of 50", len(got))
					}
					fences := fencesOf(got)
					if _, err := s.Write(ctx, Batch{Acks: fences}); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// seedGroups writes n ready jobs of a queue round robin over groups, 500 rows a statement.
func seedGroups(b *testing.B, s *sqlStore, queue string, n, groups int) {
	const rowsPerInsert = 500
	now := time.Now().UnixMilli() - 1000
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	for from := 0; from < n; from += rowsPerInsert {
		rows := min(rowsPerInsert, n-from)
		args := make([]any, 0, rows*9)
		for i := from; i < from+rows; i++ {
			args = append(args, queue, fmt.Sprint(i), "Job", []byte("x"), "{}", 10, now, now, fmt.Sprint("t", i%groups))
		}
		values := strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?, ?, ?, ?, ?), ", rows), ", ")
		if _, err := s.exec(ctx, tx, `INSERT INTO rr_jobs (queue, job_id, name, payload, headers, priority, available_at, created_at, grp) VALUES `+values, args...); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	// VACUUM on PostgreSQL: the dead index entries of earlier runs would sit between the groups.
	// None on SQLite, as in production: its statistics (STAT4) would make it plan every statement
	// again once its arguments are bound.
	analyze := map[string]string{"postgres": "VACUUM ANALYZE rr_jobs", "mysql": "ANALYZE TABLE rr_jobs"}[s.Dialect()]
	if analyze == "" {
		return
	}
	if _, err := s.w.ExecContext(ctx, analyze); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkCountGroupsPage counts a group_by queue of 1M jobs in 10,000 groups (a tenth delayed, a
// thousand reserved) a page of 100 groups at a time, walking the pages round and round: one op is
// one page. whole-queue is the count as it was before pages, every group of the queue in one
// statement (one op: the whole answer). The plans of both are logged.
func BenchmarkCountGroupsPage(b *testing.B) {
	const jobs, groups, page = 1_000_000, 10_000, 100
	forEachBackendB(b, func(b *testing.B, s Store) {
		st := s.(*sqlStore)
		queue := "bench-counts"
		seedGroups(b, st, queue, jobs, groups)
		// A tenth of the jobs delayed, one in a thousand at a worker.
		for _, q := range []string{
			`UPDATE rr_jobs SET available_at = available_at + 3600000 WHERE queue = ? AND id % 10 = 1`,
			`UPDATE rr_jobs SET reserved_by = 'n', claim_token = 1, reserved_at = available_at, lease_until = available_at + 3600000
				WHERE queue = ? AND id % 1000 = 2`,
		} {
			if _, err := st.exec(ctx, st.w, q, queue); err != nil {
				b.Fatal(err)
			}
		}
		if analyze := map[string]string{"postgres": "VACUUM ANALYZE rr_jobs", "mysql": "ANALYZE TABLE rr_jobs"}[st.Dialect()]; analyze != "" {
			if _, err := st.w.ExecContext(ctx, analyze); err != nil {
				b.Fatal(err)
			}
		}
		text, err := explainGroupPage(st, queue, "t9", page)
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("plans of a page:\n%s", text)

		b.Run("page-100", func(b *testing.B) {
			after, seen := "", 0
			for b.Loop() {
				got, err := s.CountGroups(ctx, queue, after, page)
				if err != nil {
					b.Fatal(err)
				}
				seen += len(got)
				after = ""
				if len(got) == page {
					after = got[len(got)-1].Value
				} else if seen != groups {
					b.Fatalf("the pages listed %d groups, want %d", seen, groups)
				}
				if after == "" {
					seen = 0
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/page")
		})
		b.Run("whole-queue", func(b *testing.B) {
			for b.Loop() {
				rows, err := st.query(ctx, st.r, wholeQueueGroupCountsSQL, queue, queue)
				if err != nil {
					b.Fatal(err)
				}
				n := 0
				for rows.Next() {
					n++
				}
				if err := rows.Close(); err != nil || n != groups {
					b.Fatalf("counted %d groups (%v), want %d", n, err, groups)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/call")
		})
	})
}

// wholeQueueGroupCountsSQL is how a group_by queue was counted before pages: every row of the
// queue grouped at once. Arguments: queue, queue.
const wholeQueueGroupCountsSQL = `SELECT g, SUM(n_ready), SUM(n_delayed), SUM(n_reserved), MAX(target) FROM (
		SELECT grp AS g,
			CASE WHEN reserved_by IS NULL AND available_at <= {now} THEN 1 ELSE 0 END AS n_ready,
			CASE WHEN reserved_by IS NULL AND available_at > {now} THEN 1 ELSE 0 END AS n_delayed,
			CASE WHEN reserved_by IS NOT NULL THEN 1 ELSE 0 END AS n_reserved,
			'' AS target
		FROM rr_jobs WHERE queue = ? AND grp IS NOT NULL
		UNION ALL
		SELECT grp, 0, 0, 0, target_queue FROM rr_overflow WHERE queue = ?) t
	GROUP BY g ORDER BY g`

// BenchmarkInsertBatch inserts batches of 100 and 1,000 jobs through InsertBatch, one op being one
// job, with statements of 1 (a prepared one-row INSERT per job), 20 and 500 rows: what each
// dialect's rowsPerInsert was chosen from.
func BenchmarkInsertBatch(b *testing.B) {
	payload := []byte(`{"action":"ack"}`)
	batch := func(round, size int) []NewJob {
		jobs := make([]NewJob, size)
		for i := range jobs {
			jobs[i] = NewJob{JobID: fmt.Sprint(round, "-", i), Queue: "bench", Name: "Job", Payload: payload, Priority: 10,
				Headers: map[string][]string{"traceparent": {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}}
		}
		return jobs
	}
	forEachBackendB(b, func(b *testing.B, s Store) {
		for _, size := range []int{100, 1000} {
			for _, rows := range []int{1, 20, 500} {
				b.Run(fmt.Sprintf("batch-%d/rows-%d", size, rows), func(b *testing.B) {
					st := s.(*sqlStore)
					defer func(was int) { st.d.rowsPerInsert = was }(st.d.rowsPerInsert)
					st.d.rowsPerInsert = rows
					for round := 0; b.Loop(); round++ {
						if _, err := s.InsertBatch(ctx, batch(round, size)); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "jobs/s")
				})
			}
		}
	})
}

// BenchmarkDurableCommitFloor is what one durable commit costs on this disk, the jobs schema's
// and without it: an fsync of an 8 KiB overwrite (the flush the bench's Push ceiling counts), a
// one-row INSERT into a one-column table of an SQLite file opened as the driver opens its own
// (WAL, synchronous=full), and the driver's own insert at synchronous: full.
//
// Each runs back to back and after 200 µs idle before every commit (timer stopped), as a push's
// commit follows the idle wait for its RPC: on a VM the flush that starts from an idle CPU can cost
// more than one in a tight loop (on the bench's VM 245 against 150 µs, 2026-12-03), and the bench's
// ceiling counts the tight loop's.
func BenchmarkDurableCommitFloor(b *testing.B) {
	payload := []byte(`{"action":"ack"}`)
	commits := []struct {
		name string
		open func(b *testing.B) func() error
	}{
		{"fsync-8KiB", func(b *testing.B) func() error {
			f, err := os.Create(filepath.Join(b.TempDir(), "flush"))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = f.Close() })
			page := make([]byte, 8192)
			return func() error {
				if _, err := f.WriteAt(page, 0); err != nil {
					return err
				}
				return f.Sync()
			}
		}},
		{"sqlite-one-column", func(b *testing.B) func() error {
			db, err := sql.Open("sqlite", filepath.Join(b.TempDir(), "floor.db")+"?_pragma=journal_mode(WAL)&_pragma=synchronous(full)")
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = db.Close() })
			db.SetMaxOpenConns(1)
			if _, err := db.Exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB NOT NULL)`); err != nil {
				b.Fatal(err)
			}
			insert, err := db.Prepare(`INSERT INTO t (v) VALUES (?)`)
			if err != nil {
				b.Fatal(err)
			}
			return func() error { _, err := insert.Exec(payload); return err }
		}},
		{"driver-insert", func(b *testing.B) func() error {
			s := openSQLiteFull(b)
			// A push's context, as the jobs plugin gives it to the driver: with its timeout.
			push, cancel := context.WithTimeout(ctx, time.Hour)
			b.Cleanup(cancel)
			return func() error {
				_, err := s.Insert(push, NewJob{JobID: uuid.NewString(), Queue: "bench", Name: "Job", Payload: payload, Priority: 10})
				return err
			}
		}},
	}
	for _, idle := range []time.Duration{0, 200 * time.Microsecond} {
		for _, c := range commits {
			name := c.name + "/back-to-back"
			if idle > 0 {
				name = fmt.Sprintf("%s/after-%dus-idle", c.name, idle.Microseconds())
			}
			b.Run(name, func(b *testing.B) {
				commit := c.open(b)
				for b.Loop() {
					if idle > 0 {
						b.StopTimer()
						time.Sleep(idle)
						b.StartTimer()
					}
					if err := commit(); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
