// Command rr is RoadRunner with the sql jobs driver: the plugin set of RoadRunner v2025.1.15
// whose modules are public (config, logger, server, rpc, jobs, informer, resetter, metrics, otel,
// http, memory, boltdb) plus this project's `sql` plugin. Production builds come from velox (see
// the README); this binary is what the project tests and demonstrates with.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/rpc"
	"os"
	"os/signal"
	"runtime/pprof"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/roadrunner-server/api/v4/plugins/v4/jobs"
	"github.com/roadrunner-server/boltdb/v5"
	configPlugin "github.com/roadrunner-server/config/v5"
	"github.com/roadrunner-server/endure/v2"
	goridgeRpc "github.com/roadrunner-server/goridge/v3/pkg/rpc"
	httpPlugin "github.com/roadrunner-server/http/v5"
	"github.com/roadrunner-server/informer/v5"
	jobsPlugin "github.com/roadrunner-server/jobs/v5"
	"github.com/roadrunner-server/logger/v5"
	"github.com/roadrunner-server/memory/v5"
	"github.com/roadrunner-server/metrics/v5"
	"github.com/roadrunner-server/otel/v5"
	"github.com/roadrunner-server/pool/state/process"
	"github.com/roadrunner-server/resetter/v5"
	rpcPlugin "github.com/roadrunner-server/rpc/v5"
	"github.com/roadrunner-server/server/v5"
	sqljobs "github.com/rr-sql/sqljobs"
	"github.com/rr-sql/sqljobs/store"
	"github.com/spf13/cobra"
	"github.com/spf13/viper"
)

// version is the RoadRunner line this binary is built from.
const version = "2025.1.15"

func main() {
	if err := rootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "rr:", err)
		os.Exit(1)
	}
}

type globalFlags struct {
	config    string
	workDir   string
	overrides []string
}

func rootCommand() *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:           "rr",
		Short:         "RoadRunner with the sql jobs driver",
		Version:       version + " (with the sql jobs driver)",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(*cobra.Command, []string) error {
			if g.workDir != "" {
				if err := os.Chdir(g.workDir); err != nil {
					return fmt.Errorf("working directory: %w", err)
				}
			}
			return nil
		},
	}
	root.SetVersionTemplate("rr version {{.Version}}\n")
	root.PersistentFlags().StringVarP(&g.config, "config", "c", ".rr.yaml", "config file")
	root.PersistentFlags().StringVarP(&g.workDir, "workdir", "w", "", "working directory")
	root.PersistentFlags().StringArrayVarP(&g.overrides, "override", "o", nil, "override a config value: -o key.path=value")
	root.AddCommand(serveCommand(g), workersCommand(g), schemaCommand())
	return root
}

// plugins is the plugin set, in the order RoadRunner registers it.
func plugins(g *globalFlags) []any {
	return []any{
		//lint:ignore SA1019 the stock rr sets it too: RR_-prefixed environment variables override the config
		&configPlugin.Plugin{Path: g.config, Prefix: "rr", Flags: g.overrides, Version: version, Timeout: 30 * time.Second},
		&logger.Plugin{},
		&metrics.Plugin{},
		&otel.Plugin{},
		&rpcPlugin.Plugin{},
		&server.Plugin{},
		&httpPlugin.Plugin{},
		&informer.Plugin{},
		&resetter.Plugin{},
		&jobsPlugin.Plugin{},
		&memory.Plugin{},
		&boltdb.Plugin{},
		&sqljobs.Plugin{},
	}
}

// readConfig reads the config file with the -o overrides applied (for what rr itself needs).
func readConfig(g *globalFlags) (*viper.Viper, error) {
	v := viper.New()
	v.SetConfigFile(g.config)
	if err := v.ReadInConfig(); err != nil {
		return nil, fmt.Errorf("config %s: %w", g.config, err)
	}
	for _, o := range g.overrides {
		key, value, ok := strings.Cut(o, "=")
		if !ok {
			return nil, fmt.Errorf("override %q: use key.path=value", o)
		}
		v.Set(key, value)
	}
	return v, nil
}

func serveCommand(g *globalFlags) *cobra.Command {
	var cpuProfile string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Start RoadRunner and serve until SIGINT or SIGTERM",
		RunE: func(*cobra.Command, []string) error {
			v, err := readConfig(g)
			if err != nil {
				return err
			}
			grace := 30 * time.Second
			if v.IsSet("endure.grace_period") {
				grace = v.GetDuration("endure.grace_period")
			}
			if cpuProfile != "" {
				stop, err := startCPUProfile(cpuProfile)
				if err != nil {
					return err
				}
				defer stop()
			}
			return serve(g, grace)
		},
	}
	cmd.Flags().StringVar(&cpuProfile, "cpuprofile", "", "write a pprof CPU profile of the whole run to this file (go tool pprof)")
	return cmd
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

func serve(g *globalFlags, grace time.Duration) error {
	cont := endure.New(slog.LevelError, endure.GracefulShutdownTimeout(grace))
	if err := cont.RegisterAll(plugins(g)...); err != nil {
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
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)

	select {
	case e := <-errCh:
		_ = stopWithin(cont, grace)
		return fmt.Errorf("%s: %w", e.VertexID, e.Error)
	case sig := <-signals:
		fmt.Fprintf(os.Stderr, "rr: %s received, stopping (grace period %s)\n", sig, grace)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- stopWithin(cont, grace) }()
	select {
	case err := <-stopped:
		return err
	case <-signals:
		return errors.New("second signal: stopped without waiting")
	}
}

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

// schemaCommand prints the sql driver's schema migrations for a DBA (with `migrate: false`).
func schemaCommand() *cobra.Command {
	return &cobra.Command{
		Use:       "schema sqlite|postgres|mysql",
		Short:     "Print the sql jobs driver's schema migrations",
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"sqlite", "postgres", "mysql"},
		RunE: func(_ *cobra.Command, args []string) error {
			script, err := store.SchemaSQL(args[0])
			if err != nil {
				return fmt.Errorf("%w (dialects: sqlite, postgres, mysql)", err)
			}
			fmt.Print(script)
			return nil
		},
	}
}

func workersCommand(g *globalFlags) *cobra.Command {
	interactive := false
	cmd := &cobra.Command{
		Use:   "workers [plugin...]",
		Short: "Show the worker pools and the jobs pipelines",
		RunE: func(_ *cobra.Command, only []string) error {
			v, err := readConfig(g)
			if err != nil {
				return err
			}
			client, err := dialRPC(v.GetString("rpc.listen"))
			if err != nil {
				return err
			}
			defer client.Close()
			if !interactive {
				return printWorkers(client, only)
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				fmt.Print("\033[H\033[2J") // clear the screen, as the stock `rr workers -i` does
				fmt.Printf("Workers of %s (refreshed every second, Ctrl+C to quit) %s\n\n", g.config, time.Now().Format(time.TimeOnly))
				if err := printWorkers(client, only); err != nil {
					return err
				}
				select {
				case <-ctx.Done():
					return nil
				case <-tick.C:
				}
			}
		},
	}
	cmd.Flags().BoolVarP(&interactive, "interactive", "i", false, "refresh every second")
	return cmd
}

func dialRPC(listen string) (*rpc.Client, error) {
	if listen == "" {
		return nil, errors.New("rpc.listen is not set in the config: rr workers talks to the rpc plugin")
	}
	network, addr, ok := strings.Cut(listen, "://")
	if !ok {
		network, addr = "tcp", listen
	}
	conn, err := net.DialTimeout(network, addr, 3*time.Second)
	if err != nil {
		return nil, fmt.Errorf("rpc %s: %w (is `rr serve` running?)", listen, err)
	}
	return rpc.NewClientWithCodec(goridgeRpc.NewClientCodec(conn)), nil
}

// informerWorkers mirrors the informer plugin's answer.
type informerWorkers struct {
	Workers []*process.State `json:"workers"`
}

func printWorkers(client *rpc.Client, only []string) error {
	var list []string
	if err := client.Call("informer.List", true, &list); err != nil {
		return fmt.Errorf("informer.List: %w", err)
	}
	sort.Strings(list)
	for _, name := range list {
		if len(only) > 0 && !contains(only, name) {
			continue
		}
		var ws informerWorkers
		if err := client.Call("informer.Workers", name, &ws); err != nil {
			return fmt.Errorf("informer.Workers %s: %w", name, err)
		}
		fmt.Printf("Workers of [%s]:\n", name)
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PID\tSTATUS\tEXECS\tMEMORY\tCPU%\tCREATED")
		for _, w := range ws.Workers {
			fmt.Fprintf(tw, "%d\t%s\t%d\t%.1f MB\t%.2f\t%s\n", w.Pid, w.StatusStr, w.NumExecs,
				float64(w.MemoryUsage)/(1<<20), w.CPUPercent, time.Since(time.Unix(0, w.Created)).Round(time.Second))
		}
		_ = tw.Flush()
		fmt.Println()
		if name != "jobs" {
			continue
		}
		var states []*jobs.State
		if err := client.Call("informer.Jobs", name, &states); err != nil {
			return fmt.Errorf("informer.Jobs: %w", err)
		}
		sort.Slice(states, func(a, b int) bool { return states[a].Pipeline < states[b].Pipeline })
		fmt.Println("Jobs pipelines:")
		tw = tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "STATUS\tPIPELINE\tDRIVER\tQUEUE\tACTIVE\tDELAYED\tRESERVED")
		for _, s := range states {
			status := "PAUSED"
			if s.Ready {
				status = "READY"
			}
			if s.ErrorMessage != "" {
				status = "ERROR: " + s.ErrorMessage
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\n", status, s.Pipeline, s.Driver, s.Queue, s.Active, s.Delayed, s.Reserved)
		}
		_ = tw.Flush()
		fmt.Println()
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
