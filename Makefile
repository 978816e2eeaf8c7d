# Portcullis: `make run` plays the demo against a local emulator; `make test` runs every check.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV   := .venv
PYTHON ?= python3
MOTO   := $(VENV)/bin/moto_server
IDP    := tests/idp/node_modules/.package-lock.json

.PHONY: help deps venv idp build install run test test-localstack test-rust check-format lint rules cfn-lint compose-check schemas catalog bench bench-access bench-posture chaos load clean

help:
	@echo "make run            emulator + OpenID provider + stack + workers + a CLI demo (Ctrl-C stops everything)"
	@echo "make install        cargo install --path cli (puts portcullis on your PATH)"
	@echo "make test           formatting, clippy, unit and integration tests, alert rules (promtool), cfn-lint, compose check"
	@echo "make test-localstack the integration tests against LocalStack instead of moto (needs Docker)"
	@echo "make chaos          fault tests: worker processes SIGKILLed and SIGTERMed mid-stream, throttling, 5xx,"
	@echo "                    access denied and a 30 s outage injected by a proxy in front of the emulator"
	@echo "make load           LOAD_REQUESTS grant requests (default 10000) through 4 worker processes: none lost,"
	@echo "                    exactly one grant each; prints wall time and throughput"
	@echo "make bench          criterion benchmarks, then bench-access and bench-posture (prints their tables)"
	@echo "make bench-access   access worker benchmark against the emulator: grant.request throughput (1 and 4"
	@echo "                    workers), calls per message, credentials and revocation latency, each beside its"
	@echo "                    floor, and a worker process's memory (JSON in bench/results/)"
	@echo "make bench-posture  posture scan benchmark against the emulator (calls and wall time, also behind a"
	@echo "                    30 ms delay line; change event to violation latency)"
	@echo "make schemas        regenerate docs/schemas from the Rust types"
	@echo "make catalog        regenerate what the control catalog generates (stack rules, docs, dashboard tiles)"

# What make needs from the system, checked once, up front, with one message naming what is missing.
deps:
	@missing=""; \
	command -v cargo >/dev/null 2>&1 || missing="$$missing cargo(rustup.rs)"; \
	command -v $(PYTHON) >/dev/null 2>&1 || missing="$$missing python3"; \
	$(PYTHON) -c 'import venv, ensurepip' >/dev/null 2>&1 || missing="$$missing python3-venv"; \
	command -v node >/dev/null 2>&1 || missing="$$missing nodejs(>=20.19)"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	if command -v node >/dev/null 2>&1 && ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)'; then \
	  missing="$$missing nodejs>=20.19(found $$(node --version))"; fi; \
	if [ -n "$$missing" ]; then \
	  echo "make needs:$$missing. On Debian/Ubuntu: sudo apt-get install python3-venv nodejs npm (Node 20.19+ from nodejs.org or NodeSource if the distribution's is older); Rust from https://rustup.rs" >&2; \
	  exit 1; fi

# The emulator (moto_server), pinned in requirements-dev.txt.
venv: deps $(MOTO)
$(MOTO): requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $(MOTO)

# The test OpenID provider (oidc-provider, pinned in tests/idp/package-lock.json).
idp: deps $(IDP)
$(IDP): tests/idp/package-lock.json
	cd tests/idp && npm ci --no-audit --no-fund --loglevel=error
	@touch $(IDP)

# The binaries, built with the features `cargo test --workspace` resolves (dev-dependencies turn on test-util in
# tokio and the AWS SDK crates, preserve_order in serde_json, ...). `--tests` makes this build resolve features the
# same way, so `make run` after `make test` compiles only the worker binary instead of ~110 dependency crates again.
# The demo's binaries therefore carry those test-only features; `make install` builds the release binary without them.
build:
	cargo build --workspace --bins --tests

install:
	cargo install --locked --path cli

run: venv idp build
	scripts/run-demo.sh

test: venv idp check-format lint test-rust rules cfn-lint compose-check

check-format:
	cargo fmt --all -- --check

lint:
	cargo clippy --workspace --all-targets -- -D warnings

test-rust: venv idp
	cargo test --workspace

# The same tests against LocalStack (pinned in tests/src/lib.rs, started by testcontainers): needs a
# Docker engine, and fails (it does not skip) without one.
test-localstack: venv idp
	PORTCULLIS_TEST_EMULATOR=localstack cargo test --workspace

rules: venv
	PYTHON=$(VENV)/bin/python bash infra/prometheus/check.sh

# Every CloudFormation template, linted (cfn-lint, pinned in requirements-dev.txt).
cfn-lint: venv
	$(VENV)/bin/cfn-lint infra/cloudformation/*.yaml

# docker-compose.yml checked without Docker (this machine has none): YAML, pinned images, loopback ports,
# healthchecks and the services each profile starts (scripts/check-compose.py).
compose-check: venv
	$(VENV)/bin/python scripts/check-compose.py docker-compose.yml

# Fault tests (tests/tests/chaos.rs): real worker processes behind a fault-injecting proxy in front of the
# emulator. One at a time: they kill processes and wait out throttle windows and an outage. Through the
# workspace's feature resolution, as `make test` (`-p` would rebuild the AWS SDK crates with other features).
chaos: venv
	cargo test --workspace --test chaos -- --ignored --test-threads=1

# Load (tests/tests/load.rs): LOAD_REQUESTS grant requests through LOAD_WORKERS worker processes
# (LOAD_DELAY_MS=30: behind a 30 ms round-trip delay line in front of the emulator).
LOAD_REQUESTS ?= 10000
LOAD_WORKERS ?= 4
LOAD_DELAY_MS ?= 0
load: venv
	LOAD_REQUESTS=$(LOAD_REQUESTS) LOAD_WORKERS=$(LOAD_WORKERS) LOAD_DELAY_MS=$(LOAD_DELAY_MS) cargo test --workspace --test load -- --ignored --nocapture

# Both through the workspace's own feature resolution (as `make test`): `-p` resolves another set of
# features and rebuilds dependencies.
schemas:
	PORTCULLIS_BLESS_SCHEMAS=1 cargo test --workspace --lib -- messages::tests::committed_schemas_match_the_types audit::tests::event_docs_and_schemas_match_the_types metrics::tests::the_metrics_reference_matches_the_declarations

catalog:
	PORTCULLIS_BLESS_CATALOG=1 cargo test --workspace --lib -- posture::generated

# Benchmarks, not tests: `make test` runs none of them.
bench:
	cargo bench -p portcullis-domain
	$(MAKE) bench-access
	$(MAKE) bench-posture

# BENCH_REQUESTS / BENCH_CREDENTIALS / BENCH_REVOCATIONS / BENCH_MEMORY_REQUESTS change the counts
# (default 200, 500, 25 and 200).
# Every bin first: bench-access runs the worker binary (worker-under-test) beside it as a process.
bench-access: venv
	cargo build --release -p portcullis-tests --bins
	cargo run --release -p portcullis-tests --bin bench-access

# BENCH_EVENTS (default 50) change events; BENCH_DEBOUNCE_MS overrides the configured debounce.
bench-posture: venv
	cargo run --release -p portcullis-tests --bin bench-posture

clean:
	cargo clean
	rm -rf $(VENV) .portcullis tests/idp/node_modules
