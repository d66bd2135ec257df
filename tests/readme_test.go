package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// readmeBlocks are the fenced code blocks of a language in the README, in order.
func readmeBlocks(t *testing.T, lang string) []string {
	t.Helper()
	return markdownBlocks(t, filepath.Join("..", "README.md"), lang)
}

// markdownBlocks are the fenced code blocks of a language in a markdown file, in order.
func markdownBlocks(t *testing.T, file, lang string) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range regexp.MustCompile("(?s)```"+lang+"\n(.*?)```").FindAllStringSubmatch(string(b), -1) {
		out = append(out, m[1])
	}
	return out
}

// TestReadmePHP runs every PHP example of the README as it is written, with the real
// spiral/roadrunner-jobs client, against a real rr: the worker example as the rr's worker, the
// others as scripts in README order, each followed by a check of what it did. Only the addresses
// (the RPC listener, the SQLite file, the client's autoloader) are the test's own.
func TestReadmePHP(t *testing.T) {
	phpClient(t)
	dir := t.TempDir()
	section := backends()[0].section(t, dir) // SQLite, the README's default
	dbFile := lastDSN
	enqueue, err := filepath.Abs(filepath.Join("..", "examples", "enqueue.php"))
	if err != nil {
		t.Fatal(err)
	}
	// The jobs client and this repository's PHP package (php/), as composer's autoloader gives them.
	autoload := phpPath(t, "sql_package_autoload.php")
	adapt := func(example, rpcAddr string) string {
		for from, to := range map[string]string{
			"require 'vendor/autoload.php';":  fmt.Sprintf("require %q;", autoload),
			"require 'examples/enqueue.php';": fmt.Sprintf("require %q;", enqueue),
			"tcp://127.0.0.1:6001":            "tcp://" + rpcAddr,
			"new PDO('sqlite:rr-jobs.db'":     fmt.Sprintf("new PDO('sqlite:%s'", dbFile),
		} {
			example = strings.ReplaceAll(example, from, to)
		}
		return example
	}
	var worker string
	var scripts []string
	for _, example := range readmeBlocks(t, "php") {
		if strings.Contains(example, "new Consumer") {
			worker = example
		} else {
			scripts = append(scripts, example)
		}
	}
	if worker == "" || len(scripts) < 5 {
		t.Fatalf("the README has %d PHP examples besides the worker (want the push, declare, sql RPC, find and cancel, and enqueue ones) and worker %v", len(scripts), worker != "")
	}
	workerFile := filepath.Join(dir, "readme_worker.php")
	if err := os.WriteFile(workerFile, []byte(adapt(worker, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	rr := start(t, options{pipelines: pipelineYAML("emails") + pipelineYAML("emails-slow"), sqlSection: section,
		out: filepath.Join(dir, "out.jsonl"), worker: workerFile})

	for i, example := range scripts {
		file := filepath.Join(dir, fmt.Sprintf("readme_%d.php", i+1))
		if err := os.WriteFile(file, []byte(adapt(example, rr.rpcAddr)), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("php", file)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("README PHP example %d failed: %v\n%s\n--- the example:\n%s", i+1, err, out, example)
		}
		t.Logf("README PHP example %d ran: %s", i+1, strings.TrimSpace(string(out)))
		switch {
		case strings.Contains(example, "sql.Cancel"):
			if !regexp.MustCompile(`^[0-9a-f-]{36} was delayed, then cancelled$`).MatchString(strings.TrimSpace(string(out))) {
				t.Fatalf("the find and cancel example printed %q", out)
			}
			if s := rr.sqlStats("emails"); s.Delayed+s.Ready != 0 {
				t.Fatalf("after the find and cancel example: %+v, want its job cancelled", s)
			}
		case strings.Contains(example, "->dispatch("):
			if s := rr.sqlStats("emails"); s.Delayed != 1 {
				t.Fatalf("after the push example: %+v, want its job delayed", s)
			}
		case strings.Contains(example, "SqlCreateInfo"):
			if l := rr.list(); slices.Contains(l, "reports-acme") {
				t.Fatalf("after the declare example: %v, want reports-acme created and destroyed", l)
			}
		case strings.Contains(example, "sql.Stats"):
			if !strings.Contains(string(out), "tenants waiting") {
				t.Fatalf("the sql RPC example printed %q", out)
			}
			if s := rr.sqlStats("emails"); s.Delayed != 0 {
				t.Fatalf("after the sql RPC example: %+v, want the acme job moved away and flushed", s)
			}
		case strings.Contains(example, "enqueue_job("):
			if s := rr.sqlStats("emails"); s.Ready != 1 {
				t.Fatalf("after the enqueue example: %+v, want its committed job ready", s)
			}
		}
	}
	// The README's worker runs the job the enqueue example committed.
	rr.resume("emails")
	waitFor(t, 20*time.Second, "the README worker to ack the enqueued job", func() (bool, string) {
		s := rr.sqlStats("emails")
		return s.Ready+s.Reserved == 0 && s.Failed == 0, fmt.Sprintf("%+v", s)
	})
}
