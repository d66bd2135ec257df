// Package config holds the plugin's configuration: the optional global `sql:` section (named
// database connections) and the options of each pipeline, with their defaults and validation.
// Both `.rr.yaml` maps and jobs.Declare's string maps are parsed by the same code, so a pipeline
// means the same thing whichever way it was created. No SQL and no RoadRunner runtime here.
package config

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Dialects the plugin speaks.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
	MySQL    = "mysql"
)

// DefaultConnection is the connection a pipeline uses when it names none. Unless the `sql:`
// section defines it, it is an SQLite file in the working directory: `driver: sql` needs nothing else.
const DefaultConnection = "default"

// DefaultSQLiteFile is the file of the implicit default connection.
const DefaultSQLiteFile = "rr-jobs.db"

// Connection is one named database connection of the `sql.connections` section.
type Connection struct {
	Name    string
	Dialect string
	// DSN is a file path for SQLite, a URL or key=value string for PostgreSQL, a go-sql-driver DSN for MySQL.
	DSN          string
	MaxOpenConns int
	// Synchronous is SQLite's durability: "full" (a push survives power loss; claims and their
	// answers commit without a flush of their own, see store.sqliteUnflushed), "normal" (survives a
	// process crash; faster), "off".
	Synchronous string
	BusyTimeout time.Duration
	// HeartbeatInterval is how often this node proves it is alive; NodeTTL is how long after its last
	// heartbeat a node counts as dead and the jobs it reserved go back to ready.
	HeartbeatInterval time.Duration
	NodeTTL           time.Duration
	// Migrate applies the embedded schema migrations at start (under a lock); off, the schema is
	// only checked, for DBAs who apply schema/DIALECT.sql (or `rr schema DIALECT`) themselves.
	Migrate bool
	// ConnectTimeout bounds connecting at start (and each statement of the node's registration):
	// a database that does not answer stops rr instead of hanging it. MigrateTimeout bounds the
	// schema migration, the wait for another node's migration lock included.
	ConnectTimeout time.Duration
	MigrateTimeout time.Duration
	// FailedRetention is how long failed jobs are kept (0: forever); older ones are pruned in batches.
	FailedRetention time.Duration
}

// Global is the parsed `sql:` section.
type Global struct {
	Connections map[string]*Connection
	// Schedules are the `sql.schedules` entries, by name.
	Schedules []*Schedule
	Dashboard Dashboard
}

var connectionKeys = []string{"dialect", "dsn", "max_open_conns", "synchronous", "busy_timeout", "heartbeat_interval", "node_ttl", "migrate",
	"failed_retention", "connect_timeout", "migrate_timeout"}

var connectionName = regexp.MustCompile(`^[a-z0-9_][a-z0-9_-]{0,62}$`)

// ParseGlobal validates the raw `sql:` section (nil when absent) and fills in defaults.
func ParseGlobal(raw map[string]any) (*Global, error) {
	g := &Global{Connections: map[string]*Connection{}}
	top := newOptions("sql", raw)
	conns := top.Map("connections")
	rawSchedules, _ := top.lookup("schedules")
	dash := top.Map("dashboard")
	if err := top.Err([]string{"connections", "schedules", "dashboard"}); err != nil {
		return nil, err
	}
	dashboard, err := parseDashboard(dash)
	if err != nil {
		return nil, err
	}
	g.Dashboard = dashboard

	names := make([]string, 0, len(conns))
	for name := range conns {
		names = append(names, name)
	}
	sort.Strings(names)
	var errs []string
	for _, name := range names {
		where := "sql.connections." + name
		if !connectionName.MatchString(name) {
			errs = append(errs, fmt.Sprintf("%s: connection names may hold lower-case letters, digits, '_' and '-' (at most 63)", where))
			continue
		}
		m, ok := conns[name].(map[string]any)
		if !ok && conns[name] != nil {
			errs = append(errs, fmt.Sprintf("%s: must be a mapping with keys %s", where, strings.Join(connectionKeys, ", ")))
			continue
		}
		c, err := parseConnection(name, where, m)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		g.Connections[name] = c
	}
	schedules, err := ParseSchedules(rawSchedules)
	if err != nil {
		errs = append(errs, err.Error())
	}
	g.Schedules = schedules
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	if _, ok := g.Connections[DefaultConnection]; !ok {
		g.Connections[DefaultConnection], _ = parseConnection(DefaultConnection, "", nil)
	}
	return g, nil
}

func parseConnection(name, where string, raw map[string]any) (*Connection, error) {
	o := newOptions(where, raw)
	c := &Connection{Name: name}
	c.DSN = o.String("dsn", "")
	c.Dialect = o.OneOf("dialect", dialectFromDSN(c.DSN), SQLite, Postgres, MySQL)
	if c.DSN == "" {
		if c.Dialect != SQLite {
			o.fail("dsn", "is required for dialect %q", c.Dialect)
		}
		c.DSN = DefaultSQLiteFile
	}
	if c.Dialect == SQLite && strings.ContainsRune(c.DSN, '?') {
		o.fail("dsn", "for sqlite is a file path and may not contain '?' (set durability with `synchronous`)")
	}
	defaultOpen := int64(16)
	if c.Dialect == SQLite {
		defaultOpen = 4 // one writer at a time: a few readers are all SQLite can use
	}
	c.MaxOpenConns = int(o.Int("max_open_conns", defaultOpen, 2, 1000))
	c.Synchronous = o.OneOf("synchronous", "full", "full", "normal", "off")
	c.BusyTimeout = o.Duration("busy_timeout", 10*time.Second, 0, 10*time.Minute)
	c.HeartbeatInterval = o.Duration("heartbeat_interval", 5*time.Second, 100*time.Millisecond, time.Hour)
	c.NodeTTL = o.Duration("node_ttl", 30*time.Second, 300*time.Millisecond, 24*time.Hour)
	c.Migrate = o.Bool("migrate", true)
	c.FailedRetention = o.Duration("failed_retention", 7*24*time.Hour, 0, 10*365*24*time.Hour)
	c.ConnectTimeout = o.Duration("connect_timeout", 5*time.Second, 100*time.Millisecond, 10*time.Minute)
	c.MigrateTimeout = o.Duration("migrate_timeout", 2*time.Minute, time.Second, 24*time.Hour)
	if err := o.Err(connectionKeys); err != nil {
		return nil, err
	}
	if c.NodeTTL < 2*c.HeartbeatInterval {
		return nil, fmt.Errorf("%s: option \"node_ttl\" (%s) must be at least twice heartbeat_interval (%s), or live nodes would be declared dead", where, c.NodeTTL, c.HeartbeatInterval)
	}
	return c, nil
}

// dialectFromDSN guesses the dialect from a URL scheme so `dsn: postgres://...` alone is enough.
func dialectFromDSN(dsn string) string {
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return Postgres
	case strings.HasPrefix(dsn, "mysql://"):
		return MySQL
	default:
		return SQLite
	}
}
