package dashboard

import (
	"context"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/rr-sql/sqljobs/rpc"
	"github.com/rr-sql/sqljobs/store"
	"go.uber.org/zap"
)

// readTimeout bounds the database reads behind one page.
const readTimeout = 10 * time.Second

// failedPage is how many failed jobs a page lists.
const failedPage = 50

// page is what every template gets.
type page struct {
	Title    string
	Nav      string
	CSRF     string
	ReadOnly bool
	// Notice is the outcome of the last action (from a fixed set of words and a count).
	Notice string
	// Problem is an error to show instead of (or above) the content.
	Problem string
	Now     time.Time
	Data    any
	// Status is the HTTP status (0: 200).
	Status int
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, name string, p page) {
	p.CSRF, p.ReadOnly, p.Now = s.csrf, s.cfg.ReadOnly, time.Now()
	if p.Notice == "" {
		p.Notice = notice(r.URL.Query())
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if p.Status != 0 {
		w.WriteHeader(p.Status)
	}
	if err := s.pages[name].Execute(w, p); err != nil {
		s.log.Warn("dashboard page", zap.String("page", name), zap.Error(err))
	}
}

// notice words an action's outcome from the redirect's query: only known verbs and a number.
func notice(q url.Values) string {
	verbs := map[string]string{"paused": "Paused", "resumed": "Resumed", "flushed": "Flushed %s waiting jobs",
		"moved": "Moved %s jobs", "retried": "Retried %s failed jobs", "deleted": "Deleted %s failed jobs"}
	f, ok := verbs[q.Get("done")]
	if !ok {
		return ""
	}
	n, err := strconv.ParseInt(q.Get("n"), 10, 64)
	if strings.Contains(f, "%s") {
		if err != nil {
			return ""
		}
		return strings.Replace(f, "%s", num(n), 1)
	}
	return f + " " + q.Get("p")
}

// row is a pipeline's line of the overview.
type row struct {
	Pipeline
	Ready, Delayed, Reserved, Failed int64
	OldestReadyMs                    int64
	OldestReady                      time.Duration
	// Last is the last complete minute's counts (Known: some node recorded it).
	Last  bucket
	Spark template.HTML
	Err   string
}

// rows reads the overview's line of each pipeline: its counts (sql.Stats) and its span of history.
func (s *Server) rows(ctx context.Context, pipes []Pipeline, sp span) []row {
	hist := s.history(ctx, pipes, sp)
	now := time.Now()
	out := make([]row, 0, len(pipes))
	for _, p := range pipes {
		r := row{Pipeline: p}
		var st rpc.StatsResponse
		if p.Elsewhere {
			if p.Queue != "" {
				if x, err := p.Store.Stats(ctx, p.Queue); err != nil {
					r.Err = err.Error()
				} else {
					r.Ready, r.Delayed, r.Reserved, r.Failed, r.OldestReady = x.Ready, x.Delayed, x.Reserved, x.Failed, x.OldestReady
					r.OldestReadyMs = x.OldestReady.Milliseconds()
				}
			}
		} else if err := s.svc.Stats(&rpc.StatsRequest{Pipelines: []string{p.Name}}, &st); err != nil {
			r.Err = err.Error()
		} else if len(st.Stats) == 1 {
			x := st.Stats[0]
			r.Ready, r.Delayed, r.Reserved, r.Failed, r.OldestReadyMs = x.Ready, x.Delayed, x.Reserved, x.Failed, x.OldestReadyMs
			r.OldestReady = time.Duration(r.OldestReadyMs) * time.Millisecond
		}
		bs := buckets(hist[p.Name], sp, now)
		if len(bs) > 1 {
			r.Last = bs[len(bs)-2] // the last minute that has ended
		}
		r.Spark = chartSVG(bs, sp, 160, 32, false)
		out = append(out, r)
	}
	return out
}

// recentSpan is how far back a minute of history shows that some node runs a pipeline: every node
// writes one row per pipeline each minute (a little after it ends), so a few minutes tolerate a
// late write without keeping a stopped node's pipelines long.
const recentSpan = 5 * time.Minute

// cluster adds to this node's pipelines (live, in name order) those other nodes run on the same
// connections: the ones with recent history and the declared ones, marked Elsewhere. Two cheap
// reads per connection (the history's minute index, the few declared rows).
func (s *Server) cluster(ctx context.Context, live []Pipeline) []Pipeline {
	known := map[string]bool{}
	for _, p := range live {
		known[p.Name] = true
	}
	out := slices.Clone(live)
	since := time.Now().Truncate(time.Minute).Add(-recentSpan)
	for _, c := range s.src.Connections() {
		declared, err := c.Store.DeclaredPipelines(ctx)
		if err != nil {
			s.log.Warn("dashboard: declared pipelines", zap.String("connection", c.Name), zap.Error(err))
		}
		recent, err := c.Store.RecentPipelines(ctx, since)
		if err != nil {
			s.log.Warn("dashboard: pipelines of other nodes", zap.String("connection", c.Name), zap.Error(err))
		}
		for _, d := range declared {
			if known[d.Name] {
				continue
			}
			known[d.Name] = true
			queue := d.Options["queue"]
			if queue == "" {
				queue = d.Name
			}
			out = append(out, Pipeline{Name: d.Name, Queue: queue, Connection: c.Name, Consuming: d.Consuming,
				Elsewhere: true, Declared: true, Store: c.Store})
		}
		for _, name := range recent {
			if known[name] {
				continue
			}
			known[name] = true
			out = append(out, Pipeline{Name: name, Connection: c.Name, Elsewhere: true, Store: c.Store})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// history reads the pipelines' minutes of the span, one query per connection.
func (s *Server) history(ctx context.Context, pipes []Pipeline, sp span) map[string][]store.HistoryMinute {
	byStore := map[store.Store][]string{}
	for _, p := range pipes {
		byStore[p.Store] = append(byStore[p.Store], p.Name)
	}
	out := map[string][]store.HistoryMinute{}
	since := time.Now().Truncate(time.Minute).Add(-sp.Total).Truncate(sp.Step)
	for st, names := range byStore {
		minutes, err := st.ReadHistory(ctx, names, since)
		if err != nil {
			s.log.Warn("dashboard history", zap.Error(err))
			continue
		}
		for _, m := range minutes {
			out[m.Pipeline] = append(out[m.Pipeline], m)
		}
	}
	return out
}

func (s *Server) overview(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
	defer cancel()
	rows := s.rows(ctx, s.cluster(ctx, s.src.Pipelines()), spanHour)
	var total struct{ Ready, Delayed, Reserved, Failed, Processed, FailedMin int64 }
	for _, x := range rows {
		total.Ready += x.Ready
		total.Delayed += x.Delayed
		total.Reserved += x.Reserved
		total.Failed += x.Failed
		total.Processed += x.Last.Processed
		total.FailedMin += x.Last.Failed
	}
	s.render(w, r, "overview", page{Title: "Overview", Nav: "overview", Data: map[string]any{"Rows": rows, "Total": total}})
}

func (s *Server) pipeline(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
	defer cancel()
	p, ok := s.src.Pipeline(r.PathValue("name"))
	if !ok {
		problem := "No sql pipeline " + strconv.Quote(r.PathValue("name")) + " on this node."
		for _, o := range s.cluster(ctx, nil) {
			if o.Name == r.PathValue("name") {
				problem = "The sql pipeline " + strconv.Quote(o.Name) + " runs on another node (connection " + o.Connection + "): its page is on that node's dashboard; the overview shows its counts."
			}
		}
		s.render(w, r, "missing", page{Title: "Not found", Status: http.StatusNotFound, Problem: problem})
		return
	}
	sp := spanOf(r.URL.Query().Get("range"))
	var st rpc.StatsResponse
	problem := ""
	if err := s.svc.Stats(&rpc.StatsRequest{Pipelines: []string{p.Name}}, &st); err != nil {
		problem = err.Error()
	}
	stats := rpc.PipelineStats{}
	if len(st.Stats) == 1 {
		stats = st.Stats[0]
	}
	bs := buckets(s.history(ctx, []Pipeline{p}, sp)[p.Name], sp, time.Now())
	var sum bucket
	for _, b := range bs {
		sum.Pushed += b.Pushed
		sum.Processed += b.Processed
		sum.Failed += b.Failed
	}
	var groups rpc.GroupsResponse
	groupsErr := ""
	if p.GroupBy != "" {
		if err := s.svc.Groups(&rpc.GroupsRequest{Pipeline: p.Name, After: r.URL.Query().Get("after"), Limit: 50}, &groups); err != nil {
			groupsErr = err.Error()
		}
	}
	var others []string
	for _, o := range s.src.Pipelines() {
		if o.Name != p.Name && o.Connection == p.Connection && o.Queue != p.Queue {
			others = append(others, o.Name)
		}
	}
	s.render(w, r, "pipeline", page{Title: p.Name, Nav: "overview", Problem: problem, Data: map[string]any{
		"P": p, "Stats": stats, "Oldest": time.Duration(stats.OldestReadyMs) * time.Millisecond,
		// Drawn twice: wide for laptops, narrow (taller for its width) for phones; CSS shows one.
		"Chart": chartSVG(bs, sp, 900, 240, true), "ChartNarrow": chartSVG(bs, sp, 400, 240, true), "Span": sp.Name, "Sum": sum,
		"Groups": groups, "GroupsErr": groupsErr, "Others": others,
	}})
}

// redirect sends the browser back to a page after an action (303: the next request is a GET).
func redirect(w http.ResponseWriter, r *http.Request, to string, q url.Values) {
	if len(q) > 0 {
		to += "?" + q.Encode()
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

func (s *Server) pipelineAction(w http.ResponseWriter, r *http.Request) {
	if !s.checkForm(w, r) {
		return
	}
	name := r.PathValue("name")
	p, ok := s.src.Pipeline(name)
	if !ok {
		http.Error(w, "no sql pipeline "+strconv.Quote(name)+" on this node", http.StatusNotFound)
		return
	}
	back := "/pipelines/" + url.PathEscape(p.Name)
	ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
	defer cancel()
	f := r.PostForm
	q := url.Values{}
	var err error
	switch r.PathValue("action") {
	case "pause":
		err = s.src.Pause(ctx, p.Name)
		q.Set("done", "paused")
		q.Set("p", p.Name)
	case "resume":
		err = s.src.Resume(ctx, p.Name)
		q.Set("done", "resumed")
		q.Set("p", p.Name)
	case "flush":
		var out rpc.CountResponse
		err = s.svc.Flush(&rpc.FlushRequest{Pipeline: p.Name, Header: f.Get("header"), Value: f.Get("value")}, &out)
		q.Set("done", "flushed")
		q.Set("n", strconv.FormatInt(out.Count, 10))
	case "move":
		in := &rpc.MoveRequest{From: p.Name, To: f.Get("to"), Header: f.Get("header"), Value: f.Get("value")}
		if v := strings.TrimSpace(f.Get("priority")); v != "" {
			n, perr := strconv.ParseInt(v, 10, 64)
			if perr != nil {
				http.Error(w, "priority "+strconv.Quote(v)+": give a whole number, or leave it empty to keep each job's", http.StatusBadRequest)
				return
			}
			in.Priority = &n
		}
		var out rpc.CountResponse
		err = s.svc.Move(in, &out)
		q.Set("done", "moved")
		q.Set("n", strconv.FormatInt(out.Count, 10))
	default:
		http.Error(w, "unknown action "+strconv.Quote(r.PathValue("action"))+" (pause, resume, flush, move)", http.StatusNotFound)
		return
	}
	if err != nil {
		s.render(w, r, "missing", page{Title: p.Name, Status: http.StatusBadRequest, Problem: err.Error()})
		return
	}
	redirect(w, r, back, q)
}

// failedFilter is the failed jobs page's query.
type failedFilter struct {
	Pipeline, Job, Error string
	After                int64
}

func (s *Server) filterOf(v url.Values, pipes []Pipeline) failedFilter {
	f := failedFilter{Pipeline: v.Get("pipeline"), Job: strings.TrimSpace(v.Get("job")), Error: strings.TrimSpace(v.Get("error"))}
	f.After, _ = strconv.ParseInt(v.Get("after"), 10, 64)
	if f.Pipeline == "" && len(pipes) > 0 {
		f.Pipeline = pipes[0].Name
	}
	return f
}

func (f failedFilter) query() url.Values {
	q := url.Values{"pipeline": {f.Pipeline}}
	if f.Job != "" {
		q.Set("job", f.Job)
	}
	if f.Error != "" {
		q.Set("error", f.Error)
	}
	return q
}

// failedJob is a failed job as the page shows it.
type failedJob struct {
	store.FailedJob
	Pretty string
}

func (s *Server) searchFailed(ctx context.Context, f failedFilter, limit int) ([]store.FailedJob, error) {
	p, ok := s.src.Pipeline(f.Pipeline)
	if !ok {
		return nil, errUnknown(f.Pipeline)
	}
	return p.Store.SearchFailed(ctx, store.FailedSearch{Queue: p.Queue, Name: f.Job, Error: f.Error, AfterID: f.After, Limit: limit})
}

type unknownPipeline string

func (u unknownPipeline) Error() string {
	return "no sql pipeline " + strconv.Quote(string(u)) + " on this node"
}
func errUnknown(name string) error { return unknownPipeline(name) }

func (s *Server) failed(w http.ResponseWriter, r *http.Request) {
	pipes := s.src.Pipelines()
	f := s.filterOf(r.URL.Query(), pipes)
	ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
	defer cancel()
	data := map[string]any{"Pipelines": pipes, "F": f}
	p := page{Title: "Failed jobs", Nav: "failed", Data: data}
	if f.Pipeline != "" {
		list, err := s.searchFailed(ctx, f, failedPage+1)
		if err != nil {
			p.Problem = err.Error()
		}
		more := len(list) > failedPage
		if more {
			list = list[:failedPage]
		}
		jobs := make([]failedJob, len(list))
		for i, j := range list {
			jobs[i] = failedJob{FailedJob: j, Pretty: pretty(j.Payload)}
		}
		data["Jobs"] = jobs
		if more {
			q := f.query()
			q.Set("after", strconv.FormatInt(list[len(list)-1].ID, 10))
			data["Next"] = "/failed?" + q.Encode()
		}
		if f.After > 0 {
			data["First"] = "/failed?" + f.query().Encode()
		}
	}
	s.render(w, r, "failed", p)
}

// maxMatching bounds the failed jobs one "all matching" action touches (a page of ids per call).
const maxMatching = 100_000

func (s *Server) failedAction(w http.ResponseWriter, r *http.Request) {
	if !s.checkForm(w, r) {
		return
	}
	pipes := s.src.Pipelines()
	f := s.filterOf(r.PostForm, pipes)
	f.After = 0
	verb, scope, _ := strings.Cut(r.PostForm.Get("do"), ":")
	if verb != "retry" && verb != "delete" {
		http.Error(w, "do "+strconv.Quote(r.PostForm.Get("do"))+": use retry or delete, with :selected, :matching or :ID", http.StatusBadRequest)
		return
	}
	call := s.svc.FailedRetry
	if verb == "delete" {
		call = s.svc.FailedDelete
	}
	var total int64
	apply := func(ids []int64) error {
		if len(ids) == 0 {
			return nil
		}
		var out rpc.CountResponse
		err := call(&rpc.FailedRequest{Pipeline: f.Pipeline, IDs: ids}, &out)
		total += out.Count
		return err
	}
	var err error
	switch scope {
	case "selected":
		var ids []int64
		for _, v := range r.PostForm["id"] {
			id, perr := strconv.ParseInt(v, 10, 64)
			if perr != nil {
				http.Error(w, "id "+strconv.Quote(v)+": not a failed job id", http.StatusBadRequest)
				return
			}
			ids = append(ids, id)
		}
		if len(ids) == 0 {
			http.Error(w, "no failed job selected: tick the jobs first", http.StatusBadRequest)
			return
		}
		for chunk := range slices.Chunk(ids, 1000) {
			if err = apply(chunk); err != nil {
				break
			}
		}
	case "matching":
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Minute)
		defer cancel()
		// A page of ids at a time, each through the RPC's call; retried or deleted jobs leave the
		// list, so the next page starts after the last id seen.
		for seen := 0; seen < maxMatching && err == nil; {
			var list []store.FailedJob
			if list, err = s.searchFailed(ctx, f, 1000); err != nil || len(list) == 0 {
				break
			}
			ids := make([]int64, len(list))
			for i, j := range list {
				ids[i] = j.ID
			}
			err = apply(ids)
			seen += len(ids)
			f.After = ids[len(ids)-1]
		}
		f.After = 0
	default:
		id, perr := strconv.ParseInt(scope, 10, 64)
		if perr != nil {
			http.Error(w, "do "+strconv.Quote(r.PostForm.Get("do"))+": use retry or delete, with :selected, :matching or :ID", http.StatusBadRequest)
			return
		}
		err = apply([]int64{id})
	}
	if err != nil {
		s.render(w, r, "missing", page{Title: "Failed jobs", Nav: "failed", Status: http.StatusBadRequest, Problem: err.Error()})
		return
	}
	q := f.query()
	q.Set("done", map[string]string{"retry": "retried", "delete": "deleted"}[verb])
	q.Set("n", strconv.FormatInt(total, 10))
	redirect(w, r, "/failed", q)
}

func (s *Server) jobs(w http.ResponseWriter, r *http.Request) {
	pipes := s.src.Pipelines()
	q := r.URL.Query()
	pipeline := q.Get("pipeline")
	if pipeline == "" && len(pipes) > 0 {
		pipeline = pipes[0].Name
	}
	raw := q.Get("ids")
	ids := strings.FieldsFunc(raw, func(c rune) bool { return c == ',' || c == ' ' || c == '\n' || c == '\r' || c == '\t' })
	data := map[string]any{"Pipelines": pipes, "Pipeline": pipeline, "IDs": raw}
	p := page{Title: "Job lookup", Nav: "jobs", Data: data}
	if len(ids) > 0 {
		var out rpc.FindResponse
		if err := s.svc.Find(&rpc.IDsRequest{Pipeline: pipeline, IDs: ids}, &out); err != nil {
			p.Problem = err.Error()
		}
		data["Found"] = out.Jobs
	}
	s.render(w, r, "jobs", p)
}

// nodeRow is a node of a connection.
type nodeRow struct {
	store.Node
	Heartbeat time.Time
	Held      int64
	This      bool
}

type connNodes struct {
	Connection
	Nodes []nodeRow
	Err   string
}

func (s *Server) nodeList(ctx context.Context) []connNodes {
	var out []connNodes
	for _, c := range s.src.Connections() {
		cn := connNodes{Connection: c}
		nodes, err := c.Store.Nodes(ctx)
		held, herr := c.Store.HeldByNode(ctx)
		if err == nil {
			err = herr
		}
		if err != nil {
			cn.Err = err.Error()
		}
		for _, n := range nodes {
			cn.Nodes = append(cn.Nodes, nodeRow{Node: n, Heartbeat: time.UnixMilli(n.HeartbeatAt), Held: held[n.ID], This: n.ID == c.Node})
		}
		sort.Slice(cn.Nodes, func(i, j int) bool { return cn.Nodes[i].ID < cn.Nodes[j].ID })
		out = append(out, cn)
	}
	return out
}

func (s *Server) nodes(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
	defer cancel()
	s.render(w, r, "nodes", page{Title: "Nodes", Nav: "nodes", Data: s.nodeList(ctx)})
}
