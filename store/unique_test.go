package store

import (
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// keyed is a job with a unique key.
func keyed(id, key string) NewJob { return NewJob{JobID: id, Queue: "q", Name: "Job", UniqueKey: key} }

// insertUnique inserts a job and fails the test unless the store created it (or not) as wanted.
func insertUnique(t *testing.T, s Store, j NewJob, wantCreated bool) {
	t.Helper()
	if j.Queue == "" {
		j.Queue = "q"
	}
	created, err := s.Insert(ctx, j)
	if err != nil {
		t.Fatalf("insert %s (key %q): %v", j.JobID, j.UniqueKey, err)
	}
	if created != wantCreated {
		t.Fatalf("insert %s (key %q) into %s: created = %v, want %v", j.JobID, j.UniqueKey, j.Queue, created, wantCreated)
	}
}

// rowKeys lists a queue's jobs as "job_id=unique_key" ("job_id=-" without a key) in id order.
func rowKeys(t *testing.T, s Store, queue string) []string {
	t.Helper()
	st := s.(*sqlStore)
	rows, err := st.query(ctx, st.w, `SELECT job_id, unique_key FROM rr_jobs WHERE queue = ? AND {live} ORDER BY id`, queue)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var (
			id  string
			key sql.NullString
		)
		if err := rows.Scan(&id, &key); err != nil {
			t.Fatal(err)
		}
		if !key.Valid {
			key.String = "-"
		}
		out = append(out, id+"="+key.String)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func wantRows(t *testing.T, s Store, queue string, want ...string) {
	t.Helper()
	if got := rowKeys(t, s, queue); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("queue %s holds %v, want %v", queue, got, want)
	}
}

// deliver claims every ready job of queue q and marks them delivered (they reached a worker), the
// way the driver's batch writes the mark: freeing their keys (unique_while: waiting) or not.
func deliver(t *testing.T, s Store, free bool) []Job {
	t.Helper()
	got, err := claim(s, "q", "n", 10)
	if err != nil || len(got) == 0 {
		t.Fatalf("claim = %+v, %v", got, err)
	}
	fences := fencesOf(got)
	b := Batch{Delivered: fences}
	if free {
		b = Batch{DeliveredKeyed: fences}
	}
	if _, err := s.Write(ctx, b); err != nil {
		t.Fatal(err)
	}
	return got
}

// TestUniqueKeyWhileWaiting: a key held by a ready or delayed job refuses a second job in the same
// queue (not in another queue, and not for jobs without a key); a claimed job still holds it until
// it reaches a worker (unique_while: waiting), and a job given back before that keeps it. A
// refused insert leaves the counts as they were.
func TestUniqueKeyWhileWaiting(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		insertUnique(t, s, keyed("a", "k"), true)
		insertUnique(t, s, keyed("a2", "k"), false)
		exact(t, s, "after a duplicate", "q")
		insertUnique(t, s, NewJob{JobID: "other", Queue: "q2", Name: "Job", UniqueKey: "k"}, true)
		insertUnique(t, s, keyed("plain", ""), true)
		insertUnique(t, s, keyed("plain", ""), true)
		insertUnique(t, s, NewJob{JobID: "later", Queue: "q", Name: "Job", UniqueKey: "d", Delay: time.Hour}, true)
		insertUnique(t, s, keyed("later2", "d"), false)
		wantRows(t, s, "q", "a=k", "plain=-", "plain=-", "later=d")
		exact(t, s, "after duplicates of a ready and a delayed job", "q", "q2")

		// Claimed into a node's prefetch, not yet at a worker: still waiting.
		got, err := claim(s, "q", "n", 10)
		if err != nil || len(got) != 3 {
			t.Fatalf("claim = %+v, %v", got, err)
		}
		insertUnique(t, s, keyed("a3", "k"), false)
		if n, err := s.Release(ctx, []Fence{got[0].Fence, got[1].Fence, got[2].Fence}); err != nil || n != 3 {
			t.Fatalf("release = %d, %v", n, err)
		}
		insertUnique(t, s, keyed("a4", "k"), false)

		// At a worker: the key is free, a new job with it waits beside the running one.
		running := deliver(t, s, true)
		insertUnique(t, s, keyed("b", "k"), true)
		insertUnique(t, s, keyed("b2", "k"), false)
		exact(t, s, "after a push while the first job runs", "q")
		// The running job, requeued, waits without its key.
		if ok, err := s.Requeue(ctx, running[0].Fence, Requeue{FreeUniqueKey: true}); err != nil || !ok {
			t.Fatalf("requeue = %v, %v", ok, err)
		}
		wantRows(t, s, "q", "a=-", "plain=-", "plain=-", "later=d", "b=k")
		exact(t, s, "after the requeue", "q")

		// A job answered before its delivery mark was written: the requeue gives up the key too.
		again, err := claim(s, "q", "n", 10)
		if err != nil || len(again) != 2 {
			t.Fatalf("claim = %+v, %v; want a and b", again, err)
		}
		b := again[0]
		if b.JobID != "b" {
			b = again[1]
		}
		if ok, err := s.Requeue(ctx, b.Fence, Requeue{Failed: true, LastError: "crashed", FreeUniqueKey: true}); err != nil || !ok {
			t.Fatalf("requeue = %v, %v", ok, err)
		}
		insertUnique(t, s, keyed("c", "k"), true)
		exact(t, s, "after the second requeue", "q")
	})
}

// TestUniqueKeyWhileActive: with unique_while: active the key stays with the job at its worker and
// through requeues, and is freed when the job is acked or failed.
func TestUniqueKeyWhileActive(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		insertUnique(t, s, keyed("a", "k"), true)
		j := deliver(t, s, false)[0]
		insertUnique(t, s, keyed("a2", "k"), false)
		if ok, err := s.Requeue(ctx, j.Fence, Requeue{Headers: map[string][]string{UniqueKeyHeader: {"k"}}}); err != nil || !ok {
			t.Fatalf("requeue = %v, %v", ok, err)
		}
		insertUnique(t, s, keyed("a3", "k"), false)
		j = deliver(t, s, false)[0]
		insertUnique(t, s, keyed("a4", "k"), false)
		exact(t, s, "while the job runs", "q")
		if n, err := ack(s, j.Fence); err != nil || n != 1 {
			t.Fatalf("ack = %d, %v", n, err)
		}
		insertUnique(t, s, keyed("b", "k"), true)
		j = deliver(t, s, false)[0]
		insertUnique(t, s, keyed("b2", "k"), false)
		if ok, err := s.Fail(ctx, j.Fence, "boom", 1); err != nil || !ok {
			t.Fatalf("fail = %v, %v", ok, err)
		}
		insertUnique(t, s, keyed("c", "k"), true)
		wantRows(t, s, "q", "c=k")
		exact(t, s, "after ack and fail", "q")
		// The reaper returns a dead node's job with its key.
		deliver(t, s, false)
		if n, err := s.Reap(ctx, time.Minute, []string{"n"}); err != nil || n != 1 {
			t.Fatalf("reap = %d, %v", n, err)
		}
		insertUnique(t, s, keyed("c2", "k"), false)
		wantRows(t, s, "q", "c=k")
	})
}

// TestUniqueKeyGroupClaim: a group_by pipeline's claim leaves keys alone like the plain one.
func TestUniqueKeyGroupClaim(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		for i, key := range []string{"k1", "k2"} {
			insertUnique(t, s, NewJob{JobID: key, Queue: "q", Name: "Job", UniqueKey: key, Grouped: true, Group: fmt.Sprint("g", i)}, true)
		}
		got, err := s.Claim(ctx, ClaimRequest{Queue: "q", Node: "n", Limit: 2, Lease: time.Minute, Groups: true})
		if err != nil || len(got) != 2 {
			t.Fatalf("group claim = %+v, %v", got, err)
		}
		insertUnique(t, s, NewJob{JobID: "again", Queue: "q", Name: "Job", UniqueKey: "k1", Grouped: true, Group: "g9"}, false)
		if _, err := s.Write(ctx, Batch{DeliveredKeyed: []Fence{got[0].Fence}}); err != nil {
			t.Fatal(err)
		}
		insertUnique(t, s, NewJob{JobID: "again", Queue: "q", Name: "Job", UniqueKey: got[0].JobID, Grouped: true, Group: "g9"}, true)
		insertUnique(t, s, NewJob{JobID: "again", Queue: "q", Name: "Job", UniqueKey: got[1].JobID, Grouped: true, Group: "g9"}, false)
		exact(t, s, "after group claims", "q")
	})
}

// TestUniqueKeyUnderConcurrentInserts: writers pushing the same keys at once through the store's
// pool create one job per key, and the counts stay exact.
func TestUniqueKeyUnderConcurrentInserts(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		const writers, keys = 6, 60
		var (
			wg      sync.WaitGroup
			created atomic.Int64
			errs    = make(chan error, writers)
		)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := range keys {
					ok, err := s.Insert(ctx, NewJob{Queue: "q", JobID: fmt.Sprint(w, "-", k), Name: "Job", UniqueKey: fmt.Sprint("key-", k)})
					if err != nil {
						errs <- err
						return
					}
					if ok {
						created.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if created.Load() != keys {
			t.Fatalf("%d inserts reported created, want %d (one per key)", created.Load(), keys)
		}
		var rows, distinct int64
		st := s.(*sqlStore)
		if err := st.queryRow(ctx, st.w, `SELECT COUNT(*), COUNT(DISTINCT unique_key) FROM rr_jobs WHERE queue = ?`, "q").Scan(&rows, &distinct); err != nil {
			t.Fatal(err)
		}
		if rows != keys || distinct != keys {
			t.Fatalf("%d rows with %d distinct keys, want %d of each", rows, distinct, keys)
		}
		exact(t, s, "after concurrent duplicate inserts", "q")
	})
}

// TestUniqueKeyMovesAndRetries: a moved job keeps its key in the target queue unless a job there
// holds it already: then it moves without one (the move neither fails nor drops it). A failed job
// retried with sql.FailedRetry comes back without its key.
func TestUniqueKeyMovesAndRetries(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		insertUnique(t, s, keyed("a", "k1"), true)
		insertUnique(t, s, keyed("b", "k2"), true)
		insertUnique(t, s, keyed("plain", ""), true)
		insertUnique(t, s, NewJob{JobID: "held", Queue: "q2", Name: "Job", UniqueKey: "k1"}, true)
		if n, err := s.Move(ctx, "q", "q2", nil, Group{}, ""); err != nil || n != 3 {
			t.Fatalf("move = %d, %v; want the 3 jobs moved", n, err)
		}
		wantRows(t, s, "q2", "a=-", "b=k2", "plain=-", "held=k1")
		insertUnique(t, s, NewJob{JobID: "b2", Queue: "q2", Name: "Job", UniqueKey: "k2"}, false)
		exact(t, s, "after the move", "q", "q2")

		got, err := claim(s, "q2", "n", 10)
		if err != nil || len(got) != 4 {
			t.Fatalf("claim = %+v, %v", got, err)
		}
		for _, j := range got {
			if ok, err := s.Fail(ctx, j.Fence, "boom", 1); err != nil || !ok {
				t.Fatalf("fail %s = %v, %v", j.JobID, ok, err)
			}
		}
		insertUnique(t, s, NewJob{JobID: "new", Queue: "q2", Name: "Job", UniqueKey: "k2"}, true)
		if n, err := s.RetryFailed(ctx, Selection{Queue: "q2", All: true}); err != nil || n != 4 {
			t.Fatalf("retry = %d, %v", n, err)
		}
		wantRows(t, s, "q2", "new=k2", "a=-", "b=-", "plain=-", "held=-")
		exact(t, s, "after the retry", "q2")
	})
}

// TestUniqueKeyOverflowMove: overflow moves a group's jobs with their keys, and one whose key the
// target holds moves without it.
func TestUniqueKeyOverflowMove(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		for _, key := range []string{"k1", "k2"} {
			insertUnique(t, s, NewJob{JobID: key, Queue: "q", Name: "Job", UniqueKey: key, Grouped: true, Group: "g"}, true)
		}
		insertUnique(t, s, NewJob{JobID: "held", Queue: "slow", Name: "Job", UniqueKey: "k2", Grouped: true, Group: "g"}, true)
		moves, err := s.Overflow(ctx, OverflowRequest{Queue: "q", Target: "slow", ReadyOver: 1})
		if err != nil || len(moves) != 1 || moves[0].Jobs != 2 {
			t.Fatalf("overflow = %+v, %v", moves, err)
		}
		wantRows(t, s, "slow", "k1=k1", "k2=-", "held=k2")
		exact(t, s, "after the overflow", "q", "slow")
	})
}
