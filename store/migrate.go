package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

//go:generate go run ./internal/schemagen -out ../schema

//go:embed migrations
var migrationFS embed.FS

// Migration is one versioned schema step of a dialect.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations lists a dialect's embedded migrations in order (also what a DBA can print and apply by hand).
func Migrations(dialectName string) ([]Migration, error) {
	dir := path.Join("migrations", dialectName)
	entries, err := fs.ReadDir(migrationFS, dir)
	if err != nil {
		return nil, fmt.Errorf("no migrations for dialect %q: %w", dialectName, err)
	}
	var out []Migration
	for _, e := range entries {
		name := e.Name()
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(name, ".sql") {
			return nil, fmt.Errorf("migration file %s: name must be NNNN_description.sql", name)
		}
		body, err := fs.ReadFile(migrationFS, path.Join(dir, name))
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: v, Name: name, SQL: string(body)})
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Version < out[b].Version })
	return out, nil
}

// migrate applies the migrations the database lacks, each in its own transaction with its version row,
// so a crash between two leaves a consistent, resumable schema.
// schemaMigrationsDDL creates the table that records applied migrations (same on every database).
const schemaMigrationsDDL = `CREATE TABLE IF NOT EXISTS rr_schema_migrations (
	version INTEGER PRIMARY KEY, name VARCHAR(255) NOT NULL, applied_at BIGINT NOT NULL)`

// appliedAtSQL is the database's clock in unix milliseconds, for the applied_at of a version row
// written by hand (the driver writes its own clock there).
var appliedAtSQL = map[string]string{
	"sqlite":   `CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)`,
	"postgres": `(extract(epoch FROM clock_timestamp()) * 1000)::bigint`,
	"mysql":    `CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED)`,
}

// SchemaSQL is the whole schema of a dialect as one script, with the bookkeeping rows, for a DBA
// who applies it by hand (connection option `migrate: false`): each migration followed by the
// rr_schema_migrations row the driver writes for it, so that a later start with `migrate: true`
// applies only the migrations added since.
func SchemaSQL(dialectName string) (string, error) {
	migrations, err := Migrations(dialectName)
	if err != nil {
		return "", err
	}
	now, ok := appliedAtSQL[dialectName]
	if !ok || len(migrations) == 0 {
		return "", fmt.Errorf("no schema for dialect %q", dialectName)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "-- The sql jobs driver's schema for %s: migrations %04d to %04d, each followed by the row that\n"+
		"-- records it in rr_schema_migrations, as the driver applies them with `migrate: true`.\n\n",
		dialectName, migrations[0].Version, migrations[len(migrations)-1].Version)
	b.WriteString(schemaMigrationsDDL + ";\n\n")
	for _, m := range migrations {
		if strings.ContainsAny(m.Name, `'\`) {
			return "", fmt.Errorf("migration file %s: a quote in its name", m.Name)
		}
		script := strings.TrimSpace(m.SQL)
		if forClient, ok := clientScript[dialectName]; ok {
			script = forClient(script)
		}
		fmt.Fprintf(&b, "-- %s\n%s\nINSERT INTO rr_schema_migrations (version, name, applied_at) VALUES (%d, '%s', %s);\n\n",
			m.Name, script, m.Version, m.Name, now)
	}
	return b.String(), nil
}

// SchemaFiles are the files of the repository's schema/ directory, by name (sqlite.sql, ...): the
// SchemaSQL of every dialect under a header that says where it comes from.
func SchemaFiles() (map[string]string, error) {
	dirs, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	files := make(map[string]string, len(dirs))
	for _, d := range dirs {
		script, err := SchemaSQL(d.Name())
		if err != nil {
			return nil, err
		}
		files[d.Name()+".sql"] = fmt.Sprintf("-- Generated from store/migrations/%s by store/internal/schemagen: do not edit.\n"+
			"-- Regenerate with `go generate ./store` (or `make schema`) after adding a migration.\n"+
			"-- Apply to an empty database: %s\n\n", d.Name(), applyHint[d.Name()]) + script
	}
	return files, nil
}

// applyHint is how a DBA applies a schema file, stopping at the first error.
var applyHint = map[string]string{
	"sqlite":   "sqlite3 -bail jobs.db < schema/sqlite.sql",
	"postgres": "psql -v ON_ERROR_STOP=1 --single-transaction -d DATABASE -f schema/postgres.sql",
	"mysql":    "mysql DATABASE < schema/mysql.sql",
}

// clientScript adapts a migration to the dialect's command-line client, where the driver's own
// statement splitting (splitStatements) is not what the client does.
var clientScript = map[string]func(string) string{"mysql": forTheMySQLClient}

// Nodes starting at once take a lock first (advisory lock, GET_LOCK, SQLite's write lock).
func (s *sqlStore) migrate(ctx context.Context) error { return s.migrateUpTo(ctx, math.MaxInt) }

// migrateUpTo applies the migrations up to version last (the tests start from older schemas).
func (s *sqlStore) migrateUpTo(ctx context.Context, last int) error {
	migrations, err := Migrations(s.d.name)
	if err != nil {
		return err
	}
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if s.d.lockMigrations != nil {
		unlock, err := s.d.lockMigrations(ctx, conn)
		if err != nil {
			return fmt.Errorf("lock migrations: %w", err)
		}
		defer unlock()
	}
	if _, err = conn.ExecContext(ctx, schemaMigrationsDDL); err != nil {
		return fmt.Errorf("create rr_schema_migrations: %w", err)
	}
	for _, m := range migrations {
		if m.Version > last {
			break
		}
		if err := s.applyMigration(ctx, conn, m); err != nil {
			return fmt.Errorf("migration %s: %w", m.Name, err)
		}
	}
	return nil
}

func (s *sqlStore) applyMigration(ctx context.Context, conn *sql.Conn, m Migration) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	var n int
	if err = tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM rr_schema_migrations WHERE version = ?`), m.Version).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	statements := []string{m.SQL}
	if s.d.noTransactionalDDL {
		statements = splitStatements(m.SQL)
	}
	for _, st := range statements {
		if _, err = tx.ExecContext(ctx, st); err != nil && !alreadyApplied(err) {
			return err
		}
	}
	if _, err = tx.ExecContext(ctx, s.q(`INSERT INTO rr_schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`),
		m.Version, m.Name, time.Now().UnixMilli()); err != nil {
		return err
	}
	return tx.Commit()
}

// alreadyApplied tells a MySQL DDL statement that a crash left applied without its version row
// (MySQL commits each DDL statement on its own): a column or index that exists already.
func alreadyApplied(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && (me.Number == 1060 || me.Number == 1061) // duplicate column, duplicate key name
}

// splitStatements cuts a migration file at the semicolons that end a line; comment lines are dropped.
func splitStatements(script string) []string {
	var (
		out []string
		cur strings.Builder
	)
	for _, line := range strings.Split(script, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteString("\n")
		if strings.HasSuffix(trimmed, ";") {
			out = append(out, strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"))
			cur.Reset()
		}
	}
	if strings.TrimSpace(cur.String()) != "" {
		out = append(out, cur.String())
	}
	return out
}

// start checks the connection and prepares the schema, each within its timeout; on failure it
// closes the store.
func (s *sqlStore) start(ctx context.Context, migrate bool, connectTimeout, migrateTimeout time.Duration) error {
	pingCtx, cancel := withTimeout(ctx, connectTimeout)
	err := s.w.PingContext(pingCtx)
	if err != nil {
		err = connectError(pingCtx, err)
	}
	cancel()
	if err == nil {
		migrateCtx, cancel := withTimeout(ctx, migrateTimeout)
		if err = s.prepareSchema(migrateCtx, migrate); err != nil && migrateCtx.Err() != nil {
			err = fmt.Errorf("schema not ready within migrate_timeout (%s): %w", migrateTimeout, err)
		}
		cancel()
	}
	if err != nil {
		_ = s.Close()
	}
	return err
}

// connectError says that connecting timed out in the words of the option that bounds it.
func connectError(ctx context.Context, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("connect: no answer within connect_timeout: %w", err)
	}
	return fmt.Errorf("connect: %w", err)
}

// withTimeout bounds ctx by d (0: not bounded).
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

// prepareSchema migrates, or (when the operator applies migrations by hand) checks that every
// migration of this build was applied. Either way it refuses a schema that a newer build migrated:
// this build would misread rows written under rules it does not know (an older reaper, for one,
// would hand acked jobs out again).
func (s *sqlStore) prepareSchema(ctx context.Context, migrate bool) error {
	migrations, err := Migrations(s.d.name)
	if err != nil {
		return err
	}
	if migrate {
		if err := s.migrate(ctx); err != nil {
			return err
		}
	}
	var applied, newest int
	err = s.r.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(MAX(version), 0) FROM rr_schema_migrations`).Scan(&applied, &newest)
	switch known := migrations[len(migrations)-1].Version; {
	case err != nil && migrate:
		return fmt.Errorf("read rr_schema_migrations: %w", err)
	case newest > known:
		return fmt.Errorf("the schema is at migration %d, newer than this rr knows (its last is %d): a newer build of github.com/rr-sql/sqljobs migrated this database; run rr built with that version or a later one (schemas are not migrated down)",
			newest, known)
	case !migrate && (err != nil || applied < len(migrations)):
		return fmt.Errorf("migrate is off and the schema lacks migrations (%d of %d applied): apply schema/%s.sql of github.com/rr-sql/sqljobs at the version rr was built with (what `rr schema %s` prints), or set migrate: true",
			applied, len(migrations), s.d.name, s.d.name)
	}
	return nil
}
