//! What the [catalog](super::catalog) generates in the repository's other files: the stack's
//! EventBridge rules and the posture queue's policy (CloudFormation), the control and change-event
//! tables of `docs/posture.md` with one section per control, and the Grafana dashboard's control
//! tiles. Pure text in, text out; the tests below compare the files with it, and rewrite them with
//! `make catalog` (`PORTCULLIS_BLESS_CATALOG=1`).
//!
//! A generated block sits between two marker lines, `BEGIN generated: <name>` and
//! `END generated: <name>`, inside a comment of the file's language; the dashboard's control tiles
//! are the panels with ids [`TILE_IDS`].

use std::ops::Range;

use serde_json::{Value, json};

use super::catalog::{ChangeEvent, ControlId, Coverage, EVENT_RULES, EventRule, RuleKind};

/// Panel ids of the dashboard's generated control tiles.
pub const TILE_IDS: Range<u64> = 100..200;
/// The "controls failing" tile, placed after the control tiles.
const FAILING_TILE_ID: u64 = 9;
/// Tile size and the grid width.
const TILE_W: u64 = 3;
const TILE_H: u64 = 4;
const GRID_W: u64 = 24;

/// Replace the lines between `BEGIN generated: <name>` and `END generated: <name>` (exclusive) with
/// `content`. `None` when the markers are missing.
pub fn replace_block(text: &str, name: &str, content: &str) -> Option<String> {
    let begin = format!("BEGIN generated: {name}");
    let end = format!("END generated: {name}");
    let start = text.find(&begin)?;
    let start = start + text[start..].find('\n')? + 1;
    let stop = start + text[start..].find(&end)?;
    let stop = text[..stop].rfind('\n').map(|i| i + 1)?;
    if stop < start {
        return None;
    }
    Some(format!("{}{}{}", &text[..start], content, &text[stop..]))
}

/// The posture rules on the default bus (CloudFormation YAML, indented as resources).
pub fn cloudformation_rules() -> String {
    let mut out = String::new();
    for rule in EVENT_RULES {
        if let Some(note) = rule.note {
            for line in wrap(note, 100) {
                out.push_str(&format!("  # {line}\n"));
            }
        }
        out.push_str(&format!("  {}:\n", rule.logical_id));
        out.push_str("    Type: AWS::Events::Rule\n    Properties:\n");
        out.push_str(&format!("      Name: !Sub \"${{Prefix}}-{}\"\n", rule.name));
        out.push_str(&format!("      Description: \"{}\"\n", rule.description()));
        out.push_str("      EventPattern:\n");
        out.push_str(&format!("        source: [{}]\n", rule.source));
        match rule.kind {
            RuleKind::Api { event_source } => {
                out.push_str("        detail-type: [AWS API Call via CloudTrail]\n        detail:\n");
                out.push_str(&format!("          eventSource: [{event_source}]\n          eventName:\n"));
                for name in rule.event_names() {
                    out.push_str(&format!("            - {name}\n"));
                }
            }
            RuleKind::GuardDutyFindings => {
                out.push_str("        detail-type: [GuardDuty Finding]\n        detail:\n");
                out.push_str("          severity: [{ numeric: [\">=\", 7] }]\n");
            }
        }
        out.push_str("      State: ENABLED\n      Targets:\n        - Id: posture-events\n");
        out.push_str("          Arn: !GetAtt PostureEventsQueue.Arn\n\n");
    }
    out.truncate(out.trim_end().len());
    out.push('\n');
    out
}

/// The rules allowed to send to the posture queue (the queue policy's `aws:SourceArn` list).
pub fn cloudformation_queue_policy_sources() -> String {
    EVENT_RULES.iter().map(|r| format!("                  - !GetAtt {}.Arn\n", r.logical_id)).collect()
}

fn rule_for(control: ControlId) -> Vec<&'static EventRule> {
    EVENT_RULES.iter().filter(|r| r.controls().contains(&control)).collect()
}

/// The control's Security Hub link, or a note that it has none.
fn security_hub(c: ControlId) -> String {
    if !c.in_security_hub() {
        return "none (a CIS recommendation Security Hub does not check)".to_owned();
    }
    let (family, number) = c.as_str().split_once('.').unwrap_or((c.as_str(), ""));
    let family = family.to_ascii_lowercase();
    let url =
        format!("https://docs.aws.amazon.com/securityhub/latest/userguide/{family}-controls.html#{family}-{number}");
    format!("[{c}]({url})")
}

fn cis(c: ControlId) -> String {
    match c.spec().cis {
        [] => "—".to_owned(),
        ids => ids.join(", "),
    }
}

/// `docs/posture.md`: the table of controls.
pub fn docs_controls_table() -> String {
    let mut out = String::from(
        "| control | title | severity | CIS v3.0 | measured | rescanned by | reads (calls per scan) |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for c in ControlId::ALL {
        let spec = c.spec();
        let rules: Vec<String> = rule_for(*c).iter().map(|r| format!("`{}`", r.name)).collect();
        out.push_str(&format!(
            "| [{id}](#{id}) | {title} | {sev} | {cis} | {cov} | {rules} | {cost} |\n",
            id = c.as_str(),
            title = spec.title,
            sev = spec.severity.as_str(),
            cis = cis(*c),
            cov = match spec.coverage {
                Coverage::Account => "per account",
                Coverage::Region => "per region",
            },
            rules = rules.join(", "),
            cost = spec.cost,
        ));
    }
    out
}

/// `docs/posture.md`: one section per control (the alert rules' runbook links point here).
pub fn docs_control_sections() -> String {
    let mut out = String::new();
    for c in ControlId::ALL {
        let spec = c.spec();
        let events: Vec<String> = spec
            .events
            .iter()
            .map(|e| match e {
                ChangeEvent::Api { event_source, names } => {
                    let names: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
                    format!("`{event_source}` {}", names.join(", "))
                }
                ChangeEvent::GuardDutyFinding => "a `GuardDuty Finding` of severity 7 or more".to_owned(),
            })
            .collect();
        let reads: Vec<String> = spec.reads.iter().map(|r| format!("`{r}`")).collect();
        out.push_str(&format!(
            "<a id=\"{id}\"></a>\n\n### {id} · {title}\n\n\
             {sev} severity · CIS AWS Foundations v3.0: {cis} · Security Hub: {hub} · measured {cov}\n\n\
             **Passes when:** {passes}\n\n\
             **Reads:** {reads} ({cost}).\n\n\
             **Rescanned by:** {events}.\n\n\
             **Remediation:** {remediation}\n\n",
            id = c.as_str(),
            title = spec.title,
            sev = spec.severity.as_str(),
            cis = cis(*c),
            hub = security_hub(*c),
            cov = match spec.coverage {
                Coverage::Account => "once per account, in its home region",
                Coverage::Region => "in every scanned region",
            },
            passes = spec.passes_when,
            reads = reads.join(", "),
            cost = spec.cost,
            events = events.join("; "),
            remediation = spec.remediation,
        ));
    }
    out
}

/// `docs/posture.md`: the table of change-event rules.
pub fn docs_events_table() -> String {
    let mut out = String::from("| rule | pattern | rescans |\n|---|---|---|\n");
    for rule in EVENT_RULES {
        let pattern = match rule.kind {
            RuleKind::Api { event_source } => {
                let names: Vec<String> = rule.event_names().iter().map(|n| format!("`{n}`")).collect();
                format!("`{event_source}` {}", names.join(", "))
            }
            RuleKind::GuardDutyFindings => {
                "source `aws.guardduty`, `GuardDuty Finding`, `detail.severity` numeric ≥ 7".to_owned()
            }
        };
        let controls: Vec<String> = rule.controls().iter().map(|c| format!("[{c}](#{c})")).collect();
        out.push_str(&format!("| `<prefix>-{}` | {pattern} | {} |\n", rule.name, controls.join(", ")));
    }
    out
}

fn tile(c: ControlId, index: u64) -> Value {
    let spec = c.spec();
    let id = c.as_str();
    let query = format!(
        "portcullis_posture_control_status{{control_id=\"{id}\", cloud_account_id=~\"$cloud_account_id\", \
         cloud_region=~\"$cloud_region\"}}"
    );
    let prometheus = json!({"type": "prometheus", "uid": "prometheus"});
    json!({
        "type": "stat",
        "id": TILE_IDS.start + index,
        "title": format!("{id} · {}", spec.label),
        "description": format!(
            "{}. Severity {}, CIS AWS Foundations v3.0 {}. PASS = compliant, FAIL = not compliant, UNKNOWN = could not \
             be measured (see scan errors). One value per account and region; definition and remediation in \
             docs/posture.md#{id}.",
            spec.title, spec.severity.as_str(), cis(c)
        ),
        "datasource": prometheus,
        "gridPos": {"h": TILE_H, "w": TILE_W, "x": 0, "y": 0},
        "targets": [{
            "datasource": prometheus,
            "refId": "A",
            "expr": query,
            "legendFormat": "{{cloud_account_id}} {{cloud_region}}",
            "range": false,
            "instant": true
        }],
        "fieldConfig": {
            "defaults": {
                "unit": "none",
                "noValue": "NOT MEASURED",
                "mappings": [{"type": "value", "options": {
                    "1": {"text": "PASS", "color": "green", "index": 0},
                    "0": {"text": "FAIL", "color": "red", "index": 1},
                    "-1": {"text": "UNKNOWN", "color": "grey", "index": 2}
                }}],
                "color": {"mode": "thresholds"},
                "thresholds": {"mode": "absolute", "steps": [
                    {"color": "grey", "value": null},
                    {"color": "red", "value": 0},
                    {"color": "green", "value": 1}
                ]}
            },
            "overrides": []
        },
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": false},
            "colorMode": "background",
            "graphMode": "none",
            "justifyMode": "center",
            "textMode": "auto",
            "orientation": "auto",
            "wideLayout": true,
            "showPercentChange": false
        }
    })
}

fn grid(panel: &Value, key: &str) -> u64 {
    panel.pointer(&format!("/gridPos/{key}")).and_then(Value::as_u64).unwrap_or(0)
}

/// The dashboard with one tile per control (ids [`TILE_IDS`], in catalog order, 8 to a line under
/// the first row), the "controls failing" tile after them, and every panel below moved down or up
/// to make room. Keys in sorted order, so the file is the same whatever serde_json map it is built
/// with.
pub fn dashboard(current: &Value) -> Value {
    let mut dash = current.clone();
    let panels = dash.get("panels").and_then(Value::as_array).cloned().unwrap_or_default();
    let is_tile = |p: &Value| p.get("id").and_then(Value::as_u64).is_some_and(|id| TILE_IDS.contains(&id));
    let id_of = |p: &Value| p.get("id").and_then(Value::as_u64);
    let mut failing = panels.iter().find(|p| id_of(p) == Some(FAILING_TILE_ID)).cloned();
    let rest: Vec<Value> =
        panels.iter().filter(|p| !is_tile(p) && id_of(p) != Some(FAILING_TILE_ID)).cloned().collect();
    // The first row header stays on top; everything else starts below the tiles.
    let rest_top = rest.iter().filter(|p| grid(p, "y") > 0).map(|p| grid(p, "y")).min().unwrap_or(1);
    let mut tiles: Vec<Value> =
        ControlId::ALL.iter().enumerate().map(|(i, c)| tile(*c, u64::try_from(i).unwrap_or(99))).collect();
    if let Some(f) = failing.take() {
        tiles.push(f);
    }
    let per_line = GRID_W / TILE_W;
    for (i, t) in tiles.iter_mut().enumerate() {
        let i = u64::try_from(i).unwrap_or(0);
        t["gridPos"] =
            json!({"h": TILE_H, "w": TILE_W, "x": (i % per_line) * TILE_W, "y": 1 + (i / per_line) * TILE_H});
    }
    let lines = u64::try_from(tiles.len()).unwrap_or(0).div_ceil(per_line);
    let new_top = 1 + lines * TILE_H;
    let mut out: Vec<Value> = Vec::new();
    for mut p in rest {
        let y = grid(&p, "y");
        if y > 0 {
            p["gridPos"]["y"] = json!(y + new_top - rest_top);
        }
        let header = y == 0;
        out.push(p);
        if header {
            out.append(&mut tiles);
        }
    }
    out.append(&mut tiles);
    dash["panels"] = Value::Array(out);
    crate::messages::canonical(dash)
}

/// Break `text` into lines of at most `width` characters.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let line = lines.last_mut().expect("one line at least");
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(word.to_owned());
        } else {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::path::PathBuf;

    fn root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    fn bless() -> bool {
        std::env::var_os("PORTCULLIS_BLESS_CATALOG").is_some()
    }

    /// Compare `path` with `expected`; with `PORTCULLIS_BLESS_CATALOG` set, write it instead.
    fn check_file(path: &str, expected: &str) {
        let full = root().join(path);
        let current = std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{path}: {e}"));
        if current == expected {
            return;
        }
        if bless() {
            std::fs::write(&full, expected).unwrap_or_else(|e| panic!("{path}: {e}"));
            return;
        }
        let line = current.lines().zip(expected.lines()).position(|(a, b)| a != b).map(|i| i + 1);
        panic!(
            "{path} is not what the control catalog generates (first difference at line {line:?}): run `make catalog`"
        );
    }

    fn blocks(path: &str, blocks: &[(&str, String)]) {
        let mut text = std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        for (name, content) in blocks {
            text = replace_block(&text, name, content)
                .unwrap_or_else(|| panic!("{path} has no `BEGIN generated: {name}` / `END generated: {name}` markers"));
        }
        check_file(path, &text);
    }

    #[test]
    fn the_stack_has_the_catalogs_rules() {
        blocks(
            "infra/cloudformation/portcullis.yaml",
            &[
                ("posture-rules", cloudformation_rules()),
                ("posture-queue-sources", cloudformation_queue_policy_sources()),
            ],
        );
    }

    #[test]
    fn the_posture_docs_have_the_catalogs_tables() {
        blocks(
            "docs/posture.md",
            &[
                ("controls", docs_controls_table()),
                ("control-details", docs_control_sections()),
                ("change-events", docs_events_table()),
            ],
        );
    }

    #[test]
    fn the_dashboard_has_a_tile_per_control() {
        let path = "infra/grafana/dashboards/portcullis-posture.json";
        let current: Value = serde_json::from_str(&std::fs::read_to_string(root().join(path)).unwrap()).unwrap();
        let expected = dashboard(&current);
        let mut text = serde_json::to_string_pretty(&expected).unwrap();
        text.push('\n');
        check_file(path, &text);
        // And the tiles say what they should, whatever wrote them.
        let titles: BTreeSet<String> = expected["panels"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["id"].as_u64().is_some_and(|id| TILE_IDS.contains(&id)))
            .map(|p| p["title"].as_str().unwrap().to_owned())
            .collect();
        for c in ControlId::ALL {
            assert!(titles.contains(&format!("{c} · {}", c.spec().label)), "no tile for {c}");
        }
        assert_eq!(titles.len(), ControlId::ALL.len());
    }

    fn yaml(path: &str) -> yaml_rust2::Yaml {
        let text = std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        yaml_rust2::YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}")).remove(0)
    }

    fn strings(y: &yaml_rust2::Yaml) -> BTreeSet<String> {
        y.as_vec().map(|v| v.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect()).unwrap_or_default()
    }

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    /// Parsed back, every rule that feeds the posture queue is a catalog rule with the catalog's
    /// pattern, every catalog rule is there, and the queue policy admits exactly them.
    #[test]
    fn the_stacks_event_patterns_are_the_catalogs() {
        use crate::posture::catalog::api_events;
        use yaml_rust2::Yaml;
        let doc = yaml("infra/cloudformation/portcullis.yaml");
        let resources = doc["Resources"].as_hash().expect("Resources");
        let mut seen = BTreeSet::new();
        for (name, resource) in resources {
            let id = name.as_str().unwrap_or_default();
            if resource["Type"].as_str() != Some("AWS::Events::Rule") {
                continue;
            }
            let props = &resource["Properties"];
            let targets: Vec<&str> =
                props["Targets"].as_vec().into_iter().flatten().filter_map(|t| t["Arn"].as_str()).collect();
            if !targets.contains(&"PostureEventsQueue.Arn") {
                continue;
            }
            let rule = EVENT_RULES.iter().find(|r| r.logical_id == id);
            let rule = rule.unwrap_or_else(|| panic!("{id} feeds the posture queue but is not in the catalog"));
            assert_eq!(props["Name"].as_str(), Some(format!("${{Prefix}}-{}", rule.name).as_str()), "{id}");
            assert_eq!(props["State"].as_str(), Some("ENABLED"), "{id}");
            let pattern = &props["EventPattern"];
            assert_eq!(strings(&pattern["source"]), set(&[rule.source]), "{id}");
            match rule.kind {
                RuleKind::Api { event_source } => {
                    assert_eq!(strings(&pattern["detail-type"]), set(&["AWS API Call via CloudTrail"]), "{id}");
                    assert_eq!(strings(&pattern["detail"]["eventSource"]), set(&[event_source]), "{id}");
                    let expected: BTreeSet<String> =
                        api_events().filter(|(s, _)| *s == event_source).map(|(_, n)| n.to_owned()).collect();
                    assert_eq!(strings(&pattern["detail"]["eventName"]), expected, "{id}");
                }
                RuleKind::GuardDutyFindings => {
                    assert_eq!(strings(&pattern["detail-type"]), set(&["GuardDuty Finding"]), "{id}");
                    let numeric = &pattern["detail"]["severity"][0]["numeric"];
                    assert_eq!(numeric[0].as_str(), Some(">="), "{id}: a numeric match, never a list of severities");
                    assert_eq!(numeric[1], Yaml::Integer(7), "{id}");
                }
            }
            seen.insert(id.to_owned());
        }
        let catalog: BTreeSet<String> = EVENT_RULES.iter().map(|r| r.logical_id.to_owned()).collect();
        assert_eq!(seen, catalog, "the stack's posture rules");
        let policy = &doc["Resources"]["PostureEventsQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"][0];
        let allowed = strings(&policy["Condition"]["ArnEquals"]["aws:SourceArn"]);
        let expected: BTreeSet<String> = EVENT_RULES.iter().map(|r| format!("{}.Arn", r.logical_id)).collect();
        assert_eq!(allowed, expected, "the posture queue admits exactly the catalog's rules");
    }

    /// Alerts about one control link to its section of docs/posture.md; the per-control alerts
    /// link to the section of the control that fired; every section exists.
    #[test]
    fn alert_runbooks_point_at_the_catalog() {
        let rules = yaml("infra/prometheus/rules/portcullis.rules.yml");
        let docs = std::fs::read_to_string(root().join("docs/posture.md")).unwrap();
        let mut per_control = 0;
        for group in rules["groups"].as_vec().expect("groups") {
            for rule in group["rules"].as_vec().expect("rules") {
                let Some(alert) = rule["alert"].as_str() else { continue };
                let runbook = rule["annotations"]["runbook"].as_str().unwrap_or_default();
                let expr = rule["expr"].as_str().unwrap_or_default().trim();
                match rule["labels"]["control_id"].as_str() {
                    Some(id) => {
                        let c = ControlId::parse(id).unwrap_or_else(|| panic!("{alert}: `{id}` is not in the catalog"));
                        assert_eq!(runbook, c.runbook(), "{alert}");
                    }
                    None if expr.starts_with("portcullis_posture_control_status ") => {
                        assert_eq!(runbook, "docs/posture.md#{{ $labels.control_id }}", "{alert}");
                        per_control += 1;
                    }
                    None => assert_eq!(runbook, "README.md#alerts", "{alert}"),
                }
            }
        }
        assert!(per_control >= 2, "the failing and unknown alerts cover every control");
        for c in ControlId::ALL {
            assert!(docs.contains(&format!("<a id=\"{c}\"></a>")), "docs/posture.md has no section for {c}");
        }
    }

    #[test]
    fn generation_is_stable() {
        let dash = json!({"panels": [
            {"id": 1, "type": "row", "gridPos": {"h": 1, "w": 24, "x": 0, "y": 0}},
            {"id": 9, "type": "stat", "gridPos": {"h": 4, "w": 3, "x": 3, "y": 1}},
            {"id": 10, "type": "stat", "gridPos": {"h": 4, "w": 4, "x": 0, "y": 5}}
        ]});
        let once = dashboard(&dash);
        assert_eq!(dashboard(&once), once, "regenerating changes nothing");
        let panels = once["panels"].as_array().unwrap();
        let tiles = ControlId::ALL.len() as u64 + 1; // and the failing tile
        let below = 1 + tiles.div_ceil(GRID_W / TILE_W) * TILE_H;
        assert_eq!(panels.last().unwrap()["id"], 10);
        assert_eq!(panels.last().unwrap()["gridPos"]["y"], below);
        assert_eq!(panels[1]["id"], TILE_IDS.start, "tiles come right after the row header");
        let text = "a\n# BEGIN generated: x\nold\n# END generated: x\nb\n";
        assert_eq!(replace_block(text, "x", "new\n").unwrap(), "a\n# BEGIN generated: x\nnew\n# END generated: x\nb\n");
        assert_eq!(replace_block(text, "y", "new\n"), None);
    }
}
