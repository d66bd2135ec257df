package pipeline

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/rr-sql/sqljobs/config"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// password is full of the characters DSN forms use as separators or quotes.
const password = `Zq@9:K/v?W&x=Y'j\M"8`

// leaks tells whether s shows any 4 characters in a row of the password, as written or encoded.
func leaks(s string) bool {
	for _, p := range []string{password, url.QueryEscape(password), url.UserPassword("u", password).String()} {
		for i := 0; i+4 <= len(p); i++ {
			if strings.Contains(s, p[i:i+4]) {
				return true
			}
		}
	}
	return false
}

// serverDSN is a test database server's DSN; outside CI a missing one skips.
func serverDSN(t *testing.T, env string) string {
	dsn := os.Getenv(env)
	if dsn == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set: CI must start the database servers (scripts/db-servers.sh)", env)
		}
		t.Skipf("%s is not set: start the servers with `eval \"$(scripts/db-servers.sh start)\"`", env)
	}
	return dsn
}

// TestConnectionLogsShowNoPassword opens real connections as a user whose password is full of
// separators, in every DSN form, and a connection that fails: nothing logged or returned shows it.
func TestConnectionLogsShowNoPassword(t *testing.T) {
	kv := strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(password)
	forms := map[string]func(t *testing.T) (dsns []string, broken string){
		"postgres": func(t *testing.T) ([]string, string) {
			admin := serverDSN(t, "SQLJOBS_POSTGRES_DSN")
			cfg, err := pgx.ParseConfig(admin)
			if err != nil {
				t.Fatal(err)
			}
			db := freshDatabase(t, "pgx", admin, " WITH (FORCE)")
			execAdmin(t, "pgx", admin, `DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'rr_secret') THEN CREATE ROLE rr_secret LOGIN SUPERUSER; END IF; END $$`,
				fmt.Sprintf(`ALTER ROLE rr_secret PASSWORD '%s'`, strings.ReplaceAll(password, "'", "''")))
			cfg.Database = db
			hostPort := fmt.Sprintf("%s:%d", cfg.Host, cfg.Port)
			return []string{
					"postgres://" + url.UserPassword("rr_secret", password).String() + "@" + hostPort + "/" + cfg.Database + "?sslmode=disable",
					"postgres://rr_secret@" + hostPort + "/" + cfg.Database + "?sslmode=disable&password=" + url.QueryEscape(password),
					fmt.Sprintf("host=%s port=%d user=rr_secret dbname=%s sslmode=disable password='%s'", cfg.Host, cfg.Port, cfg.Database, kv),
				},
				"postgres://" + url.UserPassword("rr_secret", password).String() + "@" + hostPort + "/no_such_db?sslmode=disable"
		},
		"mysql": func(t *testing.T) ([]string, string) {
			admin := serverDSN(t, "SQLJOBS_MYSQL_DSN")
			cfg, err := mysql.ParseDSN(admin)
			if err != nil {
				t.Fatal(err)
			}
			cfg.DBName = freshDatabase(t, "mysql", admin, "")
			quoted := strings.NewReplacer(`\`, `\\`, `'`, `''`).Replace(password)
			execAdmin(t, "mysql", admin, `DROP USER IF EXISTS 'rr_secret'@'%'`,
				fmt.Sprintf(`CREATE USER 'rr_secret'@'%%' IDENTIFIED BY '%s'`, quoted), `GRANT ALL ON *.* TO 'rr_secret'@'%'`)
			return []string{"rr_secret:" + password + "@tcp(" + cfg.Addr + ")/" + cfg.DBName},
				"rr_secret:" + password + "x@tcp(" + cfg.Addr + ")/" + cfg.DBName
		},
	}
	for dialect, form := range forms {
		t.Run(dialect, func(t *testing.T) {
			dsns, broken := form(t)
			for _, dsn := range append(dsns, broken) {
				core, logs := observer.New(zap.DebugLevel)
				global, err := config.ParseGlobal(map[string]any{"connections": map[string]any{
					"secret": map[string]any{"dialect": dialect, "dsn": dsn, "connect_timeout": "3s"},
				}})
				if err != nil {
					t.Fatal(err)
				}
				r := NewRegistry(global, zap.New(core))
				c, err := r.Acquire(context.Background(), &config.Pipeline{Name: "p", Connection: "secret", Lease: 1 << 62})
				if dsn == broken {
					if err == nil {
						t.Fatalf("a connection that must fail opened: %s", dsn)
					}
					if leaks(err.Error()) {
						t.Errorf("the error shows the password: %v", err)
					}
				} else {
					if err != nil {
						t.Fatalf("open: %v", err)
					}
					c.Release(context.Background())
				}
				entries := logs.All()
				if dsn != broken && len(entries) == 0 {
					t.Fatal("nothing was logged: the test proves nothing")
				}
				for _, e := range entries {
					if line := fmt.Sprint(e.Message, e.ContextMap()); leaks(line) {
						t.Errorf("a log entry shows the password: %s", line)
					}
				}
			}
		})
	}
}

// freshDatabase creates an empty database on a test server, dropped after the test.
func freshDatabase(t *testing.T, driver, admin, dropSuffix string) string {
	t.Helper()
	name := fmt.Sprintf("secret_%d", time.Now().UnixNano()%1e9)
	execAdmin(t, driver, admin, "CREATE DATABASE "+name)
	t.Cleanup(func() {
		if db, err := sql.Open(driver, admin); err == nil {
			_, _ = db.Exec("DROP DATABASE " + name + dropSuffix)
			_ = db.Close()
		}
	})
	return name
}

func execAdmin(t *testing.T, driver, dsn string, statements ...string) {
	t.Helper()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, st := range statements {
		if _, err := db.Exec(st); err != nil {
			t.Fatalf("%s: %v", st, err)
		}
	}
}
