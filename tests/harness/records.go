package harness

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

// Record is one delivery of a job as a PHP worker saw it (one line of RR_TEST_OUT), in the order
// the workers wrote them.
type Record struct {
	ID       string              `json:"id"`
	Job      string              `json:"job"`
	Pipeline string              `json:"pipeline"`
	Queue    string              `json:"queue"`
	Driver   string              `json:"driver"`
	Headers  map[string][]string `json:"headers"`
	// Payload is the raw body.
	Payload string `json:"payload"`
	// Action is what the worker did: ack, nack, nack_requeue, requeue, fail or crash.
	Action string `json:"action"`
	PID    int    `json:"pid"`
	TsMs   int64  `json:"ts_ms"`
}

// Header returns the first value of a header, or "".
func (r Record) Header(name string) string {
	if v := r.Headers[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// ReadRecords parses a records file; a missing file has no records.
func ReadRecords(file string) ([]Record, error) {
	b, err := os.ReadFile(file)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	recs, _, err := parseRecords(b)
	return recs, err
}

// parseRecords parses the complete lines of b and returns how many bytes they took.
func parseRecords(b []byte) ([]Record, int, error) {
	var recs []Record
	used := 0
	for {
		nl := bytes.IndexByte(b[used:], '\n')
		if nl < 0 {
			return recs, used, nil
		}
		line := bytes.TrimSpace(b[used : used+nl])
		used += nl + 1
		if len(line) == 0 {
			continue
		}
		var r Record
		if err := json.Unmarshal(line, &r); err != nil {
			return recs, used, fmt.Errorf("records: bad line %q: %w", line, err)
		}
		recs = append(recs, r)
	}
}

// Records returns every job delivery the workers recorded so far (in Options.Out), also those of
// an earlier RoadRunner that used the same file.
func (r *RR) Records(t testing.TB) []Record {
	t.Helper()
	recs, err := r.readRecords()
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// readRecords reads what was appended since the last call (complete lines only).
func (r *RR) readRecords() ([]Record, error) {
	r.recMu.Lock()
	defer r.recMu.Unlock()
	f, err := os.Open(r.Options.Out)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err = f.Seek(r.recOff, io.SeekStart); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, err
	}
	recs, used, err := parseRecords(b)
	r.recs = append(r.recs, recs...)
	r.recOff += int64(used)
	if err != nil {
		return nil, err
	}
	return append([]Record(nil), r.recs...), nil
}

// WaitFor polls the records (every 20 ms) until cond holds and returns them; after timeout it
// fails the test, saying what it waited for and what it saw. It also fails at once if the
// container reported an error.
func (r *RR) WaitFor(t testing.TB, timeout time.Duration, what string, cond func([]Record) bool) []Record {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		recs, err := r.readRecords()
		if err != nil {
			t.Fatal(err)
		}
		if cond(recs) {
			return recs
		}
		if errs := r.Errors(); len(errs) > 0 {
			t.Fatalf("waiting for %s: roadrunner reported %v; %s", what, errs, Summary(recs))
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; %s", timeout, what, Summary(recs))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Summary describes records for failure messages: how many, how many distinct jobs, the last few.
func Summary(recs []Record) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d deliveries of %d distinct jobs recorded", len(recs), len(CountByID(recs)))
	if len(recs) > 0 {
		b.WriteString("; the last ones:")
		for _, rec := range recs[max(0, len(recs)-5):] {
			fmt.Fprintf(&b, "\n  id=%s pipeline=%s action=%s headers=%v payload=%s pid=%d", rec.ID, rec.Pipeline, rec.Action, rec.Headers, rec.Payload, rec.PID)
		}
	}
	return b.String()
}

// CountByID counts the deliveries of each job id.
func CountByID(recs []Record) map[string]int {
	out := make(map[string]int, len(recs))
	for _, r := range recs {
		out[r.ID]++
	}
	return out
}

// Deliveries returns the deliveries of one job, in order.
func Deliveries(recs []Record, id string) []Record {
	var out []Record
	for _, r := range recs {
		if r.ID == id {
			out = append(out, r)
		}
	}
	return out
}
