package store

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// bulkInsert inserts n rows into a table of the store, a thousand per statement.
func bulkInsert(t *testing.T, s Store, table string, n int) {
	t.Helper()
	st := s.(*sqlStore)
	tx, err := st.w.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	row, columns := `('q', ?, 'Job', ?, '{}', 10, 0, 0)`, `queue, job_id, name, payload, headers, priority, available_at, created_at`
	if table == "rr_failed_jobs" {
		row, columns = `('q', ?, 'Job', ?, '{}', 10, 1, 'boom', 0)`, `queue, job_id, name, payload, headers, priority, attempts, error, failed_at`
	}
	for from := 0; from < n; from += 1000 {
		count := min(1000, n-from)
		args := make([]any, 0, 2*count)
		for i := range count {
			args = append(args, fmt.Sprint("bulk-", from+i), []byte("x"))
		}
		if _, err := tx.ExecContext(ctx, st.q(`INSERT INTO `+table+` (`+columns+`) VALUES `+strings.TrimSuffix(strings.Repeat(row+",", count), ",")), args...); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

func failedIDs(t *testing.T, s Store) []int64 {
	t.Helper()
	rows, err := s.(*sqlStore).r.QueryContext(ctx, `SELECT id FROM rr_failed_jobs`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		out = append(out, id)
	}
	return out
}

// TestStatementsWithManyIDsAreChunked: a claim of 70,000 jobs (prefetch goes up to 100,000), acks
// of as many, and failed-job retries and deletes of 70,000 ids: more placeholders than MySQL
// (65,535) or SQLite (32,766) take in one statement, so each is cut into chunks.
func TestStatementsWithManyIDsAreChunked(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		const n = 70_000
		start := time.Now()
		bulkInsert(t, s, "rr_jobs", n)
		got, err := claim(s, "q", "node", n)
		if err != nil || len(got) != n {
			t.Fatalf("claimed %d of %d: %v", len(got), n, err)
		}
		fences := fencesOf(got)
		if deleted, err := s.Write(ctx, Batch{Acks: fences}); err != nil || deleted != n {
			t.Fatalf("acked %d of %d: %v", deleted, n, err)
		}
		bulkInsert(t, s, "rr_failed_jobs", n)
		if retried, err := s.RetryFailed(ctx, Selection{Queue: "q", IDs: failedIDs(t, s)}); err != nil || retried != n {
			t.Fatalf("retried %d of %d: %v", retried, n, err)
		}
		bulkInsert(t, s, "rr_failed_jobs", n)
		if deleted, err := s.DeleteFailed(ctx, Selection{Queue: "q", IDs: failedIDs(t, s)}); err != nil || deleted != n {
			t.Fatalf("deleted %d of %d failed jobs: %v", deleted, n, err)
		}
		t.Logf("%s: 70,000 ids claimed, acked, retried and deleted in %s", s.Dialect(), time.Since(start).Round(time.Millisecond))
	})
}
