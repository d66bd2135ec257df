package store

// Cases of the delivery promise that depend on how statements interleave with other sessions.

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// rowCount counts the rows of a table.
func rowCount(t *testing.T, s Store, table string) int64 {
	t.Helper()
	var n int64
	if err := s.(*sqlStore).r.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRetryAllRetriesWhatItDeletes: sql.FailedRetry {all: true} while jobs keep failing: every job
// is in the queue or in the failed jobs afterwards, none is deleted without being retried.
func TestRetryAllRetriesWhatItDeletes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		const total = 200
		for i := range total {
			mustInsert(t, s, NewJob{JobID: fmt.Sprint(i)})
		}
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { // jobs failing all the time
			defer wg.Done()
			defer close(done)
			for range 1500 {
				got, err := claim(s, "q", "n", 1)
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) == 0 {
					continue
				}
				if _, err := s.Fail(ctx, got[0].Fence, "boom", 1); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		retried := 0
		for {
			select {
			case <-done:
				wg.Wait()
				jobs, failed := rowCount(t, s, "rr_jobs"), rowCount(t, s, "rr_failed_jobs")
				t.Logf("%d retry-all calls; %d jobs queued, %d failed", retried, jobs, failed)
				if jobs+failed != total {
					t.Fatalf("%d jobs queued and %d failed: %d of %d jobs were lost", jobs, failed, total-jobs-failed, total)
				}
				return
			default:
			}
			if _, err := s.RetryFailed(ctx, Selection{Queue: "q", All: true}); err != nil {
				t.Fatal(err)
			}
			retried++
		}
	})
}

// TestFailIsAtomicAgainstARelease: a job released by another session while Fail runs (its node was
// declared dead, say) ends in exactly one place: Fail does nothing and reports the claim lost.
func TestFailIsAtomicAgainstARelease(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		if s.Dialect() == "sqlite" {
			t.Skip("SQLite runs one write transaction at a time: nothing can interleave with Fail")
		}
		mustInsert(t, s, NewJob{JobID: "a"})
		got, _ := claim(s, "q", "n", 1)
		db := s.(*sqlStore).w
		other, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = other.Rollback() }()
		if _, err := other.ExecContext(ctx, s.(*sqlStore).q(`SELECT id FROM rr_jobs WHERE id = ? FOR UPDATE`), got[0].Row); err != nil {
			t.Fatal(err)
		}
		type result struct {
			ok  bool
			err error
		}
		failed := make(chan result, 1)
		go func() {
			ok, err := s.Fail(ctx, got[0].Fence, "boom", 1)
			failed <- result{ok, err}
		}()
		waitForLockWait(t, s)
		// The other session releases the job (as a reaper does) and commits while Fail waits.
		if _, err := other.ExecContext(ctx, s.(*sqlStore).q(`UPDATE rr_jobs SET reserved_by = NULL, claim_token = NULL WHERE id = ?`), got[0].Row); err != nil {
			t.Fatal(err)
		}
		if err := other.Commit(); err != nil {
			t.Fatal(err)
		}
		r := <-failed
		jobs, inFailed := rowCount(t, s, "rr_jobs"), rowCount(t, s, "rr_failed_jobs")
		if r.ok || jobs != 1 || inFailed != 0 {
			t.Fatalf("Fail = %v, %v; %d queued and %d failed: want the job queued once and Fail to report the claim lost", r.ok, r.err, jobs, inFailed)
		}
	})
}

// waitForLockWait waits until a session of the store's database waits for a row lock.
func waitForLockWait(t *testing.T, s Store) {
	t.Helper()
	query := map[string]string{
		"postgres": `SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`,
		"mysql":    `SELECT COUNT(*) FROM information_schema.innodb_trx WHERE trx_state = 'LOCK WAIT'`,
	}[s.Dialect()]
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		if err := s.(*sqlStore).r.QueryRowContext(ctx, query).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no statement waits for the row lock")
		}
		// InnoDB refreshes what information_schema shows of transactions only when it was last read
		// more than 0.1 s ago: polling faster would read a stale view for ever.
		time.Sleep(150 * time.Millisecond)
	}
}

// TestMySQLStatementsDoNotTakeGapLocks: a Flush in progress does not block pushes. The
// connection runs at READ COMMITTED, so a range delete takes no gap or next-key locks.
func TestMySQLStatementsDoNotTakeGapLocks(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		if s.Dialect() != "mysql" {
			t.Skip("gap locks are InnoDB's")
		}
		for i := range 5 {
			mustInsert(t, s, NewJob{JobID: fmt.Sprint(i)})
		}
		// A Flush-like range delete in a transaction of the store's own connection settings.
		tx, err := s.(*sqlStore).w.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = tx.Rollback() }()
		if _, err := tx.ExecContext(ctx, `DELETE FROM rr_jobs WHERE queue = 'q' AND reserved_by IS NULL`); err != nil {
			t.Fatal(err)
		}
		pushCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		if _, err := s.Insert(pushCtx, NewJob{JobID: "during", Queue: "q", Name: "Job"}); err != nil {
			t.Fatalf("a push waited for the range delete of another transaction: %v", err)
		}
	})
}

// TestNodesWithSkewedClocks: two nodes whose clocks are two minutes apart share a PostgreSQL or
// MySQL database. Neither reaps the other, the leases of each hold, and a job pushed by either is
// ready for the other at once: liveness, leases and due times are the database's clock.
func TestNodesWithSkewedClocks(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		if s.Dialect() == "sqlite" {
			t.Skip("SQLite is a file of one host: its clock is the host's")
		}
		node := func(skew time.Duration) Store {
			clock := func() time.Time { return time.Now().Add(skew) }
			o := ServerOptions{MaxOpenConns: 4, Migrate: true, Clock: clock}
			var (
				other Store
				err   error
			)
			if s.Dialect() == "postgres" {
				o.DSN = serverDSN(t, "SQLJOBS_POSTGRES_DSN")
				other, err = OpenPostgres(ctx, o)
			} else {
				o.DSN = serverDSN(t, "SQLJOBS_MYSQL_DSN")
				other, err = OpenMySQL(ctx, o)
			}
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = other.Close() })
			return other
		}
		nodes := map[string]Store{"ahead": node(time.Minute), "behind": node(-time.Minute)}
		for id, n := range nodes {
			if err := n.RegisterNode(ctx, Node{ID: id, Host: "h-" + id, PID: 1}); err != nil {
				t.Fatal(err)
			}
			skew, err := n.ClockSkew(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if want := map[string]time.Duration{"ahead": -time.Minute, "behind": time.Minute}[id]; skew < want-5*time.Second || skew > want+5*time.Second {
				t.Errorf("node %s: clock skew %s, want about %s", id, skew, want)
			}
		}
		mustInsert(t, nodes["ahead"], NewJob{JobID: "pushed-ahead"})
		got, err := nodes["behind"].Claim(ctx, ClaimRequest{Queue: "q", Node: "behind", Limit: 1, Lease: 10 * time.Second})
		if err != nil || len(got) != 1 {
			t.Fatalf("the node behind claimed %d jobs (%v): a job pushed by the node ahead must be ready at once", len(got), err)
		}
		mustInsert(t, nodes["behind"], NewJob{JobID: "delayed-behind", Delay: 30 * time.Second})
		if early, _ := nodes["ahead"].Claim(ctx, ClaimRequest{Queue: "q", Node: "ahead", Limit: 1, Lease: time.Minute}); len(early) != 0 {
			t.Fatal("the node ahead claimed a job pushed with a 30s delay at once")
		}
		for range 3 {
			for id, n := range nodes {
				if ok, err := n.Heartbeat(ctx, id); err != nil || !ok {
					t.Fatalf("node %s was declared dead by the other (%v)", id, err)
				}
				if _, err := n.Reap(ctx, 30*time.Second, nil); err != nil {
					t.Fatal(err)
				}
			}
		}
		if n, _ := ack(nodes["behind"], got[0].Fence); n != 1 {
			t.Fatal("the lease of the node behind was taken by the reap of the node ahead")
		}
	})
}
