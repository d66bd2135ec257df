package tests

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// clusterPipeline is a line of /api/overview with the cluster fields.
type clusterPipeline struct {
	Pipeline      string `json:"pipeline"`
	Queue         string `json:"queue"`
	Ready         int64  `json:"ready"`
	State         string `json:"state"`
	OnAnotherNode bool   `json:"on_another_node"`
	CountsKnown   bool   `json:"counts_known"`
}

// TestDashboardOverviewShowsClusterPipelines: two rr nodes share one database; node B runs a
// pipeline from its own configuration and declares another one that node A does not run. Once B
// has written its history (at its stop), A's overview (JSON and HTML) lists both, marked as on
// another node, the declared one with its queue's counts, the configured one as "elsewhere"
// (its queue is in B's configuration); their names lead to no page that 404s unexplained.
func TestDashboardOverviewShowsClusterPipelines(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dir := t.TempDir()
		shared := b.section(t, dir) // one database for both nodes
		port := freePort(t)
		base := fmt.Sprintf("http://127.0.0.1:%d", port)
		start(t, options{pipelines: pipelineYAML("here"), consume: []string{"here"}, out: filepath.Join(dir, "a.jsonl"),
			sqlSection: shared + fmt.Sprintf("  dashboard:\n    listen: 127.0.0.1:%d\n", port)})
		nodeB := start(t, options{pipelines: pipelineYAML("there"), out: filepath.Join(dir, "b.jsonl"), sqlSection: shared})
		if err := nodeB.declare(map[string]string{"driver": "sql", "name": "declared", "queue": "dq", "poll_interval": "1h"}); err != nil {
			t.Fatal(err)
		}
		nodeB.push(job{id: "t1", pipeline: "there"})
		nodeB.push(job{id: "d1", pipeline: "declared"})
		nodeB.push(job{id: "d2", pipeline: "declared"})

		overview := func() []clusterPipeline {
			o, code := getJSON[struct {
				Pipelines []clusterPipeline `json:"pipelines"`
			}](t, base+"/api/overview")
			if code != http.StatusOK {
				t.Fatalf("GET /api/overview = %d", code)
			}
			return o.Pipelines
		}
		// Declared pipelines are the database's: listed before B wrote any history.
		waitFor(t, 10*time.Second, "B's declared pipeline in A's overview", func() (bool, string) {
			ps := overview()
			for _, p := range ps {
				if p.Pipeline == "declared" {
					return p.OnAnotherNode && p.CountsKnown && p.Queue == "dq" && p.Ready == 2 &&
						(p.State == "consuming" || p.State == "paused"), fmt.Sprintf("%+v", ps)
				}
			}
			return false, fmt.Sprintf("%+v", ps)
		})

		nodeB.stop() // writes B's minutes of history
		var ps []clusterPipeline
		waitFor(t, 10*time.Second, "B's configured pipeline in A's overview", func() (bool, string) {
			ps = overview()
			return len(ps) == 3, fmt.Sprintf("%+v", ps)
		})
		want := []clusterPipeline{
			{Pipeline: "declared", Queue: "dq", Ready: 2, State: ps[0].State, OnAnotherNode: true, CountsKnown: true},
			{Pipeline: "here", Queue: "here", State: "consuming", CountsKnown: true},
			{Pipeline: "there", State: "elsewhere", OnAnotherNode: true},
		}
		for i := range want {
			if ps[i] != want[i] {
				t.Errorf("overview line %d = %+v, want %+v", i, ps[i], want[i])
			}
		}

		html := httpGet(t, base+"/")
		for _, name := range []string{"there", "declared"} {
			row := between(html, `<tr data-pipeline="`+name+`">`, "</tr>")
			if !strings.Contains(row, "on another node") {
				t.Errorf("the overview's row of %s does not say it runs on another node:\n%s", name, row)
			}
			if strings.Contains(row, `href="/pipelines/`+name+`"`) {
				t.Errorf("the overview links %s, which has no page on this node:\n%s", name, row)
			}
		}
		if row := between(html, `<tr data-pipeline="there">`, "</tr>"); !strings.Contains(row, ">elsewhere<") {
			t.Errorf("the row of there does not show the state elsewhere:\n%s", row)
		}
		if row := between(html, `<tr data-pipeline="here">`, "</tr>"); !strings.Contains(row, `href="/pipelines/here"`) || strings.Contains(row, "on another node") {
			t.Errorf("the row of this node's pipeline here:\n%s", row)
		}
		resp, err := http.Get(base + "/pipelines/there")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if page := httpGet(t, base+"/pipelines/there"); resp.StatusCode != http.StatusNotFound || !strings.Contains(page, "runs on another node") {
			t.Errorf("the page of there = %d, want 404 explaining it runs on another node:\n%s", resp.StatusCode, page)
		}
		if b.name == "sqlite" { // the layout is the same on every database
			// The rows of other nodes' pipelines keep the overview within a phone's width.
			phone := browser(t, 390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulatePortrait)
			do(t, phone, chromedp.Navigate(base+"/"), chromedp.WaitReady(chromedp.CSS("main")))
			wide := run(t, phone, chromedp.Evaluate[[]int](`[document.documentElement.scrollWidth, window.innerWidth]`))
			if len(wide) != 2 || wide[0] > wide[1] {
				t.Errorf("the overview at 390px: scrollWidth %v exceeds the viewport", wide)
			}
			screenshot(t, phone, "dashboard-cluster-phone")
			laptop := browser(t, 1280, 700)
			do(t, laptop, chromedp.Navigate(base+"/"), chromedp.WaitReady(chromedp.CSS("main")))
			screenshot(t, laptop, "dashboard-cluster")
		}
	})
}

// between is the text of s from the first start to the next end ("" when start is absent).
func between(s, start, end string) string {
	i := strings.Index(s, start)
	if i < 0 {
		return ""
	}
	j := strings.Index(s[i:], end)
	if j < 0 {
		return s[i:]
	}
	return s[i : i+j]
}
