package store

import (
	"net"
	"strconv"
	"strings"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
)

// DescribeDSN is what logs and errors may show of a DSN: the host, port, database and user, as
// the database's own driver reads them; never the password, and never the DSN as written (a
// pattern cannot find a password in every form a driver accepts). A DSN the driver cannot parse
// is not shown at all.
func DescribeDSN(dialect, dsn string) string {
	switch dialect {
	case "postgres":
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			return "(a PostgreSQL DSN pgx cannot parse)"
		}
		return "postgres://" + userAt(cfg.User) + net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))) + "/" + cfg.Database
	case "mysql":
		cfg, err := mysql.ParseDSN(strings.TrimPrefix(dsn, "mysql://"))
		if err != nil {
			return "(a MySQL DSN go-sql-driver/mysql cannot parse)"
		}
		return userAt(cfg.User) + cfg.Net + "(" + cfg.Addr + ")/" + cfg.DBName
	default:
		return dsn // an SQLite file path
	}
}

func userAt(user string) string {
	if user == "" {
		return ""
	}
	return user + "@"
}
