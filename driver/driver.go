// Package driver implements RoadRunner's jobs.Driver and jobs.Job on top of a store.Store.
//
// The path of a job: Push inserts it (committed before returning) and wakes the consumer; the
// consumer claims up to the free prefetch and hands the jobs, one at a time, to RoadRunner's
// shared queue (feeder.go); RoadRunner takes one out and asks for its Context(): the job is
// delivered; the PHP worker's reply calls Ack (batched, fenced delete), Requeue or Nack (one
// fenced statement each). claim.go holds the states a claimed job goes through on this node.
package driver

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

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

// maxDelaySeconds is the longest delay a push or requeue may ask for (100 years): beyond it a
// time.Duration overflows.
const maxDelaySeconds = 100 * 365 * 24 * 3600

var _ jobs.Driver = (*Driver)(nil)

// Env is what every driver of the plugin shares.
type Env struct {
	Log     *zap.Logger
	Tracer  trace.TracerProvider
	Prop    propagation.TextMapPropagator
	Metrics *Metrics
	// Destroyed tells, while a declared pipeline stops, whether jobs.Destroy stops it (forget it)
	// rather than a shutdown (keep it for the next start).
	Destroyed func(pipeline string) bool
	// Gone is called once a stopped driver holds nothing any more.
	Gone func(*Driver)
	// Pipeline finds another live sql pipeline of this rr by name (an overflow target).
	Pipeline func(name string) (*Driver, bool)
	// HistoryRetention is how long the dashboard's per-minute counts are kept (0: forever).
	HistoryRetention time.Duration
}

// Driver is one pipeline.
type Driver struct {
	cfg  *config.Pipeline
	conn *pipeline.Conn
	env  Env
	log  *zap.Logger

	// wake nudges the consumer: a local push, freed prefetch, a delayed job falling due.
	wake chan struct{}
	// mayHaveMore: the last claim filled its batch, so the queue may hold more jobs and freed
	// prefetch is worth a claim. After a short claim it is not: the answers to the jobs still at
	// the workers would each run an empty claim (one per job of a queue that keeps up with its
	// pushes); pushes, requeues, due delayed jobs and the idle poll claim instead.
	mayHaveMore atomic.Bool

	claims *ledger
	feed   *feeder
	writes *batcher
	// unsubscribe stops wake-ups from other nodes' pushes (PostgreSQL notifications).
	unsubscribe func()
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

	over *overflow // nil without overflow routing

	// jobsPriority is the pipeline's priority as RoadRunner's jobs plugin reads it: what it gives a
	// job pushed with priority 0 before Push, and what PushBatch gives it the same way.
	jobsPriority int64

	hist *history // the dashboard's per-minute counts
}

// New builds a pipeline's driver on an acquired connection; the consumer starts on Run or Resume.
func New(cfg *config.Pipeline, conn *pipeline.Conn, pq jobs.Queue, env Env) *Driver {
	d := &Driver{
		cfg:  cfg,
		conn: conn,
		env:  env,
		log:  env.Log.With(zap.String("pipeline", cfg.Name)),
		wake: make(chan struct{}, 1),
		feed: &feeder{pq: pq, pipeline: cfg.Name, waiting: claimQueue{fair: cfg.GroupBy != ""}},
		hist: newHistory(),
	}
	d.mayHaveMore.Store(true)
	d.claims = newLedger(func(unanswered int) {
		// A group_by claim also comes back short when its groups are at group_concurrency: an
		// answer frees a slot of one of them.
		worthAClaim := d.mayHaveMore.Load() || cfg.GroupBy != ""
		if worthAClaim && cfg.Prefetch-unanswered >= d.refillAt() {
			d.nudge()
		}
	})
	d.writes = newBatcher(conn.Store, d.log, cfg.UniqueWhile == config.UniqueWaiting,
		func(c *claim) bool { return d.claims.is(c, delivered) },
		d.settle,
		func(took time.Duration) { d.env.Metrics.observeAck(cfg.Name, took) })
	d.unsubscribe = conn.Subscribe(cfg.Queue, d.nudge)
	d.releaseHold = conn.Hold(d)
	d.startOverflow()
	go d.recordHistory()
	return d
}

// InheritPriority sets the priority a job pushed with priority 0 takes in PushBatch: the jobs
// plugin's pipeline priority (jobs.Pipeline.Priority), which it gives such jobs before Push.
// Call it before the driver is used.
func (d *Driver) InheritPriority(p int64) { d.jobsPriority = p }

// MarkDeclared records a pipeline created by jobs.Declare (with its declared options) so it
// survives restarts. A pipeline re-created from the database at start only confirms its row
// (restored): if another node destroyed it meanwhile, it is not created again.
func (d *Driver) MarkDeclared(ctx context.Context, options map[string]string, restored bool) error {
	save := d.conn.Store.SavePipeline
	if restored {
		save = d.conn.Store.KeepPipeline
	}
	if err := save(ctx, d.cfg.Name, options); err != nil {
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
	if err := d.conn.Store.SetConsuming(ctx, d.cfg.Name, consuming); err != nil {
		d.log.Error("record consuming state of declared pipeline", zap.Error(err))
	}
}

// Push stores a job; it is committed when Push returns.
func (d *Driver) Push(ctx context.Context, msg jobs.Message) error {
	ctx, span := d.env.Tracer.Tracer(tracerName).Start(ctx, "sql_push")
	defer span.End()

	p, err := d.prepare(ctx, msg)
	if err != nil {
		return err
	}
	created, err := p.insert(ctx)
	if err != nil {
		return err
	}
	if created {
		d.env.Metrics.countPushed(d.cfg.Name, "push", 1)
		d.countPushed(1)
	}
	return nil
}

// pending is a job checked and routed, ready for its insert: what Push and PushBatch share.
type pending struct {
	job store.NewJob
	// from is the pipeline the job was pushed to; to the one whose consumer takes it (the overflow
	// target while its group overflows, otherwise from).
	from, to *Driver
}

// prepare checks a pushed job and turns it into the row to insert: the trace context joins its
// headers, group_by gives its group, overflow routing its queue.
func (d *Driver) prepare(ctx context.Context, msg jobs.Message) (pending, error) {
	if d.Stopped() {
		return pending{}, fmt.Errorf("pipeline %s is stopped", d.cfg.Name)
	}
	if msg.ID() == "" {
		return pending{}, fmt.Errorf("push to pipeline %s: the job has no id (set one: RoadRunner checks it on jobs.Push only, not jobs.PushBatch)", d.cfg.Name)
	}
	if size := uint64(len(msg.Payload())); size > d.cfg.MaxPayload {
		return pending{}, fmt.Errorf("push job %s to pipeline %s: the payload is %d bytes, more than max_payload (%d bytes)", msg.ID(), d.cfg.Name, size, d.cfg.MaxPayload)
	}
	if msg.Delay() < 0 || msg.Delay() > maxDelaySeconds {
		return pending{}, fmt.Errorf("push job %s to pipeline %s: delay %d seconds: use 0 to %d (100 years)", msg.ID(), d.cfg.Name, msg.Delay(), maxDelaySeconds)
	}
	headers := make(map[string][]string, len(msg.Headers())+2)
	maps.Copy(headers, msg.Headers())
	d.env.Prop.Inject(ctx, propagation.HeaderCarrier(headers))
	job := store.NewJob{
		JobID:    msg.ID(),
		Queue:    d.cfg.Queue,
		Name:     msg.Name(),
		Payload:  msg.Payload(),
		Headers:  headers,
		Priority: msg.Priority(),
		Delay:    time.Duration(msg.Delay()) * time.Second,
		AutoAck:  msg.AutoAck(),
	}
	if err := d.withUniqueKey(&job); err != nil {
		return pending{}, err
	}
	return d.route(job)
}

// maxGroupLength is the longest group value (the grp column of MySQL is a VARCHAR(255)).
const maxGroupLength = 255

// withUniqueKey sets the job's unique key: the first value of its header x-sql-unique-key. A push
// whose key a job of the queue holds succeeds without creating a job.
func (d *Driver) withUniqueKey(job *store.NewJob) error {
	if v := job.Headers[store.UniqueKeyHeader]; len(v) > 0 {
		job.UniqueKey = v[0]
		if n := utf8.RuneCountInString(job.UniqueKey); n > store.MaxUniqueKey {
			return fmt.Errorf("push job %s to pipeline %s: the unique key (header %q) is %d characters long: use at most %d (a hash of a longer key, for instance)",
				job.JobID, d.cfg.Name, store.UniqueKeyHeader, n, store.MaxUniqueKey)
		}
	}
	return nil
}

// hasUniqueKey says whether a job's headers carry a unique key: a job pushed with one (or written
// by hand with the header, as the README asks), whose row may hold it.
func hasUniqueKey(headers map[string][]string) bool {
	return len(headers[store.UniqueKeyHeader]) > 0
}

// route gives a job its group and queue. With group_by, the first value of that header is the
// job's group; a group in overflow goes to the overflow pipeline's queue.
func (d *Driver) route(job store.NewJob) (pending, error) {
	if d.cfg.GroupBy != "" {
		job.Grouped = true
		if v := job.Headers[d.cfg.GroupBy]; len(v) > 0 {
			job.Group = v[0]
		}
		if len(job.Group) > maxGroupLength {
			return pending{}, fmt.Errorf("push job %s to pipeline %s: the group (header %q, the pipeline's group_by) is %d bytes long: use at most %d",
				job.JobID, d.cfg.Name, d.cfg.GroupBy, len(job.Group), maxGroupLength)
		}
	}
	queue, overflowTarget := d.routed(job.Group)
	job.Queue = queue
	p := pending{job: job, from: d, to: d}
	if overflowTarget != nil {
		p.to = overflowTarget
	}
	return p, nil
}

// insert commits the job alone. created is false for a duplicate (its unique key is held).
func (p pending) insert(ctx context.Context) (created bool, err error) {
	created, err = p.from.conn.Store.Insert(ctx, p.job)
	if err != nil {
		return false, fmt.Errorf("push to pipeline %s: %w", p.from.cfg.Name, err)
	}
	if !created {
		p.duplicate()
		return false, nil
	}
	p.to.wakeAfter(p.job.Delay)
	return true, nil
}

// duplicate logs and counts a push that created no job, and wakes nobody.
func (p pending) duplicate() {
	p.from.log.Debug("job not created: a job with the same unique key is in the queue",
		zap.String("id", p.job.JobID), zap.String("queue", p.job.Queue), zap.String("unique_key", p.job.UniqueKey))
	p.from.env.Metrics.countDuplicate(p.from.cfg.Name)
}

// insertJob routes and commits a job as it is: an auto_ack job requeued (its row left at
// delivery) is inserted again, without a unique key.
func (d *Driver) insertJob(ctx context.Context, job store.NewJob) error {
	p, err := d.route(job)
	if err != nil {
		return err
	}
	_, err = p.insert(ctx)
	return err
}

// Scheduled is one tick of a schedule (sql.schedules) for this pipeline.
type Scheduled struct {
	Schedule string
	Tick     time.Time
	// Push: insert the tick's job; false only advances the schedule (a missed tick skipped, or a
	// schedule seen for the first time).
	Push    bool
	Job     string
	Payload []byte
	Headers map[string][]string
}

// ScheduledJobID is the id of a schedule's job for a tick: stable, so it can be found by id.
func ScheduledJobID(schedule string, tick time.Time) string {
	return fmt.Sprintf("schedule:%s:%d", schedule, tick.UnixMilli())
}

// Tick pushes a schedule's tick unless another node (or an earlier call) already advanced the
// schedule to it or beyond: the schedule's row and the job are written in one transaction. The
// job is stored like a push (the pipeline's priority, group and overflow routing, counts,
// notifications). False: nothing was written.
func (d *Driver) Tick(ctx context.Context, s Scheduled) (bool, error) {
	if d.Stopped() {
		return false, fmt.Errorf("pipeline %s is stopped", d.cfg.Name)
	}
	t := store.Tick{Schedule: s.Schedule, At: s.Tick.UnixMilli()}
	var wake *Driver
	if s.Push {
		job := store.NewJob{
			JobID:    ScheduledJobID(s.Schedule, s.Tick),
			Name:     s.Job,
			Payload:  s.Payload,
			Headers:  maps.Clone(s.Headers),
			Priority: d.cfg.Priority,
		}
		if job.Headers == nil {
			job.Headers = map[string][]string{}
		}
		if err := d.withUniqueKey(&job); err != nil {
			return false, err
		}
		p, err := d.route(job)
		if err != nil {
			return false, err
		}
		t.Job, wake = &p.job, p.to
	}
	ok, err := d.conn.Store.Tick(ctx, t)
	if err != nil {
		return false, fmt.Errorf("pipeline %s: %w", d.cfg.Name, err)
	}
	if ok && wake != nil {
		wake.nudge()
		d.countPushed(1)
	}
	return ok, nil
}

// Run starts consuming (RoadRunner calls it for pipelines listed in jobs.consume).
func (d *Driver) Run(context.Context, jobs.Pipeline) error {
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

// Pause stops claiming and takes back the jobs no worker has yet, returning them to ready in the
// database. Jobs already at a worker finish normally.
func (d *Driver) Pause(ctx context.Context, p string) error {
	if p != d.cfg.Name {
		return fmt.Errorf("pause: pipeline %s is not %s", p, d.cfg.Name)
	}
	if !d.stopConsumer() {
		return fmt.Errorf("pipeline %s is already paused", d.cfg.Name)
	}
	d.recordConsuming(false)
	return d.giveBack(ctx, d.feed.stop())
}

// Stop ends the pipeline: stop claiming, give back the jobs no worker has, wait (within ctx) for
// the jobs at workers to be answered and their answers written, then release the connection. A
// job still at a worker when ctx ends keeps the connection (and this node's claim on it) until
// its answer lands: it is never given back while this process may still run it.
func (d *Driver) Stop(ctx context.Context) error {
	d.mu.Lock()
	if d.stopped {
		d.mu.Unlock()
		return nil
	}
	d.stopped = true
	d.mu.Unlock()

	d.unsubscribe()
	d.stopOverflow()
	d.stopConsumer()
	err := d.giveBack(ctx, d.feed.stop())
	d.cancelDue()
	if left := d.claims.waitSettled(ctx); left > 0 {
		d.log.Warn("stopping with jobs still at workers: this node keeps them until their answers come (or until it is gone: then they run again elsewhere)",
			zap.Int("jobs", left))
	}
	d.writes.close(ctx)
	d.stopHistory()
	if d.declared && d.env.Destroyed != nil && d.env.Destroyed(d.cfg.Name) {
		if derr := d.conn.Store.DeletePipeline(context.WithoutCancel(ctx), d.cfg.Name); derr != nil {
			d.log.Error("forget destroyed pipeline", zap.Error(derr))
		}
	}
	release := context.WithoutCancel(ctx)
	d.claims.onEmpty(func() {
		d.env.Metrics.forget(d.cfg.Name)
		d.releaseHold()
		d.conn.Release(release)
		if d.env.Gone != nil {
			d.env.Gone(d)
		}
		d.log.Debug("pipeline stopped")
	})
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
	c, err := d.conn.Store.Counts(ctx, d.cfg.Queue)
	if err != nil {
		st.ErrorMessage = err.Error()
		return st, nil // an error here would blank RoadRunner's whole jobs table
	}
	st.Active, st.Delayed, st.Reserved = c.Reserved, c.Delayed, c.Ready
	return st, nil
}

// Consuming tells whether the pipeline claims jobs (false: paused, or never run).
func (d *Driver) Consuming() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cancel != nil && !d.stopped
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

// Held lists the claims not settled (pipeline.Holder): the heartbeat extends their leases.
func (d *Driver) Held() []store.Fence { return d.claims.fences() }

// Lease is the pipeline's claim deadline (pipeline.Holder).
func (d *Driver) Lease() time.Duration { return d.cfg.Lease }

// ClaimsLost drops the claims no worker has (pipeline.Holder): this node was declared dead and
// its jobs went to other nodes. Jobs at workers finish; their answers are fenced off. A claim still
// on its way now is dropped when RoadRunner asks for its Context (its node id is the old one).
func (d *Driver) ClaimsLost() {
	d.feed.drain()
	if n := d.claims.loseClaimed(d.conn.Node()); n > 0 {
		d.log.Warn("jobs claimed before this node was declared dead were dropped here without running; other nodes run them",
			zap.Int("jobs", n))
	}
}

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
	d.feed.start()
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

// giveBack returns jobs no worker got to ready in the database.
func (d *Driver) giveBack(ctx context.Context, taken []*Job) error {
	var withdrawn []*claim
	for _, j := range taken {
		if d.claims.withdraw(j.c) {
			withdrawn = append(withdrawn, j.c)
		}
	}
	if len(withdrawn) == 0 {
		return nil
	}
	fences := make([]store.Fence, len(withdrawn))
	for i, c := range withdrawn {
		fences[i] = c.Fence
	}
	n, err := d.conn.Store.Release(context.WithoutCancel(ctx), fences)
	for _, c := range withdrawn {
		d.settle(c)
	}
	if err != nil {
		// They stay reserved by this node and come back when their lease runs out.
		return fmt.Errorf("pipeline %s: return %d unstarted jobs to ready: %w", d.cfg.Name, len(fences), err)
	}
	d.log.Debug("unstarted jobs returned to ready", zap.Int64("jobs", n))
	return nil
}

func (d *Driver) nudge() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// wakeAfter nudges the consumer now, or arms one timer for the earliest delayed job pushed here.
func (d *Driver) wakeAfter(delay time.Duration) {
	if delay <= 0 {
		d.nudge()
		return
	}
	at := time.Now().Add(delay)
	d.dueMu.Lock()
	defer d.dueMu.Unlock()
	if d.dueTimer != nil && !d.dueAt.IsZero() && !at.Before(d.dueAt) {
		return
	}
	if d.dueTimer != nil {
		d.dueTimer.Stop()
	}
	d.dueAt = at
	d.dueTimer = time.AfterFunc(delay, func() {
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

// settle ends a claim once its statement is done. Under group_concurrency that statement may have
// freed a group's slot that jobs wait for: claim again now rather than at the next poll.
func (d *Driver) settle(c *claim) {
	d.claims.settle(c)
	if d.cfg.GroupConcurrency > 0 {
		d.nudge()
	}
}
