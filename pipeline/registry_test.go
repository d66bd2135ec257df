package pipeline

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rr-sql/sqljobs/config"
	"github.com/rr-sql/sqljobs/store"
	"go.uber.org/zap"
)

// openConn opens a connection (a node) on a fresh SQLite file.
func openConn(t *testing.T) *Conn {
	t.Helper()
	global, err := config.ParseGlobal(map[string]any{"connections": map[string]any{
		"default": map[string]any{"dsn": filepath.Join(t.TempDir(), "jobs.db"), "synchronous": "normal"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	r := NewRegistry(global, zap.NewNop())
	c, err := r.Acquire(context.Background(), &config.Pipeline{Name: "p", Connection: config.DefaultConnection, Lease: 1 << 62})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Release(context.Background()) })
	return c
}

func nodeIDs(t *testing.T, st store.Store) []string {
	t.Helper()
	nodes, err := st.Nodes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range nodes {
		out = append(out, n.ID)
	}
	return out
}

// deadPID is a pid no process of this namespace has.
func deadPID(t *testing.T) int {
	for pid := 4_000_000; pid > 1_000_000; pid-- {
		if !processAlive(pid) {
			return pid
		}
	}
	t.Fatal("no free pid")
	return 0
}

// TestOnlyTheSameHostMayDeclareADeadProcess: a node whose pid is not running here is dead only
// if it runs on this very machine and pid namespace. Another machine with the same hostname and
// the same (root) pid namespace number, a cloned VM say, differs by its boot id.
func TestOnlyTheSameHostMayDeclareADeadProcess(t *testing.T) {
	if !strings.Contains(hostIdentity, "/boot:") || strings.Contains(hostIdentity, "unknown") {
		t.Skipf("this machine has no boot id or pid namespace to read (identity %q): only the heartbeat TTL declares nodes dead here", hostIdentity)
	}
	c := openConn(t)
	ctx := context.Background()
	hostname, _ := os.Hostname()
	ns, _ := os.Readlink("/proc/self/ns/pid")
	pid := deadPID(t)
	twin := identityOf(hostname, "00000000-0000-4000-8000-000000000000", ns)
	for id, host := range map[string]string{"crashed-here": hostIdentity, "cloned-vm": twin} {
		if err := c.Store.RegisterNode(ctx, store.Node{ID: id, Host: host, PID: pid}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.reap(ctx); err != nil {
		t.Fatal(err)
	}
	nodes := nodeIDs(t, c.Store)
	if slices.Contains(nodes, "crashed-here") {
		t.Errorf("a node of this host whose process is gone was not reaped: %v", nodes)
	}
	if !slices.Contains(nodes, "cloned-vm") {
		t.Errorf("a live node of another machine with the same hostname and pid namespace was reaped: %v", nodes)
	}
	if !slices.Contains(nodes, c.Node()) {
		t.Errorf("this node reaped itself: %v", nodes)
	}
}

// declaredDead makes another node's reaper see this one as dead: its row is gone.
func declaredDead(t *testing.T, c *Conn, id string) {
	t.Helper()
	if _, err := c.Store.Reap(context.Background(), 0, []string{id}); err != nil {
		t.Fatal(err)
	}
}

// TestADeclaredDeadNodeComesBackUnderANewID: a node that finds itself declared dead (frozen,
// cut off) registers again under a new id, so that a claim it made under the old one (a claim in
// flight while it was frozen, answered after other nodes took its jobs) is recognisably not its
// own any more, and the rows reserved under the old id stay orphans for the reapers.
func TestADeclaredDeadNodeComesBackUnderANewID(t *testing.T) {
	c := openConn(t)
	ctx := context.Background()
	old := c.Node()
	declaredDead(t, c, old)
	if err := c.heartbeat(ctx); err != nil {
		t.Fatal(err)
	}
	now := c.Node()
	nodes := nodeIDs(t, c.Store)
	if now == old || slices.Contains(nodes, old) || !slices.Contains(nodes, now) {
		t.Fatalf("after being declared dead the node is %q (was %q); registered nodes: %v", now, old, nodes)
	}
	if !c.Alive() {
		t.Fatal("the node registered again but does not count itself alive")
	}
}

// TestUnsubscribeLeavesNoQueueBehind: the wake-up callbacks of a queue go with its last
// subscriber, so pipelines declared and destroyed by the thousand leave nothing in the connection.
func TestUnsubscribeLeavesNoQueueBehind(t *testing.T) {
	c := openConn(t)
	keep := c.Subscribe("kept", func() {})
	defer keep()
	woken := 0
	for i := range 1000 {
		queue := fmt.Sprint("dyn-", i)
		first := c.Subscribe(queue, func() { woken++ })
		second := c.Subscribe(queue, func() { woken++ })
		first()
		c.notify(queue) // the second still listens
		second()
		c.notify(queue) // nobody does
	}
	if woken != 1000 {
		t.Fatalf("%d wake-ups, want 1000 (one per queue, while its second subscriber listened)", woken)
	}
	c.subMu.Lock()
	defer c.subMu.Unlock()
	if len(c.subs) != 1 || c.subs["kept"] == nil {
		t.Fatalf("%d queues left subscribed after unsubscribing 1000 (want only \"kept\")", len(c.subs))
	}
}
