package driver

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Metrics are the driver's Prometheus series, exported through RoadRunner's metrics plugin.
type Metrics struct {
	claimSeconds *prometheus.HistogramVec
	ackSeconds   *prometheus.HistogramVec
	failed       *prometheus.CounterVec
	retried      *prometheus.CounterVec
	overflowed   *prometheus.CounterVec
	pushed       *prometheus.CounterVec
	duplicates   *prometheus.CounterVec
	depth        *depthCollector
}

// NewMetrics makes the series; live lists the running pipelines for the queue-depth gauges.
func NewMetrics(live func() []*Driver) *Metrics {
	buckets := []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}
	return &Metrics{
		claimSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "rr_sql", Name: "claim_seconds", Help: "Time of one claim statement (a batch of jobs).", Buckets: buckets,
		}, []string{"pipeline"}),
		ackSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "rr_sql", Name: "ack_batch_seconds", Help: "Time of one batch of acknowledgements.", Buckets: buckets,
		}, []string{"pipeline"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "rr_sql", Name: "jobs_failed_total", Help: "Jobs moved to the failed jobs.",
		}, []string{"pipeline"}),
		retried: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "rr_sql", Name: "jobs_retried_total", Help: "Failed deliveries put back with backoff.",
		}, []string{"pipeline"}),
		overflowed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "rr_sql", Name: "overflow_moved_total", Help: "Waiting jobs moved to the overflow pipeline (group_by pipelines with overflow).",
		}, []string{"pipeline"}),
		pushed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "rr_sql", Name: "jobs_pushed_total", Help: "Jobs committed by pushes, by pipeline and way in (push: jobs.Push and jobs.PushBatch, one job at a time; batch: sql.PushBatch).",
		}, []string{"pipeline", "via"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "rr_sql", Name: "jobs_duplicate_total",
			Help: "Pushes that created no job: a job of the queue held the same unique key (header x-sql-unique-key).",
		}, []string{"pipeline"}),
		depth: &depthCollector{live: live, desc: prometheus.NewDesc("rr_sql_jobs",
			"Jobs in the database by pipeline and state (ready, delayed, reserved, failed).", []string{"pipeline", "state"}, nil),
			oldest: prometheus.NewDesc("rr_sql_oldest_ready_seconds",
				"Age of the oldest job ready to run, by pipeline (0 when none): how far behind the workers are.", []string{"pipeline"}, nil),
			groups: prometheus.NewDesc("rr_sql_groups_waiting",
				"Groups with a job ready to run, by group_by pipeline (one series per pipeline, not per group).", []string{"pipeline"}, nil)},
	}
}

// Collectors are what the plugin hands to the metrics plugin.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.claimSeconds, m.ackSeconds, m.failed, m.retried, m.overflowed, m.pushed, m.duplicates, m.depth}
}

func (m *Metrics) observeClaim(pipeline string, took time.Duration) {
	if m != nil {
		m.claimSeconds.WithLabelValues(pipeline).Observe(took.Seconds())
	}
}

func (m *Metrics) observeAck(pipeline string, took time.Duration) {
	if m != nil {
		m.ackSeconds.WithLabelValues(pipeline).Observe(took.Seconds())
	}
}

func (m *Metrics) countFailed(pipeline string) {
	if m != nil {
		m.failed.WithLabelValues(pipeline).Inc()
	}
}

func (m *Metrics) countOverflow(pipeline string, jobs int64) {
	if m != nil {
		m.overflowed.WithLabelValues(pipeline).Add(float64(jobs))
	}
}

func (m *Metrics) countPushed(pipeline, via string, jobs float64) {
	if m != nil {
		m.pushed.WithLabelValues(pipeline, via).Add(jobs)
	}
}

func (m *Metrics) countDuplicate(pipeline string) {
	if m != nil {
		m.duplicates.WithLabelValues(pipeline).Inc()
	}
}

func (m *Metrics) countRetried(pipeline string) {
	if m != nil {
		m.retried.WithLabelValues(pipeline).Inc()
	}
}

// forget removes a stopped pipeline's series: pipelines declared and destroyed at runtime must
// not grow the scrape.
func (m *Metrics) forget(pipeline string) {
	if m == nil {
		return
	}
	m.claimSeconds.DeleteLabelValues(pipeline)
	m.ackSeconds.DeleteLabelValues(pipeline)
	m.failed.DeleteLabelValues(pipeline)
	m.retried.DeleteLabelValues(pipeline)
	m.overflowed.DeleteLabelValues(pipeline)
	m.pushed.DeletePartialMatch(prometheus.Labels{"pipeline": pipeline})
	m.duplicates.DeleteLabelValues(pipeline)
}

// depthCollector counts queue depth from the database at scrape time, so every node reports the
// truth of the shared queue, not its own view.
type depthCollector struct {
	live                 func() []*Driver
	desc, oldest, groups *prometheus.Desc
}

func (c *depthCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.desc
	ch <- c.oldest
	ch <- c.groups
}

func (c *depthCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, d := range c.live() {
		st, err := d.conn.Store.Stats(ctx, d.cfg.Queue)
		if err != nil {
			d.log.Warn("queue depth for metrics", zap.Error(err))
			continue
		}
		for state, v := range map[string]int64{"ready": st.Ready, "delayed": st.Delayed, "reserved": st.Reserved, "failed": st.Failed} {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(v), d.cfg.Name, state)
		}
		ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, st.OldestReady.Seconds(), d.cfg.Name)
		if d.cfg.GroupBy == "" {
			continue
		}
		n, err := d.conn.Store.CountReadyGroups(ctx, d.cfg.Queue)
		if err != nil {
			d.log.Warn("groups waiting for metrics", zap.Error(err))
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.groups, prometheus.GaugeValue, float64(n), d.cfg.Name)
	}
}
