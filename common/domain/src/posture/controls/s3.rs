//! S3.1: the account-level S3 Block Public Access setting; S3.5, S3.8 and S3.20: every bucket's
//! policy, Block Public Access and versioning; CloudTrail.7: the access logging of the trails'
//! buckets.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{ControlId, ControlResult, TrailFacts, Unreadable, verdict};

/// The account's S3 Block Public Access setting (`s3control:GetPublicAccessBlock`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PublicAccessBlockFacts {
    pub block_public_acls: bool,
    pub ignore_public_acls: bool,
    pub block_public_policy: bool,
    pub restrict_public_buckets: bool,
}

/// S3.1: all four settings on. `None`: the account has no setting, which fails.
pub fn evaluate_account_public_access_block(account: &str, block: Option<&PublicAccessBlockFacts>) -> ControlResult {
    let resource = vec![format!("s3-account-public-access-block:{account}")];
    let Some(b) = block else {
        return ControlResult::fail(ControlId::S31, resource, "the account has no S3 Block Public Access setting");
    };
    let off: Vec<&str> = [
        ("BlockPublicAcls", b.block_public_acls),
        ("IgnorePublicAcls", b.ignore_public_acls),
        ("BlockPublicPolicy", b.block_public_policy),
        ("RestrictPublicBuckets", b.restrict_public_buckets),
    ]
    .into_iter()
    .filter(|(_, on)| !on)
    .map(|(name, _)| name)
    .collect();
    if off.is_empty() {
        return ControlResult::pass(ControlId::S31);
    }
    ControlResult::fail(
        ControlId::S31,
        resource,
        format!("account-level S3 Block Public Access has {} off", off.join(", ")),
    )
}

/// One per-bucket read over a set of buckets: what each bucket answered, and the buckets whose
/// answer could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketReads<T> {
    /// (bucket name, what it answered).
    pub read: Vec<(String, T)>,
    pub unreadable: Vec<Unreadable>,
}

impl<T> Default for BucketReads<T> {
    fn default() -> Self {
        Self { read: Vec::new(), unreadable: Vec::new() }
    }
}

/// What S3.5, S3.8 and S3.20 read of every bucket the account owns. A read not asked for (a
/// targeted rescan of one control) stays empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BucketFacts {
    /// The bucket policy's JSON (`None`: the bucket has none).
    pub policies: BucketReads<Option<String>>,
    /// The bucket-level Block Public Access (`None`: none is set).
    pub public_access_blocks: BucketReads<Option<PublicAccessBlockFacts>>,
    /// Whether versioning has `MFADelete` `Enabled`.
    pub mfa_delete: BucketReads<bool>,
}

/// The ARN of a bucket, the resource every S3 bucket control names.
pub fn bucket_arn(bucket: &str) -> String {
    format!("arn:aws:s3:::{bucket}")
}

/// A control over one per-bucket read: fail naming the buckets `bad` picks (and any unreadable
/// ones), unknown when only unreadable ones are left, else pass (no bucket passes).
fn per_bucket<T>(control: ControlId, reads: &BucketReads<T>, bad: impl Fn(&T) -> bool, why: &str) -> ControlResult {
    let failing: Vec<String> = reads.read.iter().filter(|(_, t)| bad(t)).map(|(b, _)| bucket_arn(b)).collect();
    let n = failing.len();
    verdict(control, failing, &reads.unreadable, format!("{n} bucket(s) {why}"))
}

/// `*` and `?` wildcards as IAM reads them in `Resource` (case-sensitive, as ARNs are).
fn wildcard(pattern: &str, value: &str) -> bool {
    let (p, v): (Vec<char>, Vec<char>) = (pattern.chars().collect(), value.chars().collect());
    let (mut pi, mut vi, mut star, mut mark) = (0, 0, None, 0);
    while vi < v.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == v[vi]) {
            pi += 1;
            vi += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = vi;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            vi = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// A policy element that is a string or a list of strings, as strings.
fn strings(v: Option<&Value>) -> Vec<&str> {
    match v {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// Whether one statement denies everyone every S3 action on the bucket and its objects when the
/// request is not TLS: `Effect` `Deny`, `Principal` `*` (or `{"AWS": "*"}`), `Action` `s3:*` or
/// `*`, `Resource` covering `arn:aws:s3:::<bucket>` and `arn:aws:s3:::<bucket>/*`, and a
/// `Condition` that is exactly `Bool` (or `BoolIfExists`) `aws:SecureTransport` `false`. Any other
/// condition narrows the deny to some requests only, so it does not count; neither do `NotPrincipal`,
/// `NotAction` and `NotResource` statements.
fn denies_plain_http(statement: &Value, bucket: &str) -> bool {
    let Some(st) = statement.as_object() else { return false };
    if st.get("Effect").and_then(Value::as_str) != Some("Deny")
        || ["NotPrincipal", "NotAction", "NotResource"].iter().any(|k| st.contains_key(*k))
    {
        return false;
    }
    let everyone = match st.get("Principal") {
        Some(Value::String(p)) => p == "*",
        Some(Value::Object(o)) => o.iter().any(|(k, v)| k == "AWS" && strings(Some(v)).contains(&"*")),
        _ => false,
    };
    let every_action = strings(st.get("Action")).iter().any(|a| *a == "*" || a.eq_ignore_ascii_case("s3:*"));
    let resources = strings(st.get("Resource"));
    let covers = |arn: &str| resources.iter().any(|r| wildcard(r, arn));
    let whole_bucket = covers(&bucket_arn(bucket)) && covers(&format!("{}/*", bucket_arn(bucket)));
    let Some(Value::Object(condition)) = st.get("Condition") else { return false };
    let only_plain_http = condition.len() == 1
        && condition.iter().all(|(op, tests)| {
            let Some(tests) = tests.as_object() else { return false };
            (op == "Bool" || op == "BoolIfExists")
                && tests.len() == 1
                && tests.iter().all(|(key, value)| {
                    let values: Vec<String> = match value {
                        Value::Array(a) => a.iter().map(|v| v.to_string().trim_matches('"').to_owned()).collect(),
                        v => vec![v.to_string().trim_matches('"').to_owned()],
                    };
                    key.eq_ignore_ascii_case("aws:SecureTransport")
                        && !values.is_empty()
                        && values.iter().all(|v| v.eq_ignore_ascii_case("false"))
                })
        });
    everyone && every_action && whole_bucket && only_plain_http
}

/// Whether `policy` (a bucket policy's JSON) denies every request to `bucket` made without TLS.
/// A policy that does not parse denies nothing.
pub fn policy_denies_plain_http(policy: &str, bucket: &str) -> bool {
    let Ok(doc) = serde_json::from_str::<Value>(policy) else { return false };
    match doc.get("Statement") {
        Some(Value::Array(statements)) => statements.iter().any(|s| denies_plain_http(s, bucket)),
        Some(statement) => denies_plain_http(statement, bucket),
        None => false,
    }
}

/// S3.5: every bucket's policy denies requests made without TLS (see [`policy_denies_plain_http`]);
/// a bucket without a policy fails.
pub fn evaluate_bucket_tls(facts: &BucketFacts) -> ControlResult {
    let mut failing = Vec::new();
    for (bucket, policy) in &facts.policies.read {
        if !policy.as_deref().is_some_and(|p| policy_denies_plain_http(p, bucket)) {
            failing.push(bucket_arn(bucket));
        }
    }
    let n = failing.len();
    verdict(
        ControlId::S35,
        failing,
        &facts.policies.unreadable,
        format!("{n} bucket(s) do not deny requests made without TLS (aws:SecureTransport false) in their policy"),
    )
}

/// S3.8: every bucket has all four bucket-level Block Public Access settings on; none set fails.
pub fn evaluate_bucket_public_access_blocks(facts: &BucketFacts) -> ControlResult {
    let all_on = |b: &PublicAccessBlockFacts| {
        b.block_public_acls && b.ignore_public_acls && b.block_public_policy && b.restrict_public_buckets
    };
    per_bucket(
        ControlId::S38,
        &facts.public_access_blocks,
        |b| !b.as_ref().is_some_and(all_on),
        "do not have all four bucket-level Block Public Access settings on",
    )
}

/// S3.20: every bucket has MFA delete enabled on its versioning.
pub fn evaluate_mfa_delete(facts: &BucketFacts) -> ControlResult {
    per_bucket(ControlId::S320, &facts.mfa_delete, |on| !on, "do not have MFA delete enabled")
}

/// The buckets the trails listed in a region deliver to, each once.
pub fn trail_buckets(trails: &[TrailFacts]) -> BTreeSet<String> {
    trails.iter().filter_map(|t| t.s3_bucket_name.clone()).filter(|b| !b.is_empty()).collect()
}

/// CloudTrail.7: the S3 bucket of every trail listed in the region has server access logging. A
/// bucket in another account, or whose logging could not be read, is unreadable: the control is
/// unknown unless a readable bucket fails. No trail: nothing to judge, pass.
pub fn evaluate_trail_bucket_logging(logging: &BucketReads<bool>) -> ControlResult {
    per_bucket(ControlId::CloudTrail7, logging, |on| !on, "that trails deliver to have no server access logging")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use crate::posture::controls::Status;

    const TLS_ONLY: &str = r#"{"Version": "2012-10-17", "Statement": [
        {"Sid": "Read", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::1:root"}, "Action": "s3:GetObject",
         "Resource": "arn:aws:s3:::logs/*"},
        {"Sid": "TlsOnly", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "s3:*",
         "Resource": ["arn:aws:s3:::logs", "arn:aws:s3:::logs/*"],
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}"#;

    #[test]
    fn a_deny_of_every_s3_action_without_tls_on_the_bucket_and_its_objects_passes() {
        assert!(policy_denies_plain_http(TLS_ONLY, "logs"));
        // The same, written other ways IAM accepts.
        let other = r#"{"Statement": {"Effect": "Deny", "Principal": "*", "Action": ["*"],
            "Resource": "arn:aws:s3:::log*", "Condition": {"BoolIfExists": {"AWS:SecureTransport": [false]}}}}"#;
        assert!(policy_denies_plain_http(other, "logs"));
        // Not for another bucket.
        assert!(!policy_denies_plain_http(TLS_ONLY, "other"));
    }

    #[test]
    fn a_narrower_deny_does_not_count() {
        let with = |f: &dyn Fn(&mut Value)| {
            let mut doc: Value = serde_json::from_str(TLS_ONLY).unwrap();
            f(&mut doc["Statement"][1]);
            doc.to_string()
        };
        for (why, policy) in [
            ("objects only", with(&|s| s["Resource"] = Value::from("arn:aws:s3:::logs/*"))),
            ("one action", with(&|s| s["Action"] = Value::from("s3:GetObject"))),
            ("one principal", with(&|s| s["Principal"] = serde_json::json!({"AWS": "arn:aws:iam::1:root"}))),
            ("allow", with(&|s| s["Effect"] = Value::from("Allow"))),
            ("true", with(&|s| s["Condition"] = serde_json::json!({"Bool": {"aws:SecureTransport": "true"}}))),
            (
                "another condition too",
                with(&|s| {
                    s["Condition"]["IpAddress"] = serde_json::json!({"aws:SourceIp": "10.0.0.0/8"});
                }),
            ),
            ("no condition", with(&|s| s["Condition"] = Value::Null)),
            ("NotAction", with(&|s| s["NotAction"] = Value::from("s3:GetObject"))),
        ] {
            assert!(!policy_denies_plain_http(&policy, "logs"), "{why}: {policy}");
        }
        assert!(!policy_denies_plain_http("not json", "logs"));
    }

    fn facts() -> BucketFacts {
        let on = PublicAccessBlockFacts {
            block_public_acls: true,
            ignore_public_acls: true,
            block_public_policy: true,
            restrict_public_buckets: true,
        };
        BucketFacts {
            policies: BucketReads { read: vec![("logs".into(), Some(TLS_ONLY.into()))], unreadable: vec![] },
            public_access_blocks: BucketReads { read: vec![("logs".into(), Some(on))], unreadable: vec![] },
            mfa_delete: BucketReads { read: vec![("logs".into(), true)], unreadable: vec![] },
        }
    }

    #[test]
    fn every_bucket_control_passes_fails_and_is_unknown_per_bucket() {
        let healthy = facts();
        for r in [
            evaluate_bucket_tls(&healthy),
            evaluate_bucket_public_access_blocks(&healthy),
            evaluate_mfa_delete(&healthy),
        ] {
            assert_eq!(r.status, Status::Pass, "{r:?}");
        }
        assert_eq!(evaluate_bucket_tls(&BucketFacts::default()).status, Status::Pass, "no bucket");

        let mut bad = facts();
        bad.policies.read.push(("bare".into(), None));
        bad.public_access_blocks.read.push(("bare".into(), None));
        let one_off = PublicAccessBlockFacts { restrict_public_buckets: false, ..PublicAccessBlockFacts::default() };
        bad.public_access_blocks.read.push(("half".into(), Some(one_off)));
        bad.mfa_delete.read.push(("bare".into(), false));
        let s35 = evaluate_bucket_tls(&bad);
        assert_eq!((s35.control, s35.status), (ControlId::S35, Status::Fail));
        assert_eq!(s35.failing_resources, vec!["arn:aws:s3:::bare"]);
        let s38 = evaluate_bucket_public_access_blocks(&bad);
        assert_eq!(s38.failing_resources, vec!["arn:aws:s3:::bare", "arn:aws:s3:::half"]);
        let s320 = evaluate_mfa_delete(&bad);
        assert_eq!((s320.control, s320.failing_resources.clone()), (ControlId::S320, vec!["arn:aws:s3:::bare".into()]));

        let mut denied = facts();
        denied.mfa_delete.unreadable.push(Unreadable {
            resource: "arn:aws:s3:::secret".into(),
            error_code: ErrorCode::AccessDenied,
            reason: "s3:GetBucketVersioning: denied".into(),
        });
        let r = evaluate_mfa_delete(&denied);
        assert_eq!((r.status, r.error_code), (Status::Unknown, Some(ErrorCode::AccessDenied)));
    }

    #[test]
    fn a_trail_bucket_without_logging_fails_and_an_unreadable_one_is_unknown() {
        let reads = |read: Vec<(&str, bool)>, unreadable: Vec<Unreadable>| BucketReads {
            read: read.into_iter().map(|(b, on)| (b.to_owned(), on)).collect(),
            unreadable,
        };
        assert_eq!(evaluate_trail_bucket_logging(&reads(vec![], vec![])).status, Status::Pass, "no trail");
        assert_eq!(evaluate_trail_bucket_logging(&reads(vec![("logs", true)], vec![])).status, Status::Pass);
        let r = evaluate_trail_bucket_logging(&reads(vec![("logs", false)], vec![]));
        assert_eq!((r.control, r.failing_resources), (ControlId::CloudTrail7, vec!["arn:aws:s3:::logs".into()]));
        let elsewhere = Unreadable {
            resource: "arn:aws:s3:::org-archive".into(),
            error_code: ErrorCode::AccessDenied,
            reason: "the bucket belongs to another account".into(),
        };
        let r = evaluate_trail_bucket_logging(&reads(vec![("logs", true)], vec![elsewhere]));
        assert_eq!((r.status, r.error_code), (Status::Unknown, Some(ErrorCode::AccessDenied)));
        assert!(r.reason.unwrap().contains("another account"));
    }

    #[test]
    fn all_four_settings_must_be_on() {
        let all = PublicAccessBlockFacts {
            block_public_acls: true,
            ignore_public_acls: true,
            block_public_policy: true,
            restrict_public_buckets: true,
        };
        assert_eq!(evaluate_account_public_access_block("1", Some(&all)).status, Status::Pass);
        let one_off = PublicAccessBlockFacts { restrict_public_buckets: false, ..all };
        let r = evaluate_account_public_access_block("123456789012", Some(&one_off));
        assert_eq!(r.status, Status::Fail);
        assert!(r.reason.unwrap().contains("RestrictPublicBuckets"));
        assert_eq!(r.failing_resources, vec!["s3-account-public-access-block:123456789012"]);
        assert_eq!(evaluate_account_public_access_block("1", None).status, Status::Fail);
        assert_eq!(
            evaluate_account_public_access_block("1", Some(&PublicAccessBlockFacts::default())).status,
            Status::Fail
        );
    }
}
