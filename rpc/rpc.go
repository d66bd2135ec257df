// Package rpc is the `sql` RPC service: what operators need beyond the `jobs` RPC. Call it from
// PHP with `$rpc->call('sql.Stats', ['pipelines' => ['emails']])` (JSON) or from Go with goridge's
// RPC client (gob). Every method names the pipeline it works on; arguments are validated first.
package rpc

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/rr-sql/sqljobs/store"
)

// callTimeout bounds one call's database work.
const callTimeout = 30 * time.Second

// bulkTimeout bounds a Flush or a Move: a million jobs take a while, in short batches that let
// pushes and claims run between them.
const bulkTimeout = 15 * time.Minute

// Target is a pipeline as the service sees it.
type Target struct {
	Pipeline   string
	Queue      string
	Connection string
	Store      store.Store
	// Wake nudges the pipeline's local consumer after jobs became ready (retry, move).
	Wake func()
	// GroupBy is the pipeline's group_by header ("" without).
	GroupBy string
}

// Pipelines finds the live `sql` pipelines of this node.
type Pipelines interface {
	Lookup(pipeline string) (Target, bool)
	Names() []string
}

// Service is registered by the rpc plugin as `sql.Method`.
type Service struct {
	Pipelines Pipelines
	// ScheduleList lists the sql.schedules entries (nil: none).
	ScheduleList func(ctx context.Context) ([]ScheduleEntry, error)
}

func (s *Service) target(pipeline string) (Target, error) {
	if pipeline == "" {
		return Target{}, errors.New("pipeline is required")
	}
	t, ok := s.Pipelines.Lookup(pipeline)
	if !ok {
		names := s.Pipelines.Names()
		sort.Strings(names)
		return Target{}, fmt.Errorf("unknown sql pipeline %q (sql pipelines here: %v)", pipeline, names)
	}
	return t, nil
}

func (s *Service) group(header, value string) (store.Group, error) {
	if header == "" {
		if value != "" {
			return store.Group{}, errors.New("value given without header: name the header that holds the group")
		}
		return store.Group{}, nil
	}
	if !store.HeaderName.MatchString(header) {
		return store.Group{}, fmt.Errorf("header %q: use 1-128 letters, digits, '_', '-' or '.'", header)
	}
	return store.Group{Header: header, Value: value}, nil
}

// StatsRequest names pipelines; empty means all of this node's sql pipelines.
type StatsRequest struct {
	Pipelines []string `json:"pipelines"`
}

// PipelineStats are one pipeline's numbers.
type PipelineStats struct {
	Pipeline   string `json:"pipeline"`
	Queue      string `json:"queue"`
	Connection string `json:"connection"`
	Ready      int64  `json:"ready"`
	Delayed    int64  `json:"delayed"`
	Reserved   int64  `json:"reserved"`
	Failed     int64  `json:"failed"`
	// OldestReadyMs is the age of the oldest job waiting to run, in milliseconds.
	OldestReadyMs int64 `json:"oldest_ready_ms"`
}

// StatsResponse lists the pipelines' stats in name order.
type StatsResponse struct {
	Stats []PipelineStats `json:"stats"`
}

// Stats reports per pipeline: ready, delayed, reserved, failed and the oldest ready job's age.
func (s *Service) Stats(in *StatsRequest, out *StatsResponse) error {
	names := in.Pipelines
	if len(names) == 0 {
		names = s.Pipelines.Names()
	}
	sort.Strings(names)
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	out.Stats = []PipelineStats{} // [] in JSON, never null: PHP's count() throws on null
	for _, name := range names {
		t, err := s.target(name)
		if err != nil {
			return err
		}
		st, err := t.Store.Stats(ctx, t.Queue)
		if err != nil {
			return fmt.Errorf("stats of %s: %w", name, err)
		}
		out.Stats = append(out.Stats, PipelineStats{
			Pipeline: name, Queue: t.Queue, Connection: t.Connection,
			Ready: st.Ready, Delayed: st.Delayed, Reserved: st.Reserved, Failed: st.Failed,
			OldestReadyMs: st.OldestReady.Milliseconds(),
		})
	}
	return nil
}

// GroupsRequest asks for a pipeline's jobs counted by the first value of a header; without a
// header, a group_by pipeline's jobs are counted by their group.
// Pages go in value order: After is the last value of the previous page ("" for the first page).
type GroupsRequest struct {
	Pipeline string `json:"pipeline"`
	Header   string `json:"header"`
	After    string `json:"after"`
	// Limit is the page size (default 100, at most 1000).
	Limit int `json:"limit"`
}

// GroupStats are the counts of one header value ("" = jobs without the header).
type GroupStats struct {
	Value    string `json:"value"`
	Ready    int64  `json:"ready"`
	Delayed  int64  `json:"delayed"`
	Reserved int64  `json:"reserved"`
	// Overflow is the queue the group's jobs go to while it overflows (group_by pipelines with
	// overflow; "" when it does not).
	Overflow string `json:"overflow,omitempty"`
}

// GroupsResponse is one page of groups in value order; NextAfter is the After of the next page,
// "" on the last page.
type GroupsResponse struct {
	Groups    []GroupStats `json:"groups"`
	NextAfter string       `json:"next_after"`
}

// Groups counts a pipeline's jobs per value of a header (a tenant, a message group, ...), a page at
// a time. A group_by pipeline's groups are counted through its group index, a page's groups alone;
// any other header's values are read from every job of the pipeline, at each page.
func (s *Service) Groups(in *GroupsRequest, out *GroupsResponse) error {
	t, err := s.target(in.Pipeline)
	if err != nil {
		return err
	}
	limit := in.Limit
	switch {
	case limit == 0:
		limit = 100
	case limit < 0 || limit > 1000:
		return fmt.Errorf("limit %d: use 1 to 1000", limit)
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	var groups []store.GroupCount
	switch {
	case in.Header == "" && t.GroupBy == "":
		return fmt.Errorf("header is required: pipeline %s has no group_by; name the header whose first value names the group", t.Pipeline)
	case in.Header == "" || in.Header == t.GroupBy:
		groups, err = t.Store.CountGroups(ctx, t.Queue, in.After, limit) // the stored group column, and the overflow
	default:
		if _, err = s.group(in.Header, ""); err != nil {
			return err
		}
		groups, err = t.Store.CountByHeader(ctx, t.Queue, in.Header, in.After, limit)
	}
	if err != nil {
		return err
	}
	out.Groups = []GroupStats{}
	for _, g := range groups {
		out.Groups = append(out.Groups, GroupStats{Value: g.Value, Ready: g.Ready, Delayed: g.Delayed, Reserved: g.Reserved, Overflow: g.OverflowTo})
	}
	out.NextAfter = ""
	// A full page (a page of one that holds the "" group holds the next group too).
	if len(groups) >= limit {
		out.NextAfter = groups[len(groups)-1].Value
	}
	return nil
}

// FlushRequest deletes a pipeline's waiting (ready and delayed) jobs, or only one group's.
type FlushRequest struct {
	Pipeline string `json:"pipeline"`
	Header   string `json:"header"`
	Value    string `json:"value"`
}

// CountResponse says how many jobs a call touched.
type CountResponse struct {
	Count int64 `json:"count"`
}

// Flush deletes waiting jobs; jobs at workers are left to finish.
func (s *Service) Flush(in *FlushRequest, out *CountResponse) error {
	t, err := s.target(in.Pipeline)
	if err != nil {
		return err
	}
	g, err := s.group(in.Header, in.Value)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), bulkTimeout)
	defer cancel()
	out.Count, err = t.Store.Flush(ctx, t.Queue, g)
	return err
}

// MoveRequest re-routes a pipeline's ready and delayed jobs (or one group's) to another pipeline,
// optionally with a new priority.
type MoveRequest struct {
	From     string `json:"from"`
	To       string `json:"to"`
	Priority *int64 `json:"priority"`
	Header   string `json:"header"`
	Value    string `json:"value"`
}

// Move re-routes jobs in one statement; both pipelines must share a connection.
func (s *Service) Move(in *MoveRequest, out *CountResponse) error {
	from, err := s.target(in.From)
	if err != nil {
		return fmt.Errorf("from: %w", err)
	}
	to, err := s.target(in.To)
	if err != nil {
		return fmt.Errorf("to: %w", err)
	}
	if from.Connection != to.Connection {
		return fmt.Errorf("pipelines %s (connection %s) and %s (connection %s) are in different databases: jobs can move only within one",
			from.Pipeline, from.Connection, to.Pipeline, to.Connection)
	}
	if from.Queue == to.Queue {
		return fmt.Errorf("pipelines %s and %s share queue %s: nothing to move", from.Pipeline, to.Pipeline, from.Queue)
	}
	g, err := s.group(in.Header, in.Value)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), bulkTimeout)
	defer cancel()
	if out.Count, err = from.Store.Move(ctx, from.Queue, to.Queue, in.Priority, g, to.GroupBy); err != nil {
		return err
	}
	to.Wake()
	return nil
}

// FailedListRequest pages through a pipeline's failed jobs in id order.
type FailedListRequest struct {
	Pipeline string `json:"pipeline"`
	// AfterID is the last id of the previous page (0 for the first).
	AfterID int64 `json:"after_id"`
	// Limit is the page size (default 50, at most 1000).
	Limit int `json:"limit"`
}

// FailedJob is a failed job as listed.
type FailedJob struct {
	ID       int64               `json:"id"`
	JobID    string              `json:"job_id"`
	Job      string              `json:"job"`
	Pipeline string              `json:"pipeline"`
	Payload  string              `json:"payload"`
	Headers  map[string][]string `json:"headers"`
	Attempts int64               `json:"attempts"`
	Error    string              `json:"error"`
	FailedAt string              `json:"failed_at"`
}

// FailedListResponse is one page; NextAfterID is 0 on the last page.
type FailedListResponse struct {
	Jobs        []FailedJob `json:"jobs"`
	NextAfterID int64       `json:"next_after_id"`
}

// FailedList lists failed jobs with their last error.
func (s *Service) FailedList(in *FailedListRequest, out *FailedListResponse) error {
	t, err := s.target(in.Pipeline)
	if err != nil {
		return err
	}
	limit := in.Limit
	switch {
	case limit == 0:
		limit = 50
	case limit < 0 || limit > 1000:
		return fmt.Errorf("limit %d: use 1 to 1000", limit)
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	jobs, err := t.Store.ListFailed(ctx, t.Queue, in.AfterID, limit)
	if err != nil {
		return err
	}
	out.Jobs = []FailedJob{}
	for _, j := range jobs {
		out.Jobs = append(out.Jobs, FailedJob{
			ID: j.ID, JobID: j.JobID, Job: j.Name, Pipeline: in.Pipeline, Payload: string(j.Payload), Headers: j.Headers,
			Attempts: j.Attempts, Error: j.Error, FailedAt: j.FailedAt.UTC().Format(time.RFC3339Nano),
		})
	}
	out.NextAfterID = 0
	if len(jobs) == limit {
		out.NextAfterID = jobs[len(jobs)-1].ID
	}
	return nil
}

// FailedRequest selects failed jobs of a pipeline: by ids, or all of them.
type FailedRequest struct {
	Pipeline string  `json:"pipeline"`
	IDs      []int64 `json:"ids"`
	All      bool    `json:"all"`
}

func (s *Service) selection(in *FailedRequest) (Target, store.Selection, error) {
	t, err := s.target(in.Pipeline)
	if err != nil {
		return t, store.Selection{}, err
	}
	if in.All == (len(in.IDs) > 0) {
		return t, store.Selection{}, errors.New("give either ids (from FailedList) or all: true")
	}
	return t, store.Selection{Queue: t.Queue, IDs: in.IDs, All: in.All}, nil
}

// FailedRetry puts failed jobs back to ready, their attempts counted afresh.
func (s *Service) FailedRetry(in *FailedRequest, out *CountResponse) error {
	t, sel, err := s.selection(in)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	if out.Count, err = t.Store.RetryFailed(ctx, sel); err != nil {
		return err
	}
	t.Wake()
	return nil
}

// FailedDelete deletes failed jobs for good.
func (s *Service) FailedDelete(in *FailedRequest, out *CountResponse) error {
	t, sel, err := s.selection(in)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	out.Count, err = t.Store.DeleteFailed(ctx, sel)
	return err
}

// maxIDs bounds the ids of one Find or Cancel.
const maxIDs = 1000

// timeFormat is how the service writes a time: RFC 3339 in UTC, with milliseconds.
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

func formatMs(ms int64) string { return formatTime(time.UnixMilli(ms)) }

// IDsRequest names jobs of a pipeline by the ids their pushers gave them (Task::getId() in PHP).
type IDsRequest struct {
	Pipeline string   `json:"pipeline"`
	IDs      []string `json:"ids"`
}

func (s *Service) ids(in *IDsRequest) (Target, error) {
	t, err := s.target(in.Pipeline)
	if err != nil {
		return t, err
	}
	if len(in.IDs) == 0 || len(in.IDs) > maxIDs {
		return t, fmt.Errorf("ids: %d given, give 1 to %d job ids", len(in.IDs), maxIDs)
	}
	for i, id := range in.IDs {
		if id == "" {
			return t, fmt.Errorf("ids[%d] is empty: give the id the job was pushed with", i)
		}
	}
	return t, nil
}

// Job states in Find's and Cancel's answers, beside the store's (ready, delayed, reserved, failed).
const (
	StateNotFound  = "not_found"
	StateCancelled = "cancelled"
)

// FoundJob is where one job is. Fields that do not apply to its state are left out.
type FoundJob struct {
	ID string `json:"id"`
	// State is ready, delayed, reserved, failed, or not_found.
	State   string              `json:"state"`
	Job     string              `json:"job,omitempty"`
	Headers map[string][]string `json:"headers,omitempty"`
	// Attempts: how many times the job reached a worker (the delivery in progress included).
	Attempts int64 `json:"attempts,omitempty"`
	// AvailableAt: when a waiting or reserved job is or was due.
	AvailableAt string `json:"available_at,omitempty"`
	// Node holds a reserved job; Delivered: it reached one of that node's workers.
	Node      string `json:"node,omitempty"`
	Delivered bool   `json:"delivered,omitempty"`
	// Error, FailedAt and FailedID (what FailedRetry and FailedDelete take) describe a failed job.
	Error    string `json:"error,omitempty"`
	FailedAt string `json:"failed_at,omitempty"`
	FailedID int64  `json:"failed_id,omitempty"`
}

// FindResponse has an entry per job found and one per id that matched none, in the order of the
// ids (an id listed twice is answered once).
type FindResponse struct {
	Jobs []FoundJob `json:"jobs"`
}

// Find says where each job of the ids is: ready, delayed, reserved (on which node, delivered or
// not), failed, or not found. Two jobs pushed with one id are two entries.
func (s *Service) Find(in *IDsRequest, out *FindResponse) error {
	t, err := s.ids(in)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	found, err := t.Store.Find(ctx, t.Queue, in.IDs)
	if err != nil {
		return err
	}
	byID := map[string][]FoundJob{}
	for _, f := range found {
		j := FoundJob{ID: f.JobID, State: f.State, Job: f.Name, Headers: f.Headers, Attempts: f.Attempts, Node: f.Node,
			Delivered: f.Delivered, Error: f.Error, FailedID: f.FailedID}
		if f.AvailableAt != 0 {
			j.AvailableAt = formatMs(f.AvailableAt)
		}
		if f.FailedAt != 0 {
			j.FailedAt = formatMs(f.FailedAt)
		}
		byID[f.JobID] = append(byID[f.JobID], j)
	}
	out.Jobs = []FoundJob{}
	inRequestOrder(in.IDs, byID, func(id string) FoundJob { return FoundJob{ID: id, State: StateNotFound} }, &out.Jobs)
	return nil
}

// inRequestOrder appends each id's entries once, in the order of ids, or its missing entry.
func inRequestOrder[T any](ids []string, byID map[string][]T, missing func(id string) T, out *[]T) {
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		if entries, ok := byID[id]; ok {
			*out = append(*out, entries...)
		} else {
			*out = append(*out, missing(id))
		}
	}
}

// CancelledJob is what Cancel did with one job: cancelled (deleted), left to finish at the
// worker of its node (reserved), or nothing found (not_found).
type CancelledJob struct {
	ID    string `json:"id"`
	State string `json:"state"`
	Node  string `json:"node,omitempty"`
}

// CancelResponse counts the jobs deleted and lists each job matched, plus each id that matched
// no waiting or reserved job, in the order of the ids.
type CancelResponse struct {
	Cancelled int64          `json:"cancelled"`
	Jobs      []CancelledJob `json:"jobs"`
}

// Cancel deletes the waiting (ready and delayed) jobs of the ids. Jobs already reserved are left
// to finish at their worker and reported with their node; failed jobs are not touched (delete
// them with FailedDelete).
func (s *Service) Cancel(in *IDsRequest, out *CancelResponse) error {
	t, err := s.ids(in)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	done, err := t.Store.Cancel(ctx, t.Queue, in.IDs)
	if err != nil {
		return err
	}
	out.Cancelled = 0
	byID := map[string][]CancelledJob{}
	for _, c := range done {
		j := CancelledJob{ID: c.JobID, State: StateCancelled}
		if c.Cancelled {
			out.Cancelled++
		} else {
			j.State, j.Node = store.StateReserved, c.Node
		}
		byID[c.JobID] = append(byID[c.JobID], j)
	}
	out.Jobs = []CancelledJob{}
	inRequestOrder(in.IDs, byID, func(id string) CancelledJob { return CancelledJob{ID: id, State: StateNotFound} }, &out.Jobs)
	return nil
}
