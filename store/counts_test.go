package store

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// truth counts a queue's rows the slow way, for comparison with the maintained counts.
func truth(t testing.TB, s Store, queue string) (Counts, int64) {
	t.Helper()
	st := s.(*sqlStore)
	var c Counts
	var failed int64
	err := st.queryRow(ctx, st.w, `SELECT
			COALESCE(SUM(CASE WHEN reserved_by IS NULL AND available_at <= {now} THEN 1 ELSE 0 END), 0),
			COALESCE(SUM(CASE WHEN reserved_by IS NULL AND available_at > {now} THEN 1 ELSE 0 END), 0),
			COALESCE(SUM(CASE WHEN {held} THEN 1 ELSE 0 END), 0)
		FROM rr_jobs WHERE queue = ? AND {live}`, queue).Scan(&c.Ready, &c.Delayed, &c.Reserved)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.queryRow(ctx, st.w, `SELECT COUNT(*) FROM rr_failed_jobs WHERE queue = ?`, queue).Scan(&failed); err != nil {
		t.Fatal(err)
	}
	return c, failed
}

// exact fails unless the maintained counts of every queue equal the rows.
func exact(t *testing.T, s Store, step string, queues ...string) {
	t.Helper()
	for _, q := range queues {
		want, wantFailed := truth(t, s, q)
		got, err := s.Stats(ctx, q)
		if err != nil {
			t.Fatalf("%s: stats of %s: %v", step, q, err)
		}
		if got.Counts != want || got.Failed != wantFailed {
			t.Fatalf("%s: queue %s counts %+v failed %d, the rows say %+v failed %d", step, q, got.Counts, got.Failed, want, wantFailed)
		}
	}
}

// TestCountsOfAJobHeldInAFutureBucket: a reserved job stays counted in its bucket, and one whose
// bucket's second has not begun (due within the current second when claimed, or written reserved
// by hand with its due time ahead) is reserved, not delayed.
func TestCountsOfAJobHeldInAFutureBucket(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		st := s.(*sqlStore)
		if _, err := st.exec(ctx, st.w, `INSERT INTO rr_jobs (queue, job_id, name, payload, headers, priority, available_at, created_at,
				reserved_by, claim_token, reserved_at, lease_until)
			VALUES ('q', 'held', 'Job', '', '{}', 10, {now} + 1500, {now}, 'n', 1, {now}, {now} + 60000)`); err != nil {
			t.Fatal(err)
		}
		mustInsert(t, s, NewJob{JobID: "later", Delay: time.Hour})
		mustInsert(t, s, NewJob{JobID: "now"})
		exact(t, s, "a job held before its second, a delayed one and a ready one", "q")
		got, err := s.Stats(ctx, "q")
		if err != nil || got.Counts != (Counts{Ready: 1, Delayed: 1, Reserved: 1}) {
			t.Fatalf("stats %+v, %v; want 1 ready, 1 delayed, 1 reserved", got.Counts, err)
		}
		held, err := claim(s, "q", "n2", 10)
		if err != nil || len(held) != 1 {
			t.Fatalf("claimed %d, %v; want the ready job", len(held), err)
		}
		exact(t, s, "the ready job claimed too", "q")
	})
}

// TestCountsSurviveTheMigrationOffTheClaims: migration 0007 counts again what 0006 counted,
// reserved and failed jobs included.
func TestCountsSurviveTheMigrationOffTheClaims(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		st := s.(*sqlStore)
		dropSchema(t, st)
		if err := st.migrateUpTo(ctx, 6); err != nil {
			t.Fatal(err)
		}
		// Written by hand, as the driver of that schema wrote them: this build's statements need
		// the columns of later migrations.
		for _, st2 := range []string{
			`INSERT INTO rr_jobs (queue, job_id, name, payload, headers, priority, available_at, created_at)
				VALUES ('q', 'r0', 'Job', '', '{}', 10, {now}, {now}), ('q', 'r1', 'Job', '', '{}', 10, {now}, {now}),
				('q', 'r2', 'Job', '', '{}', 10, {now}, {now}), ('q', 'r3', 'Job', '', '{}', 10, {now}, {now}),
				('q', 'd', 'Job', '', '{}', 10, {now} + 3600000, {now})`,
			`UPDATE rr_jobs SET reserved_by = 'n', claim_token = 1, reserved_at = {now}, lease_until = {now} + 60000 WHERE job_id IN ('r0', 'r1')`,
			`INSERT INTO rr_failed_jobs (queue, job_id, name, payload, headers, priority, attempts, error, failed_at)
				SELECT queue, job_id, name, payload, headers, priority, 1, 'boom', {now} FROM rr_jobs WHERE job_id = 'r0'`,
			`DELETE FROM rr_jobs WHERE job_id = 'r0'`,
		} {
			if _, err := st.exec(ctx, st.w, st2); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.migrate(ctx); err != nil {
			t.Fatalf("upgrade: %v", err)
		}
		exact(t, s, "after migration 0007", "q")
		c, _ := s.Stats(ctx, "q")
		if c.Counts != (Counts{Ready: 2, Delayed: 1, Reserved: 1}) || c.Failed != 1 {
			t.Fatalf("stats %+v failed %d; want 2 ready, 1 delayed, 1 reserved, 1 failed", c.Counts, c.Failed)
		}
	})
}

// TestCountsStayExact walks a job through every write the driver, an operator and an application
// make, and checks after each that the counts read from rr_counts equal the rows.
func TestCountsStayExact(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		st := s.(*sqlStore)
		exact(t, s, "empty", "q", "q2")
		for i := range 6 {
			mustInsert(t, s, NewJob{JobID: fmt.Sprint("r", i), Headers: map[string][]string{"tenant": {[]string{"acme", "globex"}[i%2]}}})
		}
		for i := range 3 {
			mustInsert(t, s, NewJob{JobID: fmt.Sprint("d", i), Delay: time.Duration(i+1) * time.Hour})
		}
		exact(t, s, "pushed", "q")
		// An application's transactional enqueue (examples/enqueue.php): a plain INSERT.
		if _, err := st.exec(ctx, st.w, `INSERT INTO rr_jobs (queue, job_id, name, payload, headers, priority, available_at, created_at)
			VALUES ('q', 'app', 'Job', '', '{}', 10, {now}, {now})`); err != nil {
			t.Fatal(err)
		}
		exact(t, s, "inserted by hand", "q")
		got, err := claim(s, "q", "n1", 4)
		if err != nil || len(got) != 4 {
			t.Fatalf("claim 4: %d, %v", len(got), err)
		}
		exact(t, s, "claimed", "q")
		if _, err := s.Write(ctx, Batch{Acks: []Fence{got[0].Fence}, Delivered: []Fence{got[1].Fence}}); err != nil {
			t.Fatal(err)
		}
		if n, _ := s.Extend(ctx, []Fence{got[1].Fence}, time.Minute); n != 1 {
			t.Fatal("extend")
		}
		exact(t, s, "acked, delivered, extended", "q")
		if ok, _ := s.Requeue(ctx, got[1].Fence, Requeue{}); !ok {
			t.Fatal("requeue now")
		}
		exact(t, s, "requeued without delay (ready at once)", "q")
		if ok, _ := s.Requeue(ctx, got[2].Fence, Requeue{Delay: time.Hour, Failed: true, LastError: "x"}); !ok {
			t.Fatal("requeue later")
		}
		exact(t, s, "requeued with a delay", "q")
		if ok, _ := s.Fail(ctx, got[3].Fence, "boom", 1); !ok {
			t.Fatal("fail")
		}
		exact(t, s, "failed", "q")
		if n, err := s.RetryFailed(ctx, Selection{Queue: "q", All: true}); err != nil || n != 1 {
			t.Fatalf("retry: %d, %v", n, err)
		}
		exact(t, s, "retried", "q")
		prio := int64(1)
		if n, err := s.Move(ctx, "q", "q2", &prio, Group{Header: "tenant", Value: "globex"}, ""); err != nil || n == 0 {
			t.Fatalf("move: %d, %v", n, err)
		}
		exact(t, s, "moved", "q", "q2")
		held, _ := claim(s, "q2", "n2", 10)
		if len(held) == 0 {
			t.Fatal("nothing to claim in q2")
		}
		if n, _ := s.Release(ctx, []Fence{held[0].Fence}); n != 1 {
			t.Fatal("release")
		}
		exact(t, s, "claimed and released", "q", "q2")
		if err := s.RegisterNode(ctx, Node{ID: "n2", Host: "h", PID: 1}); err != nil {
			t.Fatal(err)
		}
		elapse(t, s, 90*time.Minute) // the first delayed job falls due, n2's leases run out
		exact(t, s, "time passed", "q", "q2")
		if _, err := s.Reap(ctx, time.Hour, []string{"n2"}); err != nil {
			t.Fatal(err)
		}
		exact(t, s, "reaped", "q", "q2")
		if n, err := s.FoldCounts(ctx); err != nil || n == 0 {
			t.Fatalf("fold: %d rows, %v; want the passed buckets folded", n, err)
		}
		exact(t, s, "folded", "q", "q2")
		// A job counted in a bucket that was folded away leaves: its decrement must still add up.
		due, _ := claim(s, "q", "n3", 100)
		exact(t, s, "claimed after the fold", "q")
		for _, j := range due {
			if _, err := ack(s, j.Fence); err != nil {
				t.Fatal(err)
			}
		}
		exact(t, s, "acked after the fold", "q")
		if _, err := s.FoldCounts(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Flush(ctx, "q", Group{}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.DeleteFailed(ctx, Selection{Queue: "q", All: true}); err != nil {
			t.Fatal(err)
		}
		exact(t, s, "flushed", "q", "q2")
		if _, err := s.RemoveNode(ctx, "n3"); err != nil {
			t.Fatal(err)
		}
		exact(t, s, "node removed", "q", "q2")
	})
}

// TestCountsStayExactUnderConcurrentWriters: pushes, claims, acks and requeues from several
// connections at once (several stripes on PostgreSQL and MySQL) add up to the rows.
func TestCountsStayExactUnderConcurrentWriters(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		const writers, rounds = 4, 40
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				node := fmt.Sprint("n", w)
				for r := range rounds {
					for k := range 3 {
						if _, err := s.Insert(ctx, NewJob{Queue: "q", JobID: fmt.Sprint(w, "-", r, "-", k), Name: "Job"}); err != nil {
							errs <- err
							return
						}
					}
					got, err := claim(s, "q", node, 2)
					if err != nil {
						errs <- err
						return
					}
					for i, j := range got {
						if i == 0 {
							_, err = ack(s, j.Fence)
						} else {
							_, err = s.Requeue(ctx, j.Fence, Requeue{})
						}
						if err != nil {
							errs <- err
							return
						}
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		exact(t, s, "after concurrent writers", "q")
		if c, _ := s.Counts(ctx, "q"); c.Ready+c.Delayed+c.Reserved == 0 {
			t.Fatal("nothing left to count: the test proved nothing")
		}
	})
}

// TestFlushAndMoveRunInBatches: more jobs than one batch are all moved, then all flushed, the
// reserved ones left alone, and the counts follow.
func TestFlushAndMoveRunInBatches(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		n := 2*opBatch + 7
		for i := range n {
			mustInsert(t, s, NewJob{JobID: fmt.Sprint(i)})
		}
		held, _ := claim(s, "q", "n", 3)
		if moved, err := s.Move(ctx, "q", "q2", nil, Group{}, ""); err != nil || moved != int64(n-3) {
			t.Fatalf("move = %d, %v; want %d", moved, err, n-3)
		}
		exact(t, s, "moved", "q", "q2")
		if _, err := s.Move(ctx, "q2", "q2", nil, Group{}, ""); err == nil {
			t.Fatal("a move of a queue to itself was accepted")
		}
		if flushed, err := s.Flush(ctx, "q2", Group{}); err != nil || flushed != int64(n-3) {
			t.Fatalf("flush = %d, %v; want %d", flushed, err, n-3)
		}
		exact(t, s, "flushed", "q", "q2")
		if c, _ := s.Counts(ctx, "q"); c.Reserved != int64(len(held)) {
			t.Fatalf("reserved after flush and move = %d, want the %d held", c.Reserved, len(held))
		}
	})
}

// TestOldestReadyAcrossPriorities: the oldest ready job may sit behind a better priority's, and a
// delayed job is not ready however old its row.
func TestOldestReadyAcrossPriorities(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		mustInsert(t, s, NewJob{JobID: "old", Priority: 9})
		mustInsert(t, s, NewJob{JobID: "later", Priority: 1, Delay: time.Hour})
		elapse(t, s, 10*time.Minute)
		mustInsert(t, s, NewJob{JobID: "new", Priority: 1})
		mustInsert(t, s, NewJob{JobID: "newer", Priority: 5})
		st, err := s.Stats(ctx, "q")
		if err != nil {
			t.Fatal(err)
		}
		if st.OldestReady < 10*time.Minute || st.OldestReady > 11*time.Minute {
			t.Fatalf("oldest ready = %v, want the priority 9 job's 10 minutes", st.OldestReady)
		}
	})
}
