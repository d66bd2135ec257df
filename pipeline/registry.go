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
}

// NewRegistry makes a registry for the parsed `sql:` section.
func NewRegistry(cfg *config.Global, log *zap.Logger) *Registry {
	return &Registry{cfg: cfg, log: log, conns: map[string]*Conn{}}
}

// Conn is an open connection: its store and the node id this process claims jobs under.
type Conn struct {
	Name   string
	Store  store.Store
	NodeID string

	reg    *Registry
	cfg    *config.Connection
	refs   int
	stop   context.CancelFunc
	upkeep sync.WaitGroup

	subMu   sync.Mutex
	subs    map[string]map[*func()]struct{} // queue -> wake-up callbacks of the local consumers
	holders map[Holder]struct{}
}

// Holder is a consumer holding claimed jobs whose leases the heartbeat extends.
type Holder interface {
	// Held lists the claims still queued or running here.
	Held() []store.Fence
	Lease() time.Duration
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
func (c *Conn) extendLeases(ctx context.Context, now time.Time) error {
	c.subMu.Lock()
	holders := make([]Holder, 0, len(c.holders))
	for h := range c.holders {
		holders = append(holders, h)
	}
	c.subMu.Unlock()
	for _, h := range holders {
		if held := h.Held(); len(held) > 0 {
			if _, err := c.Store.Extend(ctx, held, now.Add(h.Lease())); err != nil {
				return err
			}
		}
	}
	return nil
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
			SkipMigrations: !cc.Migrate,
		})
	case config.Postgres:
		st, err = store.OpenPostgres(ctx, cc.DSN, cc.MaxOpenConns, cc.Migrate)
	case config.MySQL:
		st, err = store.OpenMySQL(ctx, cc.DSN, cc.MaxOpenConns, cc.Migrate)
	default:
		err = fmt.Errorf("unknown dialect %q (allowed: %s, %s, %s)", cc.Dialect, config.SQLite, config.Postgres, config.MySQL)
	}
	if err != nil {
		return nil, fmt.Errorf("connection %q (%s %s): %w", cc.Name, cc.Dialect, cc.Redacted(), err)
	}

	c := &Conn{Name: cc.Name, Store: st, NodeID: newNodeID(), reg: r, cfg: cc, refs: 1,
		subs: map[string]map[*func()]struct{}{}, holders: map[Holder]struct{}{}}
	now := time.Now()
	if err = st.RegisterNode(ctx, store.Node{ID: c.NodeID, Host: hostIdentity, PID: os.Getpid()}, now); err == nil {
		err = c.reap(ctx, now)
	}
	if err != nil {
		_ = st.Close()
		return nil, fmt.Errorf("connection %q: %w", cc.Name, err)
	}
	upkeepCtx, cancel := context.WithCancel(context.Background())
	c.stop = cancel
	c.upkeep.Add(2)
	go c.keepAlive(upkeepCtx)
	go c.listen(upkeepCtx)
	r.log.Info("sql connection opened", zap.String("connection", cc.Name), zap.String("dialect", cc.Dialect),
		zap.String("dsn", cc.Redacted()), zap.String("node", c.NodeID))
	return c, nil
}

// Release drops one reference; the last one unregisters the node (returning whatever it still
// holds to ready, since its acks can no longer land) and closes the store.
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
	released, err := c.Store.RemoveNode(ctx, c.NodeID)
	if err != nil {
		r.log.Error("unregister node", zap.String("connection", c.Name), zap.Error(err))
	} else if released > 0 {
		r.log.Warn("jobs still held at shutdown returned to ready", zap.String("connection", c.Name), zap.Int64("jobs", released))
	}
	if err = c.Store.Close(); err != nil {
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
		now := time.Now()
		opCtx, cancel := context.WithTimeout(ctx, c.cfg.HeartbeatInterval)
		alive, err := c.Store.Heartbeat(opCtx, c.NodeID, now)
		if err == nil && !alive {
			// Another node declared us dead (we missed heartbeats) and released our jobs; our fences no
			// longer hold, so register again and carry on.
			c.reg.log.Warn("node was declared dead by another node; registering again", zap.String("node", c.NodeID))
			err = c.Store.RegisterNode(opCtx, store.Node{ID: c.NodeID, Host: hostIdentity, PID: os.Getpid()}, now)
		}
		if err == nil {
			err = c.extendLeases(opCtx, now)
		}
		if err == nil {
			err = c.reap(opCtx, now)
		}
		if err == nil && c.cfg.FailedRetention > 0 && now.Sub(pruned) >= min(time.Minute, c.cfg.FailedRetention) {
			pruned = now
			err = c.pruneFailed(opCtx, now)
		}
		cancel()
		if err != nil && ctx.Err() == nil {
			c.reg.log.Error("node upkeep", zap.String("connection", c.Name), zap.Error(err))
		}
	}
}

// reap declares dead the nodes whose heartbeat is older than the TTL, and at once those of this
// host whose process is gone (so a restarted rr gets its crashed predecessor's jobs back without
// waiting for the TTL), then returns their jobs to ready.
func (c *Conn) reap(ctx context.Context, now time.Time) error {
	nodes, err := c.Store.Nodes(ctx)
	if err != nil {
		return err
	}
	var dead []string
	for _, n := range nodes {
		if n.ID != c.NodeID && n.Host == hostIdentity && n.PID != os.Getpid() && !processAlive(n.PID) {
			dead = append(dead, n.ID)
		}
	}
	released, err := c.Store.Reap(ctx, now, now.Add(-c.cfg.NodeTTL), dead)
	if err != nil {
		return err
	}
	if released > 0 {
		c.reg.log.Warn("jobs of dead nodes returned to ready", zap.String("connection", c.Name), zap.Int64("jobs", released))
	}
	return nil
}

// pruneFailed deletes failed jobs older than the retention, a batch per statement (no long locks).
func (c *Conn) pruneFailed(ctx context.Context, now time.Time) error {
	n, err := c.Store.PruneFailed(ctx, now.Add(-c.cfg.FailedRetention), 1000)
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

// hostIdentity is the hostname plus the pid namespace: two processes can compare pids only when
// both are equal (containers on one host share a hostname but not a pid namespace).
var hostIdentity = readHostIdentity()

func readHostIdentity() string {
	h, _ := os.Hostname()
	ns, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return h + "/?" + newNodeID() // unknown namespace: never match another process
	}
	return h + "/" + ns
}
