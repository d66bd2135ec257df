package driver

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"strconv"
	"time"

	// The worker's context is encoded for every job: see the note in store on this encoder.
	json "github.com/goccy/go-json"
	"github.com/roadrunner-server/api/v4/plugins/v4/jobs"
	"github.com/rr-sql/sqljobs/config"
	"github.com/rr-sql/sqljobs/store"
)

var _ jobs.Job = (*Job)(nil)

// answerTimeout bounds the database call behind one answer (RoadRunner gives no context).
const answerTimeout = 30 * time.Second

// DeliveryHeader carries the delivery number (1 for the first) to PHP. The name is the driver's:
// a header the application sets under it is replaced at each delivery.
const DeliveryHeader = "x-sql-delivery"

// Job is a claimed job on its way to, or at, a PHP worker: the handle RoadRunner's jobs plugin
// holds. Its answers move the claim through the ledger's states (see claim.go).
type Job struct {
	c *claim
	d *Driver
}

var (
	errTakenBack = errors.New("the job was taken back from this node before a worker got it")
	errLostClaim = errors.New("the job's claim no longer holds (it was recovered by another node)")
	errNotAlive  = errors.New("this node has not heartbeat for too long: the job may run on another node, it does not run here")
)

// ID is the id given by the pusher.
func (j *Job) ID() string { return j.c.JobID }

// GroupID is the pipeline name: RoadRunner removes a pipeline's jobs from its queue by it.
func (j *Job) GroupID() string { return j.d.cfg.Name }

// Priority is the job's priority: RoadRunner's queue is shared with every other driver.
func (j *Job) Priority() int64 { return j.c.Priority }

// Body is the payload.
func (j *Job) Body() []byte { return j.c.Payload }

// Headers are the job's headers (user headers plus trace context).
func (j *Job) Headers() map[string][]string { return j.c.Headers }

// Context is asked for by RoadRunner right after it takes the job out of its queue, to hand it to
// a worker: the job is delivered from here on. The JSON carries the stored headers (the PHP client
// reads them unguarded, so never null) plus the delivery number.
func (j *Job) Context() ([]byte, error) {
	d := j.d
	d.feed.taken(j)
	headers := make(map[string][]string, len(j.c.Headers)+1)
	maps.Copy(headers, j.c.Headers)
	headers[DeliveryHeader] = []string{strconv.FormatInt(j.c.Deliveries+1, 10)}
	body, err := json.Marshal(struct {
		ID       string              `json:"id"`
		Job      string              `json:"job"`
		Driver   string              `json:"driver"`
		Headers  map[string][]string `json:"headers"`
		Queue    string              `json:"queue"`
		Pipeline string              `json:"pipeline"`
	}{j.c.JobID, j.c.Name, Name, headers, d.cfg.Queue, d.cfg.Name})
	if err != nil {
		return nil, err
	}
	if !d.conn.Alive() || j.c.node != d.conn.Node() {
		// This node may have been declared dead while it was frozen or cut off (or was, since the
		// claim): other nodes may run the job already. Drop it here; its lease (or the reaper)
		// gives it back to the queue.
		d.claims.lose(j.c)
		return nil, errNotAlive
	}
	if !d.claims.deliver(j.c) {
		return nil, errTakenBack // RoadRunner then calls Nack, which finds nothing to do
	}
	if j.c.AutoAck {
		// At most once: the job leaves the database now that a worker has it.
		d.claims.answer(j.c)
		d.writes.ack(j.c)
		d.countProcessed()
	} else {
		d.writes.delivered(j.c)
	}
	return body, nil
}

// Ack deletes the job (batched with other acks; a lost ack means a redelivery, never a loss).
func (j *Job) Ack() error {
	if j.d.claims.answer(j.c) {
		j.d.writes.ack(j.c)
		j.d.countProcessed()
	}
	return nil
}

// Nack is RoadRunner's answer when the delivery failed without a reply from PHP: the worker
// crashed, exceeded exec_ttl, no worker was free, or it returned an error frame. The job is
// retried with backoff until max_attempts such deliveries, then moved to the failed jobs.
func (j *Job) Nack() error {
	if !j.d.claims.answer(j.c) {
		return nil // taken back, lost, auto_ack (gone at delivery) or answered already
	}
	const reason = "the worker failed, crashed or returned an error"
	cfg := j.d.cfg
	failures := j.c.Failures + 1
	if failures >= int64(cfg.MaxAttempts) {
		return j.fail(fmt.Sprintf("%s (%d deliveries without an answer; max_attempts is %d)", reason, failures, cfg.MaxAttempts), j.c.Deliveries+1)
	}
	j.d.env.Metrics.countRetried(cfg.Name)
	return j.requeue(store.Requeue{Headers: j.c.Headers, Delay: cfg.RetryDelay(failures, rand.Float64()), Failed: true, LastError: reason,
		FreeUniqueKey: j.freesKey()})
}

// NackWithOptions requeues (after delay seconds) or fails the job, as the worker asked.
func (j *Job) NackWithOptions(requeue bool, delay int) error {
	if requeue {
		return j.Requeue(nil, delay)
	}
	if !j.d.claims.answer(j.c) {
		return nil
	}
	return j.fail("rejected by the worker (nack)", j.c.Deliveries+1)
}

// Requeue makes the job ready again after delay seconds with the headers merged in, in one
// statement. The worker asked for it: it is an answer, not a failed delivery.
func (j *Job) Requeue(headers map[string][]string, delay int) error {
	merged := maps.Clone(j.c.Headers)
	if merged == nil {
		merged = map[string][]string{}
	}
	maps.Copy(merged, headers)
	delete(merged, DeliveryHeader) // the PHP client sends back what it received
	wait := time.Duration(min(max(delay, 0), maxDelaySeconds)) * time.Second
	if j.c.AutoAck {
		// The row left the database when the job reached the worker: requeue means pushing it again,
		// without its unique key (given up when the row left): a duplicate must not swallow it.
		ctx, cancel := context.WithTimeout(context.Background(), answerTimeout)
		defer cancel()
		return j.d.insertJob(ctx, store.NewJob{JobID: j.c.JobID, Queue: j.d.cfg.Queue, Name: j.c.Name,
			Payload: j.c.Payload, Headers: merged, Priority: j.c.Priority, Delay: wait, AutoAck: true})
	}
	if !j.d.claims.answer(j.c) {
		return nil
	}
	return j.requeue(store.Requeue{Headers: merged, Delay: wait, FreeUniqueKey: j.freesKey()})
}

// freesKey: the job gives up its unique key when it comes back to ready after reaching a worker
// (unique_while: waiting), if it was pushed with one (the mark may not have been written yet: a
// job answered within the batch's few milliseconds).
func (j *Job) freesKey() bool {
	return j.d.cfg.UniqueWhile == config.UniqueWaiting && hasUniqueKey(j.c.Headers)
}

// requeue writes an answered claim back to ready; the claim settles once the statement is done.
func (j *Job) requeue(r store.Requeue) error {
	ctx, cancel := context.WithTimeout(context.Background(), answerTimeout)
	defer cancel()
	ok, err := j.d.conn.Store.Requeue(ctx, j.c.Fence, r)
	j.d.settle(j.c)
	if err != nil {
		return fmt.Errorf("requeue job %s: %w", j.c.JobID, err)
	}
	if !ok {
		return fmt.Errorf("requeue job %s: %w", j.c.JobID, errLostClaim)
	}
	j.d.wakeAfter(r.Delay)
	return nil
}

// fail moves an answered (or withdrawn) claim to the failed jobs; it settles once the
// transaction is done.
func (j *Job) fail(reason string, deliveries int64) error {
	ctx, cancel := context.WithTimeout(context.Background(), answerTimeout)
	defer cancel()
	ok, err := j.d.conn.Store.Fail(ctx, j.c.Fence, reason, deliveries)
	j.d.settle(j.c)
	if err != nil {
		return fmt.Errorf("move job %s to failed jobs: %w", j.c.JobID, err)
	}
	if !ok {
		return fmt.Errorf("move job %s to failed jobs: %w", j.c.JobID, errLostClaim)
	}
	j.d.env.Metrics.countFailed(j.d.cfg.Name)
	j.d.countFailed()
	return nil
}
