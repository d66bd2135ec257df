// What the run ran on: the CPU, the database versions and the disk's flush time, written into
// the report because the figures mean little without them.

package main

import (
	"database/sql"
	"os"
	"strings"
	"time"
)

// machine names the CPU and the versions of SQLite and the database servers, as they answer.
func machine(pgDSN, myDSN string) string {
	cpu := "CPU unknown"
	if info, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(info)) {
			if name, ok := strings.CutPrefix(line, "model name"); ok {
				cpu = "CPU " + strings.TrimSpace(strings.TrimLeft(name, " \t:"))
				break
			}
		}
	}
	parts := []string{cpu}
	version := func(label, driverName, dsn, query string) {
		db, err := sql.Open(driverName, dsn)
		if err != nil {
			return
		}
		defer db.Close()
		var v string
		if db.QueryRow(query).Scan(&v) == nil {
			parts = append(parts, label+" "+v)
		}
	}
	version("SQLite", driverNames["sqlite"], ":memory:", "SELECT sqlite_version()")
	if pgDSN != "" {
		version("PostgreSQL", driverNames["postgres"], pgDSN, "SHOW server_version")
	}
	if myDSN != "" {
		version("MariaDB", driverNames["mysql"], myDSN, "SELECT VERSION()")
	}
	return strings.Join(parts, "; ")
}

// pushIdle is the idle time before each flush of flushTime's second measure: a push's commit
// starts after rr waited for the call, and on a VM a flush that starts from an idle CPU costs more
// than one in a tight loop (docs/bench/push.md).
const pushIdle = 200 * time.Microsecond

// flushTime is the median time to overwrite 8 KiB of a file in dir and fsync it: what one
// durable commit must wait for at least, whatever the database. With idle > 0, the process
// sleeps that long before each flush (not timed).
func flushTime(dir string, idle time.Duration) (time.Duration, error) {
	f, err := os.CreateTemp(dir, "flush")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	block := make([]byte, 8192)
	if _, err := f.Write(make([]byte, 64*len(block))); err != nil {
		return 0, err
	}
	if err := f.Sync(); err != nil {
		return 0, err
	}
	times := make([]float64, 1000)
	for i := range times {
		if idle > 0 {
			time.Sleep(idle)
		}
		start := time.Now()
		if _, err := f.WriteAt(block, int64(i%64*len(block))); err != nil {
			return 0, err
		}
		if err := f.Sync(); err != nil {
			return 0, err
		}
		times[i] = float64(time.Since(start))
	}
	return time.Duration(median(times)), nil
}
