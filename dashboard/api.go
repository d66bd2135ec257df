package dashboard

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/rr-sql/sqljobs/rpc"
)

// The JSON API: the numbers of the pages, for scripts. Times are RFC 3339 in UTC with milliseconds.

const apiTime = "2006-01-02T15:04:05.000Z07:00"

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func apiError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

// APIMinute is one step of a pipeline's history.
type APIMinute struct {
	At        string `json:"at"`
	Pushed    int64  `json:"pushed"`
	Processed int64  `json:"processed"`
	Failed    int64  `json:"failed"`
	// Depth is the queue's depth (ready, delayed, reserved) seen last in the step; absent when no
	// node recorded the step.
	Depth *int64 `json:"depth,omitempty"`
}

// APIPipeline is a pipeline's line of /api/overview and the head of /api/pipelines/NAME.
type APIPipeline struct {
	rpc.PipelineStats
	Consuming bool `json:"consuming"`
	// State is consuming or paused; elsewhere for a pipeline of another node whose state is
	// known there only (one from its .rr.yaml).
	State string `json:"state"`
	// OnAnotherNode: the pipeline runs on another node sharing the database, not on this one.
	OnAnotherNode bool `json:"on_another_node"`
	// CountsKnown is false when the pipeline's queue is unknown here (another node's pipeline from
	// its configuration): ready, delayed, reserved and failed are then zero, last_minute holds
	// the depth its node recorded.
	CountsKnown bool `json:"counts_known"`
	// LastMinute is what the cluster did in the last complete minute (null when no node recorded it).
	LastMinute *APIMinute `json:"last_minute"`
	Error      string     `json:"error,omitempty"`
}

func apiMinute(b bucket) APIMinute {
	m := APIMinute{At: b.At.UTC().Format(apiTime), Pushed: b.Pushed, Processed: b.Processed, Failed: b.Failed}
	if b.Known {
		d := b.Depth
		m.Depth = &d
	}
	return m
}

func apiPipeline(r row) APIPipeline {
	st := rpc.PipelineStats{Pipeline: r.Name, Queue: r.Queue, Connection: r.Connection,
		Ready: r.Ready, Delayed: r.Delayed, Reserved: r.Reserved, Failed: r.Failed, OldestReadyMs: r.OldestReadyMs}
	out := APIPipeline{PipelineStats: st, Consuming: r.Consuming, State: r.State(), OnAnotherNode: r.Elsewhere,
		CountsKnown: r.Queue != "" && r.Err == "", Error: r.Err}
	if r.Last.Known {
		m := apiMinute(r.Last)
		out.LastMinute = &m
	}
	return out
}

func (s *Server) apiOverview(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
	defer cancel()
	out := struct {
		Pipelines []APIPipeline `json:"pipelines"`
	}{Pipelines: []APIPipeline{}}
	for _, x := range s.rows(ctx, s.cluster(ctx, s.src.Pipelines()), spanHour) {
		out.Pipelines = append(out.Pipelines, apiPipeline(x))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) apiPipeline(w http.ResponseWriter, r *http.Request) {
	p, ok := s.src.Pipeline(r.PathValue("name"))
	if !ok {
		apiError(w, http.StatusNotFound, errUnknown(r.PathValue("name")))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
	defer cancel()
	x := s.rows(ctx, []Pipeline{p}, spanHour)[0]
	options := map[string]string{}
	for _, o := range p.Options {
		options[o[0]] = o[1]
	}
	writeJSON(w, http.StatusOK, struct {
		APIPipeline
		Options map[string]string `json:"options"`
	}{apiPipeline(x), options})
}

func (s *Server) apiHistory(w http.ResponseWriter, r *http.Request) {
	p, ok := s.src.Pipeline(r.PathValue("name"))
	if !ok {
		apiError(w, http.StatusNotFound, errUnknown(r.PathValue("name")))
		return
	}
	rng := r.URL.Query().Get("range")
	if rng != "" && rng != spanHour.Name && rng != spanDay.Name {
		apiError(w, http.StatusBadRequest, errRange(rng))
		return
	}
	sp := spanOf(rng)
	ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
	defer cancel()
	bs := buckets(s.history(ctx, []Pipeline{p}, sp)[p.Name], sp, time.Now())
	out := struct {
		Pipeline    string      `json:"pipeline"`
		Range       string      `json:"range"`
		StepSeconds int         `json:"step_seconds"`
		Steps       []APIMinute `json:"steps"`
	}{p.Name, sp.Name, int(sp.Step.Seconds()), make([]APIMinute, 0, len(bs))}
	for _, b := range bs {
		out.Steps = append(out.Steps, apiMinute(b))
	}
	writeJSON(w, http.StatusOK, out)
}

type errRange string

func (e errRange) Error() string { return "range " + strconv.Quote(string(e)) + ": use hour or day" }

func (s *Server) apiFailed(w http.ResponseWriter, r *http.Request) {
	f := s.filterOf(r.URL.Query(), s.src.Pipelines())
	limit := failedPage
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			apiError(w, http.StatusBadRequest, errLimit(v))
			return
		}
		limit = n
	}
	ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
	defer cancel()
	list, err := s.searchFailed(ctx, f, limit)
	if err != nil {
		apiError(w, http.StatusNotFound, err)
		return
	}
	out := rpc.FailedListResponse{Jobs: []rpc.FailedJob{}}
	for _, j := range list {
		out.Jobs = append(out.Jobs, rpc.FailedJob{ID: j.ID, JobID: j.JobID, Job: j.Name, Pipeline: f.Pipeline, Payload: string(j.Payload),
			Headers: j.Headers, Attempts: j.Attempts, Error: j.Error, FailedAt: j.FailedAt.UTC().Format(apiTime)})
	}
	if len(list) == limit {
		out.NextAfterID = list[len(list)-1].ID
	}
	writeJSON(w, http.StatusOK, out)
}

type errLimit string

func (e errLimit) Error() string { return "limit " + strconv.Quote(string(e)) + ": use 1 to 1000" }

func (s *Server) apiNodes(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
	defer cancel()
	type apiNode struct {
		ID          string `json:"id"`
		Host        string `json:"host"`
		PID         int    `json:"pid"`
		HeartbeatAt string `json:"heartbeat_at"`
		Held        int64  `json:"held"`
		This        bool   `json:"this_node"`
	}
	type apiConn struct {
		Connection string    `json:"connection"`
		Dialect    string    `json:"dialect"`
		Nodes      []apiNode `json:"nodes"`
		Error      string    `json:"error,omitempty"`
	}
	out := struct {
		Connections []apiConn `json:"connections"`
	}{Connections: []apiConn{}}
	for _, c := range s.nodeList(ctx) {
		ac := apiConn{Connection: c.Name, Dialect: c.Dialect, Nodes: []apiNode{}, Error: c.Err}
		for _, n := range c.Nodes {
			ac.Nodes = append(ac.Nodes, apiNode{n.ID, n.Host, n.PID, n.Heartbeat.UTC().Format(apiTime), n.Held, n.This})
		}
		out.Connections = append(out.Connections, ac)
	}
	writeJSON(w, http.StatusOK, out)
}
