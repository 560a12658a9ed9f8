#!/usr/bin/env bash
# The dependencies' habits: no crate declares a dependency it does not use (cargo-machete,
# installed into .local/tools on first use), and every package the build can pull in is under a
# licence compatible with livecount's Apache-2.0 (each package's SPDX expression, from
# `cargo metadata`, must be satisfiable with the licences allowed below).
#
#   scripts/check-deps.sh
set -euo pipefail
cd "$(dirname "$0")/.."
tools="$PWD/.local/tools"
if [ ! -x "$tools/bin/cargo-machete" ]; then
  echo "check-deps: installing cargo-machete into .local/tools" >&2
  # A debug build: it compiles in about a quarter of a release build's time (28 s against
  # 1 min 47 s on 2 cores) and still reads the workspace in seconds.
  cargo install --quiet --locked --debug --root "$tools" cargo-machete
fi
"$tools/bin/cargo-machete"
cargo metadata --format-version 1 --locked | python3 scripts/check-licences.py
