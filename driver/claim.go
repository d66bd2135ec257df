package driver

import (
	"context"
	"sync"

	"github.com/rr-sql/sqljobs/store"
)

// state is where a claimed job is in its life on this node. Every change of state goes through
// ledger.move, under one lock, so of two racing events (a worker's answer and Pause taking the job
// back, say) exactly one wins and the other does nothing:
//
//		claimed ──RoadRunner asks for its Context()──▶ delivered ──the worker's answer──▶ answered
//		   │                                                                                │
//		   ├──withdrawn (Pause, Stop, failed at claim)──▶ answered ──statement done────────▶ settled
//		   │                                                                                ▲
//		   └──lost (another node declared this one dead)────────────────────────────────────┘
//
//	  - claimed: in this node's buffer or RoadRunner's queue; no worker has it.
//	  - delivered: a worker has it (or is about to). Its row is marked so that, should this node
//	    die now, the delivery counts as one without an answer.
//	  - answered: the statement that ends the claim (ack, requeue, fail, release) is on its way.
//	  - settled: that statement committed, or failed and the lease will bring the job back, or the
//	    claim no longer holds. The row is no longer this node's business.
//
// Prefetch bounds the claims not yet answered (claimed and delivered); the heartbeat extends the
// lease of every claim not settled; Stop waits until all are settled.
type state uint8

const (
	claimed state = iota
	delivered
	answered
	settled
)

// claim is one claimed job and its state.
type claim struct {
	store.Job
	// node is the node id the job was claimed under: if this node was declared dead since, the
	// claim is not its own any more (see pipeline.Conn.Node).
	node string
	// seq numbers the claims of a pipeline in the order the database gave them.
	seq   uint64
	state state // guarded by ledger.mu
}

// ledger holds a pipeline's claims and moves them from state to state.
type ledger struct {
	mu         sync.Mutex
	held       map[*claim]struct{} // every claim not settled
	unanswered int                 // claimed or delivered: what prefetch bounds
	claims     uint64              // claims recorded so far (see claim.seq)
	empty      *sync.Cond          // on mu: broadcast when held becomes empty
	// freed is called (outside the lock) when a claim stops counting against prefetch.
	freed func(unanswered int)
	// whenEmpty runs once, the next time held becomes empty (see Driver.Stop).
	whenEmpty func()
}

func newLedger(freed func(unanswered int)) *ledger {
	l := &ledger{held: map[*claim]struct{}{}, freed: freed}
	l.empty = sync.NewCond(&l.mu)
	return l
}

// add records jobs freshly claimed under a node id.
func (l *ledger) add(jobs []store.Job, node string) []*claim {
	out := make([]*claim, len(jobs))
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range jobs {
		l.claims++
		c := &claim{Job: jobs[i], node: node, seq: l.claims, state: claimed}
		l.held[c] = struct{}{}
		out[i] = c
	}
	l.unanswered += len(jobs)
	return out
}

// The transitions. Each returns false, changing nothing, when the claim is not in the state the
// transition starts from.
func (l *ledger) deliver(c *claim) bool  { return l.move(c, claimed, delivered) }
func (l *ledger) answer(c *claim) bool   { return l.move(c, delivered, answered) }
func (l *ledger) withdraw(c *claim) bool { return l.move(c, claimed, answered) }
func (l *ledger) lose(c *claim) bool     { return l.move(c, claimed, settled) }
func (l *ledger) settle(c *claim) bool   { return l.move(c, answered, settled) }

func (l *ledger) move(c *claim, from, to state) bool {
	l.mu.Lock()
	if c.state != from {
		l.mu.Unlock()
		return false
	}
	c.state = to
	freed := from <= delivered && to > delivered
	if freed {
		l.unanswered--
	}
	var then func()
	if to == settled {
		delete(l.held, c)
		if len(l.held) == 0 {
			l.empty.Broadcast()
			then, l.whenEmpty = l.whenEmpty, nil
		}
	}
	unanswered := l.unanswered
	l.mu.Unlock()
	if freed && l.freed != nil {
		l.freed(unanswered)
	}
	if then != nil {
		then()
	}
	return true
}

// loseClaimed settles every claim no worker has that was made under another node id than now's
// (the node was declared dead: they belong to other nodes now) and returns how many.
func (l *ledger) loseClaimed(now string) int {
	l.mu.Lock()
	var lost []*claim
	for c := range l.held {
		if c.state == claimed && c.node != now {
			lost = append(lost, c)
		}
	}
	l.mu.Unlock()
	n := 0
	for _, c := range lost {
		if l.lose(c) {
			n++
		}
	}
	return n
}

// is tells whether a claim is in a state.
func (l *ledger) is(c *claim, s state) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return c.state == s
}

// pending is the number of claims not yet answered (what prefetch bounds).
func (l *ledger) pending() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.unanswered
}

// fences lists the claims not settled, whose leases the heartbeat extends.
func (l *ledger) fences() []store.Fence {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]store.Fence, 0, len(l.held))
	for c := range l.held {
		out = append(out, c.Fence)
	}
	return out
}

// waitSettled waits until every claim is settled, or ctx ends; it returns how many are not.
func (l *ledger) waitSettled(ctx context.Context) int {
	stop := context.AfterFunc(ctx, func() {
		l.mu.Lock()
		l.empty.Broadcast()
		l.mu.Unlock()
	})
	defer stop()
	l.mu.Lock()
	defer l.mu.Unlock()
	for len(l.held) > 0 && ctx.Err() == nil {
		l.empty.Wait()
	}
	return len(l.held)
}

// onEmpty runs fn once no claim is held: now, or when the last one settles.
func (l *ledger) onEmpty(fn func()) {
	l.mu.Lock()
	if len(l.held) > 0 {
		l.whenEmpty = fn
		l.mu.Unlock()
		return
	}
	l.mu.Unlock()
	fn()
}
