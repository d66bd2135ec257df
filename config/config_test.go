package config

import (
	"strings"
	"testing"
	"time"
)

func TestParseGlobalDefaultsToSQLiteFile(t *testing.T) {
	g, err := ParseGlobal(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := g.Connections[DefaultConnection]
	if c == nil || c.Dialect != SQLite || c.DSN != DefaultSQLiteFile || c.Synchronous != "full" {
		t.Fatalf("default connection = %+v, want sqlite %s with synchronous=full", c, DefaultSQLiteFile)
	}
}

func TestParseGlobalErrorsNameTheKey(t *testing.T) {
	cases := []struct {
		name string
		raw  map[string]any
		want []string
	}{
		{"unknown dialect", map[string]any{"connections": map[string]any{"main": map[string]any{"dialect": "oracle", "dsn": "x"}}},
			[]string{`sql.connections.main: option "dialect"`, "sqlite, postgres, mysql", `"oracle"`}},
		{"unknown key", map[string]any{"connections": map[string]any{"main": map[string]any{"dsn": "a.db", "pool": 3}}},
			[]string{`unknown option "pool"`, "allowed: dialect, dsn"}},
		{"missing dsn", map[string]any{"connections": map[string]any{"pg": map[string]any{"dialect": "postgres"}}},
			[]string{`sql.connections.pg: option "dsn": is required`}},
		{"bad duration", map[string]any{"connections": map[string]any{"main": map[string]any{"heartbeat_interval": "soon"}}},
			[]string{`option "heartbeat_interval"`, `duration string`}},
		{"unknown top key", map[string]any{"conections": map[string]any{}},
			[]string{`sql: unknown option "conections"`}},
		{"ttl below two heartbeats", map[string]any{"connections": map[string]any{"main": map[string]any{"heartbeat_interval": "2s", "node_ttl": "3s"}}},
			[]string{`"node_ttl"`, "twice heartbeat_interval"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseGlobal(tc.raw)
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

func TestDialectFromDSN(t *testing.T) {
	g, err := ParseGlobal(map[string]any{"connections": map[string]any{
		"pg": map[string]any{"dsn": "postgres://u:secret@127.0.0.1:5432/db"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if got := g.Connections["pg"].Dialect; got != Postgres {
		t.Fatalf("dialect = %q, want postgres", got)
	}
}

func TestParsePipelineDefaultsAndTypes(t *testing.T) {
	p, err := ParsePipeline("emails", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Pipeline{Name: "emails", Connection: DefaultConnection, Queue: "emails", Priority: 10, Prefetch: 100, PollInterval: time.Second, Lease: time.Minute,
		MaxAttempts: 3, Backoff: time.Second, BackoffMax: 5 * time.Minute, MaxPayload: DefaultMaxPayload, UniqueWhile: UniqueWaiting}
	if *p != want {
		t.Fatalf("defaults = %+v, want %+v", *p, want)
	}
	p, err = ParsePipeline("emails", map[string]any{"priority": 3, "prefetch": 50.0, "queue": "mail", "poll_interval": "250ms", "max_payload": "512KiB"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Priority != 3 || p.Prefetch != 50 || p.Queue != "mail" || p.PollInterval != 250*time.Millisecond || p.MaxPayload != 512<<10 {
		t.Fatalf("parsed = %+v", *p)
	}
}

func TestParseDeclaredStrings(t *testing.T) {
	// jobs.Declare gives strings, except priority which RoadRunner converts to int64.
	p, err := ParseDeclared("dyn", map[string]any{"driver": "sql", "name": "dyn", "priority": int64(2), "prefetch": "7", "poll_interval": "1s"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Priority != 2 || p.Prefetch != 7 {
		t.Fatalf("parsed = %+v", *p)
	}
}

func TestParsePipelineErrors(t *testing.T) {
	cases := map[string]struct {
		raw  map[string]any
		want []string
	}{
		"unknown":       {map[string]any{"prefech": 3}, []string{`pipeline "p": unknown option "prefech"`, "allowed: connection, queue, priority, prefetch, poll_interval, lease, max_attempts, backoff, backoff_max, max_payload"}},
		"bad size":      {map[string]any{"max_payload": "lots"}, []string{`option "max_payload"`, "10MB", `"lots"`}},
		"size too big":  {map[string]any{"max_payload": "2GiB"}, []string{`option "max_payload"`, "1.0 GiB", "2.0 GiB"}},
		"wrong type":    {map[string]any{"prefetch": "many"}, []string{`option "prefetch"`, "integer between 1 and 100000", `"many"`}},
		"out of range":  {map[string]any{"prefetch": 0}, []string{`option "prefetch"`, "got 0"}},
		"bad queue":     {map[string]any{"queue": "a b"}, []string{`option "queue"`}},
		"bad duration":  {map[string]any{"poll_interval": 5}, []string{`option "poll_interval"`, "duration string"}},
		"fraction":      {map[string]any{"priority": 1.5}, []string{`option "priority"`}},
		"two at a time": {map[string]any{"prefetch": -1, "x": 1}, []string{`option "prefetch"`, `unknown option "x"`}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := ParsePipeline("p", tc.raw)
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
	// Declared pipelines also reject keys they do not know.
	if _, err := ParseDeclared("d", map[string]any{"driver": "sql", "bogus": "1"}); err == nil || !strings.Contains(err.Error(), `unknown option "bogus"`) {
		t.Fatalf("declared unknown option: err = %v", err)
	}
}

func TestResolveUnknownConnection(t *testing.T) {
	g, _ := ParseGlobal(nil)
	_, err := g.Resolve(&Pipeline{Name: "p", Connection: "nope"})
	if err == nil || !strings.Contains(err.Error(), `unknown connection "nope"`) || !strings.Contains(err.Error(), "default") {
		t.Fatalf("err = %v", err)
	}
}

func TestLeaseMustOutlastHeartbeats(t *testing.T) {
	g, _ := ParseGlobal(nil)
	_, err := g.Resolve(&Pipeline{Name: "p", Connection: DefaultConnection, Lease: time.Second})
	if err == nil || !strings.Contains(err.Error(), `option "lease"`) || !strings.Contains(err.Error(), "heartbeat_interval") {
		t.Fatalf("err = %v", err)
	}
}

func TestRetryDelayDoublesWithJitterUpToTheCap(t *testing.T) {
	p := &Pipeline{Backoff: time.Second, BackoffMax: 10 * time.Second}
	for attempt, want := range map[int64]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second, 5: 10 * time.Second, 40: 10 * time.Second} {
		if got := p.RetryDelay(attempt, 0.5); got != want {
			t.Errorf("attempt %d: delay %s, want %s", attempt, got, want)
		}
		if lo, hi := p.RetryDelay(attempt, 0), p.RetryDelay(attempt, 0.999); lo >= want || hi <= want {
			t.Errorf("attempt %d: jitter range [%s, %s] does not surround %s", attempt, lo, hi, want)
		}
	}
}

func TestGroupOptions(t *testing.T) {
	p, err := ParsePipeline("tenants", map[string]any{
		"group_by": "tenant", "group_concurrency": 2, "overflow": map[string]any{"ready_over": 100, "to": "slow"}, "overflow_interval": "500ms",
	})
	if err != nil {
		t.Fatal(err)
	}
	if p.GroupBy != "tenant" || p.GroupConcurrency != 2 || *p.Overflow != (Overflow{ReadyOver: 100, To: "slow", Interval: 500 * time.Millisecond}) {
		t.Fatalf("parsed %+v %+v", p, p.Overflow)
	}
	// jobs.Declare: a flat map of strings.
	p, err = ParseDeclared("tenants", map[string]any{"driver": "sql", "group_by": "tenant", "group_concurrency": "3", "overflow.ready_over": "10", "overflow.to": "slow"})
	if err != nil || p.GroupConcurrency != 3 || p.Overflow == nil || p.Overflow.ReadyOver != 10 || p.Overflow.To != "slow" || p.Overflow.Interval != time.Second {
		t.Fatalf("declared: %+v %+v %v", p, p.Overflow, err)
	}
	for want, options := range map[string]map[string]any{
		`"group_concurrency": needs group_by`:                   {"group_concurrency": 2},
		`"overflow": needs group_by`:                            {"overflow": map[string]any{"ready_over": 1, "to": "x"}},
		`"group_by": must be a header name`:                     {"group_by": "bad header!"},
		`"group_concurrency": must be an integer between 0 and`: {"group_by": "t", "group_concurrency": -1},
		`option "overflow": option "to": is required`:           {"group_by": "t", "overflow": map[string]any{"ready_over": 1}},
		`option "overflow": option "ready_over": is required`:   {"group_by": "t", "overflow": map[string]any{"to": "x"}},
		`option "to": must name another pipeline`:               {"group_by": "t", "overflow": map[string]any{"ready_over": 1, "to": "tenants"}},
		`option "overflow": unknown option "ready_ovr"`:         {"group_by": "t", "overflow": map[string]any{"ready_ovr": 1, "to": "x"}},
	} {
		_, err := ParsePipeline("tenants", options)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("options %v: error %v, want one containing %s", options, err, want)
		}
	}
}

func TestUniqueWhile(t *testing.T) {
	p, err := ParsePipeline("emails", map[string]any{})
	if err != nil || p.UniqueWhile != UniqueWaiting {
		t.Fatalf("default: %+v %v, want unique_while %q", p, err, UniqueWaiting)
	}
	p, err = ParsePipeline("emails", map[string]any{"unique_while": "active"})
	if err != nil || p.UniqueWhile != UniqueActive {
		t.Fatalf(".rr.yaml: %+v %v, want unique_while %q", p, err, UniqueActive)
	}
	// jobs.Declare: a flat map of strings.
	p, err = ParseDeclared("emails", map[string]any{"driver": "sql", "unique_while": "Active"})
	if err != nil || p.UniqueWhile != UniqueActive {
		t.Fatalf("declared: %+v %v, want unique_while %q", p, err, UniqueActive)
	}
	_, err = ParsePipeline("emails", map[string]any{"unique_while": "running"})
	want := `pipeline "emails": option "unique_while": must be one of waiting, active, got "running"`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v, want one containing %s", err, want)
	}
}
