package sqljobs

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/rr-sql/sqljobs/config"
	"github.com/rr-sql/sqljobs/dashboard"
	"github.com/rr-sql/sqljobs/driver"
	"github.com/rr-sql/sqljobs/pipeline"
)

// dashSource shows the plugin's running pipelines to the dashboard, as livePipelines does to the
// `sql` RPC service.
type dashSource Plugin

func (s *dashSource) sorted() []*driver.Driver {
	ds := (*Plugin)(s).live()
	sort.Slice(ds, func(i, j int) bool { return ds[i].Config().Name < ds[j].Config().Name })
	return ds
}

func dashPipeline(d *driver.Driver) dashboard.Pipeline {
	c := d.Config()
	return dashboard.Pipeline{Name: c.Name, Queue: c.Queue, Connection: d.Conn().Name, Consuming: d.Consuming(),
		GroupBy: c.GroupBy, Options: shownOptions(c), Store: d.Conn().Store}
}

// shownOptions are a pipeline's options as the dashboard lists them.
func shownOptions(c *config.Pipeline) [][2]string {
	out := [][2]string{
		{"priority", fmt.Sprint(c.Priority)},
		{"prefetch", fmt.Sprint(c.Prefetch)},
		{"poll_interval", c.PollInterval.String()},
		{"lease", c.Lease.String()},
		{"max_attempts", fmt.Sprint(c.MaxAttempts)},
		{"backoff", c.Backoff.String() + " … " + c.BackoffMax.String()},
		{"max_payload", humanize.IBytes(c.MaxPayload)},
	}
	if c.GroupBy != "" {
		out = append(out, [2]string{"group_by", c.GroupBy}, [2]string{"group_concurrency", fmt.Sprint(c.GroupConcurrency)})
	}
	if o := c.Overflow; o != nil {
		out = append(out, [2]string{"overflow", fmt.Sprintf("over %d ready → %s, checked every %s", o.ReadyOver, o.To, o.Interval)})
	}
	return out
}

func (s *dashSource) Pipelines() []dashboard.Pipeline {
	var out []dashboard.Pipeline
	for _, d := range s.sorted() {
		out = append(out, dashPipeline(d))
	}
	return out
}

func (s *dashSource) Pipeline(name string) (dashboard.Pipeline, bool) {
	d, ok := (*Plugin)(s).driver(name)
	if !ok {
		return dashboard.Pipeline{}, false
	}
	return dashPipeline(d), true
}

// Pause goes through the jobs plugin (jobs.Pause), which pauses the driver: what jobs.Stat reports.
// Without the rpc plugin the driver is paused directly.
func (s *dashSource) Pause(ctx context.Context, name string) error {
	return s.pauseResume(ctx, name, false)
}

// Resume goes through the jobs plugin (jobs.Resume), as Pause.
func (s *dashSource) Resume(ctx context.Context, name string) error {
	return s.pauseResume(ctx, name, true)
}

func (s *dashSource) pauseResume(ctx context.Context, name string, resume bool) error {
	d, ok := (*Plugin)(s).driver(name)
	if !ok {
		return fmt.Errorf("no sql pipeline %q on this node", name)
	}
	if s.rpcAddr != "" {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		return pipeline.PauseResume(ctx, s.rpcAddr, name, resume)
	}
	if resume {
		return d.Resume(ctx, name)
	}
	return d.Pause(ctx, name)
}

func (s *dashSource) Connections() []dashboard.Connection {
	seen := map[string]bool{}
	var out []dashboard.Connection
	for _, d := range s.sorted() {
		c := d.Conn()
		if seen[c.Name] {
			continue
		}
		seen[c.Name] = true
		out = append(out, dashboard.Connection{Name: c.Name, Dialect: c.Store.Dialect(), Node: c.Node(), Store: c.Store})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
