// Package schedule runs the `sql.schedules` entries: every node runs every schedule, and each
// tick is pushed by whichever node's transaction advances the schedule's row in the database
// first (store.Tick), so a tick is pushed once however many nodes run and whichever of them die;
// there is no leader to elect or lose.
package schedule

import (
	"context"
	"sync"
	"time"

	"github.com/rr-sql/sqljobs/config"
	"github.com/rr-sql/sqljobs/driver"
	"go.uber.org/zap"
)

// onTime is how late a tick found at start (or after a gap) may be and still count as due now
// rather than missed: a node starting while the others push the current tick must not skip it.
const onTime = 2 * time.Second

// tickTimeout bounds one tick's transaction.
const tickTimeout = 30 * time.Second

// Lookup finds a live sql pipeline of this node by name.
type Lookup func(pipeline string) (*driver.Driver, bool)

// Scheduler runs the schedules of one rr.
type Scheduler struct {
	list   []*config.Schedule
	lookup Lookup
	log    *zap.Logger
	now    func() time.Time

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New prepares the schedules; Start runs them.
func New(list []*config.Schedule, lookup Lookup, log *zap.Logger) *Scheduler {
	return &Scheduler{list: list, lookup: lookup, log: log, now: time.Now}
}

// Start runs one loop per schedule until Stop.
func (s *Scheduler) Start() {
	if len(s.list) == 0 {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	for _, sc := range s.list {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.run(ctx, sc)
		}()
	}
}

// Stop ends the loops and waits for them (a tick in flight is rolled back).
func (s *Scheduler) Stop() {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
}

// retry is how often a schedule whose missed ticks are not settled yet (its pipeline is not
// there yet, or the database failed) tries again, between its ticks.
const retry = time.Second

// run is one schedule's loop: wait for the next tick, push it. Before the first tick on a found
// pipeline, and again after any gap (the pipeline was missing, a tick failed), the ticks missed
// meanwhile are settled by the schedule's `missed` policy; until then the loop retries every
// second, so a pipeline declared after start is caught up at once, not at the next tick.
func (s *Scheduler) run(ctx context.Context, sc *config.Schedule) {
	log := s.log.With(zap.String("schedule", sc.Name), zap.String("pipeline", sc.Pipeline))
	var (
		due      time.Time // the next tick (zero at start)
		caughtUp bool      // missed ticks settled since the last gap
		warned   bool
	)
	for {
		now := s.now()
		fire := !due.IsZero() && !now.Before(due)
		if d, ok := s.lookup(sc.Pipeline); !ok {
			if !warned {
				log.Warn("the schedule's pipeline is not an sql pipeline of this node (yet): its ticks wait until it is declared")
				warned = true
			}
			caughtUp = false
		} else {
			warned = false
			if !caughtUp {
				horizon := now
				if fire {
					horizon = due.Add(-time.Millisecond) // the ticks before the due one
				}
				if err := s.catchUp(ctx, d, sc, horizon); err != nil {
					if ctx.Err() == nil {
						log.Error("settle missed ticks", zap.Error(err))
					}
				} else {
					caughtUp = true
				}
			}
			if fire && caughtUp {
				if _, err := s.tick(ctx, d, sc, due, true); err != nil {
					if ctx.Err() == nil {
						log.Error("push tick", zap.Time("tick", due), zap.Error(err))
					}
					caughtUp = false
				}
			}
		}
		if fire || due.IsZero() {
			from := now
			if from.Before(due) {
				from = due
			}
			due = sc.Next(from)
		}
		wait := time.Until(due)
		if !caughtUp && wait > retry {
			wait = retry
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
	}
}

// catchUp settles the ticks up to horizon that no node pushed: a schedule seen for the first time
// starts from now; otherwise, if the last tick pushed is before the latest due one, `once`
// pushes that latest tick alone and `skip` only moves the schedule to it. A latest tick less than
// onTime old is due now, not missed, and is pushed either way.
func (s *Scheduler) catchUp(ctx context.Context, d *driver.Driver, sc *config.Schedule, horizon time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, tickTimeout)
	defer cancel()
	ticks, err := d.Conn().Store.ScheduleTicks(ctx)
	if err != nil {
		return err
	}
	latest, found := Latest(sc, horizon)
	last, known := ticks[sc.Name]
	switch {
	case !known:
		at := horizon
		if found {
			at = latest
		}
		_, err = s.tick(ctx, d, sc, at, false)
	case found && last < latest.UnixMilli():
		push := sc.Missed == config.MissedOnce || horizon.Sub(latest) < onTime
		var pushed bool
		pushed, err = s.tick(ctx, d, sc, latest, push)
		if pushed && push && horizon.Sub(latest) >= onTime {
			s.log.Info("pushed the latest tick missed while no node ran the schedule", zap.String("schedule", sc.Name),
				zap.Time("tick", latest), zap.Time("previous", time.UnixMilli(last)))
		}
	}
	return err
}

func (s *Scheduler) tick(ctx context.Context, d *driver.Driver, sc *config.Schedule, at time.Time, push bool) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, tickTimeout)
	defer cancel()
	ok, err := d.Tick(ctx, driver.Scheduled{Schedule: sc.Name, Tick: at, Push: push, Job: sc.Job, Payload: []byte(sc.Payload), Headers: sc.Headers})
	if ok && push {
		s.log.Debug("schedule tick pushed", zap.String("schedule", sc.Name), zap.Time("tick", at))
	}
	return ok, err
}

// maxLookBack bounds the search for the latest due tick (about four years: a yearly schedule
// still finds its last tick).
const maxLookBack = 1 << 27 * time.Second

// Latest is the schedule's latest tick at or before t; false if there is none within about four
// years. The parser only goes forward: look for the first tick after t minus a window that
// doubles until one lies at or before t, then walk forward to the last one.
func Latest(sc *config.Schedule, t time.Time) (time.Time, bool) {
	for window := time.Second; window <= maxLookBack; window *= 2 {
		first := sc.Next(t.Add(-window))
		if first.IsZero() || first.After(t) {
			continue
		}
		for {
			next := sc.Next(first)
			if next.IsZero() || next.After(t) {
				return first, true
			}
			first = next
		}
	}
	return time.Time{}, false
}

// Info is a schedule as the sql.Schedules RPC shows it.
type Info struct {
	*config.Schedule
	// NextTick is the next tick after now; LastTick the last one pushed (zero: none known, or the
	// pipeline is not on this node).
	NextTick, LastTick time.Time
}

// List reports the schedules in name order, with their last ticks from the database.
func (s *Scheduler) List(ctx context.Context) ([]Info, error) {
	out := make([]Info, 0, len(s.list))
	now := s.now()
	read := map[*driver.Driver]map[string]int64{}
	for _, sc := range s.list {
		info := Info{Schedule: sc, NextTick: sc.Next(now)}
		if d, ok := s.lookup(sc.Pipeline); ok {
			ticks, seen := read[d]
			if !seen {
				var err error
				if ticks, err = d.Conn().Store.ScheduleTicks(ctx); err != nil {
					return nil, err
				}
				read[d] = ticks
			}
			if at, ok := ticks[sc.Name]; ok {
				info.LastTick = time.UnixMilli(at)
			}
		}
		out = append(out, info)
	}
	return out, nil
}
