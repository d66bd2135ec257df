// The targets: each driver configuration under test, and the databases the sql targets run on.

package main

import (
	"database/sql"
	"fmt"
	"os"
	"strings"
	"time"

	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"
)

// memoryPausedCap is what RoadRunner's memory driver can hold while paused: pushes go to a
// channel of this size that only a consuming pipeline empties.
const memoryPausedCap = 100_000

// target is one driver configuration under test.
type target struct {
	name     string
	pipeline string // YAML of the pipeline's driver and config, indented for jobs.pipelines.p
	extra    string // top-level YAML (the sql: section)
	dialect  string // sql targets: sqlite, postgres or mysql (the backlog is written straight into its table)
	dsn      string // sql targets on a server: the run's own database
	server   string // sql targets on a server: the DSN of the server's default database
	db       string // sql targets on a server: the run's database, dropped after the run
}

// defineTargets names the drivers under test. backends are the sql targets, SQLite first, then
// PostgreSQL and MariaDB when their servers are given; each call of one makes a fresh database,
// so that every run starts on an empty one.
func defineTargets(pgDSN, myDSN string) (memory, boltdb, sqliteNormal target, backends []func() target) {
	backends = []func() target{func() target { return sqlTarget("sql/sqlite", "sqlite", "", "") }}
	if pgDSN != "" {
		backends = append(backends, func() target { return sqlTarget("sql/postgres", "postgres", pgDSN, "") })
	}
	if myDSN != "" {
		backends = append(backends, func() target { return sqlTarget("sql/mariadb", "mysql", myDSN, "") })
	}
	memory = target{name: "memory", pipeline: "driver: memory\n      config:\n        prefetch: 1000"}
	// boltdb counts every pushed job as in flight and stops delivering above prefetch, so a
	// backlog pushed while paused never drains unless prefetch exceeds it.
	boltdb = target{name: "boltdb", pipeline: "driver: boltdb\n      config:\n        prefetch: 10000000\n        file: %DIR%/bolt.db"}
	// The durability trade-off: SQLite without an fsync per commit.
	sqliteNormal = sqlTarget("sql/sqlite (synchronous: normal)", "sqlite", "", "normal")
	return memory, boltdb, sqliteNormal, backends
}

// sqlTarget is the sql driver on one database: SQLite in the run's directory, or a fresh database
// on the server that serverDSN names. synchronous is SQLite's setting ("" for the default).
func sqlTarget(name, dialect, serverDSN, synchronous string) target {
	tg := target{name: name, dialect: dialect, pipeline: "driver: sql\n      config:\n        prefetch: 1000"}
	switch dialect {
	case "sqlite":
		tg.extra = "sql:\n  connections:\n    default:\n      dsn: %DIR%/jobs.db"
		if synchronous != "" {
			tg.extra += "\n      synchronous: " + synchronous
		}
	case "postgres":
		tg.db, tg.dsn = freshDB(dialect, serverDSN)
		tg.server = serverDSN
		tg.extra = fmt.Sprintf("sql:\n  connections:\n    default:\n      dsn: %q", tg.dsn)
	case "mysql":
		tg.db, tg.dsn = freshDB(dialect, serverDSN)
		tg.server = serverDSN
		tg.extra = fmt.Sprintf("sql:\n  connections:\n    default:\n      dialect: mysql\n      dsn: %q", tg.dsn)
	}
	return tg
}

// driverNames are the database/sql drivers of the targets' dialects.
var driverNames = map[string]string{"sqlite": "sqlite", "postgres": "pgx", "mysql": "mysql"}

var dbSeq int

// freshDB creates a database for one run (the DSN names the server's default one) and returns
// its name and DSN.
func freshDB(dialect, dsn string) (name, dbDSN string) {
	dbSeq++
	name = fmt.Sprintf("bench_%d_%d", time.Now().Unix(), dbSeq)
	if err := serverExec(dialect, dsn, "CREATE DATABASE "+name); err != nil {
		fail("create database: %v", err)
	}
	if dialect == "postgres" {
		return name, strings.Replace(dsn, "/postgres?", "/"+name+"?", 1)
	}
	return name, strings.Replace(dsn, "/rr", "/"+name, 1)
}

// dropDB drops a run's database once its rr has stopped: a million rows left behind would be
// vacuumed or purged by the server while the next runs are measured.
func dropDB(tg target) {
	if tg.db == "" {
		return
	}
	stmt := "DROP DATABASE " + tg.db
	if tg.dialect == "postgres" {
		stmt += " WITH (FORCE)"
	}
	if err := serverExec(tg.dialect, tg.server, stmt); err != nil {
		fmt.Fprintf(os.Stderr, "   drop database %s: %v\n", tg.db, err)
	}
}

// serverExec runs one statement on the server's default database.
func serverExec(dialect, dsn, stmt string) error {
	db, err := sql.Open(driverNames[dialect], dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.Exec(stmt); err != nil {
		return fmt.Errorf("%s: %w", stmt, err)
	}
	return nil
}

// serverQueries reads MariaDB's count of statements run since it started (Queries), which moves
// as each statement runs; -1 for the other targets.
func serverQueries(tg target) int64 {
	if tg.dialect != "mysql" {
		return -1
	}
	db, err := sql.Open("mysql", tg.dsn)
	if err != nil {
		return -1
	}
	defer db.Close()
	var name string
	var n int64
	if err := db.QueryRow("SHOW GLOBAL STATUS LIKE 'Queries'").Scan(&name, &n); err != nil {
		return -1
	}
	return n
}
