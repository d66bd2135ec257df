package store

import (
	"context"
	"fmt"
)

// Counting a queue's jobs per group: the stored group column of a group_by queue, or the first
// value of any header.

func (s *sqlStore) CountGroups(ctx context.Context, queue string) ([]GroupCount, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	// The groups with jobs here, and those in overflow (their jobs wait in the target).
	rows, err := s.query(ctx, s.r, `SELECT g, SUM(n_ready), SUM(n_delayed), SUM(n_reserved), MAX(target) FROM (
			SELECT grp AS g,
				CASE WHEN reserved_by IS NULL AND available_at <= {now} THEN 1 ELSE 0 END AS n_ready,
				CASE WHEN reserved_by IS NULL AND available_at > {now} THEN 1 ELSE 0 END AS n_delayed,
				CASE WHEN reserved_by IS NOT NULL THEN 1 ELSE 0 END AS n_reserved,
				'' AS target
			FROM rr_jobs WHERE queue = ? AND grp IS NOT NULL
			UNION ALL
			SELECT grp, 0, 0, 0, target_queue FROM rr_overflow WHERE queue = ?) t
		GROUP BY g ORDER BY g`, queue, queue)
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
	return out, rows.Err()
}

func (s *sqlStore) CountByHeader(ctx context.Context, queue, header string) ([]GroupCount, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if !HeaderName.MatchString(header) {
		return nil, fmt.Errorf("header name %q: use 1-128 letters, digits, '_', '-' or '.'", header)
	}
	expr := s.headerExpr()
	rows, err := s.query(ctx, s.r, `SELECT g,
			SUM(CASE WHEN reserved_by IS NULL AND available_at <= {now} THEN 1 ELSE 0 END),
			SUM(CASE WHEN reserved_by IS NULL AND available_at > {now} THEN 1 ELSE 0 END),
			SUM(CASE WHEN reserved_by IS NOT NULL THEN 1 ELSE 0 END)
		FROM (SELECT `+expr+` AS g, reserved_by, available_at FROM rr_jobs WHERE queue = ?) t
		GROUP BY g ORDER BY g`, s.headerPath(header), queue)
	if err != nil {
		return nil, fmt.Errorf("count queue %s by header %s: %w", queue, header, err)
	}
	defer rows.Close()
	var out []GroupCount
	for rows.Next() {
		var (
			g     GroupCount
			value *string
		)
		if err := rows.Scan(&value, &g.Ready, &g.Delayed, &g.Reserved); err != nil {
			return nil, err
		}
		if value != nil {
			g.Value = *value
		}
		out = append(out, g)
	}
	return out, rows.Err()
}
