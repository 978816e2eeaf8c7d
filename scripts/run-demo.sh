#!/usr/bin/env bash
# `make run`: a local AWS emulator, a local OpenID provider, the stack deployed into the emulator, the
# workers, and a demo of the `portcullis` CLI as two people use it. Everything this script starts is
# stopped on exit (Ctrl-C), by PID.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${PORTCULLIS_EMULATOR_PORT:-4566}"
IDP_PORT="${PORTCULLIS_IDP_PORT:-4445}"
SLACK_PORT="${PORTCULLIS_FAKE_SLACK_PORT:-4447}"
EDGE_PORT="${PORTCULLIS_SLACK_EDGE_PORT:-4448}"
STATE=.portcullis
# Where cargo put the binaries: its own answer, so CARGO_TARGET_DIR and build.target-dir are honoured.
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
BIN="$TARGET_DIR/debug"
for b in portcullis portcullis-worker portcullis-slack; do
  [ -x "$BIN/$b" ] || { echo "no $BIN/$b: run \`make build\` (make run does)" >&2; exit 1; }
done
ACCOUNT=123456789012
PREFIX=portcullis-local
mkdir -p "$STATE"

# Operator credentials for the emulator only (the stack deploy and the workers). People's commands
# below run with none of these: `portcullis` reaches the queues with the ID token alone.
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
export AWS_ENDPOINT_URL="http://127.0.0.1:${PORT}"
export PORTCULLIS__AWS__ENDPOINT_URL="$AWS_ENDPOINT_URL"
export PORTCULLIS__IDENTITY__ISSUER="http://127.0.0.1:${IDP_PORT}"
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
# Arguments as a shell reads them back: quoted when they hold anything but plain characters, so
# every command shown can be pasted.
quote_args() {
  local out=() a
  for a in "$@"; do
    if [[ "$a" =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then out+=("$a"); else out+=("'${a//\'/\'\\\'\'}'"); fi
  done
  printf '%s' "${out[*]}"
}
shown() { printf '\033[2m%s\033[0m\n' "$*"; }
# `as NAME portcullis ARGS...`: run the CLI as a person on their own machine: their own config and
# cache under .portcullis/home/NAME, their own ~/.aws/config, and no AWS credentials at all.
as() {
  local who="$1"; shift
  local home="$PWD/$STATE/home/$who"
  mkdir -p "$home"
  shown "[$who]\$ portcullis $(quote_args "${@:2}")"
  env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_ENDPOINT_URL -u AWS_REGION \
    PORTCULLIS_CLI_CONFIG="$home/config.toml" PORTCULLIS_CLI_CACHE="$home/cache" \
    AWS_CONFIG_FILE="$home/aws-config" NO_SPINNER=1 "$@"
}
# The same, without echoing the command (for polling).
quietly_as() {
  local who="$1"; shift
  local home="$PWD/$STATE/home/$who"
  env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_ENDPOINT_URL -u AWS_REGION \
    PORTCULLIS_CLI_CONFIG="$home/config.toml" PORTCULLIS_CLI_CACHE="$home/cache" NO_SPINNER=1 "$@"
}
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

for p in "$PORT" "$IDP_PORT" "$SLACK_PORT" "$EDGE_PORT"; do
  if port_busy "$p"; then
    echo "port $p is already in use; stop what runs there (or set PORTCULLIS_EMULATOR_PORT / PORTCULLIS_IDP_PORT / PORTCULLIS_FAKE_SLACK_PORT / PORTCULLIS_SLACK_EDGE_PORT)" >&2
    exit 1
  fi
done
rm -rf "$STATE/home"

bold "1. AWS emulator (moto_server) on 127.0.0.1:${PORT}, OpenID provider (oidc-provider) on 127.0.0.1:${IDP_PORT}"
.venv/bin/moto_server -H 127.0.0.1 -p "$PORT" >"$STATE/moto.log" 2>&1 &
PIDS+=($!)
cat >"$STATE/idp-users.json" <<'USERS'
{ "alice": { "team": "payments", "groups": ["engineers"] },
  "bob": { "team": "payments", "groups": ["engineers"] },
  "secops": { "team": "security", "groups": ["portcullis-admins", "portcullis-approvers"] } }
USERS
node tests/idp/server.mjs --port "$IDP_PORT" --users "$STATE/idp-users.json" >"$STATE/idp.out" 2>"$STATE/idp.log" &
PIDS+=($!)
for _ in $(seq 1 100); do port_busy "$PORT" && grep -q READY "$STATE/idp.out" && break; sleep 0.1; done
grep -q READY "$STATE/idp.out" || { echo "the OpenID provider did not start; see $STATE/idp.log" >&2; exit 1; }

bold "2. An operator deploys the stack (with an IAM OIDC provider for the issuer and the requester role) and seeds an account"
shown "\$ portcullis stack deploy --parameter OidcIssuerUrl=$PORTCULLIS__IDENTITY__ISSUER"
"$BIN/portcullis" stack deploy --parameter "OidcIssuerUrl=$PORTCULLIS__IDENTITY__ISSUER"
.venv/bin/python scripts/demo_aws.py seed

bold "3. Start portcullis-worker all (logs: $STATE/worker.log); it discovers the provider's keys"
"$BIN/portcullis-worker" all >"$STATE/worker.log" 2>&1 &
WORKER=$!
PIDS=("$WORKER" "${PIDS[@]}")
for _ in $(seq 1 100); do grep -q "posture scheduler started" "$STATE/worker.log" && break; sleep 0.1; done

INIT=(init --issuer "$PORTCULLIS__IDENTITY__ISSUER" --client-id portcullis-cli --stack-region us-east-1
      --aws-endpoint-url "$AWS_ENDPOINT_URL" --stack-prefix "$PREFIX" --stack-account "$ACCOUNT" --default-account "$ACCOUNT")

bold "4. secops (an admin, on a machine without a browser) logs in with the device flow and loads the templates"
as secops "$BIN/portcullis" "${INIT[@]}" >/dev/null
as secops "$BIN/portcullis" login --device 2>"$STATE/device.txt" &
LOGIN=$!
for _ in $(seq 1 100); do grep -q "(or open" "$STATE/device.txt" && break; sleep 0.1; done
sed -n '1,2p' "$STATE/device.txt"
URL=$(sed -n 's/^(or open \(.*\) directly)$/\1/p' "$STATE/device.txt")
shown "(secops confirms the code in a browser on another device: tests/idp/drive.mjs plays that part)"
node tests/idp/drive.mjs device "$URL" secops >/dev/null
wait "$LOGIN"
for t in examples/templates/*.json; do as secops "$BIN/portcullis" templates put "$t"; done

bold "5. alice sets up portcullis and logs in with her browser (PKCE, loopback redirect)"
as alice "$BIN/portcullis" "${INIT[@]}"
shown "(BROWSER is a scripted browser here: tests/idp/drive.mjs logs in as alice)"
BROWSER="node tests/idp/drive.mjs auth %s alice" as alice "$BIN/portcullis" login
as alice "$BIN/portcullis" whoami

bold "6. alice asks for read access to one bucket for an hour"
as alice "$BIN/portcullis" templates
as alice "$BIN/portcullis" request bucketRead --param bucketName=analytics-reports --ttl 1h \
  --reason "INC-4711: reconcile yesterday's payouts"
as alice "$BIN/portcullis" grants

bold "7. ...and uses it from any AWS tool through a credential_process profile (boto3 here)"
as alice "$BIN/portcullis" configure-profile jit
sed 's/^/    /' "$STATE/home/alice/aws-config"
shown "[alice]\$ python -c 'boto3.Session(profile_name=\"jit\").client(\"sts\").get_caller_identity()'   # three times"
env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_ENDPOINT_URL AWS_CONFIG_FILE="$STATE/home/alice/aws-config" \
  PORTCULLIS_CLI_CONFIG="$STATE/home/alice/config.toml" PORTCULLIS_CLI_CACHE="$STATE/home/alice/cache" \
  .venv/bin/python -c "
import boto3
for _ in range(3):
    print('   ', boto3.Session(profile_name='jit').client('sts').get_caller_identity()['Arn'])"
shown "(one credentials round trip for all three: the rest came from alice's 0600 cache)"
as alice "$BIN/portcullis" exec -- sh -c 'echo "    AWS_ACCESS_KEY_ID in the command: $AWS_ACCESS_KEY_ID"'

bold "8. Sensitive access needs a second person: alice asks for write access, secops approves it"
as alice "$BIN/portcullis" request bucketWrite --param bucketName=analytics-exports --ttl 30m \
  --reason "INC-4711: re-run the failed export"
GRANT=$(quietly_as alice "$BIN/portcullis" grants --output json | .venv/bin/python -c \
  'import json,sys; print([g["id"] for g in json.load(sys.stdin)["grants"] if g["status"] == "pending"][0])')
as alice "$BIN/portcullis" approve "$GRANT" || echo "    (exit $?: nobody approves their own grant)"
as secops "$BIN/portcullis" pending
as secops "$BIN/portcullis" approve "$GRANT"
shown "(the credentials reply on alice's queue is sealed to a key made for that one request, HPKE;"
shown " portcullis opens it in memory and only then prints the credentials, redacted here)"
as alice "$BIN/portcullis" credentials --refresh | sed -E 's/("(SecretAccessKey|SessionToken)": ")([^"]{4})[^"]*"/\1\3…(redacted)"/'
grep "credentials issued" "$STATE/worker.log" | tail -1 | sed -e 's/\x1b\[[0-9;]*m//g' | grep -oE "(user|account|access_key_id|sealed)=[^ ]+" | tr '\n' ' ' | sed 's/^/    worker log: credentials issued /'; echo

bold "9. Break glass: an emergency skips the approval, is announced, and secops reviews it afterwards"
as alice "$BIN/portcullis" request bucketWrite --param bucketName=analytics-backups --ttl 15m \
  --reason "SEV1: payouts export corrupt, restoring from backup" --break-glass
GLASS=$(quietly_as alice "$BIN/portcullis" grants --output json | .venv/bin/python -c \
  'import json,sys; print([g["id"] for g in json.load(sys.stdin)["grants"] if g.get("break_glass")][0])')
as secops "$BIN/portcullis" pending
as secops "$BIN/portcullis" review "$GLASS" --verdict justified --note "SEV1 on record; CloudTrail shows only the restore"

bold "9b. The same from Slack: the Slack edge (portcullis-slack) and a local fake of Slack's Web API"
# The Slack part never stops the rest of the demo: a failure is reported and the demo goes on.
slack_demo() {
SLACK_SECRET=demo-signing-secret-0123456789abcdef
"$BIN/portcullis-slack" fake-slack --port "$SLACK_PORT" --token xoxb-demo >"$STATE/slack-calls.jsonl" 2>"$STATE/fake-slack.log" &
PIDS+=($!)
cat >"$STATE/slack.toml" <<SLACKTOML
[aws]
region = "us-east-1"
endpoint_url = "$AWS_ENDPOINT_URL"
[stack]
prefix = "$PREFIX"
[http]
listen = "127.0.0.1:$EDGE_PORT"
public_url = "http://127.0.0.1:$EDGE_PORT"
[slack]
team_id = "T0PORTCUL"
api_app_id = "A0PORTCUL"
signing_secret = "$SLACK_SECRET"
bot_token = "xoxb-demo"
api_base_url = "http://127.0.0.1:$SLACK_PORT/api"
response_url_prefixes = ["http://127.0.0.1:$SLACK_PORT/hooks/"]
approvals_channel = "C0APPROVALS"
default_account = "$ACCOUNT"
producer_name = "local"              # the worker's [[producers]] entry (config/local.toml)
[link]
scopes = ["portcullis"]
redirect_uri = "http://127.0.0.1:$EDGE_PORT/callback"
[link.identity]
issuer = "$PORTCULLIS__IDENTITY__ISSUER"
audience = "portcullis-cli"
SLACKTOML
env -u PORTCULLIS__IDENTITY__ISSUER -u PORTCULLIS__AWS__ENDPOINT_URL \
  "$BIN/portcullis-slack" --config "$STATE/slack.toml" >"$STATE/slack-edge.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do port_busy "$EDGE_PORT" && port_busy "$SLACK_PORT" && break; sleep 0.1; done
EDGE="http://127.0.0.1:$EDGE_PORT"
# `slack USER TEXT`: USER types /portcullis TEXT (a signed slash command, as Slack sends it).
slack() {
  shown "[$1 in Slack] /portcullis $2"
  PORTCULLIS__SLACK__SIGNING_SECRET="$SLACK_SECRET" "$BIN/portcullis-slack" send --edge "$EDGE" command_request.form \
    "user=U0${1^^}" "text=$2" "slack=http://127.0.0.1:$SLACK_PORT" | sed 's/^/    edge: /'
}
# `click USER ACTION GRANT`: USER clicks a button on the approvers' message.
click() {
  shown "[$1 in Slack] clicks ${2#portcullis_} on $3"
  PORTCULLIS__SLACK__SIGNING_SECRET="$SLACK_SECRET" "$BIN/portcullis-slack" send --edge "$EDGE" approve_click.json \
    "user=U0${1^^}" "action=$2" "grant=$3" channel=C0APPROVALS ts=1.1 "action_ts=$(date +%s).0001" \
    "slack=http://127.0.0.1:$SLACK_PORT" >/dev/null
}
# `link USER`: /portcullis link, then USER signs in at the IdP in the browser that opened the link.
link() {
  local answer url jar
  answer=$(PORTCULLIS__SLACK__SIGNING_SECRET="$SLACK_SECRET" "$BIN/portcullis-slack" send --edge "$EDGE" \
    command_request.form "user=U0${1^^}" text=link "slack=http://127.0.0.1:$SLACK_PORT")
  url=$(printf '%s' "$answer" | sed -n 's/.*<\(http[^|]*\)|.*/\1/p')
  jar="$STATE/slack-$1.cookies"
  shown "[$1 in Slack] /portcullis link   -> a one-time link only $1 sees; $1 signs in (drive.mjs plays the browser)"
  local authorize
  authorize=$(curl -s -c "$jar" -o /dev/null -w '%{redirect_url}' "$url")
  local callback
  callback=$(node tests/idp/drive.mjs auth "$authorize" "$1" | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["redirect"])')
  curl -s -b "$jar" "$callback" | sed -e 's/<[^>]*>/ /g' -e 's/^ */    /'; echo
}
# Every Slack Web API call so far, one line each.
# `slack_calls [FROM [GRANT]]`: what the fake Slack received, from line FROM, only about GRANT if given.
slack_calls() {
  .venv/bin/python - "$STATE/slack-calls.jsonl" "${1:-0}" "${2:-}" <<'PY'
import json, sys
lines = open(sys.argv[1]).read().splitlines()[int(sys.argv[2]):]
for line in lines:
    if sys.argv[3] and sys.argv[3] not in line:
        continue
    c = json.loads(line)
    b = c["body"]
    print(f'    slack <- {c["method"]:<16} {b.get("channel", b.get("user_id", ""))!s:<12} {b.get("text", "")[:110]}')
PY
}
link alice
link secops
slack alice "request bucketWrite bucketName=analytics-slack --ttl 30m --reason INC-4712: re-run the export from Slack"
# The edge answers alice through her command's response_url with the grant it asked for (the bus's
# events of the grants made from the CLI above reach the approvers' channel too: not this one).
for _ in $(seq 1 100); do grep -q 'Requested: grant' "$STATE/slack-calls.jsonl" && break; sleep 0.1; done
SLACK_GRANT=$(grep 'Requested: grant' "$STATE/slack-calls.jsonl" | grep -o 'g-[0-9a-f]\{32\}' | tail -1)
slack_calls 0 "$SLACK_GRANT"
click alice portcullis_approve "$SLACK_GRANT"
for _ in $(seq 1 100); do grep -q approval_forbidden "$STATE/slack-calls.jsonl" && break; sleep 0.1; done
SEEN=$(wc -l <"$STATE/slack-calls.jsonl")
click secops portcullis_approve "$SLACK_GRANT"
for _ in $(seq 1 100); do
  [ "$(grep '"chat.update"' "$STATE/slack-calls.jsonl" | grep "$SLACK_GRANT" | grep -c ': active')" -ge 2 ] && break; sleep 0.1
done
sleep 1
slack_calls $((SEEN - 1)) "$SLACK_GRANT"
shown "(alice's own click was refused by Portcullis: approval_forbidden; secops' approval updated both copies)"
}
slack_demo || echo "    (the Slack demo did not finish: see $STATE/slack-edge.log and $STATE/slack-calls.jsonl)"

bold "10. Refusals: a pattern and a TTL checked before sending (exit 2), a server refusal with its code (exit 3)"
as alice "$BIN/portcullis" request bucketRead --param 'bucketName=*' --ttl 1h --reason "all the buckets please" || echo "    (exit $?)"
as alice "$BIN/portcullis" request bucketRead --param bucketName=analytics-reports --ttl 2d --reason "for the whole week" || echo "    (exit $?)"
as alice "$BIN/portcullis" posture || echo "    (exit $?)"

bold "11. Security posture right now (secops is in a posture reader group)"
for _ in $(seq 1 50); do
  quietly_as secops "$BIN/portcullis" posture --output json 2>/dev/null | grep -q control_id && break; sleep 0.2
done
as secops "$BIN/portcullis" posture

bold "12. Someone stops the trail: the change event triggers a rescan within seconds"
.venv/bin/python scripts/demo_aws.py stop-trail
for _ in $(seq 1 100); do grep -q "trigger=\"event:StopLogging\"" "$STATE/worker.log" && break; sleep 0.1; done
# The rescan the event triggered and the first violations it published (awk reads to the end: no
# SIGPIPE under pipefail, as `head` gave once the scan published more than three).
sed -e 's/\x1b\[[0-9;]*m//g' "$STATE/worker.log" |
  awk '/trigger="event:StopLogging"/ { found = 1 } found && /event:StopLogging|posture violation published/ && n < 4 { print; n++ }'
as secops "$BIN/portcullis" posture

bold "13. Alice leaves the company: the HR system's user.offboarded event"
.venv/bin/python scripts/demo_aws.py offboard alice
bold "...her grants are revoked and her live sessions are denied on the broker role"
.venv/bin/python scripts/demo_aws.py revocations
bold "...and Portcullis refuses her from now on, though her ID token has not expired"
as alice "$BIN/portcullis" grants || echo "    (exit $?)"

bold "The workers and the OpenID provider keep running until Ctrl-C. In another terminal:"
cat <<SNIPPET
    export PORTCULLIS_CLI_CONFIG=\$PWD/$STATE/you/config.toml PORTCULLIS_CLI_CACHE=\$PWD/$STATE/you/cache
    portcullis $(quote_args "${INIT[@]}")
    portcullis login --no-browser     # open the URL; log in as bob (alice has left; users: $STATE/idp-users.json)
    portcullis request bucketRead --param bucketName=reports --ttl 1h --reason "trying it out"
    portcullis configure-profile jit && aws --profile jit sts get-caller-identity
SNIPPET
wait "$WORKER"
