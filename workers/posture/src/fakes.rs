//! The posture ports in memory: a [`StaticReader`] that returns facts it was given, and a
//! [`MemoryPostureStore`] with the same lease rule as DynamoDB's conditional put.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use portcullis_domain::AccountId;
use portcullis_domain::posture::controls::{
    AnalyzerFacts, AuthorizationFacts, BucketFacts, BucketReads, ConfigRecorderFacts, DbInstanceFacts, FileSystemFacts,
    FlowLogFacts, InstanceFacts, MonitoringFacts, NaclFacts, PasswordPolicyFacts, PublicAccessBlockFacts,
    SecurityGroupFacts, ServerCertificateFacts, VirtualMfaDevice, VpcFacts,
};
use portcullis_domain::posture::{
    ControlId, CredentialReport, FindingCounts, IamUserFacts, KmsKeyFacts, ScanReport, Scope, TrailFacts, Unreadable,
    UserRead,
};

use crate::ports::{BucketReadsWanted, CollectError, EvidenceError, FactReader, PostureStore, UserReadStore};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Facts for one account and region, as given.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub trails: Vec<TrailFacts>,
    pub detectors: Vec<(String, String)>,
    pub findings: FindingCounts,
    /// The users as they are now (what a per-user read sees).
    pub users: Vec<IamUserFacts>,
    /// The credential report AWS serves; `None`: one generated now from `users`.
    pub report: Option<CredentialReport>,
    pub root: (i64, i64),
    pub virtual_mfa_devices: Vec<VirtualMfaDevice>,
    pub authorization: AuthorizationFacts,
    pub kms: Vec<KmsKeyFacts>,
    pub password_policy: Option<PasswordPolicyFacts>,
    pub public_access_block: Option<PublicAccessBlockFacts>,
    pub ebs_encryption_by_default: bool,
    pub config_recorders: Vec<ConfigRecorderFacts>,
    pub security_groups: Vec<SecurityGroupFacts>,
    pub instances: Vec<InstanceFacts>,
    pub network_acls: Vec<NaclFacts>,
    pub vpcs: Vec<VpcFacts>,
    pub flow_logs: Vec<FlowLogFacts>,
    /// The CIS 4.x chain after the trail (every filter, alarm and topic, whatever log groups are asked).
    pub monitoring: MonitoringFacts,
    /// The region's Security Hub ARN (`None`: not enabled).
    pub security_hub: Option<String>,
    /// Whether the account has a security alternate contact.
    pub security_contact: bool,
    pub db_instances: Vec<DbInstanceFacts>,
    pub file_systems: Vec<FileSystemFacts>,
    /// Every bucket's reads (all of them, whatever a scan asks for).
    pub buckets: BucketFacts,
    /// The trails' buckets' access logging (whatever buckets a scan asks about).
    pub trail_bucket_logging: BucketReads<bool>,
    pub server_certificates: Vec<ServerCertificateFacts>,
    pub access_analyzers: Vec<AnalyzerFacts>,
}

/// A [`FactReader`] over fixed facts (change them with [`StaticReader::set`]).
#[derive(Debug)]
pub struct StaticReader {
    account_id: AccountId,
    region: String,
    facts: Mutex<Facts>,
    calls: Mutex<usize>,
}

impl StaticReader {
    pub fn new(account_id: &AccountId, region: &str, facts: Facts) -> Self {
        Self {
            account_id: account_id.clone(),
            region: region.to_owned(),
            facts: Mutex::new(facts),
            calls: Mutex::new(0),
        }
    }

    pub fn set(&self, facts: Facts) {
        *lock(&self.facts) = facts;
    }

    /// Reads made so far.
    pub fn calls(&self) -> usize {
        *lock(&self.calls)
    }

    fn read(&self) -> Facts {
        *lock(&self.calls) += 1;
        lock(&self.facts).clone()
    }
}

#[async_trait]
impl FactReader for StaticReader {
    fn account_id(&self) -> &AccountId {
        &self.account_id
    }
    fn region(&self) -> &str {
        &self.region
    }
    async fn trails(&self) -> Result<(Vec<TrailFacts>, Vec<Unreadable>), CollectError> {
        Ok((self.read().trails, Vec::new()))
    }
    async fn guardduty_detectors(&self) -> Result<Vec<(String, String)>, CollectError> {
        Ok(self.read().detectors)
    }
    async fn guardduty_findings(&self, _detector_id: &str) -> Result<FindingCounts, CollectError> {
        Ok(self.read().findings)
    }
    async fn credential_report(&self) -> Result<CredentialReport, CollectError> {
        let facts = self.read();
        Ok(facts.report.unwrap_or_else(|| CredentialReport { generated_at: Utc::now(), users: facts.users }))
    }
    async fn iam_user(&self, user: &str) -> Result<Option<IamUserFacts>, CollectError> {
        Ok(self.read().users.into_iter().find(|u| u.user == user))
    }
    async fn root_summary(&self) -> Result<(i64, i64), CollectError> {
        Ok(self.read().root)
    }
    async fn virtual_mfa_devices(&self) -> Result<Vec<VirtualMfaDevice>, CollectError> {
        Ok(self.read().virtual_mfa_devices)
    }
    async fn authorization_details(&self) -> Result<AuthorizationFacts, CollectError> {
        Ok(self.read().authorization)
    }
    async fn password_policy(&self) -> Result<Option<PasswordPolicyFacts>, CollectError> {
        Ok(self.read().password_policy)
    }
    async fn account_public_access_block(&self) -> Result<Option<PublicAccessBlockFacts>, CollectError> {
        Ok(self.read().public_access_block)
    }
    async fn ebs_encryption_by_default(&self) -> Result<bool, CollectError> {
        Ok(self.read().ebs_encryption_by_default)
    }
    async fn config_recorders(&self) -> Result<Vec<ConfigRecorderFacts>, CollectError> {
        Ok(self.read().config_recorders)
    }
    async fn instances(&self) -> Result<Vec<InstanceFacts>, CollectError> {
        Ok(self.read().instances)
    }
    async fn network_acls(&self) -> Result<Vec<NaclFacts>, CollectError> {
        Ok(self.read().network_acls)
    }
    async fn security_groups(&self) -> Result<Vec<SecurityGroupFacts>, CollectError> {
        Ok(self.read().security_groups)
    }
    async fn vpcs_and_flow_logs(&self) -> Result<(Vec<VpcFacts>, Vec<FlowLogFacts>), CollectError> {
        let facts = self.read();
        Ok((facts.vpcs, facts.flow_logs))
    }
    async fn kms_keys(&self) -> Result<(Vec<KmsKeyFacts>, Vec<Unreadable>), CollectError> {
        Ok((self.read().kms, Vec::new()))
    }
    async fn kms_key(&self, key_id: &str) -> Result<Option<KmsKeyFacts>, CollectError> {
        Ok(self.read().kms.into_iter().find(|k| k.key_id == key_id))
    }
    async fn monitoring(&self, _log_group_arns: &BTreeSet<String>) -> Result<MonitoringFacts, CollectError> {
        Ok(self.read().monitoring)
    }
    async fn security_hub(&self) -> Result<Option<String>, CollectError> {
        Ok(self.read().security_hub)
    }
    async fn security_contact(&self) -> Result<bool, CollectError> {
        Ok(self.read().security_contact)
    }
    async fn db_instances(&self) -> Result<Vec<DbInstanceFacts>, CollectError> {
        Ok(self.read().db_instances)
    }
    async fn file_systems(&self) -> Result<Vec<FileSystemFacts>, CollectError> {
        Ok(self.read().file_systems)
    }
    async fn buckets(&self, _wanted: BucketReadsWanted) -> Result<BucketFacts, CollectError> {
        Ok(self.read().buckets)
    }
    async fn trail_bucket_logging(&self, _buckets: &BTreeSet<String>) -> Result<BucketReads<bool>, CollectError> {
        Ok(self.read().trail_bucket_logging)
    }
    async fn server_certificates(&self) -> Result<(Vec<ServerCertificateFacts>, Vec<Unreadable>), CollectError> {
        Ok((self.read().server_certificates, Vec::new()))
    }
    async fn access_analyzers(&self) -> Result<Vec<AnalyzerFacts>, CollectError> {
        Ok(self.read().access_analyzers)
    }
}

/// A [`PostureStore`] in memory: every report recorded, leases by the same rule as DynamoDB's
/// conditional put (`attribute_not_exists(pk) OR lease_until <= now`).
#[derive(Debug, Default)]
pub struct MemoryPostureStore {
    reports: Mutex<Vec<ScanReport>>,
    leases: Mutex<HashMap<Scope, (String, DateTime<Utc>)>>,
    user_reads: Mutex<HashMap<(AccountId, String), UserRead>>,
}

impl MemoryPostureStore {
    /// Every report recorded, in order.
    pub fn reports(&self) -> Vec<ScanReport> {
        lock(&self.reports).clone()
    }
}

#[async_trait]
impl PostureStore for MemoryPostureStore {
    async fn record(&self, report: &ScanReport) -> Result<Vec<(String, ControlId)>, EvidenceError> {
        lock(&self.reports).push(report.clone());
        Ok(Vec::new())
    }

    async fn try_lease(
        &self,
        scope: &Scope,
        owner: &str,
        lease_for: Duration,
        now: DateTime<Utc>,
    ) -> Result<bool, EvidenceError> {
        let mut leases = lock(&self.leases);
        let free = leases.get(scope).is_none_or(|(_, until)| until.timestamp() <= now.timestamp());
        if free {
            let until = now + chrono::Duration::from_std(lease_for).unwrap_or_default();
            leases.insert(scope.clone(), (owner.to_owned(), until));
        }
        Ok(free)
    }
}

#[async_trait]
impl UserReadStore for MemoryPostureStore {
    async fn user_reads(&self, account: &AccountId) -> Result<Vec<UserRead>, EvidenceError> {
        Ok(lock(&self.user_reads).iter().filter(|((a, _), _)| a == account).map(|(_, r)| r.clone()).collect())
    }

    async fn put_user_read(&self, account: &AccountId, read: &UserRead) -> Result<(), EvidenceError> {
        lock(&self.user_reads).insert((account.clone(), read.user.clone()), read.clone());
        Ok(())
    }
}
