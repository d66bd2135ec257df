package tests

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	sqlrpc "github.com/rr-sql/sqljobs/rpc"
)

func asJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestSQLRPCService drives every method of the `sql` RPC service through RoadRunner's rpc plugin.
func TestSQLRPCService(t *testing.T) {
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

		var groups sqlrpc.GroupsResponse
		if err := rr.call("sql.Groups", &sqlrpc.GroupsRequest{Pipeline: "main", Header: "tenant"}, &groups); err != nil {
			t.Fatal(err)
		}
		t.Logf("sql.Groups main by tenant: %s", asJSON(groups))
		if asJSON(groups.Groups) != `[{"value":"acme","ready":3,"delayed":1,"reserved":0},{"value":"globex","ready":3,"delayed":0,"reserved":0},{"value":"initech","ready":3,"delayed":0,"reserved":0}]` {
			t.Fatalf("groups = %s", asJSON(groups))
		}

		var moved sqlrpc.CountResponse
		prio := int64(1)
		if err := rr.call("sql.Move", &sqlrpc.MoveRequest{From: "main", To: "slow", Priority: &prio, Header: "tenant", Value: "globex"}, &moved); err != nil {
			t.Fatal(err)
		}
		t.Logf("sql.Move globex main->slow: %s", asJSON(moved))
		var flushed sqlrpc.CountResponse
		if err := rr.call("sql.Flush", &sqlrpc.FlushRequest{Pipeline: "main", Header: "tenant", Value: "acme"}, &flushed); err != nil {
			t.Fatal(err)
		}
		t.Logf("sql.Flush main tenant=acme: %s", asJSON(flushed))
		if moved.Count != 3 || flushed.Count != 4 {
			t.Fatalf("moved %d (want 3), flushed %d (want the 3 ready and 1 delayed acme jobs)", moved.Count, flushed.Count)
		}
		var stats sqlrpc.StatsResponse
		if err := rr.call("sql.Stats", &sqlrpc.StatsRequest{}, &stats); err != nil {
			t.Fatal(err)
		}
		t.Logf("sql.Stats: %s", asJSON(stats))
		byName := map[string]sqlrpc.PipelineStats{}
		for _, s := range stats.Stats {
			byName[s.Pipeline] = s
		}
		if byName["main"].Ready != 3 || byName["slow"].Ready != 3 || byName["main"].OldestReadyMs <= 0 || byName["main"].Connection != "default" {
			t.Fatalf("stats = %s", asJSON(stats))
		}
		// The moved jobs run from their new pipeline with their new priority.
		rr.resume("slow")
		recs := waitRecords(t, out, 3, 10*time.Second)
		for _, r := range recs {
			if r.Pipeline != "slow" || r.Headers["tenant"][0] != "globex" {
				t.Fatalf("moved job ran as %+v", r)
			}
		}

		// Failed jobs: list, retry one, delete the rest.
		for i := range 3 {
			rr.push(job{id: fmt.Sprint("bad", i), pipeline: "work", payload: map[string]any{"action": "nack"}})
		}
		waitFor(t, 10*time.Second, "three failed jobs", func() (bool, string) {
			s := rr.sqlStats("work")
			return s.Failed == 3, asJSON(s)
		})
		var page sqlrpc.FailedListResponse
		if err := rr.call("sql.FailedList", &sqlrpc.FailedListRequest{Pipeline: "work", Limit: 2}, &page); err != nil {
			t.Fatal(err)
		}
		t.Logf("sql.FailedList work limit 2: %s", asJSON(page))
		if len(page.Jobs) != 2 || page.NextAfterID == 0 || page.Jobs[0].Job != "App\\Jobs\\Test" || page.Jobs[0].Attempts != 1 || !strings.Contains(page.Jobs[0].Error, "nack") {
			t.Fatalf("failed page = %s", asJSON(page))
		}
		var retried, deleted sqlrpc.CountResponse
		if err := rr.call("sql.FailedRetry", &sqlrpc.FailedRequest{Pipeline: "work", IDs: []int64{page.Jobs[0].ID}}, &retried); err != nil {
			t.Fatal(err)
		}
		t.Logf("sql.FailedRetry one: %s", asJSON(retried))
		waitFor(t, 10*time.Second, "the retried job delivered again", func() (bool, string) {
			n := countByID(records(t, out))[page.Jobs[0].JobID]
			return n == 2, fmt.Sprint(n, " deliveries")
		})
		waitFor(t, 10*time.Second, "the retried job failed again", func() (bool, string) {
			s := rr.sqlStats("work")
			return s.Failed == 3 && s.Ready+s.Reserved == 0, asJSON(s)
		})
		if err := rr.call("sql.FailedDelete", &sqlrpc.FailedRequest{Pipeline: "work", All: true}, &deleted); err != nil {
			t.Fatal(err)
		}
		t.Logf("sql.FailedDelete all: %s", asJSON(deleted))
		if retried.Count != 1 || deleted.Count != 3 || rr.sqlStats("work").Failed != 0 {
			t.Fatalf("retried %d, deleted %d", retried.Count, deleted.Count)
		}

		// Bad input gets a clear error.
		for _, c := range []struct {
			method string
			in     any
			want   string
		}{
			{"sql.Flush", &sqlrpc.FlushRequest{Pipeline: "nope"}, `unknown sql pipeline "nope"`},
			{"sql.Flush", &sqlrpc.FlushRequest{Pipeline: "main", Header: "bad header"}, `header "bad header"`},
			{"sql.Flush", &sqlrpc.FlushRequest{Pipeline: "main", Value: "x"}, "value given without header"},
			{"sql.Groups", &sqlrpc.GroupsRequest{Pipeline: "main"}, "header is required"},
			{"sql.Move", &sqlrpc.MoveRequest{From: "main", To: "main"}, "share queue"},
			{"sql.FailedRetry", &sqlrpc.FailedRequest{Pipeline: "work"}, "either ids"},
			{"sql.FailedList", &sqlrpc.FailedListRequest{Pipeline: "work", Limit: 5000}, "limit 5000"},
		} {
			err := rr.call(c.method, c.in, &sqlrpc.CountResponse{})
			if c.method == "sql.Groups" {
				err = rr.call(c.method, c.in, &sqlrpc.GroupsResponse{})
			}
			if c.method == "sql.FailedList" {
				err = rr.call(c.method, c.in, &sqlrpc.FailedListResponse{})
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s %s: err = %v, want it to say %q", c.method, asJSON(c.in), err, c.want)
			}
		}
	})
}

// TestDeclaredPipelinesSurviveRestart: a pipeline created with jobs.Declare comes back after a
// restart, consuming again; after jobs.Destroy it does not.
func TestDeclaredPipelinesSurviveRestart(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dir := t.TempDir()
		out := filepath.Join(dir, "out.jsonl")
		o := options{pipelines: pipelineYAML("static"), sqlSection: b.section(t, dir), out: out}
		rr := start(t, o)
		for _, name := range []string{"dyn-consuming", "dyn-paused", "dyn-destroyed"} {
			if err := rr.declare(map[string]string{"driver": "sql", "name": name, "prefetch": "7", "poll_interval": "100ms"}); err != nil {
				t.Fatal(err)
			}
		}
		rr.resume("dyn-consuming")
		if err := rr.destroy("dyn-destroyed"); err != nil {
			t.Fatal(err)
		}
		rr.stop()

		rr = start(t, o)
		waitFor(t, 15*time.Second, "declared pipelines restored", func() (bool, string) {
			l := rr.list()
			return slices.Contains(l, "dyn-consuming") && slices.Contains(l, "dyn-paused"), fmt.Sprint(l)
		})
		if l := rr.list(); slices.Contains(l, "dyn-destroyed") {
			t.Fatalf("a destroyed pipeline came back: %v", l)
		}
		waitFor(t, 10*time.Second, "dyn-consuming consuming again", func() (bool, string) {
			s := rr.stat("dyn-consuming")
			return s.GetReady(), fmt.Sprint(s)
		})
		if s := rr.stat("dyn-paused"); s.GetReady() {
			t.Fatalf("dyn-paused came back consuming: %v", s)
		}
		rr.push(job{id: "after-restart", pipeline: "dyn-consuming", payload: map[string]any{"action": "ack"}})
		recs := waitRecords(t, out, 1, 10*time.Second)
		if recs[0].Pipeline != "dyn-consuming" {
			t.Fatalf("record = %+v", recs[0])
		}
	})
}

// TestFailedJobsRetention: failed jobs older than failed_retention are pruned by the node.
func TestFailedJobsRetention(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dir := t.TempDir()
		out := filepath.Join(dir, "out.jsonl")
		section := strings.TrimRight(b.section(t, dir), "\n") + "\n      heartbeat_interval: 200ms\n      failed_retention: 1s\n"
		rr := start(t, options{pipelines: pipelineYAML("p"), consume: []string{"p"}, sqlSection: section, out: out})
		rr.push(job{id: "doomed", pipeline: "p", payload: map[string]any{"action": "nack"}})
		waitFor(t, 10*time.Second, "the job in the failed jobs", func() (bool, string) {
			s := rr.sqlStats("p")
			return s.Failed == 1, asJSON(s)
		})
		waitFor(t, 10*time.Second, "the failed job pruned after its retention", func() (bool, string) {
			s := rr.sqlStats("p")
			return s.Failed == 0, asJSON(s)
		})
	})
}

// TestDeclaredPipelinesBelongToTheDatabase: a pipeline declared through one node's RPC is the
// database's: another node sharing it creates it at its next start (consuming if it was), and
// after jobs.Destroy on any node no node creates it again.
func TestDeclaredPipelinesBelongToTheDatabase(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dir := t.TempDir()
		section := b.section(t, dir)
		nodeA := options{pipelines: pipelineYAML("static"), sqlSection: section, out: filepath.Join(dir, "a.jsonl")}
		nodeB := options{pipelines: pipelineYAML("static"), sqlSection: section, out: filepath.Join(dir, "b.jsonl")}
		a := start(t, nodeA)
		for _, name := range []string{"shared", "marker"} {
			if err := a.declare(map[string]string{"driver": "sql", "name": name, "poll_interval": "100ms"}); err != nil {
				t.Fatal(err)
			}
		}
		a.resume("shared")
		b1 := start(t, nodeB)
		waitFor(t, 15*time.Second, "the other node to create the declared pipeline, consuming", func() (bool, string) {
			l := b1.list()
			return slices.Contains(l, "shared") && b1.stat("shared").GetReady(), fmt.Sprint(l)
		})
		b1.push(job{id: "via-b", pipeline: "shared", payload: map[string]any{"action": "ack"}})
		waitFor(t, 10*time.Second, "the job pushed through the second node processed", func() (bool, string) {
			n := len(records(t, nodeA.out)) + len(records(t, nodeB.out))
			return n == 1, fmt.Sprint(n, " processed")
		})

		// Destroyed on the first node: the second one does not bring it back when it restarts.
		if err := a.destroy("shared"); err != nil {
			t.Fatal(err)
		}
		b1.stop()
		b2 := start(t, nodeB)
		waitFor(t, 15*time.Second, "the marker pipeline restored", func() (bool, string) {
			l := b2.list()
			return slices.Contains(l, "marker"), fmt.Sprint(l)
		})
		if l := b2.list(); slices.Contains(l, "shared") {
			t.Fatalf("a pipeline destroyed on one node came back on another: %v", l)
		}
	})
}
