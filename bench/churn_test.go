package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// The claim statement churn.md explains is read from the store's source: it must come out whole,
// rendered for PostgreSQL.
func TestPostgresClaimStatement(t *testing.T) {
	stmt, err := postgresClaimStatement("../store")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"FROM rr_jobs", "FOR NO KEY UPDATE SKIP LOCKED", "$1", "$5", "statement_timestamp()", "RETURNING"} {
		if !strings.Contains(stmt, want) {
			t.Errorf("no %q in\n%s", want, stmt)
		}
	}
	if strings.ContainsAny(stmt, "?{}") {
		t.Errorf("placeholders left in\n%s", stmt)
	}
}

func TestBucketEdge(t *testing.T) {
	for d, want := range map[string]string{"0s": "0s", "10s": "10s", "1m0s": "1m", "1m30s": "1m30s", "10m0s": "10m"} {
		if got := bucketEdge(mustDuration(t, d)); got != want {
			t.Errorf("bucketEdge(%s) = %s, want %s", d, got, want)
		}
	}
}

func mustDuration(t *testing.T, s string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// A bitmap scan of rr_jobs_claim reads the index as an index scan does (PostgreSQL picks it when
// few rows wait); a sequential scan of rr_jobs anywhere fails the plan.
func TestPlanReadsClaimIndex(t *testing.T) {
	for plan, want := range map[string]bool{
		"->  Index Scan using rr_jobs_claim on rr_jobs":                              true,
		"->  Bitmap Heap Scan on rr_jobs\n  ->  Bitmap Index Scan on rr_jobs_claim":  true,
		"->  Seq Scan on rr_jobs":                                                    false,
		"->  Index Scan using rr_jobs_claim on rr_jobs\n  ->  Seq Scan on rr_jobs j": false,
		"->  Index Scan using rr_jobs_pkey on rr_jobs j":                             false,
	} {
		if got := planReadsClaimIndex(plan); got != want {
			t.Errorf("planReadsClaimIndex(%q) = %v, want %v", plan, got, want)
		}
	}
}

func TestHistogramMeanSince(t *testing.T) {
	earlier, now := histogram{count: 10, sum: 0.5}, histogram{count: 30, sum: 0.9}
	if got := now.meanMsSince(earlier); got < 19.99 || got > 20.01 {
		t.Errorf("mean of 20 observations summing 0.4 s = %v ms, want 20", got)
	}
	if got := earlier.meanMsSince(earlier); got != 0 {
		t.Errorf("no observation since: %v, want 0", got)
	}
}

func TestCPUShare(t *testing.T) {
	for comm, want := range map[string]string{"rr-bench": "rr", "rr": "rr", "php": "php", "postgres": "database", "mariadbd": "database", "kworker/0:1": "other"} {
		if got := cpuGroup(comm); got != want {
			t.Errorf("cpuGroup(%q) = %q, want %q", comm, got, want)
		}
	}
	// PHP worker 2 ended during the period and worker 3 started: the group has worker 3's time.
	earlier := cpuShare{"1 rr": 100, "2 php": 500, "steal": 5, "idle": 10}
	now := cpuShare{"1 rr": 150, "3 php": 100, "4 database": 20, "idle": 40, "steal": 15}
	want := "rr 50 %, php 100 %, database 20 %, bench 0 %, kernel 0 %, other 0 %, idle 30 %, steal 10 %"
	if got := now.since(earlier, time.Second); got != want {
		t.Errorf("since = %q, want %q", got, want)
	}
	got := readCPU()
	if _, ok := got[fmt.Sprint(os.Getpid(), " other")]; !ok || got["idle"] == 0 {
		t.Errorf("readCPU read not this test's process (pid %d, group other) or no idle time", os.Getpid())
	}
}

// TestCountedJobs: the churn's processed jobs are the sum of the workers' count files; a file
// being rewritten (its .tmp) is not counted twice.
func TestCountedJobs(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{"101": "300", "102": "200\n", "102.tmp": "300"} {
		if err := os.WriteFile(dir+"/"+name, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if got := countedJobs(dir); got != 500 {
		t.Fatalf("countedJobs = %d, want 500", got)
	}
	if got := countedJobs(dir + "/none"); got != 0 {
		t.Fatalf("countedJobs of a missing directory = %d, want 0", got)
	}
}
