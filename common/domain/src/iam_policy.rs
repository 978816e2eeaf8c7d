//! The IAM policy grammar, as far as judging *which actions* a policy allows: `Effect` Allow/Deny,
//! `Action`/`NotAction` with IAM's wildcards (`*`, `?`) matched case-insensitively, and the explicit
//! deny that wins over any allow.
//!
//! Why: the workers' permissions are checked against the AWS operations their code calls (the
//! least-privilege test in `tests/tests/least_privilege.rs`). The emulator evaluates no IAM, so this
//! module is where a missing or superfluous permission becomes visible. Resources and conditions are
//! not evaluated: a statement limited to some resources, or under a condition, still allows its actions
//! (on those resources), which is the question asked here; a `Deny` only counts as denying an action
//! everywhere when it has `Resource: "*"` and no condition.
//!
//! Pure: it reads a policy as JSON (`serde_json::Value`) and answers from the embedded action
//! catalog ([`crate::iam_catalog`]).

use std::collections::BTreeSet;

use serde_json::Value;

use crate::glob;
use crate::iam_catalog::{IamCatalog, MAX_PATTERN_LEN};

/// Why a policy document could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("the policy has no Statement")]
    NoStatement,
    #[error("statement {index}: {reason}")]
    Statement { index: usize, reason: String },
}

/// `Allow` or `Deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// What a policy says about one action (on some resource).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// An `Allow` statement matches and no unconditional `Deny` on every resource does.
    Allow,
    /// A `Deny` statement on every resource matches: nothing can allow it.
    ExplicitDeny,
    /// No statement allows it.
    ImplicitDeny,
}

/// Which actions a statement is about.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Actions {
    /// `Action`: the listed patterns.
    Only(Vec<String>),
    /// `NotAction`: every action but the listed patterns.
    AllBut(Vec<String>),
}

/// One statement, reduced to what decides actions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    sid: Option<String>,
    effect: Effect,
    actions: Actions,
    /// `Resource: "*"` (or a list holding `*`) with no `NotResource` and no `Condition`.
    everywhere: bool,
}

impl Statement {
    /// The statement's `Sid`, when it has one.
    pub fn sid(&self) -> Option<&str> {
        self.sid.as_deref()
    }

    /// Whether the statement's `Action`/`NotAction` covers `action` (`service:Name`).
    pub fn matches_action(&self, action: &str) -> bool {
        match &self.actions {
            Actions::Only(patterns) => patterns.iter().any(|p| action_matches(p, action)),
            Actions::AllBut(patterns) => !patterns.iter().any(|p| action_matches(p, action)),
        }
    }
}

/// Whether the IAM action pattern `pattern` (`*`, `service:Glob*`) matches `action`, ignoring ASCII
/// case as IAM does. Inputs longer than any real action never match.
pub fn action_matches(pattern: &str, action: &str) -> bool {
    if pattern.len() > MAX_PATTERN_LEN || action.len() > MAX_PATTERN_LEN {
        return false;
    }
    glob::matches(pattern.to_ascii_lowercase().as_bytes(), action.to_ascii_lowercase().as_bytes())
}

/// An identity policy (or the permissions part of any policy), parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDocument {
    statements: Vec<Statement>,
}

impl PolicyDocument {
    /// Read a policy document: `{"Statement": [...]}` (or a single statement object).
    pub fn parse(document: &Value) -> Result<Self, PolicyError> {
        let statements = match document.get("Statement") {
            Some(Value::Array(list)) => list.iter().collect::<Vec<_>>(),
            Some(one @ Value::Object(_)) => vec![one],
            _ => return Err(PolicyError::NoStatement),
        };
        let statements =
            statements.into_iter().enumerate().map(|(i, s)| parse_statement(i, s)).collect::<Result<Vec<_>, _>>()?;
        Ok(Self { statements })
    }

    /// Several documents (a role's policies) as one: IAM unions them.
    pub fn union(documents: impl IntoIterator<Item = PolicyDocument>) -> Self {
        Self { statements: documents.into_iter().flat_map(|d| d.statements).collect() }
    }

    /// The statements, in order.
    pub fn statements(&self) -> &[Statement] {
        &self.statements
    }

    /// What the policy says about `action` on some resource.
    pub fn decide(&self, action: &str) -> Decision {
        let denied =
            self.statements.iter().any(|s| s.effect == Effect::Deny && s.everywhere && s.matches_action(action));
        if denied {
            return Decision::ExplicitDeny;
        }
        if self.statements.iter().any(|s| s.effect == Effect::Allow && s.matches_action(action)) {
            Decision::Allow
        } else {
            Decision::ImplicitDeny
        }
    }

    /// Whether `action` is allowed on some resource.
    pub fn allows(&self, action: &str) -> bool {
        self.decide(action) == Decision::Allow
    }

    /// The `Sid`s (or `#<index>` for statements without one) of the `Allow` statements that match
    /// `action`: where to remove a permission that should not be there.
    pub fn allowing_statements(&self, action: &str) -> Vec<String> {
        self.statements
            .iter()
            .enumerate()
            .filter(|(_, s)| s.effect == Effect::Allow && s.matches_action(action))
            .map(|(i, s)| s.sid.clone().unwrap_or_else(|| format!("#{i}")))
            .collect()
    }

    /// Every published action (canonical spelling) the policy allows: wildcards and `NotAction`
    /// expanded against `catalog`. Patterns naming actions the catalog does not know are returned
    /// by [`Self::unknown_actions`].
    pub fn allowed_actions<'c>(&self, catalog: &'c IamCatalog) -> BTreeSet<&'c str> {
        let mut candidates = BTreeSet::new();
        for s in self.statements.iter().filter(|s| s.effect == Effect::Allow) {
            match &s.actions {
                Actions::Only(patterns) => {
                    for p in patterns {
                        candidates.extend(expand(catalog, p));
                    }
                }
                Actions::AllBut(_) => candidates.extend(expand(catalog, "*")),
            }
        }
        candidates.into_iter().filter(|a| self.allows(a)).collect()
    }

    /// The literal `Action` entries of `Allow` statements that name no published action (a typo
    /// IAM would accept silently).
    pub fn unknown_actions(&self, catalog: &IamCatalog) -> Vec<String> {
        let mut unknown = Vec::new();
        for s in self.statements.iter().filter(|s| s.effect == Effect::Allow) {
            if let Actions::Only(patterns) = &s.actions {
                unknown.extend(patterns.iter().filter(|p| expand(catalog, p).is_empty()).cloned());
            }
        }
        unknown
    }
}

/// Expand one pattern; a wildcard in the service part is matched against every action.
fn expand<'c>(catalog: &'c IamCatalog, pattern: &str) -> Vec<&'c str> {
    match catalog.expand(pattern) {
        Some(actions) => actions,
        None => match catalog.expand("*") {
            Some(all) if pattern.split_once(':').is_some_and(|(s, _)| s.contains(['*', '?'])) => {
                all.into_iter().filter(|a| action_matches(pattern, a)).collect()
            }
            _ => Vec::new(),
        },
    }
}

fn parse_statement(index: usize, s: &Value) -> Result<Statement, PolicyError> {
    let bad = |reason: &str| PolicyError::Statement { index, reason: reason.to_owned() };
    let effect = match s.get("Effect").and_then(Value::as_str) {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        _ => return Err(bad("Effect must be \"Allow\" or \"Deny\"")),
    };
    let actions = match (s.get("Action"), s.get("NotAction")) {
        (Some(a), None) => Actions::Only(strings(a).ok_or_else(|| bad("Action must be a string or strings"))?),
        (None, Some(a)) => Actions::AllBut(strings(a).ok_or_else(|| bad("NotAction must be a string or strings"))?),
        (Some(_), Some(_)) => return Err(bad("a statement has Action or NotAction, not both")),
        (None, None) => return Err(bad("a statement needs Action or NotAction")),
    };
    let every_resource = match s.get("Resource") {
        Some(r) => strings(r).is_some_and(|r| r.iter().any(|r| r == "*")),
        None => false,
    };
    let everywhere = every_resource && s.get("NotResource").is_none() && s.get("Condition").is_none();
    let sid = s.get("Sid").and_then(Value::as_str).map(str::to_owned);
    Ok(Statement { sid, effect, actions, everywhere })
}

/// A string or a list of strings.
fn strings(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(items) => items.iter().map(|i| i.as_str().map(str::to_owned)).collect(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::iam_catalog::catalog;

    fn policy(statements: Value) -> PolicyDocument {
        PolicyDocument::parse(&json!({ "Version": "2012-10-17", "Statement": statements })).expect("parses")
    }

    #[test]
    fn actions_match_case_insensitively_with_wildcards() {
        assert!(action_matches("s3:GetObject", "S3:getobject"));
        assert!(action_matches("iam:Get*", "iam:GetRolePolicy"));
        assert!(action_matches("sqs:?eceiveMessage", "sqs:ReceiveMessage"));
        assert!(action_matches("*", "kms:ListKeys"));
        assert!(!action_matches("iam:Get*", "iam:PutRolePolicy"));
        assert!(!action_matches("s3:GetObject", "s3:GetObjectVersion"));
        assert!(!action_matches(&"a".repeat(300), &"a".repeat(300)));
    }

    #[test]
    fn an_explicit_deny_on_every_resource_wins() {
        let p = policy(json!([
            { "Effect": "Allow", "Action": "iam:*", "Resource": "*" },
            { "Sid": "NoWrites", "Effect": "Deny", "Action": ["iam:Put*", "iam:Delete*"], "Resource": "*" },
        ]));
        assert_eq!(p.decide("iam:GetUser"), Decision::Allow);
        assert_eq!(p.decide("IAM:putrolepolicy"), Decision::ExplicitDeny);
        assert_eq!(p.decide("kms:ListKeys"), Decision::ImplicitDeny);
    }

    #[test]
    fn a_deny_limited_to_some_resources_or_a_condition_does_not_deny_the_action_everywhere() {
        let p = policy(json!([
            { "Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*" },
            { "Effect": "Deny", "Action": "*", "Resource": "arn:aws:sqs:*:*:own-*" },
            { "Effect": "Deny", "Action": "*", "Resource": "*", "Condition": { "Bool": { "aws:SecureTransport": "false" } } },
        ]));
        assert!(p.allows("sqs:SendMessage"));
    }

    #[test]
    fn not_action_allows_everything_else() {
        let p = policy(json!({ "Effect": "Allow", "NotAction": ["iam:*", "sts:*"], "Resource": "*" }));
        assert!(p.allows("s3:GetObject"));
        assert!(!p.allows("iam:GetUser"));
        let allowed = p.allowed_actions(catalog());
        assert!(allowed.contains("kms:ListKeys"));
        assert!(!allowed.iter().any(|a| a.starts_with("iam:") || a.starts_with("sts:")));
    }

    #[test]
    fn allowed_actions_expand_wildcards_and_leave_out_denied_ones() {
        let p = policy(json!([
            { "Sid": "Read", "Effect": "Allow", "Action": ["kms:List*", "kms:DescribeKey"], "Resource": "*" },
            { "Effect": "Deny", "Action": "kms:ListGrants", "Resource": "*" },
        ]));
        let allowed = p.allowed_actions(catalog());
        assert!(allowed.contains("kms:ListKeys"));
        assert!(allowed.contains("kms:DescribeKey"));
        assert!(!allowed.contains("kms:ListGrants"));
        assert!(!allowed.contains("kms:Decrypt"));
        assert_eq!(p.allowing_statements("kms:listkeys"), vec!["Read".to_owned()]);
    }

    #[test]
    fn unknown_actions_are_reported() {
        let p = policy(json!({ "Effect": "Allow", "Action": ["s3:GetObjectt", "s3:GetObject"], "Resource": "*" }));
        assert_eq!(p.unknown_actions(catalog()), vec!["s3:GetObjectt".to_owned()]);
    }

    #[test]
    fn malformed_statements_are_refused_with_their_index() {
        let err = |v: Value| PolicyDocument::parse(&json!({ "Statement": v })).expect_err("refused");
        assert!(matches!(err(json!([{ "Effect": "allow", "Action": "*" }])), PolicyError::Statement { index: 0, .. }));
        assert!(matches!(
            err(json!([{ "Effect": "Allow", "Action": "*" }, { "Effect": "Deny" }])),
            PolicyError::Statement { index: 1, .. }
        ));
        assert!(matches!(
            err(json!([{ "Effect": "Allow", "Action": "*", "NotAction": "s3:*" }])),
            PolicyError::Statement { .. }
        ));
        assert!(matches!(err(json!([{ "Effect": "Allow", "Action": 3 }])), PolicyError::Statement { .. }));
        assert_eq!(PolicyDocument::parse(&json!({})), Err(PolicyError::NoStatement));
    }

    #[test]
    fn policies_union() {
        let a = policy(json!({ "Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*" }));
        let b = policy(json!({ "Effect": "Deny", "Action": "sqs:*", "Resource": "*" }));
        let both = PolicyDocument::union([a.clone(), b]);
        assert!(a.allows("sqs:SendMessage"));
        assert!(!both.allows("sqs:SendMessage"));
        assert_eq!(both.statements().len(), 2);
    }
}
