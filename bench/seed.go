package main

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// seed writes n ready jobs of queue p into the sql target's table with multi-row INSERTs, in
// transactions of 50,000: the columns of the transactional-enqueue contract (examples/enqueue.php).
// With groups > 0, job i belongs to group t(i % groups) (column grp and header tenant).
func seed(tg target, dir string, n, groups int) error {
	driverName, dsn := driverNames[tg.dialect], tg.dsn
	if tg.dialect == "sqlite" {
		dsn = "file:" + filepath.Join(dir, "jobs.db") + "?_pragma=busy_timeout(10000)"
	}
	db, err := sql.Open(driverName, dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	cols := []string{"queue", "job_id", "name", "payload", "headers", "priority", "available_at", "created_at"}
	if groups > 0 {
		cols = append(cols, "grp")
	}
	const rowsPerInsert, rowsPerTx = 500, 50_000
	now := time.Now().UnixMilli()
	payload := []byte(`{"action":"ack"}`)
	for from := 0; from < n; from += rowsPerTx {
		tx, err := db.Begin()
		if err != nil {
			return err
		}
		for i := from; i < min(from+rowsPerTx, n); i += rowsPerInsert {
			rows := min(rowsPerInsert, n-i, from+rowsPerTx-i)
			args := make([]any, 0, rows*len(cols))
			for j := i; j < i+rows; j++ {
				if groups == 0 {
					args = append(args, "p", jobID(fmt.Sprint("seed-", j)), "Job", payload, "{}", 10, now, now)
					continue
				}
				group := fmt.Sprint("t", j%groups)
				args = append(args, "p", jobID(fmt.Sprint("seed-", j)), "Job", payload, `{"tenant":["`+group+`"]}`, 10, now, now, group)
			}
			if _, err := tx.Exec(insertColumns(tg.dialect, cols, rows), args...); err != nil {
				_ = tx.Rollback()
				return err
			}
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	// A backlog that built up over time would have been analyzed, vacuumed and written out to the
	// data files as it grew; one written in seconds has not, and the database would do it during
	// the measured windows.
	settle := map[string][]string{
		"sqlite":   {"ANALYZE", "PRAGMA wal_checkpoint(TRUNCATE)"},
		"postgres": {"VACUUM (ANALYZE) rr_jobs", "CHECKPOINT"},
		"mysql":    {"ANALYZE TABLE rr_jobs"},
	}[tg.dialect]
	for _, stmt := range settle {
		if _, err := db.Exec(stmt); err != nil {
			return fmt.Errorf("%s: %w", stmt, err)
		}
	}
	if tg.dialect == "mysql" {
		return flushInnoDB(db)
	}
	return nil
}

// insertColumns is a multi-row INSERT into rr_jobs of cols with placeholders for rows rows.
func insertColumns(dialect string, cols []string, rows int) string {
	var b strings.Builder
	b.WriteString("INSERT INTO rr_jobs (" + strings.Join(cols, ", ") + ") VALUES ")
	for row := range rows {
		if row > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(")
		for col := range cols {
			if col > 0 {
				b.WriteString(", ")
			}
			if dialect == "postgres" {
				fmt.Fprintf(&b, "$%d", row*len(cols)+col+1)
			} else {
				b.WriteString("?")
			}
		}
		b.WriteString(")")
	}
	return b.String()
}

// flushInnoDB has InnoDB write out the pages the seeding dirtied (about 100 MB for a million jobs)
// and waits until at most 1 % of the buffer pool is dirty, then restores the server's setting.
func flushInnoDB(db *sql.DB) error {
	var was float64
	if err := db.QueryRow("SELECT @@GLOBAL.innodb_max_dirty_pages_pct").Scan(&was); err != nil {
		return err
	}
	if _, err := db.Exec("SET GLOBAL innodb_max_dirty_pages_pct = 0"); err != nil {
		return err
	}
	defer func() { _, _ = db.Exec("SET GLOBAL innodb_max_dirty_pages_pct = ?", was) }()
	status := func(name string) (n int64, err error) {
		err = db.QueryRow("SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = ?", name).Scan(&n)
		return n, err
	}
	total, err := status("INNODB_BUFFER_POOL_PAGES_TOTAL")
	if err != nil {
		return err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		dirty, err := status("INNODB_BUFFER_POOL_PAGES_DIRTY")
		if err != nil {
			return err
		}
		if dirty*100 <= total {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("InnoDB still has %d of %d pages dirty after 2 minutes", dirty, total)
		}
		time.Sleep(100 * time.Millisecond) // polling the server's counter
	}
}
