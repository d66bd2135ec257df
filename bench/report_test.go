package main

import (
	"strings"
	"testing"
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
