package main

import (
	"strings"
	"testing"
	"time"
)

// A before/after comparison must say which rr it measured: the report names a binary given
// with -rr, and says nothing of it when the bench built rr itself.
func TestReportNamesPrebuiltRR(t *testing.T) {
	st := settings{workers: 4, backlogs: []int{10_000}, window: 1000}
	if md := report(nil, nil, nil, st); strings.Contains(md, "prebuilt") {
		t.Errorf("report of a built rr mentions a prebuilt one:\n%s", md)
	}
	st.prebuilt = "/tmp/rr-old"
	if md := report(nil, nil, nil, st); !strings.Contains(md, "prebuilt binary /tmp/rr-old (-rr)") {
		t.Errorf("report does not name the prebuilt rr:\n%s", md)
	}
}

// The targets table holds the run to the drain and Push targets: rates within the run, the
// ceiling from memory's Push and the measured flush, and the CPU view of each drain beside it.
func TestTargetsTable(t *testing.T) {
	cpu := func(total float64) []cpuPerJob { return []cpuPerJob{{rr: total / 2, php: total / 2}} }
	rs := []result{
		{target: "memory", drainPerSec: 10000, pushPerSec: 5000, drainCPU: cpu(150)},
		{target: "sql/sqlite", drainPerSec: 8900, pushPerSec: 1900, drainCPU: cpu(160)},
		{target: "sql/mariadb", drainPerSec: 7100, pushPerSec: 900, drainCPU: cpu(250)},
	}
	// memory's Push takes 200 µs; with a 300 µs flush the ceiling is 2,000 Pushes a second.
	md := targetsTable(rs, nil, nil, 300*time.Microsecond)
	for _, want := range []string{
		"| drain sql/sqlite ÷ memory | ≥ 0.9 | 0.890 | **no** |",
		"| drain sql/sqlite ÷ memory, from the CPU a drained job (memory's ÷ its) | the same target, seen through the CPU | 0.938 | — |",
		"| drain sql/mariadb ÷ memory | ≥ 0.7 | 0.710 | yes |",
		"| drain sql/mariadb ÷ memory, from the CPU a drained job (memory's ÷ its) | the same target, seen through the CPU | 0.600 | — |",
		"| Push sql/sqlite ÷ memory (default durability) | no target of its own: see the ceiling | 0.380 | — |",
		"| Push sql/sqlite ÷ the ceiling (memory's Push plus one flush, below) | ≥ 0.9 | 0.950 | yes |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("targets table lacks %q:\n%s", want, md)
		}
	}
	if md := targetsTable(rs, nil, nil, 0); strings.Contains(md, "the ceiling (") {
		t.Errorf("a run without a measured flush shows a Push ceiling:\n%s", md)
	}
}

// The Push ceiling is explained with the flush measured back to back and, when measured, beside
// it the flush that starts after the idle wait a push's commit follows.
func TestPushCeilingAfterIdle(t *testing.T) {
	rs := []result{{target: "memory", pushPerSec: 5000}, {target: "sql/sqlite", pushPerSec: 1500}}
	// memory's Push takes 200 µs: ceilings of 2,000 (300 µs flush) and 1,600 (425 µs) a second.
	md := pushCeiling(rs, 300*time.Microsecond, 425*time.Microsecond)
	for _, want := range []string{
		"so no driver\nthat flushes each Push can exceed 2000 jobs/s here: 0.40 × memory. sql/sqlite reaches 0.75 of that ceiling;",
		"a flush after 200µs idle takes 425µs here\n(median): with that flush the ceiling is 1600 jobs/s, 0.80 of the one above, and sql/sqlite reaches 0.94 of it.",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("push ceiling lacks %q:\n%s", want, md)
		}
	}
	if md := pushCeiling(rs, 300*time.Microsecond, 0); strings.Contains(md, "idle") {
		t.Errorf("push ceiling speaks of an idle flush it did not measure:\n%s", md)
	}
}
