.PHONY: demo test bench bench-monitor bench-flush bench-churn bench-dashboard bench-quick schema
# Build rr with the sql driver and serve the example .rr.yaml with PHP workers.
demo:
	scripts/demo.sh
# Every test, on SQLite, PostgreSQL and MariaDB.
test:
	scripts/test.sh
# Side-by-side benchmark with RoadRunner's memory and boltdb drivers (docs/bench/).
bench:
	scripts/bench.sh
# Each alone (docs/bench/monitoring.md, flush.md, churn.md); BENCH_QUICK=1 shortens them.
bench-monitor:
	scripts/bench.sh -monitor-only
bench-flush:
	scripts/bench.sh -flush-only
bench-churn:
	scripts/bench.sh -churn
# The dashboard's pages against 1M queued jobs, and the statements per second of a page left open
# (docs/bench/dashboard.md).
bench-dashboard:
	scripts/bench.sh -dashboard-only
# The three in quick mode (churn 1m per database, smaller backlogs), into /tmp/bench-quick: a check
# that they work, not figures.
bench-quick:
	BENCH_QUICK=1 scripts/bench.sh -monitor-only -flush-only -churn -out /tmp/bench-quick
# The schema files a DBA applies with `migrate: false` (schema/*.sql), from store/migrations.
schema:
	go generate ./store
