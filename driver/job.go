package driver

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	// The worker's context is encoded for every job: see the note in store on this encoder.
	json "github.com/goccy/go-json"
	"github.com/roadrunner-server/api/v4/plugins/v4/jobs"
	"github.com/rr-sql/sqljobs/store"
)

var _ jobs.Job = (*Job)(nil)

// answerTimeout bounds the database call behind one Requeue or Nack (RoadRunner gives no context).
const answerTimeout = 30 * time.Second

// Job is a claimed job on its way to, or at, a PHP worker.
type Job struct {
	store.Job
	drv *Driver
	// heapKey orders the shared queue (see Priority).
	heapKey int64
	// answered makes the first answer (or a take-back by Pause/Stop) the only one that counts.
	answered atomic.Bool
}

// seq numbers jobs as they enter the shared queue, process-wide.
var seq atomic.Int64

func (d *Driver) newJob(sj store.Job) *Job {
	return &Job{Job: sj, drv: d, heapKey: heapKey(sj.Priority, seq.Add(1))}
}

// heapKey packs (priority, arrival) into one int64. RoadRunner's shared queue is a binary heap on
// Priority() alone, which does not keep the order of equal priorities; with the arrival number in
// the low 40 bits, jobs of equal priority leave the heap in the order they were claimed (FIFO).
// Priorities are clamped to ±2^22, far beyond any used in practice.
func heapKey(priority, arrival int64) int64 {
	const lim = 1 << 22
	priority = min(max(priority, -lim), lim-1)
	return priority<<40 | arrival&(1<<40-1)
}

// ID is the id given by the pusher.
func (j *Job) ID() string { return j.JobID }

// GroupID is the pipeline name: RoadRunner removes a pipeline's jobs from its queue by it.
func (j *Job) GroupID() string { return j.drv.cfg.Name }

// Priority is the shared queue's ordering key, not the job's priority (see heapKey).
func (j *Job) Priority() int64 { return j.heapKey }

// Body is the payload.
func (j *Job) Body() []byte { return j.Payload }

// Headers are the job's headers (user headers plus trace context).
func (j *Job) Headers() map[string][]string { return j.Job.Headers }

// AttemptHeader carries the delivery number (1 for the first) to PHP.
const AttemptHeader = "attempts"

// Context is the JSON the PHP worker receives beside the body: the stored headers (the PHP
// client reads them unguarded, so never null) plus the delivery number.
func (j *Job) Context() ([]byte, error) {
	headers := make(map[string][]string, len(j.Job.Headers)+1)
	maps.Copy(headers, j.Job.Headers)
	headers[AttemptHeader] = []string{strconv.FormatInt(j.Attempts, 10)}
	return json.Marshal(struct {
		ID       string              `json:"id"`
		Job      string              `json:"job"`
		Driver   string              `json:"driver"`
		Headers  map[string][]string `json:"headers"`
		Queue    string              `json:"queue"`
		Pipeline string              `json:"pipeline"`
	}{j.JobID, j.Name, Name, headers, j.drv.cfg.Queue, j.drv.cfg.Name})
}

// answer claims the right to answer; false if the job was already answered or taken back.
func (j *Job) answer() bool {
	if j.answered.Swap(true) {
		return false
	}
	j.drv.settle(j.Fence)
	return true
}

// Ack deletes the job (batched with other acks; a lost ack means a redelivery, never a loss).
func (j *Job) Ack() error {
	if !j.answer() || j.AutoAck {
		return nil
	}
	j.drv.acks.add(j.Fence)
	return nil
}

// Nack is RoadRunner's answer when the delivery failed without a reply from PHP: the worker
// crashed, exceeded exec_ttl, no worker was free, or it returned an error frame. The job is retried
// with backoff until max_attempts deliveries, then moved to the failed jobs.
func (j *Job) Nack() error {
	const reason = "the worker failed, crashed or returned an error"
	if j.AutoAck {
		j.answer() // at-most-once: the job already left the database
		return nil
	}
	cfg := j.drv.cfg
	if j.Attempts >= int64(cfg.MaxAttempts) {
		return j.fail(fmt.Sprintf("%s (delivery %d of max_attempts %d)", reason, j.Attempts, cfg.MaxAttempts))
	}
	j.drv.metrics.countRetried(cfg.Name)
	return j.requeue(nil, cfg.RetryDelay(j.Attempts, rand.Float64()), reason)
}

// NackWithOptions requeues (after delay seconds) or fails the job, as the worker asked.
func (j *Job) NackWithOptions(requeue bool, delay int) error {
	if requeue {
		return j.Requeue(nil, delay)
	}
	return j.fail("rejected by the worker (nack)")
}

// Requeue makes the job ready again after delay seconds with the headers merged in, in one statement.
func (j *Job) Requeue(headers map[string][]string, delay int) error {
	return j.requeue(headers, time.Duration(max(delay, 0))*time.Second, "")
}

func (j *Job) requeue(headers map[string][]string, delay time.Duration, lastError string) error {
	if !j.answer() {
		return nil
	}
	merged := maps.Clone(j.Job.Headers)
	if merged == nil {
		merged = map[string][]string{}
	}
	maps.Copy(merged, headers)
	available := time.Now().Add(delay)

	ctx, cancel := context.WithTimeout(context.Background(), answerTimeout)
	defer cancel()
	d := j.drv
	if j.AutoAck {
		// The row left the database when the job was claimed: requeue means pushing it again.
		err := d.conn.Store.Insert(ctx, store.NewJob{
			JobID: j.JobID, Queue: d.cfg.Queue, Name: j.Name, Payload: j.Payload, Headers: merged,
			Priority: j.Job.Priority, AvailableAt: available, AutoAck: true,
		})
		if err != nil {
			return fmt.Errorf("requeue job %s: %w", j.JobID, err)
		}
	} else {
		ok, err := d.conn.Store.Requeue(ctx, j.Fence, merged, available, lastError)
		if err != nil {
			return fmt.Errorf("requeue job %s: %w", j.JobID, err)
		}
		if !ok {
			return fmt.Errorf("requeue job %s: %w", j.JobID, errLostClaim)
		}
	}
	d.wakeAt(available)
	return nil
}

func (j *Job) fail(reason string) error {
	if !j.answer() || j.AutoAck {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), answerTimeout)
	defer cancel()
	ok, err := j.drv.conn.Store.Fail(ctx, j.Fence, reason, time.Now())
	if err != nil {
		return fmt.Errorf("move job %s to failed jobs: %w", j.JobID, err)
	}
	if !ok {
		return fmt.Errorf("move job %s to failed jobs: %w", j.JobID, errLostClaim)
	}
	j.drv.metrics.countFailed(j.drv.cfg.Name)
	return nil
}
