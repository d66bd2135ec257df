package config

import (
	"strings"
	"testing"
	"time"
)

func TestParseSchedules(t *testing.T) {
	g, err := ParseGlobal(map[string]any{"schedules": []any{
		map[string]any{"name": "report", "cron": "0 6 * * *", "timezone": "Europe/Paris", "pipeline": "emails", "job": "report.daily",
			"payload": `{"a":1}`, "headers": map[string]any{"X-One": "1", "x-two": []any{"a", "b"}}},
		map[string]any{"name": "beat", "cron": "*/1 * * * * *", "pipeline": "p", "job": "beat", "missed": "skip"},
		map[string]any{"name": "every", "cron": "@every 1m", "pipeline": "p", "job": "j"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Schedules) != 3 {
		t.Fatalf("%d schedules, want 3", len(g.Schedules))
	}
	// Sorted by name.
	beat, every, report := g.Schedules[0], g.Schedules[1], g.Schedules[2]
	if beat.Name != "beat" || every.Name != "every" || report.Name != "report" {
		t.Fatalf("order %s %s %s", beat.Name, every.Name, report.Name)
	}
	if beat.Missed != MissedSkip || report.Missed != MissedOnce || beat.Timezone != "UTC" || beat.Payload != "" {
		t.Fatalf("defaults: %+v %+v", beat, report)
	}
	if report.Payload != `{"a":1}` || len(report.Headers["X-One"]) != 1 || strings.Join(report.Headers["x-two"], ",") != "a,b" {
		t.Fatalf("payload/headers: %q %v", report.Payload, report.Headers)
	}
	// Seconds field: every second.
	at := time.Date(2026, 3, 1, 10, 0, 0, 500e6, time.UTC)
	if got := beat.Next(at); !got.Equal(time.Date(2026, 3, 1, 10, 0, 1, 0, time.UTC)) {
		t.Fatalf("beat next after %s = %s", at, got)
	}
	// Five fields in the schedule's time zone: 06:00 Paris is 05:00 UTC in winter.
	if got := report.Next(at).UTC(); !got.Equal(time.Date(2026, 3, 2, 5, 0, 0, 0, time.UTC)) {
		t.Fatalf("report next after %s = %s", at, got)
	}
	if got := every.Next(at); !got.Equal(at.Add(time.Minute).Truncate(time.Second)) {
		t.Fatalf("every next after %s = %s", at, got)
	}
}

func TestParseSchedulesErrorsNameEntryAndKey(t *testing.T) {
	ok := func() map[string]any {
		return map[string]any{"name": "n", "cron": "* * * * *", "pipeline": "p", "job": "j"}
	}
	with := func(k string, v any) map[string]any {
		m := ok()
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	cases := []struct {
		name string
		raw  any
		want []string
	}{
		{"not a list", map[string]any{"a": 1}, []string{"sql.schedules: must be a list"}},
		{"entry not a mapping", []any{"x"}, []string{"sql.schedules[0]: must be a mapping"}},
		{"bad cron", []any{with("cron", "61 * * * *")}, []string{`sql.schedules[0] ("n"): option "cron"`, `"61 * * * *"`, "6 with seconds first"}},
		{"missing cron", []any{with("cron", nil)}, []string{`option "cron": is required`}},
		{"missing name", []any{with("name", nil)}, []string{`sql.schedules[0]: option "name": is required`}},
		{"bad name", []any{with("name", "a b")}, []string{`option "name": "a b"`}},
		{"missing pipeline", []any{with("pipeline", nil)}, []string{`option "pipeline": is required`}},
		{"missing job", []any{with("job", nil)}, []string{`option "job": is required`}},
		{"bad timezone", []any{with("timezone", "Mars/Olympus")}, []string{`option "timezone": "Mars/Olympus" is not an IANA time zone`}},
		{"bad missed", []any{with("missed", "all")}, []string{`option "missed": must be one of once, skip, got "all"`}},
		{"bad headers", []any{with("headers", map[string]any{"h": 3})}, []string{`option "headers": header "h" must be a string or a list of strings`}},
		{"bad payload", []any{with("payload", 3)}, []string{`option "payload": must be a string`}},
		{"unknown key", []any{with("every", "1m")}, []string{`unknown option "every"`, "allowed: name, cron, timezone"}},
		{"tz in expression", []any{with("cron", "CRON_TZ=UTC * * * * *")}, []string{`option "timezone"`}},
		{"duplicate", []any{ok(), ok()}, []string{`sql.schedules[1] ("n"): option "name": "n" is already the name of sql.schedules[0]`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseGlobal(map[string]any{"schedules": tc.raw})
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
