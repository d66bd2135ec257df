package driver

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/roadrunner-server/api/v4/plugins/v4/jobs"
	priorityqueue "github.com/roadrunner-server/priority_queue"
	"github.com/rr-sql/sqljobs/config"
	"github.com/rr-sql/sqljobs/store"
)

func jobsOf(n int, priority func(i int) int64) []store.Job {
	out := make([]store.Job, n)
	for i := range out {
		out[i] = store.Job{Fence: store.Fence{Row: int64(i + 1), Token: 7}, JobID: fmt.Sprint("j", i), Priority: priority(i)}
	}
	return out
}

// TestLedgerTransitions walks a claim through every path of its life and checks what prefetch
// and Stop see at each step.
func TestLedgerTransitions(t *testing.T) {
	var freed []int
	l := newLedger(func(n int) { freed = append(freed, n) })
	cs := l.add(jobsOf(4, func(int) int64 { return 0 }), "n1")
	acked, nacked, takenBack, lost := cs[0], cs[1], cs[2], cs[3]
	if l.pending() != 4 || len(l.fences()) != 4 {
		t.Fatalf("after the claim: %d pending, %d held", l.pending(), len(l.fences()))
	}
	// A claim not delivered cannot be answered; a delivered one cannot be taken back.
	if l.answer(acked) || !l.deliver(acked) || l.withdraw(acked) || l.deliver(acked) {
		t.Fatal("the transitions out of claimed and delivered are not exclusive")
	}
	if !l.answer(acked) || l.answer(acked) || l.pending() != 3 {
		t.Fatalf("an answer must count once and free its prefetch slot: pending %d", l.pending())
	}
	if len(l.fences()) != 4 {
		t.Fatal("an answered claim stops being held before its statement is done")
	}
	if !l.settle(acked) || l.settle(acked) || len(l.fences()) != 3 {
		t.Fatal("settle")
	}
	l.deliver(nacked)
	l.answer(nacked)
	if !l.withdraw(takenBack) || l.deliver(takenBack) {
		t.Fatal("a job taken back was delivered")
	}
	if l.lose(nacked) || !l.lose(lost) || l.deliver(lost) {
		t.Fatal("lose applies to claims no worker has, and only to them")
	}
	done := false
	l.onEmpty(func() { done = true })
	l.settle(nacked)
	if done {
		t.Fatal("onEmpty ran with a claim still held")
	}
	l.settle(takenBack)
	if !done || l.pending() != 0 || len(l.fences()) != 0 {
		t.Fatalf("after every claim settled: onEmpty ran %v, %d pending, %d held", done, l.pending(), len(l.fences()))
	}
	if fmt.Sprint(freed) != "[3 2 1 0]" {
		t.Fatalf("prefetch slots freed at %v, want one per answer or take-back or loss", freed)
	}
}

// TestLedgerRacesHaveOneWinner: a worker's answer and Pause taking the job back, many times at
// once: each claim ends one way, and the counts add up.
func TestLedgerRacesHaveOneWinner(t *testing.T) {
	const n = 2000
	l := newLedger(nil)
	cs := l.add(jobsOf(n, func(int) int64 { return 0 }), "n1")
	var delivered, withdrawn atomic.Int64
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if l.deliver(c) && l.answer(c) {
				delivered.Add(1)
				l.settle(c)
			}
		}()
		go func() {
			defer wg.Done()
			if l.withdraw(c) {
				withdrawn.Add(1)
				l.settle(c)
			}
		}()
	}
	wg.Wait()
	if delivered.Load()+withdrawn.Load() != n || l.pending() != 0 || len(l.fences()) != 0 {
		t.Fatalf("%d delivered + %d withdrawn of %d; %d pending, %d held", delivered.Load(), withdrawn.Load(), n, l.pending(), len(l.fences()))
	}
}

// TestFeederKeepsClaimOrderInRoadRunnersQueue: RoadRunner's own priority queue serves the
// pipeline's jobs in claim order (priority, then first in, first out), two in the queue at a
// time, while a job of another driver with a better priority goes first.
func TestFeederKeepsClaimOrderInRoadRunnersQueue(t *testing.T) {
	pq := priorityqueue.NewBinHeap[jobs.Job](1000) // as RoadRunner's jobs plugin makes it
	d := &Driver{cfg: &config.Pipeline{Name: "p"}, feed: &feeder{pq: pq, pipeline: "p"}}
	d.claims = newLedger(nil)
	var js []*Job
	for _, c := range d.claims.add(jobsOf(20, func(i int) int64 { return int64(5 + i%2) }), "n1") {
		js = append(js, &Job{c: c, d: d})
	}
	d.feed.add(js[:10])
	d.feed.start()
	d.feed.add(js[10:])
	if pq.Len() != inQueue {
		t.Fatalf("%d jobs of the pipeline in RoadRunner's queue, want %d", pq.Len(), inQueue)
	}
	pq.Insert(&otherDriverJob{id: "urgent", priority: 1})
	var order []string
	for range 21 {
		it := pq.ExtractMin()
		order = append(order, it.ID())
		if j, ok := it.(*Job); ok {
			d.feed.taken(j) // what Context() does first, as RoadRunner asks for it
		}
	}
	want := []string{"urgent"}
	for _, prio := range []int{5, 6} {
		for i := prio - 5; i < 20; i += 2 {
			want = append(want, fmt.Sprint("j", i))
		}
	}
	if fmt.Sprint(order) != fmt.Sprint(want) {
		t.Fatalf("RoadRunner's queue served %v\nwant %v", order, want)
	}
}

// otherDriverJob is a job another driver put in RoadRunner's queue.
type otherDriverJob struct {
	jobs.Job // its answers are not called here
	id       string
	priority int64
}

func (o *otherDriverJob) ID() string      { return o.id }
func (o *otherDriverJob) Priority() int64 { return o.priority }
func (o *otherDriverJob) GroupID() string { return "memory-pipeline" }

// TestClaimsUnderAnOldNodeIDAreLost: once the node is declared dead, the claims made under its
// old id that no worker has are dropped, the ones made under the new id are kept, and a delivered
// one finishes.
func TestClaimsUnderAnOldNodeIDAreLost(t *testing.T) {
	l := newLedger(nil)
	old := l.add(jobsOf(3, func(int) int64 { return 0 }), "old")
	fresh := l.add(jobsOf(2, func(int) int64 { return 0 }), "new")
	if !l.deliver(old[0]) {
		t.Fatal("deliver")
	}
	if n := l.loseClaimed("new"); n != 2 {
		t.Fatalf("%d claims lost, want the 2 undelivered ones of the old id", n)
	}
	if !l.is(old[0], delivered) || !l.is(old[1], settled) || !l.is(fresh[0], claimed) || !l.is(fresh[1], claimed) {
		t.Fatal("only the old id's undelivered claims may be lost")
	}
}
