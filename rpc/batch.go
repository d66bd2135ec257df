package rpc

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	jobsProto "github.com/roadrunner-server/api/v4/build/jobs/v1"
	"github.com/roadrunner-server/api/v4/plugins/v4/jobs"
	"github.com/rr-sql/sqljobs/driver"
)

// PushBatch takes the request of RoadRunner's jobs.PushBatch (protobuf, sent with goridge's
// ProtobufCodec) and commits its jobs in one transaction: all of them or none. Every job names a
// live sql pipeline of this node in options.pipeline and has an id; the pipelines must share one
// connection. Each job is pushed as jobs.PushBatch would push it (priority 0 takes the pipeline's,
// delay, auto_ack, headers), with one commit for the batch instead of one per job.
func (s *Service) PushBatch(in *jobsProto.PushBatchRequest, _ *jobsProto.Empty) error {
	batch := make([]driver.Batched, 0, len(in.GetJobs()))
	// connection → the batch's pipelines on it, to name them if there are several
	connections := map[string][]string{}
	for i, j := range in.GetJobs() {
		if j.GetId() == "" {
			return fmt.Errorf("push batch: job %d (job %q): the id is empty: give every job an id", i+1, j.GetJob())
		}
		name := j.GetOptions().GetPipeline()
		if name == "" {
			return fmt.Errorf("push batch: job %d (id %s): options.pipeline is empty: name an sql pipeline", i+1, j.GetId())
		}
		t, err := s.target(name)
		if err != nil {
			return fmt.Errorf("push batch: job %d (id %s): %w", i+1, j.GetId(), err)
		}
		if t.Driver == nil {
			return fmt.Errorf("push batch: job %d (id %s): pipeline %s takes no pushes here", i+1, j.GetId(), name)
		}
		if !slices.Contains(connections[t.Connection], name) {
			connections[t.Connection] = append(connections[t.Connection], name)
		}
		batch = append(batch, driver.Batched{To: t.Driver, Msg: fromProto(j)})
	}
	if len(connections) > 1 {
		var parts []string
		for _, c := range slices.Sorted(maps.Keys(connections)) {
			parts = append(parts, fmt.Sprintf("connection %s (pipelines %s)", c, strings.Join(connections[c], ", ")))
		}
		return errors.New("push batch: the jobs go to " + strings.Join(parts, " and ") +
			": a batch is one transaction in one database; send one batch per connection (no job was pushed)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	return driver.PushBatch(ctx, batch)
}

// message is a protobuf job as the driver takes it (jobs.Message), the way RoadRunner's jobs
// plugin converts it.
type message struct {
	j        *jobsProto.Job
	headers  map[string][]string
	priority int64
}

var _ jobs.Message = (*message)(nil)

func fromProto(j *jobsProto.Job) *message {
	headers := make(map[string][]string, len(j.GetHeaders()))
	for k, v := range j.GetHeaders() {
		headers[k] = v.GetValue()
	}
	return &message{j: j, headers: headers, priority: j.GetOptions().GetPriority()}
}

func (m *message) ID() string                   { return m.j.GetId() }
func (m *message) GroupID() string              { return m.j.GetOptions().GetPipeline() }
func (m *message) Priority() int64              { return m.priority }
func (m *message) UpdatePriority(p int64)       { m.priority = p }
func (m *message) Name() string                 { return m.j.GetJob() }
func (m *message) Payload() []byte              { return m.j.GetPayload() }
func (m *message) Headers() map[string][]string { return m.headers }
func (m *message) Delay() int64                 { return m.j.GetOptions().GetDelay() }
func (m *message) AutoAck() bool                { return m.j.GetOptions().GetAutoAck() }
func (m *message) Offset() int64                { return m.j.GetOptions().GetOffset() }
func (m *message) Partition() int32             { return m.j.GetOptions().GetPartition() }
func (m *message) Topic() string                { return m.j.GetOptions().GetTopic() }
func (m *message) Metadata() string             { return m.j.GetOptions().GetMetadata() }
