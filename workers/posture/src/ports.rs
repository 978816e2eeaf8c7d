//! What the posture worker needs from the world: a [`FactReader`] per account and region (the
//! collector; AWS in [`crate::collect`]), and a [`PostureStore`] for evidence, violations and scan
//! leases (DynamoDB and EventBridge in [`crate::evidence`]). Fakes of both are in [`crate::fakes`].

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use portcullis_domain::posture::controls::{
    AnalyzerFacts, AuthorizationFacts, BucketFacts, BucketReads, ConfigRecorderFacts, DbInstanceFacts, FileSystemFacts,
    FlowLogFacts, InstanceFacts, MonitoringFacts, NaclFacts, PasswordPolicyFacts, PublicAccessBlockFacts,
    SecurityGroupFacts, ServerCertificateFacts, VirtualMfaDevice, VpcFacts,
};
use portcullis_domain::posture::{
    ControlId, CredentialReport, FindingCounts, IamUserFacts, KmsKeyFacts, ScanReport, Scope, TrailFacts, Unreadable,
    UserRead,
};
use portcullis_domain::{AccountId, ErrorCode};

/// Why facts could not be read: the API, the code the result carries (`access_denied`,
/// `unsupported`, `throttled`, `not_found`, `error`), and AWS's message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{op}: {code}: {message}")]
pub struct CollectError {
    pub op: &'static str,
    pub code: ErrorCode,
    pub message: String,
}

impl CollectError {
    pub fn new(op: &'static str, code: ErrorCode, message: impl Into<String>) -> Self {
        Self { op, code, message: message.into() }
    }
}

/// Which per-bucket reads a scan needs (a targeted rescan of one control reads only its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BucketReadsWanted {
    /// `GetBucketPolicy` (S3.5).
    pub policy: bool,
    /// `GetPublicAccessBlock` (S3.8).
    pub public_access_block: bool,
    /// `GetBucketVersioning` (S3.20).
    pub versioning: bool,
}

/// Reads posture facts in one account and region.
#[async_trait]
pub trait FactReader: Send + Sync + Debug + 'static {
    fn account_id(&self) -> &AccountId;
    fn region(&self) -> &str;

    /// Every trail visible in the region with status and event selectors (read in each trail's home
    /// region); trails whose status or selectors could not be read are also listed as unreadable.
    async fn trails(&self) -> Result<(Vec<TrailFacts>, Vec<Unreadable>), CollectError>;
    /// GuardDuty detectors as (id, status).
    async fn guardduty_detectors(&self) -> Result<Vec<(String, String)>, CollectError>;
    /// Active findings of severity 7 and above, by band.
    async fn guardduty_findings(&self, detector_id: &str) -> Result<FindingCounts, CollectError>;
    /// The IAM credential report, with when AWS generated it (it reuses one for up to 4 hours).
    async fn credential_report(&self) -> Result<CredentialReport, CollectError>;
    /// One user's credentials, read now (`None` when the user does not exist).
    async fn iam_user(&self, user: &str) -> Result<Option<IamUserFacts>, CollectError>;
    /// (`AccountAccessKeysPresent`, `AccountMFAEnabled`).
    async fn root_summary(&self) -> Result<(i64, i64), CollectError>;
    /// The account's assigned virtual MFA devices.
    async fn virtual_mfa_devices(&self) -> Result<Vec<VirtualMfaDevice>, CollectError>;
    /// Every user, group and role with the policies it holds, and every customer managed policy
    /// with its default version (`GetAccountAuthorizationDetails`).
    async fn authorization_details(&self) -> Result<AuthorizationFacts, CollectError>;
    /// The account password policy (`None`: the account has none).
    async fn password_policy(&self) -> Result<Option<PasswordPolicyFacts>, CollectError>;
    /// The account's S3 Block Public Access setting (`None`: none is set).
    async fn account_public_access_block(&self) -> Result<Option<PublicAccessBlockFacts>, CollectError>;
    /// Whether EBS encryption by default is on in the region.
    async fn ebs_encryption_by_default(&self) -> Result<bool, CollectError>;
    /// The region's AWS Config recorders, with their status.
    async fn config_recorders(&self) -> Result<Vec<ConfigRecorderFacts>, CollectError>;
    /// Every EC2 instance of the region, with its metadata options.
    async fn instances(&self) -> Result<Vec<InstanceFacts>, CollectError>;
    /// Every network ACL of the region, with its entries.
    async fn network_acls(&self) -> Result<Vec<NaclFacts>, CollectError>;
    /// Every security group of the region.
    async fn security_groups(&self) -> Result<Vec<SecurityGroupFacts>, CollectError>;
    /// Every VPC of the region and every flow log.
    async fn vpcs_and_flow_logs(&self) -> Result<(Vec<VpcFacts>, Vec<FlowLogFacts>), CollectError>;
    /// Every KMS key in the region, described; keys that could not be described are returned apart.
    async fn kms_keys(&self) -> Result<(Vec<KmsKeyFacts>, Vec<Unreadable>), CollectError>;
    /// Forget what is known of a KMS key: a change event named it, so the next read describes it
    /// anew (a reader that keeps nothing has nothing to forget).
    fn forget_kms_key(&self, _key_id: &str) {}
    /// One KMS key (`None` when it no longer exists).
    async fn kms_key(&self, key_id: &str) -> Result<Option<KmsKeyFacts>, CollectError>;
    /// The CIS 4.x chain after the trail: the metric filters of `log_group_arns` (each read in its
    /// region), the alarms of those regions, and the confirmed subscriptions of the topics alarms
    /// notify (a topic that cannot be read is listed as unreadable).
    async fn monitoring(&self, log_group_arns: &BTreeSet<String>) -> Result<MonitoringFacts, CollectError>;
    /// Whether the account has a `SECURITY` alternate contact.
    async fn security_contact(&self) -> Result<bool, CollectError>;
    /// The region's Security Hub ARN (`None`: not enabled there).
    async fn security_hub(&self) -> Result<Option<String>, CollectError>;
    /// Every RDS DB instance of the region.
    async fn db_instances(&self) -> Result<Vec<DbInstanceFacts>, CollectError>;
    /// Every EFS file system of the region.
    async fn file_systems(&self) -> Result<Vec<FileSystemFacts>, CollectError>;
    /// Every bucket the account owns, with the `wanted` reads of each.
    async fn buckets(&self, wanted: BucketReadsWanted) -> Result<BucketFacts, CollectError>;
    /// Whether each of `buckets` (the trails' buckets) has server access logging; a bucket of another
    /// account, or whose logging cannot be read, is unreadable.
    async fn trail_bucket_logging(&self, buckets: &BTreeSet<String>) -> Result<BucketReads<bool>, CollectError>;
    /// Every server certificate stored in IAM with the end of its validity (from its body); those
    /// that could not be read, apart.
    async fn server_certificates(&self) -> Result<(Vec<ServerCertificateFacts>, Vec<Unreadable>), CollectError>;
    /// Every IAM Access Analyzer analyzer of the region.
    async fn access_analyzers(&self) -> Result<Vec<AnalyzerFacts>, CollectError>;
}

/// A failure writing evidence, publishing, or taking a lease.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{op} failed: {message}")]
pub struct EvidenceError {
    pub op: &'static str,
    pub message: String,
}

/// Where per-user IAM reads are kept for every replica: a full scan on any replica that reuses an
/// older credential report must not undo what a targeted rescan on another one read after it.
#[async_trait]
pub trait UserReadStore: Send + Sync + Debug + 'static {
    /// Every kept read of the account's users.
    async fn user_reads(&self, account: &AccountId) -> Result<Vec<UserRead>, EvidenceError>;
    /// Keep `read` (replacing the user's earlier one).
    async fn put_user_read(&self, account: &AccountId, read: &UserRead) -> Result<(), EvidenceError>;
}

/// Where scan results go, and who scans next.
#[async_trait]
pub trait PostureStore: Send + Sync + Debug + 'static {
    /// Publish violations for controls that turned to fail, then store the evidence. Returns the
    /// (region, control) pairs a violation was published for.
    async fn record(&self, report: &ScanReport) -> Result<Vec<(String, ControlId)>, EvidenceError>;

    /// Try to take the scan lease of `scope` for `lease_for` as of `now`: true when this replica
    /// should scan.
    async fn try_lease(
        &self,
        scope: &Scope,
        owner: &str,
        lease_for: Duration,
        now: DateTime<Utc>,
    ) -> Result<bool, EvidenceError>;
}
