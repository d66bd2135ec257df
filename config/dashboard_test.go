package config

import (
	"strings"
	"testing"
	"time"
)

// hashOfSecret is bcrypt("secret") at cost 4.
const hashOfSecret = "$2a$04$klOPfYw0BTleVSIW9sWm7ukbJcZSev8nznUf63dZvDs7T.QFPgTXG"

func TestDashboardOffByDefault(t *testing.T) {
	g, err := ParseGlobal(nil)
	if err != nil {
		t.Fatal(err)
	}
	if g.Dashboard.Listen != "" || g.Dashboard.HistoryRetention != DefaultHistoryRetention {
		t.Fatalf("dashboard = %+v, want off with a retention of %s", g.Dashboard, DefaultHistoryRetention)
	}
}

func TestDashboardOptions(t *testing.T) {
	g, err := ParseGlobal(map[string]any{"dashboard": map[string]any{
		"listen": "0.0.0.0:8089", "read_only": true, "history_retention": "48h",
		"auth": map[string]any{"user": "ops", "password_hash": hashOfSecret, "token": "0123456789abcdef0123"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	d := g.Dashboard
	if d.Listen != "0.0.0.0:8089" || !d.ReadOnly || d.HistoryRetention != 48*time.Hour ||
		d.Auth.User != "ops" || d.Auth.PasswordHash != hashOfSecret || d.Auth.Token != "0123456789abcdef0123" {
		t.Fatalf("dashboard = %+v", d)
	}
	for _, listen := range []string{"127.0.0.1:8089", "localhost:8089", "[::1]:8089"} {
		if _, err := ParseGlobal(map[string]any{"dashboard": map[string]any{"listen": listen}}); err != nil {
			t.Errorf("listen %s without auth: %v (loopback needs none)", listen, err)
		}
	}
}

func TestDashboardErrorsNameTheKey(t *testing.T) {
	cases := []struct {
		name string
		raw  map[string]any
		want []string
	}{
		{"public without auth", map[string]any{"listen": "0.0.0.0:8089"}, []string{`sql.dashboard: option "listen"`, "not a loopback address", "sql.dashboard.auth"}},
		{"all interfaces without auth", map[string]any{"listen": ":8089"}, []string{`option "listen"`, "not a loopback address"}},
		{"host name without auth", map[string]any{"listen": "dash.example.com:8089"}, []string{`option "listen"`, "not a loopback address"}},
		{"no port", map[string]any{"listen": "127.0.0.1"}, []string{`option "listen"`, "host:port"}},
		{"unknown key", map[string]any{"listen": "127.0.0.1:1", "readonly": true}, []string{`sql.dashboard: unknown option "readonly"`, "allowed: listen, read_only, auth, history_retention"}},
		{"unknown auth key", map[string]any{"auth": map[string]any{"password": "x"}}, []string{`sql.dashboard.auth: unknown option "password"`}},
		{"user without hash", map[string]any{"auth": map[string]any{"user": "ops"}}, []string{`option "password_hash" is required`}},
		{"mangled hash", map[string]any{"auth": map[string]any{"user": "ops", "password_hash": "a$04$YWa3N9"}}, []string{`option "password_hash": not a bcrypt hash`, "${DASHBOARD_PASSWORD_HASH}"}},
		{"short token", map[string]any{"auth": map[string]any{"token": "abc"}}, []string{`option "token"`, "at least 16"}},
		{"short retention", map[string]any{"history_retention": "1m"}, []string{`option "history_retention"`, "between 1h0m0s"}},
		{"read_only not bool", map[string]any{"read_only": "maybe"}, []string{`option "read_only"`, "true or false"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseGlobal(map[string]any{"dashboard": tc.raw})
			if err == nil {
				t.Fatal("expected an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}
