package driver

import (
	"cmp"
	"container/heap"
	"slices"
	"sync"

	"github.com/roadrunner-server/api/v4/plugins/v4/jobs"
)

// feeder hands a pipeline's claimed jobs to RoadRunner's queue two at a time, in claim order.
//
// RoadRunner's queue is one binary heap on Priority() for every driver of the rr: it orders jobs
// of different priorities, but it does not keep the order of equal ones. Taking the root out
// moves the last item to the top, where it stays if its priority is the same: of three equal
// jobs the third inserted leaves second. Of two it keeps the order. With at most two jobs of the
// pipeline in it, the pipeline's jobs leave in the order the database gave them (priority, then
// first in, first out), while each competes with the jobs of other drivers by its real priority.
// The next job goes in as soon as RoadRunner takes one out (it asks for its Context() right
// away); the second one keeps the pipeline present in the queue meanwhile.
type feeder struct {
	pq       jobs.Queue
	pipeline string

	mu      sync.Mutex
	waiting claimQueue // claimed, not yet in RoadRunner's queue
	queued  []*Job     // in RoadRunner's queue, not taken out yet (at most inQueue)
	open    bool       // the pipeline consumes
}

// inQueue is how many of the pipeline's jobs RoadRunner's queue holds at once (see feeder).
const inQueue = 2

// add queues freshly claimed jobs.
func (f *feeder) add(js []*Job) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, j := range js {
		heap.Push(&f.waiting, j)
	}
	f.next()
}

// taken is called when RoadRunner takes j out of its queue: the next job may go in.
func (f *feeder) taken(j *Job) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if i := slices.Index(f.queued, j); i >= 0 {
		f.queued = slices.Delete(f.queued, i, i+1)
		f.next()
	}
}

// start lets jobs into RoadRunner's queue.
func (f *feeder) start() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.open = true
	f.next()
}

// stop keeps jobs out of RoadRunner's queue and takes back those no worker has: the waiting ones
// and the one in the queue. A job RoadRunner took out a moment ago is on its way to a worker and
// stays there.
func (f *feeder) stop() []*Job {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.open = false
	return f.takeAll()
}

// drain takes back every job no worker has and goes on feeding what comes next (the claims were
// lost: the jobs belong to other nodes now).
func (f *feeder) drain() []*Job {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.takeAll()
}

func (f *feeder) takeAll() []*Job {
	out := make([]*Job, 0, len(f.waiting.jobs)+1)
	for _, it := range f.pq.Remove(f.pipeline) {
		if j, ok := it.(*Job); ok {
			out = append(out, j)
		}
	}
	f.queued = f.queued[:0]
	out = append(out, f.waiting.jobs...)
	f.waiting.jobs = f.waiting.jobs[:0]
	return out
}

// next tops the pipeline's jobs in RoadRunner's queue up to inQueue.
func (f *feeder) next() {
	for f.open && len(f.queued) < inQueue && len(f.waiting.jobs) > 0 {
		j := heap.Pop(&f.waiting).(*Job)
		f.queued = append(f.queued, j)
		f.pq.Insert(j)
	}
}

// claimQueue is a min-heap in the claims' order: priority, due time, insertion; or, for a
// group_by pipeline (fair), the order the claims gave (each batch is round robin across groups).
type claimQueue struct {
	jobs []*Job
	fair bool
}

func (h claimQueue) Len() int { return len(h.jobs) }
func (h claimQueue) Less(a, b int) bool {
	x, y := h.jobs[a].c, h.jobs[b].c
	if h.fair {
		return x.seq < y.seq
	}
	return cmp.Or(cmp.Compare(x.Priority, y.Priority), cmp.Compare(x.AvailableAt, y.AvailableAt), cmp.Compare(x.Row, y.Row)) < 0
}
func (h claimQueue) Swap(a, b int) { h.jobs[a], h.jobs[b] = h.jobs[b], h.jobs[a] }
func (h *claimQueue) Push(x any)   { h.jobs = append(h.jobs, x.(*Job)) }
func (h *claimQueue) Pop() any {
	old := h.jobs
	j := old[len(old)-1]
	old[len(old)-1] = nil
	h.jobs = old[:len(old)-1]
	return j
}
