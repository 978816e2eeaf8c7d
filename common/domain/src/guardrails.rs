//! Guardrails: what no template may ever allow, whatever its author wrote.
//!
//! - **Every action exists.** Each action of every statement must name an IAM action in the
//!   [`crate::iam_catalog`] (case-insensitively); a wildcard must match at least one
//!   (`action_unknown`, naming it). A misspelt Deny would deny nothing, so Deny statements are
//!   checked too.
//! - **Denied actions.** Each rule is either the bare `*` (refuses an Allow of the literal action `*`)
//!   or `service:glob`. An allowed action is refused when its spelling could match the rule (`iam:Pass*`
//!   is refused by `iam:*`, `iam:*Role` by `iam:PassRole`) *or* when any action the catalog expands it
//!   to matches the rule: meaning, not only spelling. Actions with a wildcard in the service prefix,
//!   and Allow statements using `NotAction` or `NotResource`, are always refused: they cannot be
//!   reasoned about.
//! - **Portcullis is never granted to itself.** An Allow whose resources could match one of the
//!   stack's own resources (its queues, table, bus, archive and rules, its roles, and any configured
//!   extra ARN) for an action of that resource's service is refused, naming the resource.
//!
//! Deny statements only narrow access and otherwise pass.

use serde_json::Value;

use crate::glob;
use crate::iam_catalog::catalog;

/// Longest IAM action accepted anywhere (`service:Action`); longer ones are refused before any
/// matching, which bounds the matcher's work.
pub const MAX_ACTION_CHARS: usize = 128;

/// What a guardrail refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// An allowed action a rule denies.
    Action,
    /// An action that names no IAM action.
    UnknownAction,
    /// A resource that is one of Portcullis's own.
    OwnResource,
}

/// A statement broke a guardrail.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", self.sentence())]
pub struct GuardrailViolation {
    /// The action or resource refused.
    pub action: String,
    /// The rule (or the reason) that refused it.
    pub rule: String,
    pub refused: Refused,
}

impl GuardrailViolation {
    fn action(action: &str, rule: impl Into<String>) -> Self {
        Self { action: action.to_owned(), rule: rule.into(), refused: Refused::Action }
    }

    fn sentence(&self) -> String {
        match self.refused {
            Refused::Action => format!("action `{}` is denied by guardrail `{}`", self.action, self.rule),
            Refused::UnknownAction => format!("action `{}` {}", self.action, self.rule),
            Refused::OwnResource => format!(
                "resource `{}` may be one of Portcullis's own (`{}`): Portcullis can never be granted to itself",
                self.action, self.rule
            ),
        }
    }
}

/// One of the stack's own resources, as an ARN glob, with the service whose actions reach it.
#[derive(Debug, Clone)]
struct OwnResource {
    raw: String,
    service: String,
    pattern: String,
}

/// The configured guardrails.
#[derive(Debug, Clone)]
pub struct Guardrails {
    rules: Vec<(String, GuardrailRule)>,
    own: Vec<OwnResource>,
}

#[derive(Debug, Clone)]
enum GuardrailRule {
    Bare,
    Service { service: String, name: String },
}

/// A guardrail that is not `*` or `service:Action*`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidGuardrail(pub String);

impl Guardrails {
    /// Default denied actions.
    pub const DEFAULT_DENIED: [&'static str; 5] = ["*", "iam:*", "sts:*", "organizations:*", "account:*"];

    /// Guardrails denying `denied_actions` and protecting `own_resources` (ARN globs; see
    /// [`crate::naming::StackNames::own_resources`]).
    pub fn new<S: AsRef<str>, R: AsRef<str>>(
        denied_actions: &[S],
        own_resources: &[R],
    ) -> Result<Self, InvalidGuardrail> {
        let mut rules = Vec::new();
        for raw in denied_actions {
            let raw = raw.as_ref();
            let rule = if raw == "*" {
                GuardrailRule::Bare
            } else if let Some((service, name)) = raw.split_once(':') {
                if service.is_empty() || name.is_empty() || service.contains(['*', '?']) || raw.len() > MAX_ACTION_CHARS
                {
                    return Err(InvalidGuardrail(format!("guardrail `{raw}` must look like `service:Action*`")));
                }
                GuardrailRule::Service { service: service.to_ascii_lowercase(), name: name.to_ascii_lowercase() }
            } else {
                return Err(InvalidGuardrail(format!("guardrail `{raw}` must be `*` or `service:Action*`")));
            };
            rules.push((raw.to_owned(), rule));
        }
        let mut own = Vec::new();
        for raw in own_resources {
            let raw = raw.as_ref();
            let service = raw.split(':').nth(2).filter(|s| !s.is_empty() && !s.contains(['*', '?']));
            match service {
                Some(service) if raw.starts_with("arn:") && raw.len() <= MAX_RESOURCE_PATTERN_CHARS => {
                    own.push(OwnResource {
                        raw: raw.to_owned(),
                        service: service.to_ascii_lowercase(),
                        pattern: raw.to_ascii_lowercase(),
                    });
                }
                _ => {
                    return Err(InvalidGuardrail(format!(
                        "protected resource `{raw}` must be an ARN (glob) naming its service, like `arn:aws:sqs:*:*:name-*`"
                    )));
                }
            }
        }
        Ok(Self { rules, own })
    }

    /// Check one rendered statement.
    pub fn check(&self, statement: &Value) -> Result<(), GuardrailViolation> {
        self.check_statement(statement, |_| true)
    }

    /// Check a statement as written in a template, before rendering: literal actions and resources
    /// must already pass (templated ones are checked at render time), and a templated `Effect` counts
    /// as Allow. Lets `template.put` refuse a template that could never be granted.
    pub fn check_literals(&self, statement: &Value) -> Result<(), GuardrailViolation> {
        self.check_statement(statement, |value| !(value.contains("{{") || value.contains("{%")))
    }

    fn check_statement(&self, statement: &Value, checkable: impl Fn(&str) -> bool) -> Result<(), GuardrailViolation> {
        let actions: Vec<&str> = string_or_list(statement.get("Action")).into_iter().filter(|a| checkable(a)).collect();
        for action in &actions {
            check_exists(action)?;
        }
        if statement.get("Effect").and_then(Value::as_str) == Some("Deny") {
            return Ok(());
        }
        if statement.get("NotAction").is_some() {
            return Err(GuardrailViolation::action("NotAction", "Allow with NotAction grants every other action"));
        }
        if statement.get("NotResource").is_some() {
            return Err(GuardrailViolation::action(
                "NotResource",
                "Allow with NotResource grants every other resource",
            ));
        }
        for action in &actions {
            self.check_action(action)?;
        }
        // Own resources: only once every action is known (before rendering, a templated action may
        // be anything; the rendered statement is checked again).
        let all_actions = string_or_list(statement.get("Action"));
        if all_actions.iter().all(|a| checkable(a)) {
            let services: Vec<String> =
                all_actions.iter().map(|a| a.split_once(':').map_or("*", |(s, _)| s).to_ascii_lowercase()).collect();
            for resource in string_or_list(statement.get("Resource")).into_iter().filter(|r| checkable(r)) {
                self.check_resource(resource, &services)?;
            }
        }
        Ok(())
    }

    /// Refuse `resource` when it could be one of the stack's own and some action (of `services`) is
    /// of that resource's service.
    fn check_resource(&self, resource: &str, services: &[String]) -> Result<(), GuardrailViolation> {
        if resource.len() > MAX_RESOURCE_PATTERN_CHARS {
            return Err(GuardrailViolation {
                action: resource.chars().take(64).collect::<String>() + "…",
                rule: format!("a resource is at most {MAX_RESOURCE_PATTERN_CHARS} characters"),
                refused: Refused::OwnResource,
            });
        }
        let glob_form = policy_variables_as_wildcards(&resource.to_ascii_lowercase());
        for own in &self.own {
            let reaches = services.iter().any(|svc| svc == "*" || *svc == own.service);
            if reaches && arns_intersect(&glob_form, &own.pattern) {
                return Err(GuardrailViolation {
                    action: resource.to_owned(),
                    rule: own.raw.clone(),
                    refused: Refused::OwnResource,
                });
            }
        }
        Ok(())
    }

    fn check_action(&self, action: &str) -> Result<(), GuardrailViolation> {
        let lower = action.to_ascii_lowercase();
        let (service, name) = lower.split_once(':').unwrap_or(("*", "*"));
        if lower != "*" && service.contains(['*', '?']) {
            return Err(GuardrailViolation::action(action, "no wildcard in the service prefix"));
        }
        // What the action means: every catalogued action it matches (itself, when it has no wildcard).
        let expanded: Vec<String> = match catalog().expand(action) {
            Some(all) => all.into_iter().map(str::to_ascii_lowercase).collect(),
            None => vec![lower.clone()],
        };
        for (raw, rule) in &self.rules {
            let hit = match rule {
                GuardrailRule::Bare => lower == "*",
                GuardrailRule::Service { service: s, name: n } => {
                    lower == "*"
                        || (s == service && glob::intersect(n.as_bytes(), name.as_bytes()))
                        || expanded.iter().any(|a| {
                            a.split_once(':')
                                .is_some_and(|(es, en)| es == s && glob::matches(n.as_bytes(), en.as_bytes()))
                        })
                }
            };
            if hit {
                return Err(GuardrailViolation::action(action, raw.clone()));
            }
        }
        Ok(())
    }
}

impl Default for Guardrails {
    /// The default denied actions, protecting nothing of a stack.
    fn default() -> Self {
        Self::new::<&str, &str>(&Self::DEFAULT_DENIED, &[]).expect("default guardrails are valid")
    }
}

/// Longest protected-resource pattern and longest resource checked against them.
const MAX_RESOURCE_PATTERN_CHARS: usize = 2048;

/// Refuse an action that is too long, or names (or, as a wildcard, matches) no IAM action.
fn check_exists(action: &str) -> Result<(), GuardrailViolation> {
    let unknown =
        |why: String| GuardrailViolation { action: action.to_owned(), rule: why, refused: Refused::UnknownAction };
    if action.len() > MAX_ACTION_CHARS {
        return Err(GuardrailViolation {
            action: action.chars().take(64).collect::<String>() + "…",
            rule: format!("is longer than {MAX_ACTION_CHARS} characters; an action is at most that"),
            refused: Refused::UnknownAction,
        });
    }
    if action == "*" {
        return Ok(());
    }
    if action.split_once(':').is_some_and(|(service, _)| service.contains(['*', '?'])) {
        return Err(GuardrailViolation::action(action, "no wildcard in the service prefix"));
    }
    let version = catalog().version();
    if action.contains(['*', '?']) {
        return match catalog().expand(action) {
            Some(matched) if !matched.is_empty() => Ok(()),
            Some(_) => Err(unknown(format!("matches no IAM action (catalog {version})"))),
            None => Err(unknown(format!("names no IAM service (catalog {version})"))),
        };
    }
    if catalog().contains(action) {
        Ok(())
    } else {
        Err(unknown(format!("is not an IAM action (catalog {version}); check its spelling")))
    }
}

/// Whether two ARN globs can name a common resource. IAM wildcards do not span ARN segments
/// (partition, service, region, account), so those are compared segment by segment; the resource
/// part, and anything that is not an ARN (`*`), as a whole.
fn arns_intersect(a: &str, b: &str) -> bool {
    let split = |s: &str| -> Option<Vec<String>> {
        let parts: Vec<&str> = s.splitn(6, ':').collect();
        (parts.len() == 6 && parts[0] == "arn").then(|| parts.into_iter().map(str::to_owned).collect())
    };
    match (split(a), split(b)) {
        (Some(x), Some(y)) => x.iter().zip(&y).all(|(p, q)| glob::intersect(p.as_bytes(), q.as_bytes())),
        _ => glob::intersect(a.as_bytes(), b.as_bytes()),
    }
}

/// `${aws:username}` and other policy variables could become anything: treat them as `*`.
fn policy_variables_as_wildcards(resource: &str) -> String {
    let mut out = String::with_capacity(resource.len());
    let mut rest = resource;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        out.push('*');
        rest = match rest[start..].find('}') {
            Some(end) => &rest[start + end + 1..],
            None => "",
        };
    }
    out.push_str(rest);
    out
}

/// A statement field that is a string or a list of strings, as a list.
pub(crate) fn string_or_list(v: Option<&Value>) -> Vec<&str> {
    match v {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn guardrails_refuse_dangerous_actions() {
        let g = Guardrails::default();
        let stmt = |action: Value| json!({"Effect": "Allow", "Action": action, "Resource": "*"});
        for (action, rule) in [
            (json!("iam:PassRole"), "iam:*"),
            (json!(["s3:GetObject", "IAM:CreateUser"]), "iam:*"),
            (json!("sts:AssumeRole"), "sts:*"),
            (json!("*"), "*"),
            (json!("organizations:Leave*"), "organizations:*"),
        ] {
            let err = g.check(&stmt(action.clone())).unwrap_err();
            assert_eq!(err.rule, rule, "{action}");
        }
        let wildcard_service = g.check(&stmt(json!("i*:List*"))).unwrap_err();
        assert_eq!(wildcard_service.rule, "no wildcard in the service prefix");
        assert!(g.check(&json!({"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"})).is_err());
        let not_resource =
            g.check(&json!({"Effect": "Allow", "Action": "s3:GetObject", "NotResource": "arn:aws:s3:::x/*"}));
        assert_eq!(not_resource.unwrap_err().action, "NotResource");
        assert!(g.check(&json!({"Effect": "Deny", "Action": "s3:*", "NotResource": "arn:aws:s3:::x/*"})).is_ok());
        assert!(g.check(&stmt(json!("s3:*"))).is_ok());
        assert!(g.check(&json!({"Effect": "Deny", "Action": "iam:*", "Resource": "*"})).is_ok());

        let narrow = Guardrails::new::<_, &str>(&["iam:PassRole"], &[]).unwrap();
        assert!(narrow.check(&stmt(json!("iam:Pass*"))).is_err());
        assert!(narrow.check(&stmt(json!("iam:*Role"))).is_err());
        assert!(narrow.check(&stmt(json!("iam:GetRole"))).is_ok());
    }

    #[test]
    fn an_overlong_action_is_refused_before_matching() {
        std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(|| {
                let g = Guardrails::default();
                let huge = format!("s3:{}", "Get*".repeat(75_000));
                let err = g.check(&json!({"Effect": "Allow", "Action": huge, "Resource": "*"})).unwrap_err();
                assert!(err.rule.contains("128"), "{err}");
                assert!(err.action.chars().count() <= 65);
                let resource = format!("arn:aws:sqs:*:*:{}", "a*".repeat(150_000));
                let own = ["arn:aws:sqs:*:*:p-*"];
                let g = Guardrails::new(&Guardrails::DEFAULT_DENIED, &own).unwrap();
                let err = g
                    .check(&json!({"Effect": "Allow", "Action": "sqs:ReceiveMessage", "Resource": resource}))
                    .unwrap_err();
                assert!(err.rule.contains("2048"), "{err}");
            })
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn every_action_must_exist_and_wildcards_are_judged_by_what_they_match() {
        let g = Guardrails::default();
        let stmt = |effect: &str, action: &str| json!({"Effect": effect, "Action": action, "Resource": "*"});
        for unknown in ["s3:GetObjectt", "foo:Bar", "s3:Nothing*", "nosuch:*"] {
            let err = g.check(&stmt("Allow", unknown)).unwrap_err();
            assert_eq!((err.refused, err.action.as_str()), (Refused::UnknownAction, unknown), "{err}");
            // A misspelt Deny denies nothing: refused too.
            assert_eq!(g.check(&stmt("Deny", unknown)).unwrap_err().refused, Refused::UnknownAction);
        }
        assert!(g.check(&stmt("Allow", "S3:getobject")).is_ok(), "case does not matter");
        assert!(g.check(&stmt("Allow", "s3:Get*")).is_ok());
        // A wildcard whose spelling avoids a rule but whose meaning does not.
        let narrow = Guardrails::new::<_, &str>(&["kms:Decrypt"], &[]).unwrap();
        let err = narrow.check(&stmt("Allow", "kms:D?crypt")).unwrap_err();
        assert_eq!(err.rule, "kms:Decrypt");
        let err = narrow.check(&stmt("Allow", "kms:*crypt")).unwrap_err();
        assert_eq!(err.rule, "kms:Decrypt");
        assert!(narrow.check(&stmt("Allow", "kms:Encrypt")).is_ok());
        // Literal checks skip templated actions (checked after rendering).
        assert!(g.check_literals(&stmt("Allow", "{{ action }}")).is_ok());
    }

    #[test]
    fn portcullis_can_never_be_granted_to_itself() {
        let own = ["arn:aws:sqs:*:*:p-*", "arn:aws:dynamodb:*:*:table/p-*", "arn:aws:iam::*:role/p-*"];
        let g = Guardrails::new(&Guardrails::DEFAULT_DENIED, &own).unwrap();
        let stmt = |action: Value, resource: &str| json!({"Effect": "Allow", "Action": action, "Resource": resource});
        for (action, resource) in [
            (json!("sqs:ReceiveMessage"), "arn:aws:sqs:us-east-1:123456789012:p-access-requests"),
            (json!(["s3:GetObject", "sqs:ReceiveMessage"]), "*"),
            (json!("sqs:ReceiveMessage"), "arn:aws:sqs:us-east-1:123456789012:p-*"),
            (json!("sqs:ReceiveMessage"), "arn:aws:sqs:us-east-1:123456789012:${aws:username}"),
            (json!("dynamodb:Query"), "arn:aws:dynamodb:us-east-1:123456789012:table/p-state"),
            (json!("dynamodb:Query"), "arn:aws:dynamodb:us-east-1:123456789012:table/P-STATE/index/x"),
            (json!("dynamodb:*"), "arn:aws:dynamodb:*:*:table/*"),
        ] {
            let err = g.check(&stmt(action.clone(), resource)).unwrap_err();
            assert_eq!(err.refused, Refused::OwnResource, "{action} {resource}: {err}");
            assert!(err.to_string().contains("never be granted to itself"), "{err}");
        }
        // Other queues and tables, other services on "*", and Deny statements are fine.
        assert!(g.check(&stmt(json!("sqs:ReceiveMessage"), "arn:aws:sqs:us-east-1:123456789012:orders")).is_ok());
        assert!(g.check(&stmt(json!("s3:GetObject"), "*")).is_ok());
        assert!(g.check(&stmt(json!("dynamodb:Query"), "arn:aws:dynamodb:us-east-1:1:table/other")).is_ok());
        assert!(g.check(&json!({"Effect": "Deny", "Action": "sqs:*", "Resource": "*"})).is_ok());
        assert!(Guardrails::new(&Guardrails::DEFAULT_DENIED, &["not-an-arn"]).is_err());
    }
}
