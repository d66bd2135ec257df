package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// DeclaredPipeline is a pipeline created with jobs.Declare, kept so it survives restarts.
type DeclaredPipeline struct {
	Name      string
	Options   map[string]string
	Consuming bool
}

// Declared is implemented by every store.
type Declared interface {
	// SavePipeline records a declared pipeline (keeping its consuming flag if it exists).
	SavePipeline(ctx context.Context, name string, options map[string]string, now time.Time) error
	SetConsuming(ctx context.Context, name string, consuming bool, now time.Time) error
	DeletePipeline(ctx context.Context, name string) error
	DeclaredPipelines(ctx context.Context) ([]DeclaredPipeline, error)
}

var _ Declared = (*sqlStore)(nil)

func (s *sqlStore) SavePipeline(ctx context.Context, name string, options map[string]string, now time.Time) error {
	if err := s.check(); err != nil {
		return err
	}
	opts, err := json.Marshal(options)
	if err != nil {
		return err
	}
	tx, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	res, err := tx.ExecContext(ctx, s.q(`UPDATE rr_pipelines SET options = ?, updated_at = ? WHERE name = ?`), string(opts), ms(now), name)
	if err != nil {
		return fmt.Errorf("save pipeline %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err = tx.ExecContext(ctx, s.q(`INSERT INTO rr_pipelines (name, options, consuming, updated_at) VALUES (?, ?, ?, ?)`),
			name, string(opts), false, ms(now)); err != nil {
			return fmt.Errorf("save pipeline %s: %w", name, err)
		}
	}
	return tx.Commit()
}

func (s *sqlStore) SetConsuming(ctx context.Context, name string, consuming bool, now time.Time) error {
	if err := s.check(); err != nil {
		return err
	}
	if _, err := s.w.ExecContext(ctx, s.q(`UPDATE rr_pipelines SET consuming = ?, updated_at = ? WHERE name = ?`), consuming, ms(now), name); err != nil {
		return fmt.Errorf("record pipeline %s consuming=%v: %w", name, consuming, err)
	}
	return nil
}

func (s *sqlStore) DeletePipeline(ctx context.Context, name string) error {
	if err := s.check(); err != nil {
		return err
	}
	if _, err := s.w.ExecContext(ctx, s.q(`DELETE FROM rr_pipelines WHERE name = ?`), name); err != nil {
		return fmt.Errorf("forget pipeline %s: %w", name, err)
	}
	return nil
}

func (s *sqlStore) DeclaredPipelines(ctx context.Context) ([]DeclaredPipeline, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT name, options, consuming FROM rr_pipelines ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list declared pipelines: %w", err)
	}
	defer rows.Close()
	var out []DeclaredPipeline
	for rows.Next() {
		var (
			p    DeclaredPipeline
			opts string
		)
		if err := rows.Scan(&p.Name, &opts, &p.Consuming); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(opts), &p.Options); err != nil {
			return nil, fmt.Errorf("declared pipeline %s: options: %w", p.Name, err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}
