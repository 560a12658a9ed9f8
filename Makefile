# livecount: the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: test unit integration lint fmt clean-local

## test: lint, unit tests and integration tests against a fresh DynamoDB Local (installed on demand)
test: lint
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

## clean-local: forget the installed DynamoDB Local
clean-local:
	rm -rf .local
