package driver

import (
	"context"
	"sync"
	"time"

	"github.com/rr-sql/sqljobs/store"
	"go.uber.org/zap"
)

// maxAckBatch bounds one delete transaction.
const maxAckBatch = 512

// ackLinger is how long the first ack of a batch waits for others. Each batch is one commit, and a
// durable commit is one fsync: without the wait a busy pipeline commits every few acks. An acked
// job is done; deleting its row a moment later only widens the window in which a crash would
// deliver it again (at-least-once allows that).
const ackLinger = 5 * time.Millisecond

// acker deletes acknowledged jobs in batches: one goroutine gathers the acks of ackLinger (or a
// full batch) and everything that piled up while the previous batch ran, so batches grow with the
// load.
type acker struct {
	st      store.Store
	log     *zap.Logger
	observe func(time.Duration)

	mu      sync.Mutex
	pending []store.Fence
	closed  bool
	kick    chan struct{}
	done    chan struct{}
}

func newAcker(st store.Store, log *zap.Logger, observe func(time.Duration)) *acker {
	a := &acker{st: st, log: log, observe: observe, kick: make(chan struct{}, 1), done: make(chan struct{})}
	go a.run()
	return a
}

// add queues one delete. After close, the delete runs at once so late answers still land.
func (a *acker) add(f store.Fence) {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		a.flush([]store.Fence{f})
		return
	}
	a.pending = append(a.pending, f)
	// Only the first ack of a batch and a full batch wake the goroutine: waking it for every ack
	// costs a goroutine switch per job on a busy pipeline.
	if n := len(a.pending); n == 1 || n == maxAckBatch {
		select { // under mu: close cannot close kick in between
		case a.kick <- struct{}{}:
		default:
		}
	}
	a.mu.Unlock()
}

func (a *acker) run() {
	defer close(a.done)
	open := true
	for open {
		_, open = <-a.kick
		// Each batch gathers for ackLinger or until full; acks that arrive while a batch is being
		// deleted start the next one.
		for open {
			open = a.gather()
			batch := a.take()
			if len(batch) == 0 {
				break
			}
			a.flush(batch)
		}
	}
	for batch := a.take(); len(batch) > 0; batch = a.take() { // closing: everything left, at once
		a.flush(batch)
	}
}

// take removes up to maxAckBatch pending acks.
func (a *acker) take() []store.Fence {
	a.mu.Lock()
	defer a.mu.Unlock()
	batch := a.pending
	if len(batch) > maxAckBatch {
		batch, a.pending = batch[:maxAckBatch], batch[maxAckBatch:]
	} else {
		a.pending = nil
	}
	return batch
}

// gather waits up to ackLinger for a full batch. It returns false once the acker is closing.
func (a *acker) gather() bool {
	linger := time.NewTimer(ackLinger)
	defer linger.Stop()
	for {
		a.mu.Lock()
		n := len(a.pending)
		a.mu.Unlock()
		if n >= maxAckBatch {
			return true
		}
		select {
		case <-linger.C:
			return true
		case _, open := <-a.kick:
			if !open {
				return false
			}
		}
	}
}

func (a *acker) flush(batch []store.Fence) {
	ctx, cancel := context.WithTimeout(context.Background(), answerTimeout)
	defer cancel()
	start := time.Now()
	n, err := a.st.Ack(ctx, batch)
	if err != nil {
		// The jobs stay reserved by this node and are redelivered once it is gone: at-least-once.
		a.log.Error("ack batch failed; the jobs will be redelivered", zap.Int("jobs", len(batch)), zap.Error(err))
		return
	}
	if n < int64(len(batch)) {
		a.log.Debug("some acks found their job already recovered elsewhere", zap.Int("batch", len(batch)), zap.Int64("deleted", n))
	}
	a.observe(time.Since(start))
}

// close flushes what is pending and stops the goroutine.
func (a *acker) close() {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return
	}
	a.closed = true
	close(a.kick)
	a.mu.Unlock()
	<-a.done
}
