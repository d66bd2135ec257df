package main

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/joho/godotenv"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

const (
	// envDotenv names the .env file when set; it wins over --dotenv, as in the stock rr.
	envDotenv = "DOTENV_PATH"
	// pidFileName is written by `serve -p` and read by `stop`, in the working directory.
	pidFileName = ".pid"
	// debugAddr is where -d serves pprof (fixed in the stock rr too).
	debugAddr = ":6061"
)

// globalFlags are the stock rr's persistent flags: every command accepts all of them.
type globalFlags struct {
	config       string
	workDir      string
	dotenv       string
	debug        bool
	silent       bool
	experimental bool
	pidFile      bool
	force        bool
	overrides    []string
}

func rootCommand(name string) *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:               name,
		Short:             "RoadRunner " + version + " with the sql jobs driver",
		Version:           fmt.Sprintf("%s (with the sql jobs driver; %s), OS: %s, arch: %s", version, runtime.Version(), runtime.GOOS, runtime.GOARCH),
		SilenceUsage:      true,
		SilenceErrors:     true,
		PersistentPreRunE: func(*cobra.Command, []string) error { return g.prepare() },
	}
	root.SetVersionTemplate("rr version {{.Version}}\n")

	f := root.PersistentFlags()
	f.BoolVarP(&g.experimental, "enable-experimental", "e", false, "enable experimental features")
	f.BoolVarP(&g.force, "force", "f", false, "force stop")
	f.BoolVarP(&g.pidFile, "pid", "p", false, "create a .pid file (serve)")
	f.StringVarP(&g.config, "config", "c", ".rr.yaml", "config file")
	f.StringVarP(&g.workDir, "workdir", "w", "", "working directory (default: the config file's directory)")
	f.StringVar(&g.dotenv, "dotenv", "", fmt.Sprintf("dotenv file [$%s]", envDotenv))
	f.BoolVarP(&g.debug, "debug", "d", false, "debug mode: pprof on "+debugAddr)
	f.BoolVarP(&g.silent, "silent", "s", false, "do not print startup message")
	f.StringArrayVarP(&g.overrides, "override", "o", nil, "override config value (dot.notation=value)")
	// The stock rr spells it --WorkDir; this binary has always said --workdir: both work.
	root.SetGlobalNormalizationFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		if name == "WorkDir" {
			name = "workdir"
		}
		return pflag.NormalizedName(name)
	})

	root.AddCommand(
		workersCommand(g),
		resetCommand(g),
		serveCommand(g),
		stopCommand(g),
		jobsCommand(g),
		schemaCommand(),
	)
	return root
}

// prepare does what the stock rr does before any command: change to the working directory (the
// config file's own when -w is not given, so relative paths in the config are relative to it),
// load the .env file into the environment (before the config is read: ${VAR} in the config sees
// it) and start the pprof server for -d.
func (g *globalFlags) prepare() error {
	if g.config == "" {
		return errors.New("no configuration file provided")
	}
	if g.workDir != "" {
		if err := os.Chdir(g.workDir); err != nil {
			return err
		}
	}
	if abs, err := filepath.Abs(g.config); err == nil {
		g.config = abs
		if g.workDir == "" {
			if err := os.Chdir(filepath.Dir(abs)); err != nil {
				return err
			}
		}
	}
	if v, ok := os.LookupEnv(envDotenv); ok {
		g.dotenv = v
	}
	if g.dotenv != "" {
		if err := godotenv.Load(g.dotenv); err != nil {
			return err
		}
	}
	if g.debug {
		go serveDebug()
	}
	return nil
}

// serveDebug serves pprof until the process exits; a failure is reported, not fatal, as in the
// stock rr.
func serveDebug() {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Addr: debugAddr, Handler: mux, ReadHeaderTimeout: 10 * time.Minute}
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Println(fmt.Errorf("[ERROR] debug server stopped with error: %w", err))
	}
}
