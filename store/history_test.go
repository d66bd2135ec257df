package store

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestHistorySumsNodesAndMinutes: each node adds to its own row of a minute (twice in a minute
// adds up), readers get the nodes' sum per pipeline and minute with the largest depth, from the
// asked minute on, and pruning drops the minutes older than the retention, of every pipeline.
func TestHistorySumsNodesAndMinutes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		now := time.Now().Truncate(time.Minute)
		m0, m1, old := now.Add(-2*time.Minute), now.Add(-time.Minute), now.Add(-48*time.Hour)
		write := func(node string, rows ...HistoryMinute) {
			t.Helper()
			if err := s.AddHistory(ctx, node, rows); err != nil {
				t.Fatal(err)
			}
		}
		write("a", HistoryMinute{Pipeline: "p", Minute: m0, Pushed: 10, Processed: 4, Failed: 1, Depth: 6},
			HistoryMinute{Pipeline: "p", Minute: m1, Pushed: 1, Processed: 2, Depth: 5},
			HistoryMinute{Pipeline: "other", Minute: m1, Pushed: 7},
			HistoryMinute{Pipeline: "p", Minute: old, Pushed: 100},
			HistoryMinute{Pipeline: "destroyed", Minute: old, Pushed: 1})
		write("b", HistoryMinute{Pipeline: "p", Minute: m0, Pushed: 5, Processed: 5, Failed: 2, Depth: 9})
		write("a", HistoryMinute{Pipeline: "p", Minute: m0, Pushed: 1, Processed: 1, Depth: 3}) // the same minute again: adds

		got, err := s.ReadHistory(ctx, []string{"p"}, m0)
		if err != nil {
			t.Fatal(err)
		}
		want := []HistoryMinute{
			{Pipeline: "p", Minute: m0, Pushed: 16, Processed: 10, Failed: 3, Depth: 9},
			{Pipeline: "p", Minute: m1, Pushed: 1, Processed: 2, Depth: 5},
		}
		if len(got) != len(want) {
			t.Fatalf("history = %+v, want %+v", got, want)
		}
		for i := range want {
			if !got[i].Minute.Equal(want[i].Minute) {
				t.Fatalf("minute %d = %s, want %s", i, got[i].Minute, want[i].Minute)
			}
			got[i].Minute = want[i].Minute
			if got[i] != want[i] {
				t.Errorf("minute %d = %+v, want %+v", i, got[i], want[i])
			}
		}
		both, err := s.ReadHistory(ctx, []string{"p", "other"}, m1)
		if err != nil {
			t.Fatal(err)
		}
		if len(both) != 2 || both[0].Pipeline != "other" || both[0].Pushed != 7 || both[1].Pipeline != "p" {
			t.Fatalf("history of both from %s = %+v, want other's then p's minute", m1, both)
		}

		n, err := s.PruneHistory(ctx, 24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if n != 2 {
			t.Fatalf("pruned %d rows, want 2 (p's and destroyed's minutes two days ago)", n)
		}
		all, err := s.ReadHistory(ctx, []string{"p", "other", "destroyed"}, old.Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 3 {
			t.Fatalf("after pruning: %+v, want p's two recent minutes and other's", all)
		}
	})
}

// TestHeldByNode counts the reserved jobs per node, and only those.
func TestHeldByNode(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		for _, id := range []string{"n1", "n2"} {
			if err := s.RegisterNode(ctx, Node{ID: id, Host: "h", PID: 1}); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 6 {
			mustInsert(t, s, NewJob{JobID: string(rune('a' + i))})
		}
		if _, err := claim(s, "q", "n1", 3); err != nil {
			t.Fatal(err)
		}
		if _, err := claim(s, "q", "n2", 1); err != nil {
			t.Fatal(err)
		}
		held, err := s.HeldByNode(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(held) != 2 || held["n1"] != 3 || held["n2"] != 1 {
			t.Fatalf("held = %v, want n1: 3, n2: 1", held)
		}
	})
}

// TestSearchFailed: the failed jobs whose name and error contain the texts (case aside), paged;
// LIKE's wildcards in the texts are plain characters.
func TestSearchFailed(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		if err := s.RegisterNode(ctx, Node{ID: "n", Host: "h", PID: 1}); err != nil {
			t.Fatal(err)
		}
		for i, j := range []struct{ name, reason string }{
			{"App\\SendMail", "SMTP timeout"}, {"App\\SendMail", "50% quota_used"}, {"App\\Resize", "smtp? no: disk full"}, {"App\\SendMail", "bounced"},
		} {
			mustInsert(t, s, NewJob{JobID: fmt.Sprint("j", i), Name: j.name})
			got, err := claim(s, "q", "n", 1)
			if err != nil || len(got) != 1 {
				t.Fatalf("claim: %v %v", got, err)
			}
			if ok, err := s.Fail(ctx, got[0].Fence, j.reason, 1); err != nil || !ok {
				t.Fatalf("fail: %v %v", ok, err)
			}
		}
		search := func(f FailedSearch) []string {
			t.Helper()
			f.Queue = "q"
			if f.Limit == 0 {
				f.Limit = 10
			}
			got, err := s.SearchFailed(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, j := range got {
				out = append(out, j.JobID)
			}
			return out
		}
		for _, tc := range []struct {
			f    FailedSearch
			want string
		}{
			{FailedSearch{}, "[j0 j1 j2 j3]"},
			{FailedSearch{Name: "sendmail"}, "[j0 j1 j3]"},
			{FailedSearch{Error: "smtp"}, "[j0 j2]"},
			{FailedSearch{Name: "SendMail", Error: "SMTP"}, "[j0]"},
			{FailedSearch{Error: "%"}, "[j1]"},
			{FailedSearch{Error: "_"}, "[j1]"},
			{FailedSearch{Error: "0%_q"}, "[]"},
			{FailedSearch{Name: "app\\", Limit: 2}, "[j0 j1]"},
		} {
			if got := fmt.Sprint(search(tc.f)); got != tc.want && !(tc.want == "[]" && got == "[]") {
				t.Errorf("search %+v = %s, want %s", tc.f, got, tc.want)
			}
		}
		first := search(FailedSearch{Limit: 2})
		all, err := s.SearchFailed(ctx, FailedSearch{Queue: "q", Limit: 10})
		if err != nil || len(first) != 2 {
			t.Fatal(err, first)
		}
		rest, err := s.SearchFailed(ctx, FailedSearch{Queue: "q", AfterID: all[1].ID, Limit: 10})
		if err != nil || len(rest) != 2 || rest[0].JobID != "j2" {
			t.Fatalf("page after %d = %+v, %v; want j2 and j3", all[1].ID, rest, err)
		}
	})
}

// TestRecentPipelines: the pipelines any node wrote a minute for from the given minute on, each
// once, in name order; older minutes do not count.
func TestRecentPipelines(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		now := time.Now().Truncate(time.Minute)
		if err := s.AddHistory(ctx, "a", []HistoryMinute{{Pipeline: "here", Minute: now}, {Pipeline: "gone", Minute: now.Add(-10 * time.Minute)}}); err != nil {
			t.Fatal(err)
		}
		if err := s.AddHistory(ctx, "b", []HistoryMinute{{Pipeline: "elsewhere", Minute: now.Add(-time.Minute), Depth: 3}, {Pipeline: "here", Minute: now}}); err != nil {
			t.Fatal(err)
		}
		got, err := s.RecentPipelines(ctx, now.Add(-5*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != "[elsewhere here]" {
			t.Fatalf("recent pipelines = %q, want [elsewhere here]", got)
		}
		none, err := s.RecentPipelines(ctx, now.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if len(none) != 0 {
			t.Fatalf("recent pipelines after the last minute = %q, want none", none)
		}
		// SQLite's planner would walk the whole primary key (a week of minutes of every pipeline
		// and node) for its order; the minute index reads the recent minutes alone.
		if st := s.(*sqlStore); st.d.name == "sqlite" {
			var plan []string
			rows, err := st.r.QueryContext(ctx, st.d.explain+`SELECT DISTINCT pipeline FROM rr_history`+st.d.historyByMinute+` WHERE minute >= ? ORDER BY pipeline`, now.UnixMilli())
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			for rows.Next() {
				var id, parent, unused int
				var detail string
				if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
					t.Fatal(err)
				}
				plan = append(plan, detail)
			}
			if !strings.Contains(strings.Join(plan, "; "), "USING INDEX rr_history_minute") {
				t.Fatalf("the recent pipelines' plan is %q: want a search of rr_history_minute", plan)
			}
		}
	})
}
