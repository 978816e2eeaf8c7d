//! Account fixtures for posture tests and the posture benchmark, created through the real APIs.
//!
//! [`healthy_account_in`] makes every control of the catalog pass in moto (except IAM.9 and IAM.6:
//! moto's root user has no MFA device and none can be added; S3.20: moto's `GetBucketVersioning`
//! answer does not parse in the SDK; IAM.28: moto has no IAM Access Analyzer), which takes more than on AWS: moto's
//! default security groups allow all outbound traffic (EC2.2), its default VPCs have no flow log
//! (EC2.6), EBS default encryption, AWS Config, S3 Block Public Access and the password policy start
//! off, and there is no support role (IAM.18).

use aws_config::{Region, SdkConfig};
use futures::StreamExt;

/// The account [`healthy_account_in`] works in (moto's default).
const ACCOUNT: &str = crate::ACCOUNT;
/// The role Config.1 wants the recorder to use.
const CONFIG_ROLE: &str = "role/aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig";

/// A healthy account in us-east-1 only.
pub async fn healthy_account(sdk: &SdkConfig) -> HealthyAccount {
    healthy_account_in(sdk, &["us-east-1"]).await
}

/// A healthy account, `regions[0]` being the home region:
/// - account-wide: a password policy (14 characters, 24 remembered), S3 Block Public Access on,
///   user `alice` with an active access key, user `dana` with a console password and MFA, a
///   security contact (Account.1), a server certificate valid until 2099 (IAM.26);
/// - in the home region: a logging multi-region trail with log file validation and a KMS key, a
///   rotating KMS key, S3 object-level data events of every bucket on that trail, and the CIS
///   4.1-4.15 chain from it ([`monitoring_chain`]);
/// - in every region: an enabled GuardDuty detector, EBS default encryption, an AWS Config recorder
///   (all resources, global ones in the home region only, the service-linked role), a flow log on
///   every VPC, default security groups without rules, Security Hub (CIS 4.16), an RDS DB instance
///   that is private, encrypted and upgrades minor versions (RDS.2, RDS.3, RDS.13), an encrypted EFS
///   file system (EFS.1).
pub async fn healthy_account_in(sdk: &SdkConfig, regions: &[&str]) -> HealthyAccount {
    let home = regions.first().copied().unwrap_or("us-east-1");
    let home_sdk = regional(sdk, home);
    let bucket = "portcullis-posture-logs".to_owned();
    bucket_for(&home_sdk, &bucket).await;
    rotate_existing_keys(&home_sdk).await;
    let trail = logging_trail(&home_sdk, "portcullis-test-trail").await;
    log_s3_object_events(&home_sdk, &trail).await;
    let monitoring = monitoring_chain(&home_sdk, &trail).await;
    let kms = aws_sdk_kms::Client::new(&home_sdk);
    let key = kms.create_key().send().await.unwrap().key_metadata.unwrap().key_id;
    kms.enable_key_rotation().key_id(&key).send().await.unwrap();

    let iam = aws_sdk_iam::Client::new(&home_sdk);
    iam.update_account_password_policy()
        .minimum_password_length(14)
        .password_reuse_prevention(24)
        .send()
        .await
        .unwrap();
    iam.create_user().user_name("alice").send().await.unwrap();
    iam.create_access_key().user_name("alice").send().await.unwrap();
    console_user(&home_sdk, "dana", true).await;
    block_public_access(&home_sdk, true).await;
    support_role(&home_sdk, "aws-support").await;
    server_certificate(&home_sdk, "valid-2099", VALID_2099_PEM).await;
    aws_sdk_account::Client::new(&home_sdk)
        .put_alternate_contact()
        .alternate_contact_type(aws_sdk_account::types::AlternateContactType::Security)
        .email_address("security@example.com")
        .name("Security team")
        .phone_number("+1-555-0100")
        .title("Security")
        .send()
        .await
        .unwrap();

    let mut detector = String::new();
    for region in regions {
        let r = regional(sdk, region);
        let id = enable_guardduty(&r).await;
        if *region == home {
            detector = id;
        }
        aws_sdk_ec2::Client::new(&r).enable_ebs_encryption_by_default().send().await.unwrap();
        config_recorder(&r, &bucket, *region == home).await;
        for vpc in vpcs(&r).await {
            flow_log(&r, &vpc, &bucket).await;
        }
        close_default_security_groups(&r).await;
        deny_admin_ports_in_network_acls(&r).await;
        aws_sdk_securityhub::Client::new(&r).enable_security_hub().send().await.unwrap();
        db_instance(&r, "portcullis-db", DbSettings::HEALTHY).await;
        file_system(&r, "portcullis-fs", true).await;
    }
    HealthyAccount { trail, detector, key, bucket, monitoring }
}

/// A CloudWatch client (mocked: see [`monitoring_chain`]) whose `DescribeAlarms` lists one alarm per
/// metric filter of `chain` but those in `without`, each notifying the chain's topic; `disabled`
/// alarms have their actions off.
pub fn alarms_on(chain: &MonitoringChain, without: &[&str], disabled: &[&str]) -> aws_sdk_cloudwatch::Client {
    use aws_sdk_cloudwatch::operation::describe_alarms::DescribeAlarmsOutput;
    use aws_sdk_cloudwatch::types::MetricAlarm;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};
    let alarms: Vec<MetricAlarm> = chain
        .filters
        .iter()
        .filter(|f| !without.contains(&f.as_str()))
        .map(|f| {
            MetricAlarm::builder()
                .alarm_name(f)
                .namespace("CISBenchmark")
                .metric_name(f)
                .actions_enabled(!disabled.contains(&f.as_str()))
                .alarm_actions(&chain.topic)
                .build()
        })
        .collect();
    let rule = mock!(aws_sdk_cloudwatch::Client::describe_alarms)
        .then_output(move || DescribeAlarmsOutput::builder().set_metric_alarms(Some(alarms.clone())).build());
    mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&rule])
}

/// Every management event and every S3 object-level data event of every bucket, read and write, on
/// `trail` (S3.22, S3.23), in one basic selector.
pub async fn log_s3_object_events(sdk: &SdkConfig, trail: &str) {
    use aws_sdk_cloudtrail::types::{DataResource, EventSelector, ReadWriteType};
    aws_sdk_cloudtrail::Client::new(sdk)
        .put_event_selectors()
        .trail_name(trail)
        .event_selectors(
            EventSelector::builder()
                .read_write_type(ReadWriteType::All)
                .include_management_events(true)
                .data_resources(DataResource::builder().r#type("AWS::S3::Object").values("arn:aws:s3").build())
                .build(),
        )
        .send()
        .await
        .unwrap();
}

/// What [`monitoring_chain`] created.
#[derive(Debug, Clone)]
pub struct MonitoringChain {
    pub log_group: String,
    /// The metric filter of each CIS 4.x class, in benchmark order, named `cis-4.<n>`.
    pub filters: Vec<String>,
    pub topic: String,
    pub subscription: String,
}

/// The CIS 4.1-4.15 chain for `trail`, but its alarms: a CloudWatch Logs group the trail delivers
/// to, one metric filter per class with the benchmark's pattern (named `cis-4.<n>`, publishing
/// `CISBenchmark/cis-4.<n>`), and an SNS topic an SQS queue subscribes to (confirmed at once). moto
/// 5.2.5 does not speak the Smithy RPC v2 CBOR protocol of `aws-sdk-cloudwatch` (it answers 404),
/// so alarms cannot be put or read there: tests give them with a mocked CloudWatch client
/// ([`alarms_on`]).
pub async fn monitoring_chain(sdk: &SdkConfig, trail: &str) -> MonitoringChain {
    use portcullis_domain::posture::controls::MONITORING_CLASSES;
    let region = sdk.region().map(|r| r.to_string()).unwrap_or_else(|| "us-east-1".into());
    let log_group = "portcullis-trail-events".to_owned();
    let logs = aws_sdk_cloudwatchlogs::Client::new(sdk);
    logs.create_log_group().log_group_name(&log_group).send().await.unwrap();
    aws_sdk_cloudtrail::Client::new(sdk)
        .update_trail()
        .name(trail)
        .cloud_watch_logs_log_group_arn(format!("arn:aws:logs:{region}:{ACCOUNT}:log-group:{log_group}:*"))
        .cloud_watch_logs_role_arn(format!("arn:aws:iam::{ACCOUNT}:role/cloudtrail-to-logs"))
        .send()
        .await
        .unwrap();
    let sns = aws_sdk_sns::Client::new(sdk);
    let topic = sns.create_topic().name("security-alarms").send().await.unwrap().topic_arn.unwrap();
    let queue = aws_sdk_sqs::Client::new(sdk).create_queue().queue_name("security-alarms").send().await.unwrap();
    let queue_arn = format!("arn:aws:sqs:{region}:{ACCOUNT}:security-alarms");
    assert!(queue.queue_url.is_some());
    let subscription = sns
        .subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(queue_arn)
        .send()
        .await
        .unwrap()
        .subscription_arn
        .unwrap();
    let mut filters = Vec::new();
    for class in MONITORING_CLASSES {
        let name = format!("cis-{}", class.control.as_str().trim_start_matches("CIS3-"));
        logs.put_metric_filter()
            .log_group_name(&log_group)
            .filter_name(&name)
            .filter_pattern(class.pattern)
            .metric_transformations(
                aws_sdk_cloudwatchlogs::types::MetricTransformation::builder()
                    .metric_namespace("CISBenchmark")
                    .metric_name(&name)
                    .metric_value("1")
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        filters.push(name);
    }
    MonitoringChain { log_group, filters, topic, subscription }
}

/// What [`healthy_account_in`] created.
#[derive(Debug, Clone)]
pub struct HealthyAccount {
    pub trail: String,
    pub detector: String,
    pub key: String,
    /// The bucket trails, flow logs and Config deliver to.
    pub bucket: String,
    /// The CIS 4.1-4.15 chain from the trail.
    pub monitoring: MonitoringChain,
}

/// `sdk` in `region`.
/// Deny TCP 22 and 3389 from 0.0.0.0/0 in every network ACL of the region with entries numbered
/// before moto's (and AWS's) default allow-all rule 100, which they shadow (EC2.21).
pub async fn deny_admin_ports_in_network_acls(sdk: &SdkConfig) {
    use aws_sdk_ec2::types::{PortRange, RuleAction};
    let ec2 = aws_sdk_ec2::Client::new(sdk);
    let acls = ec2.describe_network_acls().send().await.unwrap();
    for acl in acls.network_acls() {
        let id = acl.network_acl_id().unwrap();
        for (rule_number, port) in [(10, 22), (11, 3389)] {
            ec2.create_network_acl_entry()
                .network_acl_id(id)
                .rule_number(rule_number)
                .protocol("6")
                .rule_action(RuleAction::Deny)
                .egress(false)
                .cidr_block("0.0.0.0/0")
                .port_range(PortRange::builder().from(port).to(port).build())
                .send()
                .await
                .unwrap();
        }
    }
}

/// A role `name` with the AWS managed policy AWSSupportAccess (IAM.18).
pub async fn support_role(sdk: &SdkConfig, name: &str) {
    let iam = aws_sdk_iam::Client::new(sdk);
    let trust = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "sts:AssumeRole"}]});
    iam.create_role().role_name(name).assume_role_policy_document(trust.to_string()).send().await.unwrap();
    iam.attach_role_policy()
        .role_name(name)
        .policy_arn("arn:aws:iam::aws:policy/AWSSupportAccess")
        .send()
        .await
        .unwrap();
}

pub fn regional(sdk: &SdkConfig, region: &str) -> SdkConfig {
    sdk.to_builder().region(Region::new(region.to_owned())).build()
}

/// Turn rotation on for every key already there. moto creates the DynamoDB table's encryption key
/// as a *customer* managed key (on AWS it is the AWS managed `aws/dynamodb`), which would otherwise
/// fail KMS.4 in every test account.
pub async fn rotate_existing_keys(sdk: &SdkConfig) {
    let kms = aws_sdk_kms::Client::new(sdk);
    for key in kms.list_keys().send().await.unwrap().keys.unwrap_or_default() {
        let id = key.key_id.unwrap();
        kms.enable_key_rotation().key_id(&id).send().await.unwrap();
    }
}

/// A healthy multi-region trail (logging, log file validation, encrypted with a new rotating KMS
/// key) into a new secure bucket with server access logging (CloudTrail.7). Returns its ARN.
pub async fn logging_trail(sdk: &SdkConfig, name: &str) -> String {
    let bucket = format!("{name}-logs");
    bucket_for(sdk, &bucket).await;
    access_logging(sdk, &bucket).await;
    let kms = aws_sdk_kms::Client::new(sdk);
    let key = kms.create_key().send().await.unwrap().key_metadata.unwrap();
    kms.enable_key_rotation().key_id(&key.key_id).send().await.unwrap();
    let ct = aws_sdk_cloudtrail::Client::new(sdk);
    let arn = ct
        .create_trail()
        .name(name)
        .s3_bucket_name(&bucket)
        .is_multi_region_trail(true)
        .enable_log_file_validation(true)
        .kms_key_id(key.arn.unwrap_or(key.key_id))
        .send()
        .await
        .unwrap()
        .trail_arn
        .unwrap();
    ct.start_logging().name(name).send().await.unwrap();
    arn
}

/// An S3 client for the emulator (path-style: its address cannot take a bucket name in front).
pub fn s3(sdk: &SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(sdk).force_path_style(true).build())
}

/// The bucket policy statement that denies every request without TLS (S3.5). `Principal` is
/// `{"AWS": "*"}`: moto's check of a logging target's policy fails with a 500 on a bare `"*"`.
pub fn tls_only_statement(bucket: &str) -> serde_json::Value {
    serde_json::json!({"Sid": "TlsOnly", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "s3:*",
        "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}}})
}

/// A new bucket in `sdk`'s region with nothing set (an existing one is fine).
pub async fn bare_bucket(sdk: &SdkConfig, bucket: &str) {
    use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
    let mut create = s3(sdk).create_bucket().bucket(bucket);
    let region = sdk.region().map(|r| r.to_string()).unwrap_or_default();
    if region != "us-east-1" {
        let location = BucketLocationConstraint::from(region.as_str());
        create = create
            .create_bucket_configuration(CreateBucketConfiguration::builder().location_constraint(location).build());
    }
    if let Err(e) = create.send().await {
        let owned = e.as_service_error().is_some_and(|s| s.is_bucket_already_owned_by_you());
        assert!(owned, "bucket {bucket}: {e:?}");
    }
}

/// A bucket that denies requests without TLS (S3.5, with `statements` besides) and has all four
/// bucket-level Block Public Access settings on (S3.8). No MFA delete (S3.20): moto drops it.
pub async fn secure_bucket(sdk: &SdkConfig, bucket: &str, statements: Vec<serde_json::Value>) {
    use aws_sdk_s3::types::PublicAccessBlockConfiguration;
    bare_bucket(sdk, bucket).await;
    let mut all = vec![tls_only_statement(bucket)];
    all.extend(statements);
    let policy = serde_json::json!({"Version": "2012-10-17", "Statement": all});
    let s3 = s3(sdk);
    s3.put_bucket_policy().bucket(bucket).policy(policy.to_string()).send().await.unwrap();
    let block = PublicAccessBlockConfiguration::builder()
        .block_public_acls(true)
        .ignore_public_acls(true)
        .block_public_policy(true)
        .restrict_public_buckets(true)
        .build();
    s3.put_public_access_block().bucket(bucket).public_access_block_configuration(block).send().await.unwrap();
}

/// CloudTrail, Config and flow logs need a bucket and moto checks that it exists: a secure one
/// ([`secure_bucket`]).
pub async fn bucket_for(sdk: &SdkConfig, bucket: &str) {
    secure_bucket(sdk, bucket, Vec::new()).await;
}

/// Server access logging of `bucket` into `<bucket>-access` (a secure bucket the S3 logging service
/// may write to), as CloudTrail.7 wants of a trail's bucket.
pub async fn access_logging(sdk: &SdkConfig, bucket: &str) {
    use aws_sdk_s3::types::{BucketLoggingStatus, LoggingEnabled};
    let target = format!("{bucket}-access");
    let delivery = serde_json::json!({"Sid": "S3ServerAccessLogs", "Effect": "Allow",
        "Principal": {"Service": "logging.s3.amazonaws.com"}, "Action": ["s3:PutObject"],
        "Resource": format!("arn:aws:s3:::{target}/*")});
    secure_bucket(sdk, &target, vec![delivery]).await;
    let logging = LoggingEnabled::builder().target_bucket(&target).target_prefix("").build().unwrap();
    s3(sdk)
        .put_bucket_logging()
        .bucket(bucket)
        .bucket_logging_status(BucketLoggingStatus::builder().logging_enabled(logging).build())
        .send()
        .await
        .unwrap();
}

/// A self-signed certificate valid until 2099-01-01 (IAM.26 passes). moto stamps every server
/// certificate's metadata with a 2012 expiry; IAM.26 reads the body, so this one passes there.
pub const VALID_2099_PEM: &str = include_str!("../testdata/valid-2099.pem");
/// A self-signed certificate that expired on 2021-01-01 (IAM.26 fails).
pub const EXPIRED_2021_PEM: &str = include_str!("../testdata/expired-2021.pem");

/// A server certificate `name` stored in IAM, with `body` (moto does not check the private key).
/// Returns its ARN.
pub async fn server_certificate(sdk: &SdkConfig, name: &str, body: &str) -> String {
    let uploaded = aws_sdk_iam::Client::new(sdk)
        .upload_server_certificate()
        .server_certificate_name(name)
        .certificate_body(body)
        .private_key("(not checked by the emulator)")
        .send()
        .await
        .unwrap();
    uploaded.server_certificate_metadata.unwrap().arn
}

/// What [`db_instance`] sets.
#[derive(Debug, Clone, Copy)]
pub struct DbSettings {
    pub public: bool,
    pub encrypted: bool,
    pub minor_upgrades: bool,
}

impl DbSettings {
    /// Private, encrypted, upgrading minor versions: RDS.2, RDS.3 and RDS.13 pass.
    pub const HEALTHY: DbSettings = DbSettings { public: false, encrypted: true, minor_upgrades: true };
}

/// An RDS DB instance `id` (PostgreSQL, the smallest class). Returns its ARN.
pub async fn db_instance(sdk: &SdkConfig, id: &str, settings: DbSettings) -> String {
    let created = aws_sdk_rds::Client::new(sdk)
        .create_db_instance()
        .db_instance_identifier(id)
        .engine("postgres")
        .db_instance_class("db.t3.micro")
        .allocated_storage(20)
        .master_username("portcullis")
        .master_user_password("Correct-Horse-Battery-9")
        .publicly_accessible(settings.public)
        .storage_encrypted(settings.encrypted)
        .auto_minor_version_upgrade(settings.minor_upgrades)
        .send()
        .await
        .unwrap();
    created.db_instance.unwrap().db_instance_arn.unwrap()
}

/// An EFS file system (created with `token`), encrypted at rest or not. Returns its ARN.
pub async fn file_system(sdk: &SdkConfig, token: &str, encrypted: bool) -> String {
    let created =
        aws_sdk_efs::Client::new(sdk).create_file_system().creation_token(token).encrypted(encrypted).send().await;
    created.unwrap().file_system_arn.unwrap()
}

/// An enabled GuardDuty detector.
pub async fn enable_guardduty(sdk: &SdkConfig) -> String {
    aws_sdk_guardduty::Client::new(sdk).create_detector().enable(true).send().await.unwrap().detector_id.unwrap()
}

/// A user with a console password, and an MFA device when `mfa`.
pub async fn console_user(sdk: &SdkConfig, user: &str, mfa: bool) {
    let iam = aws_sdk_iam::Client::new(sdk);
    iam.create_user().user_name(user).send().await.unwrap();
    iam.create_login_profile().user_name(user).password("Correct-Horse-Battery-9").send().await.unwrap();
    if mfa {
        let device = iam.create_virtual_mfa_device().virtual_mfa_device_name(user).send().await.unwrap();
        let serial = device.virtual_mfa_device.unwrap().serial_number;
        // moto's virtual MFA devices take any codes.
        iam.enable_mfa_device()
            .user_name(user)
            .serial_number(serial)
            .authentication_code1("123456")
            .authentication_code2("654321")
            .send()
            .await
            .unwrap();
    }
}

/// S3 Block Public Access for the account: all four settings `on`, or `RestrictPublicBuckets` off.
pub async fn block_public_access(sdk: &SdkConfig, all: bool) {
    use aws_sdk_s3control::types::PublicAccessBlockConfiguration;
    // The posture worker's own clients: S3 Control needs a fixed endpoint against an emulator.
    let s3control = crate::portcullis_posture::collect::Clients::new(sdk, "us-east-1", None).s3control;
    s3control
        .put_public_access_block()
        .account_id(ACCOUNT)
        .public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .ignore_public_acls(true)
                .block_public_policy(true)
                .restrict_public_buckets(all)
                .build(),
        )
        .send()
        .await
        .unwrap();
}

/// An AWS Config recorder for every resource (global ones when `global`) with the service-linked
/// role, a delivery channel into `bucket`, recording.
pub async fn config_recorder(sdk: &SdkConfig, bucket: &str, global: bool) {
    use aws_sdk_config::types::{ConfigurationRecorder, DeliveryChannel, RecordingGroup};
    let config = aws_sdk_config::Client::new(sdk);
    config
        .put_configuration_recorder()
        .configuration_recorder(
            ConfigurationRecorder::builder()
                .name("default")
                .role_arn(format!("arn:aws:iam::{ACCOUNT}:{CONFIG_ROLE}"))
                .recording_group(
                    RecordingGroup::builder().all_supported(true).include_global_resource_types(global).build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    config
        .put_delivery_channel()
        .delivery_channel(DeliveryChannel::builder().name("default").s3_bucket_name(bucket).build())
        .send()
        .await
        .unwrap();
    config.start_configuration_recorder().configuration_recorder_name("default").send().await.unwrap();
}

/// Every VPC id of the region.
pub async fn vpcs(sdk: &SdkConfig) -> Vec<String> {
    let out = aws_sdk_ec2::Client::new(sdk).describe_vpcs().send().await.unwrap();
    out.vpcs().iter().filter_map(|v| v.vpc_id().map(str::to_owned)).collect()
}

/// A flow log of rejected traffic on `vpc`, to `bucket`.
pub async fn flow_log(sdk: &SdkConfig, vpc: &str, bucket: &str) {
    use aws_sdk_ec2::types::{FlowLogsResourceType, LogDestinationType, TrafficType};
    let out = aws_sdk_ec2::Client::new(sdk)
        .create_flow_logs()
        .resource_type(FlowLogsResourceType::Vpc)
        .resource_ids(vpc)
        .traffic_type(TrafficType::Reject)
        .log_destination_type(LogDestinationType::S3)
        .log_destination(format!("arn:aws:s3:::{bucket}"))
        .send()
        .await
        .unwrap();
    assert!(out.unsuccessful().is_empty(), "flow log on {vpc}: {:?}", out.unsuccessful());
}

/// Revoke every rule of every `default` security group of the region (moto's allow all egress).
pub async fn close_default_security_groups(sdk: &SdkConfig) {
    use aws_sdk_ec2::types::Filter;
    let ec2 = aws_sdk_ec2::Client::new(sdk);
    let groups = ec2
        .describe_security_groups()
        .filters(Filter::builder().name("group-name").values("default").build())
        .send()
        .await
        .unwrap();
    for g in groups.security_groups() {
        let id = g.group_id().unwrap();
        if !g.ip_permissions_egress().is_empty() {
            ec2.revoke_security_group_egress()
                .group_id(id)
                .set_ip_permissions(Some(g.ip_permissions_egress().to_vec()))
                .send()
                .await
                .unwrap();
        }
        if !g.ip_permissions().is_empty() {
            ec2.revoke_security_group_ingress()
                .group_id(id)
                .set_ip_permissions(Some(g.ip_permissions().to_vec()))
                .send()
                .await
                .unwrap();
        }
    }
}

/// The posture benchmark's account: `users` users with two active keys each (every 3rd with a
/// console password, every 10th of those without MFA), `keys` customer KMS keys of which every 10th
/// does not rotate, one logging multi-region trail and `extra_trails` single-region trails (every
/// other one without log file validation), `security_groups` security groups in `vpcs` new VPCs
/// (every 10th open to 0.0.0.0/0 on SSH), a flow log on every VPC but every 5th new one, one
/// detector, `buckets` buckets (every 5th bare), `db_instances` DB instances and `file_systems` file
/// systems (every 5th failing RDS.2/.3/.13 and EFS.1), `server_certificates` server certificates
/// (every 5th expired), and the account-wide settings of a healthy account.
pub async fn benchmark_account(sdk: &SdkConfig, size: &BenchmarkSize) {
    rotate_existing_keys(sdk).await;
    let bucket = "bench-logs";
    bucket_for(sdk, bucket).await;
    // The regional trails deliver here: server access logging, as CloudTrail.7 wants.
    access_logging(sdk, bucket).await;
    let trail = logging_trail(sdk, "bench-trail").await;
    monitoring_chain(sdk, &trail).await;
    aws_sdk_securityhub::Client::new(sdk).enable_security_hub().send().await.unwrap();
    enable_guardduty(sdk).await;
    block_public_access(sdk, true).await;
    let iam = aws_sdk_iam::Client::new(sdk);
    iam.update_account_password_policy()
        .minimum_password_length(14)
        .password_reuse_prevention(24)
        .send()
        .await
        .unwrap();
    aws_sdk_ec2::Client::new(sdk).enable_ebs_encryption_by_default().send().await.unwrap();
    config_recorder(sdk, bucket, true).await;
    futures::stream::iter(0..size.buckets)
        .for_each_concurrent(8, |i| async move {
            let name = format!("bench-bucket-{i:03}");
            if i % 5 == 4 { bare_bucket(sdk, &name).await } else { secure_bucket(sdk, &name, Vec::new()).await }
        })
        .await;
    for i in 0..size.db_instances {
        let settings = if i % 5 == 4 {
            DbSettings { public: true, encrypted: false, minor_upgrades: false }
        } else {
            DbSettings::HEALTHY
        };
        db_instance(sdk, &format!("bench-db-{i:03}"), settings).await;
    }
    for i in 0..size.file_systems {
        file_system(sdk, &format!("bench-fs-{i:03}"), i % 5 != 4).await;
    }
    for i in 0..size.server_certificates {
        let body = if i % 5 == 4 { EXPIRED_2021_PEM } else { VALID_2099_PEM };
        server_certificate(sdk, &format!("bench-cert-{i:03}"), body).await;
    }
    futures::stream::iter(0..size.users)
        .for_each_concurrent(8, |i| {
            let iam = iam.clone();
            async move {
                let user = format!("user-{i:03}");
                if i % 3 == 0 {
                    console_user(sdk, &user, i % 30 != 0).await;
                } else {
                    iam.create_user().user_name(&user).send().await.unwrap();
                }
                iam.create_access_key().user_name(&user).send().await.unwrap();
                iam.create_access_key().user_name(&user).send().await.unwrap();
            }
        })
        .await;
    let kms = aws_sdk_kms::Client::new(sdk);
    futures::stream::iter(0..size.keys)
        .for_each_concurrent(8, |i| {
            let kms = kms.clone();
            async move {
                let id = kms.create_key().send().await.unwrap().key_metadata.unwrap().key_id;
                if i % 10 != 9 {
                    kms.enable_key_rotation().key_id(&id).send().await.unwrap();
                }
            }
        })
        .await;
    let ct = aws_sdk_cloudtrail::Client::new(sdk);
    for i in 0..size.extra_trails {
        let name = format!("bench-regional-{i}");
        ct.create_trail()
            .name(&name)
            .s3_bucket_name(bucket)
            .enable_log_file_validation(i % 2 == 0)
            .kms_key_id("alias/bench")
            .send()
            .await
            .unwrap();
        ct.start_logging().name(&name).send().await.unwrap();
    }
    let ec2 = aws_sdk_ec2::Client::new(sdk);
    let mut new_vpcs = Vec::new();
    for i in 0..size.vpcs {
        let vpc = ec2.create_vpc().cidr_block(format!("10.{i}.0.0/16")).send().await.unwrap().vpc.unwrap();
        new_vpcs.push(vpc.vpc_id.unwrap());
    }
    for vpc in vpcs(sdk).await {
        let skipped = new_vpcs.iter().position(|v| *v == vpc).is_some_and(|n| n % 5 == 4);
        if !skipped {
            flow_log(sdk, &vpc, bucket).await;
        }
    }
    close_default_security_groups(sdk).await;
    futures::stream::iter(0..size.security_groups)
        .for_each_concurrent(8, |i| {
            let ec2 = ec2.clone();
            let vpc = new_vpcs[i % new_vpcs.len().max(1)].clone();
            async move {
                use aws_sdk_ec2::types::{IpPermission, IpRange};
                let id = ec2
                    .create_security_group()
                    .group_name(format!("bench-{i:03}"))
                    .description("benchmark")
                    .vpc_id(vpc)
                    .send()
                    .await
                    .unwrap()
                    .group_id
                    .unwrap();
                let source = if i % 10 == 9 { "0.0.0.0/0" } else { "10.0.0.0/8" };
                ec2.authorize_security_group_ingress()
                    .group_id(id)
                    .ip_permissions(
                        IpPermission::builder()
                            .ip_protocol("tcp")
                            .from_port(22)
                            .to_port(22)
                            .ip_ranges(IpRange::builder().cidr_ip(source).build())
                            .build(),
                    )
                    .send()
                    .await
                    .unwrap();
            }
        })
        .await;
}

/// How big the benchmark's account is.
#[derive(Debug, Clone)]
pub struct BenchmarkSize {
    pub users: usize,
    pub keys: usize,
    pub extra_trails: usize,
    pub vpcs: usize,
    pub security_groups: usize,
    /// Buckets besides the trails' (every 5th bare: no policy, no Block Public Access).
    pub buckets: usize,
    /// RDS DB instances (every 5th public, unencrypted and pinned to its minor version).
    pub db_instances: usize,
    /// EFS file systems (every 5th unencrypted).
    pub file_systems: usize,
    /// IAM server certificates (every 5th expired).
    pub server_certificates: usize,
}
