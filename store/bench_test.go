package store

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// The storage layer's cost per operation on each database:
//
//	eval "$(scripts/db-servers.sh start)"; go test -run '^$' -bench . ./store
//
// The conformance suite's SQLite runs with synchronous=normal; the driver's default is full (an
// fsync per commit), measured as sqlite-full.
func forEachBackendB(b *testing.B, run func(b *testing.B, s Store)) {
	all := backends()
	all["sqlite-full"] = func(t testing.TB) Store {
		s, err := OpenSQLite(context.Background(), SQLiteOptions{
			Path: filepath.Join(t.TempDir(), "jobs.db"), Synchronous: "full", BusyTimeout: 5 * time.Second, MaxReadConns: 2,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	for _, name := range slices.Sorted(maps.Keys(all)) {
		b.Run(name, func(b *testing.B) { run(b, all[name](b)) })
	}
}

func BenchmarkInsert(b *testing.B) {
	forEachBackendB(b, func(b *testing.B, s Store) {
		payload := []byte(`{"action":"ack"}`)
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			if err := s.Insert(ctx, NewJob{JobID: fmt.Sprint(i), Queue: "bench", Name: "Job", Payload: payload, Priority: 10}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkClaimAndAck100 claims batches of 100 and acks them, from a backlog: one op is one job.
func BenchmarkClaimAndAck100(b *testing.B) {
	forEachBackendB(b, func(b *testing.B, s Store) {
		const batch = 100
		fill := func(n int) {
			for i := range n {
				if err := s.Insert(ctx, NewJob{JobID: fmt.Sprint(i), Queue: "bench", Name: "Job", Payload: []byte("x"), Priority: 10}); err != nil {
					b.Fatal(err)
				}
			}
		}
		fill(batch * 10)
		b.ResetTimer()
		done := 0
		for done < b.N {
			got, err := s.Claim(ctx, ClaimRequest{Queue: "bench", Node: "n", Limit: batch, Lease: time.Minute})
			if err != nil {
				b.Fatal(err)
			}
			if len(got) == 0 {
				b.StopTimer()
				fill(batch * 10)
				b.StartTimer()
				continue
			}
			fences := make([]Fence, len(got))
			for i, j := range got {
				fences[i] = j.Fence
			}
			if _, err := s.Write(ctx, Batch{Acks: fences}); err != nil {
				b.Fatal(err)
			}
			done += len(got)
		}
	})
}
