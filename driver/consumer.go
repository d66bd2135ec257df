package driver

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/rr-sql/sqljobs/store"
	"go.uber.org/zap"
)

// minPoll is the first idle poll after a claim that found jobs.
const minPoll = 50 * time.Millisecond

// consume claims jobs into the shared queue while the pipeline runs. It claims at most the free
// prefetch, and only once half of it is free: a busy pipeline refills in large batches (each claim
// is a commit) instead of claiming every few answered jobs. It claims again at once after a full
// batch, and otherwise sleeps until nudged (local push, requeue, half the prefetch freed after a
// full batch, delayed job due, another node's push on PostgreSQL) or until the idle poll ends.
// The idle poll adapts: short right after jobs were seen (other nodes are likely pushing), doubling
// up to poll_interval while nothing comes, so an idle queue costs one query per poll_interval.
func (d *Driver) consume(ctx context.Context, done chan struct{}) {
	defer close(done)
	poll := time.NewTimer(d.cfg.PollInterval)
	defer poll.Stop()
	failures := 0
	idleWait := d.cfg.PollInterval

	for {
		if ctx.Err() != nil {
			return
		}
		free := d.cfg.Prefetch - d.claims.pending()
		if free >= d.refillAt() {
			n, err := d.claim(ctx, free)
			switch {
			case err != nil && ctx.Err() == nil:
				failures++
				backoff := retryDelay(failures)
				d.log.Error("claim failed; retrying", zap.Duration("in", backoff), zap.Error(err))
				if !sleepCtx(ctx, backoff) {
					return
				}
				continue
			case err == nil:
				failures = 0
				d.mayHaveMore.Store(n == free)
				if n == free {
					continue // the batch was full: there may be more
				}
				if n > 0 {
					idleWait = min(minPoll, d.cfg.PollInterval)
				} else {
					idleWait = min(idleWait*2, d.cfg.PollInterval)
				}
			}
		}
		if !poll.Stop() {
			select {
			case <-poll.C:
			default:
			}
		}
		poll.Reset(idleWait)
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		case <-poll.C:
		}
	}
}

// refillAt is the free prefetch from which the consumer claims; the ledger nudges it there.
func (d *Driver) refillAt() int { return d.cfg.Prefetch - d.cfg.Prefetch/2 }

// claim reserves up to limit jobs and hands them to the feeder; returns how many it claimed.
// Stopping the consumer does not cancel a claim on its way: the database may commit it while the
// client gives up, and those rows would stay reserved, unknown here, until their lease ran out.
func (d *Driver) claim(ctx context.Context, limit int) (int, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), answerTimeout)
	defer cancel()
	start := time.Now()
	node := d.conn.Node()
	got, err := d.conn.Store.Claim(ctx, store.ClaimRequest{Queue: d.cfg.Queue, Node: node, Limit: limit, Lease: d.cfg.Lease,
		Groups: d.cfg.GroupBy != "", GroupConcurrency: d.cfg.GroupConcurrency})
	d.env.Metrics.observeClaim(d.cfg.Name, time.Since(start))
	if err != nil || len(got) == 0 {
		return 0, err
	}
	claims := d.claims.add(got, node)
	ready := make([]*Job, 0, len(claims))
	for _, c := range claims {
		j := &Job{c: c, d: d}
		if reason := d.undeliverable(c); reason != "" {
			d.claims.withdraw(c)
			if err := j.fail(reason, c.Deliveries); err != nil {
				d.log.Error("move job to failed jobs", zap.String("id", c.JobID), zap.Error(err))
			}
			continue
		}
		ready = append(ready, j)
	}
	d.feed.add(ready)
	return len(got), nil
}

// undeliverable says why a claimed job goes to the failed jobs instead of a worker ("" if not):
// a malformed row (written by hand) must not block the queue, and a job whose deliveries kept
// ending without an answer (its worker or node died) must not loop for ever.
func (d *Driver) undeliverable(c *claim) string {
	switch {
	case c.Unreadable != nil:
		return fmt.Sprintf("the job's row cannot be read: %v", c.Unreadable)
	case c.Failures >= int64(d.cfg.MaxAttempts):
		return fmt.Sprintf("delivered %d times without an answer (the worker or its node died, or lost it); max_attempts is %d",
			c.Failures, d.cfg.MaxAttempts)
	}
	return ""
}

// retryDelay is exponential backoff with jitter, from 100 ms up to 10 s.
func retryDelay(failures int) time.Duration {
	base := 100 * time.Millisecond << min(failures-1, 7)
	base = min(base, 10*time.Second)
	return base/2 + rand.N(base/2+1)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
