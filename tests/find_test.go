package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	sqlrpc "github.com/rr-sql/sqljobs/rpc"
)

// TestFindAndCancelByID: a job held at a PHP worker is found reserved on this node and delivered;
// sql.Cancel deletes the waiting jobs of the ids (two of one id among them) and reports the held
// one, which then completes at its worker; the cancelled jobs never reach a worker.
func TestFindAndCancelByID(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dir := t.TempDir()
		out, end := filepath.Join(dir, "out.jsonl"), filepath.Join(dir, "end.jsonl")
		section := b.section(t, dir)
		db := openTestDB(t, b.name, lastDSN)
		// prefetch 1: while the held job runs, this node claims nothing more, and the jobs pushed
		// after it stay waiting in the database.
		rr := start(t, options{pipelines: pipelineYAML("p", "prefetch: 1"), consume: []string{"p"}, workers: 1,
			sqlSection: section, out: out, env: map[string]string{"RR_TEST_END_OUT": end}})
		gate := filepath.Join(dir, "gate")
		rr.push(job{id: "held", pipeline: "p", payload: map[string]any{"action": "ack", "hold_file": gate}})
		waitRecords(t, out, 1, 10*time.Second)
		ack := map[string]any{"action": "ack"}
		rr.push(job{id: "w1", pipeline: "p", payload: ack, headers: map[string][]string{"tenant": {"acme"}}})
		rr.push(job{id: "later", pipeline: "p", payload: ack, delay: 600})
		rr.push(job{id: "twice", pipeline: "p", payload: ack})
		rr.push(job{id: "twice", pipeline: "p", payload: ack, delay: 600})

		var node string
		if err := db.QueryRow(`SELECT id FROM rr_nodes`).Scan(&node); err != nil {
			t.Fatal(err)
		}
		var found sqlrpc.FindResponse
		waitFor(t, 10*time.Second, "sql.Find to report the held job delivered", func() (bool, string) {
			found = sqlrpc.FindResponse{}
			if err := rr.call("sql.Find", &sqlrpc.IDsRequest{Pipeline: "p", IDs: []string{"held", "w1", "later", "twice", "nope"}}, &found); err != nil {
				t.Fatal(err)
			}
			return len(found.Jobs) > 0 && found.Jobs[0].Delivered, asJSON(found)
		})
		t.Logf("sql.Find: %s", asJSON(found))
		var states []string
		for _, j := range found.Jobs {
			states = append(states, j.ID+":"+j.State)
		}
		if want := []string{"held:reserved", "w1:ready", "later:delayed", "twice:ready", "twice:delayed", "nope:not_found"}; !slices.Equal(states, want) {
			t.Fatalf("found %v, want %v", states, want)
		}
		if h := found.Jobs[0]; h.Node != node || h.Attempts != 1 || h.Job != "App\\Jobs\\Test" {
			t.Fatalf("held job %s, want it on node %s (the one node), at its first delivery", asJSON(h), node)
		}
		if w := found.Jobs[1]; w.Headers["tenant"][0] != "acme" || w.AvailableAt == "" || w.Node != "" {
			t.Fatalf("waiting job %s", asJSON(w))
		}

		var cancelled sqlrpc.CancelResponse
		if err := rr.call("sql.Cancel", &sqlrpc.IDsRequest{Pipeline: "p", IDs: []string{"held", "w1", "later", "twice", "nope"}}, &cancelled); err != nil {
			t.Fatal(err)
		}
		t.Logf("sql.Cancel: %s", asJSON(cancelled))
		if want := fmt.Sprintf(`{"cancelled":4,"jobs":[{"id":"held","state":"reserved","node":%q},{"id":"w1","state":"cancelled"},{"id":"later","state":"cancelled"},{"id":"twice","state":"cancelled"},{"id":"twice","state":"cancelled"},{"id":"nope","state":"not_found"}]}`, node); asJSON(cancelled) != want {
			t.Fatalf("cancel answered %s, want %s", asJSON(cancelled), want)
		}
		if s := rr.sqlStats("p"); s.Ready+s.Delayed != 0 || s.Reserved != 1 {
			t.Fatalf("stats after the cancel %+v: want the held job alone", s)
		}

		// The held job finishes and is acked; a job pushed now runs next (FIFO, one at a time): had
		// a cancelled job been left, it would have run before it.
		if err := os.WriteFile(gate, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		rr.push(job{id: "after", pipeline: "p", payload: ack})
		recs := waitRecords(t, out, 2, 10*time.Second)
		waitFor(t, 10*time.Second, "both jobs acked", func() (bool, string) {
			s := rr.sqlStats("p")
			return s.Ready+s.Delayed+s.Reserved+s.Failed == 0, asJSON(s)
		})
		ended := jsonLines[endRecord](t, end)
		if len(recs) != 2 || recs[0].ID != "held" || recs[1].ID != "after" || len(ended) != 2 || ended[0].ID != "held" {
			t.Fatalf("workers received %v and finished %v; want held then after", ids(recs), ended)
		}
		var gone sqlrpc.FindResponse
		if err := rr.call("sql.Find", &sqlrpc.IDsRequest{Pipeline: "p", IDs: []string{"held"}}, &gone); err != nil || asJSON(gone) != `{"jobs":[{"id":"held","state":"not_found"}]}` {
			t.Fatalf("find after the ack: %s, %v", asJSON(gone), err)
		}
	})
}

func ids(recs []record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	return out
}
