package rpc

import (
	"context"
	"encoding/json"
	"path/filepath"
	"regexp"
	"slices"
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

// TestFindAndCancelAnswers: the JSON of sql.Find and sql.Cancel, field by field, and the errors
// that name what is wrong with a request.
func TestFindAndCancelAnswers(t *testing.T) {
	s := service(t)
	ctx := context.Background()
	st := s.Pipelines.(pipelines).target.Store
	push := func(id string, prio int64, delay time.Duration) {
		if _, err := st.Insert(ctx, store.NewJob{Queue: "emails", JobID: id, Name: "App\\Mail", Priority: prio, Delay: delay,
			Headers: map[string][]string{"tenant": {"acme"}}}); err != nil {
			t.Fatal(err)
		}
	}
	push("held", 1, 0)
	push("bad", 1, 0)
	held, err := st.Claim(ctx, store.ClaimRequest{Queue: "emails", Node: "node-1", Limit: 2, Lease: time.Minute})
	if err != nil || len(held) != 2 {
		t.Fatalf("claim: %d, %v", len(held), err)
	}
	if _, err := st.Write(ctx, store.Batch{Delivered: []store.Fence{held[0].Fence}}); err != nil {
		t.Fatal(err)
	}
	if ok, err := st.Fail(ctx, held[1].Fence, "rejected", 1); !ok || err != nil {
		t.Fatalf("fail: %v, %v", ok, err)
	}
	push("a", 10, 0)
	push("a", 10, time.Hour)

	var found FindResponse
	if err := s.Find(&IDsRequest{Pipeline: "emails", IDs: []string{"a", "nope", "held", "bad", "a"}}, &found); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(found)
	var answer struct {
		Jobs []map[string]any `json:"jobs"`
	}
	if err := json.Unmarshal(b, &answer); err != nil {
		t.Fatal(err)
	}
	t.Logf("sql.Find: %s", b)
	keys := func(m map[string]any) string {
		var out []string
		for k := range m {
			out = append(out, k)
		}
		slices.Sort(out)
		return strings.Join(out, ",")
	}
	want := []struct{ id, state, keys string }{
		{"a", "ready", "available_at,headers,id,job,state"},
		{"a", "delayed", "available_at,headers,id,job,state"},
		{"nope", "not_found", "id,state"},
		{"held", "reserved", "attempts,available_at,delivered,headers,id,job,node,state"},
		{"bad", "failed", "attempts,error,failed_at,failed_id,headers,id,job,state"},
	}
	if len(answer.Jobs) != len(want) {
		t.Fatalf("%d entries, want %d", len(answer.Jobs), len(want))
	}
	for i, w := range want {
		j := answer.Jobs[i]
		if j["id"] != w.id || j["state"] != w.state || keys(j) != w.keys {
			t.Errorf("entry %d = %v, want id %s, state %s, fields %s", i, j, w.id, w.state, w.keys)
		}
	}
	stamp := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)
	for _, at := range []any{answer.Jobs[0]["available_at"], answer.Jobs[4]["failed_at"]} {
		if s, _ := at.(string); !stamp.MatchString(s) {
			t.Errorf("time %v: want RFC 3339 in UTC with milliseconds", at)
		}
	}
	if h := answer.Jobs[3]; h["node"] != "node-1" || h["delivered"] != true || h["attempts"] != 1.0 || h["job"] != "App\\Mail" {
		t.Errorf("held job %v", h)
	}
	if f := answer.Jobs[4]; f["error"] != "rejected" || f["failed_id"] == 0.0 || f["attempts"] != 1.0 {
		t.Errorf("failed job %v", f)
	}

	var cancelled CancelResponse
	if err := s.Cancel(&IDsRequest{Pipeline: "emails", IDs: []string{"held", "a", "bad", "nope"}}, &cancelled); err != nil {
		t.Fatal(err)
	}
	b, _ = json.Marshal(cancelled)
	t.Logf("sql.Cancel: %s", b)
	if string(b) != `{"cancelled":2,"jobs":[{"id":"held","state":"reserved","node":"node-1"},{"id":"a","state":"cancelled"},{"id":"a","state":"cancelled"},{"id":"bad","state":"not_found"},{"id":"nope","state":"not_found"}]}` {
		t.Errorf("cancel answered %s", b)
	}

	many := make([]string, 1001)
	for i := range many {
		many[i] = "x"
	}
	for _, c := range []struct {
		in   IDsRequest
		want string
	}{
		{IDsRequest{Pipeline: "emails"}, "ids: 0 given, give 1 to 1000"},
		{IDsRequest{Pipeline: "emails", IDs: many}, "ids: 1001 given"},
		{IDsRequest{Pipeline: "emails", IDs: []string{"a", ""}}, "ids[1] is empty"},
		{IDsRequest{Pipeline: "nope", IDs: []string{"a"}}, `unknown sql pipeline "nope"`},
		{IDsRequest{IDs: []string{"a"}}, "pipeline is required"},
	} {
		errFind := s.Find(&c.in, &FindResponse{})
		errCancel := s.Cancel(&c.in, &CancelResponse{})
		for _, err := range []error{errFind, errCancel} {
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%+v: err = %v, want it to say %q", c.in.IDs, err, c.want)
			}
		}
	}
}
