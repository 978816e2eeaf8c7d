#!/usr/bin/env python3
"""Check docker-compose.yml without Docker (this machine has none; `docker compose config` needs the
Docker CLI): the YAML parses, and what `docker compose up` is meant to start holds.

- every image is pinned (a tag that is not `latest`), or built from the Dockerfile;
- every published port is bound to 127.0.0.1;
- the two emulator profiles (`localstack`, the default through .env, and `moto`) each publish 4566, and
  LocalStack's SERVICES list every AWS service the workers' crates use (from their aws-sdk-* dependencies);
- `workers` starts after `deploy` completed, and its stop grace covers the shutdown grace plus the
  telemetry flush;
- Prometheus, Grafana, Keycloak and both emulators have healthchecks; every depends_on names a service;
- every file or directory mounted from the repository exists;
- every approver group of examples/templates/*.json exists in the Keycloak realm with at least one member.

Usage: check-compose.py docker-compose.yml   (exit 1 with one line per problem)
"""
import glob
import json
import os
import re
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# IAM/SDK crate -> LocalStack service name.
SDK_TO_LOCALSTACK = {
    "sqs": "sqs", "dynamodb": "dynamodb", "sts": "sts", "iam": "iam", "kms": "kms", "cloudtrail": "cloudtrail",
    "eventbridge": "events", "cloudformation": "cloudformation", "guardduty": "guardduty", "ec2": "ec2",
    "config": "config", "s3control": "s3", "cloudwatchlogs": "logs", "cloudwatch": "cloudwatch", "sns": "sns",
    "securityhub": "securityhub", "s3": "s3", "rds": "rds", "efs": "efs",
    # LocalStack has no IAM Access Analyzer: IAM.28 reads `unknown` there, as on moto.
    "accessanalyzer": None,
    # The Account API is used only for posture.regions = ["all"]; the compose settings name the region.
    "account": None,
}
# worker.shutdown_grace_seconds' default (common/runtime/src/config.rs) + the telemetry flush (5 s).
SHUTDOWN_GRACE_S = 25
TELEMETRY_FLUSH_S = 5


def seconds(text):
    m = re.fullmatch(r"(\d+)s", str(text))
    return int(m.group(1)) if m else None


def check(path):
    problems = []
    with open(path) as f:
        compose = yaml.safe_load(f)
    services = compose.get("services") or {}
    for name, svc in services.items():
        image = svc.get("image")
        if "build" not in svc:
            if not image or ":" not in image or image.endswith(":latest"):
                problems.append(f"{name}: image `{image}` is not pinned to a version")
        for port in svc.get("ports", []):
            if not str(port).startswith("127.0.0.1:"):
                problems.append(f"{name}: port {port} is not bound to 127.0.0.1")
        deps = svc.get("depends_on") or []
        for dep in deps if isinstance(deps, list) else deps.keys():
            if dep not in services:
                problems.append(f"{name}: depends on unknown service {dep}")
        for vol in svc.get("volumes", []):
            src = str(vol).split(":")[0]
            if src.startswith("./") and not os.path.exists(os.path.join(ROOT, src)):
                problems.append(f"{name}: mounts {src}, which does not exist")
    for name in ["localstack", "moto", "prometheus", "grafana", "keycloak"]:
        if "healthcheck" not in services.get(name, {}):
            problems.append(f"{name}: no healthcheck")
    for name in ["localstack", "moto"]:
        svc = services.get(name, {})
        if svc.get("profiles") != [name]:
            problems.append(f"{name}: should be in the profile `{name}` only")
        if "127.0.0.1:4566:4566" not in svc.get("ports", []):
            problems.append(f"{name}: should publish 127.0.0.1:4566:4566")
    env_file = os.path.join(os.path.dirname(os.path.abspath(path)), ".env")
    if not os.path.exists(env_file) or "COMPOSE_PROFILES=localstack" not in open(env_file).read():
        problems.append(".env should set COMPOSE_PROFILES=localstack (the profile `docker compose up` starts)")
    # LocalStack serves every service the workers call.
    wanted = set()
    for cargo in glob.glob(os.path.join(ROOT, "workers/*/Cargo.toml")) + [os.path.join(ROOT, "common/runtime/Cargo.toml")]:
        for sdk in re.findall(r"^aws-sdk-([a-z0-9]+)", open(cargo).read(), re.M):
            if sdk not in SDK_TO_LOCALSTACK:
                problems.append(f"{cargo}: aws-sdk-{sdk} has no LocalStack service in scripts/check-compose.py")
            elif SDK_TO_LOCALSTACK[sdk]:
                wanted.add(SDK_TO_LOCALSTACK[sdk])
    wanted.add("cloudformation")  # `deploy`
    served = set(str(services.get("localstack", {}).get("environment", {}).get("SERVICES", "")).split(","))
    for missing in sorted(wanted - served):
        problems.append(f"localstack: SERVICES lacks `{missing}`, which the workers call")
    # The workers run after the stack is deployed and stop gracefully.
    workers = services.get("workers", {})
    if (workers.get("depends_on") or {}).get("deploy", {}).get("condition") != "service_completed_successfully":
        problems.append("workers: should start after deploy completed successfully")
    if services.get("deploy", {}).get("image") != workers.get("image") or "build" not in services.get("deploy", {}):
        problems.append("deploy and workers: should run the image built from the Dockerfile")
    grace = seconds(workers.get("stop_grace_period"))
    if grace is None or grace < SHUTDOWN_GRACE_S + TELEMETRY_FLUSH_S:
        problems.append(f"workers: stop_grace_period should be at least {SHUTDOWN_GRACE_S + TELEMETRY_FLUSH_S}s")
    # The demo's approvals work: every approver group has a member in the realm.
    realm = json.load(open(os.path.join(ROOT, "localstack/keycloak/portcullis-realm.json")))
    groups = {g["name"] for g in realm.get("groups", [])}
    members = {}
    for user in realm.get("users", []):
        for g in user.get("groups", []):
            members.setdefault(g.lstrip("/"), []).append(user["username"])
    for template in sorted(glob.glob(os.path.join(ROOT, "examples/templates/*.json"))):
        for group in (json.load(open(template)).get("approval") or {}).get("approver_groups", []):
            if group not in groups or not members.get(group):
                problems.append(f"keycloak realm: approver group {group} ({os.path.basename(template)}) has no member")
    return problems


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "docker-compose.yml")
    problems = check(path)
    for p in problems:
        print(f"{path}: {p}", file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"{path}: ok ({len(yaml.safe_load(open(path))['services'])} services)")


if __name__ == "__main__":
    main()
