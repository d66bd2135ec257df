package store

import (
	"net/url"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
)

// password is full of the characters DSN forms use as separators or quotes.
const password = `Zq@9:K/v?W&x=Y'j\M"8`

// leaks tells whether s shows any 4 characters in a row of the password, as written or encoded.
func leaks(s string) bool {
	for _, p := range []string{password, url.QueryEscape(password), url.PathEscape(password), url.UserPassword("u", password).String()} {
		for i := 0; i+4 <= len(p); i++ {
			if strings.Contains(s, p[i:i+4]) {
				return true
			}
		}
	}
	return false
}

// TestDescribeDSNShowsNoPassword: every DSN form the drivers accept, with a password full of
// separators: what logs and errors show is read by the driver's own parser and holds no part of it.
func TestDescribeDSNShowsNoPassword(t *testing.T) {
	kv := strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(password)
	cases := []struct {
		dialect, dsn, want string
	}{
		{"postgres", "postgres://" + url.UserPassword("rr", password).String() + "@127.0.0.1:5432/app?sslmode=disable", "postgres://rr@127.0.0.1:5432/app"},
		{"postgres", (&url.URL{Scheme: "postgresql", User: url.UserPassword("rr", password), Host: "db.local:6543", Path: "/app"}).String(), "postgres://rr@db.local:6543/app"},
		{"postgres", "postgres://rr@127.0.0.1:5432/app?sslmode=disable&password=" + url.QueryEscape(password), "postgres://rr@127.0.0.1:5432/app"},
		{"postgres", "host=127.0.0.1 port=5432 user=rr dbname=app password='" + kv + "' sslmode=disable", "postgres://rr@127.0.0.1:5432/app"},
		{"postgres", "password='" + kv + "' host=10.0.0.5 user=rr dbname=app", "postgres://rr@10.0.0.5:5432/app"},
		{"mysql", "rr:" + password + "@tcp(127.0.0.1:3306)/app?parseTime=true", "rr@tcp(127.0.0.1:3306)/app"},
		{"mysql", "mysql://rr:" + password + "@tcp(db:3306)/app", "rr@tcp(db:3306)/app"},
		{"mysql", "rr:" + password + "@unix(/run/mysqld/mysqld.sock)/app", "rr@unix(/run/mysqld/mysqld.sock)/app"},
	}
	for _, c := range cases {
		// The test's DSNs must carry the password as the driver reads it.
		switch c.dialect {
		case "postgres":
			if cfg, err := pgx.ParseConfig(c.dsn); err != nil || cfg.Password != password {
				t.Fatalf("pgx reads %q: %v", c.dsn, err)
			}
		case "mysql":
			if cfg, err := mysql.ParseDSN(strings.TrimPrefix(c.dsn, "mysql://")); err != nil || cfg.Passwd != password {
				t.Fatalf("go-sql-driver reads %q: %v", c.dsn, err)
			}
		}
		got := DescribeDSN(c.dialect, c.dsn)
		if leaks(got) || got != c.want {
			t.Errorf("DescribeDSN(%s, %q) = %q, want %q", c.dialect, c.dsn, got, c.want)
		}
	}
	for _, broken := range []struct{ dialect, dsn string }{
		{"postgres", "host=x password='" + password + " unterminated"},
		{"postgres", "postgres://rr:" + password + "@host:notaport/app"},
		{"mysql", "rr:" + password + "@tcp(127.0.0.1:3306"},
	} {
		if got := DescribeDSN(broken.dialect, broken.dsn); leaks(got) {
			t.Errorf("DescribeDSN of a broken %s DSN = %q: it shows the password", broken.dialect, got)
		}
	}
}
