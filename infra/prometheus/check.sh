#!/usr/bin/env bash
# Check the observability assets. Run from the repository root:
#
#   bash infra/prometheus/check.sh
#
# 1. promtool check config: prometheus.yml and the rule file it loads.
# 2. promtool check rules: rule syntax and PromQL.
# 3. promtool test rules: the alert unit tests.
# 4. Python: the Grafana dashboard is valid JSON of the expected shape; every metric named in the
#    dashboard and the rules is declared in docs/metrics.md (generated from the code); every alert has severity, summary,
#    description and runbook (a control's section of docs/posture.md, or README.md#alerts), and unit
#    tests where it fires and where it does not.
# 5. promtool check rules on the dashboard's queries (Grafana variables substituted), so a PromQL
#    syntax error in a panel fails here rather than in front of an auditor.
#
# Needs promtool (Debian/Ubuntu: `apt-get install -y prometheus`; or set PROMTOOL=/path/to/promtool)
# and python3 with PyYAML (`apt-get install -y python3-yaml` or `pip install pyyaml`). A missing tool
# is an error, never a skip.
set -euo pipefail

RULES=infra/prometheus/rules/portcullis.rules.yml
TESTS=infra/prometheus/rules/portcullis.rules.test.yml
CONFIG=infra/prometheus/prometheus.yml
DASHBOARD=infra/grafana/dashboards/portcullis-posture.json
METRICS=docs/metrics.md

fail() {
    echo "check.sh: ERROR: $*" >&2
    exit 1
}

[[ -f "$RULES" && -f "$TESTS" && -f "$CONFIG" && -f "$DASHBOARD" && -f "$METRICS" ]] ||
    fail "run from the repository root (missing $RULES, $TESTS, $CONFIG, $DASHBOARD or $METRICS)"

PROMTOOL=${PROMTOOL:-promtool}
command -v "$PROMTOOL" >/dev/null 2>&1 ||
    fail "promtool not found (looked for '$PROMTOOL'). Install it: 'apt-get install -y prometheus' on Debian/Ubuntu, or set PROMTOOL=/path/to/promtool. The rules are not checked without it."
PYTHON=${PYTHON:-python3}
command -v "$PYTHON" >/dev/null 2>&1 || fail "python3 not found (set PYTHON=/path/to/python3)"
"$PYTHON" -c 'import yaml' 2>/dev/null ||
    fail "$PYTHON has no PyYAML: 'apt-get install -y python3-yaml' or 'pip install pyyaml'"

echo "== $("$PROMTOOL" --version 2>&1 | head -n 1)"
echo "== promtool check config $CONFIG"
"$PROMTOOL" check config "$CONFIG"
echo "== promtool check rules $RULES"
"$PROMTOOL" check rules "$RULES"
echo "== promtool test rules $TESTS"
"$PROMTOOL" test rules "$TESTS"

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
DASHBOARD_RULES="$WORK/dashboard-queries.rules.yml"

echo "== contract, dashboard and coverage checks"
"$PYTHON" - "$RULES" "$TESTS" "$DASHBOARD" "$DASHBOARD_RULES" "$METRICS" <<'PY'
import json
import re
import sys

import yaml

rules_path, tests_path, dashboard_path, dashboard_rules_path, metrics_path = sys.argv[1:6]
errors = []

# The Prometheus names of the metrics Portcullis exports, from docs/metrics.md (generated from
# common/domain/src/metrics.rs, where every metric is declared once).
CONTRACT = set()
for line in open(metrics_path):
    m = re.match(r"\| `([a-z_:][a-z0-9_:]*)` \| (counter|gauge|histogram) \|", line)
    if m:
        name, kind = m.groups()
        CONTRACT |= {name + s for s in ("_bucket", "_sum", "_count")} if kind == "histogram" else {name}
if not CONTRACT:
    print(f"check.sh: ERROR: {metrics_path} lists no metric", file=sys.stderr)
    sys.exit(1)

KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
            "bool", "offset", "atan2", "inf", "nan", "le"}


def metric_names(expr):
    """Metric names in a PromQL expression (strings, matchers, ranges and grouping lists removed)."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    s = re.sub(r"\$\{?\w+\}?", "1", s)  # Grafana variables ($__rate_interval, ...)
    s = re.sub(r"\{[^}]*\}", "", s)
    s = re.sub(r"\[[^\]]*\]", "", s)
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", s)
    names = set()
    for m in re.finditer(r"(?<![\w.])[A-Za-z_:][A-Za-z0-9_:]*", s):
        word = m.group(0)
        following = s[m.end():].lstrip()
        if following.startswith("("):
            continue  # a function or aggregation
        if word.lower() in KEYWORDS:
            continue
        names.add(word)
    return names


def check_expr(where, expr):
    found = metric_names(expr)
    for name in sorted(found - CONTRACT):
        errors.append(f"{where}: `{name}` is not a Portcullis metric of the contract (expr: {expr.strip()})")
    return found


# --- rules
rules = yaml.safe_load(open(rules_path))
alerts = {}
used = set()
for group in rules["groups"]:
    for rule in group["rules"]:
        name = rule.get("alert") or rule.get("record")
        used |= check_expr(f"{rules_path}: {name}", rule["expr"])
        if "alert" not in rule:
            continue
        alerts[name] = rule
        labels, ann = rule.get("labels", {}), rule.get("annotations", {})
        if labels.get("severity") not in ("critical", "warning", "info"):
            errors.append(f"{rules_path}: {name}: severity label must be critical, warning or info")
        for key in ("summary", "description"):
            if not str(ann.get(key, "")).strip():
                errors.append(f"{rules_path}: {name}: missing {key} annotation")
        # A control's alert links to its section of docs/posture.md (the catalog test checks the id),
        # the per-control alerts to the section of the control that fired, the rest to the README.
        runbook = ann.get("runbook", "")
        control = labels.get("control_id")
        allowed = {f"docs/posture.md#{control}"} if control else {
            "README.md#alerts", "docs/posture.md#{{ $labels.control_id }}"}
        if runbook not in allowed:
            errors.append(f"{rules_path}: {name}: runbook must be one of {sorted(allowed)}, not {runbook!r}")

# --- every alert has a firing and a quiet test case
tests = yaml.safe_load(open(tests_path))
firing, quiet = set(), set()
for test in tests["tests"]:
    for case in test.get("alert_rule_test", []):
        (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
for name in sorted(alerts):
    if name not in firing:
        errors.append(f"{tests_path}: no test case where {name} fires")
    if name not in quiet:
        errors.append(f"{tests_path}: no test case where {name} must not fire")
for name in sorted((firing | quiet) - set(alerts)):
    errors.append(f"{tests_path}: tests an alert that does not exist: {name}")

# --- dashboard
try:
    dash = json.load(open(dashboard_path))
except ValueError as e:
    print(f"check.sh: ERROR: {dashboard_path} is not valid JSON: {e}", file=sys.stderr)
    sys.exit(1)

if not isinstance(dash.get("schemaVersion"), int) or dash["schemaVersion"] < 36:
    errors.append(f"{dashboard_path}: schemaVersion missing or older than 36")
for key in ("uid", "title", "panels", "templating"):
    if key not in dash:
        errors.append(f"{dashboard_path}: missing `{key}`")

variables = {v["name"]: v for v in dash.get("templating", {}).get("list", [])}
for var in ("cloud_account_id", "cloud_region"):
    if var not in variables:
        errors.append(f"{dashboard_path}: missing template variable `{var}`")
for name, var in variables.items():
    q = var.get("query")
    q = q.get("query", "") if isinstance(q, dict) else (q or "")
    m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\s*\)\s*", q)
    if not m:
        errors.append(f"{dashboard_path}: variable `{name}`: expected label_values(<selector>, <label>), got {q!r}")
    else:
        used |= check_expr(f"{dashboard_path}: variable {name}", m.group(1))
    if var.get("datasource", {}).get("uid") != "prometheus":
        errors.append(f"{dashboard_path}: variable `{name}` must use the datasource uid `prometheus`")

# Grafana variables -> values that make each query a plain PromQL expression for promtool.
GRAFANA_VARS = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h",
                "$cloud_account_id": ".*", "$cloud_region": ".*"}
dashboard_queries = []

ids = set()
panels = dash.get("panels", [])
for p in panels:
    panels.extend(p.get("panels", []))  # panels inside collapsed rows
for p in panels:
    title = p.get("title", "?")
    if p.get("id") in ids:
        errors.append(f"{dashboard_path}: duplicate panel id {p.get('id')} ({title})")
    ids.add(p.get("id"))
    grid = p.get("gridPos", {})
    if not all(isinstance(grid.get(k), int) for k in ("h", "w", "x", "y")) or grid["x"] + grid["w"] > 24:
        errors.append(f"{dashboard_path}: panel `{title}` has an invalid gridPos {grid}")
    if p.get("type") == "row":
        continue
    if p.get("datasource", {}).get("uid") != "prometheus":
        errors.append(f"{dashboard_path}: panel `{title}` must use the datasource uid `prometheus`")
    targets = p.get("targets", [])
    if not targets:
        errors.append(f"{dashboard_path}: panel `{title}` has no query")
    for t in targets:
        expr = t.get("expr", "")
        if not expr.strip():
            errors.append(f"{dashboard_path}: panel `{title}` has an empty query")
        used |= check_expr(f"{dashboard_path}: panel `{title}`", expr)
        for var, value in GRAFANA_VARS.items():
            expr = expr.replace(var, value)
        if "$" in expr:
            errors.append(f"{dashboard_path}: panel `{title}` uses an unknown variable: {expr}")
        dashboard_queries.append({"record": f"dashboard:panel_{p.get('id')}:{t.get('refId', 'A')}", "expr": expr})

with open(dashboard_rules_path, "w") as f:
    yaml.safe_dump({"groups": [{"name": "dashboard-queries", "rules": dashboard_queries}]}, f, sort_keys=False)

if errors:
    for e in errors:
        print(f"check.sh: ERROR: {e}", file=sys.stderr)
    sys.exit(1)
print(f"  SUCCESS: {len(alerts)} alerts, each with a firing and a quiet test; "
      f"{len([p for p in panels if p.get('type') != 'row'])} dashboard panels; "
      f"{len(used)} distinct metric names used, all from the contract")
PY
echo "== promtool check rules on the dashboard's queries"
"$PROMTOOL" check rules "$DASHBOARD_RULES"
echo "== all checks passed"
