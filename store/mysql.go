package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

var mysqlDialect = dialect{
	name: "mysql",
	// UTC_TIMESTAMP is fixed for the length of a statement and, unlike NOW(), free of the session's
	// time zone and its daylight saving jumps.
	now:                `(TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', UTC_TIMESTAMP(6)) DIV 1000)`,
	forUpdate:          " FOR UPDATE",
	primaryKeyScan:     " FORCE INDEX (PRIMARY)",
	claim:              mysqlClaim,
	claimSQL:           mysqlClaimSQL,
	explainPrefix:      "EXPLAIN ",
	noTransactionalDDL: true,
	groupPage:          mysqlGroupPage,
	groupNames:         mysqlGroupNames,
	groupIndexAll:      true,
	claimHeads:         mysqlClaimHeads,
	// A round trip per statement: 500 rows (4,500 of the 65,535 placeholders a statement takes)
	// inserted 1,000 jobs in 30-45% of the time of a prepared one-row INSERT per job.
	rowsPerInsert: 500,
	explain:       `EXPLAIN `,
	fencedWhere:   mysqlFencedWhere,
	insertIgnore:  func(into string) string { return `INSERT IGNORE INTO ` + into },
	// Not INSERT IGNORE, which would turn any error into a warning. The connection counts found
	// rows (see OpenMySQL), so the affected rows are 1 either way: LAST_INSERT_ID(0) makes the
	// insert id of a duplicate 0 (MySQL reports the argument of LAST_INSERT_ID(expr) as the
	// statement's insert id), where a written row has its id. The row keeps its values (id + 0),
	// so the count triggers see no change of queue or due time and write nothing.
	uniqueInsert: `ON DUPLICATE KEY UPDATE id = id + LAST_INSERT_ID(0)`,
	created: func(res sql.Result) (bool, error) {
		id, err := res.LastInsertId()
		return id != 0, err
	},
	uniqueViolation: func(err error) bool {
		var me *mysql.MySQLError
		return errors.As(err, &me) && me.Number == 1062 // ER_DUP_ENTRY
	},
	// VALUES(): MariaDB has no row alias in INSERT (MySQL 8 still takes VALUES()).
	addHistory: `INSERT INTO rr_history (pipeline, minute, node, pushed, processed, failed, depth)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON DUPLICATE KEY UPDATE pushed = pushed + VALUES(pushed), processed = processed + VALUES(processed),
			failed = failed + VALUES(failed), depth = VALUES(depth)`,
	lockMigrations: func(ctx context.Context, c *sql.Conn) (func(), error) {
		var got sql.NullInt64
		if err := c.QueryRowContext(ctx, `SELECT GET_LOCK('rr_sql_migrations', 60)`).Scan(&got); err != nil {
			return nil, err
		}
		if got.Int64 != 1 {
			return nil, errors.New("another node held the migration lock for 60s")
		}
		return func() { _, _ = c.ExecContext(context.Background(), `SELECT RELEASE_LOCK('rr_sql_migrations')`) }, nil
	},
}

// mysqlFencedWhere matches the fences one claim token at a time: `((claim_token = ? AND id IN
// (...)) OR ...)`. A batch nearly always holds the jobs of one claim, so this is one primary-key
// lookup per row and one comparison. A row constructor list, `(id, claim_token) IN ((?, ?), ...)`,
// cost MariaDB about 9 µs more server CPU per acknowledged job (the range optimizer and each row's
// test walk the pairs).
func mysqlFencedWhere(fences []Fence) (string, []any) {
	var tokens []int64 // in the batch's order, each once
	rows := map[int64][]any{}
	for _, f := range fences {
		if _, seen := rows[f.Token]; !seen {
			tokens = append(tokens, f.Token)
		}
		rows[f.Token] = append(rows[f.Token], f.Row)
	}
	where := make([]string, 0, len(tokens))
	args := make([]any, 0, len(fences)+len(tokens))
	for _, token := range tokens {
		where = append(where, "(claim_token = ? AND id IN (?"+strings.Repeat(", ?", len(rows[token])-1)+"))")
		args = append(append(args, token), rows[token]...)
	}
	return "(" + strings.Join(where, " OR ") + ")", args // one condition, whatever the head puts before it
}

// mysqlClaimSQL reserves the jobs in one autocommit statement: MySQL and MariaDB have no
// UPDATE ... RETURNING, but an UPDATE may join a derived table that picks the ids with a locking
// read skipping the rows other claims hold (joined by primary key: an IN (subquery) here becomes
// a scan of the whole table). Arguments: queue, limit, node, token, lease in milliseconds.
const mysqlClaimSQL = `UPDATE rr_jobs JOIN (
	SELECT id AS picked_id FROM rr_jobs WHERE queue = ? AND reserved_by IS NULL AND available_at <= {now}
	ORDER BY priority, available_at, id
	LIMIT ?
	FOR UPDATE SKIP LOCKED) picked ON rr_jobs.id = picked.picked_id
	SET ` + claimSet

// mysqlClaimedSQL reads what a claim reserved, through the reserved index (the node's rows in
// flight). Arguments: node, token.
const mysqlClaimedSQL = `SELECT ` + claimedColumns + ` FROM rr_jobs WHERE reserved_by = ? AND claim_token = ?`

// mysqlClaim is two round trips: the update, then the read of what it reserved (an idle poll is
// the update alone, which finds nothing). Once the update has committed, a failed read leaves the
// rows reserved under a token nobody holds: their lease runs out and the reaper returns them.
func mysqlClaim(ctx context.Context, s *sqlStore, c claimArgs) ([]Job, error) {
	var claimed int64
	err := retryConflicts(ctx, func() error {
		res, err := s.exec(ctx, s.w, mysqlClaimSQL, c.queue, c.limit, c.node, c.token, c.leaseMs)
		if err != nil {
			return err
		}
		claimed, err = res.RowsAffected()
		return err
	})
	if err != nil || claimed == 0 {
		return nil, err
	}
	rows, err := s.query(ctx, s.w, mysqlClaimedSQL, c.node, c.token)
	if err != nil {
		return nil, err
	}
	return scanClaimed(rows, c.token)
}

// forTheMySQLClient wraps each statement that holds a semicolon of its own (a trigger whose body
// is an IF) in DELIMITER lines: the mysql client cuts a script at every semicolon, while the
// driver cuts only at those that end a line, and the server takes the statement whole.
func forTheMySQLClient(script string) string {
	var out, stmt []string
	inner := false // the statement so far holds a semicolon that does not end it
	for _, line := range strings.Split(script, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case len(stmt) == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "--")):
			out = append(out, line)
		case trimmed == "" || strings.HasPrefix(trimmed, "--"):
			stmt = append(stmt, line)
		case strings.HasSuffix(trimmed, ";"):
			stmt = append(stmt, line)
			if inner || strings.Contains(strings.TrimSuffix(trimmed, ";"), ";") {
				stmt[len(stmt)-1] = strings.TrimSuffix(strings.TrimRight(line, " \t"), ";") + " //"
				stmt = append(append([]string{"DELIMITER //"}, stmt...), "DELIMITER ;")
			}
			out = append(out, stmt...)
			stmt, inner = nil, false
		default:
			stmt = append(stmt, line)
			inner = inner || strings.Contains(trimmed, ";")
		}
	}
	return strings.Join(append(out, stmt...), "\n")
}

// mysqlGroupNames lists a page of a queue's groups for sql.Groups with a loose index scan of
// rr_jobs_group, which holds the reserved rows too (no partial index): no condition on reserved_by,
// which would make it read the rows themselves, every one of the queue up to the page. DISTINCT over
// (queue, grp), the index's leading columns: over grp alone MariaDB reads every entry of the range.
const mysqlGroupNames = `SELECT grp FROM (SELECT DISTINCT queue, grp FROM rr_jobs WHERE queue = ? AND %[1]s ORDER BY grp LIMIT ?) d`

// mysqlGroupPage lists groups with a loose index scan of rr_jobs_group (DISTINCT over its
// leading columns: one index dive per group), and reads each one's first ready job with one more
// dive (past its reserved rows, which the index keeps: MySQL has no partial index). That id is
// what a claim of one job per group takes, with no statement to pick it.
// A recursive CTE walking the groups one probe at a time, as PostgreSQL and SQLite do, is no use
// here: MariaDB reads a correlated range (j.grp > page.grp) from the start of the queue's rows.
func mysqlGroupPage(p groupPageArgs) (string, []any) {
	cond, args := p.bounds("grp")
	return `SELECT grp, head IS NOT NULL, head FROM (
		SELECT page.grp, (SELECT j.id FROM rr_jobs j
				WHERE j.queue = page.queue AND j.grp = page.grp AND j.reserved_by IS NULL AND j.available_at <= {now}
				ORDER BY j.priority, j.available_at, j.id LIMIT 1) AS head
		FROM (SELECT DISTINCT queue, grp FROM rr_jobs
			WHERE queue = ? AND ` + cond + ` ORDER BY grp LIMIT ?) page) heads
		ORDER BY grp`, append(append([]any{p.queue}, args...), p.size)
}

// mysqlClaimHeads takes the heads the page read where one job of a group is wanted, picks the
// others' ids (MariaDB has no LATERAL; reading whole rows in the UNION would materialise them
// with their payloads), reserves them, checking again that each is still the queue's and
// unreserved (an operator's Move or Flush may have taken it), and reads them back.
func mysqlClaimHeads(ctx context.Context, s *sqlStore, tx *sql.Tx, c claimArgs, heads []groupHead) (map[string][]Job, error) {
	var (
		ids  []int64
		pick []groupHead
	)
	for _, h := range heads {
		if h.want == 1 && h.first != 0 {
			ids = append(ids, h.first)
		} else {
			pick = append(pick, h)
		}
	}
	if len(pick) > 0 {
		query, args := groupHeadsUnion(unionMember{open: `(`, limit: `?`, close: `)`}, c.queue, pick)
		picked, err := s.ids(ctx, tx, query, args...)
		if err != nil {
			return nil, err
		}
		ids = append(ids, picked...)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	if _, err := s.exec(ctx, tx, `UPDATE rr_jobs SET `+claimSet+` WHERE id IN (`+marks(len(ids))+`) AND queue = ? AND reserved_by IS NULL`,
		append(append([]any{c.node, c.token, c.leaseMs}, anySlice(ids)...), c.queue)...); err != nil {
		return nil, err
	}
	rows, err := s.query(ctx, tx, `SELECT `+claimedColumns+`, grp FROM rr_jobs WHERE claim_token = ? AND id IN (`+marks(len(ids))+`)`,
		append([]any{c.token}, anySlice(ids)...)...)
	if err != nil {
		return nil, err
	}
	return scanClaimedGroups(rows, c.token)
}

// OpenMySQL connects with go-sql-driver/mysql and applies the migrations. ctx bounds the start.
func OpenMySQL(ctx context.Context, o ServerOptions) (Store, error) {
	cfg, err := mysql.ParseDSN(strings.TrimPrefix(o.DSN, "mysql://"))
	if err != nil {
		return nil, fmt.Errorf("parse dsn: %w", err)
	}
	cfg.ParseTime = true
	// Rows matched, not rows changed, as PostgreSQL and SQLite count them: an update that writes the
	// values a row already has still found it.
	cfg.ClientFoundRows = true
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = o.ConnectTimeout // the dial; the context bounds the handshake
	}
	// Every statement at READ COMMITTED, autocommit ones included (the reaper, Flush, Move, prune):
	// at MySQL's default REPEATABLE READ a range delete takes gap locks that block pushes.
	probeCtx, cancel := withTimeout(ctx, o.ConnectTimeout)
	name, err := isolationVariable(probeCtx, cfg)
	cancel()
	if err != nil {
		return nil, err
	}
	cfg.Params[name] = "'READ-COMMITTED'"
	// A statement with arguments in one round trip: without this, the driver prepares, executes and
	// closes each one (two waits for the server instead of one). go-sql-driver escapes by the
	// connection's charset, and refuses to interpolate under the few multi-byte collations where
	// that is unsafe: those keep server-side statements.
	cfg.InterpolateParams = true
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		cfg.InterpolateParams = false
		connector, err = mysql.NewConnector(cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("parse dsn: %w", err)
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(o.MaxOpenConns)
	db.SetMaxIdleConns(o.MaxOpenConns)
	db.SetConnMaxLifetime(5 * time.Minute)
	s := &sqlStore{d: mysqlDialect, w: db, r: db, clock: o.clock()}
	if err := s.start(ctx, o.Migrate, o.ConnectTimeout, o.MigrateTimeout); err != nil {
		return nil, err
	}
	return s, nil
}

// isolationVariable is the session variable of the isolation level: transaction_isolation on
// MySQL 8 (which removed tx_isolation), tx_isolation on MariaDB before 11.1 (which lacks the other).
func isolationVariable(ctx context.Context, cfg *mysql.Config) (string, error) {
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return "", fmt.Errorf("parse dsn: %w", err)
	}
	db := sql.OpenDB(connector)
	defer db.Close()
	var version string
	if err := db.QueryRowContext(ctx, `SELECT VERSION()`).Scan(&version); err != nil {
		return "", connectError(ctx, err)
	}
	if strings.Contains(strings.ToLower(version), "mariadb") {
		return "tx_isolation", nil
	}
	return "transaction_isolation", nil
}
