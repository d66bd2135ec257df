package main

import (
	"fmt"
	"os"
	"slices"
	"time"
)

// latency pushes 1000 jobs at a steady 200 jobs/s to pusher and reads, from the consumer's worker
// records, when each reached a PHP worker: push time from the clock here, worker time in its record.
func latency(pusher, consumer *rrProcess) (p50, p99 time.Duration, err error) {
	base := lines(consumer.out)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	sent := map[string]time.Time{}
	for i := range 1000 {
		<-tick.C
		name := fmt.Sprint("lat-", i)
		sent[jobID(name)] = time.Now()
		if err := push(pusher.c, name, `{"action":"ack"}`); err != nil {
			return 0, 0, err
		}
	}
	if err := waitLines(consumer.out, base+1000, time.Minute); err != nil {
		return 0, 0, err
	}
	var lat []time.Duration
	for _, rec := range records(consumer.out) {
		if t0, ok := sent[rec.ID]; ok {
			lat = append(lat, time.UnixMilli(rec.TsMs).Sub(t0.Truncate(time.Millisecond)))
		}
	}
	slices.Sort(lat)
	return lat[len(lat)/2], lat[len(lat)*99/100], nil
}

// runCrossNode measures the latency of jobs pushed on another node, on PostgreSQL (nil without
// its server, or when -only leaves it out).
func runCrossNode(bin, root, pgDSN string, st settings) *result {
	if pgDSN == "" || !st.only.MatchString("sql/postgres") {
		return nil
	}
	fmt.Fprintf(os.Stderr, "== push on another node: sql/postgres\n")
	r, err := crossNodeLatency(bin, root, sqlTarget("sql/postgres", "postgres", pgDSN, ""), st)
	if err != nil {
		fail("push on another node: %v", err)
	}
	fmt.Fprintf(os.Stderr, "   p50 %s p99 %s\n", r.p50, r.p99)
	return &r
}

// crossNodeLatency runs two rr nodes on one database: jobs pushed to a node that does not consume
// p reach the PHP workers of the node that does (woken by PostgreSQL's NOTIFY).
func crossNodeLatency(bin, root string, tg target, st settings) (result, error) {
	r := result{target: tg.name + ", push on another node"}
	defer dropDB(tg)
	consumerDir, _ := os.MkdirTemp("", "bench")
	defer os.RemoveAll(consumerDir)
	pusherDir, _ := os.MkdirTemp("", "bench")
	defer os.RemoveAll(pusherDir)
	consumer, err := startRR(bin, root, consumerDir, tg, st, st.workers, true)
	if err != nil {
		return r, err
	}
	defer consumer.stop()
	pusher, err := startRR(bin, root, pusherDir, tg, st, 1, false)
	if err != nil {
		return r, err
	}
	defer pusher.stop()
	r.p50, r.p99, err = latency(pusher, consumer)
	if err == nil && lines(pusher.out) != 0 {
		err = fmt.Errorf("the pushing node ran %d jobs; it does not consume p", lines(pusher.out))
	}
	return r, err
}
