// Package driver implements RoadRunner's jobs.Driver and jobs.Job on top of a store.Store.
//
// The path of a job: Push inserts it (committed before returning) and wakes the consumer; the
// consumer claims up to the free prefetch and inserts job handles into RoadRunner's shared
// priority queue; a PHP worker's reply calls Ack (batched, fenced delete), Requeue or Nack
// (one fenced statement each).
package driver

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/roadrunner-server/api/v4/plugins/v4/jobs"
	"github.com/rr-sql/sqljobs/config"
	"github.com/rr-sql/sqljobs/pipeline"
	"github.com/rr-sql/sqljobs/store"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
)

// Name is the driver name RoadRunner shows (the `driver:` value).
const Name = "sql"

const tracerName = "jobs"

var _ jobs.Driver = (*Driver)(nil)

// Env is what every driver of the plugin shares.
type Env struct {
	Log     *zap.Logger
	Tracer  trace.TracerProvider
	Prop    propagation.TextMapPropagator
	Metrics *Metrics
}

// Driver is one pipeline.
type Driver struct {
	cfg     *config.Pipeline
	conn    *pipeline.Conn
	pq      jobs.Queue
	log     *zap.Logger
	tracer  trace.TracerProvider
	prop    propagation.TextMapPropagator
	metrics *Metrics

	// wake nudges the consumer: a local push, freed prefetch, a delayed job falling due.
	wake chan struct{}

	acks *acker
	// unsubscribe stops wake-ups from other nodes' pushes (PostgreSQL notifications).
	unsubscribe func()
	// held are the claims not yet answered (in the shared queue or at a worker): the consumer keeps
	// them within cfg.Prefetch, the heartbeat extends their leases, Stop waits for them to end.
	heldMu      sync.Mutex
	held        map[store.Fence]struct{}
	heldEmpty   *sync.Cond // on heldMu: broadcast when held becomes empty
	releaseHold func()

	// declared pipelines (jobs.Declare) are kept in the database with their consuming state, so
	// they come back when rr starts again; jobs.Destroy forgets them.
	declared bool

	mu      sync.Mutex // guards the consumer's lifecycle below
	cancel  context.CancelFunc
	done    chan struct{}
	stopped bool

	dueMu    sync.Mutex
	dueTimer *time.Timer
	dueAt    time.Time
}

// New builds a pipeline's driver on an acquired connection; the consumer starts on Run or Resume.
func New(cfg *config.Pipeline, conn *pipeline.Conn, pq jobs.Queue, env Env) *Driver {
	d := &Driver{
		cfg:     cfg,
		conn:    conn,
		pq:      pq,
		log:     env.Log.With(zap.String("pipeline", cfg.Name)),
		tracer:  env.Tracer,
		prop:    env.Prop,
		metrics: env.Metrics,
		wake:    make(chan struct{}, 1),
	}
	d.acks = newAcker(conn.Store, d.log, func(took time.Duration) { d.metrics.observeAck(cfg.Name, took) })
	d.held = map[store.Fence]struct{}{}
	d.heldEmpty = sync.NewCond(&d.heldMu)
	d.unsubscribe = conn.Subscribe(cfg.Queue, d.nudge)
	d.releaseHold = conn.Hold(d)
	return d
}

// MarkDeclared records a pipeline created by jobs.Declare (with its declared options) so it
// survives restarts.
func (d *Driver) MarkDeclared(ctx context.Context, options map[string]string) error {
	if err := d.conn.Store.SavePipeline(ctx, d.cfg.Name, options, time.Now()); err != nil {
		return err
	}
	d.declared = true
	return nil
}

func (d *Driver) recordConsuming(consuming bool) {
	if !d.declared {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), answerTimeout)
	defer cancel()
	if err := d.conn.Store.SetConsuming(ctx, d.cfg.Name, consuming, time.Now()); err != nil {
		d.log.Error("record consuming state of declared pipeline", zap.Error(err))
	}
}

// Push stores a job; it is committed when Push returns.
func (d *Driver) Push(ctx context.Context, msg jobs.Message) error {
	ctx, span := d.tracer.Tracer(tracerName).Start(ctx, "sql_push")
	defer span.End()

	if d.Stopped() {
		return fmt.Errorf("pipeline %s is stopped", d.cfg.Name)
	}

	headers := make(map[string][]string, len(msg.Headers())+2)
	maps.Copy(headers, msg.Headers())
	d.prop.Inject(ctx, propagation.HeaderCarrier(headers))

	now := time.Now()
	available := now
	if msg.Delay() > 0 {
		available = now.Add(time.Duration(msg.Delay()) * time.Second)
	}
	err := d.conn.Store.Insert(ctx, store.NewJob{
		JobID:       msg.ID(),
		Queue:       d.cfg.Queue,
		Name:        msg.Name(),
		Payload:     msg.Payload(),
		Headers:     headers,
		Priority:    msg.Priority(),
		AvailableAt: available,
		AutoAck:     msg.AutoAck(),
	})
	if err != nil {
		return fmt.Errorf("push to pipeline %s: %w", d.cfg.Name, err)
	}
	d.wakeAt(available)
	return nil
}

// Run starts consuming (RoadRunner calls it for pipelines listed in jobs.consume).
func (d *Driver) Run(ctx context.Context, _ jobs.Pipeline) error {
	if err := d.start(); err != nil {
		return err
	}
	d.recordConsuming(true)
	return nil
}

// Resume starts consuming, also for a pipeline that never ran.
func (d *Driver) Resume(_ context.Context, p string) error {
	if p != d.cfg.Name {
		return fmt.Errorf("resume: pipeline %s is not %s", p, d.cfg.Name)
	}
	if err := d.start(); err != nil {
		return err
	}
	d.recordConsuming(true)
	return nil
}

// Pause stops claiming, takes this pipeline's unstarted jobs back from the shared queue and
// returns them to ready in the database. Jobs already at a worker finish normally.
func (d *Driver) Pause(ctx context.Context, p string) error {
	if p != d.cfg.Name {
		return fmt.Errorf("pause: pipeline %s is not %s", p, d.cfg.Name)
	}
	if !d.stopConsumer() {
		return fmt.Errorf("pipeline %s is already paused", d.cfg.Name)
	}
	d.recordConsuming(false)
	return d.releaseQueued(ctx)
}

// Stop ends the pipeline: stop claiming, return unstarted jobs, wait (within ctx) for jobs at
// workers to be answered, flush acks and release the connection. Answers that arrive later are
// still safe: they are fenced, and a job they cannot reach is redelivered, never lost.
func (d *Driver) Stop(ctx context.Context) error {
	d.mu.Lock()
	if d.stopped {
		d.mu.Unlock()
		return nil
	}
	d.stopped = true
	d.mu.Unlock()

	d.unsubscribe()
	d.stopConsumer()
	err := d.releaseQueued(ctx)
	d.cancelDue()
	if werr := d.waitIdle(ctx); werr != nil {
		d.log.Warn("stopping with jobs still at workers; they will be redelivered if their answer comes too late",
			zap.Int("outstanding", d.holding()))
	}
	d.acks.close()
	if d.declared && isDestroy(ctx) {
		if derr := d.conn.Store.DeletePipeline(context.WithoutCancel(ctx), d.cfg.Name); derr != nil {
			d.log.Error("forget destroyed pipeline", zap.Error(derr))
		}
	}
	d.releaseHold()
	d.conn.Release(context.WithoutCancel(ctx))
	d.log.Debug("pipeline stopped")
	return err
}

// State reports the pipeline from the database, so it is right after a restart and across nodes:
// Active = reserved (claimed, at a worker or in the shared queue), Delayed, Reserved = ready to claim.
func (d *Driver) State(ctx context.Context) (*jobs.State, error) {
	d.mu.Lock()
	ready := d.cancel != nil
	stopped := d.stopped
	d.mu.Unlock()
	st := &jobs.State{
		Pipeline: d.cfg.Name,
		Driver:   Name,
		Queue:    d.cfg.Queue,
		Priority: uint64(max(d.cfg.Priority, 0)), //nolint:gosec // clamped
		Ready:    ready,
	}
	if stopped {
		return st, nil
	}
	c, err := d.conn.Store.Counts(ctx, d.cfg.Queue, time.Now())
	if err != nil {
		st.ErrorMessage = err.Error()
		return st, nil // an error here would blank RoadRunner's whole jobs table
	}
	st.Active, st.Delayed, st.Reserved = c.Reserved, c.Delayed, c.Ready
	return st, nil
}

// Config is the pipeline's configuration.
func (d *Driver) Config() *config.Pipeline { return d.cfg }

// Conn is the pipeline's connection.
func (d *Driver) Conn() *pipeline.Conn { return d.conn }

// Stopped tells whether Stop was called.
func (d *Driver) Stopped() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stopped
}

// Wake makes the consumer look for ready jobs now (after operators made some ready).
func (d *Driver) Wake() { d.nudge() }

func (d *Driver) start() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		return fmt.Errorf("pipeline %s is stopped", d.cfg.Name)
	}
	if d.cancel != nil {
		return fmt.Errorf("pipeline %s is already consuming", d.cfg.Name)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	d.done = make(chan struct{})
	go d.consume(ctx, d.done)
	d.log.Debug("pipeline consuming")
	return nil
}

// stopConsumer stops the claim loop and waits for it; false if it was not running.
func (d *Driver) stopConsumer() bool {
	d.mu.Lock()
	cancel, done := d.cancel, d.done
	d.cancel, d.done = nil, nil
	d.mu.Unlock()
	if cancel == nil {
		return false
	}
	cancel()
	<-done
	return true
}

// releaseQueued takes this pipeline's jobs out of the shared queue (RoadRunner will never answer
// them) and returns them to ready in the database.
func (d *Driver) releaseQueued(ctx context.Context) error {
	removed := d.pq.Remove(d.cfg.Name)
	if len(removed) == 0 {
		return nil
	}
	fences := make([]store.Fence, 0, len(removed))
	for _, it := range removed {
		j, ok := it.(*Job)
		if !ok || !j.answer() {
			continue
		}
		if !j.AutoAck {
			fences = append(fences, j.Fence)
		}
	}
	n, err := d.conn.Store.Release(context.WithoutCancel(ctx), fences)
	if err != nil {
		// They stay reserved by this node and come back when the node is reaped.
		return fmt.Errorf("pipeline %s: return %d unstarted jobs to ready: %w", d.cfg.Name, len(fences), err)
	}
	d.log.Debug("unstarted jobs returned to ready", zap.Int64("jobs", n))
	return nil
}

// Held lists the claims not yet answered (pipeline.Holder).
func (d *Driver) Held() []store.Fence {
	d.heldMu.Lock()
	defer d.heldMu.Unlock()
	out := make([]store.Fence, 0, len(d.held))
	for f := range d.held {
		out = append(out, f)
	}
	return out
}

// Lease is the pipeline's claim deadline (pipeline.Holder).
func (d *Driver) Lease() time.Duration { return d.cfg.Lease }

// hold records freshly claimed jobs.
func (d *Driver) hold(claimed []store.Job) {
	d.heldMu.Lock()
	defer d.heldMu.Unlock()
	for i := range claimed {
		d.held[claimed[i].Fence] = struct{}{}
	}
}

// holding is the number of claims not yet answered.
func (d *Driver) holding() int {
	d.heldMu.Lock()
	defer d.heldMu.Unlock()
	return len(d.held)
}

// settle is called once per claimed job when it is answered or taken back.
func (d *Driver) settle(f store.Fence) {
	d.heldMu.Lock()
	delete(d.held, f)
	left := len(d.held)
	if left == 0 {
		d.heldEmpty.Broadcast()
	}
	d.heldMu.Unlock()
	if d.cfg.Prefetch-left >= d.refillAt() {
		d.nudge()
	}
}

// waitIdle waits until every claim is answered, or ctx ends.
func (d *Driver) waitIdle(ctx context.Context) error {
	stopWatch := context.AfterFunc(ctx, func() {
		d.heldMu.Lock()
		d.heldEmpty.Broadcast()
		d.heldMu.Unlock()
	})
	defer stopWatch()
	d.heldMu.Lock()
	defer d.heldMu.Unlock()
	for len(d.held) > 0 {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d.heldEmpty.Wait()
	}
	return nil
}

func (d *Driver) nudge() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// wakeAt nudges the consumer now, or arms one timer for the earliest delayed job pushed here.
func (d *Driver) wakeAt(at time.Time) {
	wait := time.Until(at)
	if wait <= 0 {
		d.nudge()
		return
	}
	d.dueMu.Lock()
	defer d.dueMu.Unlock()
	if d.dueTimer != nil && !d.dueAt.IsZero() && !at.Before(d.dueAt) {
		return
	}
	if d.dueTimer != nil {
		d.dueTimer.Stop()
	}
	d.dueAt = at
	d.dueTimer = time.AfterFunc(wait, func() {
		d.dueMu.Lock()
		d.dueAt = time.Time{}
		d.dueMu.Unlock()
		d.nudge()
	})
}

func (d *Driver) cancelDue() {
	d.dueMu.Lock()
	defer d.dueMu.Unlock()
	if d.dueTimer != nil {
		d.dueTimer.Stop()
	}
}

// isDestroy tells jobs.Destroy from a shutdown: both end in Stop, and Endure stops plugins
// concurrently, so no flag of ours can tell them apart. The jobs plugin (v5) runs Destroy under
// a span named "destroy_pipeline". If that span cannot be seen (a sampler dropped it), the
// pipeline is kept: after a restart it comes back with its jobs, nothing is lost.
func isDestroy(ctx context.Context) bool {
	named, ok := trace.SpanFromContext(ctx).(interface{ Name() string })
	return ok && named.Name() == "destroy_pipeline"
}

var errLostClaim = errors.New("the job's claim no longer holds (it was recovered by another node or already answered)")
