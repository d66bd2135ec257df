package rpc

import (
	"strings"
	"testing"

	jobsProto "github.com/roadrunner-server/api/v4/build/jobs/v1"
)

// TestPushBatchNamesTheBadJob: a batch with a job without id, without pipeline or for a pipeline
// that is not an sql pipeline here is refused with the job's place and what to fix.
func TestPushBatchNamesTheBadJob(t *testing.T) {
	s := service(t)
	// The bad job comes first: the service here has no driver to push the good one with.
	ok := &jobsProto.Job{Job: "Job", Id: "a", Options: &jobsProto.Options{Pipeline: "emails"}}
	for _, c := range []struct {
		bad  *jobsProto.Job
		want string
	}{
		{&jobsProto.Job{Job: "Job", Options: &jobsProto.Options{Pipeline: "emails"}}, `job 1 (job "Job"): the id is empty`},
		{&jobsProto.Job{Job: "Job", Id: "b"}, "job 1 (id b): options.pipeline is empty"},
		{&jobsProto.Job{Job: "Job", Id: "b", Options: &jobsProto.Options{Pipeline: "nope"}}, `job 1 (id b): unknown sql pipeline "nope" (sql pipelines here: [emails])`},
	} {
		err := s.PushBatch(&jobsProto.PushBatchRequest{Jobs: []*jobsProto.Job{c.bad, ok}}, &jobsProto.Empty{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want one saying %q", err, c.want)
		}
	}
}
