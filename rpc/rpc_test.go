package rpc

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rr-sql/sqljobs/store"
)

// pipelines is one sql pipeline on a real SQLite store.
type pipelines struct{ target Target }

func (p pipelines) Lookup(name string) (Target, bool) { return p.target, name == p.target.Pipeline }
func (p pipelines) Names() []string                   { return []string{p.target.Pipeline} }

func service(t *testing.T) *Service {
	t.Helper()
	st, err := store.OpenSQLite(context.Background(), store.SQLiteOptions{
		Path: filepath.Join(t.TempDir(), "jobs.db"), Synchronous: "normal", BusyTimeout: time.Second, MaxReadConns: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return &Service{Pipelines: pipelines{Target{Pipeline: "emails", Queue: "emails", Connection: "default", Store: st, Wake: func() {}}}}
}

// TestEmptyListsAreArrays: PHP decodes the answers of the `sql` service from JSON, and its count()
// throws on null: an empty list must be [].
func TestEmptyListsAreArrays(t *testing.T) {
	s := service(t)
	var groups GroupsResponse
	if err := s.Groups(&GroupsRequest{Pipeline: "emails", Header: "tenant"}, &groups); err != nil {
		t.Fatal(err)
	}
	var failed FailedListResponse
	if err := s.FailedList(&FailedListRequest{Pipeline: "emails"}, &failed); err != nil {
		t.Fatal(err)
	}
	var stats StatsResponse
	if err := s.Stats(&StatsRequest{Pipelines: []string{"emails"}}, &stats); err != nil {
		t.Fatal(err)
	}
	for _, answer := range []any{groups, failed, stats} {
		b, err := json.Marshal(answer)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "null") {
			t.Errorf("answer %s holds a null", b)
		}
	}
}
