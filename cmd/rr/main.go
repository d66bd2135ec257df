// Command rr is RoadRunner with the sql jobs driver: the plugin set of RoadRunner v2025.1.15
// whose modules are public (config, logger, server, rpc, jobs, informer, resetter, metrics, otel,
// http, memory, boltdb) plus this project's `sql` plugin. Production builds come from velox (see
// the README); this binary is what the project tests and demonstrates with.
//
// Its command line is the stock rr's (RoadRunner's internal/cli, which cannot be imported: the
// roadrunner module is not served by the module proxy), so RoadRunner's documentation applies:
// cli_root.go has the global flags, one cli_*.go file per command.
package main

import (
	"errors"
	"os"
	"path/filepath"

	"github.com/fatih/color"
	"github.com/roadrunner-server/boltdb/v5"
	configPlugin "github.com/roadrunner-server/config/v5"
	httpPlugin "github.com/roadrunner-server/http/v5"
	"github.com/roadrunner-server/informer/v5"
	jobsPlugin "github.com/roadrunner-server/jobs/v5"
	"github.com/roadrunner-server/logger/v5"
	"github.com/roadrunner-server/memory/v5"
	"github.com/roadrunner-server/metrics/v5"
	"github.com/roadrunner-server/otel/v5"
	"github.com/roadrunner-server/resetter/v5"
	rpcPlugin "github.com/roadrunner-server/rpc/v5"
	"github.com/roadrunner-server/server/v5"
	sqljobs "github.com/rr-sql/sqljobs"
)

// version is the RoadRunner line this binary is built from.
const version = "2025.1.15"

func main() {
	if err := rootCommand(filepath.Base(os.Args[0])).Execute(); err != nil {
		if !errors.Is(err, errExitForced) {
			// as the stock rr prints it (color turns itself off when stderr is not a terminal)
			_, _ = color.New(color.FgHiRed, color.Bold).Fprintln(os.Stderr, err.Error())
		}
		os.Exit(1)
	}
}

// plugins is the plugin set, in the order RoadRunner registers it, after the config plugin.
func plugins(cfg *configPlugin.Plugin) []any {
	return []any{
		cfg,
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
