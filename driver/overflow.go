package driver

import (
	"context"
	"maps"
	"sync/atomic"
	"time"

	"github.com/rr-sql/sqljobs/store"
	"go.uber.org/zap"
)

// overflow is a group_by pipeline's overflow routing (config.Overflow): every interval each node
// learns which groups overflow (so its pushes of those go to the target), and the one node whose
// turn it is (a lease in the database) moves the waiting jobs of groups over the limit.
type overflow struct {
	routes atomic.Pointer[map[string]string] // group → target queue
	stop   context.CancelFunc
	done   chan struct{}
	// misconfigured is the last complaint about the target, logged once until it changes.
	misconfigured string
}

// startOverflow runs the routing until stopOverflow.
func (d *Driver) startOverflow() {
	if d.cfg.Overflow == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.over = &overflow{stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(d.over.done)
		t := time.NewTicker(d.cfg.Overflow.Interval)
		defer t.Stop()
		for {
			d.checkOverflow(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

func (d *Driver) stopOverflow() {
	if d.over != nil {
		d.over.stop()
		<-d.over.done
	}
}

// checkOverflow is one round of the routing.
func (d *Driver) checkOverflow(ctx context.Context) {
	o := d.cfg.Overflow
	target, ok := d.env.Pipeline(o.To)
	complaint := ""
	switch {
	case !ok:
		complaint = "overflow: the target pipeline is not running here (it must be an sql pipeline on the same connection); no group moves meanwhile"
	case target.conn != d.conn:
		complaint = "overflow: the target pipeline uses another connection; jobs move only within one database"
	}
	if complaint != d.over.misconfigured {
		d.over.misconfigured = complaint
		if complaint != "" {
			d.log.Error(complaint, zap.String("to", o.To))
		}
	}
	if complaint != "" {
		return
	}
	st := d.conn.Store
	routes, err := st.OverflowGroups(ctx, d.cfg.Queue)
	if err != nil {
		if ctx.Err() == nil {
			d.log.Error("overflow: read the groups in overflow", zap.Error(err))
		}
		return
	}
	d.over.routes.Store(&routes)
	if turn, err := st.OverflowTurn(ctx, d.cfg.Queue, o.Interval); err != nil || !turn {
		if err != nil && ctx.Err() == nil {
			d.log.Error("overflow: take the turn", zap.Error(err))
		}
		return
	}
	moves, err := st.Overflow(ctx, store.OverflowRequest{Queue: d.cfg.Queue, Target: target.cfg.Queue, ReadyOver: o.ReadyOver})
	if len(moves) > 0 {
		// The published map is read by pushes: the moved groups go into a copy.
		next := maps.Clone(routes)
		if next == nil {
			next = map[string]string{}
		}
		for _, m := range moves {
			d.log.Info("overflow: a group's waiting jobs moved to the overflow pipeline", zap.String("group", m.Group), zap.Int64("jobs", m.Jobs),
				zap.Int("ready_over", o.ReadyOver), zap.String("to", o.To))
			d.env.Metrics.countOverflow(d.cfg.Name, m.Jobs)
			next[m.Group] = target.cfg.Queue
		}
		d.over.routes.Store(&next)
		target.nudge()
	}
	if err != nil && ctx.Err() == nil {
		d.log.Error("overflow: move jobs", zap.Error(err))
	}
}

// routed is where a push of a group goes: the overflow target while the group overflows.
func (d *Driver) routed(group string) (queue string, target *Driver) {
	if d.over == nil {
		return d.cfg.Queue, nil
	}
	if routes := d.over.routes.Load(); routes != nil {
		if q, ok := (*routes)[group]; ok {
			if t, ok := d.env.Pipeline(d.cfg.Overflow.To); ok && t.cfg.Queue == q {
				return q, t
			}
		}
	}
	return d.cfg.Queue, nil
}
