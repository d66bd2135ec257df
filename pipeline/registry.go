// Package pipeline owns the database connections that pipelines share. One Store per named
// connection, opened by its first pipeline and closed by its last (Endure stops pipelines
// concurrently, so only a reference count knows when the handle is free). Each open connection is
// one node: it registers a fresh node id, heartbeats it, and reaps the jobs of dead nodes.
package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rr-sql/sqljobs/config"
	"github.com/rr-sql/sqljobs/store"
	"go.uber.org/zap"
)

// Registry hands out shared connections by name.
type Registry struct {
	cfg *config.Global
	log *zap.Logger

	mu    sync.Mutex
	conns map[string]*Conn
	// restored are the declared pipelines this node is re-creating from the database right now.
	restored map[string]struct{}
}

// NewRegistry makes a registry for the parsed `sql:` section.
func NewRegistry(cfg *config.Global, log *zap.Logger) *Registry {
	return &Registry{cfg: cfg, log: log, conns: map[string]*Conn{}, restored: map[string]struct{}{}}
}

// Conn is an open connection: its store and the node id this process claims jobs under.
type Conn struct {
	Name  string
	Store store.Store
	// node is the id this process claims jobs under (see Node).
	node atomic.Pointer[string]

	reg    *Registry
	cfg    *config.Connection
	refs   int
	stop   context.CancelFunc
	upkeep sync.WaitGroup
	// opened and lastBeat (time since opened, on the monotonic clock) tell how long ago the
	// database last confirmed this node alive (see Alive).
	opened   time.Time
	lastBeat atomic.Int64

	subMu   sync.Mutex
	subs    map[string]map[*func()]struct{} // queue -> wake-up callbacks of the local consumers
	holders map[Holder]struct{}
}

// Holder is a consumer holding claimed jobs whose leases the heartbeat extends.
type Holder interface {
	// Held lists the claims still queued or running here.
	Held() []store.Fence
	Lease() time.Duration
	// ClaimsLost tells the holder that its claims no longer hold: another node declared this one
	// dead (it missed heartbeats: a freeze, a long GC pause, a network cut) and gave its jobs to
	// others. Jobs not yet at a worker must not reach one here.
	ClaimsLost()
}

// Hold makes the heartbeat extend the holder's leases until the returned function is called.
func (c *Conn) Hold(h Holder) (release func()) {
	c.subMu.Lock()
	defer c.subMu.Unlock()
	c.holders[h] = struct{}{}
	return func() {
		c.subMu.Lock()
		defer c.subMu.Unlock()
		delete(c.holders, h)
	}
}

// extendLeases pushes the deadline of every job this node still holds.
func (c *Conn) extendLeases(ctx context.Context) error {
	for _, h := range c.holdersNow() {
		if held := h.Held(); len(held) > 0 {
			if _, err := c.Store.Extend(ctx, held, h.Lease()); err != nil {
				return err
			}
		}
	}
	return nil
}

// holdersNow lists the holders.
func (c *Conn) holdersNow() []Holder {
	c.subMu.Lock()
	defer c.subMu.Unlock()
	out := make([]Holder, 0, len(c.holders))
	for h := range c.holders {
		out = append(out, h)
	}
	return out
}

// Subscribe registers a callback run when another node (or a plain SQL insert) makes a job of the
// queue ready, on databases that notify. It returns the unsubscribe function.
func (c *Conn) Subscribe(queue string, wake func()) (unsubscribe func()) {
	c.subMu.Lock()
	defer c.subMu.Unlock()
	if c.subs[queue] == nil {
		c.subs[queue] = map[*func()]struct{}{}
	}
	key := &wake
	c.subs[queue][key] = struct{}{}
	return func() {
		c.subMu.Lock()
		defer c.subMu.Unlock()
		delete(c.subs[queue], key)
		// A queue nobody listens to any more leaves no entry: pipelines declared and destroyed by
		// the thousand would each leave an empty set behind.
		if len(c.subs[queue]) == 0 {
			delete(c.subs, queue)
		}
	}
}

// notify wakes the consumers of a queue; "" wakes all of them.
func (c *Conn) notify(queue string) {
	c.subMu.Lock()
	defer c.subMu.Unlock()
	for q, fns := range c.subs {
		if queue != "" && q != queue {
			continue
		}
		for fn := range fns {
			(*fn)()
		}
	}
}

// listen keeps a notification channel open while the connection lives, reconnecting with backoff.
func (c *Conn) listen(ctx context.Context) {
	defer c.upkeep.Done()
	delay := 100 * time.Millisecond
	for ctx.Err() == nil {
		start := time.Now()
		err := c.Store.Listen(ctx, c.notify)
		if errors.Is(err, store.ErrNoListen) || ctx.Err() != nil {
			return
		}
		c.reg.log.Warn("notification channel lost; consumers poll until it is back", zap.String("connection", c.Name), zap.Error(err))
		if time.Since(start) > time.Minute {
			delay = 100 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(delay*2, 10*time.Second)
	}
}

// Acquire returns the pipeline's connection, opening it (and migrating its schema) on first use.
func (r *Registry) Acquire(ctx context.Context, p *config.Pipeline) (*Conn, error) {
	cc, err := r.cfg.Resolve(p)
	if err != nil {
		return nil, err
	}
	return r.acquire(ctx, cc)
}

func (r *Registry) acquire(ctx context.Context, cc *config.Connection) (*Conn, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.conns[cc.Name]; ok {
		c.refs++
		return c, nil
	}
	c, err := r.open(ctx, cc)
	if err != nil {
		return nil, err
	}
	r.conns[cc.Name] = c
	return c, nil
}

func (r *Registry) open(ctx context.Context, cc *config.Connection) (*Conn, error) {
	var (
		st  store.Store
		err error
	)
	switch cc.Dialect {
	case config.SQLite:
		st, err = store.OpenSQLite(ctx, store.SQLiteOptions{
			Path: cc.DSN, Synchronous: cc.Synchronous, BusyTimeout: cc.BusyTimeout, MaxReadConns: cc.MaxOpenConns,
			SkipMigrations: !cc.Migrate, MigrateTimeout: cc.MigrateTimeout,
		})
	case config.Postgres:
		st, err = store.OpenPostgres(ctx, serverOptions(cc))
	case config.MySQL:
		st, err = store.OpenMySQL(ctx, serverOptions(cc))
	default:
		err = fmt.Errorf("unknown dialect %q (allowed: %s, %s, %s)", cc.Dialect, config.SQLite, config.Postgres, config.MySQL)
	}
	if err != nil {
		return nil, fmt.Errorf("connection %q (%s %s): %w", cc.Name, cc.Dialect, store.DescribeDSN(cc.Dialect, cc.DSN), err)
	}

	c := &Conn{Name: cc.Name, Store: st, reg: r, cfg: cc, refs: 1, opened: time.Now(),
		subs: map[string]map[*func()]struct{}{}, holders: map[Holder]struct{}{}}
	startCtx, cancel := context.WithTimeout(ctx, cc.ConnectTimeout)
	defer cancel()
	if err = c.register(startCtx); err == nil {
		err = c.reap(startCtx)
	}
	if err != nil {
		_ = st.Close()
		return nil, fmt.Errorf("connection %q (%s %s): %w", cc.Name, cc.Dialect, store.DescribeDSN(cc.Dialect, cc.DSN), err)
	}
	c.confirmed()
	c.checkClock(startCtx)
	upkeepCtx, stop := context.WithCancel(context.Background())
	c.stop = stop
	c.upkeep.Add(2)
	go c.keepAlive(upkeepCtx)
	go c.listen(upkeepCtx)
	r.log.Info("sql connection opened", zap.String("connection", cc.Name), zap.String("dialect", cc.Dialect),
		zap.String("dsn", store.DescribeDSN(cc.Dialect, cc.DSN)), zap.String("node", c.Node()))
	return c, nil
}

func serverOptions(cc *config.Connection) store.ServerOptions {
	return store.ServerOptions{DSN: cc.DSN, MaxOpenConns: cc.MaxOpenConns, Migrate: cc.Migrate,
		ConnectTimeout: cc.ConnectTimeout, MigrateTimeout: cc.MigrateTimeout}
}

// checkClock warns when this node's clock is far from the database's. Nothing depends on it (the
// store compares times on the database's clock only), but logs and metrics of this node are off.
func (c *Conn) checkClock(ctx context.Context) {
	skew, err := c.Store.ClockSkew(ctx)
	if err == nil && (skew > time.Second || skew < -time.Second) {
		c.reg.log.Warn("this node's clock is off the database's; leases and heartbeats use the database's clock, but check this host's time synchronisation",
			zap.String("connection", c.Name), zap.Duration("database_ahead_by", skew))
	}
}

// Release drops one reference; the last one unregisters the node (returning whatever it still
// holds to ready, since its acks can no longer land) and closes the store. A pipeline releases
// its reference only once no job of it is at a worker (see driver.Stop).
func (c *Conn) Release(ctx context.Context) {
	r := c.reg
	r.mu.Lock()
	c.refs--
	last := c.refs == 0
	if last {
		delete(r.conns, c.Name)
	}
	r.mu.Unlock()
	if !last {
		return
	}
	c.stop()
	c.upkeep.Wait()
	if released, err := c.Store.RemoveNode(ctx, c.Node()); err != nil {
		r.log.Error("unregister node", zap.String("connection", c.Name), zap.Error(err))
	} else if released > 0 {
		r.log.Warn("jobs still held at shutdown returned to ready", zap.String("connection", c.Name), zap.Int64("jobs", released))
	}
	if err := c.Store.Close(); err != nil {
		r.log.Error("close connection", zap.String("connection", c.Name), zap.Error(err))
	}
	r.log.Info("sql connection closed", zap.String("connection", c.Name))
}

// keepAlive heartbeats the node and reaps dead nodes until the connection closes.
func (c *Conn) keepAlive(ctx context.Context) {
	defer c.upkeep.Done()
	t := time.NewTicker(c.cfg.HeartbeatInterval)
	defer t.Stop()
	var pruned time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		opCtx, cancel := context.WithTimeout(ctx, c.cfg.HeartbeatInterval)
		err := c.heartbeat(opCtx)
		if err == nil {
			err = c.extendLeases(opCtx)
		}
		if err == nil {
			err = c.reap(opCtx)
		}
		if err == nil {
			_, err = c.Store.FoldCounts(opCtx) // past delay buckets into bucket 0: counts stay a few rows
		}
		if err == nil {
			_, err = c.Store.SweepAcked(opCtx) // the acks a quiet pipeline marked since its last sweep
		}
		if err == nil && c.cfg.FailedRetention > 0 && time.Since(pruned) >= min(time.Minute, c.cfg.FailedRetention) {
			pruned = time.Now()
			err = c.pruneFailed(opCtx)
		}
		cancel()
		if err != nil && ctx.Err() == nil {
			c.reg.log.Error("node upkeep", zap.String("connection", c.Name), zap.Error(err))
		}
	}
}

// heartbeat proves the node alive. If another node declared it dead meanwhile (it missed its
// heartbeats for node_ttl: frozen, paused, cut off), its jobs went to other nodes: the node
// registers again under a new id and the holders drop the claims they still have. The new id is
// what makes this exact: a claim made under the old id, even one in flight while the node was
// frozen and answered only now, is recognisably not this node's (see Node), and the rows reserved
// under the old id are orphans the reapers return to ready.
func (c *Conn) heartbeat(ctx context.Context) error {
	old := c.Node()
	alive, err := c.Store.Heartbeat(ctx, old)
	if err != nil {
		return err
	}
	if alive {
		c.confirmed()
		return nil
	}
	// Registered first, published after: a claim under the new id must never meet a missing row,
	// which any reaper would take for an orphan.
	if err := c.register(ctx); err != nil {
		return err
	}
	c.reg.log.Warn("this node was declared dead by another node (it missed its heartbeats for node_ttl); its jobs went to other nodes, and those it had not yet handed to a worker are dropped here",
		zap.String("connection", c.Name), zap.String("node", old), zap.String("new_node", c.Node()), zap.Duration("node_ttl", c.cfg.NodeTTL))
	for _, h := range c.holdersNow() {
		h.ClaimsLost()
	}
	c.confirmed()
	return nil
}

// register records a fresh node id in the database, then makes it the one claims are made under.
func (c *Conn) register(ctx context.Context) error {
	id := newNodeID()
	if err := c.Store.RegisterNode(ctx, store.Node{ID: id, Host: hostIdentity, PID: os.Getpid()}); err != nil {
		return err
	}
	c.node.Store(&id)
	return nil
}

// confirmed records that the database just saw this node alive.
func (c *Conn) confirmed() { c.lastBeat.Store(int64(time.Since(c.opened))) }

// Alive tells whether this node may still count on its claims: its last heartbeat is recent
// enough that no other node can have declared it dead yet. A node that was frozen (a stopped VM,
// a long pause) or cut off from the database for longer does not hand jobs to its workers until a
// heartbeat has told it where it stands: other nodes may be running them already.
func (c *Conn) Alive() bool {
	since := time.Since(c.opened) - time.Duration(c.lastBeat.Load())
	return since < c.cfg.NodeTTL-c.cfg.HeartbeatInterval
}

// reap declares dead the nodes whose heartbeat is older than the TTL, and at once those of this
// host whose process is gone (so a restarted rr gets its crashed predecessor's jobs back without
// waiting for the TTL), then returns their jobs to ready.
func (c *Conn) reap(ctx context.Context) error {
	nodes, err := c.Store.Nodes(ctx)
	if err != nil {
		return err
	}
	var dead []string
	for _, n := range nodes {
		if n.ID != c.Node() && sameHostDeadProcess(n) {
			dead = append(dead, n.ID)
		}
	}
	released, err := c.Store.Reap(ctx, c.cfg.NodeTTL, dead)
	if err != nil {
		return err
	}
	if released > 0 {
		c.reg.log.Warn("jobs of dead nodes, or whose lease ran out, returned to ready", zap.String("connection", c.Name), zap.Int64("jobs", released))
	}
	return nil
}

// pruneFailed deletes failed jobs older than the retention, a batch per statement (no long locks).
func (c *Conn) pruneFailed(ctx context.Context) error {
	n, err := c.Store.PruneFailed(ctx, c.cfg.FailedRetention, 1000)
	if n > 0 {
		c.reg.log.Info("failed jobs past their retention deleted", zap.String("connection", c.Name), zap.Int64("jobs", n))
	}
	return err
}

func newNodeID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Node is the id this node claims jobs under now. It changes when the node finds itself declared
// dead (see heartbeat): a claim made under another id is no longer this node's to deliver.
func (c *Conn) Node() string { return *c.node.Load() }
