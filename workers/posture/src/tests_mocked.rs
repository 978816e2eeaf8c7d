//! Paths the emulator cannot produce, with `aws-smithy-mocks`: GuardDuty finding statistics,
//! access denied and unsupported APIs (unknown, never a silent pass), and a root access key.

use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::error::ErrorMetadata;
use opentelemetry::metrics::MeterProvider;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};

use std::sync::Arc;

use portcullis_domain::posture::controls::MONITORING_CLASSES;
use portcullis_domain::posture::{ControlId, FindingCounts, Findings, ScanTarget, Scope, Status};
use portcullis_domain::{AccountId, ErrorCode};

use super::collect::{AwsReader, Clients};
use super::metrics::PostureMetrics;
use super::ports::FactReader;
use super::scan::Scanner;

const ACCOUNT: &str = "123456789012";
const REGION: &str = "eu-west-1";

fn denied() -> ErrorMetadata {
    ErrorMetadata::builder().code("AccessDeniedException").message("not authorized to perform this action").build()
}

fn account() -> AccountId {
    AccountId::parse(ACCOUNT).unwrap()
}

fn reader(cloudtrail: Vec<Rule>, guardduty: Vec<Rule>, iam: Vec<Rule>, kms: Vec<Rule>) -> Arc<dyn FactReader> {
    reader_with(Rules { cloudtrail, guardduty, iam, kms, ..Rules::default() })
}

/// Mock rules per service; a call no rule matches fails the test.
#[derive(Default)]
struct Rules {
    account: Vec<Rule>,
    cloudtrail: Vec<Rule>,
    config: Vec<Rule>,
    ec2: Vec<Rule>,
    guardduty: Vec<Rule>,
    iam: Vec<Rule>,
    kms: Vec<Rule>,
    s3control: Vec<Rule>,
    logs: Vec<Rule>,
    cloudwatch: Vec<Rule>,
    sns: Vec<Rule>,
    securityhub: Vec<Rule>,
    rds: Vec<Rule>,
    efs: Vec<Rule>,
    s3: Vec<Rule>,
    accessanalyzer: Vec<Rule>,
}

fn reader_with(r: Rules) -> Arc<dyn FactReader> {
    Arc::new(aws_reader(r))
}

fn aws_reader(r: Rules) -> AwsReader {
    AwsReader::from_clients(
        &account(),
        REGION,
        Clients {
            account: mock_client!(aws_sdk_account, RuleMode::MatchAny, r.account.iter()),
            cloudtrail: mock_client!(aws_sdk_cloudtrail, RuleMode::MatchAny, r.cloudtrail.iter()),
            config: mock_client!(aws_sdk_config, RuleMode::MatchAny, r.config.iter()),
            ec2: mock_client!(aws_sdk_ec2, RuleMode::MatchAny, r.ec2.iter()),
            guardduty: mock_client!(aws_sdk_guardduty, RuleMode::MatchAny, r.guardduty.iter()),
            iam: mock_client!(aws_sdk_iam, RuleMode::MatchAny, r.iam.iter()),
            kms: mock_client!(aws_sdk_kms, RuleMode::MatchAny, r.kms.iter()),
            s3control: mock_client!(aws_sdk_s3control, RuleMode::MatchAny, r.s3control.iter()),
            logs: mock_client!(aws_sdk_cloudwatchlogs, RuleMode::MatchAny, r.logs.iter()),
            cloudwatch: mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, r.cloudwatch.iter()),
            sns: mock_client!(aws_sdk_sns, RuleMode::MatchAny, r.sns.iter()),
            securityhub: mock_client!(aws_sdk_securityhub, RuleMode::MatchAny, r.securityhub.iter()),
            rds: mock_client!(aws_sdk_rds, RuleMode::MatchAny, r.rds.iter()),
            efs: mock_client!(aws_sdk_efs, RuleMode::MatchAny, r.efs.iter()),
            s3: mock_client!(aws_sdk_s3, RuleMode::MatchAny, r.s3.iter()),
            accessanalyzer: mock_client!(aws_sdk_accessanalyzer, RuleMode::MatchAny, r.accessanalyzer.iter()),
        },
        4,
    )
}

/// A multi-region trail homed in us-west-2 is listed here (eu-west-1) without KMS or validation;
/// its configuration is read by `GetTrail` in us-west-2, and when that is denied CloudTrail.2 and
/// CloudTrail.4 are unknown (never judged on the listing's defaults, never a silent pass).
#[tokio::test]
async fn a_shadow_trails_configuration_is_read_at_home_and_unknown_when_denied() {
    use aws_sdk_cloudtrail::operation::describe_trails::DescribeTrailsOutput;
    use aws_sdk_cloudtrail::operation::get_event_selectors::GetEventSelectorsOutput;
    use aws_sdk_cloudtrail::operation::get_trail::{GetTrailError, GetTrailOutput};
    use aws_sdk_cloudtrail::operation::get_trail_status::GetTrailStatusOutput;
    use aws_sdk_cloudtrail::types::Trail;
    const ARN: &str = "arn:aws:cloudtrail:us-west-2:123456789012:trail/west";
    let listed =
        || Trail::builder().name("west").trail_arn(ARN).home_region("us-west-2").is_multi_region_trail(true).build();
    let here = || {
        vec![
            mock!(aws_sdk_cloudtrail::Client::describe_trails)
                .then_output(move || DescribeTrailsOutput::builder().trail_list(listed()).build()),
        ]
    };
    let at_home = |get_trail: Rule| {
        let rules = [
            mock!(aws_sdk_cloudtrail::Client::get_trail_status)
                .match_requests(|r| r.name() == Some(ARN))
                .then_output(|| GetTrailStatusOutput::builder().is_logging(true).build()),
            mock!(aws_sdk_cloudtrail::Client::get_event_selectors)
                .then_output(|| GetEventSelectorsOutput::builder().build()),
            get_trail,
        ];
        mock_client!(aws_sdk_cloudtrail, RuleMode::MatchAny, rules.iter())
    };
    let controls = ScanTarget::controls([ControlId::CloudTrail1, ControlId::CloudTrail2, ControlId::CloudTrail4]);

    // Read at home: encrypted and validated there, whatever the listing says.
    let configured =
        mock!(aws_sdk_cloudtrail::Client::get_trail).match_requests(|r| r.name() == Some(ARN)).then_output(|| {
            let trail = Trail::builder()
                .name("west")
                .trail_arn(ARN)
                .home_region("us-west-2")
                .is_multi_region_trail(true)
                .log_file_validation_enabled(true)
                .kms_key_id("arn:aws:kms:us-west-2:123456789012:key/k")
                .build();
            GetTrailOutput::builder().trail(trail).build()
        });
    let reader = aws_reader(Rules { cloudtrail: here(), ..Rules::default() })
        .with_cloudtrail_in("us-west-2", at_home(configured));
    let report = Scanner::new(vec![Arc::new(reader)], 90).scan(&scope(), &controls, "test").await.unwrap();
    for (_, r) in &report.results {
        assert_eq!(r.status, Status::Pass, "{r:?}");
    }

    // Denied at home: unknown, with the reason.
    let denied_get = mock!(aws_sdk_cloudtrail::Client::get_trail).then_error(|| GetTrailError::generic(denied()));
    let reader = aws_reader(Rules { cloudtrail: here(), ..Rules::default() })
        .with_cloudtrail_in("us-west-2", at_home(denied_get));
    let report = Scanner::new(vec![Arc::new(reader)], 90).scan(&scope(), &controls, "test").await.unwrap();
    assert_eq!(report.result(ControlId::CloudTrail1).unwrap().status, Status::Pass);
    for c in [ControlId::CloudTrail2, ControlId::CloudTrail4] {
        let r = report.result(c).unwrap();
        assert_eq!((r.status, r.error_code), (Status::Unknown, Some(ErrorCode::AccessDenied)), "{r:?}");
        assert!(r.reason.as_deref().unwrap().contains("cloudtrail:GetTrail"), "{r:?}");
    }
}

fn scope() -> Scope {
    Scope { account_id: account(), region: REGION.into() }
}

fn enabled_detector() -> Vec<Rule> {
    use aws_sdk_guardduty::operation::get_detector::GetDetectorOutput;
    use aws_sdk_guardduty::operation::list_detectors::ListDetectorsOutput;
    use aws_sdk_guardduty::types::DetectorStatus;
    vec![
        mock!(aws_sdk_guardduty::Client::list_detectors)
            .then_output(|| ListDetectorsOutput::builder().detector_ids("d-1").build()),
        mock!(aws_sdk_guardduty::Client::get_detector)
            .then_output(|| GetDetectorOutput::builder().status(DetectorStatus::Enabled).build()),
    ]
}

/// Gauge values by (name, attribute subset).
fn gauge(
    provider: &SdkMeterProvider,
    exporter: &InMemoryMetricExporter,
    name: &str,
    with: &[(&str, &str)],
) -> Vec<i64> {
    exporter.reset();
    provider.force_flush().unwrap();
    let mut out = Vec::new();
    for rm in exporter.get_finished_metrics().unwrap() {
        for sm in rm.scope_metrics() {
            for m in sm.metrics().filter(|m| m.name() == name) {
                if let AggregatedMetrics::I64(MetricData::Gauge(g)) = m.data() {
                    for p in g.data_points() {
                        let matches = with
                            .iter()
                            .all(|(k, v)| p.attributes().any(|kv| kv.key.as_str() == *k && kv.value.as_str() == *v));
                        if matches {
                            out.push(p.value());
                        }
                    }
                }
            }
        }
    }
    out
}

fn probe() -> (SdkMeterProvider, InMemoryMetricExporter, PostureMetrics) {
    let exporter = InMemoryMetricExporter::default();
    let provider = SdkMeterProvider::builder().with_reader(PeriodicReader::builder(exporter.clone()).build()).build();
    let metrics = PostureMetrics::new(&provider.meter("test"));
    (provider, exporter, metrics)
}

#[tokio::test]
async fn guardduty_findings_statistics_are_banded_and_exported() {
    use aws_sdk_guardduty::operation::get_findings_statistics::GetFindingsStatisticsOutput;
    use aws_sdk_guardduty::types::{FindingStatistics, SeverityStatistics};
    let mut gd = enabled_detector();
    gd.push(
        mock!(aws_sdk_guardduty::Client::get_findings_statistics)
            .match_requests(|r| {
                let criteria = r.finding_criteria().map(|c| format!("{c:?}")).unwrap_or_default();
                criteria.contains("service.archived") && criteria.contains("severity")
            })
            .then_output(|| {
                let sev = |s: f64, n: i32| SeverityStatistics::builder().severity(s).total_findings(n).build();
                GetFindingsStatisticsOutput::builder()
                    .finding_statistics(
                        FindingStatistics::builder()
                            .grouped_by_severity(sev(8.0, 3))
                            .grouped_by_severity(sev(7.5, 1))
                            .grouped_by_severity(sev(9.0, 2))
                            .build(),
                    )
                    .build()
            }),
    );
    let scanner = Scanner::new(vec![reader(vec![], gd, vec![], vec![])], 90);
    let report = scanner.scan(&scope(), &ScanTarget::controls([ControlId::GuardDuty1]), "test").await.unwrap();
    assert_eq!(report.result(ControlId::GuardDuty1).unwrap().status, Status::Pass);
    assert_eq!(report.findings, Some(Findings::Counted(FindingCounts { high: 4, critical: 2 })));

    let (provider, exporter, metrics) = probe();
    metrics.record(&report);
    let at = [("cloud.account.id", ACCOUNT), ("cloud.region", REGION)];
    assert_eq!(gauge(&provider, &exporter, "aws_guardduty_high_findings", &at), vec![6]);
    let high = [("cloud.account.id", ACCOUNT), ("cloud.region", REGION), ("severity", "high")];
    assert_eq!(gauge(&provider, &exporter, "portcullis_posture_guardduty_findings", &high), vec![4]);
    let critical = [("cloud.account.id", ACCOUNT), ("severity", "critical")];
    assert_eq!(gauge(&provider, &exporter, "portcullis_posture_guardduty_findings", &critical), vec![2]);
}

#[tokio::test]
async fn a_suspended_detector_fails_and_reports_minus_one() {
    use aws_sdk_guardduty::operation::get_detector::GetDetectorOutput;
    use aws_sdk_guardduty::operation::list_detectors::ListDetectorsOutput;
    use aws_sdk_guardduty::types::DetectorStatus;
    let gd = vec![
        mock!(aws_sdk_guardduty::Client::list_detectors)
            .then_output(|| ListDetectorsOutput::builder().detector_ids("d-1").build()),
        mock!(aws_sdk_guardduty::Client::get_detector)
            .then_output(|| GetDetectorOutput::builder().status(DetectorStatus::Disabled).build()),
    ];
    let scanner = Scanner::new(vec![reader(vec![], gd, vec![], vec![])], 90);
    let report = scanner.scan(&scope(), &ScanTarget::controls([ControlId::GuardDuty1]), "test").await.unwrap();
    let r = report.result(ControlId::GuardDuty1).unwrap();
    assert_eq!(r.status, Status::Fail);
    assert_eq!(r.failing_resources, vec!["d-1"]);
    let (provider, exporter, metrics) = probe();
    metrics.record(&report);
    assert_eq!(gauge(&provider, &exporter, "aws_guardduty_high_findings", &[("cloud.region", REGION)]), vec![-1]);
    assert_eq!(
        gauge(&provider, &exporter, "portcullis_posture_control_status", &[("control_id", "GuardDuty.1")]),
        vec![0]
    );
}

#[tokio::test]
async fn access_denied_makes_every_control_unknown_with_a_reason() {
    let scanner = Scanner::new(vec![reader_with(denied_everywhere())], 90);
    let report = scanner.scan(&scope(), &ScanTarget::Full, "test").await.unwrap();
    assert_eq!(report.results.len(), ControlId::ALL.len());
    for (_, r) in &report.results {
        assert_eq!(r.status, Status::Unknown, "{:?}", r.control);
        assert_eq!(r.error_code, Some(ErrorCode::AccessDenied), "{:?}", r.control);
        assert!(r.reason.as_deref().unwrap().contains("not authorized"), "{:?}", r.reason);
    }
    let (provider, exporter, metrics) = probe();
    metrics.record(&report);
    let statuses = gauge(&provider, &exporter, "portcullis_posture_control_status", &[("cloud.region", REGION)]);
    assert_eq!(statuses, vec![-1; ControlId::ALL.len()]);
    // Unknown never shows as a pass on the seed gauges: they are simply absent.
    assert!(gauge(&provider, &exporter, "aws_cloudtrail_logging_enabled", &[]).is_empty());
    assert!(gauge(&provider, &exporter, "aws_kms_rotation_all_enabled", &[]).is_empty());
    assert!(gauge(&provider, &exporter, "portcullis_posture_scan_last_success_timestamp_seconds", &[]).is_empty());
}

/// Every read a full scan makes, denied.
fn denied_everywhere() -> Rules {
    use aws_sdk_accessanalyzer::operation::list_analyzers::ListAnalyzersError;
    use aws_sdk_account::operation::get_alternate_contact::GetAlternateContactError;
    use aws_sdk_cloudtrail::operation::describe_trails::DescribeTrailsError;
    use aws_sdk_config::operation::describe_configuration_recorder_status::DescribeConfigurationRecorderStatusError;
    use aws_sdk_config::operation::describe_configuration_recorders::DescribeConfigurationRecordersError;
    use aws_sdk_ec2::operation::describe_flow_logs::DescribeFlowLogsError;
    use aws_sdk_ec2::operation::describe_instances::DescribeInstancesError;
    use aws_sdk_ec2::operation::describe_network_acls::DescribeNetworkAclsError;
    use aws_sdk_ec2::operation::describe_security_groups::DescribeSecurityGroupsError;
    use aws_sdk_ec2::operation::describe_vpcs::DescribeVpcsError;
    use aws_sdk_ec2::operation::get_ebs_encryption_by_default::GetEbsEncryptionByDefaultError;
    use aws_sdk_efs::operation::describe_file_systems::DescribeFileSystemsError;
    use aws_sdk_guardduty::operation::list_detectors::ListDetectorsError;
    use aws_sdk_iam::operation::generate_credential_report::GenerateCredentialReportError;
    use aws_sdk_iam::operation::get_account_authorization_details::GetAccountAuthorizationDetailsError;
    use aws_sdk_iam::operation::get_account_password_policy::GetAccountPasswordPolicyError;
    use aws_sdk_iam::operation::get_account_summary::GetAccountSummaryError;
    use aws_sdk_iam::operation::list_server_certificates::ListServerCertificatesError;
    use aws_sdk_iam::operation::list_virtual_mfa_devices::ListVirtualMFADevicesError;
    use aws_sdk_kms::operation::list_keys::ListKeysError;
    use aws_sdk_rds::operation::describe_db_instances::DescribeDBInstancesError;
    use aws_sdk_s3::operation::list_buckets::ListBucketsError;
    use aws_sdk_s3control::operation::get_public_access_block::GetPublicAccessBlockError;
    use aws_sdk_securityhub::operation::describe_hub::DescribeHubError;
    Rules {
        account: vec![
            mock!(aws_sdk_account::Client::get_alternate_contact)
                .then_error(|| GetAlternateContactError::generic(denied())),
        ],
        cloudtrail: vec![
            mock!(aws_sdk_cloudtrail::Client::describe_trails).then_error(|| DescribeTrailsError::generic(denied())),
        ],
        config: vec![
            mock!(aws_sdk_config::Client::describe_configuration_recorders)
                .then_error(|| DescribeConfigurationRecordersError::generic(denied())),
            mock!(aws_sdk_config::Client::describe_configuration_recorder_status)
                .then_error(|| DescribeConfigurationRecorderStatusError::generic(denied())),
        ],
        ec2: vec![
            mock!(aws_sdk_ec2::Client::describe_security_groups)
                .then_error(|| DescribeSecurityGroupsError::generic(denied())),
            mock!(aws_sdk_ec2::Client::describe_vpcs).then_error(|| DescribeVpcsError::generic(denied())),
            mock!(aws_sdk_ec2::Client::describe_instances).then_error(|| DescribeInstancesError::generic(denied())),
            mock!(aws_sdk_ec2::Client::describe_network_acls)
                .then_error(|| DescribeNetworkAclsError::generic(denied())),
            mock!(aws_sdk_ec2::Client::describe_flow_logs).then_error(|| DescribeFlowLogsError::generic(denied())),
            mock!(aws_sdk_ec2::Client::get_ebs_encryption_by_default)
                .then_error(|| GetEbsEncryptionByDefaultError::generic(denied())),
        ],
        guardduty: vec![
            mock!(aws_sdk_guardduty::Client::list_detectors).then_error(|| ListDetectorsError::generic(denied())),
        ],
        iam: vec![
            mock!(aws_sdk_iam::Client::generate_credential_report)
                .then_error(|| GenerateCredentialReportError::generic(denied())),
            mock!(aws_sdk_iam::Client::get_account_summary).then_error(|| GetAccountSummaryError::generic(denied())),
            mock!(aws_sdk_iam::Client::get_account_password_policy)
                .then_error(|| GetAccountPasswordPolicyError::generic(denied())),
            mock!(aws_sdk_iam::Client::get_account_authorization_details)
                .then_error(|| GetAccountAuthorizationDetailsError::generic(denied())),
            mock!(aws_sdk_iam::Client::list_virtual_mfa_devices)
                .then_error(|| ListVirtualMFADevicesError::generic(denied())),
            mock!(aws_sdk_iam::Client::list_server_certificates)
                .then_error(|| ListServerCertificatesError::generic(denied())),
        ],
        kms: vec![mock!(aws_sdk_kms::Client::list_keys).then_error(|| ListKeysError::generic(denied()))],
        s3control: vec![
            mock!(aws_sdk_s3control::Client::get_public_access_block)
                .then_error(|| GetPublicAccessBlockError::generic(denied())),
        ],
        securityhub: vec![
            mock!(aws_sdk_securityhub::Client::describe_hub).then_error(|| DescribeHubError::generic(denied())),
        ],
        rds: vec![
            mock!(aws_sdk_rds::Client::describe_db_instances)
                .then_error(|| DescribeDBInstancesError::generic(denied())),
        ],
        efs: vec![
            mock!(aws_sdk_efs::Client::describe_file_systems)
                .then_error(|| DescribeFileSystemsError::generic(denied())),
        ],
        s3: vec![mock!(aws_sdk_s3::Client::list_buckets).then_error(|| ListBucketsError::generic(denied()))],
        accessanalyzer: vec![
            mock!(aws_sdk_accessanalyzer::Client::list_analyzers).then_error(|| ListAnalyzersError::generic(denied())),
        ],
        ..Rules::default()
    }
}

/// S3.20 with MFA delete enabled (moto drops `MFADelete`), each bucket read where `ListBuckets` says
/// it is or else where `GetBucketLocation` says; a bucket whose versioning is denied is named, and
/// leaves the control unknown while no other bucket fails.
#[tokio::test]
async fn mfa_delete_is_read_per_bucket_and_a_denied_bucket_is_unknown() {
    use aws_sdk_s3::operation::get_bucket_location::GetBucketLocationOutput;
    use aws_sdk_s3::operation::get_bucket_versioning::{GetBucketVersioningError, GetBucketVersioningOutput};
    use aws_sdk_s3::operation::list_buckets::ListBucketsOutput;
    use aws_sdk_s3::types::{Bucket, BucketLocationConstraint, BucketVersioningStatus, MfaDeleteStatus};
    let listed = || {
        ListBucketsOutput::builder()
            .buckets(Bucket::builder().name("guarded").bucket_region("eu-west-1").build())
            .buckets(Bucket::builder().name("located").build())
            .buckets(Bucket::builder().name("secret").bucket_region("eu-west-1").build())
            .build()
    };
    let rules = |secret: Rule| {
        vec![
            mock!(aws_sdk_s3::Client::list_buckets).then_output(listed),
            // Only the bucket without a listed region is located.
            mock!(aws_sdk_s3::Client::get_bucket_location)
                .match_requests(|r| r.bucket() == Some("located"))
                .then_output(|| {
                    GetBucketLocationOutput::builder().location_constraint(BucketLocationConstraint::EuWest1).build()
                }),
            mock!(aws_sdk_s3::Client::get_bucket_versioning)
                .match_requests(|r| r.bucket() != Some("secret"))
                .then_output(|| {
                    GetBucketVersioningOutput::builder()
                        .status(BucketVersioningStatus::Enabled)
                        .mfa_delete(MfaDeleteStatus::Enabled)
                        .build()
                }),
            secret,
        ]
    };
    let target = ScanTarget::controls([ControlId::S320]);
    let enabled = mock!(aws_sdk_s3::Client::get_bucket_versioning)
        .match_requests(|r| r.bucket() == Some("secret"))
        .then_output(|| GetBucketVersioningOutput::builder().mfa_delete(MfaDeleteStatus::Enabled).build());
    let scanner = Scanner::new(vec![reader_with(Rules { s3: rules(enabled), ..Rules::default() })], 90);
    let report = scanner.scan(&scope(), &target, "test").await.unwrap();
    assert_eq!(report.result(ControlId::S320).unwrap().status, Status::Pass, "{report:?}");

    let denied_secret = mock!(aws_sdk_s3::Client::get_bucket_versioning)
        .match_requests(|r| r.bucket() == Some("secret"))
        .then_error(|| GetBucketVersioningError::generic(denied()));
    let scanner = Scanner::new(vec![reader_with(Rules { s3: rules(denied_secret), ..Rules::default() })], 90);
    let report = scanner.scan(&scope(), &target, "test").await.unwrap();
    let r = report.result(ControlId::S320).unwrap();
    assert_eq!((r.status, r.error_code), (Status::Unknown, Some(ErrorCode::AccessDenied)), "{r:?}");
    let reason = r.reason.as_deref().unwrap();
    assert!(reason.contains("arn:aws:s3:::secret") && reason.contains("s3:GetBucketVersioning"), "{reason}");
    // Only S3.20 was asked for: no bucket policy or Block Public Access was read (no rule for them).
    assert_eq!(report.results.len(), 1);

    // Versioned without MFA delete: fails, naming the bucket.
    let without_mfa = mock!(aws_sdk_s3::Client::get_bucket_versioning)
        .match_requests(|r| r.bucket() == Some("secret"))
        .then_output(|| GetBucketVersioningOutput::builder().status(BucketVersioningStatus::Enabled).build());
    let scanner = Scanner::new(vec![reader_with(Rules { s3: rules(without_mfa), ..Rules::default() })], 90);
    let r = scanner.scan(&scope(), &target, "test").await.unwrap().result(ControlId::S320).unwrap().clone();
    assert_eq!((r.status, r.failing_resources), (Status::Fail, vec!["arn:aws:s3:::secret".to_owned()]));
}

/// CloudTrail.7: the trail's bucket is read for access logging where it is; a trail delivering to a
/// bucket the account does not own, or whose logging is denied, leaves the control unknown.
#[tokio::test]
async fn a_trail_bucket_elsewhere_or_denied_is_unknown() {
    use aws_sdk_cloudtrail::operation::describe_trails::DescribeTrailsOutput;
    use aws_sdk_cloudtrail::operation::get_event_selectors::GetEventSelectorsOutput;
    use aws_sdk_cloudtrail::operation::get_trail_status::GetTrailStatusOutput;
    use aws_sdk_cloudtrail::types::Trail;
    use aws_sdk_s3::operation::get_bucket_logging::{GetBucketLoggingError, GetBucketLoggingOutput};
    use aws_sdk_s3::operation::list_buckets::ListBucketsOutput;
    use aws_sdk_s3::types::{Bucket, LoggingEnabled};
    let cloudtrail = |bucket: &'static str| {
        vec![
            mock!(aws_sdk_cloudtrail::Client::describe_trails).then_output(move || {
                let trail = Trail::builder()
                    .name("main")
                    .trail_arn(format!("arn:aws:cloudtrail:{REGION}:{ACCOUNT}:trail/main"))
                    .home_region(REGION)
                    .is_multi_region_trail(true)
                    .s3_bucket_name(bucket)
                    .build();
                DescribeTrailsOutput::builder().trail_list(trail).build()
            }),
            mock!(aws_sdk_cloudtrail::Client::get_trail_status)
                .then_output(|| GetTrailStatusOutput::builder().is_logging(true).build()),
            mock!(aws_sdk_cloudtrail::Client::get_event_selectors)
                .then_output(|| GetEventSelectorsOutput::builder().build()),
        ]
    };
    let s3 = |logging: Rule| {
        vec![
            mock!(aws_sdk_s3::Client::list_buckets).then_output(|| {
                ListBucketsOutput::builder()
                    .buckets(Bucket::builder().name("trail-logs").bucket_region(REGION).build())
                    .build()
            }),
            logging,
        ]
    };
    let logged = || {
        mock!(aws_sdk_s3::Client::get_bucket_logging).then_output(|| {
            let target = LoggingEnabled::builder().target_bucket("access-logs").target_prefix("t/").build().unwrap();
            GetBucketLoggingOutput::builder().logging_enabled(target).build()
        })
    };
    let scan = |cloudtrail: Vec<Rule>, s3: Vec<Rule>| async move {
        let scanner = Scanner::new(vec![reader_with(Rules { cloudtrail, s3, ..Rules::default() })], 90);
        scanner.scan(&scope(), &ScanTarget::controls([ControlId::CloudTrail7]), "test").await.unwrap()
    };
    let report = scan(cloudtrail("trail-logs"), s3(logged())).await;
    assert_eq!(report.result(ControlId::CloudTrail7).unwrap().status, Status::Pass);

    let report = scan(cloudtrail("org-archive"), s3(logged())).await;
    let r = report.result(ControlId::CloudTrail7).unwrap();
    assert_eq!((r.status, r.error_code), (Status::Unknown, Some(ErrorCode::AccessDenied)), "{r:?}");
    assert!(r.reason.as_deref().unwrap().contains("arn:aws:s3:::org-archive: the bucket is not this account's"));

    let denied_logging =
        mock!(aws_sdk_s3::Client::get_bucket_logging).then_error(|| GetBucketLoggingError::generic(denied()));
    let report = scan(cloudtrail("trail-logs"), s3(denied_logging)).await;
    let r = report.result(ControlId::CloudTrail7).unwrap();
    assert_eq!((r.status, r.error_code), (Status::Unknown, Some(ErrorCode::AccessDenied)), "{r:?}");
    assert!(r.reason.as_deref().unwrap().contains("s3:GetBucketLogging"), "{r:?}");
}

/// RDS.2/.3/.13 over every page of `DescribeDBInstances` (the marker followed), and EFS.1 over every
/// page of `DescribeFileSystems`: a failing instance or file system on the second page is found.
#[tokio::test]
async fn db_instances_and_file_systems_are_read_page_by_page() {
    use aws_sdk_efs::operation::describe_file_systems::DescribeFileSystemsOutput;
    use aws_sdk_efs::types::FileSystemDescription;
    use aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput;
    use aws_sdk_rds::types::DbInstance;
    let db = |id: &str, public: bool, encrypted: bool, upgrades: bool| {
        DbInstance::builder()
            .db_instance_identifier(id)
            .db_instance_arn(format!("arn:aws:rds:{REGION}:{ACCOUNT}:db:{id}"))
            .publicly_accessible(public)
            .storage_encrypted(encrypted)
            .auto_minor_version_upgrade(upgrades)
            .build()
    };
    let fs = |id: &str, encrypted: bool| {
        use aws_sdk_efs::types::{LifeCycleState, PerformanceMode};
        FileSystemDescription::builder()
            .owner_id(ACCOUNT)
            .creation_token(id)
            .creation_time(aws_smithy_types::DateTime::from_secs(0))
            .life_cycle_state(LifeCycleState::Available)
            .performance_mode(PerformanceMode::GeneralPurpose)
            .set_tags(Some(Vec::new()))
            .size_in_bytes(aws_sdk_efs::types::FileSystemSize::builder().value(0).build())
            .number_of_mount_targets(0)
            .file_system_id(id)
            .file_system_arn(format!("arn:aws:elasticfilesystem:{REGION}:{ACCOUNT}:file-system/{id}"))
            .encrypted(encrypted)
            .build()
            .unwrap()
    };
    let rds = vec![
        mock!(aws_sdk_rds::Client::describe_db_instances).match_requests(|r| r.marker().is_none()).then_output(
            move || {
                DescribeDbInstancesOutput::builder().db_instances(db("good", false, true, true)).marker("p2").build()
            },
        ),
        mock!(aws_sdk_rds::Client::describe_db_instances).match_requests(|r| r.marker() == Some("p2")).then_output(
            move || DescribeDbInstancesOutput::builder().db_instances(db("open", true, false, false)).build(),
        ),
    ];
    let efs = vec![
        mock!(aws_sdk_efs::Client::describe_file_systems).match_requests(|r| r.marker().is_none()).then_output(
            move || DescribeFileSystemsOutput::builder().file_systems(fs("fs-1", true)).next_marker("p2").build(),
        ),
        mock!(aws_sdk_efs::Client::describe_file_systems)
            .match_requests(|r| r.marker() == Some("p2"))
            .then_output(move || DescribeFileSystemsOutput::builder().file_systems(fs("fs-2", false)).build()),
    ];
    let controls = ScanTarget::controls([ControlId::Rds2, ControlId::Rds3, ControlId::Rds13, ControlId::Efs1]);
    let scanner = Scanner::new(vec![reader_with(Rules { rds, efs, ..Rules::default() })], 90);
    let report = scanner.scan(&scope(), &controls, "test").await.unwrap();
    for c in [ControlId::Rds2, ControlId::Rds3, ControlId::Rds13] {
        let r = report.result(c).unwrap();
        assert_eq!(r.status, Status::Fail, "{c}");
        assert_eq!(r.failing_resources, vec![format!("arn:aws:rds:{REGION}:{ACCOUNT}:db:open")], "{c}");
    }
    let efs1 = report.result(ControlId::Efs1).unwrap();
    assert_eq!(efs1.status, Status::Fail);
    assert_eq!(efs1.failing_resources, vec![format!("arn:aws:elasticfilesystem:{REGION}:{ACCOUNT}:file-system/fs-2")]);
}

#[tokio::test]
async fn an_unsupported_api_is_unknown_not_pass() {
    let unsupported =
        || HttpResponse::new(StatusCode::try_from(404).unwrap(), SdkBody::from("<html><h1>Not Found</h1></html>"));
    let r = reader(
        vec![mock!(aws_sdk_cloudtrail::Client::describe_trails).then_http_response(unsupported)],
        vec![],
        vec![],
        vec![],
    );
    let scanner = Scanner::new(vec![r], 90);
    let report = scanner.scan(&scope(), &ScanTarget::controls([ControlId::CloudTrail1]), "test").await.unwrap();
    let ct = report.result(ControlId::CloudTrail1).unwrap();
    assert_eq!(ct.status, Status::Unknown);
    assert_eq!(ct.error_code, Some(ErrorCode::Unsupported));
}

#[tokio::test]
async fn all_regions_means_every_enabled_region_with_home_first() {
    use aws_sdk_account::operation::list_regions::ListRegionsOutput;
    use aws_sdk_account::types::Region;
    let list = mock!(aws_sdk_account::Client::list_regions)
        .match_requests(|r| r.region_opt_status_contains().len() == 2)
        .then_output(|| {
            let r = |n: &str| Region::builder().region_name(n).build();
            ListRegionsOutput::builder().regions(r("us-west-2")).regions(r("eu-west-1")).regions(r("us-east-1")).build()
        });
    let client = mock_client!(aws_sdk_account, RuleMode::MatchAny, [&list]);
    let regions = super::enabled_regions(&client, "us-east-1").await.unwrap();
    assert_eq!(regions, vec!["us-east-1", "eu-west-1", "us-west-2"]);
}

#[tokio::test]
async fn a_root_access_key_fails_iam4() {
    use aws_sdk_iam::operation::get_account_summary::GetAccountSummaryOutput;
    use aws_sdk_iam::types::SummaryKeyType;
    let iam = vec![mock!(aws_sdk_iam::Client::get_account_summary).then_output(|| {
        GetAccountSummaryOutput::builder()
            .summary_map(SummaryKeyType::AccountAccessKeysPresent, 1)
            .summary_map(SummaryKeyType::AccountMfaEnabled, 1)
            .build()
    })];
    let scanner = Scanner::new(vec![reader(vec![], vec![], iam, vec![])], 90);
    let report =
        scanner.scan(&scope(), &ScanTarget::controls([ControlId::Iam4, ControlId::Iam9]), "test").await.unwrap();
    assert_eq!(report.result(ControlId::Iam4).unwrap().status, Status::Fail);
    assert_eq!(report.result(ControlId::Iam9).unwrap().status, Status::Pass);
}

/// A credential report with one user, `bob`, whose first key was created `key_age_days` ago and is
/// `active` or not; generated `generated_ago` before now.
fn credential_report_rules(active: bool, key_age_days: i64, generated_ago: chrono::Duration) -> Vec<Rule> {
    use aws_sdk_iam::operation::generate_credential_report::GenerateCredentialReportOutput;
    use aws_sdk_iam::operation::get_credential_report::GetCredentialReportOutput;
    use aws_sdk_iam::types::ReportStateType;
    let now = chrono::Utc::now();
    let created = (now - chrono::Duration::days(key_age_days)).to_rfc3339();
    let csv = format!(
        "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,\
         access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,\
         access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,\
         cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated\n\
         bob,arn:aws:iam::{ACCOUNT}:user/bob,{created},false,N/A,N/A,N/A,false,{active},{created},N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n"
    );
    let generated = aws_smithy_types::DateTime::from_secs((now - generated_ago).timestamp());
    vec![
        mock!(aws_sdk_iam::Client::generate_credential_report)
            .then_output(|| GenerateCredentialReportOutput::builder().state(ReportStateType::Complete).build()),
        mock!(aws_sdk_iam::Client::get_credential_report).then_output(move || {
            GetCredentialReportOutput::builder()
                .content(aws_smithy_types::Blob::new(csv.clone()))
                .generated_time(generated)
                .build()
        }),
    ]
}

/// A reader whose IAM answers with `iam` (before the denials); every other read is denied.
fn iam_only_reader(mut iam: Vec<Rule>) -> Arc<dyn FactReader> {
    let mut rules = denied_everywhere();
    iam.append(&mut rules.iam);
    reader_with(Rules { iam, ..rules })
}

/// Bob read on his own: no password, no MFA device, one key created `key_age_days` ago, `active`
/// or not, never used.
fn bob_rules(active: bool, key_age_days: i64) -> Vec<Rule> {
    use aws_sdk_iam::operation::get_access_key_last_used::GetAccessKeyLastUsedOutput;
    use aws_sdk_iam::operation::get_login_profile::GetLoginProfileError;
    use aws_sdk_iam::operation::get_user::GetUserOutput;
    use aws_sdk_iam::operation::list_access_keys::ListAccessKeysOutput;
    use aws_sdk_iam::operation::list_mfa_devices::ListMfaDevicesOutput;
    use aws_sdk_iam::types::{AccessKeyMetadata, StatusType, User};
    let created =
        aws_smithy_types::DateTime::from_secs((chrono::Utc::now() - chrono::Duration::days(key_age_days)).timestamp());
    vec![
        mock!(aws_sdk_iam::Client::get_user).match_requests(|r| r.user_name() == Some("bob")).then_output(move || {
            GetUserOutput::builder()
                .user(
                    User::builder()
                        .user_name("bob")
                        .user_id("AIDABOB")
                        .path("/")
                        .arn(format!("arn:aws:iam::{ACCOUNT}:user/bob"))
                        .create_date(created)
                        .build()
                        .unwrap(),
                )
                .build()
        }),
        mock!(aws_sdk_iam::Client::get_login_profile).then_error(|| {
            GetLoginProfileError::NoSuchEntityException(
                aws_sdk_iam::types::error::NoSuchEntityException::builder().message("no login profile").build(),
            )
        }),
        mock!(aws_sdk_iam::Client::list_mfa_devices)
            .then_output(|| ListMfaDevicesOutput::builder().set_mfa_devices(Some(vec![])).build().unwrap()),
        mock!(aws_sdk_iam::Client::list_access_keys).match_requests(|r| r.user_name() == Some("bob")).then_output(
            move || {
                ListAccessKeysOutput::builder()
                    .access_key_metadata(
                        AccessKeyMetadata::builder()
                            .user_name("bob")
                            .access_key_id("AKIABOB")
                            .status(if active { StatusType::Active } else { StatusType::Inactive })
                            .create_date(created)
                            .build(),
                    )
                    .build()
                    .unwrap()
            },
        ),
        mock!(aws_sdk_iam::Client::get_access_key_last_used)
            .then_output(|| GetAccessKeyLastUsedOutput::builder().user_name("bob").build()),
    ]
}

/// AWS reuses a credential report for up to 4 hours. A key deactivated after the report was
/// generated (read by the targeted rescan) must stay deactivated at the next full scan, and a key
/// reactivated after it must stay failing: the fresher per-user facts win until a newer report.
#[tokio::test]
async fn per_user_facts_read_after_the_credential_report_win_over_it() {
    for (in_report, read_later, expected) in [(true, false, Status::Pass), (false, true, Status::Fail)] {
        let mut iam = credential_report_rules(in_report, 100, chrono::Duration::hours(1));
        iam.extend(bob_rules(read_later, 100));
        let scanner = Scanner::new(vec![iam_only_reader(iam)], 90);
        let full = scanner.scan(&scope(), &ScanTarget::Full, "scheduled").await.unwrap();
        let first = full.result(ControlId::Iam3).unwrap().status;
        assert_eq!(first, if in_report { Status::Fail } else { Status::Pass }, "the report's view");
        let user = scanner.scan(&scope(), &ScanTarget::User("bob".into()), "event:UpdateAccessKey").await.unwrap();
        assert_eq!(user.result(ControlId::Iam3).unwrap().status, expected, "the user's own keys, read now");
        let again = scanner.scan(&scope(), &ScanTarget::Full, "scheduled").await.unwrap();
        assert_eq!(
            again.result(ControlId::Iam3).unwrap().status,
            expected,
            "the next full scan reuses the hour-old report: bob's keys read after it still win"
        );
    }
}

/// `ListKeys` with `ids`; `DescribeKey` of `denied` fails with AccessDenied; every other key is a
/// customer managed symmetric key in `state`, rotating when `rotating`.
fn kms_rules(ids: &'static [&'static str], denied: &'static str, state: &'static str, rotating: bool) -> Vec<Rule> {
    use aws_sdk_kms::operation::describe_key::{DescribeKeyError, DescribeKeyOutput};
    use aws_sdk_kms::operation::get_key_rotation_status::GetKeyRotationStatusOutput;
    use aws_sdk_kms::operation::list_keys::ListKeysOutput;
    use aws_sdk_kms::types::{KeyListEntry, KeyManagerType, KeyMetadata, KeySpec, KeyState, OriginType};
    vec![
        mock!(aws_sdk_kms::Client::list_keys).then_output(move || {
            let mut out = ListKeysOutput::builder();
            for id in ids {
                out = out.keys(KeyListEntry::builder().key_id(*id).build());
            }
            out.build()
        }),
        mock!(aws_sdk_kms::Client::describe_key)
            .match_requests(move |r| r.key_id() == Some(denied))
            .then_error(|| DescribeKeyError::generic(denied_meta())),
        mock!(aws_sdk_kms::Client::describe_key).then_compute_output(move |r| {
            let id = r.key_id().unwrap_or_default().to_owned();
            DescribeKeyOutput::builder()
                .key_metadata(
                    KeyMetadata::builder()
                        .key_id(&id)
                        .arn(format!("arn:aws:kms:{REGION}:{ACCOUNT}:key/{id}"))
                        .key_manager(KeyManagerType::Customer)
                        .key_state(KeyState::from(state))
                        .key_spec(KeySpec::SymmetricDefault)
                        .origin(OriginType::AwsKms)
                        .build()
                        .unwrap(),
                )
                .build()
        }),
        mock!(aws_sdk_kms::Client::get_key_rotation_status)
            .then_output(move || GetKeyRotationStatusOutput::builder().key_rotation_enabled(rotating).build()),
    ]
}

/// A steady full read of the KMS keys describes no key again: `ListKeys` and one rotation status
/// per key that can rotate. A key a change event names (by id or ARN) is described anew, an event's
/// own read replaces the kept description, and a description past its age is read again.
#[tokio::test]
async fn a_steady_kms_read_describes_no_key_again_until_an_event_names_it() {
    let rules = kms_rules(&["k-1", "k-2"], "none", "Enabled", true);
    let (list, describe, rotation) = (rules[0].clone(), rules[2].clone(), rules[3].clone());
    let reader = aws_reader(Rules { kms: rules, ..Rules::default() });
    let (first, _) = reader.kms_keys().await.unwrap();
    assert_eq!((list.num_calls(), describe.num_calls(), rotation.num_calls()), (1, 2, 2));
    let (second, _) = reader.kms_keys().await.unwrap();
    assert_eq!(second, first, "the same facts");
    assert_eq!((list.num_calls(), describe.num_calls(), rotation.num_calls()), (2, 2, 4), "no key described again");
    reader.forget_kms_key(&format!("arn:aws:kms:{REGION}:{ACCOUNT}:key/k-1"));
    reader.kms_keys().await.unwrap();
    assert_eq!(describe.num_calls(), 3, "the key an event named is described anew");
    reader.kms_key("k-2").await.unwrap();
    reader.kms_keys().await.unwrap();
    assert_eq!(describe.num_calls(), 4, "an event's own read is kept");

    let rules = kms_rules(&["k-1"], "none", "Enabled", true);
    let describe = rules[2].clone();
    let reader =
        aws_reader(Rules { kms: rules, ..Rules::default() }).with_kms_description_max_age(std::time::Duration::ZERO);
    reader.kms_keys().await.unwrap();
    reader.kms_keys().await.unwrap();
    assert_eq!(describe.num_calls(), 2, "a description past its age is read again");
}

fn denied_meta() -> ErrorMetadata {
    denied()
}

/// KMS.3 covers `PendingReplicaDeletion`: a multi-Region primary scheduled for deletion while its
/// replicas remain (moto cannot produce that state).
#[tokio::test]
async fn a_primary_key_pending_replica_deletion_fails_kms3() {
    let kms = kms_rules(&["mrk-1"], "none", "PendingReplicaDeletion", false);
    let scanner = Scanner::new(vec![reader(vec![], vec![], vec![], kms)], 90);
    let report = scanner.scan(&scope(), &ScanTarget::KmsKey("mrk-1".into()), "test").await.unwrap();
    let kms3 = report.result(ControlId::Kms3).unwrap();
    assert_eq!(kms3.status, Status::Fail, "{kms3:?}");
    assert_eq!(kms3.failing_resources, vec![format!("arn:aws:kms:{REGION}:{ACCOUNT}:key/mrk-1")]);
    // A key pending deletion cannot rotate: KMS.4 does not apply to it.
    assert_eq!(report.result(ControlId::Kms4).unwrap().status, Status::Pass);
}

/// One key that cannot be described does not hide the failures of the keys that could be read;
/// only when nothing readable fails is the control unknown.
#[tokio::test]
async fn an_unreadable_key_does_not_hide_known_failures() {
    let kms = kms_rules(&["k-denied", "k-norot"], "k-denied", "Enabled", false);
    let scanner = Scanner::new(vec![reader(vec![], vec![], vec![], kms)], 90);
    let report = scanner.scan(&scope(), &ScanTarget::KmsKey("k-norot".into()), "test").await.unwrap();
    let kms4 = report.result(ControlId::Kms4).unwrap();
    assert_eq!(kms4.status, Status::Fail, "{kms4:?}");
    assert_eq!(kms4.failing_resources, vec![format!("arn:aws:kms:{REGION}:{ACCOUNT}:key/k-norot")]);
    assert!(kms4.reason.as_deref().unwrap().contains("k-denied"), "the reason names the unreadable key: {kms4:?}");
    // Nothing readable is pending deletion, but the unreadable key might be: unknown, with why.
    let kms3 = report.result(ControlId::Kms3).unwrap();
    assert_eq!((kms3.status, kms3.error_code), (Status::Unknown, Some(ErrorCode::AccessDenied)), "{kms3:?}");
    assert!(kms3.reason.as_deref().unwrap().contains("k-denied"), "{kms3:?}");

    let rotating = kms_rules(&["k-denied", "k-ok"], "k-denied", "Enabled", true);
    let scanner = Scanner::new(vec![reader(vec![], vec![], vec![], rotating)], 90);
    let report = scanner.scan(&scope(), &ScanTarget::KmsKey("k-ok".into()), "test").await.unwrap();
    let kms4 = report.result(ControlId::Kms4).unwrap();
    assert_eq!((kms4.status, kms4.error_code), (Status::Unknown, Some(ErrorCode::AccessDenied)), "{kms4:?}");
}

/// Sum of a u64 counter's data points carrying `with`.
fn counter(provider: &SdkMeterProvider, exporter: &InMemoryMetricExporter, name: &str, with: &[(&str, &str)]) -> u64 {
    exporter.reset();
    provider.force_flush().unwrap();
    let mut total = 0;
    for rm in exporter.get_finished_metrics().unwrap() {
        for sm in rm.scope_metrics() {
            for m in sm.metrics().filter(|m| m.name() == name) {
                if let AggregatedMetrics::U64(MetricData::Sum(sum)) = m.data() {
                    for p in sum.data_points() {
                        if with
                            .iter()
                            .all(|(k, v)| p.attributes().any(|kv| kv.key.as_str() == *k && kv.value.as_str() == *v))
                        {
                            total += p.value();
                        }
                    }
                }
            }
        }
    }
    total
}

/// GuardDuty is on but its findings statistics cannot be read: the detector still passes
/// GuardDuty.1, the findings part is unknown with the reason, no count is exported, and the
/// failure is counted as a scan error (an alert covers the absent findings series).
#[tokio::test]
async fn unreadable_findings_statistics_are_not_silent() {
    use aws_sdk_guardduty::operation::get_findings_statistics::GetFindingsStatisticsError;
    let mut gd = enabled_detector();
    gd.push(
        mock!(aws_sdk_guardduty::Client::get_findings_statistics)
            .then_error(|| GetFindingsStatisticsError::generic(denied())),
    );
    let scanner = Scanner::new(vec![reader(vec![], gd, vec![], vec![])], 90);
    let report = scanner.scan(&scope(), &ScanTarget::controls([ControlId::GuardDuty1]), "test").await.unwrap();
    assert_eq!(report.result(ControlId::GuardDuty1).unwrap().status, Status::Pass);
    match &report.findings {
        Some(Findings::Unknown { error_code, reason }) => {
            assert_eq!(*error_code, ErrorCode::AccessDenied);
            assert!(
                reason.contains("guardduty:GetFindingsStatistics") && reason.contains("not authorized"),
                "{reason}"
            );
        }
        other => panic!("findings should be unknown: {other:?}"),
    }

    let (provider, exporter, metrics) = probe();
    metrics.record(&report);
    let errors = [("control_id", "GuardDuty.1"), ("error_code", "access_denied"), ("cloud.region", REGION)];
    assert_eq!(counter(&provider, &exporter, "portcullis_posture_scan_errors", &errors), 1);
    // No count at all rather than a made-up one; GuardDuty itself is measured.
    assert!(gauge(&provider, &exporter, "portcullis_posture_guardduty_findings", &[]).is_empty());
    assert!(gauge(&provider, &exporter, "aws_guardduty_high_findings", &[]).is_empty());
    assert_eq!(
        gauge(&provider, &exporter, "portcullis_posture_control_status", &[("control_id", "GuardDuty.1")]),
        vec![1]
    );
}

/// What moto cannot produce: a flow log whose delivery failed (EC2.6 fails and says why) and a
/// Config recorder whose last recording failed (Config.1 fails).
#[tokio::test]
async fn failed_flow_log_delivery_and_failed_recording_fail() {
    use aws_sdk_config::operation::describe_configuration_recorder_status::DescribeConfigurationRecorderStatusOutput;
    use aws_sdk_config::operation::describe_configuration_recorders::DescribeConfigurationRecordersOutput;
    use aws_sdk_config::types::{ConfigurationRecorder, ConfigurationRecorderStatus, RecorderStatus, RecordingGroup};
    use aws_sdk_ec2::operation::describe_flow_logs::DescribeFlowLogsOutput;
    use aws_sdk_ec2::operation::describe_vpcs::DescribeVpcsOutput;
    use aws_sdk_ec2::types::{FlowLog, TrafficType, Vpc};
    let ec2 = vec![
        mock!(aws_sdk_ec2::Client::describe_vpcs)
            .then_output(|| DescribeVpcsOutput::builder().vpcs(Vpc::builder().vpc_id("vpc-1").build()).build()),
        mock!(aws_sdk_ec2::Client::describe_flow_logs).then_output(|| {
            DescribeFlowLogsOutput::builder()
                .flow_logs(
                    FlowLog::builder()
                        .flow_log_id("fl-1")
                        .resource_id("vpc-1")
                        .flow_log_status("ACTIVE")
                        .traffic_type(TrafficType::All)
                        .deliver_logs_status("FAILED")
                        .deliver_logs_error_message("Access error")
                        .build(),
                )
                .build()
        }),
    ];
    let config = vec![
        mock!(aws_sdk_config::Client::describe_configuration_recorders).then_output(|| {
            DescribeConfigurationRecordersOutput::builder()
                .configuration_recorders(
                    ConfigurationRecorder::builder()
                        .name("default")
                        .role_arn(format!(
                            "arn:aws:iam::{ACCOUNT}:role/aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig"
                        ))
                        .recording_group(
                            RecordingGroup::builder().all_supported(true).include_global_resource_types(true).build(),
                        )
                        .build(),
                )
                .build()
        }),
        mock!(aws_sdk_config::Client::describe_configuration_recorder_status).then_output(|| {
            DescribeConfigurationRecorderStatusOutput::builder()
                .configuration_recorders_status(
                    ConfigurationRecorderStatus::builder()
                        .name("default")
                        .recording(true)
                        .last_status(RecorderStatus::Failure)
                        .build(),
                )
                .build()
        }),
    ];
    let scanner = Scanner::new(vec![reader_with(Rules { ec2, config, ..Rules::default() })], 90);
    let target = ScanTarget::controls([ControlId::Ec26, ControlId::Config1]);
    let report = scanner.scan(&scope(), &target, "test").await.unwrap();
    let flow = report.result(ControlId::Ec26).unwrap();
    assert_eq!(flow.status, Status::Fail, "{flow:?}");
    assert_eq!(flow.failing_resources, vec![format!("arn:aws:ec2:{REGION}:{ACCOUNT}:vpc/vpc-1")]);
    assert!(flow.reason.as_deref().unwrap().contains("delivery failed: Access error"), "{flow:?}");
    let config = report.result(ControlId::Config1).unwrap();
    assert_eq!(config.status, Status::Fail, "{config:?}");
    assert!(config.reason.as_deref().unwrap().contains("last recording failed"), "{config:?}");
    assert_eq!(report.results.len(), 2, "only the controls asked for");
}

/// `GetAccountAuthorizationDetails` is read page by page and its URL-encoded documents decoded:
/// a user's own policy (IAM.2), the support role (IAM.18) and an attached full-admin policy (CIS
/// 1.16) on the second page all count.
#[tokio::test]
async fn authorization_details_are_read_on_every_page() {
    use aws_sdk_iam::operation::get_account_authorization_details::GetAccountAuthorizationDetailsOutput;
    use aws_sdk_iam::types::{AttachedPolicy, ManagedPolicyDetail, PolicyVersion, UserDetail};
    const ADMIN: &str = "arn:aws:iam::123456789012:policy/admin";
    use aws_sdk_iam::operation::list_entities_for_policy::ListEntitiesForPolicyOutput;
    use aws_sdk_iam::types::PolicyRole;
    let first = mock!(aws_sdk_iam::Client::get_account_authorization_details)
        .match_requests(|r| r.marker().is_none() && r.filter().len() == 3)
        .then_output(|| {
            GetAccountAuthorizationDetailsOutput::builder()
                .user_detail_list(
                    UserDetail::builder()
                        .user_name("bob")
                        .arn("arn:aws:iam::123456789012:user/bob")
                        .attached_managed_policies(
                            AttachedPolicy::builder().policy_arn("arn:aws:iam::aws:policy/ReadOnlyAccess").build(),
                        )
                        .build(),
                )
                .is_truncated(true)
                .marker("page-2")
                .build()
        });
    let second = mock!(aws_sdk_iam::Client::get_account_authorization_details)
        .match_requests(|r| r.marker() == Some("page-2"))
        .then_output(|| {
            let document = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow\
                            %22%2C%22Action%22%3A%22%2A%22%2C%22Resource%22%3A%22%2A%22%7D%5D%7D";
            GetAccountAuthorizationDetailsOutput::builder()
                .policies(
                    ManagedPolicyDetail::builder()
                        .policy_name("admin")
                        .arn(ADMIN)
                        .attachment_count(1)
                        .policy_version_list(
                            PolicyVersion::builder()
                                .version_id("v1")
                                .is_default_version(false)
                                .document("%7B%7D")
                                .build(),
                        )
                        .policy_version_list(
                            PolicyVersion::builder()
                                .version_id("v2")
                                .is_default_version(true)
                                .document(document)
                                .build(),
                        )
                        .build(),
                )
                .is_truncated(false)
                .build()
        });
    // Roles are read as holders of the two AWS managed policies: the support role, and CloudShell on
    // nobody (the policy does not exist in this account: NoSuchEntity is none).
    let support = mock!(aws_sdk_iam::Client::list_entities_for_policy)
        .match_requests(|r| r.policy_arn() == Some("arn:aws:iam::aws:policy/AWSSupportAccess"))
        .then_output(|| {
            ListEntitiesForPolicyOutput::builder()
                .policy_roles(PolicyRole::builder().role_name("support").build())
                .build()
        });
    let cloudshell = mock!(aws_sdk_iam::Client::list_entities_for_policy)
        .match_requests(|r| r.policy_arn() == Some("arn:aws:iam::aws:policy/AWSCloudShellFullAccess"))
        .then_error(|| {
            aws_sdk_iam::operation::list_entities_for_policy::ListEntitiesForPolicyError::NoSuchEntityException(
                aws_sdk_iam::types::error::NoSuchEntityException::builder().message("no such policy").build(),
            )
        });
    let r = reader_with(Rules { iam: vec![first, second, support, cloudshell], ..Rules::default() });
    let scanner = Scanner::new(vec![r], 90);
    let target = ScanTarget::controls([ControlId::Iam2, ControlId::Iam18, ControlId::Iam27, ControlId::Cis3_1_16]);
    let report = scanner.scan(&scope(), &target, "test").await.unwrap();
    let by = |c: ControlId| report.result(c).unwrap().clone();
    assert_eq!((by(ControlId::Iam2).status, by(ControlId::Iam2).failing_resources), (Status::Fail, vec!["bob".into()]));
    assert_eq!(by(ControlId::Iam18).status, Status::Pass, "{:?}", by(ControlId::Iam18));
    assert_eq!(by(ControlId::Iam27).status, Status::Pass);
    let admin = by(ControlId::Cis3_1_16);
    assert_eq!((admin.status, admin.failing_resources), (Status::Fail, vec![ADMIN.to_owned()]));
}

/// IAM.6 passes only with root MFA that is not a virtual device (moto's root user has no MFA at all,
/// so the emulator shows only the failure); a denied `ListVirtualMFADevices` leaves IAM.6 unknown
/// and IAM.4 and IAM.9 measured.
#[tokio::test]
async fn root_mfa_must_be_a_hardware_device() {
    use aws_sdk_iam::operation::get_account_summary::GetAccountSummaryOutput;
    use aws_sdk_iam::operation::list_virtual_mfa_devices::{ListVirtualMFADevicesError, ListVirtualMfaDevicesOutput};
    use aws_sdk_iam::types::{SummaryKeyType, User, VirtualMfaDevice};
    let summary = || {
        mock!(aws_sdk_iam::Client::get_account_summary).then_output(|| {
            GetAccountSummaryOutput::builder()
                .summary_map(SummaryKeyType::AccountAccessKeysPresent, 0)
                .summary_map(SummaryKeyType::AccountMfaEnabled, 1)
                .build()
        })
    };
    let device = |serial: &str, user: &str| {
        let created = aws_smithy_types::DateTime::from_secs(0);
        let user = User::builder()
            .user_name(user)
            .user_id("AID")
            .path("/")
            .arn(format!("arn:aws:iam::{ACCOUNT}:{user}"))
            .create_date(created)
            .build()
            .unwrap();
        VirtualMfaDevice::builder()
            .serial_number(format!("arn:aws:iam::{ACCOUNT}:mfa/{serial}"))
            .user(user)
            .build()
            .unwrap()
    };
    let controls = ScanTarget::controls([ControlId::Iam4, ControlId::Iam6, ControlId::Iam9]);
    for (devices, expected) in [
        (vec![device("alice", "user/alice")], Status::Pass),
        (vec![device("alice", "user/alice"), device("root-account-mfa-device", "root")], Status::Fail),
    ] {
        let list = mock!(aws_sdk_iam::Client::list_virtual_mfa_devices)
            .match_requests(|r| r.assignment_status().map(|s| s.as_str()) == Some("Assigned"))
            .then_output(move || {
                ListVirtualMfaDevicesOutput::builder().set_virtual_mfa_devices(Some(devices.clone())).build().unwrap()
            });
        let r = reader_with(Rules { iam: vec![summary(), list], ..Rules::default() });
        let report = Scanner::new(vec![r], 90).scan(&scope(), &controls, "test").await.unwrap();
        assert_eq!(report.result(ControlId::Iam6).unwrap().status, expected, "{:?}", report.results);
        assert_eq!(report.result(ControlId::Iam9).unwrap().status, Status::Pass);
    }
    let denied_list = mock!(aws_sdk_iam::Client::list_virtual_mfa_devices)
        .then_error(|| ListVirtualMFADevicesError::generic(denied()));
    let r = reader_with(Rules { iam: vec![summary(), denied_list], ..Rules::default() });
    let report = Scanner::new(vec![r], 90).scan(&scope(), &controls, "test").await.unwrap();
    let iam6 = report.result(ControlId::Iam6).unwrap();
    assert_eq!((iam6.status, iam6.error_code), (Status::Unknown, Some(ErrorCode::AccessDenied)), "{iam6:?}");
    assert_eq!(report.result(ControlId::Iam4).unwrap().status, Status::Pass);
    assert_eq!(report.result(ControlId::Iam9).unwrap().status, Status::Pass);
}

const LOG_GROUP: &str = "arn:aws:logs:eu-west-1:123456789012:log-group:trail-logs:*";
const TOPIC: &str = "arn:aws:sns:eu-west-1:123456789012:security";

/// A healthy trail delivering to `LOG_GROUP`.
fn trail_to_log_group() -> Vec<Rule> {
    use aws_sdk_cloudtrail::operation::describe_trails::DescribeTrailsOutput;
    use aws_sdk_cloudtrail::operation::get_event_selectors::GetEventSelectorsOutput;
    use aws_sdk_cloudtrail::operation::get_trail_status::GetTrailStatusOutput;
    use aws_sdk_cloudtrail::types::Trail;
    vec![
        mock!(aws_sdk_cloudtrail::Client::describe_trails).then_output(|| {
            let trail = Trail::builder()
                .name("main")
                .trail_arn("arn:aws:cloudtrail:eu-west-1:123456789012:trail/main")
                .home_region(REGION)
                .is_multi_region_trail(true)
                .cloud_watch_logs_log_group_arn(LOG_GROUP)
                .build();
            DescribeTrailsOutput::builder().trail_list(trail).build()
        }),
        mock!(aws_sdk_cloudtrail::Client::get_trail_status)
            .then_output(|| GetTrailStatusOutput::builder().is_logging(true).build()),
        mock!(aws_sdk_cloudtrail::Client::get_event_selectors)
            .then_output(|| GetEventSelectorsOutput::builder().build()),
    ]
}

/// The chain for CIS 4.5 only: its filter (written in another order and quoting than the
/// benchmark's), an alarm on its metric notifying `TOPIC`, and `TOPIC`'s subscriptions as `sns`
/// answers.
fn cis45_chain(sns: Vec<Rule>) -> Rules {
    use aws_sdk_cloudwatch::operation::describe_alarms::DescribeAlarmsOutput;
    use aws_sdk_cloudwatch::types::MetricAlarm;
    use aws_sdk_cloudwatchlogs::operation::describe_metric_filters::DescribeMetricFiltersOutput;
    use aws_sdk_cloudwatchlogs::types::{MetricFilter, MetricTransformation};
    Rules {
        cloudtrail: trail_to_log_group(),
        logs: vec![
            mock!(aws_sdk_cloudwatchlogs::Client::describe_metric_filters)
                .match_requests(|r| r.log_group_name() == Some("trail-logs"))
                .then_output(|| {
                    let metric = MetricTransformation::builder()
                        .metric_namespace("CISBenchmark")
                        .metric_name("TrailChanges")
                        .metric_value("1")
                        .build()
                        .unwrap();
                    let filter = MetricFilter::builder()
                        .filter_name("trail-changes")
                        .log_group_name("trail-logs")
                        .filter_pattern(
                            r#"{($.eventName="StopLogging")||($.eventName=StartLogging)||($.eventName=DeleteTrail)||
                                ($.eventName=UpdateTrail)||($.eventName="CreateTrail")}"#,
                        )
                        .metric_transformations(metric)
                        .build();
                    DescribeMetricFiltersOutput::builder().metric_filters(filter).build()
                }),
        ],
        cloudwatch: vec![mock!(aws_sdk_cloudwatch::Client::describe_alarms).then_output(|| {
            let alarm = MetricAlarm::builder()
                .alarm_name("trail-changes")
                .namespace("CISBenchmark")
                .metric_name("TrailChanges")
                .actions_enabled(true)
                .alarm_actions(TOPIC)
                .build();
            DescribeAlarmsOutput::builder().metric_alarms(alarm).build()
        })],
        sns,
        ..Rules::default()
    }
}

fn monitoring_controls() -> ScanTarget {
    ScanTarget::controls(MONITORING_CLASSES.iter().map(|m| m.control))
}

/// CIS 4.1-4.15 over mocked CloudWatch Logs, CloudWatch and SNS: the one class with a complete
/// chain passes, the others fail naming the missing filter; a pending subscription is no
/// subscriber; a denied link is unknown (never a pass, never a plain fail).
#[tokio::test]
async fn the_monitoring_chain_passes_fails_and_is_unknown_when_a_link_is_denied() {
    use aws_sdk_cloudwatchlogs::operation::describe_metric_filters::DescribeMetricFiltersError;
    use aws_sdk_sns::operation::list_subscriptions_by_topic::{
        ListSubscriptionsByTopicError, ListSubscriptionsByTopicOutput,
    };
    use aws_sdk_sns::types::Subscription;
    let subscribed = |arn: &'static str| {
        vec![
            mock!(aws_sdk_sns::Client::list_subscriptions_by_topic)
                .match_requests(|r| r.topic_arn() == Some(TOPIC))
                .then_output(move || {
                    let sub = Subscription::builder().subscription_arn(arn).protocol("email").topic_arn(TOPIC).build();
                    ListSubscriptionsByTopicOutput::builder().subscriptions(sub).build()
                }),
        ]
    };
    let scan = |rules: Rules| async move {
        let scanner = Scanner::new(vec![reader_with(rules)], 90);
        scanner.scan(&scope(), &monitoring_controls(), "test").await.unwrap()
    };

    let report = scan(cis45_chain(subscribed("arn:aws:sns:eu-west-1:123456789012:security:0b1c"))).await;
    assert_eq!(report.results.len(), 15);
    for (_, r) in &report.results {
        if r.control == ControlId::Cis3_4_5 {
            assert_eq!(r.status, Status::Pass, "{r:?}");
        } else {
            assert_eq!(r.status, Status::Fail, "{r:?}");
            assert!(r.reason.as_deref().unwrap().contains("no metric filter"), "{r:?}");
        }
    }

    let pending = scan(cis45_chain(subscribed("PendingConfirmation"))).await;
    let r = pending.result(ControlId::Cis3_4_5).unwrap();
    assert_eq!(r.status, Status::Fail);
    assert!(r.reason.as_deref().unwrap().contains("no SNS topic with a confirmed subscription"), "{r:?}");

    let sns_denied = vec![
        mock!(aws_sdk_sns::Client::list_subscriptions_by_topic)
            .then_error(|| ListSubscriptionsByTopicError::generic(denied())),
    ];
    let r = scan(cis45_chain(sns_denied)).await.result(ControlId::Cis3_4_5).unwrap().clone();
    assert_eq!((r.status, r.error_code), (Status::Unknown, Some(ErrorCode::AccessDenied)), "{r:?}");
    assert!(r.reason.as_deref().unwrap().contains("sns:ListSubscriptionsByTopic"), "{r:?}");

    let mut logs_denied = cis45_chain(vec![]);
    logs_denied.logs = vec![
        mock!(aws_sdk_cloudwatchlogs::Client::describe_metric_filters)
            .then_error(|| DescribeMetricFiltersError::generic(denied())),
    ];
    for (_, r) in &scan(logs_denied).await.results {
        assert_eq!((r.status, r.error_code), (Status::Unknown, Some(ErrorCode::AccessDenied)), "{r:?}");
        assert!(r.reason.as_deref().unwrap().contains("logs:DescribeMetricFilters"), "{r:?}");
    }
}

/// CIS 4.16: a hub passes; `InvalidAccessException` (not subscribed) fails; access denied is unknown.
#[tokio::test]
async fn security_hub_enabled_not_subscribed_or_unreadable() {
    use aws_sdk_securityhub::operation::describe_hub::{DescribeHubError, DescribeHubOutput};
    let target = &ScanTarget::controls([ControlId::Cis3_4_16]);
    let hub = |rule: Rule| async move {
        let scanner = Scanner::new(vec![reader_with(Rules { securityhub: vec![rule], ..Rules::default() })], 90);
        scanner.scan(&scope(), target, "test").await.unwrap().result(ControlId::Cis3_4_16).unwrap().clone()
    };
    let on = mock!(aws_sdk_securityhub::Client::describe_hub).then_output(|| {
        DescribeHubOutput::builder().hub_arn("arn:aws:securityhub:eu-west-1:123456789012:hub/default").build()
    });
    assert_eq!(hub(on).await.status, Status::Pass);
    let not_subscribed = || {
        ErrorMetadata::builder()
            .code("InvalidAccessException")
            .message("Account 123456789012 is not subscribed to AWS Security Hub")
            .build()
    };
    let off = mock!(aws_sdk_securityhub::Client::describe_hub)
        .then_error(move || DescribeHubError::generic(not_subscribed()));
    let r = hub(off).await;
    assert_eq!(r.status, Status::Fail, "{r:?}");
    assert_eq!(r.failing_resources, vec!["arn:aws:securityhub:eu-west-1:123456789012:hub/default"]);
    let denied = mock!(aws_sdk_securityhub::Client::describe_hub).then_error(|| DescribeHubError::generic(denied()));
    let r = hub(denied).await;
    assert_eq!((r.status, r.error_code), (Status::Unknown, Some(ErrorCode::AccessDenied)), "{r:?}");
}

/// IAM.28 on a mocked client (moto has no IAM Access Analyzer: `ListAnalyzers` is a 404 there, so
/// the emulator shows only `unknown`/`unsupported`): every page is read, an active `ACCOUNT`
/// analyzer on the second page passes, an unused-access one alone fails, and a 404 is unknown.
#[tokio::test]
async fn access_analyzer_is_read_page_by_page_and_only_an_active_external_one_passes() {
    use aws_sdk_accessanalyzer::operation::list_analyzers::ListAnalyzersOutput;
    use aws_sdk_accessanalyzer::types::{AnalyzerStatus, AnalyzerSummary, Type};
    let analyzer = |name: &str, kind: Type, status: AnalyzerStatus| {
        AnalyzerSummary::builder()
            .arn(format!("arn:aws:access-analyzer:{REGION}:{ACCOUNT}:analyzer/{name}"))
            .name(name)
            .r#type(kind)
            .status(status)
            .created_at(aws_smithy_types::DateTime::from_secs(0))
            .build()
            .unwrap()
    };
    let unused = move || analyzer("unused", Type::AccountUnusedAccess, AnalyzerStatus::Active);
    let external = move || analyzer("external", Type::Account, AnalyzerStatus::Active);
    let two_pages = vec![
        mock!(aws_sdk_accessanalyzer::Client::list_analyzers)
            .match_requests(|r| r.next_token().is_none())
            .then_output(move || ListAnalyzersOutput::builder().analyzers(unused()).next_token("p2").build().unwrap()),
        mock!(aws_sdk_accessanalyzer::Client::list_analyzers)
            .match_requests(|r| r.next_token() == Some("p2"))
            .then_output(move || ListAnalyzersOutput::builder().analyzers(external()).build().unwrap()),
    ];
    let target = ScanTarget::controls([ControlId::Iam28]);
    let scan = |rules: Vec<Rule>| {
        let target = target.clone();
        async move {
            let scanner = Scanner::new(vec![reader_with(Rules { accessanalyzer: rules, ..Rules::default() })], 90);
            scanner.scan(&scope(), &target, "test").await.unwrap().result(ControlId::Iam28).unwrap().clone()
        }
    };
    assert_eq!(scan(two_pages).await.status, Status::Pass);

    let only_unused = vec![
        mock!(aws_sdk_accessanalyzer::Client::list_analyzers)
            .then_output(move || ListAnalyzersOutput::builder().analyzers(unused()).build().unwrap()),
    ];
    let r = scan(only_unused).await;
    assert_eq!(r.status, Status::Fail);
    assert_eq!(r.failing_resources, vec![format!("access-analyzer:{ACCOUNT}:{REGION}")]);

    let not_found =
        || HttpResponse::new(StatusCode::try_from(404).unwrap(), SdkBody::from("<html><h1>Not Found</h1></html>"));
    let r = scan(vec![mock!(aws_sdk_accessanalyzer::Client::list_analyzers).then_http_response(not_found)]).await;
    assert_eq!((r.status, r.error_code), (Status::Unknown, Some(ErrorCode::Unsupported)), "{r:?}");
}

/// IAM.26 reads each certificate's `notAfter` from its body, whatever the listing's `Expiration`
/// says; a certificate whose body is denied or garbled is unknown, never a pass.
#[tokio::test]
async fn server_certificates_expire_by_their_body() {
    use aws_sdk_iam::operation::get_server_certificate::{GetServerCertificateError, GetServerCertificateOutput};
    use aws_sdk_iam::operation::list_server_certificates::ListServerCertificatesOutput;
    use aws_sdk_iam::types::{ServerCertificate, ServerCertificateMetadata};
    const EXPIRED: &str = include_str!("collect/testdata/expired-2021.pem");
    let metadata = |name: &str| {
        ServerCertificateMetadata::builder()
            .path("/")
            .server_certificate_name(name)
            .server_certificate_id(name)
            .arn(format!("arn:aws:iam::{ACCOUNT}:server-certificate/{name}"))
            // A listing that says otherwise: the body decides.
            .expiration(aws_smithy_types::DateTime::from_secs(4_102_444_800))
            .build()
            .unwrap()
    };
    let listed = move |names: &'static [&'static str]| {
        mock!(aws_sdk_iam::Client::list_server_certificates).then_output(move || {
            let mut out = ListServerCertificatesOutput::builder();
            for n in names {
                out = out.server_certificate_metadata_list(metadata(n));
            }
            out.build().unwrap()
        })
    };
    let body = move |name: &'static str, pem: &'static str| {
        mock!(aws_sdk_iam::Client::get_server_certificate)
            .match_requests(move |r| r.server_certificate_name() == Some(name))
            .then_output(move || {
                let cert = ServerCertificate::builder()
                    .server_certificate_metadata(metadata(name))
                    .certificate_body(pem)
                    .build()
                    .unwrap();
                GetServerCertificateOutput::builder().server_certificate(cert).build()
            })
    };
    let target = ScanTarget::controls([ControlId::Iam26]);
    let scan = |iam: Vec<Rule>| {
        let target = target.clone();
        async move {
            let scanner = Scanner::new(vec![reader_with(Rules { iam, ..Rules::default() })], 90);
            scanner.scan(&scope(), &target, "test").await.unwrap().result(ControlId::Iam26).unwrap().clone()
        }
    };
    let r = scan(vec![listed(&["old"]), body("old", EXPIRED)]).await;
    assert_eq!(r.status, Status::Fail);
    assert_eq!(r.failing_resources, vec![format!("arn:aws:iam::{ACCOUNT}:server-certificate/old")]);

    let denied_body =
        mock!(aws_sdk_iam::Client::get_server_certificate).then_error(|| GetServerCertificateError::generic(denied()));
    let r = scan(vec![listed(&["secret"]), denied_body]).await;
    assert_eq!((r.status, r.error_code), (Status::Unknown, Some(ErrorCode::AccessDenied)), "{r:?}");

    let r = scan(vec![
        listed(&["garbled"]),
        body("garbled", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
    ])
    .await;
    assert_eq!((r.status, r.error_code), (Status::Unknown, Some(ErrorCode::ReadFailed)), "{r:?}");
    assert!(r.reason.unwrap().contains("the certificate body"));
}
