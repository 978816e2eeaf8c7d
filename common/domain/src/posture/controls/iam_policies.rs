//! IAM policies and who holds them (IAM.2, IAM.18, IAM.27, CIS 1.16): every user, group and role
//! with its attached managed policies and inline policies, and every customer managed policy with
//! its default version's document, as one `GetAccountAuthorizationDetails` sweep returns them.
//!
//! Policy documents arrive URL-encoded (RFC 3986) from IAM; [`parse_policy_document`] decodes and
//! parses them once, here, so that "grants `*:*`" is decided on the JSON, never on a substring.

use serde_json::Value;

use super::{ControlId, ControlResult, Unreadable};
use crate::error::ErrorCode;

/// What kind of IAM principal holds a policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PrincipalKind {
    User,
    Group,
    Role,
}

impl PrincipalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::User => "user",
            PrincipalKind::Group => "group",
            PrincipalKind::Role => "role",
        }
    }
}

/// One user, group or role and the policies it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalPolicies {
    pub kind: PrincipalKind,
    pub name: String,
    pub arn: String,
    /// ARNs of the managed policies attached to it.
    pub attached: Vec<String>,
    /// Names of its inline policies.
    pub inline: Vec<String>,
}

/// One customer managed policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedPolicyFacts {
    pub arn: String,
    pub name: String,
    /// `AttachmentCount`: users, groups and roles it is attached to.
    pub attachment_count: i64,
    /// Its default version's document as IAM returns it (URL-encoded JSON); `None` when the
    /// listing carried no default version.
    pub document: Option<String>,
}

/// Every principal and customer managed policy of the account.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthorizationFacts {
    pub principals: Vec<PrincipalPolicies>,
    pub policies: Vec<ManagedPolicyFacts>,
}

/// The AWS managed policy a support role holds (IAM.18).
pub const SUPPORT_POLICY: &str = "AWSSupportAccess";
/// The AWS managed policy nobody should hold (IAM.27).
pub const CLOUDSHELL_POLICY: &str = "AWSCloudShellFullAccess";

/// Whether `arn` is the AWS managed policy `name`, in any partition (`arn:aws:iam::aws:policy/...`,
/// `arn:aws-us-gov:iam::aws:policy/...`). A customer policy of the same name is not it.
pub fn is_aws_managed(arn: &str, name: &str) -> bool {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(_partition), Some("iam"), Some(""), Some("aws"), Some(resource)) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    // AWS managed policies may sit under a path (`policy/service-role/...`); the name is last.
    resource.strip_prefix("policy/").and_then(|p| p.rsplit('/').next()) == Some(name)
}

/// Decode (percent-encoding, as IAM sends documents) and parse a policy document. A document that
/// is already plain JSON is taken as it is.
pub fn parse_policy_document(text: &str) -> Result<Value, String> {
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        return Ok(v);
    }
    let decoded = percent_decode(text).ok_or_else(|| "the policy document is not valid percent-encoding".to_owned())?;
    serde_json::from_str(&decoded).map_err(|e| format!("the policy document is not JSON: {e}"))
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                // Form encoding's space (IAM uses %20, but some encoders send `+`).
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// `"*"`, or a list that holds `"*"`.
fn is_wildcard(v: Option<&Value>) -> bool {
    match v {
        Some(Value::String(s)) => s == "*",
        Some(Value::Array(items)) => items.iter().any(|i| i.as_str() == Some("*")),
        _ => false,
    }
}

/// Whether a parsed policy document has a statement that allows every action (`"Action": "*"`) on
/// every resource (`"Resource": "*"`): full administrative privileges, whatever its conditions.
pub fn grants_full_admin(document: &Value) -> bool {
    let statements: Vec<&Value> = match document.get("Statement") {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(one @ Value::Object(_)) => vec![one],
        _ => Vec::new(),
    };
    statements.iter().any(|s| {
        s.get("Effect").and_then(Value::as_str) == Some("Allow")
            && is_wildcard(s.get("Action"))
            && is_wildcard(s.get("Resource"))
    })
}

/// IAM.2 (CIS 1.15): no IAM user holds a policy of its own (attached or inline); users get their
/// permissions through groups.
pub fn evaluate_user_policies(facts: &AuthorizationFacts) -> ControlResult {
    let mut failing: Vec<String> = facts
        .principals
        .iter()
        .filter(|p| p.kind == PrincipalKind::User && (!p.attached.is_empty() || !p.inline.is_empty()))
        .map(|p| p.name.clone())
        .collect();
    failing.sort();
    if failing.is_empty() {
        return ControlResult::pass(ControlId::Iam2);
    }
    let n = failing.len();
    ControlResult::fail(
        ControlId::Iam2,
        failing,
        format!("{n} user(s) hold policies of their own (attached or inline) instead of through groups"),
    )
}

/// IAM.18 (CIS 1.17): at least one role holds the AWS managed policy `AWSSupportAccess`.
pub fn evaluate_support_role(account: &str, facts: &AuthorizationFacts) -> ControlResult {
    let support = facts
        .principals
        .iter()
        .any(|p| p.kind == PrincipalKind::Role && p.attached.iter().any(|a| is_aws_managed(a, SUPPORT_POLICY)));
    if support {
        return ControlResult::pass(ControlId::Iam18);
    }
    ControlResult::fail(
        ControlId::Iam18,
        vec![format!("support-role:{account}")],
        format!("no role has the AWS managed policy {SUPPORT_POLICY} attached"),
    )
}

/// IAM.27 (CIS 1.22): no user, group or role holds the AWS managed policy
/// `AWSCloudShellFullAccess`.
pub fn evaluate_cloudshell_access(facts: &AuthorizationFacts) -> ControlResult {
    let mut failing: Vec<String> = facts
        .principals
        .iter()
        .filter(|p| p.attached.iter().any(|a| is_aws_managed(a, CLOUDSHELL_POLICY)))
        .map(|p| p.arn.clone())
        .collect();
    failing.sort();
    if failing.is_empty() {
        return ControlResult::pass(ControlId::Iam27);
    }
    let n = failing.len();
    ControlResult::fail(ControlId::Iam27, failing, format!("{n} principal(s) have {CLOUDSHELL_POLICY} attached"))
}

/// CIS 1.16: no attached customer managed policy allows `*` on `*` in its default version. A
/// document that does not parse is unreadable: unknown unless another policy fails.
pub fn evaluate_full_admin_policies(facts: &AuthorizationFacts) -> ControlResult {
    let (mut failing, mut unreadable) = (Vec::new(), Vec::new());
    for p in &facts.policies {
        let attached = p.attachment_count > 0 || facts.principals.iter().any(|h| h.attached.contains(&p.arn));
        if !attached {
            continue;
        }
        let parsed = match p.document.as_deref() {
            Some(text) => parse_policy_document(text),
            None => Err("the listing has no default version document".to_owned()),
        };
        match parsed {
            Ok(doc) if grants_full_admin(&doc) => failing.push(p.arn.clone()),
            Ok(_) => {}
            Err(reason) => {
                unreadable.push(Unreadable { resource: p.arn.clone(), error_code: ErrorCode::ReadFailed, reason })
            }
        }
    }
    let n = failing.len();
    super::verdict(
        ControlId::Cis3_1_16,
        failing,
        &unreadable,
        format!("{n} attached customer managed polic(ies) allow \"*\" on \"*\""),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::posture::controls::Status;

    fn principal(kind: PrincipalKind, name: &str, attached: &[&str], inline: &[&str]) -> PrincipalPolicies {
        PrincipalPolicies {
            kind,
            name: name.into(),
            arn: format!("arn:aws:iam::123456789012:{}/{name}", kind.as_str()),
            attached: attached.iter().map(|s| s.to_string()).collect(),
            inline: inline.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn aws(name: &str) -> String {
        format!("arn:aws:iam::aws:policy/{name}")
    }

    fn facts(principals: Vec<PrincipalPolicies>) -> AuthorizationFacts {
        AuthorizationFacts { principals, policies: Vec::new() }
    }

    #[test]
    fn users_hold_no_policies_of_their_own() {
        let group = principal(PrincipalKind::Group, "admins", &[&aws("AdministratorAccess")], &["x"]);
        let role = principal(PrincipalKind::Role, "ops", &[&aws("ReadOnlyAccess")], &[]);
        let clean = principal(PrincipalKind::User, "alice", &[], &[]);
        assert_eq!(
            evaluate_user_policies(&facts(vec![group.clone(), role.clone(), clean.clone()])).status,
            Status::Pass
        );
        let attached = principal(PrincipalKind::User, "bob", &[&aws("ReadOnlyAccess")], &[]);
        let inline = principal(PrincipalKind::User, "carol", &[], &["s3"]);
        let r = evaluate_user_policies(&facts(vec![inline, group, attached, role, clean]));
        assert_eq!((r.status, r.failing_resources), (Status::Fail, vec!["bob".to_owned(), "carol".to_owned()]));
        assert_eq!(evaluate_user_policies(&AuthorizationFacts::default()).status, Status::Pass);
    }

    #[test]
    fn a_support_role_needs_the_aws_managed_policy_on_a_role() {
        let on_role = principal(PrincipalKind::Role, "support", &[&aws(SUPPORT_POLICY)], &[]);
        assert_eq!(evaluate_support_role("1", &facts(vec![on_role])).status, Status::Pass);
        // GovCloud's partition counts too.
        let gov = principal(PrincipalKind::Role, "s", &["arn:aws-us-gov:iam::aws:policy/AWSSupportAccess"], &[]);
        assert_eq!(evaluate_support_role("1", &facts(vec![gov])).status, Status::Pass);
        // On a user only, a customer policy of the same name, or nowhere: fails.
        let on_user = principal(PrincipalKind::User, "u", &[&aws(SUPPORT_POLICY)], &[]);
        let lookalike =
            principal(PrincipalKind::Role, "r", &["arn:aws:iam::123456789012:policy/AWSSupportAccess"], &[]);
        for f in [facts(vec![on_user]), facts(vec![lookalike]), AuthorizationFacts::default()] {
            let r = evaluate_support_role("123456789012", &f);
            assert_eq!((r.status, r.failing_resources), (Status::Fail, vec!["support-role:123456789012".to_owned()]));
        }
    }

    #[test]
    fn cloudshell_full_access_is_attached_to_nobody() {
        let readonly = principal(PrincipalKind::Role, "r", &[&aws("ReadOnlyAccess")], &[]);
        assert_eq!(evaluate_cloudshell_access(&facts(vec![readonly.clone()])).status, Status::Pass);
        let group = principal(PrincipalKind::Group, "devs", &[&aws(CLOUDSHELL_POLICY)], &[]);
        let user = principal(PrincipalKind::User, "eve", &[&aws(CLOUDSHELL_POLICY)], &[]);
        let r = evaluate_cloudshell_access(&facts(vec![user.clone(), readonly, group.clone()]));
        assert_eq!((r.status, r.failing_resources), (Status::Fail, vec![group.arn, user.arn]));
        assert!(is_aws_managed("arn:aws:iam::aws:policy/service-role/AWSCloudShellFullAccess", CLOUDSHELL_POLICY));
        assert!(!is_aws_managed("arn:aws:iam::aws:policy/AWSCloudShellFullAccessX", CLOUDSHELL_POLICY));
        assert!(!is_aws_managed("AWSCloudShellFullAccess", CLOUDSHELL_POLICY));
    }

    fn policy(name: &str, count: i64, document: &str) -> ManagedPolicyFacts {
        ManagedPolicyFacts {
            arn: format!("arn:aws:iam::123456789012:policy/{name}"),
            name: name.into(),
            attachment_count: count,
            document: Some(document.into()),
        }
    }

    /// Percent-encoded as IAM sends it (every reserved character).
    fn encoded(json: &str) -> String {
        json.bytes()
            .map(|b| if b.is_ascii_alphanumeric() { char::from(b).to_string() } else { format!("%{b:02X}") })
            .collect()
    }

    #[test]
    fn full_admin_is_decided_on_the_parsed_document() {
        let admin = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
        let listed = r#"{"Statement":{"Effect":"Allow","Action":["s3:GetObject","*"],"Resource":["*"]}}"#;
        let narrow = r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#;
        let resource = r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"arn:aws:s3:::b/*"}]}"#;
        let deny = r#"{"Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}"#;
        // A string compare would see `"Action":"*"` in a description or a Sid; the parser does not.
        let sid = r#"{"Statement":[{"Sid":"\"Action\":\"*\",\"Resource\":\"*\"","Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#;
        for (doc, expected) in
            [(admin, true), (listed, true), (narrow, false), (resource, false), (deny, false), (sid, false)]
        {
            let v = parse_policy_document(&encoded(doc)).unwrap();
            assert_eq!(grants_full_admin(&v), expected, "{doc}");
            assert_eq!(parse_policy_document(doc).unwrap(), v, "plain JSON is taken as it is");
        }
        let with_spaces = "%7B%22Statement%22%3A+%7B%22Effect%22%3A+%22Allow%22%2C+%22Action%22%3A+%22*%22%2C+%22Resource%22%3A+%22*%22%7D%7D";
        assert!(grants_full_admin(&parse_policy_document(with_spaces).unwrap()));
        assert!(parse_policy_document("%7B%2").is_err());
        assert!(parse_policy_document("not json").is_err());
    }

    #[test]
    fn only_attached_full_admin_customer_policies_fail() {
        let admin = r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
        let narrow = r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#;
        let mut f = AuthorizationFacts {
            principals: vec![],
            policies: vec![policy("idle-admin", 0, &encoded(admin)), policy("s3", 3, &encoded(narrow))],
        };
        assert_eq!(evaluate_full_admin_policies(&f).status, Status::Pass, "an unattached policy grants nothing");
        f.policies.push(policy("admin", 1, &encoded(admin)));
        let r = evaluate_full_admin_policies(&f);
        assert_eq!((r.status, r.failing_resources), (Status::Fail, vec![f.policies[2].arn.clone()]));
        // Attached by a principal the listing names, whatever the count says.
        let holder = principal(PrincipalKind::Role, "r", &["arn:aws:iam::123456789012:policy/idle-admin"], &[]);
        let f2 = AuthorizationFacts { principals: vec![holder], policies: vec![policy("idle-admin", 0, admin)] };
        assert_eq!(evaluate_full_admin_policies(&f2).status, Status::Fail);
        // A document that cannot be read: unknown, never a pass.
        let broken = AuthorizationFacts { principals: vec![], policies: vec![policy("x", 1, "%7Bnot")] };
        let r = evaluate_full_admin_policies(&broken);
        assert_eq!((r.status, r.error_code), (Status::Unknown, Some(ErrorCode::ReadFailed)), "{r:?}");
    }
}
