package store

import (
	"context"
	"database/sql"
	"fmt"
)

// Counting a queue's jobs per group, a page at a time: the stored group column of a group_by queue,
// or the first value of any header.
//
// Pages go in value order (the database's collation) after a value: after = "" starts with the
// first group, the "" group (jobs without the header) included. That group comes first, and a page
// of one that holds it takes the next group too: "" as the next page's after would start over.

// pageAsk is how many groups a page asks the database for.
func pageAsk(after string, limit int) int {
	if after == "" && limit == 1 {
		return 2
	}
	return limit
}

// pageCut cuts a page read with pageAsk to its limit, one more when it starts with the "" group.
func pageCut(page []GroupCount, limit int) []GroupCount {
	if len(page) > limit && page[0].Value != "" {
		return page[:limit]
	}
	return page
}

// pageAfter is the condition on a group expression that keeps the values after a page's cursor,
// and its arguments.
func pageAfter(column, after string) (string, []any) {
	if after == "" {
		return column + ` >= ''`, nil
	}
	return column + ` > ?`, []any{after}
}

// waitingGroupNames lists a page of the groups with a waiting job in order, as they come out of the
// partial rr_jobs_group (PostgreSQL, SQLite): an ordered index range that the LIMIT stops, about as
// many index entries as the page's groups hold jobs (what counting them reads anyway).
const waitingGroupNames = `SELECT grp FROM rr_jobs WHERE queue = ? AND reserved_by IS NULL AND grp IS NOT NULL AND %[1]s
	GROUP BY grp ORDER BY grp LIMIT ?`

// groupPageNamesSQL lists a page of a group_by queue's groups: the first limit of those with a
// waiting job (the dialect's groupNames), a reserved job (through rr_jobs_reserved: the jobs in
// flight, a few per worker) or an overflow entry (their jobs wait in the target). Format: the
// dialect's groupNames, then the cursor's condition (pageAfter).
// Arguments: queue, cursor, limit, queue, cursor, queue, cursor, limit.
const groupPageNamesSQL = `SELECT g FROM (
		SELECT grp AS g FROM (%s) waiting
		UNION
		SELECT grp FROM rr_jobs WHERE queue = ? AND {held} AND grp IS NOT NULL AND %%[1]s
		UNION
		SELECT grp FROM rr_overflow WHERE queue = ? AND %%[1]s) t
	ORDER BY g LIMIT ?`

// groupPageCountsSQL counts the jobs of a page's groups: the waiting ones through rr_jobs_group,
// the reserved ones through rr_jobs_reserved, with the overflow. Format: the waiting rows'
// condition on reserved_by, what the reserved rows take off the ready and delayed counts (see
// groupIndexAll), and the page's groups as placeholders. Arguments: queue, groups, three times.
const groupPageCountsSQL = `SELECT g, SUM(n_ready), SUM(n_delayed), SUM(n_reserved), MAX(target) FROM (
		SELECT grp AS g,
			SUM(CASE WHEN available_at <= {now} THEN 1 ELSE 0 END) AS n_ready,
			SUM(CASE WHEN available_at > {now} THEN 1 ELSE 0 END) AS n_delayed,
			0 AS n_reserved, '' AS target
		FROM rr_jobs WHERE queue = ? AND %[1]s grp IN (%[3]s) GROUP BY grp
		UNION ALL
		SELECT grp, %[2]s, COUNT(*), '' FROM rr_jobs
			WHERE queue = ? AND {held} AND grp IS NOT NULL AND grp IN (%[3]s) GROUP BY grp
		UNION ALL
		SELECT grp, 0, 0, 0, target_queue FROM rr_overflow WHERE queue = ? AND grp IN (%[3]s)) t
	GROUP BY g ORDER BY g`

// groupPageCounts renders groupPageCountsSQL for a page's groups, with its arguments.
func (s *sqlStore) groupPageCounts(queue string, groups []any) (string, []any) {
	waiting, off := `reserved_by IS NULL AND grp IS NOT NULL AND`, `0, 0`
	if s.d.groupIndexAll {
		waiting, off = ``, `-SUM(CASE WHEN available_at <= {now} THEN 1 ELSE 0 END), -SUM(CASE WHEN available_at > {now} THEN 1 ELSE 0 END)`
	}
	args := append(append([]any{queue}, groups...), queue)
	args = append(append(append(args, groups...), queue), groups...)
	return fmt.Sprintf(groupPageCountsSQL, waiting, off, marks(len(groups))), args
}

// groupPageNames renders groupPageNamesSQL for a cursor and a page size, with its arguments.
func (s *sqlStore) groupPageNames(queue, after string, ask int) (string, []any) {
	cond, cursor := pageAfter("grp", after)
	args := append(append([]any{queue}, cursor...), ask, queue)
	args = append(append(args, cursor...), queue)
	args = append(append(args, cursor...), ask)
	return fmt.Sprintf(fmt.Sprintf(groupPageNamesSQL, s.d.groupNames), cond), args
}

// CountGroups counts a page of a group_by queue's jobs per group: up to limit groups after the
// value after, each with its overflow target. Two statements read the page's rows alone: one lists
// its groups, one counts them.
func (s *sqlStore) CountGroups(ctx context.Context, queue, after string, limit int) ([]GroupCount, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, fmt.Errorf("count queue %s by group: limit %d, want at least 1", queue, limit)
	}
	query, args := s.groupPageNames(queue, after, pageAsk(after, limit))
	groups, err := queryColumn[string](ctx, s, s.r, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list the groups of queue %s: %w", queue, err)
	}
	if len(groups) == 0 {
		return nil, nil
	}
	query, args = s.groupPageCounts(queue, anySlice(groups))
	rows, err := s.query(ctx, s.r, query, args...)
	if err != nil {
		return nil, fmt.Errorf("count queue %s by group: %w", queue, err)
	}
	defer rows.Close()
	var out []GroupCount
	for rows.Next() {
		var g GroupCount
		if err := rows.Scan(&g.Value, &g.Ready, &g.Delayed, &g.Reserved, &g.OverflowTo); err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return pageCut(out, limit), nil
}

// CountByHeader counts a page of a queue's jobs per first value of a header (jobs without it count
// as ""). No index holds a header's values: every page reads the whole queue, and answers with at
// most limit groups. group_by stores the group in a column and its counts read only the page.
func (s *sqlStore) CountByHeader(ctx context.Context, queue, header, after string, limit int) ([]GroupCount, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if !HeaderName.MatchString(header) {
		return nil, fmt.Errorf("header name %q: use 1-128 letters, digits, '_', '-' or '.'", header)
	}
	if limit <= 0 {
		return nil, fmt.Errorf("count queue %s by header %s: limit %d, want at least 1", queue, header, limit)
	}
	cond, cursor := pageAfter("g", after)
	rows, err := s.query(ctx, s.r, `SELECT g,
			SUM(CASE WHEN reserved_by IS NULL AND available_at <= {now} THEN 1 ELSE 0 END),
			SUM(CASE WHEN reserved_by IS NULL AND available_at > {now} THEN 1 ELSE 0 END),
			SUM(CASE WHEN {held} THEN 1 ELSE 0 END)
		FROM (SELECT COALESCE(`+s.headerExpr()+`, '') AS g, reserved_by, available_at FROM rr_jobs WHERE queue = ? AND {live}) t
		WHERE `+cond+`
		GROUP BY g ORDER BY g LIMIT ?`, append(append([]any{s.headerPath(header), queue}, cursor...), pageAsk(after, limit))...)
	if err != nil {
		return nil, fmt.Errorf("count queue %s by header %s: %w", queue, header, err)
	}
	defer rows.Close()
	var out []GroupCount
	for rows.Next() {
		var (
			g     GroupCount
			value sql.NullString
		)
		if err := rows.Scan(&value, &g.Ready, &g.Delayed, &g.Reserved); err != nil {
			return nil, err
		}
		g.Value = value.String
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return pageCut(out, limit), nil
}
