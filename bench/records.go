// The PHP workers' record file: one JSON line per job received, counted to follow a drain and
// read to time each job.

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// record is what the no-op worker writes of each job it gets: the id, and when (Unix ms).
type record struct {
	ID   string `json:"id"`
	TsMs int64  `json:"ts_ms"`
}

// records reads every record of the file; a line still being written is skipped.
func records(file string) []record {
	b, _ := os.ReadFile(file)
	var out []record
	for _, l := range bytes.Split(b, []byte{'\n'}) {
		var r record
		if json.Unmarshal(l, &r) == nil {
			out = append(out, r)
		}
	}
	return out
}

// lines is how many jobs the workers have recorded so far.
func lines(file string) int {
	c := lineCounter{file: file}
	return c.count()
}

// lineCounter counts the lines of the file the PHP workers append their records to, reading only
// what was added since the last call: a drain is polled every 20 ms, and reading its tens of
// megabytes again each time would take CPU from the processes being measured.
type lineCounter struct {
	file string
	read int64 // bytes counted so far
	n    int
}

func (c *lineCounter) count() int {
	f, err := os.Open(c.file)
	if err != nil {
		return c.n
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for {
		k, err := f.ReadAt(buf, c.read)
		c.n += bytes.Count(buf[:k], []byte{'\n'})
		c.read += int64(k)
		if err != nil || k < len(buf) {
			return c.n
		}
	}
}

// wait polls until n lines are there, or fails after timeout.
func (c *lineCounter) wait(n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for c.count() < n {
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d jobs processed after %s", c.n, n, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// waitLinesUpTo waits for n jobs or until the window ends, and returns how many were processed.
func waitLinesUpTo(file string, n int, window time.Duration) int {
	c := lineCounter{file: file}
	deadline := time.Now().Add(window)
	for c.count() < n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	return min(c.n, n)
}

func waitLines(file string, n int, timeout time.Duration) error {
	c := lineCounter{file: file}
	return c.wait(n, timeout)
}

// countedJobs is the sum of the workers' counts (RR_TEST_COUNT_DIR: one file per worker, holding
// the jobs it received, rewritten every 100 jobs).
func countedJobs(dir string) int {
	entries, _ := os.ReadDir(dir)
	n := 0
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		k, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		n += k
	}
	return n
}
