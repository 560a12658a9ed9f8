# livecount: the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
export LIVECOUNT_DYNAMODB_LOCAL_DIR := $(CURDIR)/.local/dynamodb-local

.PHONY: run test unit lint fmt chromium clean-local

## run: the whole pipeline on this machine: DynamoDB Local, five simulated players, the dashboard
run:
	$(CARGO) run --quiet -p livecount-cli --bin livecount -- dev $(ARGS)

## test: lint, unit tests and integration tests against a fresh DynamoDB Local (installed on demand)
test: lint chromium
	scripts/with-dynamodb-local.sh $(CARGO) test --workspace --all-targets

## unit: the tests that need no DynamoDB
unit:
	$(CARGO) test --workspace --lib --bins

## lint: formatting and clippy, warnings as errors
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## chromium: Debian's Chromium, for the dashboard's end-to-end test
chromium:
	@command -v chromium >/dev/null || scripts/install-chromium.sh

## clean-local: forget the installed DynamoDB Local
clean-local:
	rm -rf .local
