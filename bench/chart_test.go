package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestChartDrawsZeroAndHugeRates(t *testing.T) {
	file := filepath.Join(t.TempDir(), "rates.png")
	rs := []result{{target: "a", pushPerSec: 5000, batchPerSec: 120000, drainPerSec: 0}, {target: "b", pushPerSec: 1, batchPerSec: 2, drainPerSec: 2}}
	if err := chart(rs, file); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(file); err != nil || st.Size() < 1000 {
		t.Fatalf("chart file: %v %v", st, err)
	}
}

func TestBacklogChartAndReport(t *testing.T) {
	file := filepath.Join(t.TempDir(), "backlog.png")
	bs := []backlogResult{{target: "a", rates: []float64{7000, 6900}, rssMB: 60}, {target: "b", rates: []float64{0, 100}}}
	if err := backlogChart(bs, []int{10_000, 1_000_000}, file); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(file); err != nil || st.Size() < 1000 {
		t.Fatalf("chart file: %v %v", st, err)
	}
	md := report(nil, bs, nil, settings{workers: 4, backlogs: []int{10_000, 1_000_000}, window: 20_000})
	for _, want := range []string{"| 10k queued jobs/s | 1M queued jobs/s |", "| a | 7000 | 6900 | 0.99 | 60 |"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}
