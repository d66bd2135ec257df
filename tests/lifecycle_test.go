package tests

import (
	"fmt"
	"net"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// silentServer accepts TCP connections and never answers: a database host that is up but hung.
func silentServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		for _, c := range held {
			_ = c.Close()
		}
	})
	return l.Addr().String()
}

// TestStartFailsWhenTheDatabaseNeverAnswers: a database that accepts connections and never
// answers stops RoadRunner at start within the connection's connect_timeout, with an error that
// names the connection and keeps the password out (the default connect_timeout is 5s).
func TestStartFailsWhenTheDatabaseNeverAnswers(t *testing.T) {
	addr := silentServer(t)
	host, port, _ := net.SplitHostPort(addr)
	for dialect, dsn := range map[string]string{
		"postgres": fmt.Sprintf("postgres://rr:s3cret-pw@%s:%s/rr?sslmode=disable", host, port),
		"mysql":    fmt.Sprintf("rr:s3cret-pw@tcp(%s:%s)/rr", host, port),
	} {
		t.Run(dialect, func(t *testing.T) {
			dir := t.TempDir()
			section := fmt.Sprintf("sql:\n  connections:\n    hung:\n      dialect: %s\n      dsn: %q\n", dialect, dsn)
			began := time.Now()
			err := startErr(t, options{pipelines: pipelineYAML("p", "connection: hung"), consume: []string{"p"}, sqlSection: section, out: filepath.Join(dir, "out.jsonl")})
			if err == nil {
				t.Fatal("RoadRunner started on a database that never answers")
			}
			t.Logf("start failed after %s: %v", time.Since(began).Round(time.Millisecond), err)
			if !strings.Contains(err.Error(), `connection "hung"`) {
				t.Errorf("the error does not name the connection: %v", err)
			}
			if strings.Contains(err.Error(), "s3cret-pw") {
				t.Errorf("the error holds the password: %v", err)
			}
		})
	}
}

// TestDeclareDestroyLeavesNothingBehind: a pipeline declared, consumed and destroyed ten thousand
// times leaves no metric series, goroutine or memory behind.
func TestDeclareDestroyLeavesNothingBehind(t *testing.T) {
	b := backends()[0] // SQLite: the loop measures the plugin, not a database server
	dir := t.TempDir()
	rr := start(t, options{pipelines: pipelineYAML("static"), consume: []string{"static"}, sqlSection: b.section(t, dir), out: filepath.Join(dir, "out.jsonl")})
	reg := prometheus.NewRegistry()
	reg.MustRegister(rr.plugin.MetricsCollector()...)
	series := func() int {
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, f := range families {
			n += len(f.GetMetric())
		}
		return n
	}
	cycle := func(i int) {
		name := fmt.Sprint("dyn-", i)
		if err := rr.declare(map[string]string{"driver": "sql", "name": name, "poll_interval": "1h"}); err != nil {
			t.Fatal(err)
		}
		rr.resume(name) // a claim runs: the pipeline gets its metric series
		if err := rr.destroy(name); err != nil {
			t.Fatal(err)
		}
	}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	for i := range 200 {
		cycle(i)
	}
	series0, goroutines0, heap0 := series(), runtime.NumGoroutine(), heap()
	const cycles = 10_000
	for i := 200; i < 200+cycles; i++ {
		cycle(i)
	}
	series1, goroutines1, heap1 := series(), runtime.NumGoroutine(), heap()
	t.Logf("after %d declare/resume/destroy cycles: metric series %d -> %d, goroutines %d -> %d, heap %.1f -> %.1f MB",
		cycles, series0, series1, goroutines0, goroutines1, float64(heap0)/(1<<20), float64(heap1)/(1<<20))
	if series1 != series0 {
		t.Errorf("metric series grew from %d to %d", series0, series1)
	}
	if goroutines1 > goroutines0+5 {
		t.Errorf("goroutines grew from %d to %d", goroutines0, goroutines1)
	}
	// A destroyed pipeline kept in memory costs kilobytes: ten thousand of them would be tens of MB.
	if heap1 > heap0+4<<20 {
		t.Errorf("the heap grew by %.1f MB", float64(heap1-heap0)/(1<<20))
	}
}
