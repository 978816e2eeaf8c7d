//! S3.1: the account-level S3 Block Public Access setting.

use super::{ControlId, ControlResult};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::posture::controls::Status;

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
