package main

import (
	"fmt"
	"log"
	"sync"

	"github.com/spf13/cobra"
)

// resetCommand asks the resetter plugin to restart the workers of the named plugins (all of them
// by default), in parallel, logging as the stock rr does.
func resetCommand(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "reset [plugin...]",
		Short: "Reset workers of all or specific RoadRunner service",
		RunE: func(_ *cobra.Command, args []string) error {
			client, err := dialRPC(g)
			if err != nil {
				return err
			}
			defer func() { _ = client.Close() }()

			plugins := args
			if len(plugins) == 0 {
				if err := client.Call("resetter.List", true, &plugins); err != nil {
					return err
				}
			}
			var (
				wg     sync.WaitGroup
				mu     sync.Mutex
				failed []string
			)
			for _, p := range plugins {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if !g.silent {
						log.Printf("resetting plugin: [%s] ", p)
					}
					var done bool
					if err := client.Call("resetter.Reset", p, &done); err != nil {
						log.Printf("plugin reset failed: [%s]: %v", p, err)
						mu.Lock()
						failed = append(failed, p)
						mu.Unlock()
						return
					}
					if !g.silent {
						log.Printf("plugin reset: [%s]", p)
					}
				}()
			}
			wg.Wait()
			// the stock rr exits 0 whatever happened; a script should learn that a reset failed
			if len(failed) > 0 {
				return fmt.Errorf("reset failed: %v", failed)
			}
			return nil
		},
	}
}
