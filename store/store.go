// Package store holds every SQL statement of the plugin behind one interface, Store.
// The statements that differ between databases (the claim, placeholders, schema) live in one file
// per dialect; everything else is shared. Times are unix milliseconds taken from the caller's clock.
package store

import (
	"context"
	"errors"
	"time"
)

// NewJob is a job to insert.
type NewJob struct {
	JobID       string
	Queue       string
	Name        string
	Payload     []byte
	Headers     map[string][]string
	Priority    int64
	AvailableAt time.Time
	AutoAck     bool
}

// Job is a claimed job, reserved by the claiming node until it is acked, requeued, failed or released.
type Job struct {
	Fence
	JobID       string
	Name        string
	Payload     []byte
	Headers     map[string][]string
	Priority    int64
	AvailableAt time.Time
	Attempts    int64
	AutoAck     bool
}

// ClaimRequest asks for up to Limit ready jobs of Queue for Node, leased until LeaseUntil.
type ClaimRequest struct {
	Queue      string
	Node       string
	Limit      int
	Now        time.Time
	LeaseUntil time.Time
}

// Fence identifies one claim of one row: a statement fenced by it does nothing if the job was
// since released or claimed again (by this node or another), so a stale holder cannot touch it.
type Fence struct {
	Row   int64
	Token int64
}

// Counts are a queue's jobs by state.
type Counts struct {
	Ready    int64 // claimable now
	Delayed  int64 // available later
	Reserved int64 // claimed by a node, not yet answered
}

// Node is a running process that claims jobs.
type Node struct {
	ID          string
	Host        string // hostname plus pid namespace: pids are comparable only within one
	PID         int
	HeartbeatAt time.Time
}

// ErrClosed is returned by every call after Close.
var ErrClosed = errors.New("sql store is closed")

// Store is everything the plugin asks of a database.
type Store interface {
	// Insert commits one job.
	Insert(ctx context.Context, job NewJob) error
	// Claim reserves up to Limit ready jobs of a queue for a node, in (priority, available_at, id) order.
	Claim(ctx context.Context, req ClaimRequest) ([]Job, error)
	// Extend pushes the lease of held jobs to until (the job is still queued or running here).
	Extend(ctx context.Context, fences []Fence, until time.Time) (int64, error)
	// Ack deletes acknowledged jobs; fences that no longer hold are skipped. Returns rows deleted.
	Ack(ctx context.Context, fences []Fence) (int64, error)
	// Requeue makes a held job ready again at availableAt with new headers, in one statement;
	// lastError (empty for a requeue the worker asked for) records why its delivery failed.
	Requeue(ctx context.Context, f Fence, headers map[string][]string, availableAt time.Time, lastError string) (bool, error)
	// Fail moves a held job to the failed jobs with a reason.
	Fail(ctx context.Context, f Fence, reason string, now time.Time) (bool, error)
	// Release returns held jobs that never reached a worker to ready, without counting an attempt.
	Release(ctx context.Context, fences []Fence) (int64, error)
	// Counts reports a queue's jobs by state.
	Counts(ctx context.Context, queue string, now time.Time) (Counts, error)
	// FailedCount is the number of failed jobs of a queue.
	FailedCount(ctx context.Context, queue string) (int64, error)

	// RegisterNode records a starting node.
	RegisterNode(ctx context.Context, n Node, now time.Time) error
	// Heartbeat refreshes a node; false means its row is gone (it was declared dead).
	Heartbeat(ctx context.Context, node string, now time.Time) (bool, error)
	// Nodes lists the registered nodes.
	Nodes(ctx context.Context) ([]Node, error)
	// Reap removes nodes whose heartbeat is older than staleBefore plus the listed dead ones,
	// then returns to ready every job reserved by a node that is no longer registered and every
	// job whose lease ended before now.
	Reap(ctx context.Context, now, staleBefore time.Time, dead []string) (jobs int64, err error)
	// RemoveNode unregisters a stopping node and returns what it still holds to ready.
	RemoveNode(ctx context.Context, node string) (jobs int64, err error)

	// Listen calls onReady with a queue name whenever a job becomes ready there on any node, until
	// ctx ends or the connection fails. ErrNoListen: the database has no such channel (poll instead).
	Listen(ctx context.Context, onReady func(queue string)) error

	// Ops are the operators' calls (the `sql` RPC service).
	Ops
	// Declared keeps pipelines created at runtime.
	Declared

	Dialect() string
	Close() error
}

// ErrNoListen is Listen's answer on databases without notifications.
var ErrNoListen = errors.New("this database has no notifications; consumers poll")

func ms(t time.Time) int64 { return t.UnixMilli() }
