package driver

import (
	"context"
	"sync"
	"time"

	"github.com/rr-sql/sqljobs/store"
	"go.uber.org/zap"
)

// The dashboard's history: the jobs pushed, processed and failed here are counted in memory per
// minute and written once a minute (one upsert per pipeline and node, whatever the rate), with the
// queue's depth; what is left is written when the pipeline stops. Counts lost in a crash are a
// minute's at most, and only the chart's: the jobs themselves are in the database.

// historyPruneEvery is how often each pipeline of a node deletes the minutes past the retention
// (of every pipeline: one call finds nothing left by another; through an index on the minute).
const historyPruneEvery = time.Hour

type minuteCounts struct{ pushed, processed, failed int64 }

type history struct {
	mu      sync.Mutex
	minutes map[int64]*minuteCounts // minute start, unix ms (this node's clock) → counts
	stop    chan struct{}
	done    chan struct{}
}

func newHistory() *history {
	return &history{minutes: map[int64]*minuteCounts{}, stop: make(chan struct{}), done: make(chan struct{})}
}

func (h *history) add(pushed, processed, failed int64) {
	m := time.Now().Truncate(time.Minute).UnixMilli()
	h.mu.Lock()
	c := h.minutes[m]
	if c == nil {
		c = &minuteCounts{}
		h.minutes[m] = c
	}
	c.pushed += pushed
	c.processed += processed
	c.failed += failed
	h.mu.Unlock()
}

// take removes and returns the minutes before until (all with a zero until).
func (h *history) take(until time.Time) map[int64]*minuteCounts {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[int64]*minuteCounts{}
	for m, c := range h.minutes {
		if until.IsZero() || m < until.UnixMilli() {
			out[m] = c
			delete(h.minutes, m)
		}
	}
	return out
}

func (d *Driver) countPushed(n int64) { d.hist.add(n, 0, 0) }
func (d *Driver) countProcessed()     { d.hist.add(0, 1, 0) }
func (d *Driver) countFailed()        { d.hist.add(0, 0, 1) }

// recordHistory writes the minutes just ended, a little after each minute starts, until the
// pipeline stops; then what is left.
func (d *Driver) recordHistory() {
	defer close(d.hist.done)
	lastPrune := time.Time{}
	for {
		now := time.Now()
		next := now.Truncate(time.Minute).Add(time.Minute + 2*time.Second)
		select {
		case <-d.hist.stop:
			return
		case <-time.After(next.Sub(now)):
		}
		minute := time.Now().Truncate(time.Minute)
		d.writeHistory(minute, minute.Add(-time.Minute))
		if d.env.HistoryRetention > 0 && time.Since(lastPrune) >= historyPruneEvery {
			lastPrune = time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), answerTimeout)
			if _, err := d.conn.Store.PruneHistory(ctx, d.env.HistoryRetention); err != nil {
				d.log.Warn("prune the dashboard's history", zap.Error(err))
			}
			cancel()
		}
	}
}

// writeHistory writes the counted minutes before until (all with a zero until), and always a row
// for the minute last (when not zero), so the depth is charted while nothing moves.
func (d *Driver) writeHistory(until, last time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), answerTimeout)
	defer cancel()
	taken := d.hist.take(until)
	if !last.IsZero() {
		if _, ok := taken[last.UnixMilli()]; !ok {
			taken[last.UnixMilli()] = &minuteCounts{}
		}
	}
	if len(taken) == 0 {
		return
	}
	var depth int64
	if c, err := d.conn.Store.Counts(ctx, d.cfg.Queue); err == nil {
		depth = c.Ready + c.Delayed + c.Reserved
	}
	rows := make([]store.HistoryMinute, 0, len(taken))
	for m, c := range taken {
		rows = append(rows, store.HistoryMinute{Pipeline: d.cfg.Name, Minute: time.UnixMilli(m),
			Pushed: c.pushed, Processed: c.processed, Failed: c.failed, Depth: depth})
	}
	if err := d.conn.Store.AddHistory(ctx, d.conn.Node(), rows); err != nil {
		d.log.Warn("write the dashboard's history (these minutes' counts are lost; the jobs are not)", zap.Error(err))
	}
}

// stopHistory ends the minute loop and writes what is left.
func (d *Driver) stopHistory() {
	select {
	case <-d.hist.stop:
		return
	default:
	}
	close(d.hist.stop)
	<-d.hist.done
	d.writeHistory(time.Time{}, time.Time{})
}
