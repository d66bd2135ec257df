package config

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Pipeline is the set of options of one `driver: sql` pipeline.
type Pipeline struct {
	Name string
	// Connection names an entry of sql.connections ("default" when empty).
	Connection string
	// Queue is the name the pipeline's jobs are stored under (the pipeline name by default).
	// Two pipelines with the same queue on the same connection share (and compete for) its jobs.
	Queue    string
	Priority int64
	// Prefetch caps the jobs a node holds for this pipeline at once: claimed from the database and
	// not yet answered by a PHP worker.
	Prefetch int
	// PollInterval is the idle poll period: how soon a job pushed by another node (or a delayed job)
	// is seen when nothing wakes the consumer.
	PollInterval time.Duration
	// Lease is the deadline of a claim. The node's heartbeat extends it while the job is queued or
	// running here; a job whose lease lapses (its node died, or lost track of it) is delivered again.
	Lease time.Duration
	// MaxAttempts caps deliveries of a job that keeps failing without an answer (worker crash,
	// exec_ttl, no free worker, or its node died): after that many it goes to the failed jobs.
	MaxAttempts int
	// Backoff is the delay before the second delivery, doubling for each further one (with
	// jitter), up to BackoffMax.
	Backoff    time.Duration
	BackoffMax time.Duration
	// MaxPayload is the largest payload a push may carry, in bytes: a bigger one is refused before
	// it is copied or sent to the database.
	MaxPayload uint64
	// GroupBy names the header whose first value is a job's group ("" = no groups). Claims then
	// share each batch round robin across the groups with ready jobs.
	GroupBy string
	// GroupConcurrency caps the jobs of one group reserved at once across the cluster (0 = none).
	GroupConcurrency int
	// Overflow moves the waiting jobs of groups with too many ready jobs to another pipeline.
	Overflow *Overflow
	// UniqueWhile is how long a job's unique key (header x-sql-unique-key) keeps a job with the
	// same key from being created: UniqueWaiting (until the job reaches a worker) or UniqueActive
	// (until the job is acked or failed: at a worker and through requeues too).
	UniqueWhile string
}

// unique_while values.
const (
	UniqueWaiting = "waiting"
	UniqueActive  = "active"
)

// Overflow is the overflow routing of a group_by pipeline: every Interval, one node moves the
// waiting jobs of each group with more than ReadyOver ready jobs to the pipeline To, and while
// that group has jobs waiting there its new pushes go there too.
type Overflow struct {
	ReadyOver int
	To        string
	Interval  time.Duration
}

// RetryDelay is the wait before the next delivery of a job that failed its attempt-th delivery.
func (p *Pipeline) RetryDelay(attempt int64, jitter float64) time.Duration {
	d := p.Backoff
	for i := int64(1); i < attempt && d < p.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, p.BackoffMax)
	// jitter in [0,1) spreads retries over 80%..120% of the delay.
	return time.Duration(float64(d) * (0.8 + 0.4*jitter))
}

// Option keys of a pipeline.
const (
	keyConnection   = "connection"
	keyQueue        = "queue"
	keyPriority     = "priority"
	keyPrefetch     = "prefetch"
	keyPollInterval = "poll_interval"
	keyLease        = "lease"
	keyMaxAttempts  = "max_attempts"
	keyBackoff      = "backoff"
	keyBackoffMax   = "backoff_max"
	keyMaxPayload   = "max_payload"
	keyGroupBy      = "group_by"
	keyGroupConc    = "group_concurrency"
	keyOverflow     = "overflow"
	keyOverflowInt  = "overflow_interval"
	keyUniqueWhile  = "unique_while"
	// jobs.Declare passes a flat map of strings: the overflow mapping's keys come flattened.
	keyOverflowReadyOver = "overflow.ready_over"
	keyOverflowTo        = "overflow.to"
)

var pipelineKeys = []string{keyConnection, keyQueue, keyPriority, keyPrefetch, keyPollInterval, keyLease, keyMaxAttempts, keyBackoff, keyBackoffMax, keyMaxPayload,
	keyGroupBy, keyGroupConc, keyOverflow, keyOverflowInt, keyOverflowReadyOver, keyOverflowTo, keyUniqueWhile}

// DefaultMaxPayload is max_payload's default: 10 MiB, below MySQL's default max_allowed_packet.
const DefaultMaxPayload = 10 << 20

// declareOnlyKeys are set by RoadRunner (or the caller) in a jobs.Declare map beside our options.
var declareOnlyKeys = []string{"driver", "name", "created_with_declare", "created_with_config"}

var queueName = regexp.MustCompile(`^[A-Za-z0-9_.:\-/]{1,255}$`)

// ParsePipeline validates a pipeline's `config:` map from .rr.yaml.
func ParsePipeline(name string, raw map[string]any) (*Pipeline, error) {
	return parsePipeline(name, raw, nil)
}

// ParseDeclared validates a pipeline created at runtime by jobs.Declare. RoadRunner passes every
// value as a string except `priority` (int64), and keeps `driver` and `name` in the same map.
func ParseDeclared(name string, raw map[string]any) (*Pipeline, error) {
	return parsePipeline(name, raw, declareOnlyKeys)
}

func parsePipeline(name string, raw map[string]any, extraKeys []string) (*Pipeline, error) {
	where := fmt.Sprintf("pipeline %q", name)
	if strings.TrimSpace(name) == "" {
		return nil, fmt.Errorf("pipeline name is empty: set `name` (jobs.Declare) or the key under jobs.pipelines")
	}
	o := newOptions(where, raw)
	o.ignore(extraKeys...)
	p := &Pipeline{Name: name}
	p.Connection = o.String(keyConnection, DefaultConnection)
	p.Queue = o.String(keyQueue, name)
	if !queueName.MatchString(p.Queue) {
		o.fail(keyQueue, "must be 1-255 characters of letters, digits, '_', '-', '.', ':' or '/', got %q", p.Queue)
	}
	p.Priority = o.Int(keyPriority, 10, -(1 << 20), 1<<20)
	p.Prefetch = int(o.Int(keyPrefetch, 100, 1, 100_000))
	p.PollInterval = o.Duration(keyPollInterval, time.Second, 10*time.Millisecond, time.Hour)
	p.Lease = o.Duration(keyLease, time.Minute, time.Second, 24*time.Hour)
	p.MaxAttempts = int(o.Int(keyMaxAttempts, 3, 1, 1000))
	p.Backoff = o.Duration(keyBackoff, time.Second, 0, 24*time.Hour)
	p.BackoffMax = o.Duration(keyBackoffMax, 5*time.Minute, 0, 7*24*time.Hour)
	p.MaxPayload = o.Size(keyMaxPayload, DefaultMaxPayload, 1, 1<<30)
	if p.BackoffMax < p.Backoff {
		o.fail(keyBackoffMax, "must be at least backoff (%s), got %s", p.Backoff, p.BackoffMax)
	}
	p.UniqueWhile = o.OneOf(keyUniqueWhile, UniqueWaiting, UniqueWaiting, UniqueActive)
	parseGroups(o, p)
	if err := o.Err(pipelineKeys); err != nil {
		return nil, err
	}
	return p, nil
}

// Resolve finds the pipeline's connection, or says which connections exist.
func (g *Global) Resolve(p *Pipeline) (*Connection, error) {
	c, ok := g.Connections[p.Connection]
	if !ok {
		names := make([]string, 0, len(g.Connections))
		for n := range g.Connections {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("pipeline %q: option \"connection\": unknown connection %q (defined in sql.connections: %s)",
			p.Name, p.Connection, strings.Join(names, ", "))
	}
	if p.Lease < 2*c.HeartbeatInterval {
		return nil, fmt.Errorf("pipeline %q: option \"lease\" (%s) must be at least twice the heartbeat_interval of connection %q (%s): the heartbeat extends leases",
			p.Name, p.Lease, c.Name, c.HeartbeatInterval)
	}
	return c, nil
}

// parseGroups reads group_by, group_concurrency and overflow (a mapping in .rr.yaml; flat
// "overflow.ready_over" / "overflow.to" keys in a jobs.Declare map).
func parseGroups(o *options, p *Pipeline) {
	p.GroupBy = o.String(keyGroupBy, "")
	if p.GroupBy != "" && !headerName.MatchString(p.GroupBy) {
		o.fail(keyGroupBy, "must be a header name of 1-128 letters, digits, '_', '-' or '.', got %q", p.GroupBy)
	}
	p.GroupConcurrency = int(o.Int(keyGroupConc, 0, 0, 1_000_000))
	over := o.Map(keyOverflow)
	if over == nil {
		over = map[string]any{}
		for key, flat := range map[string]string{"ready_over": keyOverflowReadyOver, "to": keyOverflowTo} {
			if v, ok := o.lookup(flat); ok {
				over[key] = v
			}
		}
	}
	interval := o.Duration(keyOverflowInt, time.Second, 100*time.Millisecond, time.Hour)
	if len(over) > 0 {
		sub := newOptions(fmt.Sprintf("%s: option %q", o.where, keyOverflow), over)
		p.Overflow = &Overflow{
			ReadyOver: int(sub.Int("ready_over", 0, 1, 1_000_000_000)),
			To:        sub.String("to", ""),
			Interval:  interval,
		}
		if _, ok := over["ready_over"]; !ok {
			sub.fail("ready_over", "is required: the number of ready jobs above which a group overflows")
		}
		if p.Overflow.To == "" {
			sub.fail("to", "is required: the sql pipeline (on the same connection) that takes the jobs of overflowing groups")
		} else if p.Overflow.To == p.Name {
			sub.fail("to", "must name another pipeline than %q itself", p.Name)
		}
		if err := sub.Err([]string{"ready_over", "to"}); err != nil {
			o.errs = append(o.errs, err.Error())
		}
	}
	if p.GroupBy == "" {
		if p.GroupConcurrency > 0 {
			o.fail(keyGroupConc, "needs group_by: the header whose first value names a job's group")
		}
		if p.Overflow != nil {
			o.fail(keyOverflow, "needs group_by: the header whose first value names a job's group")
		}
	}
}

// headerName is what a group_by header may look like (the store's HeaderName too).
var headerName = regexp.MustCompile(`^[A-Za-z0-9_.\-]{1,128}$`)
