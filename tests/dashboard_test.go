package tests

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/rr-sql/sqljobs/store"
)

// The dashboard (sql.dashboard) against a real rr with PHP workers: HTTP-level checks of its JSON
// API, its authentication and its refusals, and browser checks with Debian's chromium through
// chromedp: what an operator sees and clicks.

// dashSection is a backend's `sql:` section with a dashboard on a free loopback port.
func dashSection(t *testing.T, b backend, dir, extra string) (section, base string) {
	port := freePort(t)
	section = b.section(t, dir) + fmt.Sprintf("  dashboard:\n    listen: 127.0.0.1:%d\n", port) + extra
	return section, fmt.Sprintf("http://127.0.0.1:%d", port)
}

// getJSON reads a dashboard API answer.
func getJSON[T any](t *testing.T, url string, header ...string) (T, int) {
	t.Helper()
	var out T
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &out); err != nil {
			t.Fatalf("GET %s: %v in %s", url, err, body)
		}
	}
	return out, resp.StatusCode
}

type apiPipeline struct {
	Pipeline   string `json:"pipeline"`
	Ready      int64  `json:"ready"`
	Delayed    int64  `json:"delayed"`
	Reserved   int64  `json:"reserved"`
	Failed     int64  `json:"failed"`
	Consuming  bool   `json:"consuming"`
	LastMinute *struct {
		Processed int64 `json:"processed"`
	} `json:"last_minute"`
}

type apiHistory struct {
	Range       string `json:"range"`
	StepSeconds int    `json:"step_seconds"`
	Steps       []struct {
		At        string `json:"at"`
		Pushed    int64  `json:"pushed"`
		Processed int64  `json:"processed"`
		Failed    int64  `json:"failed"`
		Depth     *int64 `json:"depth"`
	} `json:"steps"`
}

// TestDashboardAPI: /api/overview has each pipeline's counts and state; the history of the jobs
// pushed, processed and failed is written at stop and read back by the next rr (it survives
// restarts); failed jobs, nodes, and the refusals of bad requests. Read-only refuses actions.
func TestDashboardAPI(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dir := t.TempDir()
		out := filepath.Join(dir, "out.jsonl")
		section, base := dashSection(t, b, dir, "    read_only: true\n")
		o := options{pipelines: pipelineYAML("work") + pipelineYAML("later"), consume: []string{"work"}, sqlSection: section, out: out}
		rr := start(t, o)
		for i := range 3 {
			rr.push(job{id: fmt.Sprint("ok", i), pipeline: "work", payload: map[string]any{"action": "ack"}})
		}
		rr.push(job{id: "bad", pipeline: "work", payload: map[string]any{"action": "nack"}})
		rr.push(job{id: "w1", pipeline: "later"})
		rr.push(job{id: "w2", pipeline: "later", delay: 3600})
		waitRecords(t, out, 4, 20*time.Second)

		var overview struct {
			Pipelines []apiPipeline `json:"pipelines"`
		}
		waitFor(t, 10*time.Second, "the overview's counts", func() (bool, string) {
			overview, _ = getJSON[struct {
				Pipelines []apiPipeline `json:"pipelines"`
			}](t, base+"/api/overview")
			got := fmt.Sprintf("%+v", overview.Pipelines)
			return len(overview.Pipelines) == 2 &&
				overview.Pipelines[0].Pipeline == "later" && !overview.Pipelines[0].Consuming &&
				overview.Pipelines[0].Ready == 1 && overview.Pipelines[0].Delayed == 1 &&
				overview.Pipelines[1].Pipeline == "work" && overview.Pipelines[1].Consuming &&
				overview.Pipelines[1].Ready == 0 && overview.Pipelines[1].Failed == 1, got
		})

		failed, code := getJSON[struct {
			Jobs []struct {
				ID    int64  `json:"id"`
				JobID string `json:"job_id"`
				Error string `json:"error"`
			} `json:"jobs"`
		}](t, base+"/api/failed?pipeline=work&error=NACK")
		if code != http.StatusOK || len(failed.Jobs) != 1 || failed.Jobs[0].JobID != "bad" {
			t.Fatalf("failed jobs matching nack = %d %+v, want job bad", code, failed)
		}
		if none, _ := getJSON[struct{ Jobs []any }](t, base+"/api/failed?pipeline=work&job=nothing-like-it"); len(none.Jobs) != 0 {
			t.Fatalf("failed jobs named nothing-like-it = %+v, want none", none)
		}
		nodes, _ := getJSON[struct {
			Connections []struct {
				Connection string `json:"connection"`
				Nodes      []struct {
					ID   string `json:"id"`
					This bool   `json:"this_node"`
				} `json:"nodes"`
			} `json:"connections"`
		}](t, base+"/api/nodes")
		if len(nodes.Connections) != 1 || len(nodes.Connections[0].Nodes) != 1 || !nodes.Connections[0].Nodes[0].This {
			t.Fatalf("nodes = %+v, want this node alone on connection default", nodes)
		}
		for path, want := range map[string]int{
			"/api/pipelines/nope":                 http.StatusNotFound,
			"/api/pipelines/work/history?range=x": http.StatusBadRequest,
			"/api/failed?pipeline=work&limit=0":   http.StatusBadRequest,
			"/api/pipelines/work":                 http.StatusOK,
		} {
			if _, code := getJSON[map[string]any](t, base+path); code != want {
				t.Errorf("GET %s = %d, want %d", path, code, want)
			}
		}
		// Without auth, only a loopback name is answered (a rebound DNS name is refused).
		req, _ := http.NewRequest(http.MethodGet, base+"/api/overview", nil)
		req.Host = "attacker.example:80"
		if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("GET with Host attacker.example = %v %v, want 403", resp, err)
		} else {
			resp.Body.Close()
		}
		if _, code := getJSON[map[string]any](t, strings.Replace(base, "127.0.0.1", "localhost", 1)+"/api/overview"); code != http.StatusOK {
			t.Errorf("GET through localhost = %d, want 200", code)
		}
		// Read-only: no forms on the pages, and an action is refused even with a valid token.
		page := httpGet(t, base+"/pipelines/work")
		if strings.Contains(page, `name="csrf"`) || strings.Contains(page, "Pause") {
			t.Errorf("the read-only pipeline page shows actions")
		}
		resp, err := http.PostForm(base+"/pipelines/work/pause", url.Values{"csrf": {"x"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || !rr.stat("work").GetReady() {
			t.Fatalf("read-only pause = %d (want 403), pipeline consuming: %v", resp.StatusCode, rr.stat("work").GetReady())
		}

		// The history survives the restart: the stop wrote this node's minutes.
		rr.stop()
		o.consume = nil
		rr2 := start(t, o)
		_ = rr2
		hist, code := getJSON[apiHistory](t, base+"/api/pipelines/work/history?range=hour")
		if code != http.StatusOK || hist.Range != "hour" || hist.StepSeconds != 60 || len(hist.Steps) < 60 {
			t.Fatalf("history = %d %+v, want an hour of minutes", code, hist)
		}
		var pushed, processed, failedN int64
		for _, s := range hist.Steps {
			pushed, processed, failedN = pushed+s.Pushed, processed+s.Processed, failedN+s.Failed
		}
		// A job pushed in the minute now running is in the last step, which the API includes.
		if pushed != 4 || processed != 3 || failedN != 1 {
			t.Fatalf("history after restart: pushed %d processed %d failed %d, want 4, 3, 1 (%+v)", pushed, processed, failedN, hist.Steps)
		}
	})
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// TestDashboardRefusesPublicAddressWithoutAuth: listening on any interface without auth stops rr
// at start with an error naming the key.
func TestDashboardRefusesPublicAddressWithoutAuth(t *testing.T) {
	dir := t.TempDir()
	section := backends()[0].section(t, dir) + fmt.Sprintf("  dashboard:\n    listen: 0.0.0.0:%d\n", freePort(t))
	err := startErr(t, options{pipelines: pipelineYAML("p"), sqlSection: section, out: filepath.Join(dir, "out.jsonl")})
	if err == nil || !strings.Contains(err.Error(), `sql.dashboard: option "listen"`) || !strings.Contains(err.Error(), "sql.dashboard.auth") {
		t.Fatalf("start = %v, want a refusal naming sql.dashboard's listen and auth", err)
	}
}

// hashOfSecret is bcrypt("secret") at cost 4. (The harness hands rr its config as bytes, which
// RoadRunner does not expand; from an .rr.yaml file, "$" is expanded and the hash must come from
// an environment variable, as the README says.)
const hashOfSecret = "$2a$04$klOPfYw0BTleVSIW9sWm7ukbJcZSev8nznUf63dZvDs7T.QFPgTXG"

// TestDashboardAuth: with auth set, a request without credentials, with a wrong password or a wrong
// token is refused; the right user and password, or the token, get in; a browser without them sees
// the refusal.
func TestDashboardAuth(t *testing.T) {
	dir := t.TempDir()
	section, base := dashSection(t, backends()[0], dir,
		"    auth:\n      user: ops\n      password_hash: \""+hashOfSecret+"\"\n      token: 0123456789abcdef0123\n")
	start(t, options{pipelines: pipelineYAML("p"), sqlSection: section, out: filepath.Join(dir, "out.jsonl")})
	for _, c := range []struct {
		name       string
		set        func(r *http.Request)
		wantStatus int
	}{
		{"nothing", func(*http.Request) {}, http.StatusUnauthorized},
		{"wrong password", func(r *http.Request) { r.SetBasicAuth("ops", "guess") }, http.StatusUnauthorized},
		{"wrong user", func(r *http.Request) { r.SetBasicAuth("root", "secret") }, http.StatusUnauthorized},
		{"wrong token", func(r *http.Request) { r.Header.Set("Authorization", "Bearer 0123456789abcdef0124") }, http.StatusUnauthorized},
		{"user and password", func(r *http.Request) { r.SetBasicAuth("ops", "secret") }, http.StatusOK},
		{"user and password again (remembered)", func(r *http.Request) { r.SetBasicAuth("ops", "secret") }, http.StatusOK},
		{"token", func(r *http.Request) { r.Header.Set("Authorization", "Bearer 0123456789abcdef0123") }, http.StatusOK},
	} {
		for _, path := range []string{"/", "/api/overview", "/static/app.css"} {
			req, _ := http.NewRequest(http.MethodGet, base+path, nil)
			c.set(req)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != c.wantStatus {
				t.Errorf("%s: GET %s = %d, want %d", c.name, path, resp.StatusCode, c.wantStatus)
			}
		}
	}

	ctx := browser(t, 1280, 800)
	if err := chromedp.Do(ctx, extraHeaders(network.Headers{"Authorization": "Bearer not-the-token-at-all"}), chromedp.Navigate(base+"/")); err != nil {
		t.Fatal(err)
	}
	text := run(t, ctx, chromedp.Text(chromedp.CSS("body")))
	if !strings.Contains(text, "authentication required") || strings.Contains(text, "Pipelines") {
		t.Fatalf("the browser with a wrong token sees %q, want the refusal", text)
	}
	if err := chromedp.Do(ctx, extraHeaders(network.Headers{"Authorization": "Bearer 0123456789abcdef0123"}), chromedp.Navigate(base+"/")); err != nil {
		t.Fatal(err)
	}
	if text := run(t, ctx, chromedp.Text(chromedp.CSS("h1"))); text != "Pipelines" {
		t.Fatalf("the browser with the token sees %q, want the overview", text)
	}
}

// run runs one browser action and returns its value; an error fails the test.
func run[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// do runs browser steps in order; an error fails the test.
func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

// darkMode makes the page prefer a dark colour scheme (or not).
func darkMode(on bool) chromedp.Action[chromedp.Void] {
	scheme := "light"
	if on {
		scheme = "dark"
	}
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}})
		return err
	})
}

// seedHistory writes an hour of made-up minutes for the screenshots' charts, as nodes would.
func seedHistory(t *testing.T, path string) {
	t.Helper()
	st, err := store.OpenSQLite(context.Background(), store.SQLiteOptions{Path: path, Synchronous: "normal", BusyTimeout: 5 * time.Second, MaxReadConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now().Truncate(time.Minute)
	var rows []store.HistoryMinute
	for i := 60; i >= 1; i-- {
		x := float64(60 - i)
		wave := math.Sin(x/7) + 0.4*math.Sin(x/2.3)
		rows = append(rows,
			store.HistoryMinute{Pipeline: "emails", Minute: now.Add(-time.Duration(i) * time.Minute),
				Pushed: int64(420 + 160*wave), Processed: int64(400 + 150*wave), Failed: int64(max(0, 6*math.Sin(x/3)-3)),
				Depth: int64(900 + 700*math.Sin(x/11))},
			store.HistoryMinute{Pipeline: "reports", Minute: now.Add(-time.Duration(i) * time.Minute),
				Pushed: int64(20 + 15*math.Cos(x/5)), Processed: int64(18 + 14*math.Cos(x/5)), Depth: int64(5 + 4*math.Cos(x/9))},
			store.HistoryMinute{Pipeline: "tenants", Minute: now.Add(-time.Duration(i) * time.Minute),
				Pushed: int64(120 + 90*math.Sin(x/4)), Processed: int64(118 + 88*math.Sin(x/4)), Depth: int64(60 + 50*math.Cos(x/6))})
	}
	if err := st.AddHistory(context.Background(), "seed", rows); err != nil {
		t.Fatal(err)
	}
}

// extraHeaders sends these headers with every request of the page from here on.
func extraHeaders(h network.Headers) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: h})
		return err
	})
}

// browser starts a headless chromium (Debian's package) for one test, with a viewport of w×h.
// Outside CI a missing chromium skips the test; in CI it fails it.
func browser(t *testing.T, w, h int64, emulate ...chromedp.EmulateViewportOption) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is not installed: CI must install it (scripts/deps.sh --servers)")
		}
		t.Skip("chromium is not installed (apt-get install chromium, or scripts/deps.sh --servers): the dashboard's browser tests need it")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.WindowSize(int(w), int(h)), chromedp.Flag("hide-scrollbars", true), chromedp.Flag("force-color-profile", "srgb"))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	// The first run starts the browser, which lives as long as ctx: no timeout on it.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(w, h, emulate...)); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(cancelTimeout)
	return ctx
}

// screenshot saves the page as NAME.png in $SQLJOBS_SCREENSHOTS, by default a folder under the
// system's temporary directory (its path is logged): a test run leaves the tree as it was. The
// README's pictures are made with SQLJOBS_SCREENSHOTS=../docs.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png := run(t, ctx, chromedp.FullScreenshot(100))
	dir := cmp.Or(os.Getenv("SQLJOBS_SCREENSHOTS"), filepath.Join(os.TempDir(), "sqljobs-screenshots"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, name+".png")
	if err := os.WriteFile(file, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", file)
}

// TestDashboardInBrowser: the overview shows the pipelines with their counts; Pause clicked on a
// pipeline's page is what jobs.Stat reports, and Resume too; a failed job's `<script>` payload is
// shown as text and never runs; Retry of a failed job gets it processed by the PHP worker; a form
// posted with a wrong CSRF token is refused; at a phone's width no page scrolls sideways.
func TestDashboardInBrowser(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dir := t.TempDir()
		out := filepath.Join(dir, "out.jsonl")
		fixed := filepath.Join(dir, "fixed")
		section, base := dashSection(t, b, dir, "")
		rr := start(t, options{
			pipelines: pipelineYAML("emails", "max_attempts: 1") + pipelineYAML("reports") + pipelineYAML("tenants", "group_by: tenant"),
			consume:   []string{"emails", "tenants"}, sqlSection: section, out: out,
		})
		for i := range 3 {
			rr.push(job{id: fmt.Sprint("r", i), name: "App\\Jobs\\BuildReport", pipeline: "reports", payload: map[string]any{"month": "2026-11", "n": i}})
		}
		rr.push(job{id: "r-later", name: "App\\Jobs\\BuildReport", pipeline: "reports", delay: 3600})
		rr.push(job{id: "later2", name: "App\\Jobs\\BuildReport", pipeline: "reports", delay: 7200})
		rr.push(job{id: "xss", name: "App\\Jobs\\SendMail", pipeline: "emails",
			// Written out: json.Marshal would escape the < and > this checks.
			payload: `{"action": "nack", "to": "a@example.com", "body": "<script>window.__xss = 1</script><img src=x onerror=\"window.__xss = 2\">"}`})
		rr.push(job{id: "flaky", name: "App\\Jobs\\SendMail", pipeline: "emails",
			payload: map[string]any{"action": "nack_until_file", "file": fixed, "to": "b@example.com"}})
		for i := range 20 {
			rr.push(job{id: fmt.Sprint("ok", i), name: "App\\Jobs\\SendMail", pipeline: "emails", payload: map[string]any{"action": "ack"}})
		}
		waitRecords(t, out, 22, 30*time.Second)
		waitFor(t, 10*time.Second, "two failed emails", func() (bool, string) {
			st, _ := getJSON[apiPipeline](t, base+"/api/pipelines/emails")
			return st.Failed == 2, fmt.Sprint(st.Failed)
		})

		if b.name == "sqlite" {
			seedHistory(t, lastDSN)
		}
		ctx := browser(t, 1280, 860)
		do(t, ctx, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("table.pipelines")))
		for _, c := range []struct{ pipeline, count, want string }{
			{"reports", "ready", "3"}, {"reports", "delayed", "2"}, {"reports", "failed", "0"},
			{"emails", "ready", "0"}, {"emails", "failed", "2"}, {"tenants", "ready", "0"},
		} {
			if got := run(t, ctx, chromedp.Text(chromedp.CSS(fmt.Sprintf(`tr[data-pipeline=%q] td[data-count=%q]`, c.pipeline, c.count)))); got != c.want {
				t.Errorf("overview: %s %s = %q, want %q", c.pipeline, c.count, got, c.want)
			}
		}
		states := run(t, ctx, chromedp.Evaluate[string](`[...document.querySelectorAll("tr[data-pipeline]")].map(r => r.dataset.pipeline + ":" + r.querySelector(".state").textContent).join(" ")`))
		if states != "emails:consuming reports:paused tenants:consuming" {
			t.Errorf("overview states = %q", states)
		}
		if b.name == "sqlite" {
			if lines := run(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll("td.spark polyline.depth").length`)); lines != 3 {
				t.Errorf("overview: %d sparklines with a depth line, want 3 (the seeded hour)", lines)
			}
			screenshot(t, ctx, "dashboard-overview")
		}

		// Pause and resume by their buttons: jobs.Stat reports it.
		do(t, ctx, chromedp.Navigate(base+"/pipelines/emails"), chromedp.Click(chromedp.CSS("#pause")), chromedp.WaitVisible(chromedp.CSS("#resume")))
		if rr.stat("emails").GetReady() {
			t.Fatal("jobs.Stat reports emails consuming after Pause was clicked")
		}
		do(t, ctx, chromedp.Click(chromedp.CSS("#resume")), chromedp.WaitVisible(chromedp.CSS("#pause")))
		if !rr.stat("emails").GetReady() {
			t.Fatal("jobs.Stat reports emails paused after Resume was clicked")
		}

		if b.name == "sqlite" {
			// The pipeline page in dark mode, with the seeded hour charted.
			do(t, ctx, darkMode(true), chromedp.Navigate(base+"/pipelines/emails"), chromedp.WaitVisible(chromedp.CSS("svg.chart")))
			if bars := run(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll(".wide-only svg.chart rect.bar-ok").length`)); bars < 50 {
				t.Errorf("the pipeline's chart has %d bars of processed jobs, want one per seeded minute", bars)
			}
			screenshot(t, ctx, "dashboard-pipeline-dark")
			do(t, ctx, darkMode(false))
		}

		// A form posted with a wrong CSRF token is refused, and changes nothing.
		status := run(t, ctx, chromedp.Evaluate[int](`fetch("/pipelines/emails/pause", {method: "POST", body: new URLSearchParams({csrf: "0123"})}).then(r => r.status)`, chromedp.EvalAwaitPromise))
		if status != http.StatusForbidden || !rr.stat("emails").GetReady() {
			t.Fatalf("pause with a wrong CSRF token = %d (want 403); emails consuming: %v", status, rr.stat("emails").GetReady())
		}

		// The failed jobs: the payload with <script> is text, nothing of it ran.
		do(t, ctx, chromedp.Navigate(base+"/failed?pipeline=emails"), chromedp.WaitVisible(chromedp.CSS("article.failed")))
		run(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll("article.failed details").forEach(d => d.open = true), 0`))
		payloads := run(t, ctx, chromedp.Evaluate[string](`[...document.querySelectorAll("pre.payload")].map(p => p.textContent).join("\n")`))
		xss := run(t, ctx, chromedp.Evaluate[int](`window.__xss || 0`))
		made := run(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll("main script, main img").length`))
		if !strings.Contains(payloads, `<script>window.__xss = 1</script>`) || xss != 0 || made != 0 {
			t.Fatalf("the <script> payload: shown %q, ran: %d, elements made of it: %d", payloads, xss, made)
		}
		if !strings.Contains(payloads, "\n  \"action\": \"nack\"") {
			t.Errorf("the JSON payload is not pretty-printed: %q", payloads)
		}
		if b.name == "sqlite" {
			screenshot(t, ctx, "dashboard-failed")
		}

		// Retry the flaky job by its button, once what it needs is fixed: the worker acks it.
		if err := os.WriteFile(fixed, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		flakyID := run(t, ctx, chromedp.Evaluate[string](`[...document.querySelectorAll("article.failed")].find(a => a.textContent.includes("flaky")).id.replace("failed-", "")`))
		do(t, ctx, chromedp.Click(chromedp.CSS(fmt.Sprintf(`button[value="retry:%s"]`, flakyID))), chromedp.WaitVisible(chromedp.CSS("p.notice")))
		waitFor(t, 20*time.Second, "the retried job acked by the worker", func() (bool, string) {
			for _, r := range records(t, out) {
				if r.ID == "flaky" && r.Action == "ack" {
					return true, ""
				}
			}
			return false, fmt.Sprint(countByID(records(t, out))["flaky"], " deliveries of flaky")
		})
		if notice := run(t, ctx, chromedp.Text(chromedp.CSS("p.notice"))); notice != "Retried 1 failed jobs" {
			t.Errorf("notice after retry = %q", notice)
		}

		// A phone's width: no page scrolls sideways.
		phone := browser(t, 390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulatePortrait)
		for _, path := range []string{"/", "/pipelines/emails", "/pipelines/tenants", "/failed?pipeline=emails", "/jobs?pipeline=reports&ids=r0+r-later+nope", "/nodes"} {
			do(t, phone, chromedp.Navigate(base+path), chromedp.WaitReady(chromedp.CSS("main")))
			wide := run(t, phone, chromedp.Evaluate[[]int](`[document.documentElement.scrollWidth, window.innerWidth]`))
			if len(wide) != 2 || wide[0] > wide[1] {
				t.Errorf("%s at 390px: scrollWidth %v exceeds the viewport", path, wide)
			}
			if path == "/" && b.name == "sqlite" {
				screenshot(t, phone, "dashboard-phone")
			}
		}
		do(t, phone, chromedp.Navigate(base+"/jobs?pipeline=reports&ids=r0+r-later+nope"), chromedp.WaitVisible(chromedp.CSS("table.grid")))
		found := run(t, phone, chromedp.Evaluate[string](`[...document.querySelectorAll("table.grid tbody tr")].map(r => r.cells[0].textContent + "=" + r.cells[1].textContent.trim()).join(" ")`))
		if found != "r0=ready r-later=delayed nope=not_found" {
			t.Errorf("job lookup = %q", found)
		}
	})
}
