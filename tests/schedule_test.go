package tests

import (
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	sqlrpc "github.com/rr-sql/sqljobs/rpc"
)

// scheduleYAML is an entry of sql.schedules (appended to a backend's sql section).
func scheduleYAML(name, cron, pipeline, extra string) string {
	return fmt.Sprintf("    - name: %s\n      cron: %q\n      pipeline: %s\n      job: %s.job\n%s", name, cron, pipeline, name, extra)
}

func withSchedules(section string, entries ...string) string {
	return section + "  schedules:\n" + strings.Join(entries, "")
}

// tickOf is the tick (unix ms) in a schedule job's id, schedule:NAME:MS.
func tickOf(t *testing.T, id, schedule string) int64 {
	t.Helper()
	ms, err := strconv.ParseInt(strings.TrimPrefix(id, "schedule:"+schedule+":"), 10, 64)
	if err != nil {
		t.Fatalf("job id %q is not schedule:%s:MS", id, schedule)
	}
	return ms
}

// Three nodes on one database run a schedule that ticks every second: every tick is pushed, and
// processed by a PHP worker, exactly once.
func TestScheduleEveryTickOnceAcrossThreeNodes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dir := t.TempDir()
		out := filepath.Join(dir, "out.jsonl")
		section := withSchedules(b.section(t, dir), scheduleYAML("beat", "*/1 * * * * *", "p",
			"      payload: tick\n      headers: {X-From: cron, x-list: [a, b]}\n"))
		o := options{pipelines: pipelineYAML("p"), consume: []string{"p"}, workers: 1, sqlSection: section, out: out}
		nodes := []*roadrunner{start(t, o), start(t, o), start(t, o)}
		const ticks = 6
		waitFor(t, 30*time.Second, fmt.Sprintf("%d ticks processed", ticks), func() (bool, string) {
			n := len(records(t, out))
			return n >= ticks, fmt.Sprintf("%d records", n)
		})
		// The schedule is also seen by each node's sql.Schedules, with the database's last tick.
		for i, rr := range nodes {
			var list sqlrpc.SchedulesResponse
			if err := rr.call("sql.Schedules", &sqlrpc.SchedulesRequest{}, &list); err != nil {
				t.Fatalf("node %d: sql.Schedules: %v", i, err)
			}
			if len(list.Schedules) != 1 || list.Schedules[0].Name != "beat" || list.Schedules[0].LastTick == "" || list.Schedules[0].NextTick == "" ||
				list.Schedules[0].Missed != "once" || list.Schedules[0].Timezone != "UTC" || list.Schedules[0].Job != "beat.job" {
				t.Fatalf("node %d: sql.Schedules = %s", i, asJSON(list))
			}
		}
		for _, rr := range nodes {
			rr.stop()
		}
		recs := records(t, out)
		seen := map[int64]int{}
		for _, r := range recs {
			// RoadRunner's config reader lower-cases every key of .rr.yaml: header names included.
			seen[tickOf(t, r.ID, "beat")]++
			if r.Job != "beat.job" || r.Payload != "tick" || r.Pipeline != "p" || strings.Join(r.Headers["x-from"], ",") != "cron" ||
				strings.Join(r.Headers["x-list"], ",") != "a,b" {
				t.Fatalf("record %+v: job, payload, pipeline or headers are not the schedule's", r)
			}
		}
		var at []int64
		for ms, n := range seen {
			if n != 1 {
				t.Errorf("tick %d processed %d times", ms, n)
			}
			at = append(at, ms)
		}
		sort.Slice(at, func(i, j int) bool { return at[i] < at[j] })
		if len(at) < ticks {
			t.Fatalf("%d distinct ticks, want at least %d", len(at), ticks)
		}
		for i := 1; i < len(at); i++ {
			if at[i]-at[i-1] != 1000 {
				t.Errorf("ticks %d and %d: %d ms apart, want 1000 (a tick missing between them)", at[i-1], at[i], at[i]-at[i-1])
			}
		}
		t.Logf("%d ticks from %s to %s, each once", len(at), time.UnixMilli(at[0]).UTC().Format(time.TimeOnly), time.UnixMilli(at[len(at)-1]).UTC().Format(time.TimeOnly))
	})
}

// A tick missed while no node ran: `once` pushes one job for the latest missed tick, `skip` none.
// A schedule seen for the first time pushes nothing for the past, and one whose pipeline is not
// here waits without stopping rr.
func TestScheduleMissedTicks(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dir := t.TempDir()
		out := filepath.Join(dir, "out.jsonl")
		// Yearly: its latest tick is in the past, the next one far away.
		yearly := "0 0 1 1 *"
		section := withSchedules(b.section(t, dir), scheduleYAML("once", yearly, "p", ""),
			scheduleYAML("skip", yearly, "p", "      missed: skip\n"), scheduleYAML("elsewhere", yearly, "absent", ""))
		dsn := lastDSN
		o := options{pipelines: pipelineYAML("p"), consume: []string{"p"}, workers: 1, sqlSection: section, out: out}
		rr := start(t, o)
		jan1 := time.Date(time.Now().UTC().Year(), 1, 1, 0, 0, 0, 0, time.UTC)
		lastTicks := func() map[string]string {
			var list sqlrpc.SchedulesResponse
			if err := rr.call("sql.Schedules", &sqlrpc.SchedulesRequest{}, &list); err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, s := range list.Schedules {
				got[s.Name] = s.LastTick
			}
			return got
		}
		want := jan1.Format("2006-01-02T15:04:05.000Z07:00")
		waitFor(t, 10*time.Second, "first-seen schedules start from their latest tick", func() (bool, string) {
			got := lastTicks()
			return got["once"] == want && got["skip"] == want && got["elsewhere"] == "", fmt.Sprint(got)
		})
		stableFor(t, time.Second, "no job for a schedule seen for the first time", func() (bool, string) {
			n := len(records(t, out))
			return n == 0, fmt.Sprintf("%d records", n)
		})
		rr.stop()

		// Every node was down since long before the latest tick.
		db := openTestDB(t, b.name, dsn)
		if _, err := db.Exec(`UPDATE rr_schedules SET last_tick = 1000`); err != nil {
			t.Fatal(err)
		}
		rr = start(t, o)
		waitFor(t, 15*time.Second, "the catch-up job", func() (bool, string) {
			n := len(records(t, out))
			return n >= 1, fmt.Sprintf("%d records", n)
		})
		stableFor(t, 2*time.Second, "one catch-up job", func() (bool, string) {
			recs := records(t, out)
			return len(recs) == 1, fmt.Sprintf("%d records", len(recs))
		})
		if r := records(t, out)[0]; r.ID != fmt.Sprintf("schedule:once:%d", jan1.UnixMilli()) || r.Job != "once.job" {
			t.Fatalf("catch-up job %+v, want schedule:once:%d", r, jan1.UnixMilli())
		}
		if got := lastTicks(); got["once"] != want || got["skip"] != want {
			t.Fatalf("last ticks after catching up: %v, want %s for once and skip", got, want)
		}
	})
}

// A schedule's pipeline declared after start (jobs.Declare) gets its ticks from then on.
func TestSchedulePipelineDeclaredLater(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dir := t.TempDir()
		out := filepath.Join(dir, "out.jsonl")
		section := withSchedules(b.section(t, dir), scheduleYAML("later", "*/1 * * * * *", "later", ""))
		rr := start(t, options{pipelines: pipelineYAML("p"), consume: []string{"p"}, workers: 1, sqlSection: section, out: out})
		stableFor(t, 1500*time.Millisecond, "no tick before the pipeline exists", func() (bool, string) {
			n := len(records(t, out))
			return n == 0, fmt.Sprintf("%d records", n)
		})
		if err := rr.declare(map[string]string{"driver": "sql", "name": "later", "poll_interval": "100ms"}); err != nil {
			t.Fatal(err)
		}
		rr.resume("later")
		recs := waitRecords(t, out, 2, 15*time.Second)
		for _, r := range recs {
			if r.Pipeline != "later" || !strings.HasPrefix(r.ID, "schedule:later:") {
				t.Fatalf("record %+v: want a tick of schedule later in pipeline later", r)
			}
		}
	})
}

// A bad schedule stops rr at start, with an error naming the entry and the key.
func TestScheduleBadEntryRefusesToStart(t *testing.T) {
	dir := t.TempDir()
	section := withSchedules(backends()[0].section(t, dir), scheduleYAML("bad", "61 * * * *", "p", ""))
	err := startErr(t, options{pipelines: pipelineYAML("p"), consume: []string{"p"}, sqlSection: section, out: filepath.Join(dir, "out.jsonl")})
	if err == nil || !strings.Contains(err.Error(), `sql.schedules[0] ("bad"): option "cron"`) {
		t.Fatalf("start with a bad cron: %v, want an error naming sql.schedules[0] (\"bad\") and cron", err)
	}
}
