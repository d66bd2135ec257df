package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/rpc"
	"os"
	"strings"
	"time"

	jobsProto "github.com/roadrunner-server/api/v4/build/jobs/v1"
	goridgeRpc "github.com/roadrunner-server/goridge/v3/pkg/rpc"
	"github.com/rr-sql/sqljobs/config"
	"github.com/rr-sql/sqljobs/store"
	"go.uber.org/zap"
)

// RestoreDeclared re-creates the pipelines that were created with jobs.Declare before rr
// restarted (and resumes those that were consuming), through RoadRunner's own jobs RPC at
// rpcAddr, exactly as a client would. It reads every configured connection, and the default
// SQLite file only if it already exists (so a build that never uses the driver creates no file).
func (r *Registry) RestoreDeclared(ctx context.Context, rpcAddr string) error {
	type declared struct {
		name      string
		options   map[string]string
		consuming bool
	}
	var all []declared
	for _, cc := range r.cfg.Connections {
		if cc.Dialect == config.SQLite {
			if _, err := os.Stat(cc.DSN); err != nil {
				continue
			}
		}
		c, err := r.acquire(ctx, cc)
		if err != nil {
			return err
		}
		list, err := c.Store.DeclaredPipelines(ctx)
		c.Release(ctx)
		if err != nil {
			return fmt.Errorf("connection %q: %w", cc.Name, err)
		}
		for _, p := range list {
			all = append(all, declared{p.Name, p.Options, p.Consuming})
		}
	}
	if len(all) == 0 {
		return nil
	}
	if rpcAddr == "" {
		return errors.New("declared pipelines cannot be restored: the rpc plugin is not configured (rpc.listen)")
	}
	client, err := dialRPC(ctx, rpcAddr)
	if err != nil {
		return err
	}
	defer client.Close()
	for _, p := range all {
		r.restoring(p.name, true)
		err := client.Call("jobs.Declare", &jobsProto.DeclareRequest{Pipeline: p.options}, &jobsProto.Empty{})
		r.restoring(p.name, false)
		if err != nil && strings.Contains(err.Error(), store.ErrPipelineGone.Error()) {
			r.log.Info("declared pipeline destroyed by another node while this one restored it; not restored", zap.String("pipeline", p.name))
			continue
		}
		if err != nil && !strings.Contains(err.Error(), "already exists") {
			r.log.Error("restore declared pipeline", zap.String("pipeline", p.name), zap.Error(err))
			continue
		}
		if p.consuming {
			err = client.Call("jobs.Resume", &jobsProto.Pipelines{Pipelines: []string{p.name}}, &jobsProto.Empty{})
			if err != nil && !strings.Contains(err.Error(), "already consuming") {
				r.log.Error("resume restored pipeline", zap.String("pipeline", p.name), zap.Error(err))
				continue
			}
		}
		r.log.Info("declared pipeline restored", zap.String("pipeline", p.name), zap.Bool("consuming", p.consuming))
	}
	return nil
}

// restoring marks a pipeline as being re-created from the database by this node's restore.
func (r *Registry) restoring(name string, on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if on {
		r.restored[name] = struct{}{}
	} else {
		delete(r.restored, name)
	}
}

// Restoring tells whether a pipeline being declared is one this node re-creates from the
// database (and so must not be saved again if another node destroyed it meanwhile).
func (r *Registry) Restoring(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.restored[name]
	return ok
}

// Pipelines lists the pipelines RoadRunner's jobs plugin has (jobs.List), through its RPC at
// rpcAddr. jobs.Destroy removes a pipeline from that list before it stops its driver; a shutdown
// stops the drivers first: a stopping driver that is no longer listed is being destroyed.
func Pipelines(ctx context.Context, rpcAddr string) ([]string, error) {
	if rpcAddr == "" {
		return nil, errors.New("the rpc plugin is not configured (rpc.listen)")
	}
	client, err := dialRPC(ctx, rpcAddr)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	var out jobsProto.Pipelines
	if err := client.Call("jobs.List", &jobsProto.Empty{}, &out); err != nil {
		return nil, fmt.Errorf("jobs.List: %w", err)
	}
	return out.GetPipelines(), nil
}

// PauseResume pauses (or resumes) a pipeline through the jobs plugin's RPC (jobs.Pause,
// jobs.Resume), as `rr jobs pause` and the PHP client do.
func PauseResume(ctx context.Context, rpcAddr, pipeline string, resume bool) error {
	if rpcAddr == "" {
		return errors.New("the rpc plugin is not configured (rpc.listen)")
	}
	client, err := dialRPC(ctx, rpcAddr)
	if err != nil {
		return err
	}
	defer client.Close()
	method := "jobs.Pause"
	if resume {
		method = "jobs.Resume"
	}
	if err := client.Call(method, &jobsProto.Pipelines{Pipelines: []string{pipeline}}, &jobsProto.Empty{}); err != nil {
		return fmt.Errorf("%s %s: %w", method, pipeline, err)
	}
	return nil
}

// dialRPC connects to RoadRunner's RPC listener, waiting for it to come up.
func dialRPC(ctx context.Context, addr string) (*rpc.Client, error) {
	network, address, ok := strings.Cut(addr, "://")
	if !ok {
		network, address = "tcp", addr
	}
	var d net.Dialer
	for {
		conn, err := d.DialContext(ctx, network, address)
		if err == nil {
			return rpc.NewClientWithCodec(goridgeRpc.NewClientCodec(conn)), nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("restore declared pipelines: rpc at %s: %w", addr, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
