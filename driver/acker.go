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

// acker deletes acknowledged jobs in batches: one goroutine takes everything that piled up while
// the previous batch ran, so batches grow with the load and an idle ack waits for no timer.
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
	select { // under mu: close cannot close kick in between
	case a.kick <- struct{}{}:
	default:
	}
	a.mu.Unlock()
}

func (a *acker) run() {
	defer close(a.done)
	for {
		_, more := <-a.kick
		for {
			a.mu.Lock()
			batch := a.pending
			if len(batch) > maxAckBatch {
				batch, a.pending = batch[:maxAckBatch], batch[maxAckBatch:]
			} else {
				a.pending = nil
			}
			a.mu.Unlock()
			if len(batch) == 0 {
				break
			}
			a.flush(batch)
		}
		if !more {
			return
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
