#!/usr/bin/env bash
# `make run`: a local AWS emulator, the stack deployed into it, the workers, and a demo through them.
# Everything this script starts is stopped on exit (Ctrl-C), by PID.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${PORTCULLIS_EMULATOR_PORT:-4566}"
STATE=.portcullis
BIN=target/debug
mkdir -p "$STATE"

# Dummy credentials for the emulator only; the embedded default config points at 127.0.0.1:4566.
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
export AWS_ENDPOINT_URL="http://127.0.0.1:${PORT}"
unset PORTCULLIS_CONFIG

PIDS=()
cleanup() {
  trap - EXIT INT TERM
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  echo; echo "stopped everything make run started."
}
trap cleanup EXIT INT TERM

bold() { printf '\n\033[1m%s\033[0m\n' "$*"; }
# Print a command (tokens shown as $ADMIN / $ALICE), then run it.
run() {
  local shown="$*"
  [ -n "${ADMIN:-}" ] && shown="${shown//$ADMIN/\$ADMIN}"
  [ -n "${ALICE:-}" ] && shown="${shown//$ALICE/\$ALICE}"
  printf '\033[2m$ %s\033[0m\n' "$shown"
  "$@"
}

if (exec 3<>"/dev/tcp/127.0.0.1/${PORT}") 2>/dev/null; then
  echo "port ${PORT} is already in use; stop what runs there or set PORTCULLIS_EMULATOR_PORT (and PORTCULLIS__AWS__ENDPOINT_URL)" >&2
  exit 1
fi
bold "1. AWS emulator (moto_server) on 127.0.0.1:${PORT}"
.venv/bin/moto_server -H 127.0.0.1 -p "$PORT" >"$STATE/moto.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/${PORT}") 2>/dev/null && break; sleep 0.1; done

bold "2. Deploy the stack through the CloudFormation API, and the local identity issuer"
export PORTCULLIS__AWS__ENDPOINT_URL="$AWS_ENDPOINT_URL"
run "$BIN/portcullis" stack deploy
run "$BIN/portcullis" dev-issuer init
.venv/bin/python scripts/demo_aws.py seed

bold "3. Start portcullis-worker all (logs: $STATE/worker.log)"
"$BIN/portcullis-worker" all >"$STATE/worker.log" 2>&1 &
WORKER=$!
PIDS=("$WORKER" "${PIDS[@]}")
for _ in $(seq 1 100); do grep -q "posture scheduler started" "$STATE/worker.log" && break; sleep 0.1; done

bold "4. ID tokens from the local issuer (verified by the worker like any OIDC provider's)"
printf '\033[2m$ ADMIN=$(portcullis dev-token --user secops --team security --group portcullis-admins)\033[0m\n'
ADMIN=$("$BIN/portcullis" dev-token --user secops --team security --group portcullis-admins)
printf '\033[2m$ ALICE=$(portcullis dev-token --user alice --team payments)\033[0m\n'
ALICE=$("$BIN/portcullis" dev-token --user alice --team payments)
ACCOUNT=123456789012

bold "5. An admin loads the statement templates"
for t in examples/templates/*.json; do run "$BIN/portcullis" template put --token "$ADMIN" "$t"; done

bold "6. Alice asks for read access to one bucket for an hour"
run "$BIN/portcullis" grant request --token "$ALICE" --template bucketRead --param bucketName=analytics-reports \
  --account "$ACCOUNT" --ttl 1h --reason "INC-4711: reconcile yesterday's payouts"

bold "7. ...and gets temporary credentials for exactly that (secrets redacted)"
run "$BIN/portcullis" credentials --token "$ALICE" --account "$ACCOUNT" --redacted

bold "8. Refused requests get a stable code and a sentence (and are kept in the dead-letter queue)"
run "$BIN/portcullis" grant request --token "$ALICE" --template bucketRead --param 'bucketName=*' \
  --account "$ACCOUNT" --ttl 1h --reason "all the buckets please" || true
run "$BIN/portcullis" grant request --token "$ALICE" --template bucketRead --param bucketName=analytics-reports \
  --account "$ACCOUNT" --ttl 2d --reason "for the whole week" || true

bold "9. Security posture right now"
RUST_LOG=error run "$BIN/portcullis-worker" posture scan --once --format table

bold "10. Someone stops the trail: the change event triggers a rescan within seconds"
.venv/bin/python scripts/demo_aws.py stop-trail
for _ in $(seq 1 100); do grep -q "trigger=\"event:StopLogging\"" "$STATE/worker.log" && break; sleep 0.1; done
grep -E "event:StopLogging|posture violation published" "$STATE/worker.log" | sed -e 's/\x1b\[[0-9;]*m//g' | head -3
RUST_LOG=error run "$BIN/portcullis-worker" posture scan --once --format table

bold "11. Alice leaves the company: the HR system's user.offboarded event"
.venv/bin/python scripts/demo_aws.py offboard alice
bold "...her grants are revoked and her live sessions are denied on the broker role"
.venv/bin/python scripts/demo_aws.py revocations
bold "...and her next credentials request is refused, though her ID token has not expired"
run "$BIN/portcullis" credentials --token "$ALICE" --account "$ACCOUNT" || true

bold "The workers keep running (scans every 60 s; requests on the queue). Ctrl-C stops everything."
wait "$WORKER"
