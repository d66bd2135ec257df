package store

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestAnAckedJobLeavesEveryView: once Write acks a job, whether the database deletes its row at once
// or marks it for a sweep (SQLite), no read sees it (counts, Find, Cancel, the groups' and a
// header's counts, the jobs held per node), its unique key is free, a reap of its node does not
// bring it back, no claim takes it again, and the sweep changes none of that.
func TestAnAckedJobLeavesEveryView(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		if err := s.RegisterNode(ctx, Node{ID: "n1", Host: "h", PID: 1}); err != nil {
			t.Fatal(err)
		}
		push := func(id, key string) {
			t.Helper()
			created, err := s.Insert(ctx, NewJob{JobID: id, Queue: "q", Name: "Job", Payload: []byte("{}"), Priority: 10,
				Grouped: true, Group: "g", Headers: map[string][]string{"tenant": {"t1"}}, UniqueKey: key})
			if err != nil || !created {
				t.Fatalf("push %s: created %v, %v", id, created, err)
			}
		}
		push("a", "k")
		push("b", "")
		push("c", "")
		got, err := s.Claim(ctx, ClaimRequest{Queue: "q", Node: "n1", Limit: 3, Lease: time.Minute})
		if err != nil || len(got) != 3 {
			t.Fatalf("claimed %d jobs, %v; want 3", len(got), err)
		}
		slices.SortFunc(got, claimOrder)
		acked, err := s.Write(ctx, Batch{Acks: fencesOf(got[:2])})
		if err != nil || acked != 2 {
			t.Fatalf("acked %d, %v; want 2", acked, err)
		}

		views := func(step string, held int64) {
			t.Helper()
			exact(t, s, step, "q")
			c, err := s.Counts(ctx, "q")
			if err != nil || c != (Counts{Ready: 1 - held, Reserved: held}) {
				t.Fatalf("%s: counts %+v, %v; want c alone, reserved %d", step, c, err, held)
			}
			found, err := s.Find(ctx, "q", []string{"a", "b", "c"})
			if err != nil || len(found) != 1 || found[0].JobID != "c" {
				t.Fatalf("%s: found %+v, %v; want c alone", step, found, err)
			}
			nodes, err := s.HeldByNode(ctx)
			if want := map[string]int64{"n1": held}; err != nil || (held > 0 && !maps.Equal(nodes, want)) || (held == 0 && len(nodes) != 0) {
				t.Fatalf("%s: held by node %v, %v; want %d by n1", step, nodes, err, held)
			}
			for name, count := range map[string]func() ([]GroupCount, error){
				"groups":        func() ([]GroupCount, error) { return s.CountGroups(ctx, "q", "", 10) },
				"tenant header": func() ([]GroupCount, error) { return s.CountByHeader(ctx, "q", "tenant", "", 10) },
			} {
				groups, err := count()
				if err != nil || len(groups) != 1 || groups[0].Counts != c {
					t.Fatalf("%s: %s %+v, %v; want one with %+v", step, name, groups, err, c)
				}
			}
		}
		views("after the ack", 1)
		if cancelled, err := s.Cancel(ctx, "q", []string{"a", "b"}); err != nil || len(cancelled) != 0 {
			t.Fatalf("cancel of acked jobs: %+v, %v; want nothing found", cancelled, err)
		}

		// The node dies: its one held job goes back, the acked ones do not.
		if released, err := s.Reap(ctx, time.Hour, []string{"n1"}); err != nil || released != 1 {
			t.Fatalf("reap released %d, %v; want 1 (c)", released, err)
		}
		views("after the reap", 0)
		if _, err := s.SweepAcked(ctx); err != nil {
			t.Fatal(err)
		}
		views("after the sweep", 0)
		push("a2", "k") // a's key went with its ack

		again, err := s.Claim(ctx, ClaimRequest{Queue: "q", Node: "n2", Limit: 10, Lease: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, j := range again {
			ids = append(ids, j.JobID)
		}
		slices.Sort(ids)
		if !slices.Equal(ids, []string{"a2", "c"}) {
			t.Fatalf("claimed %v after the reap, want [a2 c]", ids)
		}
	})
}

// TestAcksAreSweptWhereMarked: on SQLite an ack marks the row, an ack batch sweeps once a few
// thousand marks have gathered, and SweepAcked deletes what is left. Where acks delete, there is
// never anything to sweep.
func TestAcksAreSweptWhereMarked(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		marks := s.(*sqlStore).d.ackMarks
		jobs := make([]NewJob, sweepAfter+10)
		for i := range jobs {
			jobs[i] = NewJob{JobID: "j" + string(rune('a'+i%26)), Queue: "q", Name: "Job", Payload: []byte("{}"), Priority: 10}
		}
		if _, err := s.InsertBatch(ctx, jobs); err != nil {
			t.Fatal(err)
		}
		ack := func(n int) {
			t.Helper()
			got, err := s.Claim(ctx, ClaimRequest{Queue: "q", Node: "n", Limit: n, Lease: time.Minute})
			if err != nil || len(got) != n {
				t.Fatalf("claimed %d, %v; want %d", len(got), err, n)
			}
			if acked, err := s.Write(ctx, Batch{Acks: fencesOf(got)}); err != nil || acked != int64(n) {
				t.Fatalf("acked %d, %v; want %d", acked, err, n)
			}
		}
		// The sweep deletes its marks in many transactions, beginning with the smallest.
		s.(*sqlStore).sweepRows.Store(sweepRowsMin)
		ack(sweepAfter - 1)
		want := int64(len(jobs))
		if !marks {
			want -= sweepAfter - 1
		}
		if n := countRows(t, s); n != want {
			t.Fatalf("%d rows after %d acks, want %d", n, sweepAfter-1, want)
		}
		ack(1) // the mark that reaches sweepAfter sweeps
		if n := countRows(t, s); n != 10 {
			t.Fatalf("%d rows after %d acks, want the 10 not acked", n, sweepAfter)
		}
		ack(5)
		swept, err := s.SweepAcked(ctx)
		if want := map[bool]int64{true: 5, false: 0}[marks]; err != nil || swept != want {
			t.Fatalf("swept %d, %v; want %d", swept, err, want)
		}
		if n := countRows(t, s); n != 5 {
			t.Fatalf("%d rows after the sweep, want the 5 not acked", n)
		}
		exact(t, s, "after the sweep", "q")
	})
}

// TestASweepTransactionFitsItsHold: the rows of the next sweep transaction are what the last one's
// pace fits in sweepHold, within their bounds.
func TestASweepTransactionFitsItsHold(t *testing.T) {
	for _, c := range []struct {
		rows int64
		took time.Duration
		want int64
	}{
		{5000, 5 * sweepHold, 1000},             // 5,000 rows took 50 ms: 1,000 fit in 10
		{1000, 2 * sweepHold, 500},              // slower: fewer
		{1000, sweepHold / 10, 5000},            // faster: at most sweepRowsMax
		{5000, 250 * sweepHold, 100},            // a large table: at least sweepRowsMin
		{0, sweepHold, sweepRowsMax},            // nothing to tell the pace by
		{1000, 0, sweepRowsMax},                 // no time measured
		{sweepRowsMin, sweepHold, sweepRowsMin}, // the pace holds
	} {
		if got := sweepRowsFor(c.rows, c.took); got != c.want {
			t.Errorf("sweepRowsFor(%d, %v) = %d, want %d", c.rows, c.took, got, c.want)
		}
	}
}

// TestMarksOutliveARestart: the acks a stopped rr marked on SQLite stay invisible and counted off
// when a store opens the file again, and its sweep deletes them.
func TestMarksOutliveARestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jobs.db")
	open := func() Store {
		t.Helper()
		s, err := OpenSQLite(context.Background(), SQLiteOptions{Path: path, Synchronous: "normal", BusyTimeout: 5 * time.Second, MaxReadConns: 2})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	for _, id := range []string{"a", "b", "c"} {
		if _, err := s.Insert(ctx, NewJob{JobID: id, Queue: "q", Name: "Job", Payload: []byte("{}"), Priority: 10}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Claim(ctx, ClaimRequest{Queue: "q", Node: "n", Limit: 2, Lease: time.Minute})
	if err != nil || len(got) != 2 {
		t.Fatalf("claimed %d, %v; want 2", len(got), err)
	}
	if _, err := s.Write(ctx, Batch{Acks: fencesOf(got)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open()
	defer s.Close()
	if n := countRows(t, s); n != 3 {
		t.Fatalf("%d rows before the sweep, want 3 (two marked)", n)
	}
	exact(t, s, "after the restart", "q")
	if found, err := s.Find(ctx, "q", []string{"a", "b", "c"}); err != nil || len(found) != 1 || found[0].JobID != "c" {
		t.Fatalf("found %+v, %v; want c alone", found, err)
	}
	if swept, err := s.SweepAcked(ctx); err != nil || swept != 2 {
		t.Fatalf("swept %d, %v; want 2", swept, err)
	}
	if n := countRows(t, s); n != 1 {
		t.Fatalf("%d rows after the sweep, want 1", n)
	}
	exact(t, s, "after the sweep", "q")
}

// TestClaimsAndAnswersLeaveTheWriterFlushing: on SQLite at synchronous=full, claims (plain and
// group claims) and ack batches commit without a flush of their own (sqliteUnflushed), and every
// other write still flushes: while they run beside other write transactions, whatever holds the
// write connection outside them finds it at FULL.
func TestClaimsAndAnswersLeaveTheWriterFlushing(t *testing.T) {
	s, err := OpenSQLite(context.Background(), SQLiteOptions{Path: filepath.Join(t.TempDir(), "jobs.db"), Synchronous: "full", BusyTimeout: 5 * time.Second, MaxReadConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st := s.(*sqlStore)
	if st.beginUnflushed == nil {
		t.Fatal("no unflushed answers at synchronous=full")
	}
	level := func() int {
		t.Helper()
		tx, err := st.begin(ctx) // a write transaction, as a push takes
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = tx.Rollback() }()
		var n int
		if err := tx.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	const full = 2
	// Half the claims are plain, half are group claims (queue g, four groups).
	jobs := make([]NewJob, 2000)
	for i := range jobs {
		jobs[i] = NewJob{JobID: fmt.Sprint(i), Queue: "q", Name: "Job", Payload: []byte("{}"), Priority: 10}
		if i%2 == 1 {
			jobs[i].Queue, jobs[i].Grouped, jobs[i].Group = "g", true, fmt.Sprint("group-", i%8)
		}
	}
	if _, err := s.InsertBatch(ctx, jobs); err != nil {
		t.Fatal(err)
	}
	answers := make(chan error, 1)
	go func() {
		for i := range 40 {
			claim := ClaimRequest{Queue: "q", Node: "n", Limit: 50, Lease: time.Minute}
			if i%2 == 1 {
				claim.Queue, claim.Groups = "g", true
			}
			got, err := s.Claim(ctx, claim)
			if err == nil && len(got) != 50 {
				err = fmt.Errorf("claim %d of queue %s got %d jobs, want 50", i, claim.Queue, len(got))
			}
			if err == nil {
				_, err = s.Write(ctx, Batch{Acks: fencesOf(got)})
			}
			if err != nil {
				answers <- err
				return
			}
		}
		answers <- nil
	}()
	for checked := 0; ; checked++ {
		select {
		case err := <-answers:
			if err != nil {
				t.Fatal(err)
			}
			if got := level(); got != full {
				t.Fatalf("synchronous %d after the answers, want %d (FULL)", got, full)
			}
			for _, queue := range []string{"q", "g"} {
				if c, err := s.Counts(ctx, queue); err != nil || c.Ready != 0 || c.Reserved != 0 {
					t.Fatalf("queue %s: counts %+v, %v after acking every job", queue, c, err)
				}
			}
			t.Logf("%d checks beside the answers", checked)
			return
		default:
		}
		if got := level(); got != full {
			t.Fatalf("a write transaction found synchronous %d beside the answers, want %d (FULL)", got, full)
		}
	}
}

// TestTheWriterKeepsALargerPageCache: the write connection, which does every claim, mark and sweep,
// has writerCacheKiB of page cache; the readers keep SQLite's default.
func TestTheWriterKeepsALargerPageCache(t *testing.T) {
	s, err := OpenSQLite(context.Background(), SQLiteOptions{Path: filepath.Join(t.TempDir(), "jobs.db"), Synchronous: "full", BusyTimeout: 5 * time.Second, MaxReadConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st := s.(*sqlStore)
	for _, c := range []struct {
		name string
		db   *sql.DB
		want int
	}{{"writer", st.w, -writerCacheKiB}, {"reader", st.r, -2000}} {
		var got int
		if err := c.db.QueryRowContext(ctx, `PRAGMA cache_size`).Scan(&got); err != nil || got != c.want {
			t.Errorf("%s: cache_size %d, %v; want %d", c.name, got, err, c.want)
		}
	}
}
