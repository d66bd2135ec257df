package main

import (
	"regexp"
	"slices"
	"testing"
)

// The bench names its jobs as the PHP client does, with UUID v4 ids in no particular order, and
// finds a job again from its name.
func TestJobIDsAreUUIDv4InNoOrder(t *testing.T) {
	v4 := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	ids := make([]string, 100)
	for i := range ids {
		ids[i] = jobID("batch-" + string(rune('a'+i/26)) + string(rune('a'+i%26)))
		if !v4.MatchString(ids[i]) {
			t.Fatalf("jobID = %q, not a UUID v4", ids[i])
		}
	}
	if again := jobID("batch-aa"); again != ids[0] || jobID("seed-1") == jobID("seed-2") {
		t.Fatal("jobID is not one id per name")
	}
	if slices.IsSorted(ids) || len(slices.Compact(slices.Sorted(slices.Values(ids)))) != len(ids) {
		t.Fatalf("100 names in order gave ids in order or a repeated id: %v", ids)
	}
}
