package tests

// Bad rows and bad input: each refused or set aside with a clear error, nothing else held up.

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jobsProto "github.com/roadrunner-server/api/v4/build/jobs/v1"
	sqlrpc "github.com/rr-sql/sqljobs/rpc"
)

// TestMalformedRowGoesToFailedJobs: a row enqueued by hand whose headers are not a JSON object of
// string lists goes to the failed jobs at once with the reason, and the jobs around it run; a
// plain string for a one-value header (an easy PHP mistake) is read as a one-element list.
func TestMalformedRowGoesToFailedJobs(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dir := t.TempDir()
		out := filepath.Join(dir, "out.jsonl")
		section := b.section(t, dir)
		dsn := lastDSN
		rr := start(t, options{pipelines: pipelineYAML("p"), sqlSection: section, out: out})
		db := openTestDB(t, b.name, dsn)
		now := time.Now().UnixMilli()
		for id, headers := range map[string]string{"good": `{"tenant":["acme"]}`, "string-header": `{"tenant":"acme"}`, "poison": `{"tenant":5}`} {
			if _, err := db.Exec(rebind(b.name, `INSERT INTO rr_jobs (queue, job_id, name, payload, headers, priority, available_at, created_at)
				VALUES ('p', ?, 'Job', ?, ?, 10, ?, ?)`), id, []byte(`{"action":"ack"}`), headers, now, now); err != nil {
				t.Fatal(err)
			}
		}
		rr.resume("p")
		recs := waitRecords(t, out, 2, 10*time.Second)
		waitFor(t, 10*time.Second, "the poison row failed, the others done", func() (bool, string) {
			s := rr.sqlStats("p")
			return s.Failed == 1 && s.Ready+s.Reserved == 0, fmt.Sprintf("%+v", s)
		})
		for _, r := range recs {
			if r.ID == "poison" || r.Headers["tenant"][0] != "acme" {
				t.Fatalf("delivered %+v", r)
			}
		}
		var failed sqlrpc.FailedListResponse
		if err := rr.call("sql.FailedList", &sqlrpc.FailedListRequest{Pipeline: "p"}, &failed); err != nil {
			t.Fatal(err)
		}
		if len(failed.Jobs) != 1 || failed.Jobs[0].JobID != "poison" || !strings.Contains(failed.Jobs[0].Error, `header "tenant" is 5`) {
			t.Fatalf("failed jobs = %+v", failed.Jobs)
		}
	})
}

// rebind numbers ? placeholders for PostgreSQL.
func rebind(backend, query string) string {
	if backend != "postgres" {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// TestPushesRefusedWithAClearError: a payload over max_payload, a delay no clock can represent
// and (through PushBatch, which RoadRunner does not check) an empty id are refused with an error
// that names what is wrong; none of them is stored.
func TestPushesRefusedWithAClearError(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dir := t.TempDir()
		rr := start(t, options{pipelines: pipelineYAML("p", "max_payload: 1KB"), sqlSection: b.section(t, dir), out: filepath.Join(dir, "out.jsonl")})
		big := job{id: "big", pipeline: "p", payload: strings.Repeat("x", 1001)}
		far := job{id: "far", pipeline: "p", payload: "x", delay: 300 * 365 * 24 * 3600}
		for _, c := range []struct {
			push func() error
			want string
		}{
			{func() error {
				return rr.call("jobs.Push", &jobsProto.PushRequest{Job: big.proto()}, &jobsProto.Empty{})
			}, "max_payload (1000 bytes)"},
			{func() error {
				return rr.call("jobs.Push", &jobsProto.PushRequest{Job: far.proto()}, &jobsProto.Empty{})
			}, "delay 9460800000 seconds"},
			{func() error {
				return rr.call("jobs.PushBatch", &jobsProto.PushBatchRequest{Jobs: []*jobsProto.Job{job{pipeline: "p", payload: "x"}.proto()}}, &jobsProto.Empty{})
			}, "has no id"},
		} {
			if err := c.push(); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want it to say %q", err, c.want)
			}
		}
		if s := rr.sqlStats("p"); s.Ready+s.Delayed != 0 {
			t.Fatalf("a refused push was stored: %+v", s)
		}
	})
}
