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

// TestGroupsPages: sql.Groups answers a page at a time (after, limit) with next_after, "" on the
// last page, and names the limit when it is out of range.
func TestGroupsPages(t *testing.T) {
	s := service(t)
	st := s.Pipelines.(pipelines).target.Store
	for i, tenant := range []string{"", "acme", "acme", "globex", "initech"} {
		j := store.NewJob{Queue: "emails", JobID: string(rune('a' + i)), Name: "Job"}
		if tenant != "" {
			j.Headers = map[string][]string{"tenant": {tenant}}
		}
		if _, err := st.Insert(context.Background(), j); err != nil {
			t.Fatal(err)
		}
	}
	var pages []string
	after := ""
	for range 10 {
		var page GroupsResponse
		if err := s.Groups(&GroupsRequest{Pipeline: "emails", Header: "tenant", After: after, Limit: 1}, &page); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(page)
		pages = append(pages, string(b))
		if after = page.NextAfter; after == "" {
			break
		}
	}
	want := []string{
		`{"groups":[{"value":"","ready":1,"delayed":0,"reserved":0},{"value":"acme","ready":2,"delayed":0,"reserved":0}],"next_after":"acme"}`,
		`{"groups":[{"value":"globex","ready":1,"delayed":0,"reserved":0}],"next_after":"globex"}`,
		`{"groups":[{"value":"initech","ready":1,"delayed":0,"reserved":0}],"next_after":"initech"}`,
		`{"groups":[],"next_after":""}`,
	}
	if strings.Join(pages, "\n") != strings.Join(want, "\n") {
		t.Fatalf("pages:\n%s\nwant:\n%s", strings.Join(pages, "\n"), strings.Join(want, "\n"))
	}
	var all GroupsResponse
	if err := s.Groups(&GroupsRequest{Pipeline: "emails", Header: "tenant"}, &all); err != nil || len(all.Groups) != 4 || all.NextAfter != "" {
		t.Fatalf("default page = %+v, %v; want the 4 groups and no next page", all, err)
	}
	for _, limit := range []int{-1, 1001} {
		err := s.Groups(&GroupsRequest{Pipeline: "emails", Header: "tenant", Limit: limit}, &GroupsResponse{})
		if err == nil || !strings.Contains(err.Error(), "limit") {
			t.Errorf("limit %d: err = %v, want it to name the limit", limit, err)
		}
	}
}
