package main

import (
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
