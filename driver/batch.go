package driver

import (
	"context"
	"fmt"
	"time"

	"github.com/roadrunner-server/api/v4/plugins/v4/jobs"
	"github.com/rr-sql/sqljobs/store"
)

// Batched is one job of a batch and the pipeline it is pushed to.
type Batched struct {
	To  *Driver
	Msg jobs.Message
}

// PushBatch stores the jobs of a batch in one transaction: all of them or none (a job whose unique
// key is held, by a job of its queue or an earlier one of the batch, is a duplicate: not created). Every job is
// checked and routed exactly as Push does it before anything is written; the pipelines must
// share one connection (one database, one transaction). A job of priority 0 takes its pipeline's
// priority, as RoadRunner's jobs plugin gives it. Each consumer is woken once.
func PushBatch(ctx context.Context, batch []Batched) error {
	if len(batch) == 0 {
		return nil
	}
	first := batch[0].To
	ctx, span := first.env.Tracer.Tracer(tracerName).Start(ctx, "sql_push_batch")
	defer span.End()

	prepared := make([]pending, len(batch))
	rows := make([]store.NewJob, len(batch))
	for i, b := range batch {
		if b.To.conn != first.conn {
			return fmt.Errorf("push batch: job %d (pipeline %s, connection %s) and job 1 (pipeline %s, connection %s) are in different databases: a batch is one transaction on one connection",
				i+1, b.To.cfg.Name, b.To.conn.Name, first.cfg.Name, first.conn.Name)
		}
		if b.Msg.Priority() == 0 {
			// What RoadRunner's jobs plugin does before Push.
			b.Msg.UpdatePriority(b.To.jobsPriority)
		}
		p, err := b.To.prepare(ctx, b.Msg)
		if err != nil {
			return fmt.Errorf("push batch: job %d: %w (no job of the batch was pushed)", i+1, err)
		}
		prepared[i], rows[i] = p, p.job
	}
	created, err := first.conn.Store.InsertBatch(ctx, rows)
	if err != nil {
		return fmt.Errorf("push batch to connection %s: %w (no job of the batch was pushed)", first.conn.Name, err)
	}

	// What Push does per job, once per pipeline: count the jobs, wake each consumer now for its
	// ready jobs and arm its timer for its earliest delayed one.
	type wake struct {
		now      bool
		earliest time.Duration
	}
	pushed := map[*Driver]float64{}
	wakes := map[*Driver]*wake{}
	for i, p := range prepared {
		if !created[i] {
			p.duplicate()
			continue
		}
		pushed[p.from]++
		w := wakes[p.to]
		if w == nil {
			w = &wake{}
			wakes[p.to] = w
		}
		switch {
		case p.job.Delay <= 0:
			w.now = true
		case w.earliest == 0 || p.job.Delay < w.earliest:
			w.earliest = p.job.Delay
		}
	}
	for d, n := range pushed {
		d.env.Metrics.countPushed(d.cfg.Name, "batch", n)
		d.countPushed(int64(n))
	}
	for d, w := range wakes {
		if w.now {
			d.wakeAfter(0)
		}
		if w.earliest > 0 {
			d.wakeAfter(w.earliest)
		}
	}
	return nil
}
