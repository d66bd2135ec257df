package store

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// refuseJob makes the database refuse to insert a job with the given id (a trigger): what a
// database error in the middle of a batch looks like, on every database.
func refuseJob(t *testing.T, s Store, id string) {
	t.Helper()
	st := s.(*sqlStore)
	var create, drop []string
	switch st.d.name {
	case "sqlite":
		create = []string{`CREATE TRIGGER rr_test_refuse BEFORE INSERT ON rr_jobs WHEN NEW.job_id = '` + id + `'
			BEGIN SELECT RAISE(ABORT, 'refused by the test'); END`}
		drop = []string{`DROP TRIGGER rr_test_refuse`}
	case "postgres":
		create = []string{`CREATE FUNCTION rr_test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN IF NEW.job_id = '` + id + `' THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$`,
			`CREATE TRIGGER rr_test_refuse BEFORE INSERT ON rr_jobs FOR EACH ROW EXECUTE FUNCTION rr_test_refuse()`}
		drop = []string{`DROP TRIGGER rr_test_refuse ON rr_jobs`, `DROP FUNCTION rr_test_refuse()`}
	case "mysql":
		create = []string{`CREATE TRIGGER rr_test_refuse BEFORE INSERT ON rr_jobs FOR EACH ROW
			BEGIN IF NEW.job_id = '` + id + `' THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused by the test'; END IF; END`}
		drop = []string{`DROP TRIGGER rr_test_refuse`}
	}
	for _, q := range create {
		if _, err := st.w.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, q := range drop {
			if _, err := st.w.ExecContext(ctx, q); err != nil {
				t.Error(err)
			}
		}
	})
}

func countRows(t *testing.T, s Store) int64 {
	t.Helper()
	var n int64
	if err := s.(*sqlStore).w.QueryRowContext(ctx, `SELECT COUNT(*) FROM rr_jobs`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestInsertBatchIsAllOrNone: a batch of 1,200 jobs (three statements on PostgreSQL and MySQL)
// whose 1,100th job the database refuses writes nothing, the counts included; without it, every
// job is written with its own values.
func TestInsertBatchIsAllOrNone(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		batch := make([]NewJob, 1200)
		for i := range batch {
			batch[i] = NewJob{JobID: fmt.Sprint("b", i), Queue: []string{"q", "other"}[i%2], Name: "Job", Payload: []byte(fmt.Sprint(i)),
				Priority: int64(i % 3), Headers: map[string][]string{"n": {fmt.Sprint(i)}}, AutoAck: i%5 == 0}
			if i%4 == 1 {
				batch[i].Delay = time.Hour
			}
		}
		refused := batch[1099].JobID
		refuseJob(t, s, refused)
		_, err := s.InsertBatch(ctx, batch)
		if err == nil {
			t.Fatal("the batch was inserted although the database refused one job")
		}
		t.Log(err)
		if n := countRows(t, s); n != 0 {
			t.Fatalf("%d rows written by a batch that failed, want none", n)
		}
		for _, q := range []string{"q", "other"} {
			if c, err := s.Counts(ctx, q); err != nil || c != (Counts{}) {
				t.Fatalf("counts of %s after a failed batch: %+v, %v; want zero", q, c, err)
			}
		}

		batch[1099].JobID = "accepted"
		created, err := s.InsertBatch(ctx, batch)
		if err != nil {
			t.Fatal(err)
		}
		if len(created) != len(batch) || slices.Contains(created, false) {
			t.Fatalf("a batch without unique keys answered created = %v, want every job created", created)
		}
		if n := countRows(t, s); n != int64(len(batch)) {
			t.Fatalf("%d rows written, want %d", n, len(batch))
		}
		for _, q := range []string{"q", "other"} {
			c, err := s.Counts(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			want := Counts{Ready: 600}
			if q == "other" {
				want = Counts{Ready: 300, Delayed: 300}
			}
			if c != want {
				t.Fatalf("counts of %s: %+v, want %+v", q, c, want)
			}
		}
		got, err := claim(s, "q", "n1", 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 600 {
			t.Fatalf("claimed %d ready jobs of q, want 600", len(got))
		}
		for k, j := range got {
			var i int
			if _, err := fmt.Sscan(string(j.Payload), &i); err != nil {
				t.Fatal(err)
			}
			if j.JobID != batch[i].JobID && !(i == 1099 && j.JobID == "accepted") || j.Priority != int64(i%3) ||
				j.AutoAck != (i%5 == 0) || len(j.Headers["n"]) != 1 || j.Headers["n"][0] != fmt.Sprint(i) {
				t.Fatalf("job %d read back as %+v", i, j)
			}
			// Claimed by priority, then in the batch's order.
			if k > 0 && (got[k-1].Priority == j.Priority && got[k-1].Row > j.Row || got[k-1].Priority > j.Priority) {
				t.Fatalf("claim order broken at %d: %+v before %+v", k, got[k-1], j)
			}
		}
	})
}

// A batch's jobs with unique keys: one whose key a waiting job holds, or an earlier job of the
// batch, is not created; the others are, in the batch's order among the jobs without a key.
func TestInsertBatchWithUniqueKeys(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		insertUnique(t, s, keyed("held", "k1"), true)
		batch := []NewJob{
			{JobID: "a", Queue: "q", Name: "Job"},
			keyed("dup-of-held", "k1"),
			{JobID: "b", Queue: "q", Name: "Job"},
			keyed("first-k2", "k2"),
			{JobID: "c", Queue: "q", Name: "Job"},
			keyed("second-k2", "k2"),
			keyed("k2-elsewhere", "k2"),
			{JobID: "d", Queue: "q", Name: "Job"},
		}
		batch[6].Queue = "q2"
		created, err := s.InsertBatch(ctx, batch)
		if err != nil {
			t.Fatal(err)
		}
		want := []bool{true, false, true, true, true, false, true, true}
		if !slices.Equal(created, want) {
			t.Fatalf("created = %v, want %v", created, want)
		}
		wantRows(t, s, "q", "held=k1", "a=-", "b=-", "first-k2=k2", "c=-", "d=-")
		wantRows(t, s, "q2", "k2-elsewhere=k2")
		exact(t, s, "after a batch with duplicates", "q", "q2")
	})
}
