package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// The dashboard's history and views: per-minute counts written by every node, read summed across
// the nodes; and the jobs each node holds. None of these reads the backlog: the history is a few
// rows per pipeline and minute, the held jobs are the reserved ones (at most every node's prefetch).

// HistoryMinute is one pipeline's minute: the jobs pushed, processed (acknowledged) and failed in
// it, and the queue's depth (ready, delayed and reserved) as last seen in it.
type HistoryMinute struct {
	Pipeline string
	// Minute is the minute's start.
	Minute                    time.Time
	Pushed, Processed, Failed int64
	Depth                     int64
}

// History is implemented by every store.
type History interface {
	// AddHistory adds a node's counts to its rows of the given minutes (one upsert per row, in one
	// transaction); the depth replaces the one stored.
	AddHistory(ctx context.Context, node string, minutes []HistoryMinute) error
	// ReadHistory returns the minutes from since on of the given pipelines, each summed over the
	// nodes (the depth is the largest any node saw), in pipeline then minute order. Minutes
	// without a row are absent.
	ReadHistory(ctx context.Context, pipelines []string, since time.Time) ([]HistoryMinute, error)
	// RecentPipelines names the pipelines any node wrote history for from since on, in name
	// order: with the declared ones, the pipelines the cluster runs on this database (a node writes
	// a row per pipeline each minute). It reads the minutes' index, not the backlog.
	RecentPipelines(ctx context.Context, since time.Time) ([]string, error)
	// PruneHistory deletes the minutes older than retention (by the database's clock), of every
	// pipeline: those of pipelines destroyed since go too.
	PruneHistory(ctx context.Context, retention time.Duration) (int64, error)
	// HeldByNode counts the reserved jobs of every node that holds some.
	HeldByNode(ctx context.Context) (map[string]int64, error)
	// SearchFailed pages through a queue's failed jobs (id order, after AfterID) whose job name
	// and error contain the given texts (case-insensitively; "" matches all).
	SearchFailed(ctx context.Context, f FailedSearch) ([]FailedJob, error)
}

// FailedSearch filters a queue's failed jobs.
type FailedSearch struct {
	Queue string
	// Name and Error are texts the job name and the error must contain ("" for any).
	Name, Error string
	AfterID     int64
	Limit       int
}

var _ History = (*sqlStore)(nil)

// addHistoryOnConflict is the history upsert of PostgreSQL and SQLite (3.24+).
const addHistoryOnConflict = `INSERT INTO rr_history AS h (pipeline, minute, node, pushed, processed, failed, depth)
	VALUES (?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (pipeline, minute, node) DO UPDATE SET pushed = h.pushed + excluded.pushed,
		processed = h.processed + excluded.processed, failed = h.failed + excluded.failed, depth = excluded.depth`

func (s *sqlStore) AddHistory(ctx context.Context, node string, minutes []HistoryMinute) error {
	if err := s.check(); err != nil {
		return err
	}
	if len(minutes) == 0 {
		return nil
	}
	tx, err := s.begin(ctx)
	if err != nil {
		return fmt.Errorf("write history: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	for _, m := range minutes {
		if _, err := s.exec(ctx, tx, s.d.addHistory, m.Pipeline, m.Minute.UnixMilli(), node, m.Pushed, m.Processed, m.Failed, m.Depth); err != nil {
			return fmt.Errorf("write history of %s: %w", m.Pipeline, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("write history: %w", err)
	}
	return nil
}

func (s *sqlStore) ReadHistory(ctx context.Context, pipelines []string, since time.Time) ([]HistoryMinute, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	var out []HistoryMinute
	for chunk := range slices.Chunk(pipelines, fencesPerStatement) {
		rows, err := s.query(ctx, s.r, `SELECT pipeline, minute, SUM(pushed), SUM(processed), SUM(failed), MAX(depth)
			FROM rr_history WHERE pipeline IN (`+marks(len(chunk))+`) AND minute >= ?
			GROUP BY pipeline, minute ORDER BY pipeline, minute`, append(anySlice(chunk), since.UnixMilli())...)
		if err != nil {
			return nil, fmt.Errorf("read history: %w", err)
		}
		for rows.Next() {
			var (
				m      HistoryMinute
				minute int64
			)
			if err := rows.Scan(&m.Pipeline, &minute, &m.Pushed, &m.Processed, &m.Failed, &m.Depth); err != nil {
				_ = rows.Close()
				return nil, fmt.Errorf("read history: %w", err)
			}
			m.Minute = time.UnixMilli(minute)
			out = append(out, m)
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read history: %w", err)
		}
	}
	return out, nil
}

func (s *sqlStore) RecentPipelines(ctx context.Context, since time.Time) ([]string, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	names, err := queryColumn[string](ctx, s, s.r, `SELECT DISTINCT pipeline FROM rr_history`+s.d.historyByMinute+` WHERE minute >= ? ORDER BY pipeline`, since.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("list the pipelines with recent history: %w", err)
	}
	return names, nil
}

func (s *sqlStore) PruneHistory(ctx context.Context, retention time.Duration) (int64, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	res, err := s.exec(ctx, s.w, `DELETE FROM rr_history WHERE minute < {now} - ?`, retention.Milliseconds())
	if err != nil {
		return 0, fmt.Errorf("prune the dashboard's history: %w", err)
	}
	return res.RowsAffected()
}

func (s *sqlStore) HeldByNode(ctx context.Context) (map[string]int64, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	rows, err := s.query(ctx, s.r, `SELECT reserved_by, COUNT(*) FROM rr_jobs WHERE {held} GROUP BY reserved_by`)
	if err != nil {
		return nil, fmt.Errorf("count held jobs: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var (
			node string
			n    int64
		)
		if err := rows.Scan(&node, &n); err != nil {
			return nil, fmt.Errorf("count held jobs: %w", err)
		}
		out[node] = n
	}
	return out, rows.Err()
}

// likeEscaper escapes a text for LIKE ... ESCAPE '!' ('!' rather than a backslash: string
// literals treat a backslash differently on each database).
var likeEscaper = strings.NewReplacer("!", "!!", "%", "!%", "_", "!_")

// containing is the bound LIKE pattern of a text to find anywhere, lower-cased.
func containing(text string) string { return "%" + likeEscaper.Replace(strings.ToLower(text)) + "%" }

func (s *sqlStore) SearchFailed(ctx context.Context, f FailedSearch) ([]FailedJob, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	where, args := `queue = ? AND id > ?`, []any{f.Queue, f.AfterID}
	if f.Name != "" {
		where, args = where+` AND LOWER(name) LIKE ? ESCAPE '!'`, append(args, containing(f.Name))
	}
	if f.Error != "" {
		where, args = where+` AND LOWER(error) LIKE ? ESCAPE '!'`, append(args, containing(f.Error))
	}
	rows, err := s.query(ctx, s.r, `SELECT id, job_id, queue, name, payload, headers, attempts, error, failed_at
		FROM rr_failed_jobs WHERE `+where+` ORDER BY id LIMIT ?`, append(args, f.Limit)...)
	if err != nil {
		return nil, fmt.Errorf("search failed jobs of %s: %w", f.Queue, err)
	}
	return scanFailed(rows)
}
