.PHONY: demo test bench schema
# Build rr with the sql driver and serve the example .rr.yaml with PHP workers.
demo:
	scripts/demo.sh
# Every test, on SQLite, PostgreSQL and MariaDB.
test:
	scripts/test.sh
# Side-by-side benchmark with RoadRunner's memory and boltdb drivers (docs/bench/).
bench:
	scripts/bench.sh
# The schema files a DBA applies with `migrate: false` (schema/*.sql), from store/migrations.
schema:
	go generate ./store
