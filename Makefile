# Portcullis: `make run` plays the demo against a local emulator; `make test` runs every check.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV   := .venv
PYTHON ?= python3
MOTO   := $(VENV)/bin/moto_server

.PHONY: help venv build run test test-rust check-format lint rules schemas catalog bench bench-posture clean

help:
	@echo "make run            emulator + stack + workers + a demo (Ctrl-C stops everything)"
	@echo "make test           formatting, clippy, unit and integration tests, alert rules (promtool)"
	@echo "make bench          criterion benchmarks of rendering and policy composition"
	@echo "make bench-posture  posture scan benchmark against the emulator (calls and wall time)"
	@echo "make schemas        regenerate docs/schemas from the Rust types"
	@echo "make catalog        regenerate what the control catalog generates (stack rules, docs, dashboard tiles)"

# The emulator (moto_server), pinned in requirements-dev.txt.
venv: $(MOTO)
$(MOTO): requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $(MOTO)

build:
	cargo build --workspace --bins

run: venv build
	scripts/run-demo.sh

test: venv check-format lint test-rust rules

check-format:
	cargo fmt --all -- --check

lint:
	cargo clippy --workspace --all-targets -- -D warnings

test-rust: venv
	cargo test --workspace

rules: venv
	PYTHON=$(VENV)/bin/python bash infra/prometheus/check.sh

schemas:
	PORTCULLIS_BLESS_SCHEMAS=1 cargo test -p portcullis-domain --lib messages::tests::committed_schemas_match_the_types

catalog:
	PORTCULLIS_BLESS_CATALOG=1 cargo test -p portcullis-domain --lib posture::generated

bench:
	cargo bench -p portcullis-domain

bench-posture: venv
	cargo run --release -p portcullis-tests --bin bench-posture

clean:
	cargo clean
	rm -rf $(VENV) .portcullis
