package pipeline

import (
	"os"
	"strings"

	"github.com/rr-sql/sqljobs/store"
)

// hostIdentity names the machine and pid namespace of this process. Two nodes may compare pids
// (to see that a crashed predecessor is gone) only when their identities are equal:
//   - the hostname, for people reading rr_nodes; cloned VMs and containers share hostnames;
//   - the boot id, random at each boot of a Linux kernel: another machine (or this one after a
//     reboot) has another;
//   - the pid namespace: containers on one machine have their own (and the root namespace has the
//     same inode number on every Linux machine, which is why it cannot stand alone).
//
// Where the boot id or the namespace cannot be read, the identity is unique to this process, so
// it never matches another node and only the heartbeat TTL can declare a node dead.
var hostIdentity = readHostIdentity()

func readHostIdentity() string {
	hostname, _ := os.Hostname()
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return identityOf(hostname, "unknown-"+newNodeID(), "")
	}
	ns, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return identityOf(hostname, strings.TrimSpace(string(boot)), "unknown-"+newNodeID())
	}
	return identityOf(hostname, strings.TrimSpace(string(boot)), ns)
}

func identityOf(hostname, bootID, pidNamespace string) string {
	return hostname + "/boot:" + bootID + "/" + pidNamespace
}

// sameHostDeadProcess tells a node of this very host and pid namespace whose process is gone.
func sameHostDeadProcess(n store.Node) bool {
	return n.Host == hostIdentity && n.PID != os.Getpid() && !processAlive(n.PID)
}
