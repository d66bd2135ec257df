package tests

import (
	"fmt"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

// pdoDSN turns a test database's DSN into PHP PDO's (dsn, user, password).
func pdoDSN(t *testing.T, backend, dsn string) (string, string, string) {
	switch backend {
	case "sqlite":
		return "sqlite:" + dsn, "", ""
	case "postgres":
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatal(err)
		}
		pass, _ := u.User.Password()
		return fmt.Sprintf("pgsql:host=%s;port=%s;dbname=%s", u.Hostname(), u.Port(), u.Path[1:]), u.User.Username(), pass
	default: // user:pass@tcp(host:port)/db
		m := regexp.MustCompile(`^([^:]+):([^@]*)@tcp\(([^:]+):(\d+)\)/(\w+)`).FindStringSubmatch(dsn)
		if m == nil {
			t.Fatalf("cannot read mysql dsn %q", dsn)
		}
		return fmt.Sprintf("mysql:host=%s;port=%s;dbname=%s", m[3], m[4], m[5]), m[1], m[2]
	}
}

// TestTransactionalEnqueue inserts jobs with plain SQL from PHP (PDO) inside the application's
// transaction: the committed one runs, the rolled-back one never exists.
func TestTransactionalEnqueue(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dir := t.TempDir()
		out := filepath.Join(dir, "out.jsonl")
		section := b.section(t, dir)
		dsn := lastDSN
		rr := start(t, options{pipelines: pipelineYAML("orders"), consume: []string{"orders"}, sqlSection: section, out: out})
		pdo, user, pass := pdoDSN(t, b.name, dsn)
		script, _ := filepath.Abs(filepath.Join("..", "examples", "enqueue.php"))
		for _, c := range []struct{ id, outcome string }{{"rolled-back", "rollback"}, {"committed", "commit"}} {
			cmd := exec.Command("php", script, pdo, user, pass, "orders", c.id, c.outcome)
			if o, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("enqueue.php %s: %v\n%s", c.outcome, err, o)
			}
		}
		recs := waitRecords(t, out, 1, 10*time.Second)
		if recs[0].ID != "committed" || recs[0].Job != "App\\\\Jobs\\\\ShipOrder" && recs[0].Job != `App\Jobs\ShipOrder` || recs[0].Headers["source"][0] != "enqueue.php" {
			t.Fatalf("record = %+v", recs[0])
		}
		waitFor(t, 5*time.Second, "the committed job acked", func() (bool, string) {
			s := rr.stat("orders")
			return s.GetActive()+s.GetReserved()+s.GetDelayed() == 0, fmt.Sprint(s)
		})
		stableFor(t, 500*time.Millisecond, "the rolled-back job never runs", func() (bool, string) {
			n := len(records(t, out))
			return n == 1, fmt.Sprintf("%d records", n)
		})
	})
}

// TestTransactionalEnqueueIntoAGroupByPipeline: a row inserted by hand into a group_by pipeline's
// queue with its group in grp (the documented contract) runs.
func TestTransactionalEnqueueIntoAGroupByPipeline(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dir := t.TempDir()
		out := filepath.Join(dir, "out.jsonl")
		section := b.section(t, dir)
		dsn := lastDSN
		start(t, options{pipelines: pipelineYAML("orders", "group_by: source"), consume: []string{"orders"}, sqlSection: section, out: out})
		pdo, user, pass := pdoDSN(t, b.name, dsn)
		script, _ := filepath.Abs(filepath.Join("..", "examples", "enqueue.php"))
		cmd := exec.Command("php", script, pdo, user, pass, "orders", "grouped", "commit", "enqueue.php")
		if o, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("enqueue.php: %v\n%s", err, o)
		}
		if recs := waitRecords(t, out, 1, 10*time.Second); recs[0].ID != "grouped" {
			t.Fatalf("record = %+v", recs[0])
		}
	})
}

// TestTransactionalEnqueueWithAUniqueKey: a row inserted by hand with a unique key (the documented
// column and conflict clause) refuses a second one with the same key, whether it comes by hand or
// through a push, and the job runs once.
func TestTransactionalEnqueueWithAUniqueKey(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dir := t.TempDir()
		out := filepath.Join(dir, "out.jsonl")
		section := b.section(t, dir)
		dsn := lastDSN
		rr := start(t, options{pipelines: pipelineYAML("orders"), sqlSection: section, out: out})
		pdo, user, pass := pdoDSN(t, b.name, dsn)
		script, _ := filepath.Abs(filepath.Join("..", "examples", "enqueue.php"))
		for _, c := range []struct{ id, want string }{{"first", "job first: commit\n"}, {"second", "job second: commit (not created: a job of the queue holds its unique key)\n"}} {
			o, err := exec.Command("php", script, pdo, user, pass, "orders", c.id, "commit", "--unique-key=order-42").CombinedOutput()
			if err != nil || string(o) != c.want {
				t.Fatalf("enqueue.php %s: %v, printed %q, want %q", c.id, err, o, c.want)
			}
		}
		rr.push(job{id: "pushed", pipeline: "orders", payload: map[string]any{"action": "ack"}, headers: map[string][]string{uniqueHeader: {"order-42"}}})
		if s := rr.sqlStats("orders"); s.Ready != 1 {
			t.Fatalf("after three jobs with one key: %+v, want 1 ready", s)
		}
		rr.resume("orders")
		if recs := waitRecords(t, out, 1, 10*time.Second); recs[0].ID != "first" || recs[0].Headers[uniqueHeader][0] != "order-42" {
			t.Fatalf("record = %+v", recs[0])
		}
		waitFor(t, 5*time.Second, "the job acked", func() (bool, string) {
			s := rr.sqlStats("orders")
			return s.Ready+s.Reserved == 0, fmt.Sprint(s)
		})
		stableFor(t, 500*time.Millisecond, "no second job with the key runs", func() (bool, string) {
			n := len(records(t, out))
			return n == 1, fmt.Sprintf("%d records", n)
		})
	})
}
