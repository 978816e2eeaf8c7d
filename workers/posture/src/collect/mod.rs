//! Reading posture facts from AWS: one [`AwsReader`] per account and region, one module per
//! service family.
//!
//! Calls are few and concurrent (bounded by one semaphore per scan): IAM reads the credential
//! report (two calls for every user and key) instead of listing keys per user, and one paginated
//! `GetAccountAuthorizationDetails` for every policy attachment instead of listing them per principal; KMS reads
//! `DescribeKey` for each key and `GetKeyRotationStatus` only for keys that can rotate; one
//! `DescribeSecurityGroups` serves EC2.2, EC2.53 and EC2.54. Errors are classified into stable codes
//! so a control becomes `unknown` with a reason, never a silent pass.
//!
//! Endpoints come only from the SDK configuration (`aws.endpoint_url`). S3 Control's endpoint rules
//! put the account id in front of the host, which an emulator's address cannot take; with an
//! endpoint configured, S3 Control calls go to that endpoint as it is.

mod account;
mod cloudtrail;
mod config;
mod ec2;
mod guardduty;
mod iam;
mod iam_extras;
mod kms;
mod monitoring;
mod rds;
mod s3;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use portcullis_domain::AccountId;
use portcullis_domain::posture::controls::{
    AnalyzerFacts, AuthorizationFacts, BucketFacts, BucketReads, ConfigRecorderFacts, DbInstanceFacts, FileSystemFacts,
    FlowLogFacts, InstanceFacts, MonitoringFacts, NaclFacts, PasswordPolicyFacts, PublicAccessBlockFacts,
    SecurityGroupFacts, ServerCertificateFacts, VirtualMfaDevice, VpcFacts,
};
use portcullis_domain::posture::{CredentialReport, FindingCounts, IamUserFacts, KmsKeyFacts, TrailFacts, Unreadable};
use portcullis_runtime::aws::{ApiCallCounter, classify as classify_sdk};
use tokio::sync::Semaphore;

pub use self::iam::parse_credential_report;
pub use self::iam_extras::certificate_not_after;
use crate::ports::{BucketReadsWanted, CollectError, FactReader};

/// Classify an SDK error into the code a posture result carries.
pub(crate) fn classify<E>(op: &'static str, e: &SdkError<E, HttpResponse>) -> CollectError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let failure = classify_sdk(e);
    CollectError { op, code: failure.kind.measurement_code(), message: failure.message }
}

/// The SDK clients of one account and region.
#[derive(Debug, Clone)]
pub struct Clients {
    pub account: aws_sdk_account::Client,
    pub cloudtrail: aws_sdk_cloudtrail::Client,
    pub config: aws_sdk_config::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub guardduty: aws_sdk_guardduty::Client,
    pub iam: aws_sdk_iam::Client,
    pub kms: aws_sdk_kms::Client,
    pub s3control: aws_sdk_s3control::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub sns: aws_sdk_sns::Client,
    pub securityhub: aws_sdk_securityhub::Client,
    pub rds: aws_sdk_rds::Client,
    pub efs: aws_sdk_efs::Client,
    pub s3: aws_sdk_s3::Client,
    pub accessanalyzer: aws_sdk_accessanalyzer::Client,
}

impl Clients {
    /// Clients for `region` from `sdk`, each call counted by `counter` when given.
    pub fn new(sdk: &SdkConfig, region: &str, counter: Option<&ApiCallCounter>) -> Self {
        let regional = sdk.to_builder().region(aws_config::Region::new(region.to_owned())).build();
        macro_rules! client {
            ($krate:ident) => {{
                let mut b = $krate::config::Builder::from(&regional);
                if let Some(c) = counter {
                    b = b.interceptor(c.clone());
                }
                $krate::Client::from_conf(b.build())
            }};
        }
        let mut s3control = aws_sdk_s3control::config::Builder::from(&regional);
        if let Some(c) = counter {
            s3control = s3control.interceptor(c.clone());
        }
        if let Some(endpoint) = sdk.endpoint_url() {
            s3control = s3control.endpoint_resolver(s3::FixedEndpoint(endpoint.to_owned()));
        }
        // An emulator's address cannot take a bucket name in front of its host: path-style there.
        let mut s3 = aws_sdk_s3::config::Builder::from(&regional).force_path_style(sdk.endpoint_url().is_some());
        if let Some(c) = counter {
            s3 = s3.interceptor(c.clone());
        }
        Self {
            account: client!(aws_sdk_account),
            cloudtrail: client!(aws_sdk_cloudtrail),
            config: client!(aws_sdk_config),
            ec2: client!(aws_sdk_ec2),
            guardduty: client!(aws_sdk_guardduty),
            iam: client!(aws_sdk_iam),
            kms: client!(aws_sdk_kms),
            s3control: aws_sdk_s3control::Client::from_conf(s3control.build()),
            logs: client!(aws_sdk_cloudwatchlogs),
            cloudwatch: client!(aws_sdk_cloudwatch),
            sns: client!(aws_sdk_sns),
            securityhub: client!(aws_sdk_securityhub),
            rds: client!(aws_sdk_rds),
            efs: client!(aws_sdk_efs),
            s3: aws_sdk_s3::Client::from_conf(s3.build()),
            accessanalyzer: client!(aws_sdk_accessanalyzer),
        }
    }
}

/// Reads posture facts in one account and region.
#[derive(Debug, Clone)]
pub struct AwsReader {
    account_id: AccountId,
    region: String,
    clients: Clients,
    /// CloudTrail clients for the home regions of shadow trails, made on demand from `base`.
    home_cloudtrail: Arc<Mutex<HashMap<String, aws_sdk_cloudtrail::Client>>>,
    /// Clients of other regions (a trail's log group, an alarm's topic), made on demand from `base`.
    regional: Arc<Mutex<HashMap<String, Clients>>>,
    base: Option<(SdkConfig, Option<ApiCallCounter>)>,
    limit: Arc<Semaphore>,
    concurrency: usize,
    /// KMS key descriptions kept between full scans.
    kms_described: kms::KeptDescriptions,
}

impl AwsReader {
    /// Clients for `region` from `sdk` (whose credentials reach `account_id`), with at most
    /// `concurrency` calls in flight, each counted by `counter` when given.
    pub fn new(
        sdk: &SdkConfig,
        account_id: &AccountId,
        region: &str,
        concurrency: usize,
        counter: Option<ApiCallCounter>,
    ) -> Self {
        let mut reader =
            Self::from_clients(account_id, region, Clients::new(sdk, region, counter.as_ref()), concurrency);
        reader.base = Some((sdk.clone(), counter));
        reader
    }

    /// A reader over given clients (tests use mocked ones).
    pub fn from_clients(account_id: &AccountId, region: &str, clients: Clients, concurrency: usize) -> Self {
        Self {
            account_id: account_id.clone(),
            region: region.to_owned(),
            clients,
            home_cloudtrail: Arc::default(),
            regional: Arc::default(),
            base: None,
            limit: Arc::new(Semaphore::new(concurrency.max(1))),
            concurrency: concurrency.max(1),
            kms_described: kms::KeptDescriptions::new(kms::KMS_DESCRIPTION_MAX_AGE),
        }
    }

    /// Describe a KMS key again once its kept description is `max_age` old (default an hour).
    pub fn with_kms_description_max_age(mut self, max_age: std::time::Duration) -> Self {
        self.kms_described = kms::KeptDescriptions::new(max_age);
        self
    }

    /// Read shadow trails whose home is `region` through `client` (tests; otherwise made on demand).
    pub fn with_cloudtrail_in(self, region: &str, client: aws_sdk_cloudtrail::Client) -> Self {
        if let Ok(mut clients) = self.home_cloudtrail.lock() {
            clients.insert(region.to_owned(), client);
        }
        self
    }

    /// The CloudTrail client for `region`: a shadow trail's status and selectors are read in its
    /// home region (CloudTrail answers `GetEventSelectors` only there).
    fn cloudtrail_in(&self, region: &str) -> aws_sdk_cloudtrail::Client {
        if region.is_empty() || region == self.region {
            return self.clients.cloudtrail.clone();
        }
        let Ok(mut clients) = self.home_cloudtrail.lock() else { return self.clients.cloudtrail.clone() };
        if let Some(c) = clients.get(region) {
            return c.clone();
        }
        let Some((sdk, counter)) = &self.base else { return self.clients.cloudtrail.clone() };
        let client = Clients::new(sdk, region, counter.as_ref()).cloudtrail;
        clients.insert(region.to_owned(), client.clone());
        client
    }

    /// The clients of `region` (this reader's own, or made on demand; without a base SDK
    /// configuration, as in tests, this reader's own).
    fn clients_in(&self, region: &str) -> Clients {
        if region.is_empty() || region == self.region {
            return self.clients.clone();
        }
        let Some((sdk, counter)) = &self.base else { return self.clients.clone() };
        let Ok(mut clients) = self.regional.lock() else { return self.clients.clone() };
        clients.entry(region.to_owned()).or_insert_with(|| Clients::new(sdk, region, counter.as_ref())).clone()
    }

    async fn permit(&self) -> tokio::sync::SemaphorePermit<'_> {
        self.limit.acquire().await.expect("the semaphore is never closed")
    }
}

#[async_trait]
impl FactReader for AwsReader {
    fn account_id(&self) -> &AccountId {
        &self.account_id
    }
    fn region(&self) -> &str {
        &self.region
    }
    async fn trails(&self) -> Result<(Vec<TrailFacts>, Vec<Unreadable>), CollectError> {
        self.read_trails().await
    }
    async fn guardduty_detectors(&self) -> Result<Vec<(String, String)>, CollectError> {
        self.read_guardduty_detectors().await
    }
    async fn guardduty_findings(&self, detector_id: &str) -> Result<FindingCounts, CollectError> {
        self.read_guardduty_findings(detector_id).await
    }
    async fn credential_report(&self) -> Result<CredentialReport, CollectError> {
        self.read_credential_report().await
    }
    async fn iam_user(&self, user: &str) -> Result<Option<IamUserFacts>, CollectError> {
        self.read_iam_user(user).await
    }
    async fn root_summary(&self) -> Result<(i64, i64), CollectError> {
        self.read_root_summary().await
    }
    async fn virtual_mfa_devices(&self) -> Result<Vec<VirtualMfaDevice>, CollectError> {
        self.read_virtual_mfa_devices().await
    }
    async fn authorization_details(&self) -> Result<AuthorizationFacts, CollectError> {
        self.read_authorization_details().await
    }
    async fn password_policy(&self) -> Result<Option<PasswordPolicyFacts>, CollectError> {
        self.read_password_policy().await
    }
    async fn account_public_access_block(&self) -> Result<Option<PublicAccessBlockFacts>, CollectError> {
        self.read_account_public_access_block().await
    }
    async fn ebs_encryption_by_default(&self) -> Result<bool, CollectError> {
        self.read_ebs_encryption_by_default().await
    }
    async fn config_recorders(&self) -> Result<Vec<ConfigRecorderFacts>, CollectError> {
        self.read_config_recorders().await
    }
    async fn instances(&self) -> Result<Vec<InstanceFacts>, CollectError> {
        self.read_instances().await
    }
    async fn network_acls(&self) -> Result<Vec<NaclFacts>, CollectError> {
        self.read_network_acls().await
    }
    async fn security_groups(&self) -> Result<Vec<SecurityGroupFacts>, CollectError> {
        self.read_security_groups().await
    }
    async fn vpcs_and_flow_logs(&self) -> Result<(Vec<VpcFacts>, Vec<FlowLogFacts>), CollectError> {
        self.read_vpcs_and_flow_logs().await
    }
    async fn kms_keys(&self) -> Result<(Vec<KmsKeyFacts>, Vec<Unreadable>), CollectError> {
        self.read_kms_keys().await
    }
    fn forget_kms_key(&self, key_id: &str) {
        self.kms_described.forget(key_id);
    }
    async fn kms_key(&self, key_id: &str) -> Result<Option<KmsKeyFacts>, CollectError> {
        self.read_kms_key(key_id).await
    }
    async fn monitoring(&self, log_group_arns: &BTreeSet<String>) -> Result<MonitoringFacts, CollectError> {
        self.read_monitoring(log_group_arns).await
    }
    async fn security_hub(&self) -> Result<Option<String>, CollectError> {
        self.read_security_hub().await
    }
    async fn security_contact(&self) -> Result<bool, CollectError> {
        self.read_security_contact().await
    }
    async fn db_instances(&self) -> Result<Vec<DbInstanceFacts>, CollectError> {
        self.read_db_instances().await
    }
    async fn file_systems(&self) -> Result<Vec<FileSystemFacts>, CollectError> {
        self.read_file_systems().await
    }
    async fn buckets(&self, wanted: BucketReadsWanted) -> Result<BucketFacts, CollectError> {
        self.read_buckets(wanted).await
    }
    async fn trail_bucket_logging(&self, buckets: &BTreeSet<String>) -> Result<BucketReads<bool>, CollectError> {
        self.read_trail_bucket_logging(buckets).await
    }
    async fn server_certificates(&self) -> Result<(Vec<ServerCertificateFacts>, Vec<Unreadable>), CollectError> {
        self.read_server_certificates().await
    }
    async fn access_analyzers(&self) -> Result<Vec<AnalyzerFacts>, CollectError> {
        self.read_access_analyzers().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_runtime_api::box_error::BoxError;
    use aws_smithy_runtime_api::client::interceptors::Intercept;
    use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
    use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
    use aws_smithy_types::config_bag::ConfigBag;

    /// Records the URI a request would go to, then stops it (nothing leaves the process).
    #[derive(Debug, Clone, Default)]
    struct Destination(Arc<Mutex<String>>);

    impl Intercept for Destination {
        fn name(&self) -> &'static str {
            "Destination"
        }

        fn read_before_transmit(
            &self,
            context: &BeforeTransmitInterceptorContextRef<'_>,
            _runtime_components: &RuntimeComponents,
            _cfg: &mut ConfigBag,
        ) -> Result<(), BoxError> {
            if let Ok(mut uri) = self.0.lock() {
                *uri = context.request().uri().to_owned();
            }
            Err("stopped by the test".into())
        }
    }

    /// S3 Control goes to the configured endpoint as it is (an emulator cannot take the account id
    /// in front of its host); without one, to AWS's account endpoint, as the SDK's rules say.
    #[tokio::test]
    async fn s3_control_goes_to_the_configured_endpoint_only_when_one_is_configured() {
        let credentials = aws_credential_types::Credentials::new("id", "secret", None, None, "test");
        for (endpoint, expected) in [
            (Some("http://127.0.0.1:4566"), "http://127.0.0.1:4566/v20180820/configuration/publicAccessBlock"),
            (None, "https://123456789012.s3-control.eu-west-1.amazonaws.com/v20180820/configuration/publicAccessBlock"),
        ] {
            let mut sdk = SdkConfig::builder()
                .behavior_version(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new("us-east-1"))
                .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(
                    credentials.clone(),
                ));
            if let Some(e) = endpoint {
                sdk = sdk.endpoint_url(e);
            }
            let clients = Clients::new(&sdk.build(), "eu-west-1", None);
            let destination = Destination::default();
            let s3control = aws_sdk_s3control::Client::from_conf(
                clients.s3control.config().to_builder().interceptor(destination.clone()).build(),
            );
            let sent = s3control.get_public_access_block().account_id("123456789012").send().await;
            assert!(sent.is_err(), "the test interceptor stops every request");
            assert_eq!(destination.0.lock().unwrap().as_str(), expected, "endpoint {endpoint:?}");
        }
    }
}
