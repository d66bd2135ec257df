package main

import (
	"errors"
	"fmt"
	"log"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// stopCommand signals the rr whose pid `serve -p` wrote; like the stock one it does not wait for
// the exit. -f sends the signal a second time, which makes serve exit without the grace period;
// a process the first signal already ended has stopped, as asked (the stock rr fails there with
// "os: process already finished").
func stopCommand(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "stop",
		Short: "Stop RoadRunner server",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			data, err := os.ReadFile(pidFileName)
			if err != nil {
				return fmt.Errorf("%v, to create a .pid file, you must run RR with the following options: './rr serve -p'", err)
			}
			pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
			if err != nil {
				return fmt.Errorf("%s: %w", pidFileName, err)
			}
			process, err := os.FindProcess(pid)
			if err != nil {
				return err
			}
			if !g.silent {
				log.Printf("stopping process with PID: %d", pid)
			}
			if err := process.Signal(syscall.SIGTERM); err != nil {
				return err
			}
			if g.force {
				// a signal sent right after the first may be lost while rr starts stopping
				time.Sleep(time.Second)
				if err := process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
					return err
				}
			}
			return nil
		},
	}
}
