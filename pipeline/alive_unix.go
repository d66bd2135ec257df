//go:build unix

package pipeline

import "syscall"

// processAlive tells whether a process of this pid namespace exists (signal 0 checks, sends nothing).
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}
