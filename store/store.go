// Package store holds every SQL statement of the plugin behind one interface, Store.
// The statements that differ between databases (the claim, placeholders, schema) live in one file
// per dialect; everything else is shared.
//
// Time is the database's. Every due time, lease and heartbeat is written and compared with the
// clock of the database the statement runs on (`{now}` in the statements below, in unix
// milliseconds): the server's clock on PostgreSQL and MySQL, which every node sharing the database
// agrees on, and on SQLite, a file of this host, the store's own clock. A node whose clock is
// minutes off neither reaps its peers nor gets reaped, and its pushes are due when they should be.
package store

import (
	"context"
	"errors"
	"time"
)

// NewJob is a job to insert.
type NewJob struct {
	JobID    string
	Queue    string
	Name     string
	Payload  []byte
	Headers  map[string][]string
	Priority int64
	// Delay is how long after the insert (by the database's clock) the job becomes ready.
	Delay   time.Duration
	AutoAck bool
	// Grouped: the queue's pipeline has group_by, and Group is the job's group ("" for a job
	// without the header).
	Grouped bool
	Group   string
	// UniqueKey ("" for none) is the first value of the job's x-sql-unique-key header: the job is
	// not created while a job of the same queue holds the key (see Batch.DeliveredKeyed).
	UniqueKey string
}

// UniqueKeyHeader names the header whose first value is a job's unique key.
const UniqueKeyHeader = "x-sql-unique-key"

// MaxUniqueKey is the longest unique key, in characters (MySQL's index key limit: see migration 0009).
const MaxUniqueKey = 255

// Job is a claimed job, reserved by the claiming node until it is acked, requeued, failed or released.
type Job struct {
	Fence
	JobID    string
	Name     string
	Payload  []byte
	Headers  map[string][]string
	Priority int64
	// AvailableAt is when the job became ready (unix milliseconds, the database's clock).
	AvailableAt int64
	// Deliveries is how many times the job reached a worker before this claim.
	Deliveries int64
	// Failures is how many of those deliveries ended without an answer (the worker crashed or
	// timed out, or the node died): what max_attempts caps. A requeue asked for by the worker is an
	// answer, not a failure.
	Failures int64
	AutoAck  bool
	// Unreadable says why the row cannot be delivered (its headers are malformed): the driver
	// fails it at once.
	Unreadable error
}

// ClaimRequest asks for up to Limit ready jobs of Queue for Node, leased for Lease.
type ClaimRequest struct {
	Queue string
	Node  string
	Limit int
	Lease time.Duration
	// Groups: share the batch round robin across the queue's groups (group_by), at most
	// GroupConcurrency jobs of one group reserved at once in the cluster (0: no limit).
	Groups           bool
	GroupConcurrency int
}

// Fence identifies one claim of one row: a statement fenced by it does nothing if the job was
// since released or claimed again (by this node or another), so a stale holder cannot touch it.
type Fence struct {
	Row   int64
	Token int64
}

// Requeue is how a held job goes back to ready.
type Requeue struct {
	// Headers replace the job's headers.
	Headers map[string][]string
	Delay   time.Duration
	// Failed: the delivery ended without an answer (it counts against max_attempts); false for a
	// requeue the worker asked for.
	Failed bool
	// LastError records why the delivery failed (empty for a requeue the worker asked for).
	LastError string
	// FreeUniqueKey: the job gives up its unique key (a job pushed with one that has been at a
	// worker, unique_while: waiting): it waits again without one, as Batch.DeliveredKeyed says.
	FreeUniqueKey bool
}

// Batch is the bookkeeping gathered over a few milliseconds, written in one transaction.
type Batch struct {
	// Acks are jobs answered with success: their rows are deleted (on SQLite marked, and deleted
	// by a sweep soon after: see SweepAcked).
	Acks []Fence
	// Delivered are jobs that reached a worker and were not answered yet: marked so that, should
	// this node die before the answer, the delivery counts as one without an answer.
	Delivered []Fence
	// DeliveredKeyed are marked like Delivered, and give up their unique keys: jobs pushed with a
	// key to a pipeline with unique_while: waiting. A job with the same key may then be pushed
	// while this one runs, and this one, should it come back to ready, waits without its key. A
	// job claimed but given back before it reached a worker (pause, stop) keeps its key; with
	// unique_while: active the keys stay until the rows are deleted (acked, failed). Jobs without a
	// key go in Delivered: their mark is the statement it was before unique keys existed.
	DeliveredKeyed []Fence
}

// Counts are a queue's jobs by state.
type Counts struct {
	Ready    int64 // claimable now
	Delayed  int64 // available later
	Reserved int64 // claimed by a node, not yet answered
}

// Node is a running process that claims jobs.
type Node struct {
	ID string
	// Host identifies the machine and pid namespace of the process: two nodes may compare pids only
	// when their hosts are equal.
	Host string
	PID  int
	// HeartbeatAt is the last heartbeat (unix milliseconds, the database's clock).
	HeartbeatAt int64
}

// ServerOptions are the connection settings of a PostgreSQL or MySQL database.
type ServerOptions struct {
	DSN          string
	MaxOpenConns int
	// Migrate applies the embedded migrations; off, the schema is only checked.
	Migrate bool
	// ConnectTimeout bounds connecting and the first round trip (0: none); MigrateTimeout bounds
	// the schema check or migration, the wait for another node's migration lock included.
	ConnectTimeout, MigrateTimeout time.Duration
	// Clock is this node's time (default time.Now). The store compares no time with it (the
	// server's clock is the only one the nodes agree on): ClockSkew reports how far it is off.
	Clock func() time.Time
}

func (o ServerOptions) clock() func() time.Time {
	if o.Clock == nil {
		return time.Now
	}
	return o.Clock
}

// ErrClosed is returned by every call after Close.
var ErrClosed = errors.New("sql store is closed")

// Store is everything the plugin asks of a database.
type Store interface {
	// Insert commits one job. created is false when the job has a unique key that a job of its
	// queue holds: nothing was written (a duplicate is not an error).
	Insert(ctx context.Context, job NewJob) (created bool, err error)
	// InsertBatch commits jobs in one transaction: all of them or none. created[i] is false for a
	// job whose unique key a job of its queue (or an earlier job of the batch) holds.
	InsertBatch(ctx context.Context, jobs []NewJob) (created []bool, err error)
	// Claim reserves up to Limit ready jobs of a queue for a node, in (priority, available_at, id) order.
	Claim(ctx context.Context, req ClaimRequest) ([]Job, error)
	// Extend pushes the lease of held jobs to lease from now (the job is still queued or running here).
	Extend(ctx context.Context, fences []Fence, lease time.Duration) (int64, error)
	// Write applies a batch in one transaction; fences that no longer hold are skipped. Returns the
	// rows the acks ended.
	Write(ctx context.Context, b Batch) (acked int64, err error)
	// SweepAcked deletes the rows of acked jobs that Write left marked (SQLite: see
	// migration 0015); Write sweeps every few thousand acks, the node's upkeep what is left.
	// Returns the rows deleted (always 0 where acks delete their rows).
	SweepAcked(ctx context.Context) (int64, error)
	// Requeue makes a held job ready again, in one statement; false if the fence no longer holds.
	Requeue(ctx context.Context, f Fence, r Requeue) (bool, error)
	// Fail moves a held job to the failed jobs with a reason and its number of deliveries, in one
	// transaction; false (and nothing changed) if the fence no longer holds.
	Fail(ctx context.Context, f Fence, reason string, deliveries int64) (bool, error)
	// Release returns held jobs that never reached a worker to ready, without counting a delivery.
	Release(ctx context.Context, fences []Fence) (int64, error)
	// Counts reports a queue's jobs by state.
	Counts(ctx context.Context, queue string) (Counts, error)
	// FoldCounts merges the count rows of delays that have passed (run now and then): the counts
	// stay a few rows per queue. Returns the rows merged.
	FoldCounts(ctx context.Context) (int64, error)

	// RegisterNode records a starting node.
	RegisterNode(ctx context.Context, n Node) error
	// Heartbeat refreshes a node; false means its row is gone (it was declared dead).
	Heartbeat(ctx context.Context, node string) (bool, error)
	// Nodes lists the registered nodes.
	Nodes(ctx context.Context) ([]Node, error)
	// Reap removes the nodes without a heartbeat for ttl plus the listed dead ones, then returns to
	// ready every job reserved by a node that is no longer registered and every job whose lease
	// ended. A job that had reached a worker counts a delivery without an answer.
	Reap(ctx context.Context, ttl time.Duration, dead []string) (jobs int64, err error)
	// RemoveNode unregisters a stopping node and returns what it still holds to ready.
	RemoveNode(ctx context.Context, node string) (jobs int64, err error)

	// Listen calls onReady with a queue name whenever a job becomes ready there on any node, until
	// ctx ends or the connection fails. ErrNoListen: the database has no such channel (poll instead).
	Listen(ctx context.Context, onReady func(queue string)) error

	// OverflowTurn says whether this node checks a group_by queue's overflow now (one node per
	// interval, by a lease in the database).
	OverflowTurn(ctx context.Context, queue string, interval time.Duration) (bool, error)
	// Overflow moves the waiting jobs of the groups over the limit to the target queue.
	Overflow(ctx context.Context, r OverflowRequest) ([]OverflowMove, error)
	// OverflowGroups lists the groups in overflow (group → target queue), ending the overflow of
	// those with nothing left waiting in the target.
	OverflowGroups(ctx context.Context, queue string) (map[string]string, error)
	// CountReadyGroups is the number of a group_by queue's groups with a ready job.
	CountReadyGroups(ctx context.Context, queue string) (int64, error)

	// Tick pushes a schedule's tick once across nodes: it advances the schedule to the tick and
	// inserts the tick's job in one transaction, or does nothing (false) if the schedule is
	// already there.
	Tick(ctx context.Context, t Tick) (bool, error)
	// ScheduleTicks is the last tick of each schedule (unix milliseconds).
	ScheduleTicks(ctx context.Context) (map[string]int64, error)

	// Ops are the operators' calls (the `sql` RPC service).
	Ops
	// Declared keeps pipelines created at runtime.
	Declared
	// History is the dashboard's per-minute counts and views.
	History

	// ClockSkew is how far the database's clock is ahead of this node's (0 on SQLite, where they
	// are one): nothing depends on it, but a node minutes off is worth a warning.
	ClockSkew(ctx context.Context) (time.Duration, error)

	Dialect() string
	Close() error
}

// ErrNoListen is Listen's answer on databases without notifications.
var ErrNoListen = errors.New("this database has no notifications; consumers poll")
