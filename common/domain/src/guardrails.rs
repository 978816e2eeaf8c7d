//! Guardrails: actions no template may ever allow, whatever its author wrote.
//!
//! Each rule is either the bare `*` (refuses an Allow of the literal action `*`) or `service:glob`
//! (refuses any allowed action of that service whose name pattern could match the glob, so `iam:Pass*`
//! is refused by `iam:*` and `iam:*Role` by `iam:PassRole`). Actions with a wildcard in the service
//! prefix, and Allow statements using `NotAction` or `NotResource`, are always refused: they cannot be
//! reasoned about. Deny statements only narrow access and always pass.

use serde_json::Value;

use crate::glob;

/// Longest IAM action accepted anywhere (`service:Action`); longer ones are refused before any
/// matching, which bounds the matcher's work.
pub const MAX_ACTION_CHARS: usize = 128;

/// A statement broke a guardrail.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("action `{action}` is denied by guardrail `{rule}`")]
pub struct GuardrailViolation {
    pub action: String,
    pub rule: String,
}

/// The configured guardrails.
#[derive(Debug, Clone)]
pub struct Guardrails {
    rules: Vec<(String, GuardrailRule)>,
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

    pub fn new<S: AsRef<str>>(denied_actions: &[S]) -> Result<Self, InvalidGuardrail> {
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
        Ok(Self { rules })
    }

    /// Check one rendered statement.
    pub fn check(&self, statement: &Value) -> Result<(), GuardrailViolation> {
        self.check_actions(statement, |_| true)
    }

    /// Check a statement as written in a template, before rendering: literal actions must already
    /// pass (templated ones are checked at render time), and a templated `Effect` counts as Allow.
    /// Lets `template.put` refuse a template that could never be granted.
    pub fn check_literals(&self, statement: &Value) -> Result<(), GuardrailViolation> {
        self.check_actions(statement, |action| !(action.contains("{{") || action.contains("{%")))
    }

    fn check_actions(&self, statement: &Value, checkable: impl Fn(&str) -> bool) -> Result<(), GuardrailViolation> {
        if statement.get("Effect").and_then(Value::as_str) == Some("Deny") {
            return Ok(());
        }
        if statement.get("NotAction").is_some() {
            return Err(GuardrailViolation {
                action: "NotAction".into(),
                rule: "Allow with NotAction grants every other action".into(),
            });
        }
        if statement.get("NotResource").is_some() {
            return Err(GuardrailViolation {
                action: "NotResource".into(),
                rule: "Allow with NotResource grants every other resource".into(),
            });
        }
        for action in string_or_list(statement.get("Action")).into_iter().filter(|a| checkable(a)) {
            self.check_action(action)?;
        }
        Ok(())
    }

    fn check_action(&self, action: &str) -> Result<(), GuardrailViolation> {
        if action.len() > MAX_ACTION_CHARS {
            let shown: String = action.chars().take(64).collect();
            return Err(GuardrailViolation {
                action: format!("{shown}…"),
                rule: format!("an action is at most {MAX_ACTION_CHARS} characters"),
            });
        }
        let lower = action.to_ascii_lowercase();
        let (service, name) = lower.split_once(':').unwrap_or(("*", "*"));
        if lower != "*" && service.contains(['*', '?']) {
            return Err(GuardrailViolation {
                action: action.to_owned(),
                rule: "no wildcard in the service prefix".into(),
            });
        }
        for (raw, rule) in &self.rules {
            let hit = match rule {
                GuardrailRule::Bare => lower == "*",
                GuardrailRule::Service { service: s, name: n } => {
                    lower == "*" || (s == service && glob::intersect(n.as_bytes(), name.as_bytes()))
                }
            };
            if hit {
                return Err(GuardrailViolation { action: action.to_owned(), rule: raw.clone() });
            }
        }
        Ok(())
    }
}

impl Default for Guardrails {
    fn default() -> Self {
        Self::new(&Self::DEFAULT_DENIED).expect("default guardrails are valid")
    }
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

        let narrow = Guardrails::new(&["iam:PassRole"]).unwrap();
        assert!(narrow.check(&stmt(json!("iam:Pass*"))).is_err());
        assert!(narrow.check(&stmt(json!("iam:*Role"))).is_err());
        assert!(narrow.check(&stmt(json!("iam:GetRole"))).is_ok());
    }

    #[test]
    fn an_overlong_action_is_refused_before_matching() {
        let g = Guardrails::default();
        let huge = format!("s3:{}", "Get*".repeat(75_000));
        let err = g.check(&json!({"Effect": "Allow", "Action": huge, "Resource": "*"})).unwrap_err();
        assert!(err.rule.contains("at most 128"), "{err}");
        assert!(err.action.chars().count() <= 65);
    }
}
