package store

import (
	"fmt"
	"testing"
	"time"
)

// The storage layer's cost per operation on each database:
//
//	eval "$(scripts/db-servers.sh start)"; go test -run '^$' -bench . ./store
func forEachBackendB(b *testing.B, run func(b *testing.B, s Store)) {
	for name, open := range backends() {
		b.Run(name, func(b *testing.B) { run(b, open(b)) })
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
			now := time.Now()
			got, err := s.Claim(ctx, ClaimRequest{Queue: "bench", Node: "n", Limit: batch, Now: now, LeaseUntil: now.Add(time.Minute)})
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
			if _, err := s.Ack(ctx, fences); err != nil {
				b.Fatal(err)
			}
			done += len(got)
		}
	})
}
