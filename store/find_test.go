package store

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// found is what a test compares of a FoundJob.
func found(f FoundJob) string {
	s := fmt.Sprintf("%s:%s", f.JobID, f.State)
	if f.State == StateReserved {
		s += fmt.Sprintf("@%s delivered=%v", f.Node, f.Delivered)
	}
	return s + fmt.Sprintf(" attempts=%d", f.Attempts)
}

// TestFindReportsEveryState: a job in each state, two jobs with one id, the same id in another
// queue, an id listed twice and an unknown one.
func TestFindReportsEveryState(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		mustInsert(t, s, NewJob{JobID: "held", Priority: 1})
		mustInsert(t, s, NewJob{JobID: "f", Priority: 1})
		got, err := claim(s, "q", "n1", 2)
		if err != nil || len(got) != 2 {
			t.Fatalf("claim: %d, %v", len(got), err)
		}
		if _, err := s.Write(ctx, Batch{Delivered: []Fence{got[0].Fence}}); err != nil {
			t.Fatal(err)
		}
		if ok, err := s.Fail(ctx, got[1].Fence, "boom", 1); !ok || err != nil {
			t.Fatalf("fail: %v, %v", ok, err)
		}
		mustInsert(t, s, NewJob{JobID: "prefetched", Priority: 1})
		if got, err := claim(s, "q", "n2", 1); err != nil || len(got) != 1 {
			t.Fatalf("claim: %d, %v", len(got), err)
		}
		mustInsert(t, s, NewJob{JobID: "r", Name: "App\\Mail", Headers: map[string][]string{"tenant": {"acme"}}})
		mustInsert(t, s, NewJob{JobID: "d", Delay: time.Hour})
		mustInsert(t, s, NewJob{JobID: "twice"})
		mustInsert(t, s, NewJob{JobID: "twice", Delay: time.Hour})
		mustInsert(t, s, NewJob{JobID: "r", Queue: "other"})

		before := time.Now().Add(-time.Minute).UnixMilli()
		jobs, err := s.Find(ctx, "q", []string{"nope", "twice", "r", "d", "held", "prefetched", "f", "r"})
		if err != nil {
			t.Fatal(err)
		}
		var have []string
		for _, j := range jobs {
			have = append(have, found(j))
		}
		want := []string{"twice:ready attempts=0", "twice:delayed attempts=0", "r:ready attempts=0", "d:delayed attempts=0",
			"held:reserved@n1 delivered=true attempts=1", "prefetched:reserved@n2 delivered=false attempts=0", "f:failed attempts=1"}
		if !slices.Equal(have, want) {
			t.Fatalf("found\n  %v\nwant\n  %v", have, want)
		}
		r, d, f := jobs[2], jobs[3], jobs[6]
		if r.Name != "App\\Mail" || r.Headers["tenant"][0] != "acme" || r.AvailableAt < before || r.Error != "" || r.FailedID != 0 {
			t.Fatalf("ready job %+v", r)
		}
		if d.AvailableAt < r.AvailableAt+3500_000 {
			t.Fatalf("delayed job due at %d, the ready one at %d: want an hour later", d.AvailableAt, r.AvailableAt)
		}
		if f.Error != "boom" || f.FailedAt < before || f.FailedID == 0 || f.AvailableAt != 0 || f.Node != "" || f.Name != "Job" {
			t.Fatalf("failed job %+v", f)
		}
		// The failed job's id is the one the failed-job calls take.
		if n, err := s.DeleteFailed(ctx, Selection{Queue: "q", IDs: []int64{f.FailedID}}); err != nil || n != 1 {
			t.Fatalf("delete failed %d: %d, %v", f.FailedID, n, err)
		}

		// Ready and delayed are the database's clock's: an hour later the delayed job is ready.
		elapse(t, s, 2*time.Hour)
		if jobs, err = s.Find(ctx, "q", []string{"d", "f"}); err != nil || len(jobs) != 1 || jobs[0].State != StateReady {
			t.Fatalf("after two hours: %+v, %v; want d ready and f gone", jobs, err)
		}
		if jobs, err = s.Find(ctx, "other", []string{"r"}); err != nil || len(jobs) != 1 || jobs[0].State != StateReady {
			t.Fatalf("other queue: %+v, %v", jobs, err)
		}
		if jobs, err = s.Find(ctx, "q", []string{"nope"}); err != nil || len(jobs) != 0 {
			t.Fatalf("unknown id: %+v, %v", jobs, err)
		}
	})
}

// TestCancelDeletesWaitingJobsOnly: waiting jobs of the ids go, a reserved one stays with its
// fence (its ack still deletes it), failed jobs and other queues are not touched, and the counts
// stay exact.
func TestCancelDeletesWaitingJobsOnly(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		mustInsert(t, s, NewJob{JobID: "held", Priority: 1})
		mustInsert(t, s, NewJob{JobID: "f", Priority: 1})
		got, err := claim(s, "q", "n1", 2)
		if err != nil || len(got) != 2 {
			t.Fatalf("claim: %d, %v", len(got), err)
		}
		if ok, err := s.Fail(ctx, got[1].Fence, "boom", 1); !ok || err != nil {
			t.Fatalf("fail: %v, %v", ok, err)
		}
		mustInsert(t, s, NewJob{JobID: "a"})
		mustInsert(t, s, NewJob{JobID: "b", Delay: time.Hour})
		mustInsert(t, s, NewJob{JobID: "twice"})
		mustInsert(t, s, NewJob{JobID: "twice", Delay: time.Minute})
		mustInsert(t, s, NewJob{JobID: "kept"})
		mustInsert(t, s, NewJob{JobID: "a", Queue: "other"})
		exact(t, s, "pushed", "q", "other")

		res, err := s.Cancel(ctx, "q", []string{"a", "held", "nope", "twice", "b", "f", "a"})
		if err != nil {
			t.Fatal(err)
		}
		var have []string
		for _, c := range res {
			have = append(have, fmt.Sprintf("%s:%v:%s", c.JobID, c.Cancelled, c.Node))
		}
		want := []string{"a:true:", "held:false:n1", "twice:true:", "twice:true:", "b:true:"}
		if !slices.Equal(have, want) {
			t.Fatalf("cancel reported %v, want %v", have, want)
		}
		exact(t, s, "cancelled", "q", "other")
		left, err := s.Find(ctx, "q", []string{"a", "b", "twice", "held", "f", "kept"})
		if err != nil {
			t.Fatal(err)
		}
		have = have[:0]
		for _, j := range left {
			have = append(have, j.JobID+":"+j.State)
		}
		if want := []string{"held:reserved", "f:failed", "kept:ready"}; !slices.Equal(have, want) {
			t.Fatalf("left after cancel %v, want %v", have, want)
		}
		if other, _ := s.Find(ctx, "other", []string{"a"}); len(other) != 1 {
			t.Fatalf("the other queue's job with the same id: %+v", other)
		}
		if n, err := ack(s, got[0].Fence); err != nil || n != 1 {
			t.Fatalf("ack of the held job after the cancel: %d, %v", n, err)
		}
		exact(t, s, "held job acked", "q", "other")
		if res, err := s.Cancel(ctx, "q", []string{"a", "held"}); err != nil || len(res) != 0 {
			t.Fatalf("cancel again: %+v, %v; want nothing found", res, err)
		}
	})
}

// TestCancelRacingClaimsTakesEachJobOnce: claims and cancels of the same jobs at once, from
// several connections: every job is claimed or cancelled, never both, and a job cancel reports
// reserved was claimed.
func TestCancelRacingClaimsTakesEachJobOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		const n = 400
		all := make([]string, n)
		for i := range n {
			all[i] = fmt.Sprint("j", i)
			mustInsert(t, s, NewJob{JobID: all[i]})
		}
		var (
			mu                          sync.Mutex
			claimed, cancelled, skipped = map[string]int{}, map[string]int{}, map[string]bool{}
			wg                          sync.WaitGroup
			errs                        = make(chan error, 8)
			claiming                    = make(chan struct{})
			first                       sync.Once
		)
		for c := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					jobs, err := claim(s, "q", fmt.Sprint("n", c), 7)
					if err != nil {
						errs <- err
						return
					}
					if len(jobs) == 0 {
						return
					}
					mu.Lock()
					for _, j := range jobs {
						claimed[j.JobID]++
					}
					mu.Unlock()
					first.Do(func() { close(claiming) })
				}
			}()
		}
		for c := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-claiming // the claims have begun: the cancels meet them
				// From each end: one canceller meets the claims early, the other late.
				ids := slices.Clone(all)
				if c == 1 {
					slices.Reverse(ids)
				}
				for chunk := range slices.Chunk(ids, 13) {
					res, err := s.Cancel(ctx, "q", chunk)
					if err != nil {
						errs <- err
						return
					}
					mu.Lock()
					for _, r := range res {
						if r.Cancelled {
							cancelled[r.JobID]++
						} else {
							skipped[r.JobID] = true
						}
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		for _, id := range all {
			if claimed[id]+cancelled[id] != 1 {
				t.Fatalf("job %s claimed %d times and cancelled %d times", id, claimed[id], cancelled[id])
			}
			if skipped[id] && claimed[id] != 1 {
				t.Fatalf("job %s reported reserved by a cancel but never claimed", id)
			}
		}
		t.Logf("%s: %d claimed, %d cancelled, %d reported reserved", s.Dialect(), len(claimed), len(cancelled), len(skipped))
		exact(t, s, "after the race", "q")
	})
}

// TestFindAndCancelManyIDs: more ids than one statement takes are cut into chunks.
func TestFindAndCancelManyIDs(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		const n = 2500
		bulkInsert(t, s, "rr_jobs", n)
		ids := make([]string, n)
		for i := range n {
			ids[i] = fmt.Sprint("bulk-", n-1-i)
		}
		jobs, err := s.Find(ctx, "q", ids)
		if err != nil || len(jobs) != n || jobs[0].JobID != ids[0] || jobs[n-1].JobID != ids[n-1] {
			t.Fatalf("found %d of %d, %v", len(jobs), n, err)
		}
		res, err := s.Cancel(ctx, "q", ids)
		if err != nil || len(res) != n || countCancelled(res) != n || res[0].JobID != ids[0] {
			t.Fatalf("cancelled %d of %d, %v", len(res), n, err)
		}
		exact(t, s, "cancelled in chunks", "q")
	})
}

// TestFindAndCancelPlansUseTheJobIDIndex: Find's read and Cancel's lock go through the
// (queue, job_id) indexes, its delete through the primary key, on a backlog of 20,000 jobs in
// four queues and 4,000 failed ones.
func TestFindAndCancelPlansUseTheJobIDIndex(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		st := s.(*sqlStore)
		tx, err := st.w.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		jobs, err := tx.PrepareContext(ctx, st.q(`INSERT INTO rr_jobs (queue, job_id, name, payload, headers, priority, available_at, created_at, attempts, auto_ack, reserved_by)
			VALUES (?, ?, 'Job', ?, '{}', ?, ?, 0, 0, ?, ?)`))
		if err != nil {
			t.Fatal(err)
		}
		failed, err := tx.PrepareContext(ctx, st.q(`INSERT INTO rr_failed_jobs (queue, job_id, name, payload, headers, priority, attempts, error, failed_at)
			VALUES (?, ?, 'Job', ?, '{}', 10, 1, 'boom', ?)`))
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now().UnixMilli()
		for i := range 20000 {
			var node any
			if i%10 == 0 {
				node = "n"
			}
			if _, err := jobs.ExecContext(ctx, fmt.Sprint("q", i%4), fmt.Sprint("id-", i), []byte("x"), i%5, now+int64(i%3)*3600_000, false, node); err != nil {
				t.Fatal(err)
			}
			if i%5 == 0 {
				if _, err := failed.ExecContext(ctx, fmt.Sprint("q", i%4), fmt.Sprint("id-", i), []byte("x"), now); err != nil {
					t.Fatal(err)
				}
			}
		}
		_ = jobs.Close()
		_ = failed.Close()
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		analyze := map[string]string{"sqlite": "ANALYZE", "postgres": "ANALYZE rr_jobs, rr_failed_jobs", "mysql": "ANALYZE TABLE rr_jobs, rr_failed_jobs"}[s.Dialect()]
		if _, err := st.w.ExecContext(ctx, analyze); err != nil {
			t.Fatal(err)
		}
		find, pick, del, err := st.ExplainFind(ctx, "q1", []string{"id-1", "id-5", "id-9", "id-13", "nope"})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("find plan (%s):\n%s\ncancel lock plan:\n%s\ncancel delete plan:\n%s", s.Dialect(), find, pick, del)
		bad := []string{"Seq Scan on rr_", "SCAN rr_jobs", "SCAN rr_failed_jobs", "type=ALL", "type=index ", "rr_jobs_claim", "rr_failed_jobs_queue"}
		uses := func(index string) string { return index }
		if s.Dialect() == "mysql" { // possible_keys names every index on queue: look at the one chosen
			bad = []string{"type=ALL", "type=index ", "key=rr_jobs_claim", "key=rr_jobs_group", "key=rr_failed_jobs_queue"}
			uses = func(index string) string { return "key=" + index }
		}
		for what, c := range map[string]struct {
			plan string
			must []string
		}{
			"find":   {find, []string{uses("rr_jobs_job_id"), uses("rr_failed_jobs_job_id")}},
			"lock":   {pick, []string{uses("rr_jobs_job_id")}},
			"delete": {del, []string{map[string]string{"sqlite": "INTEGER PRIMARY KEY", "postgres": "rr_jobs_pkey", "mysql": "key=PRIMARY"}[s.Dialect()]}},
		} {
			for _, w := range c.must {
				if !strings.Contains(c.plan, w) {
					t.Errorf("%s plan lacks %q", what, w)
				}
			}
			for _, b := range bad {
				if strings.Contains(c.plan, b) {
					t.Errorf("%s plan has %q", what, b)
				}
			}
		}
	})
}

// TestFindAndCancelTellApartIDsThatEndAlike: on SQLite the job id index holds the ids' last 12
// characters; ids that share them (and ids shorter than that) are still found, and cancelled,
// only by their whole id and in their own queue.
func TestFindAndCancelTellApartIDsThatEndAlike(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		const end = "-0123456789ab" // 13 characters: the key of both is "0123456789ab"
		mustInsert(t, s, NewJob{JobID: "first" + end})
		mustInsert(t, s, NewJob{JobID: "second" + end})
		mustInsert(t, s, NewJob{JobID: "first" + end, Queue: "other"})
		mustInsert(t, s, NewJob{JobID: "short"})
		mustInsert(t, s, NewJob{JobID: "xshort"})
		for _, id := range []string{"first" + end, "second" + end, "short", "xshort"} {
			jobs, err := s.Find(ctx, "q", []string{id, "nope" + end})
			if err != nil {
				t.Fatal(err)
			}
			if len(jobs) != 1 || jobs[0].JobID != id {
				t.Fatalf("Find(q, %s) = %+v, want that job alone", id, jobs)
			}
		}
		done, err := s.Cancel(ctx, "q", []string{"second" + end, "short"})
		if err != nil {
			t.Fatal(err)
		}
		if len(done) != 2 || !done[0].Cancelled || done[0].JobID != "second"+end || !done[1].Cancelled || done[1].JobID != "short" {
			t.Fatalf("Cancel = %+v, want second%s and short cancelled", done, end)
		}
		for queue, want := range map[string][]string{"q": {"first" + end, "xshort"}, "other": {"first" + end}} {
			jobs, err := s.Find(ctx, queue, []string{"first" + end, "second" + end, "short", "xshort"})
			if err != nil {
				t.Fatal(err)
			}
			var have []string
			for _, j := range jobs {
				have = append(have, j.JobID)
			}
			if !slices.Equal(have, want) {
				t.Fatalf("after the cancel, Find(%s) = %v, want %v", queue, have, want)
			}
		}
	})
}
