package schedule

import (
	"testing"
	"time"

	"github.com/rr-sql/sqljobs/config"
)

func parse(t *testing.T, cron, tz string) *config.Schedule {
	t.Helper()
	g, err := config.ParseGlobal(map[string]any{"schedules": []any{map[string]any{"name": "s", "cron": cron, "timezone": tz, "pipeline": "p", "job": "j"}}})
	if err != nil {
		t.Fatal(err)
	}
	return g.Schedules[0]
}

func TestLatestTick(t *testing.T) {
	at := time.Date(2026, 3, 4, 10, 20, 30, 500e6, time.UTC)
	cases := []struct {
		cron, tz string
		want     time.Time
	}{
		{"*/1 * * * * *", "UTC", time.Date(2026, 3, 4, 10, 20, 30, 0, time.UTC)},
		{"*/15 * * * *", "UTC", time.Date(2026, 3, 4, 10, 15, 0, 0, time.UTC)},
		{"0 6 * * *", "Europe/Paris", time.Date(2026, 3, 4, 5, 0, 0, 0, time.UTC)},
		{"0 0 1 1 *", "UTC", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"@yearly", "UTC", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
	}
	for _, tc := range cases {
		got, ok := Latest(parse(t, tc.cron, tc.tz), at)
		if !ok || !got.Equal(tc.want) {
			t.Errorf("%s (%s): latest tick at or before %s = %s %v, want %s", tc.cron, tc.tz, at, got, ok, tc.want)
		}
	}
	// A tick exactly at t is the latest.
	exact := time.Date(2026, 3, 4, 10, 15, 0, 0, time.UTC)
	if got, _ := Latest(parse(t, "*/15 * * * *", "UTC"), exact); !got.Equal(exact) {
		t.Errorf("latest at a tick = %s, want the tick itself", got)
	}
}
