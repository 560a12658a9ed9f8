# livecount: the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
export LIVECOUNT_DYNAMODB_LOCAL_DIR := $(CURDIR)/.local/dynamodb-local
LAMBDA_VENV := $(CURDIR)/.local/lambda-venv
LAMBDA_TARGET := x86_64-unknown-linux-gnu.2.17

.PHONY: run test unit lint fmt chromium web-client package lambda-test infra-test fuzz bench clean-local

## run: the whole pipeline on this machine: DynamoDB Local, five simulated players, the dashboard
run:
	$(CARGO) run --quiet -p livecount-cli --bin livecount -- dev $(ARGS)

## test: lint, unit, integration and end-to-end tests against a fresh DynamoDB Local
test: lint chromium web-client
	cd clients/web && npm test
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

## web-client: the web client's test dependency (playwright-core drives Debian's Chromium)
web-client:
	@[ -d clients/web/node_modules/playwright-core ] || (cd clients/web && npm ci --no-audit --no-fund --silent)

$(LAMBDA_VENV)/bin/cargo-lambda:
	python3 -m venv $(LAMBDA_VENV)
	$(LAMBDA_VENV)/bin/pip install --quiet cargo-lambda

## package: release bootstrap.zip of the ingest, aggregate and read Lambdas in target/lambda/
package: $(LAMBDA_VENV)/bin/cargo-lambda
	PATH="$(LAMBDA_VENV)/bin:$$PATH" cargo lambda build --release --target $(LAMBDA_TARGET) \
	  --output-format zip --bin ingest --bin aggregate --bin read
	@for f in ingest aggregate read; do \
	  unzip -o -q target/lambda/$$f/bootstrap.zip -d target/lambda/$$f 2>/dev/null \
	    || python3 -m zipfile -e target/lambda/$$f/bootstrap.zip target/lambda/$$f; \
	  chmod +x target/lambda/$$f/bootstrap; \
	  printf '%-10s %s bytes\n' $$f "$$(stat -c %s target/lambda/$$f/bootstrap.zip)"; \
	done

## lambda-test: the release bootstraps under cargo lambda's runtime emulator, against DynamoDB Local
lambda-test: package
	PATH="$(LAMBDA_VENV)/bin:$$PATH" CARGO_LAMBDA=$(LAMBDA_VENV)/bin/cargo-lambda \
	  scripts/with-dynamodb-local.sh $(CARGO) test -p livecount-tests --test lambda_contract -- --ignored

## infra-test: CDK tests and offline synth, terraform checks, checkov
infra-test:
	scripts/infra-test.sh

## fuzz: one million inputs through each cargo-fuzz target (FUZZ_RUNS to change)
FUZZ_RUNS ?= 1000000
fuzz:
	scripts/fuzz.sh $(FUZZ_RUNS)

## bench: every benchmark against DynamoDB Local; writes BENCHMARKS.md and docs/benchmarks.png
bench: chromium
	$(CARGO) bench -p livecount-bench --bench handlers -- --warm-up-time 1 --measurement-time 3
	scripts/with-dynamodb-local.sh $(CARGO) run --release --quiet -p livecount-bench

## clean-local: forget the installed DynamoDB Local and tools
clean-local:
	rm -rf .local
