package tests

// The PHP package (php/, composer name rr-sql/jobs) against a real rr: each call runs
// tests/php/sql_client.php, which loads the real spiral/roadrunner-jobs client and the package's
// classes by the PSR-4 map of php/composer.json, makes one call and prints the result as JSON.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	jobsProto "github.com/roadrunner-server/api/v4/build/jobs/v1"
)

// phpCall runs one call of the package and decodes what it printed into out. A call that threw
// prints {"error", "message"}: phpCall fails the test then, phpCallErr returns it.
func (r *roadrunner) phpCall(command string, args, out any) {
	r.t.Helper()
	if e := r.phpCallErr(command, args, out); e != nil {
		r.t.Fatalf("PHP %s %s threw %s: %s", command, asJSON(args), e.Error, e.Message)
	}
}

// phpError is what sql_client.php prints for an exception.
type phpError struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

func (r *roadrunner) phpCallErr(command string, args, out any) *phpError {
	r.t.Helper()
	phpClient(r.t)
	cmd := exec.Command("php", phpPath(r.t, "sql_client.php"), r.rpcAddr, command, asJSON(args))
	b, err := cmd.Output()
	if err != nil {
		var e phpError
		if jsonErr := json.Unmarshal(b, &e); jsonErr != nil || e.Error == "" {
			r.t.Fatalf("PHP %s %s: %v\n%s", command, asJSON(args), err, b)
		}
		r.t.Logf("PHP %s %s threw %s: %s", command, asJSON(args), e.Error, e.Message)
		return &e
	}
	r.t.Logf("PHP %s %s: %s", command, asJSON(args), strings.TrimSpace(string(b)))
	if err := json.Unmarshal(b, out); err != nil {
		r.t.Fatalf("PHP %s printed %s: %v", command, b, err)
	}
	return nil
}

// wantPHPError runs a call that must throw cls with a message containing want.
func (r *roadrunner) wantPHPError(command string, args any, cls, want string) {
	r.t.Helper()
	var ignored any
	e := r.phpCallErr(command, args, &ignored)
	if e == nil {
		r.t.Fatalf("PHP %s %s returned %s, want %s saying %q", command, asJSON(args), asJSON(ignored), cls, want)
	}
	if e.Error != cls || !strings.Contains(e.Message, want) {
		r.t.Fatalf("PHP %s %s threw %s %q, want %s saying %q", command, asJSON(args), e.Error, e.Message, cls, want)
	}
}

// requireMethod skips the test when rr's sql service has no such method yet (it is built on
// another branch): net/rpc looks the method up before it reads the request, so any other answer,
// an error about this empty request included, means the method exists.
func (r *roadrunner) requireMethod(method string) {
	r.t.Helper()
	var err error
	if method == "sql.PushBatch" {
		err = r.call(method, &jobsProto.PushBatchRequest{}, &jobsProto.Empty{})
	} else {
		err = r.call(method, &struct{ Pipeline string }{}, &map[string]any{})
	}
	if err != nil && (strings.Contains(err.Error(), "can't find method") || strings.Contains(err.Error(), "can't find service")) {
		r.t.Skipf("%s not on this branch yet (%v)", method, err)
	}
}

// The package's objects as sql_client.php prints them.
type (
	phpPipelineStats struct {
		Class         string `json:"class"`
		Pipeline      string `json:"pipeline"`
		Queue         string `json:"queue"`
		Connection    string `json:"connection"`
		Ready         int64  `json:"ready"`
		Delayed       int64  `json:"delayed"`
		Reserved      int64  `json:"reserved"`
		Failed        int64  `json:"failed"`
		OldestReadyMs int64  `json:"oldestReadyMs"`
	}
	phpGroupStats struct {
		Class    string `json:"class"`
		Value    string `json:"value"`
		Ready    int64  `json:"ready"`
		Delayed  int64  `json:"delayed"`
		Reserved int64  `json:"reserved"`
		Overflow string `json:"overflow"`
	}
	phpGroupPage struct {
		Class     string          `json:"class"`
		Groups    []phpGroupStats `json:"groups"`
		NextAfter string          `json:"nextAfter"`
	}
	phpFailedJob struct {
		Class    string              `json:"class"`
		ID       int64               `json:"id"`
		JobID    string              `json:"jobId"`
		Job      string              `json:"job"`
		Pipeline string              `json:"pipeline"`
		Payload  string              `json:"payload"`
		Headers  map[string][]string `json:"headers"`
		Attempts int64               `json:"attempts"`
		Error    string              `json:"error"`
		FailedAt *string             `json:"failedAt"`
	}
	phpFailedPage struct {
		Class       string         `json:"class"`
		Jobs        []phpFailedJob `json:"jobs"`
		NextAfterID int64          `json:"nextAfterId"`
	}
	phpFoundJob struct {
		Class       string              `json:"class"`
		ID          string              `json:"id"`
		State       string              `json:"state"`
		Job         string              `json:"job"`
		Headers     map[string][]string `json:"headers"`
		Attempts    int64               `json:"attempts"`
		AvailableAt *string             `json:"availableAt"`
		Node        string              `json:"node"`
		Delivered   bool                `json:"delivered"`
		Error       string              `json:"error"`
		FailedAt    *string             `json:"failedAt"`
		FailedID    *int64              `json:"failedId"`
	}
	phpCancelResult struct {
		Class     string `json:"class"`
		Cancelled int64  `json:"cancelled"`
		Jobs      []struct {
			Class string `json:"class"`
			ID    string `json:"id"`
			State string `json:"state"`
			Node  string `json:"node"`
		} `json:"jobs"`
	}
	phpSchedule struct {
		Class    string  `json:"class"`
		Name     string  `json:"name"`
		Cron     string  `json:"cron"`
		Timezone string  `json:"timezone"`
		Pipeline string  `json:"pipeline"`
		Job      string  `json:"job"`
		Missed   string  `json:"missed"`
		NextTick *string `json:"nextTick"`
		LastTick *string `json:"lastTick"`
	}
	phpQueuedTask struct {
		Class    string              `json:"class"`
		ID       string              `json:"id"`
		Pipeline string              `json:"pipeline"`
		Name     string              `json:"name"`
		Payload  string              `json:"payload"`
		Headers  map[string][]string `json:"headers"`
	}
)

// phpTime reads a time the package printed (RFC 3339 with milliseconds).
func phpTime(t *testing.T, what string, s *string) time.Time {
	t.Helper()
	if s == nil {
		t.Fatalf("%s is null", what)
	}
	v, err := time.Parse("2006-01-02T15:04:05.000Z07:00", *s)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// TestPHPPackageCreateInfo: SqlCreateInfo through Jobs::create() declares an sql pipeline with every
// option; bad options are refused in PHP before the call, or by the driver with its message.
func TestPHPPackageCreateInfo(t *testing.T) {
	phpClient(t)
	forEachBackend(t, func(t *testing.T, b backend) {
		dir := t.TempDir()
		out := filepath.Join(dir, "out.jsonl")
		section := b.section(t, dir)
		dsn := lastDSN
		rr := start(t, options{pipelines: pipelineYAML("static"), sqlSection: section, out: out})

		var created struct {
			Queue    string         `json:"queue"`
			Declared map[string]any `json:"declared"`
		}
		rr.phpCall("create", map[string]any{"name": "reports", "priority": 5, "connection": "default", "queue": "reports-q",
			"prefetch": 7, "pollInterval": "100ms", "lease": "30s", "maxAttempts": 2, "backoff": "2s", "backoffMax": "1m",
			"maxPayload": "1MB", "groupBy": "tenant", "groupConcurrency": 3, "overflowReadyOver": 50, "overflowTo": "static",
			"overflowInterval": "2s", "resume": true}, &created)
		want := map[string]string{"driver": "sql", "name": "reports", "priority": "5", "connection": "default", "queue": "reports-q",
			"prefetch": "7", "poll_interval": "100ms", "lease": "30s", "max_attempts": "2", "backoff": "2s", "backoff_max": "1m",
			"max_payload": "1MB", "group_by": "tenant", "group_concurrency": "3", "overflow.ready_over": "50", "overflow.to": "static",
			"overflow_interval": "2s"}
		// What Jobs::create() sends (the jobs client turns the priority into a string).
		declared := map[string]any{}
		for k, v := range want {
			declared[k] = v
		}
		declared["priority"] = 5
		if created.Queue != "reports" || asJSON(created.Declared) != asJSON(declared) {
			t.Fatalf("created %s, want queue reports declared %s", asJSON(created), asJSON(want))
		}

		// The pipeline runs, with its options: jobs.List, jobs.Stat, sql.Stats, and the declared
		// options kept in the database as the driver read them.
		if l := rr.list(); !slices.Contains(l, "reports") {
			t.Fatalf("jobs.List = %v, want reports", l)
		}
		if s := rr.stat("reports"); s.GetPriority() != 5 || !s.GetReady() || s.GetDriver() != "sql" {
			t.Fatalf("jobs.Stat reports = %v, want priority 5, consuming, driver sql", s)
		}
		if s := rr.sqlStats("reports"); s.Queue != "reports-q" || s.Connection != "default" {
			t.Fatalf("sql.Stats reports = %+v, want queue reports-q on default", s)
		}
		var stored string
		if err := openTestDB(t, b.name, dsn).QueryRow(`SELECT options FROM rr_pipelines WHERE name = 'reports'`).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		var storedMap map[string]string
		if err := json.Unmarshal([]byte(stored), &storedMap); err != nil || asJSON(storedMap) != asJSON(want) {
			t.Fatalf("rr_pipelines options = %s (%v), want %s", stored, err, asJSON(want))
		}
		rr.push(job{id: "r1", pipeline: "reports", headers: map[string][]string{"tenant": {"acme"}}, payload: map[string]any{"action": "ack"}})
		if recs := waitRecords(t, out, 1, 10*time.Second); recs[0].ID != "r1" || recs[0].Pipeline != "reports" || recs[0].Queue != "reports-q" {
			t.Fatalf("the worker saw %+v, want r1 from pipeline reports, queue reports-q", recs[0])
		}

		// Refused in PHP, before anything is sent.
		rr.wantPHPError("create", map[string]any{"name": "bad", "prefetch": 0}, "InvalidArgumentException", "prefetch must be at least 1, got 0")
		rr.wantPHPError("create", map[string]any{"name": "bad", "pollInterval": "soon"}, "InvalidArgumentException", "poll_interval must be a duration")
		rr.wantPHPError("create", map[string]any{"name": "bad", "maxPayload": "huge"}, "InvalidArgumentException", "max_payload must be a byte count or a size")
		rr.wantPHPError("create", map[string]any{"name": "bad", "groupBy": "a b"}, "InvalidArgumentException", "group_by must be a header name")
		rr.wantPHPError("create", map[string]any{"name": "bad", "overflowTo": "static"}, "InvalidArgumentException", "overflowReadyOver and overflowTo go together")
		rr.wantPHPError("create", map[string]any{"name": "bad", "priority": 0}, "InvalidArgumentException", "priority must be at least 1")
		// Refused by the driver, with its message, as the jobs client's JobsException.
		rr.wantPHPError("create", map[string]any{"name": "bad", "connection": "nope"}, "JobsException", `unknown connection "nope"`)
		rr.wantPHPError("create", map[string]any{"name": "bad", "prefetch": 200000}, "JobsException", `option "prefetch"`)
		if l := rr.list(); slices.Contains(l, "bad") {
			t.Fatalf("a refused pipeline exists: %v", l)
		}
	})
}

// TestPHPPackageClient drives sql.Stats, Groups, Flush, Move and the failed jobs through the
// package's SqlClient.
func TestPHPPackageClient(t *testing.T) {
	phpClient(t)
	forEachBackend(t, func(t *testing.T, b backend) {
		dir := t.TempDir()
		out := filepath.Join(dir, "out.jsonl")
		rr := start(t, options{pipelines: pipelineYAML("main") + pipelineYAML("slow") + pipelineYAML("work", "max_attempts: 1"),
			consume: []string{"work"}, sqlSection: b.section(t, dir), out: out})
		tenant := func(v string) map[string][]string { return map[string][]string{"tenant": {v}} }
		for i := range 9 {
			rr.push(job{id: fmt.Sprint("m", i), pipeline: "main", headers: tenant([]string{"acme", "globex", "initech"}[i%3]), payload: map[string]any{"action": "ack"}})
		}
		rr.push(job{id: "later", pipeline: "main", delay: 600, headers: tenant("acme"), payload: map[string]any{"action": "ack"}})

		// stats: every sql pipeline, by name.
		var stats map[string]phpPipelineStats
		rr.phpCall("stats", []any{}, &stats)
		if m := stats["main"]; len(stats) != 3 || m.Class != "PipelineStats" || m.Ready != 9 || m.Delayed != 1 || m.Queue != "main" ||
			m.Connection != "default" || m.OldestReadyMs <= 0 || stats["work"].Ready != 0 {
			t.Fatalf("stats = %s", asJSON(stats))
		}

		// groups: pages in value order.
		var page1, page2 phpGroupPage
		rr.phpCall("groups", []any{"main", "tenant", "", 2}, &page1)
		rr.phpCall("groups", map[string]any{"pipeline": "main", "header": "tenant", "after": page1.NextAfter, "limit": 2}, &page2)
		if page1.Class != "GroupPage" || asJSON(page1.Groups) != `[{"class":"GroupStats","value":"acme","ready":3,"delayed":1,"reserved":0,"overflow":""},{"class":"GroupStats","value":"globex","ready":3,"delayed":0,"reserved":0,"overflow":""}]` ||
			page1.NextAfter != "globex" {
			t.Fatalf("groups page 1 = %s", asJSON(page1))
		}
		if len(page2.Groups) != 1 || page2.Groups[0].Value != "initech" || page2.Groups[0].Ready != 3 || page2.NextAfter != "" {
			t.Fatalf("groups page 2 = %s", asJSON(page2))
		}
		var all []phpGroupStats
		rr.phpCall("eachGroup", []any{"main", "tenant", 1}, &all)
		if len(all) != 3 || all[0].Value != "acme" || all[2].Value != "initech" {
			t.Fatalf("eachGroup = %s", asJSON(all))
		}

		// move and flush.
		var moved, flushed int64
		rr.phpCall("move", []any{"main", "slow", 1, "tenant", "globex"}, &moved)
		rr.phpCall("flush", map[string]any{"pipeline": "main", "header": "tenant", "value": "acme"}, &flushed)
		if moved != 3 || flushed != 4 {
			t.Fatalf("moved %d (want 3), flushed %d (want the 3 ready and 1 delayed acme jobs)", moved, flushed)
		}
		stats = nil
		rr.phpCall("stats", []any{"main", "slow"}, &stats)
		if len(stats) != 2 || stats["main"].Ready != 3 || stats["main"].Delayed != 0 || stats["slow"].Ready != 3 {
			t.Fatalf("stats after move and flush = %s", asJSON(stats))
		}
		rr.resume("slow")
		for _, r := range waitRecords(t, out, 3, 10*time.Second) {
			if r.Pipeline != "slow" || r.Headers["tenant"][0] != "globex" {
				t.Fatalf("a moved job ran as %+v", r)
			}
		}

		// Failed jobs: list a page, retry one, delete one, delete the rest.
		for i := range 3 {
			rr.push(job{id: fmt.Sprint("bad", i), pipeline: "work", headers: tenant("acme"), payload: map[string]any{"action": "nack"}})
		}
		waitFor(t, 10*time.Second, "three failed jobs", func() (bool, string) {
			s := rr.sqlStats("work")
			return s.Failed == 3, asJSON(s)
		})
		var failed phpFailedPage
		rr.phpCall("failedList", []any{"work", 0, 2}, &failed)
		if len(failed.Jobs) != 2 || failed.Class != "FailedPage" || failed.NextAfterID != failed.Jobs[1].ID {
			t.Fatalf("failedList = %s", asJSON(failed))
		}
		f := failed.Jobs[0]
		if f.Class != "FailedJob" || !strings.HasPrefix(f.JobID, "bad") || f.Job != `App\Jobs\Test` || f.Pipeline != "work" || f.Attempts != 1 ||
			!strings.Contains(f.Error, "nack") || f.Headers["tenant"][0] != "acme" || !strings.Contains(f.Payload, "nack") {
			t.Fatalf("failed job = %s", asJSON(f))
		}
		if at := phpTime(t, "failedAt", f.FailedAt); time.Since(at) > time.Minute || time.Since(at) < -time.Minute {
			t.Fatalf("failedAt %s is not about now", at)
		}
		var rest phpFailedPage
		rr.phpCall("failedList", map[string]any{"pipeline": "work", "afterId": failed.NextAfterID}, &rest)
		if len(rest.Jobs) != 1 || rest.NextAfterID != 0 || rest.Jobs[0].ID <= failed.NextAfterID {
			t.Fatalf("failedList after %d = %s", failed.NextAfterID, asJSON(rest))
		}

		var retried int64
		rr.phpCall("failedRetry", []any{"work", f.ID}, &retried)
		if retried != 1 {
			t.Fatalf("failedRetry = %d, want 1", retried)
		}
		waitFor(t, 10*time.Second, "the retried job delivered again", func() (bool, string) {
			n := countByID(records(t, out))[f.JobID]
			return n == 2, fmt.Sprint(n, " deliveries")
		})
		waitFor(t, 10*time.Second, "the retried job failed again", func() (bool, string) {
			s := rr.sqlStats("work")
			return s.Failed == 3 && s.Ready+s.Reserved == 0, asJSON(s)
		})
		var deleted, deletedAll, retriedNone int64
		rr.phpCall("failedDelete", []any{"work", rest.Jobs[0].ID}, &deleted)
		rr.phpCall("failedDeleteAll", []any{"work"}, &deletedAll)
		rr.phpCall("failedRetryAll", []any{"work"}, &retriedNone)
		if deleted != 1 || deletedAll != 2 || retriedNone != 0 || rr.sqlStats("work").Failed != 0 {
			t.Fatalf("deleted %d (want 1), then all %d (want 2), retried none %d; stats %s", deleted, deletedAll, retriedNone, asJSON(rr.sqlStats("work")))
		}

		// Errors: the driver's, and arguments refused before the call.
		rr.wantPHPError("flush", []any{"nope"}, "SqlJobsException", `sql.Flush: `)
		rr.wantPHPError("flush", []any{"nope"}, "SqlJobsException", `unknown sql pipeline "nope"`)
		rr.wantPHPError("groups", []any{"main"}, "SqlJobsException", "header is required")
		rr.wantPHPError("move", []any{"main", "main"}, "SqlJobsException", "share queue")
		rr.wantPHPError("groups", []any{"main", "tenant", "", 5000}, "InvalidArgumentException", "limit 5000: use 1 to 1000")
		rr.wantPHPError("failedRetry", []any{"work"}, "InvalidArgumentException", "no failed job ids given")
		rr.wantPHPError("failedDelete", []any{"work"}, "InvalidArgumentException", "no failed job ids given")
	})
}

// TestPHPPackageFindCancel: SqlClient::find() and cancel() report ready, delayed, reserved, failed
// and unknown jobs; cancel deletes the waiting ones only.
func TestPHPPackageFindCancel(t *testing.T) {
	phpClient(t)
	forEachBackend(t, func(t *testing.T, b backend) {
		dir := t.TempDir()
		out := filepath.Join(dir, "out.jsonl")
		rr := start(t, options{pipelines: pipelineYAML("held") + pipelineYAML("work", "max_attempts: 1"), consume: []string{"work"},
			sqlSection: b.section(t, dir), out: out})
		rr.requireMethod("sql.Find")
		rr.requireMethod("sql.Cancel")

		tenant := map[string][]string{"tenant": {"acme"}}
		rr.push(job{id: "r1", name: "App\\Jobs\\Report", pipeline: "held", headers: tenant, payload: "{}"})
		rr.push(job{id: "d1", pipeline: "held", delay: 600, payload: "{}"})
		rr.push(job{id: "dup", pipeline: "held", payload: "{}"})
		rr.push(job{id: "dup", pipeline: "held", payload: "{}"})
		rr.push(job{id: "busy", pipeline: "work", payload: map[string]any{"action": "ack", "sleep_ms": 4000}})
		rr.push(job{id: "bad", pipeline: "work", payload: map[string]any{"action": "nack"}})
		waitFor(t, 10*time.Second, "busy at the worker and bad failed", func() (bool, string) {
			s := rr.sqlStats("work")
			return countByID(records(t, out))["busy"] == 1 && s.Failed == 1, asJSON(s)
		})

		var found []phpFoundJob
		rr.phpCall("find", []any{"held", "r1", "d1", "dup", "nope"}, &found)
		states := []string{}
		for _, f := range found {
			states = append(states, f.ID+":"+f.State)
		}
		if asJSON(states) != `["r1:ready","d1:delayed","dup:ready","dup:ready","nope:not_found"]` {
			t.Fatalf("find held = %s", asJSON(found))
		}
		r1 := found[0]
		if r1.Class != "FoundJob" || r1.Job != `App\Jobs\Report` || r1.Headers["tenant"][0] != "acme" || r1.Node != "" || r1.FailedID != nil {
			t.Fatalf("r1 = %s", asJSON(r1))
		}
		if d := phpTime(t, "d1 availableAt", found[1].AvailableAt).Sub(phpTime(t, "r1 availableAt", r1.AvailableAt)); d < 590*time.Second || d > 610*time.Second {
			t.Fatalf("d1 is due %s after r1, want about 600s", d)
		}

		rr.phpCall("find", []any{"work", "busy", "bad"}, &found)
		if len(found) != 2 || found[0].State != "reserved" || found[0].Node == "" || !found[0].Delivered {
			t.Fatalf("find busy = %s, want reserved on a node, delivered", asJSON(found))
		}
		bad := found[1]
		var failedPage phpFailedPage
		rr.phpCall("failedList", []any{"work"}, &failedPage)
		if bad.State != "failed" || bad.Error == "" || bad.FailedAt == nil || bad.FailedID == nil || len(failedPage.Jobs) != 1 || *bad.FailedID != failedPage.Jobs[0].ID {
			t.Fatalf("find bad = %s, want failed with the failed-jobs id of %s", asJSON(bad), asJSON(failedPage))
		}

		var cancelled phpCancelResult
		rr.phpCall("cancel", []any{"held", "r1", "d1", "dup", "nope"}, &cancelled)
		got := []string{}
		for _, j := range cancelled.Jobs {
			got = append(got, j.ID+":"+j.State)
		}
		sort.Strings(got)
		if cancelled.Class != "CancelResult" || cancelled.Cancelled != 4 || asJSON(got) != `["d1:cancelled","dup:cancelled","dup:cancelled","nope:not_found","r1:cancelled"]` {
			t.Fatalf("cancel held = %s", asJSON(cancelled))
		}
		if s := rr.sqlStats("held"); s.Ready+s.Delayed != 0 {
			t.Fatalf("held after cancel: %s", asJSON(s))
		}

		// A job at a worker is reported and finishes; a failed one is not touched.
		rr.phpCall("cancel", []any{"work", "busy", "bad"}, &cancelled)
		if cancelled.Cancelled != 0 || len(cancelled.Jobs) == 0 || cancelled.Jobs[0].ID != "busy" || cancelled.Jobs[0].State != "reserved" || cancelled.Jobs[0].Node == "" {
			t.Fatalf("cancel busy = %s, want it reported reserved with its node", asJSON(cancelled))
		}
		waitFor(t, 15*time.Second, "busy acked after the cancel", func() (bool, string) {
			s := rr.sqlStats("work")
			return s.Reserved == 0 && s.Failed == 1, asJSON(s)
		})

		rr.wantPHPError("find", []any{"held"}, "InvalidArgumentException", "find: 0 job ids given: use 1 to 1000")
		rr.wantPHPError("cancel", []any{"nope", "x"}, "SqlJobsException", `unknown sql pipeline "nope"`)
	})
}

// TestPHPPackageDispatchMany: tasks made by the jobs client go through sql.PushBatch in one
// commit: all of them run, with their headers, and a batch with one refused job stores none.
func TestPHPPackageDispatchMany(t *testing.T) {
	phpClient(t)
	forEachBackend(t, func(t *testing.T, b backend) {
		dir := t.TempDir()
		out := filepath.Join(dir, "out.jsonl")
		rr := start(t, options{pipelines: pipelineYAML("batch") + pipelineYAML("small", "max_payload: 1KB"), consume: []string{"batch"},
			sqlSection: b.section(t, dir), out: out})
		rr.requireMethod("sql.PushBatch")

		var queued []phpQueuedTask
		rr.phpCall("dispatchMany", map[string]any{"pipeline": "batch", "tasks": []map[string]any{
			{"name": "App\\Jobs\\One", "payload": `{"action":"ack"}`, "headers": map[string][]string{"tenant": {"acme"}}},
			{"name": "App\\Jobs\\Two", "payload": `{"action":"ack"}`, "priority": 3},
			{"name": "App\\Jobs\\Three", "payload": `{"action":"ack"}`, "headers": map[string][]string{"trace": {"a", "b"}}},
		}}, &queued)
		uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
		if len(queued) != 3 || queued[0].ID == queued[1].ID || queued[1].ID == queued[2].ID {
			t.Fatalf("dispatchMany = %s", asJSON(queued))
		}
		for _, q := range queued {
			if q.Class != "QueuedTask" || !uuid.MatchString(q.ID) || q.Pipeline != "batch" {
				t.Fatalf("queued task %s", asJSON(q))
			}
		}
		recs := waitRecords(t, out, 3, 10*time.Second)
		byID := map[string]record{}
		for _, r := range recs {
			byID[r.ID] = r
		}
		for i, want := range []string{`App\Jobs\One`, `App\Jobs\Two`, `App\Jobs\Three`} {
			r, ok := byID[queued[i].ID]
			if !ok || r.Job != want || r.Pipeline != "batch" {
				t.Fatalf("task %d (%s) ran as %+v; records %s", i, queued[i].ID, r, asJSON(recs))
			}
		}
		if h := byID[queued[0].ID].Headers["tenant"]; len(h) != 1 || h[0] != "acme" {
			t.Fatalf("headers of task 0: %v", byID[queued[0].ID].Headers)
		}
		if h := byID[queued[2].ID].Headers["trace"]; asJSON(h) != `["a","b"]` {
			t.Fatalf("headers of task 2: %v", byID[queued[2].ID].Headers)
		}

		// All or none: the second task is too big for the pipeline, and the first is not stored either.
		rr.wantPHPError("dispatchMany", map[string]any{"pipeline": "small", "tasks": []map[string]any{
			{"name": "ok", "payload": "{}"}, {"name": "too-big", "payload": strings.Repeat("x", 2048)},
		}}, "SqlJobsException", "sql.PushBatch")
		if s := rr.sqlStats("small"); s.Ready != 0 {
			t.Fatalf("a refused batch left jobs: %s", asJSON(s))
		}
		var none []phpQueuedTask
		rr.phpCall("dispatchMany", map[string]any{"pipeline": "small", "tasks": []any{}}, &none)
		if len(none) != 0 {
			t.Fatalf("an empty dispatchMany returned %s", asJSON(none))
		}
	})
}

// TestPHPPackageSchedules: SqlClient::schedules() lists the sql.schedules entries in name order,
// with the next tick and, once one was pushed, the last.
func TestPHPPackageSchedules(t *testing.T) {
	phpClient(t)
	forEachBackend(t, func(t *testing.T, b backend) {
		dir := t.TempDir()
		out := filepath.Join(dir, "out.jsonl")
		section := b.section(t, dir)
		o := options{pipelines: pipelineYAML("ticks"), consume: []string{"ticks"}, sqlSection: section, out: out}
		rr := start(t, o)
		rr.requireMethod("sql.Schedules")
		var none []phpSchedule
		rr.phpCall("schedules", []any{}, &none)
		if len(none) != 0 {
			t.Fatalf("schedules without sql.schedules = %s", asJSON(none))
		}
		rr.stop()

		o.sqlSection = strings.TrimRight(section, "\n") + `
  schedules:
    - name: tick
      cron: "* * * * * *"
      pipeline: ticks
      job: App\Jobs\Tick
      payload: '{"action":"ack"}'
      missed: skip
    - name: alpha
      cron: "0 0 1 1 *"
      timezone: Europe/Paris
      pipeline: ticks
      job: App\Jobs\NewYear
`
		rr = start(t, o)
		var schedules []phpSchedule
		rr.phpCall("schedules", []any{}, &schedules)
		if len(schedules) != 2 || schedules[0].Name != "alpha" || schedules[1].Name != "tick" {
			t.Fatalf("schedules = %s, want alpha and tick in name order", asJSON(schedules))
		}
		alpha := schedules[0]
		paris, err := time.LoadLocation("Europe/Paris")
		if err != nil {
			t.Fatal(err)
		}
		newYear := time.Date(time.Now().In(paris).Year()+1, 1, 1, 0, 0, 0, 0, paris)
		if alpha.Class != "Schedule" || alpha.Cron != "0 0 1 1 *" || alpha.Timezone != "Europe/Paris" || alpha.Pipeline != "ticks" ||
			alpha.Job != `App\Jobs\NewYear` || alpha.Missed != "once" || alpha.LastTick != nil || !phpTime(t, "alpha nextTick", alpha.NextTick).Equal(newYear) {
			t.Fatalf("alpha = %s, want next tick %s", asJSON(alpha), newYear)
		}
		if tick := schedules[1]; tick.Missed != "skip" || tick.Timezone != "UTC" || tick.Job != `App\Jobs\Tick` {
			t.Fatalf("tick = %s", asJSON(tick))
		}
		recs := waitRecords(t, out, 1, 10*time.Second)
		if recs[0].Job != `App\Jobs\Tick` || recs[0].Pipeline != "ticks" {
			t.Fatalf("the schedule pushed %+v", recs[0])
		}
		waitFor(t, 10*time.Second, "the tick schedule's last tick listed", func() (bool, string) {
			rr.phpCall("schedules", []any{}, &schedules)
			return schedules[1].LastTick != nil, asJSON(schedules[1])
		})
		last := phpTime(t, "tick lastTick", schedules[1].LastTick)
		if next := phpTime(t, "tick nextTick", schedules[1].NextTick); !next.After(last) || last.Nanosecond() != 0 {
			t.Fatalf("tick: last %s, next %s: want whole seconds, next after last", last, next)
		}
	})
}

// TestPHPPackageUniqueWhile: SqlCreateInfo's uniqueWhile reaches the driver: with `active`, a key
// held by a job at a worker blocks a second push of it.
func TestPHPPackageUniqueWhile(t *testing.T) {
	phpClient(t)
	forEachBackend(t, func(t *testing.T, b backend) {
		dir := t.TempDir()
		out := filepath.Join(dir, "out.jsonl")
		rr := start(t, options{pipelines: pipelineYAML("static"), sqlSection: b.section(t, dir), out: out})
		var created struct {
			Declared map[string]any `json:"declared"`
		}
		if e := rr.phpCallErr("create", map[string]any{"name": "uniq", "pollInterval": "100ms", "uniqueWhile": "active", "resume": true}, &created); e != nil {
			if strings.Contains(e.Message, `unknown option "unique_while"`) {
				t.Skipf("unique_while not on this branch yet (%s)", e.Message)
			}
			t.Fatalf("create threw %s: %s", e.Error, e.Message)
		}
		if created.Declared["unique_while"] != "active" {
			t.Fatalf("declared %s", asJSON(created.Declared))
		}
		key := map[string][]string{"x-sql-unique-key": {"report-42"}}
		rr.push(job{id: "first", pipeline: "uniq", headers: key, payload: map[string]any{"action": "ack", "sleep_ms": 2000}})
		waitRecords(t, out, 1, 10*time.Second)
		rr.push(job{id: "second", pipeline: "uniq", headers: key, payload: map[string]any{"action": "ack"}})
		if s := rr.sqlStats("uniq"); s.Ready+s.Delayed != 0 || s.Reserved != 1 {
			t.Fatalf("a second push of a key held at a worker was stored: %s", asJSON(s))
		}
	})
}

// TestPHPPackageReadme runs every PHP example of php/README.md as it is written against a real rr
// (SQLite), each followed by a check of what it did, and checks its composer.json examples against
// php/composer.json. An example of a method rr lacks on this branch skips (its subtest).
func TestPHPPackageReadme(t *testing.T) {
	phpClient(t)
	readme := filepath.Join("..", "php", "README.md")
	var composer struct {
		Require  map[string]string            `json:"require"`
		Autoload map[string]map[string]string `json:"autoload"`
	}
	b, err := os.ReadFile(filepath.Join("..", "php", "composer.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &composer); err != nil {
		t.Fatalf("php/composer.json: %v", err)
	}
	jsonBlocks := markdownBlocks(t, readme, "json")
	if len(jsonBlocks) != 2 {
		t.Fatalf("php/README.md has %d json blocks, want the path and the package repository", len(jsonBlocks))
	}
	for _, block := range jsonBlocks {
		var c struct {
			Repositories []struct {
				Type    string `json:"type"`
				URL     string `json:"url"`
				Package *struct {
					Name     string                       `json:"name"`
					Require  map[string]string            `json:"require"`
					Autoload map[string]map[string]string `json:"autoload"`
				} `json:"package"`
			} `json:"repositories"`
			Require map[string]string `json:"require"`
		}
		if err := json.Unmarshal([]byte(block), &c); err != nil {
			t.Fatalf("a composer.json of php/README.md is not JSON: %v\n%s", err, block)
		}
		if len(c.Repositories) != 1 || c.Require["rr-sql/jobs"] == "" {
			t.Fatalf("composer example %s", block)
		}
		switch r := c.Repositories[0]; r.Type {
		case "path":
			if !strings.HasSuffix(r.URL, "/php") {
				t.Fatalf("the path repository %q is not the php/ folder of a clone", r.URL)
			}
		case "package":
			// The package repository repeats composer.json: its require and its autoload, under php/.
			if r.Package == nil || r.Package.Name != "rr-sql/jobs" || asJSON(r.Package.Require) != asJSON(composer.Require) {
				t.Fatalf("the package repository says %s, php/composer.json requires %s", asJSON(r.Package), asJSON(composer.Require))
			}
			for prefix, dir := range composer.Autoload["psr-4"] {
				if r.Package.Autoload["psr-4"][prefix] != "php/"+dir {
					t.Fatalf("the package repository autoloads %s, php/composer.json %s under php/", asJSON(r.Package.Autoload), asJSON(composer.Autoload))
				}
			}
		default:
			t.Fatalf("repository type %q", r.Type)
		}
	}

	dir := t.TempDir()
	out := filepath.Join(dir, "out.jsonl")
	rr := start(t, options{pipelines: pipelineYAML("emails") + pipelineYAML("emails-slow"), sqlSection: backends()[0].section(t, dir), out: out})
	tenant := func(v string) map[string][]string { return map[string][]string{"tenant": {v}} }
	examples := markdownBlocks(t, readme, "php")
	if len(examples) < 7 {
		t.Fatalf("php/README.md has %d PHP examples, want create, stats, move, failed, find, schedules and dispatchMany", len(examples))
	}
	for i, example := range examples {
		t.Run(fmt.Sprint("example", i+1), func(t *testing.T) {
			// What each example finds before it runs.
			switch {
			case strings.Contains(example, "->stats()"):
				for i, v := range []string{"acme", "acme", "globex"} {
					rr.push(job{id: fmt.Sprint("e", i), pipeline: "emails", delay: 600, headers: tenant(v), payload: "{}"})
				}
			case strings.Contains(example, "failedList("):
				rr.resume("emails")
				rr.push(job{id: "doomed", pipeline: "emails", payload: map[string]any{"action": "nack"}})
				waitFor(t, 10*time.Second, "a failed job", func() (bool, string) {
					s := rr.sqlStats("emails")
					return s.Failed == 1, asJSON(s)
				})
			}
			before := rr.sqlStats("emails")
			file := filepath.Join(dir, fmt.Sprintf("example_%d.php", i+1))
			code := strings.ReplaceAll(example, "require 'vendor/autoload.php';", fmt.Sprintf("require %q;", phpPath(t, "sql_package_autoload.php")))
			code = strings.ReplaceAll(code, "tcp://127.0.0.1:6001", "tcp://"+rr.rpcAddr)
			if err := os.WriteFile(file, []byte(code), 0o644); err != nil {
				t.Fatal(err)
			}
			o, err := exec.Command("php", file).CombinedOutput()
			printed := string(o)
			if m := regexp.MustCompile(`can't find method (sql\.\w+)`).FindStringSubmatch(printed); err != nil && m != nil {
				t.Skipf("%s not on this branch yet: %s", m[1], strings.TrimSpace(printed))
			}
			if err != nil {
				t.Fatalf("php/README.md PHP example %d failed: %v\n%s\n--- the example:\n%s", i+1, err, o, example)
			}
			t.Logf("php/README.md example %d printed: %s", i+1, strings.TrimSpace(printed))
			// What it must have done.
			switch {
			case strings.Contains(example, "new SqlCreateInfo("):
				if s := rr.stat("reports-acme"); s.GetPriority() != 5 || !s.GetReady() {
					t.Fatalf("reports-acme: %v, want priority 5, consuming", s)
				}
			case strings.Contains(example, "->stats()"):
				if !strings.Contains(printed, "emails: 0 ready, 3 delayed, 0 reserved, 0 failed") || !strings.Contains(printed, "tenant acme: 0 ready, 2 delayed") ||
					!strings.Contains(printed, "2 tenants waiting") {
					t.Fatalf("the stats example printed %q", printed)
				}
			case strings.Contains(example, "->move("):
				if s := rr.sqlStats("emails"); !strings.Contains(printed, "moved 2, flushed 2") || s.Delayed != before.Delayed-2 || rr.sqlStats("emails-slow").Delayed != 0 {
					t.Fatalf("the move example printed %q; emails %s", printed, asJSON(s))
				}
			case strings.Contains(example, "failedList("):
				if s := rr.sqlStats("emails"); s.Failed != 0 {
					t.Fatalf("after the failed jobs example: %s", asJSON(s))
				}
			case strings.Contains(example, "->find("):
				if !strings.Contains(printed, ": delayed, due ") || !strings.Contains(printed, "no-such-id: not_found") || !strings.Contains(printed, "1 cancelled") {
					t.Fatalf("the find example printed %q", printed)
				}
				if s := rr.sqlStats("emails"); s.Delayed != before.Delayed {
					t.Fatalf("after the find example: %s, before it %s: want the job it pushed cancelled", asJSON(s), asJSON(before))
				}
			case strings.Contains(example, "dispatchMany("):
				if n := len(regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}`).FindAllString(printed, -1)); n != 3 {
					t.Fatalf("the dispatchMany example printed %q, want 3 ids", printed)
				}
				if s := rr.sqlStats("emails"); s.Delayed != before.Delayed+3 {
					t.Fatalf("after the dispatchMany example: %s, before it %s: want its 3 jobs delayed", asJSON(s), asJSON(before))
				}
			}
		})
	}
}
