package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// DeclaredPipeline is a pipeline created with jobs.Declare, kept so it survives restarts.
type DeclaredPipeline struct {
	Name      string
	Options   map[string]string
	Consuming bool
}

// ErrPipelineGone: the declared pipeline was destroyed (by another node) since it was read.
var ErrPipelineGone = errors.New("the declared pipeline no longer exists (destroyed by another node)")

// Declared is implemented by every store. Declared pipelines belong to the database, so to every
// node that shares it.
type Declared interface {
	// SavePipeline records a declared pipeline (keeping its consuming flag if it exists).
	SavePipeline(ctx context.Context, name string, options map[string]string) error
	// KeepPipeline confirms a pipeline re-created from the database at start: it updates the row
	// and never inserts one, so a restore cannot bring back a pipeline another node destroyed in
	// the meantime (ErrPipelineGone).
	KeepPipeline(ctx context.Context, name string, options map[string]string) error
	SetConsuming(ctx context.Context, name string, consuming bool) error
	DeletePipeline(ctx context.Context, name string) error
	DeclaredPipelines(ctx context.Context) ([]DeclaredPipeline, error)
}

var _ Declared = (*sqlStore)(nil)

func (s *sqlStore) SavePipeline(ctx context.Context, name string, options map[string]string) error {
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
	updated, err := s.updatePipeline(ctx, tx, name, opts)
	if err != nil {
		return err
	}
	if !updated {
		if _, err = s.exec(ctx, tx, `INSERT INTO rr_pipelines (name, options, consuming, updated_at) VALUES (?, ?, ?, {now})`,
			name, string(opts), false); err != nil {
			return fmt.Errorf("save pipeline %s: %w", name, err)
		}
	}
	return tx.Commit()
}

func (s *sqlStore) KeepPipeline(ctx context.Context, name string, options map[string]string) error {
	if err := s.check(); err != nil {
		return err
	}
	opts, err := json.Marshal(options)
	if err != nil {
		return err
	}
	updated, err := s.updatePipeline(ctx, s.w, name, opts)
	if err != nil {
		return err
	}
	if !updated {
		return fmt.Errorf("pipeline %s: %w", name, ErrPipelineGone)
	}
	return nil
}

func (s *sqlStore) updatePipeline(ctx context.Context, on execer, name string, opts []byte) (bool, error) {
	res, err := s.exec(ctx, on, `UPDATE rr_pipelines SET options = ?, updated_at = {now} WHERE name = ?`, string(opts), name)
	if err != nil {
		return false, fmt.Errorf("save pipeline %s: %w", name, err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

func (s *sqlStore) SetConsuming(ctx context.Context, name string, consuming bool) error {
	if err := s.check(); err != nil {
		return err
	}
	if _, err := s.exec(ctx, s.w, `UPDATE rr_pipelines SET consuming = ?, updated_at = {now} WHERE name = ?`, consuming, name); err != nil {
		return fmt.Errorf("record pipeline %s consuming=%v: %w", name, consuming, err)
	}
	return nil
}

func (s *sqlStore) DeletePipeline(ctx context.Context, name string) error {
	if err := s.check(); err != nil {
		return err
	}
	if _, err := s.exec(ctx, s.w, `DELETE FROM rr_pipelines WHERE name = ?`, name); err != nil {
		return fmt.Errorf("forget pipeline %s: %w", name, err)
	}
	return nil
}

func (s *sqlStore) DeclaredPipelines(ctx context.Context) ([]DeclaredPipeline, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	rows, err := s.query(ctx, s.r, `SELECT name, options, consuming FROM rr_pipelines ORDER BY name`)
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
