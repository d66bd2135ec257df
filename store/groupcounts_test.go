package store

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// pagesOf reads every page of size limit with count and checks they come in strictly increasing
// value order, none longer than limit (but a page of one with the "" group, which takes the next).
func pagesOf(t *testing.T, limit int, count func(after string, limit int) ([]GroupCount, error)) []GroupCount {
	t.Helper()
	var all []GroupCount
	after := ""
	for range 1000 {
		page, err := count(after, limit)
		if err != nil {
			t.Fatalf("page after %q: %v", after, err)
		}
		if len(page) > limit && !(limit == 1 && len(page) == 2 && page[0].Value == "") {
			t.Fatalf("page after %q has %d groups, over its limit %d", after, len(page), limit)
		}
		for _, g := range page {
			if len(all) > 0 && g.Value <= all[len(all)-1].Value {
				t.Fatalf("group %q after %q: pages out of order or repeated", g.Value, all[len(all)-1].Value)
			}
			all = append(all, g)
		}
		if len(page) < limit {
			return all
		}
		after = page[len(page)-1].Value
	}
	t.Fatal("pages never ended")
	return nil
}

// TestCountGroupsPages: the pages of a group_by queue's counts list every group exactly once, in
// order, with its ready, delayed and reserved jobs and its overflow, whatever the page size:
// groups with only reserved jobs, only delayed jobs, or only an overflow entry included, the ""
// group first; another queue's jobs do not count; a page after the last group is empty.
func TestCountGroupsPages(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		// The reserved jobs first, alone in the queue: a plain claim takes them.
		mustInsert(t, s, groupJob("c", 0))
		mustInsert(t, s, groupJob("d", 0))
		if got, err := claim(s, "q", "n", 2); err != nil || len(got) != 2 {
			t.Fatalf("claim = %v, %v", got, err)
		}
		delayed := func(j NewJob) NewJob { j.Delay = time.Hour; return j }
		mustInsert(t, s, groupJob("", 0))
		mustInsert(t, s, groupJob("a", 0))
		mustInsert(t, s, groupJob("a", 1))
		mustInsert(t, s, delayed(groupJob("a", 2)))
		mustInsert(t, s, delayed(groupJob("b", 0)))
		mustInsert(t, s, delayed(groupJob("b", 1)))
		mustInsert(t, s, groupJob("d", 1))
		want := []GroupCount{
			{Value: "", Counts: Counts{Ready: 1}},
			{Value: "a", Counts: Counts{Ready: 2, Delayed: 1}},
			{Value: "b", Counts: Counts{Delayed: 2}},
			{Value: "c", Counts: Counts{Reserved: 1}},
			{Value: "d", Counts: Counts{Ready: 1, Reserved: 1}},
			{Value: "e", OverflowTo: "slow"},
		}
		for i := range 20 {
			g := fmt.Sprintf("g%02d", i)
			for k := range i%3 + 1 {
				mustInsert(t, s, groupJob(g, k))
			}
			want = append(want, GroupCount{Value: g, Counts: Counts{Ready: int64(i%3 + 1)}})
		}
		// Groups of another queue, before, among and after this one's.
		for _, g := range []string{"", "a", "c", "f", "zz"} {
			j := groupJob(g, 9)
			j.Queue = "other"
			mustInsert(t, s, j)
		}
		st := s.(*sqlStore)
		if _, err := st.exec(ctx, st.w, `INSERT INTO rr_overflow (queue, grp, target_queue, since) VALUES (?, ?, ?, 0), (?, ?, ?, 0)`,
			"q", "e", "slow", "other", "b", "slow"); err != nil {
			t.Fatal(err)
		}
		for _, limit := range []int{1, 2, 3, 7, 26, 100} {
			got := pagesOf(t, limit, func(after string, limit int) ([]GroupCount, error) {
				return s.CountGroups(ctx, "q", after, limit)
			})
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("pages of %d:\n got %+v\nwant %+v", limit, got, want)
			}
		}
		for _, after := range []string{"g19", "zz"} {
			if page, err := s.CountGroups(ctx, "q", after, 10); err != nil || len(page) != 0 {
				t.Fatalf("page after %q = %+v, %v; want none", after, page, err)
			}
		}
		if page, err := s.CountGroups(ctx, "q", "c", 2); err != nil || fmt.Sprint(page) != fmt.Sprint(want[4:6]) {
			t.Fatalf("page of 2 after c = %+v, %v; want %+v", page, err, want[4:6])
		}
		if _, err := s.CountGroups(ctx, "q", "", 0); err == nil {
			t.Fatal("a page of 0 groups was accepted")
		}
	})
}

// TestCountByHeaderPages: the pages of a queue's counts by a header list every value exactly once,
// in order, jobs without the header as "" (first); a page after the last value is empty.
func TestCountByHeaderPages(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		tenant := func(v string) map[string][]string { return map[string][]string{"tenant": {v}} }
		mustInsert(t, s, NewJob{JobID: "r1", Headers: tenant("c")})
		mustInsert(t, s, NewJob{JobID: "r2"})
		if got, err := claim(s, "q", "n", 2); err != nil || len(got) != 2 {
			t.Fatalf("claim = %v, %v", got, err)
		}
		mustInsert(t, s, NewJob{JobID: "n1"})
		mustInsert(t, s, NewJob{JobID: "e1", Headers: tenant("")})
		mustInsert(t, s, NewJob{JobID: "b1", Headers: tenant("b"), Delay: time.Hour})
		mustInsert(t, s, NewJob{JobID: "a1", Headers: tenant("a")})
		mustInsert(t, s, NewJob{JobID: "a2", Headers: map[string][]string{"tenant": {"a", "z"}}, Delay: time.Hour})
		mustInsert(t, s, NewJob{JobID: "o1", Queue: "other", Headers: tenant("x")})
		want := []GroupCount{
			{Value: "", Counts: Counts{Ready: 2, Reserved: 1}},
			{Value: "a", Counts: Counts{Ready: 1, Delayed: 1}},
			{Value: "b", Counts: Counts{Delayed: 1}},
			{Value: "c", Counts: Counts{Reserved: 1}},
		}
		for _, limit := range []int{1, 2, 3, 4, 100} {
			got := pagesOf(t, limit, func(after string, limit int) ([]GroupCount, error) {
				return s.CountByHeader(ctx, "q", "tenant", after, limit)
			})
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("pages of %d:\n got %+v\nwant %+v", limit, got, want)
			}
		}
		if page, err := s.CountByHeader(ctx, "q", "tenant", "c", 10); err != nil || len(page) != 0 {
			t.Fatalf("page after the last = %+v, %v; want none", page, err)
		}
		if _, err := s.CountByHeader(ctx, "q", "bad header", "", 10); err == nil {
			t.Fatal("a bad header name was accepted")
		}
	})
}

// TestCountGroupsPlanReadsThePage: the groups of a page of a group_by queue's counts are found
// through rr_jobs_group (partial on PostgreSQL and SQLite, a loose index scan on MySQL), never by
// a scan of the table.
func TestCountGroupsPlanReadsThePage(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s Store) {
		// 20,000 jobs in 500 groups, a third delayed.
		st := s.(*sqlStore)
		tx, err := st.w.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		stmt, err := tx.PrepareContext(ctx, st.q(`INSERT INTO rr_jobs (queue, job_id, name, payload, headers, priority, available_at, created_at, attempts, auto_ack, grp)
			VALUES ('q', ?, 'Job', 'x', '{}', 0, ?, 0, 0, ?, ?)`))
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now().UnixMilli()
		for i := range 20000 {
			if _, err := stmt.ExecContext(ctx, fmt.Sprint(i), now+int64(i%3)*3600_000, false, fmt.Sprint("t", i%500)); err != nil {
				t.Fatal(err)
			}
		}
		_ = stmt.Close()
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		plan, err := explainGroupPage(st, "q", "t1", 5)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("plan:\n%s", plan)
		// The statement that finds the page. PostgreSQL's planner may scan a table this small:
		// BenchmarkCountGroupsPage logs its plans at 1M jobs.
		plan, _, _ = strings.Cut(plan, "\ncounts:")
		if s.Dialect() == "postgres" {
			return
		}
		if !strings.Contains(plan, "rr_jobs_group") {
			t.Errorf("the page does not read rr_jobs_group:\n%s", plan)
		}
		if scan := regexp.MustCompile(`(?m)Seq Scan on rr_jobs\b|SCAN rr_jobs$|table=rr_jobs type=(ALL|index)\b`).FindString(plan); scan != "" {
			t.Errorf("the page scans rr_jobs (%s):\n%s", scan, plan)
		}
	})
}

// explainGroupPage shows the plans of the two statements of a page of CountGroups.
func explainGroupPage(st *sqlStore, queue, after string, limit int) (string, error) {
	query, args := st.groupPageNames(queue, after, limit)
	rows, err := st.query(ctx, st.r, st.d.explain+query, args...)
	if err != nil {
		return "", err
	}
	names, err := planText(rows)
	if err != nil {
		return "", err
	}
	page, err := st.CountGroups(ctx, queue, after, limit)
	if err != nil || len(page) == 0 {
		return names, err
	}
	var groups []any
	for _, g := range page {
		groups = append(groups, g.Value)
	}
	query, args = st.groupPageCounts(queue, groups)
	if rows, err = st.query(ctx, st.r, st.d.explain+query, args...); err != nil {
		return "", err
	}
	counts, err := planText(rows)
	return "names:\n" + names + "\ncounts:\n" + counts, err
}
