package dashboard

import (
	"strings"
	"testing"
	"time"

	"github.com/rr-sql/sqljobs/store"
)

func TestRoundUp(t *testing.T) {
	for n, want := range map[int64]int64{0: 4, 3: 4, 5: 8, 12: 20, 21: 40, 556: 800, 1000: 1000, 1601: 2000, 2001: 4000, 4001: 8000} {
		if got := roundUp(n); got != want {
			t.Errorf("roundUp(%d) = %d, want %d", n, got, want)
		}
	}
}

// TestBucketsAndChart: minutes land in their step (a day's steps sum ten minutes), the depth is the
// step's largest, and the chart has a bar per step with jobs and only numbers in its text.
func TestBucketsAndChart(t *testing.T) {
	now := time.Date(2026, 12, 1, 20, 30, 30, 0, time.UTC)
	minutes := []store.HistoryMinute{
		{Minute: now.Add(-3 * time.Minute).Truncate(time.Minute), Processed: 5, Failed: 1, Depth: 7},
		{Minute: now.Add(-2 * time.Minute).Truncate(time.Minute), Processed: 3, Depth: 9},
		{Minute: now.Add(-2 * time.Hour), Processed: 100}, // before the hour: left out
	}
	hour := buckets(minutes, spanHour, now)
	if len(hour) != 61 || !hour[len(hour)-1].At.Equal(now.Truncate(time.Minute)) {
		t.Fatalf("an hour has %d steps ending %s", len(hour), hour[len(hour)-1].At)
	}
	var sum int64
	for _, b := range hour {
		sum += b.Processed
	}
	if sum != 8 || hour[len(hour)-4].Failed != 1 || hour[len(hour)-3].Depth != 9 {
		t.Fatalf("hour buckets: processed %d, %+v", sum, hour[len(hour)-4:])
	}
	day := buckets(minutes, spanDay, now)
	last := day[len(day)-2] // 20:20 to 20:30; the last step is the one now running
	if last.Processed != 8 || last.Depth != 9 || !last.Known {
		t.Fatalf("the day's last step = %+v, want both minutes in it (depth 9)", last)
	}
	svg := string(chartSVG(hour, spanHour, 900, 240, true))
	if strings.Count(svg, `class="bar-ok"`) != 2 || strings.Count(svg, `class="bar-failed"`) != 1 || !strings.Contains(svg, `<polyline class="depth"`) {
		t.Fatalf("chart: %s", svg)
	}
}

func TestLoopbackHost(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1:8089": true, "localhost:8089": true, "LOCALHOST": true, "[::1]:8089": true, "127.0.0.2": true,
		"10.0.0.1:8089": false, "attacker.example:80": false, "localhost.attacker.example": false, "": false,
	} {
		if got := loopbackHost(host); got != want {
			t.Errorf("loopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
}
