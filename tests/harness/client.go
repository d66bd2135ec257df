package harness

import (
	"encoding/json"
	"fmt"
	"net"
	"net/rpc"
	"sort"
	"time"

	jobsProto "github.com/roadrunner-server/api/v4/build/jobs/v1"
	goridgeRpc "github.com/roadrunner-server/goridge/v3/pkg/rpc"
)

// DefaultJobName is the job name Push uses when Job.Name is empty.
const DefaultJobName = `App\Jobs\Test`

// Client calls RoadRunner's RPC (goridge codec), as the PHP client libraries do. Its jobs methods
// return RoadRunner's errors unchanged, so tests can assert on them.
type Client struct {
	c *rpc.Client
}

// Dial connects to the RPC listener at addr (host:port), retrying until timeout.
func Dial(addr string, timeout time.Duration) (*Client, error) {
	deadline := time.Now().Add(timeout)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return &Client{c: rpc.NewClientWithCodec(goridgeRpc.NewClientCodec(conn))}, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("rpc %s: %w", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Close closes the connection.
func (c *Client) Close() error { return c.c.Close() }

// Call calls any RPC method, e.g. Call("sql.Stats", in, out) or Call("informer.Jobs", in, out).
func (c *Client) Call(method string, in, out any) error { return c.c.Call(method, in, out) }

// Job is one job to push.
type Job struct {
	ID       string
	Name     string // the job name (default DefaultJobName)
	Pipeline string
	// Payload is the body: a []byte or a string is sent as is, anything else (a Task, a map) is
	// JSON-encoded; nil sends an empty body.
	Payload  any
	Priority int64
	Delay    int64 // seconds
	Headers  map[string][]string
	AutoAck  bool
}

// Proto converts j into the protobuf job of the jobs RPC.
func (j Job) Proto() *jobsProto.Job {
	var body []byte
	switch p := j.Payload.(type) {
	case nil:
	case []byte:
		body = p
	case string:
		body = []byte(p)
	default:
		var err error
		if body, err = json.Marshal(p); err != nil {
			panic(fmt.Sprintf("harness: job %s payload: %v", j.ID, err))
		}
	}
	name := j.Name
	if name == "" {
		name = DefaultJobName
	}
	h := make(map[string]*jobsProto.HeaderValue, len(j.Headers))
	for k, v := range j.Headers {
		h[k] = &jobsProto.HeaderValue{Value: v}
	}
	return &jobsProto.Job{Job: name, Id: j.ID, Payload: body, Headers: h,
		Options: &jobsProto.Options{Pipeline: j.Pipeline, Priority: j.Priority, Delay: j.Delay, AutoAck: j.AutoAck}}
}

// Task is a job body in the PHP worker's payload language (see tests/php/worker.php).
type Task struct {
	// Action: ack (default) | nack | nack_requeue | requeue | fail | crash | fail_until.
	Action string `json:"action,omitempty"`
	// DelaySeconds for requeue and nack_requeue.
	DelaySeconds int `json:"delay_seconds,omitempty"`
	// Headers sent with requeue.
	Headers map[string][]string `json:"headers,omitempty"`
	// Message of a nack or of the error frame (fail).
	Message string `json:"message,omitempty"`
	// SleepMs: sleep before replying (the job is recorded first).
	SleepMs int `json:"sleep_ms,omitempty"`
	// RequeueUntilHeader: requeue (adding this header = ["1"]) while the job lacks it, then do Action.
	RequeueUntilHeader string `json:"requeue_until_header,omitempty"`
	// Attempt for fail_until: fail while the "attempts" header is below it, then ack.
	Attempt int `json:"attempt,omitempty"`
	// N is free for the test (e.g. a sequence number); the worker ignores it.
	N int `json:"n,omitempty"`
}

// Push pushes one job (jobs.Push).
func (c *Client) Push(j Job) error {
	return c.Call("jobs.Push", &jobsProto.PushRequest{Job: j.Proto()}, &jobsProto.Empty{})
}

// PushBatch pushes jobs in one call (jobs.PushBatch: RoadRunner pushes them one by one).
func (c *Client) PushBatch(js ...Job) error {
	req := &jobsProto.PushBatchRequest{Jobs: make([]*jobsProto.Job, len(js))}
	for i, j := range js {
		req.Jobs[i] = j.Proto()
	}
	return c.Call("jobs.PushBatch", req, &jobsProto.Empty{})
}

// Pause pauses pipelines (jobs.Pause).
func (c *Client) Pause(pipelines ...string) error {
	return c.Call("jobs.Pause", &jobsProto.Pipelines{Pipelines: pipelines}, &jobsProto.Empty{})
}

// Resume resumes pipelines (jobs.Resume).
func (c *Client) Resume(pipelines ...string) error {
	return c.Call("jobs.Resume", &jobsProto.Pipelines{Pipelines: pipelines}, &jobsProto.Empty{})
}

// List returns the pipeline names, sorted (jobs.List).
func (c *Client) List() ([]string, error) {
	out := &jobsProto.Pipelines{}
	if err := c.Call("jobs.List", &jobsProto.Empty{}, out); err != nil {
		return nil, err
	}
	names := out.GetPipelines()
	sort.Strings(names)
	return names, nil
}

// Declare declares a pipeline at run time (jobs.Declare), e.g.
// {"driver": "sql", "name": "dyn", "priority": "3", ...}: a flat map of strings. RoadRunner runs it
// only if its name is in jobs.consume; otherwise Resume starts it.
func (c *Client) Declare(pipeline map[string]string) error {
	return c.Call("jobs.Declare", &jobsProto.DeclareRequest{Pipeline: pipeline}, &jobsProto.Empty{})
}

// Destroy stops and removes pipelines (jobs.Destroy); it returns those destroyed.
func (c *Client) Destroy(pipelines ...string) ([]string, error) {
	out := &jobsProto.Pipelines{}
	err := c.Call("jobs.Destroy", &jobsProto.Pipelines{Pipelines: pipelines}, out)
	return out.GetPipelines(), err
}

// Stat returns the state of every pipeline (jobs.Stat), sorted by pipeline name.
func (c *Client) Stat() ([]*jobsProto.Stat, error) {
	out := &jobsProto.Stats{}
	if err := c.Call("jobs.Stat", &jobsProto.Empty{}, out); err != nil {
		return nil, err
	}
	stats := out.GetStats()
	sort.Slice(stats, func(i, j int) bool { return stats[i].GetPipeline() < stats[j].GetPipeline() })
	return stats, nil
}

// StatOf returns the state of one pipeline; an error if jobs.Stat fails or does not list it.
func (c *Client) StatOf(pipeline string) (*jobsProto.Stat, error) {
	stats, err := c.Stat()
	if err != nil {
		return nil, err
	}
	for _, s := range stats {
		if s.GetPipeline() == pipeline {
			return s, nil
		}
	}
	return nil, fmt.Errorf("jobs.Stat does not list pipeline %q (it lists %v)", pipeline, stats)
}
