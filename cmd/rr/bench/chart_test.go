package main

import (
	"os"
	"path/filepath"
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
