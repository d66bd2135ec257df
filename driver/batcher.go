package driver

import (
	"context"
	"sync"
	"time"

	"github.com/rr-sql/sqljobs/store"
	"go.uber.org/zap"
)

// maxBatch bounds one write transaction.
const maxBatch = 512

// batchLinger is how long the first entry of a batch waits for others. Each batch is one commit,
// on PostgreSQL and MySQL a flushed one (SQLite commits answers without a flush of their own, see
// store.sqliteUnflushed): without the wait a busy pipeline commits every few acks. An
// acked job is done; deleting its row a moment later only widens the window in which a crash
// would deliver it again (at-least-once allows that).
const batchLinger = 5 * time.Millisecond

// batcher writes a pipeline's acks and delivery marks in batches: one goroutine gathers what
// arrives within batchLinger (or a full batch) plus what piled up while the previous batch was
// written, so batches grow with the load.
//
// A mark is written only if its job is still at the worker when the batch goes out: a job
// answered within a few milliseconds (most are) costs its delete alone.
//
// A batch that fails is written again, with backoff, for as long as its claims are held (their
// fences make a late write safe): a short database outage does not send acked jobs around again.
type batcher struct {
	st  store.Store
	log *zap.Logger
	// stillDelivered tells whether a marked job is still at its worker, unanswered.
	stillDelivered func(*claim) bool
	// settle ends an acked claim once its delete committed (or was given up).
	settle  func(*claim)
	observe func(time.Duration)
	// freeUniqueKeys: the marks of jobs pushed with a unique key free it (unique_while: waiting).
	freeUniqueKeys bool

	mu      sync.Mutex
	acks    []*claim
	marks   []*claim
	closed  bool
	kick    chan struct{}
	done    chan struct{}
	closing context.Context // set by close: how long a failing batch is still retried
}

func newBatcher(st store.Store, log *zap.Logger, freeUniqueKeys bool, stillDelivered func(*claim) bool, settle func(*claim), observe func(time.Duration)) *batcher {
	b := &batcher{st: st, log: log, freeUniqueKeys: freeUniqueKeys, stillDelivered: stillDelivered, settle: settle, observe: observe,
		kick: make(chan struct{}, 1), done: make(chan struct{}), closing: context.Background()}
	go b.run()
	return b
}

// ack queues the delete of an answered job.
func (b *batcher) ack(c *claim) { b.add(c, true) }

// delivered queues the mark of a job that reached a worker.
func (b *batcher) delivered(c *claim) { b.add(c, false) }

// add queues one entry. After close, the entry is written at once so late answers still land.
func (b *batcher) add(c *claim, ack bool) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		if ack {
			b.write([]*claim{c}, nil)
		}
		return
	}
	if ack {
		b.acks = append(b.acks, c)
	} else {
		b.marks = append(b.marks, c)
	}
	// Only the first entry of a batch and a full batch wake the goroutine: waking it for every ack
	// costs a goroutine switch per job on a busy pipeline.
	if n := len(b.acks) + len(b.marks); n == 1 || n == maxBatch {
		select { // under mu: close cannot close kick in between
		case b.kick <- struct{}{}:
		default:
		}
	}
	b.mu.Unlock()
}

func (b *batcher) run() {
	defer close(b.done)
	open := true
	for open {
		_, open = <-b.kick
		// Each batch gathers for batchLinger or until full; what arrives while a batch is being
		// written starts the next one.
		for open {
			open = b.gather()
			acks, marks := b.take()
			if len(acks)+len(marks) == 0 {
				break
			}
			b.write(acks, marks)
		}
	}
	for acks, marks := b.take(); len(acks)+len(marks) > 0; acks, marks = b.take() { // closing: the rest, at once
		b.write(acks, marks)
	}
}

// take removes up to maxBatch pending entries, acks first.
func (b *batcher) take() (acks, marks []*claim) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := min(len(b.acks), maxBatch)
	acks, b.acks = b.acks[:n:n], b.acks[n:]
	m := min(len(b.marks), maxBatch-n)
	marks, b.marks = b.marks[:m:m], b.marks[m:]
	return acks, marks
}

// gather waits up to batchLinger for a full batch. It returns false once the batcher is closing.
func (b *batcher) gather() bool {
	linger := time.NewTimer(batchLinger)
	defer linger.Stop()
	for {
		b.mu.Lock()
		n := len(b.acks) + len(b.marks)
		b.mu.Unlock()
		if n >= maxBatch {
			return true
		}
		select {
		case <-linger.C:
			return true
		case _, open := <-b.kick:
			if !open {
				return false
			}
		}
	}
}

// write commits one batch, retrying with backoff while it fails and the batcher is not closed
// (once closed, until the deadline given to close), then settles the acked claims.
func (b *batcher) write(acks, marks []*claim) {
	batch := store.Batch{Acks: make([]store.Fence, len(acks))}
	for i, c := range acks {
		batch.Acks[i] = c.Fence
	}
	for _, c := range marks {
		switch {
		case !b.stillDelivered(c):
		case b.freeUniqueKeys && hasUniqueKey(c.Headers):
			batch.DeliveredKeyed = append(batch.DeliveredKeyed, c.Fence)
		default:
			batch.Delivered = append(batch.Delivered, c.Fence)
		}
	}
	for failures := 0; ; failures++ {
		if len(batch.Acks)+len(batch.Delivered)+len(batch.DeliveredKeyed) == 0 {
			break
		}
		ctx, cancel := context.WithTimeout(context.Background(), answerTimeout)
		start := time.Now()
		deleted, err := b.st.Write(ctx, batch)
		cancel()
		if err == nil {
			if deleted < int64(len(batch.Acks)) {
				b.log.Debug("some acks found their job already recovered elsewhere", zap.Int("acks", len(batch.Acks)), zap.Int64("deleted", deleted))
			}
			b.observe(time.Since(start))
			break
		}
		wait := retryDelay(failures + 1)
		if !b.retrying(wait) {
			// The jobs stay reserved by this node until their lease runs out: at-least-once.
			b.log.Error("ack batch failed; its jobs will be delivered again", zap.Int("acks", len(batch.Acks)), zap.Error(err))
			break
		}
		b.log.Warn("ack batch failed; writing it again", zap.Int("acks", len(batch.Acks)), zap.Duration("in", wait), zap.Error(err))
	}
	for _, c := range acks {
		b.settle(c)
	}
}

// retrying waits before the next try of a failed batch; false when it is time to give up (the
// batcher was closed and its deadline passed).
func (b *batcher) retrying(wait time.Duration) bool {
	b.mu.Lock()
	closing := b.closing
	b.mu.Unlock()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return closing.Err() == nil
	case <-closing.Done():
		return false
	}
}

// close writes what is pending (retrying a failing batch until ctx ends) and stops the goroutine.
func (b *batcher) close(ctx context.Context) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.closed = true
	b.closing = ctx
	close(b.kick)
	b.mu.Unlock()
	<-b.done
}
