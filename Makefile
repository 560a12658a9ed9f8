# livecount: the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
export LIVECOUNT_DYNAMODB_LOCAL_DIR := $(CURDIR)/.local/dynamodb-local
LAMBDA_VENV := $(CURDIR)/.local/lambda-venv
# The functions' architecture: arm64 (Graviton, the infrastructure's default) or x86_64.
LAMBDA_ARCH ?= arm64
LAMBDA_DIR ?= target/lambda
# The zips' cargo profile: `release` (thin LTO, one codegen unit) ships; `.ci/run` tests the same
# code built with `lambda-test`, a profile that builds in a fraction of the time (Cargo.toml).
LAMBDA_PROFILE ?= release
LAMBDA_TARGET = $(if $(filter x86_64,$(LAMBDA_ARCH)),x86_64,aarch64)-unknown-linux-gnu.2.17
LAMBDA_ELF_MACHINE = $(if $(filter x86_64,$(LAMBDA_ARCH)),62,183)

.PHONY: run test unit lint deps fmt chromium nginx web-client package lambda-test infra-test fuzz bench bench-scale clean-local

## run: the whole pipeline on this machine: DynamoDB Local, five simulated players, the dashboard
run:
	$(CARGO) run --quiet -p livecount-cli --bin livecount -- dev $(ARGS)

## test: lint, unit, integration and end-to-end tests against a fresh DynamoDB Local. The pipeline
## tests mostly wait on DynamoDB Local and on real time, so they run 4 at a time on 2 cores. Both
## commands select the whole workspace (`--exclude`, `--test`), so cargo unifies the same features
## and the second builds nothing; `-p livecount-tests` would rebuild tokio, hyper and the SDK's
## runtime with that package's own features (71 s in CI; `make lambda-test` selects the same way)
PIPELINE_TEST_THREADS ?= 4
test: lint deps chromium nginx web-client
	cd clients/web && npm test
	scripts/with-dynamodb-local.sh sh -c '$(CARGO) test --workspace --all-targets --exclude livecount-tests && \
	  $(CARGO) test --workspace --test pipeline --test lambda_contract -- --test-threads=$(PIPELINE_TEST_THREADS)'
	$(CARGO) test --workspace --doc

## unit: the tests that need no DynamoDB
unit:
	$(CARGO) test --workspace --lib --bins

## lint: formatting, clippy and rustdoc, warnings as errors
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps --quiet

fmt:
	$(CARGO) fmt --all

## deps: no unused dependency (cargo-machete), every dependency's licence allowed
deps:
	scripts/check-deps.sh

## chromium: Debian's Chromium, for the dashboard's and the player's end-to-end tests
chromium:
	@scripts/install-debian-package.sh chromium chromium

## nginx: Debian's nginx, the HTTP cache that stands in for the CDN in the badge test
nginx:
	@scripts/install-debian-package.sh nginx nginx

## web-client: the web client's test dependency (playwright-core drives Debian's Chromium)
web-client:
	@[ -d clients/web/node_modules/playwright-core ] || (cd clients/web && npm ci --no-audit --no-fund --silent)

$(LAMBDA_VENV)/bin/cargo-lambda:
	python3 -m venv $(LAMBDA_VENV)
	$(LAMBDA_VENV)/bin/pip install --quiet cargo-lambda

## package: release bootstrap.zip of the ingest, aggregate, read and edge Lambdas in target/lambda/,
## for LAMBDA_ARCH (arm64 by default; LAMBDA_ARCH=x86_64 to match architecture = x86_64)
package: $(LAMBDA_VENV)/bin/cargo-lambda
	PATH="$(LAMBDA_VENV)/bin:$$PATH" cargo lambda build --profile $(LAMBDA_PROFILE) --target $(LAMBDA_TARGET) \
	  --output-format zip --lambda-dir $(LAMBDA_DIR) --bin ingest --bin aggregate --bin read --bin edge
	@for f in ingest aggregate read edge; do \
	  unzip -o -q $(LAMBDA_DIR)/$$f/bootstrap.zip -d $(LAMBDA_DIR)/$$f 2>/dev/null \
	    || python3 -m zipfile -e $(LAMBDA_DIR)/$$f/bootstrap.zip $(LAMBDA_DIR)/$$f; \
	  chmod +x $(LAMBDA_DIR)/$$f/bootstrap; \
	  python3 -c 'import sys; m = int.from_bytes(open(sys.argv[1], "rb").read(20)[18:20], "little"); sys.exit(0 if m == int(sys.argv[2]) else f"{sys.argv[1]}: ELF machine {m}, expected {sys.argv[2]} ($(LAMBDA_ARCH))")' \
	    $(LAMBDA_DIR)/$$f/bootstrap $(LAMBDA_ELF_MACHINE); \
	  printf '%-10s %s bytes (%s)\n' $$f "$$(stat -c %s $(LAMBDA_DIR)/$$f/bootstrap.zip)" $(LAMBDA_ARCH); \
	done

## lambda-test: the shipped bootstraps (make package's, for LAMBDA_ARCH) under cargo lambda's
## runtime emulator, against DynamoDB Local; arm64 ones run through qemu's user-mode emulator
## (Debian's qemu-user-static, with Debian's arm64 C library) on an x86_64 machine
LAMBDA_RUNNER = $(if $(and $(filter arm64,$(LAMBDA_ARCH)),$(filter-out aarch64,$(shell uname -m))),qemu-aarch64-static -L /usr/aarch64-linux-gnu)
lambda-test: package
	@if [ -n "$(LAMBDA_RUNNER)" ]; then \
	  scripts/install-debian-package.sh qemu-user-static qemu-aarch64-static && \
	  scripts/install-debian-package.sh libc6-arm64-cross /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1; \
	fi
	PATH="$(LAMBDA_VENV)/bin:$$PATH" CARGO_LAMBDA=$(LAMBDA_VENV)/bin/cargo-lambda \
	  LIVECOUNT_LAMBDA_DIR=$(CURDIR)/$(LAMBDA_DIR) LIVECOUNT_LAMBDA_RUNNER="$(LAMBDA_RUNNER)" \
	  scripts/with-dynamodb-local.sh $(CARGO) test --workspace --test lambda_contract -- --ignored

## infra-test: CDK tests and offline synth, terraform checks, checkov
infra-test:
	scripts/infra-test.sh

## fuzz: one million inputs through each cargo-fuzz target (FUZZ_RUNS to change)
FUZZ_RUNS ?= 1000000
fuzz:
	scripts/fuzz.sh $(FUZZ_RUNS)

## bench-scale: the million-viewer simulation (livecount-sim): the scale section of BENCHMARKS.md
## and docs/scale.svg (about 40 minutes on 2 cores; no DynamoDB needed)
bench-scale:
	$(CARGO) run --release -q -p livecount-bench -- scale

## bench: every benchmark against DynamoDB Local; writes BENCHMARKS.md and docs/benchmarks.svg
bench:
	$(CARGO) bench -p livecount-bench --bench handlers -- --warm-up-time 1 --measurement-time 3
	scripts/with-dynamodb-local.sh $(CARGO) run --release --quiet -p livecount-bench

## clean-local: forget the installed DynamoDB Local and tools
clean-local:
	rm -rf .local
