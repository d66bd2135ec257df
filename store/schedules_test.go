package store

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

func tickJob(schedule string, at int64) *NewJob {
	return &NewJob{JobID: fmt.Sprintf("schedule:%s:%d", schedule, at), Queue: "q", Name: "tick", Payload: []byte("p"),
		Headers: map[string][]string{"h": {"v"}}}
}

// Several sessions pushing the same ticks at once: each tick advances once and inserts one job.
func TestConcurrentTicksPushEachTickOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		const (
			ticks    = 20
			sessions = 6
		)
		base := int64(1_700_000_000_000)
		for i := range ticks {
			at := base + int64(i)*1000
			var (
				wins  atomic.Int64
				wg    sync.WaitGroup
				start = make(chan struct{})
			)
			for range sessions {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					ok, err := s.Tick(ctx, Tick{Schedule: "beat", At: at, Job: tickJob("beat", at)})
					if err != nil {
						t.Error(err)
					}
					if ok {
						wins.Add(1)
					}
				}()
			}
			close(start)
			wg.Wait()
			if n := wins.Load(); n != 1 {
				t.Fatalf("tick %d: %d sessions pushed it, want exactly 1", i, n)
			}
		}
		got, err := claim(s, "q", "n", 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != ticks {
			t.Fatalf("%d jobs, want %d (one per tick): %v", len(got), ticks, ids(got))
		}
		seen := map[string]bool{}
		for _, j := range got {
			if seen[j.JobID] {
				t.Fatalf("job %s twice", j.JobID)
			}
			seen[j.JobID] = true
			if j.Name != "tick" || string(j.Payload) != "p" || j.Headers["h"][0] != "v" {
				t.Fatalf("job %+v: name, payload or headers lost", j)
			}
		}
		last, err := s.ScheduleTicks(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want := base + (ticks-1)*1000; last["beat"] != want {
			t.Fatalf("last tick %d, want %d", last["beat"], want)
		}
	})
}

func TestTickNeverGoesBackAndSkipOnlyAdvances(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		tick := func(at int64, push bool) bool {
			t.Helper()
			tk := Tick{Schedule: "s", At: at}
			if push {
				tk.Job = tickJob("s", at)
			}
			ok, err := s.Tick(ctx, tk)
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}
		// First seen: the row is created without a job.
		if !tick(5000, false) {
			t.Fatal("a schedule without a row was not created")
		}
		if tick(5000, true) || tick(4000, true) {
			t.Fatal("a tick at or before the last one was pushed")
		}
		if !tick(9000, false) { // skip a missed tick: advance only
			t.Fatal("skip did not advance")
		}
		if !tick(10000, true) {
			t.Fatal("the next tick was not pushed")
		}
		c, err := s.Counts(ctx, "q")
		if err != nil {
			t.Fatal(err)
		}
		if c.Ready != 1 {
			t.Fatalf("counts %+v: want the one pushed tick ready", c)
		}
		got, err := claim(s, "q", "n", 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].JobID != "schedule:s:10000" {
			t.Fatalf("jobs %v, want only schedule:s:10000", ids(got))
		}
		last, err := s.ScheduleTicks(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if last["s"] != 10000 || len(last) != 1 {
			t.Fatalf("last ticks %v", last)
		}
	})
}
