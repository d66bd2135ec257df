package store

import (
	"bytes"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// schemaDir is the repository's schema/ directory, the files a DBA applies with `migrate: false`.
const schemaDir = "../schema"

// TestSchemaFilesAreUpToDate: schema/*.sql are what the embedded migrations make (a new migration
// leaves them stale until they are generated again).
func TestSchemaFilesAreUpToDate(t *testing.T) {
	files, err := SchemaFiles()
	if err != nil {
		t.Fatal(err)
	}
	onDisk, err := filepath.Glob(filepath.Join(schemaDir, "*.sql"))
	if err != nil {
		t.Fatal(err)
	}
	var want, have []string
	for name := range files {
		want = append(want, name)
	}
	for _, p := range onDisk {
		have = append(have, filepath.Base(p))
	}
	sort.Strings(want)
	sort.Strings(have)
	if fmt.Sprint(have) != fmt.Sprint(want) {
		t.Errorf("schema/ holds %v, want %v: regenerate with `go generate ./store` (or `make schema`)", have, want)
	}
	for name, content := range files {
		got, err := os.ReadFile(filepath.Join(schemaDir, name))
		if err != nil {
			continue // reported above
		}
		if string(got) != content {
			t.Errorf("schema/%s differs from store.SchemaSQL(%q) (a migration was added or changed): regenerate with `go generate ./store` (or `make schema`)",
				name, strings.TrimSuffix(name, ".sql"))
		}
	}
}

// TestSchemaFilesApplyByHand: a schema file applied by hand to an empty database leaves it as the
// driver's own migration does, with the same version rows, so that a start with migrate on applies
// nothing again and a start with migrate off accepts it; the store then works on it.
func TestSchemaFilesApplyByHand(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres", "mysql"} {
		t.Run(dialect, func(t *testing.T) {
			script, err := os.ReadFile(filepath.Join(schemaDir, dialect+".sql"))
			if err != nil {
				t.Fatal(err)
			}
			byHand, byDriver := schemaTestDatabase(t, dialect), schemaTestDatabase(t, dialect)

			before := time.Now()
			db := byHand.open(t)
			if dialect == "mysql" {
				applyWithTheMySQLClient(t, byHand.dsn, script)
			} else if _, err := db.ExecContext(ctx, string(script)); err != nil {
				t.Fatalf("schema/%s.sql does not apply to an empty database: %v", dialect, err)
			}
			versions := appliedVersions(t, db)
			if len(versions) == 0 {
				t.Fatal("no version rows in rr_schema_migrations")
			}
			for _, v := range versions {
				if at := time.UnixMilli(v.appliedAt); at.Before(before.Add(-10*time.Minute)) || at.After(time.Now().Add(10*time.Minute)) {
					t.Errorf("migration %s: applied_at %s, want the time the file was applied (%s)", v.name, at, before)
				}
			}
			handSchema := schemaSnapshot(t, dialect, db)

			s := byDriver.openStore(t, true)
			driverSchema := schemaSnapshot(t, dialect, s.(*sqlStore).w)
			if driverVersions := appliedVersions(t, s.(*sqlStore).w); fmt.Sprint(names(driverVersions)) != fmt.Sprint(names(versions)) {
				t.Errorf("versions recorded by hand %v, by the driver %v", names(versions), names(driverVersions))
			}
			_ = s.Close()
			if diff := rowsDiff(handSchema, driverSchema); diff != "" {
				t.Errorf("schema applied by hand differs from the driver's migration (-by hand +by the driver):\n%s", diff)
			}

			s = byHand.openStore(t, false)
			_ = s.Close()
			s = byHand.openStore(t, true)
			if again := appliedVersions(t, db); fmt.Sprint(again) != fmt.Sprint(versions) {
				t.Errorf("a start with migrate on changed rr_schema_migrations:\nbefore %v\nafter  %v", versions, again)
			}
			if diff := rowsDiff(handSchema, schemaSnapshot(t, dialect, db)); diff != "" {
				t.Errorf("a start with migrate on changed the schema applied by hand (-before +after):\n%s", diff)
			}
			mustInsert(t, s, NewJob{JobID: "j1", Payload: []byte("x")})
			got, err := claim(s, "q", "n", 10)
			if err != nil || len(got) != 1 || got[0].JobID != "j1" {
				t.Fatalf("claim on the schema applied by hand = %v, %v; want j1", got, err)
			}
			if n, err := ack(s, got[0].Fence); err != nil || n != 1 {
				t.Fatalf("ack = %d, %v", n, err)
			}
		})
	}
}

// schemaTestDatabase is one empty database: an SQLite file, or a database of its own on the
// PostgreSQL or MySQL test server (dropped after the test).
type schemaTestDB struct {
	dialect, dsn string
}

func schemaTestDatabase(t *testing.T, dialect string) schemaTestDB {
	t.Helper()
	if dialect == "sqlite" {
		return schemaTestDB{dialect, filepath.Join(t.TempDir(), "jobs.db")}
	}
	driverName, env := "pgx", "SQLJOBS_POSTGRES_DSN"
	if dialect == "mysql" {
		driverName, env = "mysql", "SQLJOBS_MYSQL_DSN"
	}
	server := serverDSN(t, env)
	name := fmt.Sprintf("schema_%d_%d", time.Now().UnixNano()%1e9, rand.IntN(1e6))
	admin, err := sql.Open(driverName, server)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		admin, err := sql.Open(driverName, server)
		if err == nil {
			_, _ = admin.ExecContext(ctx, "DROP DATABASE "+name+map[string]string{"pgx": " WITH (FORCE)", "mysql": ""}[driverName])
			_ = admin.Close()
		}
	})
	if dialect == "mysql" {
		cfg, err := mysql.ParseDSN(server)
		if err != nil {
			t.Fatal(err)
		}
		cfg.DBName = name
		return schemaTestDB{dialect, cfg.FormatDSN()}
	}
	return schemaTestDB{dialect, strings.Replace(server, "/postgres?", "/"+name+"?", 1)}
}

// open is a plain connection, as a DBA's client has: a script of many statements runs as one.
func (d schemaTestDB) open(t *testing.T) *sql.DB {
	t.Helper()
	var (
		db  *sql.DB
		err error
	)
	switch d.dialect {
	case "sqlite":
		db, err = sqlOpen(d.dsn)
	case "postgres":
		db, err = sql.Open("pgx", d.dsn)
	case "mysql":
		var cfg *mysql.Config
		if cfg, err = mysql.ParseDSN(d.dsn); err == nil {
			cfg.MultiStatements = true
			db, err = sql.Open("mysql", cfg.FormatDSN())
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func (d schemaTestDB) openStore(t *testing.T, migrate bool) Store {
	t.Helper()
	s, err := d.tryOpenStore(migrate)
	if err != nil {
		t.Fatalf("open the store (migrate: %v): %v", migrate, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func (d schemaTestDB) tryOpenStore(migrate bool) (Store, error) {
	switch d.dialect {
	case "sqlite":
		return OpenSQLite(ctx, SQLiteOptions{Path: d.dsn, Synchronous: "normal", BusyTimeout: 5 * time.Second, SkipMigrations: !migrate})
	case "postgres":
		return OpenPostgres(ctx, ServerOptions{DSN: d.dsn, MaxOpenConns: 4, Migrate: migrate})
	default:
		return OpenMySQL(ctx, ServerOptions{DSN: d.dsn, MaxOpenConns: 4, Migrate: migrate})
	}
}

// TestANewerSchemaStopsTheStart: a database that a newer build migrated (it records a migration
// this build does not have) is refused at start, with migrate on and off, before anything is
// read or written under rules this build does not know.
func TestANewerSchemaStopsTheStart(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres", "mysql"} {
		t.Run(dialect, func(t *testing.T) {
			d := schemaTestDatabase(t, dialect)
			_ = d.openStore(t, true).Close()
			migrations, err := Migrations(dialect)
			if err != nil {
				t.Fatal(err)
			}
			known := migrations[len(migrations)-1].Version
			if _, err := d.open(t).ExecContext(ctx, `INSERT INTO rr_schema_migrations (version, name, applied_at) VALUES (9001, '9001_from_a_newer_build.sql', 0)`); err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprintf("the schema is at migration 9001, newer than this rr knows (its last is %d)", known)
			for _, migrate := range []bool{true, false} {
				s, err := d.tryOpenStore(migrate)
				if err == nil {
					_ = s.Close()
					t.Fatalf("migrate %v: a schema at migration 9001 was accepted by a build that knows up to %d", migrate, known)
				}
				if !strings.Contains(err.Error(), want) {
					t.Fatalf("migrate %v: err = %v, want it to say %q", migrate, err, want)
				}
			}
		})
	}
}

type appliedVersion struct {
	version   int
	name      string
	appliedAt int64
}

func appliedVersions(t *testing.T, db *sql.DB) []appliedVersion {
	t.Helper()
	rows, err := db.QueryContext(ctx, `SELECT version, name, applied_at FROM rr_schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []appliedVersion
	for rows.Next() {
		var v appliedVersion
		if err := rows.Scan(&v.version, &v.name, &v.appliedAt); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func names(vs []appliedVersion) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.name
	}
	return out
}

// rowsDiff lists the rows only a has (-) and only b has (+); "" when they are the same.
func rowsDiff(a, b []string) string {
	count := map[string]int{}
	for _, r := range a {
		count[r]++
	}
	for _, r := range b {
		count[r]--
	}
	var out strings.Builder
	for _, r := range append(append([]string{}, a...), b...) {
		switch n := count[r]; {
		case n > 0:
			out.WriteString("- " + r + "\n")
			count[r]--
		case n < 0:
			out.WriteString("+ " + r + "\n")
			count[r]++
		}
	}
	return out.String()
}

// schemaSnapshot describes a database's tables, columns, indexes, triggers and functions, a row
// each, in a stable order (what two databases with the same schema have in common).
func schemaSnapshot(t *testing.T, dialect string, db *sql.DB) []string {
	t.Helper()
	var queries []string
	switch dialect {
	case "sqlite":
		queries = []string{`SELECT type || ' ' || name || ': ' || COALESCE(sql, '') FROM sqlite_master
			WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name`}
	case "postgres":
		queries = []string{
			`SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' ' || COALESCE(column_default, '')
				FROM information_schema.columns WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position`,
			`SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() ORDER BY indexname`,
			`SELECT c.relname || ' ' || COALESCE(array_to_string(c.reloptions, ','), '') FROM pg_class c
				WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r' ORDER BY c.relname`,
			`SELECT pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
				WHERE NOT t.tgisinternal AND c.relnamespace = current_schema()::regnamespace ORDER BY t.tgname`,
			`SELECT pg_get_functiondef(p.oid) FROM pg_proc p WHERE p.pronamespace = current_schema()::regnamespace ORDER BY p.proname`,
		}
	case "mysql":
		var tables []string
		rows, err := db.QueryContext(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() ORDER BY table_name`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var name string
			if err := rows.Scan(&name); err != nil {
				t.Fatal(err)
			}
			tables = append(tables, name)
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
		var out []string
		autoIncrement := regexp.MustCompile(` AUTO_INCREMENT=\d+`)
		for _, table := range tables {
			var name, create string
			if err := db.QueryRowContext(ctx, "SHOW CREATE TABLE "+table).Scan(&name, &create); err != nil {
				t.Fatal(err)
			}
			for _, line := range strings.Split(autoIncrement.ReplaceAllString(create, ""), "\n") {
				out = append(out, table+": "+strings.TrimSuffix(strings.TrimSpace(line), ","))
			}
		}
		rows, err = db.QueryContext(ctx, `SELECT CONCAT_WS(' ', trigger_name, action_timing, event_manipulation, event_object_table, action_statement)
			FROM information_schema.triggers WHERE trigger_schema = DATABASE() ORDER BY trigger_name`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var trigger string
			if err := rows.Scan(&trigger); err != nil {
				t.Fatal(err)
			}
			out = append(out, "trigger "+trigger)
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	var out []string
	for _, q := range queries {
		rows, err := db.QueryContext(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			out = append(out, line)
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// applyWithTheMySQLClient applies a script as the schema file's header tells a DBA to: through the
// mysql command-line client (mariadb on MariaDB installs), which cuts statements at its delimiter.
func applyWithTheMySQLClient(t *testing.T, dsn string, script []byte) {
	t.Helper()
	client, err := exec.LookPath("mariadb")
	if err != nil {
		if client, err = exec.LookPath("mysql"); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatal("no mysql client (mariadb or mysql) in PATH: CI installs mariadb-server, which has it")
			}
			t.Skip("no mysql client (mariadb or mysql) in PATH: schema/mysql.sql is applied with it")
		}
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	host, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(client, "--no-defaults", "--protocol=TCP", "-h", host, "-P", port, "-u", cfg.User, cfg.DBName)
	cmd.Env = append(os.Environ(), "MYSQL_PWD="+cfg.Passwd)
	cmd.Stdin = bytes.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("schema/mysql.sql does not apply with %s: %v\n%s", client, err, out)
	}
}
