// Package sqljobs is the RoadRunner plugin `sql`: a jobs driver whose jobs persist in SQLite
// (the zero-config default), PostgreSQL or MySQL/MariaDB. This file only wires configuration,
// connections and drivers together; each concern lives in its own package.
package sqljobs

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/roadrunner-server/api/v4/plugins/v4/jobs"
	"github.com/roadrunner-server/endure/v2/dep"
	"github.com/rr-sql/sqljobs/config"
	"github.com/rr-sql/sqljobs/dashboard"
	"github.com/rr-sql/sqljobs/driver"
	"github.com/rr-sql/sqljobs/pipeline"
	"github.com/rr-sql/sqljobs/rpc"
	"github.com/rr-sql/sqljobs/schedule"
	jprop "go.opentelemetry.io/contrib/propagators/jaeger"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.uber.org/zap"
)

// PluginName is both the Endure plugin name and the `driver:` value of a pipeline.
const PluginName = "sql"

// Configurer is the part of RoadRunner's config plugin this plugin uses.
type Configurer interface {
	UnmarshalKey(name string, out any) error
	Has(name string) bool
}

// Logger is the part of RoadRunner's logger plugin this plugin uses.
type Logger interface {
	NamedLogger(name string) *zap.Logger
}

// Tracer is what the otel plugin provides when it is present.
type Tracer interface {
	Tracer() *sdktrace.TracerProvider
}

// Plugin is the Endure plugin.
type Plugin struct {
	cfg      Configurer
	log      *zap.Logger
	tracer   *sdktrace.TracerProvider
	prop     propagation.TextMapPropagator
	registry *pipeline.Registry
	// drivers are the live pipelines by name, for the `sql` RPC service.
	drivers sync.Map // string -> *driver.Driver
	metrics *driver.Metrics
	// rpcAddr is RoadRunner's RPC listener (rpc.listen), through which declared pipelines are
	// restored and jobs.Destroy is told from a shutdown.
	rpcAddr string
	// stopRestore cancels the restore of declared pipelines.
	stopRestore context.CancelFunc
	// stopping is set when Endure stops the plugin: rr is shutting down.
	stopping atomic.Bool
	// dashCfg is sql.dashboard; dash its server while it runs.
	dashCfg config.Dashboard
	dash    *dashboard.Server
	// schedules runs sql.schedules from Serve to Stop.
	schedules *schedule.Scheduler
}

// Init validates the `sql:` section (absent is fine: pipelines then use an SQLite file).
func (p *Plugin) Init(cfg Configurer, log Logger) error {
	p.cfg = cfg
	p.log = log.NamedLogger(PluginName)
	var raw map[string]any
	if cfg.Has(PluginName) {
		if err := cfg.UnmarshalKey(PluginName, &raw); err != nil {
			return fmt.Errorf("sql: read configuration: %w", err)
		}
	}
	global, err := config.ParseGlobal(raw)
	if err != nil {
		return err
	}
	var rpcCfg struct {
		Listen string `mapstructure:"listen"`
	}
	if cfg.Has("rpc") {
		_ = cfg.UnmarshalKey("rpc", &rpcCfg)
	}
	p.rpcAddr = rpcCfg.Listen
	p.dashCfg = global.Dashboard
	p.registry = pipeline.NewRegistry(global, p.log)
	p.metrics = driver.NewMetrics(p.live)
	p.schedules = schedule.New(global.Schedules, p.driver, p.log)
	p.tracer = sdktrace.NewTracerProvider()
	// The same propagators as RoadRunner's other drivers, so a trace crosses the queue.
	p.prop = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}, jprop.Jaeger{})
	otel.SetTextMapPropagator(p.prop)
	return nil
}

// Name is the plugin name.
func (p *Plugin) Name() string { return PluginName }

// Collects takes the tracer of the otel plugin when it is present.
func (p *Plugin) Collects() []*dep.In {
	return []*dep.In{
		dep.Fits(func(pp any) {
			p.tracer = pp.(Tracer).Tracer()
		}, (*Tracer)(nil)),
	}
}

// DriverFromConfig builds a pipeline declared in .rr.yaml (its options under configKey).
func (p *Plugin) DriverFromConfig(configKey string, pq jobs.Queue, pipe jobs.Pipeline) (jobs.Driver, error) {
	var raw map[string]any
	if p.cfg.Has(configKey) {
		if err := p.cfg.UnmarshalKey(configKey, &raw); err != nil {
			return nil, fmt.Errorf("pipeline %q: read %s: %w", pipe.Name(), configKey, err)
		}
	}
	pc, err := config.ParsePipeline(pipe.Name(), raw)
	if err != nil {
		return nil, err
	}
	d, err := p.newDriver(pc, pq, pipe)
	if err != nil {
		return nil, err
	}
	return d, nil
}

// DriverFromPipeline builds a pipeline created at runtime by jobs.Declare.
func (p *Plugin) DriverFromPipeline(pipe jobs.Pipeline, pq jobs.Queue) (jobs.Driver, error) {
	raw, err := declaredOptions(pipe)
	if err != nil {
		return nil, err
	}
	pc, err := config.ParseDeclared(pipe.Name(), raw)
	if err != nil {
		return nil, err
	}
	d, err := p.newDriver(pc, pq, pipe)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.MarkDeclared(ctx, declaredStrings(raw), p.registry.Restoring(pc.Name)); err != nil {
		_ = d.Stop(ctx)
		return nil, fmt.Errorf("pipeline %q: keep the declared pipeline: %w", pc.Name, err)
	}
	return d, nil
}

// declaredStrings is the declared map as jobs.Declare takes it again at restore (strings only),
// without the keys RoadRunner adds itself.
func declaredStrings(raw map[string]any) map[string]string {
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		if k == "created_with_declare" || k == "created_with_config" {
			continue
		}
		out[k] = fmt.Sprint(v)
	}
	return out
}

// Serve restores the pipelines declared before the last restart, once RoadRunner's RPC is up,
// and starts the schedules.
func (p *Plugin) Serve() chan error {
	p.schedules.Start()
	errCh := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	p.stopRestore = cancel
	go func() {
		defer cancel()
		if err := p.registry.RestoreDeclared(ctx, p.rpcAddr); err != nil && ctx.Err() == nil {
			p.log.Error("restore declared pipelines", zap.Error(err))
		}
	}()
	if p.dashCfg.Listen != "" {
		dash, err := dashboard.New(p.dashCfg, (*dashSource)(p), p.RPC().(*rpc.Service), p.log.Named("dashboard"))
		if err == nil {
			err = dash.Start()
		}
		if err != nil {
			errCh <- err
			return errCh
		}
		p.dash = dash
	}
	return errCh
}

// Stop is Endure's shutdown signal (never sent for a jobs.Destroy). It ends a restore still
// waiting for the RPC and the schedules, and the dashboard; the drivers are stopped by the jobs plugin.
func (p *Plugin) Stop(ctx context.Context) error {
	p.stopping.Store(true)
	if p.stopRestore != nil {
		p.stopRestore()
	}
	p.schedules.Stop()
	if p.dash != nil {
		if err := p.dash.Stop(ctx); err != nil {
			p.log.Warn("stop the dashboard", zap.Error(err))
		}
	}
	return nil
}

// destroyed tells, while a declared pipeline's driver stops, whether jobs.Destroy stops it (the
// pipeline is forgotten) or a shutdown (it comes back at the next start). Both end in Stop, and
// Endure stops plugins concurrently, so this plugin's own Stop may come after the drivers'.
// What tells them apart: jobs.Destroy removes the pipeline from the jobs plugin's list before it
// stops the driver, while a shutdown stops the drivers first. When the list cannot be read (the
// RPC is already down: a shutdown), the pipeline is kept; nothing is lost either way.
func (p *Plugin) destroyed(name string) bool {
	if p.stopping.Load() {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	listed, err := pipeline.Pipelines(ctx, p.rpcAddr)
	if err != nil {
		p.log.Warn("cannot tell whether the stopping pipeline was destroyed; keeping it", zap.String("pipeline", name), zap.Error(err))
		return false
	}
	return !slices.Contains(listed, name)
}

func (p *Plugin) newDriver(pc *config.Pipeline, pq jobs.Queue, pipe jobs.Pipeline) (*driver.Driver, error) {
	conn, err := p.registry.Acquire(context.Background(), pc)
	if err != nil {
		return nil, err
	}
	d := driver.New(pc, conn, pq, driver.Env{Log: p.log, Tracer: p.tracer, Prop: p.prop, Metrics: p.metrics,
		Destroyed:        p.destroyed,
		Gone:             func(d *driver.Driver) { p.drivers.CompareAndDelete(pc.Name, d) },
		Pipeline:         p.driver,
		HistoryRetention: p.dashCfg.HistoryRetention,
	})
	d.InheritPriority(pipe.Priority())
	p.drivers.Store(pc.Name, d)
	return d, nil
}

// MetricsCollector hands the driver's series to RoadRunner's metrics plugin (Prometheus).
func (p *Plugin) MetricsCollector() []prometheus.Collector { return p.metrics.Collectors() }

// live lists the running drivers.
func (p *Plugin) live() []*driver.Driver {
	var out []*driver.Driver
	p.drivers.Range(func(_, v any) bool {
		if d := v.(*driver.Driver); !d.Stopped() {
			out = append(out, d)
		}
		return true
	})
	return out
}

// RPC is the `sql` RPC service (the rpc plugin registers it as sql.*).
func (p *Plugin) RPC() any {
	return &rpc.Service{Pipelines: (*livePipelines)(p), ScheduleList: p.scheduleList}
}

// scheduleList shows the schedules to the RPC service.
func (p *Plugin) scheduleList(ctx context.Context) ([]rpc.ScheduleEntry, error) {
	list, err := p.schedules.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]rpc.ScheduleEntry, len(list))
	for i, s := range list {
		out[i] = rpc.ScheduleEntry{Name: s.Name, Cron: s.Cron, Timezone: s.Timezone, Pipeline: s.Pipeline, Job: s.Job, Missed: s.Missed,
			NextTick: s.NextTick, LastTick: s.LastTick}
	}
	return out, nil
}

// livePipelines shows the plugin's running drivers to the RPC service.
type livePipelines Plugin

func (l *livePipelines) Lookup(name string) (rpc.Target, bool) {
	v, ok := l.drivers.Load(name)
	if !ok {
		return rpc.Target{}, false
	}
	d := v.(*driver.Driver)
	if d.Stopped() {
		l.drivers.CompareAndDelete(name, v)
		return rpc.Target{}, false
	}
	c := d.Config()
	return rpc.Target{Pipeline: c.Name, Queue: c.Queue, Connection: d.Conn().Name, Store: d.Conn().Store, Wake: d.Wake, GroupBy: c.GroupBy,
		Driver: d}, true
}

func (l *livePipelines) Names() []string {
	var out []string
	for _, d := range (*Plugin)(l).live() {
		out = append(out, d.Config().Name)
	}
	return out
}

// declaredOptions reads the option map of a declared pipeline. The jobs.Pipeline interface has no
// way to list its keys, and every key must be seen to reject unknown ones; RoadRunner's
// implementation is a map type, which reflection can walk.
func declaredOptions(pipe jobs.Pipeline) (map[string]any, error) {
	v := reflect.ValueOf(pipe)
	if v.Kind() != reflect.Map || v.Type().Key().Kind() != reflect.String {
		return nil, fmt.Errorf("pipeline %q: cannot read declared options from %T", pipe.Name(), pipe)
	}
	out := make(map[string]any, v.Len())
	for it := v.MapRange(); it.Next(); {
		out[it.Key().String()] = it.Value().Interface()
	}
	return out, nil
}

// driver finds a live sql pipeline by name.
func (p *Plugin) driver(name string) (*driver.Driver, bool) {
	v, ok := p.drivers.Load(name)
	if !ok {
		return nil, false
	}
	d := v.(*driver.Driver)
	return d, !d.Stopped()
}
