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

// groupCountsSQL counts a page of a group_by queue's groups in one statement, reading only the
// page's rows, through the indexes:
//   - waiting: the first limit groups with a waiting job after the cursor, counted as they come out
//     of rr_jobs_group in group order (an ordered index range that the LIMIT stops: about as many
//     index entries as the page's groups hold waiting jobs);
//   - reserved: the queue's reserved rows after the cursor, through rr_jobs_reserved (the jobs in
//     flight: a few per worker);
//   - overflow: the queue's groups in overflow after the cursor (their jobs wait in the target).
//
// The page is the first limit groups of the three. A group of the page with waiting jobs is among
// the first limit waiting groups, so its waiting counts are whole.
// Format: the cursor condition three times (pageAfter), each followed by its arguments.
// Arguments: queue, cursor, limit, queue, cursor, queue, cursor, limit.
const groupCountsSQL = `SELECT g, SUM(n_ready), SUM(n_delayed), SUM(n_reserved), MAX(target) FROM (
		SELECT g, n_ready, n_delayed, 0 AS n_reserved, '' AS target FROM (
			SELECT grp AS g,
				SUM(CASE WHEN available_at <= {now} THEN 1 ELSE 0 END) AS n_ready,
				SUM(CASE WHEN available_at > {now} THEN 1 ELSE 0 END) AS n_delayed
			FROM rr_jobs WHERE queue = ? AND reserved_by IS NULL AND grp IS NOT NULL AND %[1]s
			GROUP BY grp ORDER BY grp LIMIT ?) waiting
		UNION ALL
		SELECT grp, 0, 0, 1, '' FROM rr_jobs
			WHERE queue = ? AND reserved_by IS NOT NULL AND grp IS NOT NULL AND %[1]s
		UNION ALL
		SELECT grp, 0, 0, 0, target_queue FROM rr_overflow WHERE queue = ? AND %[1]s) t
	GROUP BY g ORDER BY g LIMIT ?`

// CountGroups counts a page of a group_by queue's jobs per group: up to limit groups after the
// value after, each with its overflow target.
func (s *sqlStore) CountGroups(ctx context.Context, queue, after string, limit int) ([]GroupCount, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, fmt.Errorf("count queue %s by group: limit %d, want at least 1", queue, limit)
	}
	cond, cursor := pageAfter("grp", after)
	ask := pageAsk(after, limit)
	args := append(append([]any{queue}, cursor...), ask, queue)
	args = append(append(args, cursor...), queue)
	args = append(append(args, cursor...), ask)
	rows, err := s.query(ctx, s.r, fmt.Sprintf(groupCountsSQL, cond), args...)
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
			SUM(CASE WHEN reserved_by IS NOT NULL THEN 1 ELSE 0 END)
		FROM (SELECT COALESCE(`+s.headerExpr()+`, '') AS g, reserved_by, available_at FROM rr_jobs WHERE queue = ?) t
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
