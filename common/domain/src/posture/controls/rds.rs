//! RDS.2, RDS.3, RDS.13 (DB instances) and EFS.1 (file systems): per-resource settings read from one
//! describe call per region.

use super::{ControlId, ControlResult};

/// One DB instance, as `DescribeDBInstances` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DbInstanceFacts {
    /// `DBInstanceArn`.
    pub arn: String,
    pub publicly_accessible: bool,
    pub storage_encrypted: bool,
    pub auto_minor_version_upgrade: bool,
}

/// One EFS file system, as `DescribeFileSystems` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileSystemFacts {
    /// `FileSystemArn`.
    pub arn: String,
    pub encrypted: bool,
}

/// Fail naming every resource `bad` picks (sorted), else pass: a region without resources passes.
fn per_resource<T>(
    control: ControlId,
    resources: &[T],
    arn: fn(&T) -> &str,
    bad: impl Fn(&T) -> bool,
    what: &str,
) -> ControlResult {
    let mut failing: Vec<String> = resources.iter().filter(|r| bad(r)).map(|r| arn(r).to_owned()).collect();
    failing.sort();
    failing.dedup();
    if failing.is_empty() {
        return ControlResult::pass(control);
    }
    let n = failing.len();
    ControlResult::fail(control, failing, format!("{n} {what}"))
}

/// RDS.2 (`PubliclyAccessible` false), RDS.3 (`StorageEncrypted` true) and RDS.13
/// (`AutoMinorVersionUpgrade` true) over every DB instance of the region, in that order.
pub fn evaluate_db_instances(instances: &[DbInstanceFacts]) -> [ControlResult; 3] {
    fn arn(i: &DbInstanceFacts) -> &str {
        &i.arn
    }
    [
        per_resource(
            ControlId::Rds2,
            instances,
            arn,
            |i| i.publicly_accessible,
            "DB instance(s) are publicly accessible",
        ),
        per_resource(
            ControlId::Rds3,
            instances,
            arn,
            |i| !i.storage_encrypted,
            "DB instance(s) are not encrypted at rest",
        ),
        per_resource(
            ControlId::Rds13,
            instances,
            arn,
            |i| !i.auto_minor_version_upgrade,
            "DB instance(s) do not upgrade minor versions automatically",
        ),
    ]
}

/// EFS.1: every file system of the region is encrypted at rest.
pub fn evaluate_file_systems(file_systems: &[FileSystemFacts]) -> ControlResult {
    per_resource(
        ControlId::Efs1,
        file_systems,
        |f: &FileSystemFacts| f.arn.as_str(),
        |f| !f.encrypted,
        "EFS file system(s) are not encrypted at rest",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::posture::controls::Status;

    fn db(name: &str) -> DbInstanceFacts {
        DbInstanceFacts {
            arn: format!("arn:aws:rds:eu-west-1:123456789012:db:{name}"),
            publicly_accessible: false,
            storage_encrypted: true,
            auto_minor_version_upgrade: true,
        }
    }

    #[test]
    fn each_db_setting_fails_its_own_control_only() {
        assert!(evaluate_db_instances(&[]).iter().all(|r| r.status == Status::Pass));
        assert!(evaluate_db_instances(&[db("good")]).iter().all(|r| r.status == Status::Pass));
        let public = DbInstanceFacts { publicly_accessible: true, ..db("public") };
        let plain = DbInstanceFacts { storage_encrypted: false, ..db("plain") };
        let pinned = DbInstanceFacts { auto_minor_version_upgrade: false, ..db("pinned") };
        let [rds2, rds3, rds13] = evaluate_db_instances(&[db("good"), public, plain, pinned]);
        assert_eq!((rds2.control, rds3.control, rds13.control), (ControlId::Rds2, ControlId::Rds3, ControlId::Rds13));
        assert_eq!(rds2.failing_resources, vec!["arn:aws:rds:eu-west-1:123456789012:db:public"]);
        assert_eq!(rds3.failing_resources, vec!["arn:aws:rds:eu-west-1:123456789012:db:plain"]);
        assert_eq!(rds13.failing_resources, vec!["arn:aws:rds:eu-west-1:123456789012:db:pinned"]);
        assert!(rds2.reason.unwrap().contains("1 DB instance(s) are publicly accessible"));
    }

    #[test]
    fn an_unencrypted_file_system_fails_and_none_passes() {
        assert_eq!(evaluate_file_systems(&[]).status, Status::Pass);
        let fs = |id: &str, encrypted| FileSystemFacts {
            arn: format!("arn:aws:elasticfilesystem:eu-west-1:123456789012:file-system/{id}"),
            encrypted,
        };
        assert_eq!(evaluate_file_systems(&[fs("fs-1", true)]).status, Status::Pass);
        let r = evaluate_file_systems(&[fs("fs-1", true), fs("fs-2", false)]);
        assert_eq!(r.status, Status::Fail);
        assert_eq!(r.failing_resources, vec!["arn:aws:elasticfilesystem:eu-west-1:123456789012:file-system/fs-2"]);
    }
}
