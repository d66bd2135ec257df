package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"syscall"
	"time"

	configPlugin "github.com/roadrunner-server/config/v5"
	"github.com/roadrunner-server/endure/v2"
	"github.com/spf13/cobra"
)

// endureConfig is the config's `endure` section, as the stock rr reads it.
type endureConfig struct {
	GracePeriod time.Duration `mapstructure:"grace_period"`
	LogLevel    string        `mapstructure:"log_level"`
	PrintGraph  bool          `mapstructure:"print_graph"`
}

func serveCommand(g *globalFlags) *cobra.Command {
	var cpuProfile string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Start RoadRunner server",
		RunE: func(*cobra.Command, []string) error {
			v, err := readConfig(g)
			if err != nil {
				return err
			}
			ec := endureConfig{GracePeriod: 30 * time.Second, LogLevel: "error"}
			if err := v.UnmarshalKey("endure", &ec); err != nil {
				return fmt.Errorf("endure: %w", err)
			}
			if g.pidFile {
				if err := writePidFile(); err != nil {
					return err
				}
				defer removePidFile()
			}
			if cpuProfile != "" {
				stop, err := startCPUProfile(cpuProfile)
				if err != nil {
					return err
				}
				defer stop()
			}
			return serve(g, ec)
		},
	}
	cmd.Flags().StringVar(&cpuProfile, "cpuprofile", "", "write a pprof CPU profile of the whole run to this file (go tool pprof)")
	return cmd
}

// writePidFile writes .pid in the working directory, where `rr stop` looks for it.
func writePidFile() error {
	return os.WriteFile(pidFileName, []byte(strconv.Itoa(os.Getpid())), 0o644)
}

// removePidFile removes .pid if it is still this process's, so that a later `rr stop` does not
// signal whatever process gets the pid next (the stock rr leaves it behind).
func removePidFile() {
	if b, err := os.ReadFile(pidFileName); err == nil && string(b) == strconv.Itoa(os.Getpid()) {
		_ = os.Remove(pidFileName)
	}
}

// startCPUProfile profiles rr until the returned stop is called (when serve returns).
func startCPUProfile(file string) (stop func(), err error) {
	f, err := os.Create(file)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); _ = f.Close() }, nil
}

// logLevel maps endure.log_level as the stock rr does.
func logLevel(s string) (slog.Level, error) {
	switch s {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return slog.LevelError, fmt.Errorf(`unknown log level "%s" (allowed: debug, info, warn, error)`, s)
}

func serve(g *globalFlags, ec endureConfig) error {
	say := func(msg string) {
		if !g.silent {
			fmt.Println(msg)
		}
	}
	level, err := logLevel(ec.LogLevel)
	if err != nil {
		say(fmt.Sprintf("[WARN] Failed to parse log level, using default (error): %v", err))
	}
	opts := []endure.Options{endure.GracefulShutdownTimeout(ec.GracePeriod)}
	if ec.PrintGraph {
		opts = append(opts, endure.Visualize())
	}
	cont := endure.New(level, opts...)
	cfg := &configPlugin.Plugin{Path: g.config, Flags: g.overrides, Version: version, Timeout: ec.GracePeriod, ExperimentalFeatures: g.experimental}
	if err := cont.RegisterAll(plugins(cfg)...); err != nil {
		return err
	}
	if err := cont.Init(); err != nil {
		return err
	}
	errCh, err := cont.Serve()
	if err != nil {
		return err
	}
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM, syscall.SIGINT, syscall.SIGABRT, syscall.SIGQUIT)
	say("[INFO] RoadRunner server started; version: " + version + " (with the sql jobs driver)")

	select {
	case e := <-errCh:
		_ = stopWithin(cont, ec.GracePeriod)
		return fmt.Errorf("error: %w\nplugin: %s", e.Error, e.VertexID)
	case <-signals:
		say(fmt.Sprintf("stop signal received, grace timeout is: %0.f seconds", ec.GracePeriod.Seconds()))
	}
	stopped := make(chan error, 1)
	go func() { stopped <- stopWithin(cont, ec.GracePeriod) }()
	select {
	case err := <-stopped:
		return err
	case <-signals:
		say("exit forced")
		return errExitForced
	}
}

// errExitForced ends rr with status 1 after a second signal; "exit forced" was said (unless -s).
var errExitForced = errors.New("exit forced")

// stopWithin stops the container, giving up a little after the grace period: the jobs plugin's
// pollers can block until then, and a server must exit when told to.
func stopWithin(cont *endure.Endure, grace time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- cont.Stop() }()
	select {
	case err := <-done:
		return err
	case <-time.After(grace + 2*time.Second):
		return fmt.Errorf("plugins did not stop within the grace period (%s)", grace)
	}
}
