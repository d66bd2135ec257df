.PHONY: demo test
# Build rr with the sql driver and serve the example .rr.yaml with PHP workers.
demo:
	scripts/demo.sh
# Every test, on SQLite, PostgreSQL and MariaDB.
test:
	scripts/test.sh
