//! The control catalog: every control Portcullis measures, one entry each, and the EventBridge rules
//! that deliver their change events.
//!
//! An entry holds the control's metadata (id, title, severity, the CIS AWS Foundations Benchmark
//! v3.0.0 recommendations and the AWS Security Hub control it maps to, remediation), what it reads
//! and what that costs, and the change events that rescan it. Everything else is generated from or
//! checked against this table (`make catalog` regenerates, `cargo test` checks):
//! - the rules on the default bus and the posture queue's policy in
//!   `infra/cloudformation/portcullis.yaml`, and a test that parses the template back;
//! - the control and change-event tables of `docs/posture.md`, with one section per control
//!   (the anchor the alert rules' runbook links point at);
//! - the control list of the Grafana dashboard, and the runbook links of the alert rules;
//! - [`super::events::parse_event`], which finds the controls an event rescans here.
//!
//! Adding a control is one entry here, its evaluation (in [`super::controls`]) and its collector
//! (in the posture worker). The id is AWS Security Hub's, the project's stable key.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// How bad a failure is: AWS Security Hub's severity of the control.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "Low",
            Severity::Medium => "Medium",
            Severity::High => "High",
            Severity::Critical => "Critical",
        }
    }
}

/// Where a control is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coverage {
    /// Once per account, in its home region (IAM and account-wide settings).
    Account,
    /// In every scanned region.
    Region,
}

/// What a change event rescans of a control.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rescan {
    /// The whole control in the event's scope.
    Scope,
    /// The user the event names (the control is re-evaluated with that user read afresh).
    User,
    /// The KMS key the event names.
    Key,
    /// The whole control, but only for events the root user made without naming a user.
    RootUser,
}

/// An event that rescans a control.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeEvent {
    /// `AWS API Call via CloudTrail` events of one `eventSource` with one of these `eventName`s.
    Api { event_source: &'static str, names: &'static [&'static str] },
    /// A `GuardDuty Finding` of severity 7 or more.
    GuardDutyFinding,
}

/// One catalog entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlSpec {
    pub id: ControlId,
    /// One line, also the `title` of evidence and violation events.
    pub title: &'static str,
    /// A few words, for the dashboard.
    pub label: &'static str,
    /// Security Hub's severity.
    pub severity: Severity,
    /// CIS AWS Foundations Benchmark v3.0.0 recommendations (none: Security Hub only).
    pub cis: &'static [&'static str],
    pub coverage: Coverage,
    pub rescan: Rescan,
    /// When it passes, with its boundaries (Markdown).
    pub passes_when: &'static str,
    /// What to do when it fails (Markdown).
    pub remediation: &'static str,
    /// The API calls it reads (IAM action names).
    pub reads: &'static [&'static str],
    /// What those reads cost per scan.
    pub cost: &'static str,
    pub events: &'static [ChangeEvent],
}

macro_rules! catalog {
    ($( $(#[$doc:meta])* $variant:ident = $id:literal { $($field:ident: $value:expr,)* } )*) => {
        /// A control Portcullis measures: the AWS Security Hub control id.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum ControlId {
            $( $(#[$doc])* #[serde(rename = $id)] $variant, )*
        }

        impl ControlId {
            /// Every control, in catalog order.
            pub const ALL: &'static [ControlId] = &[$(ControlId::$variant),*];

            /// The Security Hub id, e.g. `CloudTrail.1`.
            pub fn as_str(self) -> &'static str {
                match self { $(ControlId::$variant => $id,)* }
            }

            /// The control's catalog entry.
            pub fn spec(self) -> &'static ControlSpec {
                match self {
                    $(ControlId::$variant => {
                        const SPEC: ControlSpec = ControlSpec { id: ControlId::$variant, $($field: $value,)* };
                        &SPEC
                    })*
                }
            }
        }
    };
}

const ACCOUNT: &str = "account.amazonaws.com";
const CLOUDTRAIL: &str = "cloudtrail.amazonaws.com";
const CONFIG: &str = "config.amazonaws.com";
const EC2: &str = "ec2.amazonaws.com";
const GUARDDUTY: &str = "guardduty.amazonaws.com";
const IAM: &str = "iam.amazonaws.com";
const KMS: &str = "kms.amazonaws.com";
const S3: &str = "s3.amazonaws.com";
const RDS: &str = "rds.amazonaws.com";
const EFS: &str = "elasticfilesystem.amazonaws.com";
const ACCESS_ANALYZER: &str = "access-analyzer.amazonaws.com";
const LOGS: &str = "logs.amazonaws.com";
/// CloudWatch (alarms).
const MONITORING: &str = "monitoring.amazonaws.com";
const SNS: &str = "sns.amazonaws.com";
const SECURITYHUB: &str = "securityhub.amazonaws.com";

/// The id prefix of controls that are CIS AWS Foundations v3.0 recommendations with no Security Hub
/// control.
const CIS_PREFIX: &str = "CIS3-";

/// What the CIS 4.x chain (trail, log group, metric filter, alarm, topic, subscriber) reads.
const MONITORING_READS: &[&str] = &[
    "cloudtrail:DescribeTrails",
    "cloudtrail:GetTrailStatus",
    "cloudtrail:GetEventSelectors",
    "logs:DescribeMetricFilters",
    "cloudwatch:DescribeAlarms",
    "sns:ListSubscriptionsByTopic",
];
const MONITORING_COST: &str = "shared by CIS 4.1-4.15, beyond CloudTrail.1's reads: 1 `DescribeMetricFilters` per \
    healthy trail's log group (50 filters a page), 1 `DescribeAlarms` per log group region (100 alarms a page), 1 \
    `ListSubscriptionsByTopic` per topic an alarm notifies";
/// Any link of the CIS 4.x chain changed.
const MONITORING_EVENTS: &[ChangeEvent] = &[
    ChangeEvent::Api {
        event_source: CLOUDTRAIL,
        names: &["CreateTrail", "UpdateTrail", "DeleteTrail", "StartLogging", "StopLogging", "PutEventSelectors"],
    },
    ChangeEvent::Api { event_source: LOGS, names: &["PutMetricFilter", "DeleteMetricFilter", "DeleteLogGroup"] },
    ChangeEvent::Api {
        event_source: MONITORING,
        names: &["PutMetricAlarm", "DeleteAlarms", "DisableAlarmActions", "EnableAlarmActions"],
    },
    ChangeEvent::Api { event_source: SNS, names: &["Subscribe", "ConfirmSubscription", "Unsubscribe", "DeleteTopic"] },
];
/// A trail's selectors or health changed (S3.22, S3.23).
const S3_DATA_EVENT_EVENTS: &[ChangeEvent] = &[ChangeEvent::Api {
    event_source: CLOUDTRAIL,
    names: &["PutEventSelectors", "CreateTrail", "UpdateTrail", "DeleteTrail", "StartLogging", "StopLogging"],
}];
/// A DB instance created, restored, changed or deleted (RDS.2, RDS.13).
const DB_INSTANCE_EVENTS: &[ChangeEvent] = &[ChangeEvent::Api {
    event_source: RDS,
    names: &[
        "CreateDBInstance",
        "CreateDBInstanceReadReplica",
        "RestoreDBInstanceFromDBSnapshot",
        "RestoreDBInstanceToPointInTime",
        "RestoreDBInstanceFromS3",
        "ModifyDBInstance",
        "DeleteDBInstance",
    ],
}];
/// A DB instance created, restored or deleted: encryption is set at creation only (RDS.3).
const DB_INSTANCE_CREATION_EVENTS: &[ChangeEvent] = &[ChangeEvent::Api {
    event_source: RDS,
    names: &[
        "CreateDBInstance",
        "CreateDBInstanceReadReplica",
        "RestoreDBInstanceFromDBSnapshot",
        "RestoreDBInstanceToPointInTime",
        "RestoreDBInstanceFromS3",
        "DeleteDBInstance",
    ],
}];
const DB_INSTANCE_READS: &[&str] = &["rds:DescribeDBInstances"];
const DB_INSTANCE_COST: &str =
    "1 `DescribeDBInstances` per region and 100 instances, shared by RDS.2, RDS.3 and RDS.13";
/// What S3.5, S3.8 and S3.20 read: the account's buckets, each one's region, then one read per
/// bucket in that region.
const BUCKET_LIST_READS: [&str; 2] = ["s3:ListAllMyBuckets", "s3:GetBucketLocation"];
const TRAIL_CONFIG_EVENTS: &[ChangeEvent] =
    &[ChangeEvent::Api { event_source: CLOUDTRAIL, names: &["CreateTrail", "UpdateTrail", "DeleteTrail"] }];
catalog! {
    Account1 = "Account.1" {
        title: "Security contact information is provided for the account",
        label: "Security contact",
        severity: Severity::Medium,
        cis: &["1.2"],
        coverage: Coverage::Account,
        rescan: Rescan::Scope,
        passes_when: "`GetAlternateContact` with `AlternateContactType` `SECURITY` returns a contact for the \
            account. `ResourceNotFoundException` (none set) fails; access denied (in an organization, a \
            member may need the management account or trusted access) leaves the control unknown.",
        remediation: "`aws account put-alternate-contact --alternate-contact-type SECURITY --email-address \
            <team address> --name <team> --phone-number <number> --title <role>`: a team address that \
            someone reads, not a person's.",
        reads: &["account:GetAlternateContact"],
        cost: "1 per account",
        events: &[ChangeEvent::Api {
            event_source: ACCOUNT,
            names: &["PutAlternateContact", "DeleteAlternateContact"],
        }],
    }
    CloudTrail1 = "CloudTrail.1" {
        title: "A multi-region trail logs read and write management events",
        label: "Trail logging",
        severity: Severity::High,
        cis: &["3.1"],
        coverage: Coverage::Region,
        rescan: Rescan::Scope,
        passes_when: "At least one trail is multi-region, logging, without a delivery error \
            (`LatestDeliveryError`), records read **and** write management events, and excludes no event \
            source. Selectors are OR'ed: an event is logged when any selector matches it, so an exclusion in \
            one selector does not remove what another records. The field conditions of one advanced \
            selector are AND'ed; an advanced selector that filters on anything but `eventCategory`, \
            `readOnly` and `eventSource` is not counted. No selector at all is CloudTrail's default (every \
            management event). A multi-region trail seen from another region (a shadow trail) is read \
            through its `HomeRegion`. A trail that cannot be read leaves the control unknown unless \
            another trail is healthy.",
        remediation: "Restore a multi-region trail: `aws cloudtrail start-logging --name <trail>`, \
            `update-trail --is-multi-region-trail`, event selectors that record every read and write \
            management event, and a bucket policy or KMS key that lets CloudTrail deliver. The `Posture \
            Violation` event and CloudTrail event history say who changed it; treat an unexplained stop as \
            an incident.",
        reads: &["cloudtrail:DescribeTrails", "cloudtrail:GetTrailStatus", "cloudtrail:GetEventSelectors"],
        cost: "1 per region, plus 2 per trail, read in the trail's home region",
        events: &[ChangeEvent::Api {
            event_source: CLOUDTRAIL,
            names: &["StopLogging", "DeleteTrail", "UpdateTrail", "PutEventSelectors", "CreateTrail", "StartLogging"],
        }],
    }
    CloudTrail2 = "CloudTrail.2" {
        title: "Trails are encrypted at rest with KMS",
        label: "Trail encrypted",
        severity: Severity::Medium,
        cis: &["3.5"],
        coverage: Coverage::Region,
        rescan: Rescan::Scope,
        passes_when: "Every trail `DescribeTrails` lists in the region has a KMS key (`KmsKeyId`; empty \
            or absent fails), as CIS 3.5 audits it: shadow copies of multi-region trails homed elsewhere \
            are judged too, with their configuration read by `GetTrail` in their home region (so a trail \
            homed in a region that is not scanned is still judged wherever it is seen). A trail whose \
            configuration cannot be read leaves the control unknown unless a readable trail fails. No \
            trail passes with no resource: CloudTrail.1 reports the absence.",
        remediation: "`aws cloudtrail update-trail --name <trail> --kms-key-id <key>`, with a customer \
            managed key whose policy lets CloudTrail encrypt and your readers decrypt.",
        reads: &["cloudtrail:DescribeTrails", "cloudtrail:GetTrail"],
        cost: "1 `GetTrail` per shadow trail (in its home region), beyond CloudTrail.1's reads",
        events: TRAIL_CONFIG_EVENTS,
    }
    CloudTrail4 = "CloudTrail.4" {
        title: "Trails validate their log files",
        label: "Log validation",
        severity: Severity::Low,
        cis: &["3.2"],
        coverage: Coverage::Region,
        rescan: Rescan::Scope,
        passes_when: "Every trail `DescribeTrails` lists in the region has log file validation on \
            (`LogFileValidationEnabled`), as CIS 3.2 audits it: shadow copies of multi-region trails homed \
            elsewhere are judged too, with their configuration read by `GetTrail` in their home region. A \
            trail whose configuration cannot be read leaves the control unknown unless a readable trail \
            fails. No trail passes with no resource: CloudTrail.1 reports the absence.",
        remediation: "`aws cloudtrail update-trail --name <trail> --enable-log-file-validation`; \
            `aws cloudtrail validate-logs` then proves the delivered files were not changed.",
        reads: &["cloudtrail:DescribeTrails", "cloudtrail:GetTrail"],
        cost: "1 `GetTrail` per shadow trail (in its home region), beyond CloudTrail.1's reads",
        events: TRAIL_CONFIG_EVENTS,
    }
    CloudTrail7 = "CloudTrail.7" {
        title: "The S3 buckets trails deliver to have server access logging",
        label: "Trail bucket logging",
        severity: Severity::Low,
        cis: &["3.4"],
        coverage: Coverage::Region,
        rescan: Rescan::Scope,
        passes_when: "The S3 bucket of every trail `DescribeTrails` lists in the region (shadow copies \
            included) has server access logging (`GetBucketLogging` returns a `LoggingEnabled` target). A \
            bucket the account does not own (`ListBuckets` does not list it: an organization's log archive \
            in another account) is not judged from here and leaves the control unknown, as does a bucket \
            whose logging cannot be read; a bucket that can be read and has no logging fails. A region \
            without trails passes (CloudTrail.1 judges that).",
        remediation: "`aws s3api put-bucket-logging --bucket <trail bucket> --bucket-logging-status \
            '{\"LoggingEnabled\":{\"TargetBucket\":\"<log bucket>\",\"TargetPrefix\":\"<trail bucket>/\"}}'` \
            (a separate target bucket); for a bucket in a log archive account, check it there.",
        reads: &["cloudtrail:DescribeTrails", "s3:ListAllMyBuckets", "s3:GetBucketLocation", "s3:GetBucketLogging"],
        cost: "beyond CloudTrail.1's reads: 1 `ListBuckets` per region with trails, plus 1 \
            `GetBucketLocation` and 1 `GetBucketLogging` per trail bucket the account owns",
        events: &[
            ChangeEvent::Api { event_source: CLOUDTRAIL, names: &["CreateTrail", "UpdateTrail", "DeleteTrail"] },
            ChangeEvent::Api { event_source: S3, names: &["PutBucketLogging"] },
        ],
    }
    Config1 = "Config.1" {
        title: "AWS Config records all resources with the service-linked role",
        label: "Config recording",
        severity: Severity::Critical,
        cis: &["3.3"],
        coverage: Coverage::Region,
        rescan: Rescan::Scope,
        passes_when: "The region has a configuration recorder that is recording (`recording` in \
            `DescribeConfigurationRecorderStatus`), whose last status is not `Failure`, that records all \
            supported resource types (`allSupported`), that also records global resource types \
            (`includeGlobalResourceTypes`) in the home region only where AWS advises recording them, and, \
            when `posture.config_require_service_linked_role` is true (the default, as in Security Hub), \
            that uses the role `aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig`. No recorder \
            fails.",
        remediation: "Create the service-linked role (`aws iam create-service-linked-role \
            --aws-service-name config.amazonaws.com`), `aws configservice put-configuration-recorder` with \
            `allSupported` (and global resource types in the home region), a delivery channel, then \
            `start-configuration-recorder`.",
        reads: &["config:DescribeConfigurationRecorders", "config:DescribeConfigurationRecorderStatus"],
        cost: "2 per region",
        events: &[ChangeEvent::Api {
            event_source: CONFIG,
            names: &[
                "PutConfigurationRecorder",
                "DeleteConfigurationRecorder",
                "StartConfigurationRecorder",
                "StopConfigurationRecorder",
                "PutDeliveryChannel",
                "DeleteDeliveryChannel",
            ],
        }],
    }
    Ec22 = "EC2.2" {
        title: "VPC default security groups allow no traffic",
        label: "Default SG closed",
        severity: Severity::High,
        cis: &["5.4"],
        coverage: Coverage::Region,
        rescan: Rescan::Scope,
        passes_when: "The `default` security group of every VPC has no inbound and no outbound rule (a \
            rule that references the group itself counts). A new VPC's default group comes with an \
            outbound rule: it fails until that rule is revoked.",
        remediation: "Revoke every rule of each VPC's default group (`aws ec2 \
            revoke-security-group-ingress` and `revoke-security-group-egress`) and give resources groups \
            made for them.",
        reads: &["ec2:DescribeSecurityGroups"],
        cost: "1 per region and 1,000 groups, shared with EC2.53 and EC2.54",
        events: &[ChangeEvent::Api {
            event_source: EC2,
            names: &[
                "AuthorizeSecurityGroupIngress",
                "RevokeSecurityGroupIngress",
                "AuthorizeSecurityGroupEgress",
                "RevokeSecurityGroupEgress",
                "ModifySecurityGroupRules",
                "CreateVpc",
                "DeleteVpc",
            ],
        }],
    }
    Ec26 = "EC2.6" {
        title: "VPC flow logging is enabled in every VPC",
        label: "VPC flow logs",
        severity: Severity::Medium,
        cis: &["3.7"],
        coverage: Coverage::Region,
        rescan: Rescan::Scope,
        passes_when: "Every VPC has a flow log on the VPC itself (`ResourceId` is the VPC: subnet and \
            network-interface flow logs do not count) with status `ACTIVE`, that records rejected traffic \
            (`TrafficType` `REJECT` or `ALL`; `ACCEPT` alone fails) and whose delivery has not failed \
            (`DeliverLogsStatus` `FAILED` fails, with the delivery error). A region without VPCs passes.",
        remediation: "`aws ec2 create-flow-logs --resource-type VPC --resource-ids <vpc> --traffic-type \
            REJECT --log-destination-type s3 --log-destination arn:aws:s3:::<bucket>` (or a CloudWatch \
            Logs group); fix the destination's permissions when delivery fails.",
        reads: &["ec2:DescribeVpcs", "ec2:DescribeFlowLogs"],
        cost: "2 per region (1,000 VPCs or flow logs per page)",
        events: &[ChangeEvent::Api {
            event_source: EC2,
            names: &["CreateFlowLogs", "DeleteFlowLogs", "CreateVpc", "DeleteVpc"],
        }],
    }
    Ec27 = "EC2.7" {
        title: "EBS default encryption is enabled",
        label: "EBS encryption",
        severity: Severity::Medium,
        cis: &["2.2.1"],
        coverage: Coverage::Region,
        rescan: Rescan::Scope,
        passes_when: "`GetEbsEncryptionByDefault` is true in the region (a per-region setting, off by \
            default).",
        remediation: "`aws ec2 enable-ebs-encryption-by-default` in every region. Volumes created before \
            stay unencrypted: copy their snapshots with encryption.",
        reads: &["ec2:GetEbsEncryptionByDefault"],
        cost: "1 per region",
        events: &[ChangeEvent::Api {
            event_source: EC2,
            names: &["EnableEbsEncryptionByDefault", "DisableEbsEncryptionByDefault"],
        }],
    }
    Ec28 = "EC2.8" {
        title: "EC2 instances require IMDSv2",
        label: "IMDSv2",
        severity: Severity::High,
        cis: &["5.6"],
        coverage: Coverage::Region,
        rescan: Rescan::Scope,
        passes_when: "Every instance that is not `terminated` or `shutting-down` has \
            `MetadataOptions.HttpTokens` `required` (session tokens: IMDSv2 only), or no metadata endpoint \
            at all (`HttpEndpoint` `disabled`). Stopped instances count: they start again as they are. A \
            region without instances passes.",
        remediation: "`aws ec2 modify-instance-metadata-options --instance-id <id> --http-tokens required \
            --http-endpoint enabled` (check first that the software on it uses IMDSv2: current SDKs do); \
            set `HttpTokens` `required` in launch templates and as the account default \
            (`modify-instance-metadata-defaults`).",
        reads: &["ec2:DescribeInstances"],
        cost: "1 per region and 1,000 instances",
        events: &[ChangeEvent::Api {
            event_source: EC2,
            names: &["RunInstances", "ModifyInstanceMetadataOptions", "TerminateInstances"],
        }],
    }
    Ec221 = "EC2.21" {
        title: "Network ACLs allow no ingress from the internet to remote administration ports",
        label: "NACL 22/3389 closed",
        severity: Severity::Medium,
        cis: &["5.1"],
        coverage: Coverage::Region,
        rescan: Rescan::Scope,
        passes_when: "No network ACL lets `0.0.0.0/0` or `::/0` reach TCP port 22 or 3389. Inbound entries \
            are evaluated as AWS does, in rule-number order, the first matching entry deciding: an allow \
            shadowed by a lower-numbered deny of the same source and port lets nothing in (it passes), a \
            deny numbered after the allow is too late (it fails). An entry matches when its source is \
            exactly `0.0.0.0/0` (or `::/0`) and its protocol is all (`-1`) or TCP (`6`) with a port \
            range that holds the port (no range: every port); a narrower deny does not close the port to \
            the rest of the internet. AWS's default ACL (rule 100 allows everything) fails.",
        remediation: "Add inbound deny entries numbered before the allow-all entry for TCP 22 and 3389 from \
            `0.0.0.0/0` and `::/0` (`aws ec2 create-network-acl-entry --ingress --rule-action deny \
            --protocol 6 --port-range From=22,To=22 --cidr-block 0.0.0.0/0 --rule-number 10`), or replace \
            the allow-all with the ranges you need.",
        reads: &["ec2:DescribeNetworkAcls"],
        cost: "1 per region and 1,000 network ACLs",
        events: &[ChangeEvent::Api {
            event_source: EC2,
            names: &[
                "CreateNetworkAclEntry",
                "ReplaceNetworkAclEntry",
                "DeleteNetworkAclEntry",
                "CreateNetworkAcl",
                "DeleteNetworkAcl",
                "ReplaceNetworkAclAssociation",
                "CreateVpc",
            ],
        }],
    }
    Ec253 = "EC2.53" {
        title: "Security groups allow no ingress from 0.0.0.0/0 to remote administration ports",
        label: "No 0.0.0.0/0 to 22/3389",
        severity: Severity::High,
        cis: &["5.2"],
        coverage: Coverage::Region,
        rescan: Rescan::Scope,
        passes_when: "No inbound rule of any security group has the IPv4 range exactly `0.0.0.0/0` with \
            protocol all (`-1`), TCP or UDP (`6`, `17`) and a port range that contains 22 or 3389 \
            (`FromPort` ≤ port ≤ `ToPort`; a rule without ports covers them all). Narrower ranges \
            (`10.0.0.0/8`), other ports (443), ICMP, prefix lists and references to groups never count.",
        remediation: "Revoke the rule (`aws ec2 revoke-security-group-ingress`) or narrow its source to \
            known ranges; reach instances through SSM Session Manager instead of open SSH or RDP.",
        reads: &["ec2:DescribeSecurityGroups"],
        cost: "shared with EC2.2",
        events: &[ChangeEvent::Api {
            event_source: EC2,
            names: &[
                "AuthorizeSecurityGroupIngress",
                "RevokeSecurityGroupIngress",
                "ModifySecurityGroupRules",
                "CreateSecurityGroup",
                "DeleteSecurityGroup",
            ],
        }],
    }
    Ec254 = "EC2.54" {
        title: "Security groups allow no ingress from ::/0 to remote administration ports",
        label: "No ::/0 to 22/3389",
        severity: Severity::High,
        cis: &["5.3"],
        coverage: Coverage::Region,
        rescan: Rescan::Scope,
        passes_when: "As EC2.53, for the IPv6 range exactly `::/0`.",
        remediation: "Revoke the rule (`aws ec2 revoke-security-group-ingress`) or narrow its source to \
            known ranges; reach instances through SSM Session Manager instead of open SSH or RDP.",
        reads: &["ec2:DescribeSecurityGroups"],
        cost: "shared with EC2.2",
        events: &[ChangeEvent::Api {
            event_source: EC2,
            names: &[
                "AuthorizeSecurityGroupIngress",
                "RevokeSecurityGroupIngress",
                "ModifySecurityGroupRules",
                "CreateSecurityGroup",
                "DeleteSecurityGroup",
            ],
        }],
    }
    Efs1 = "EFS.1" {
        title: "EFS file systems are encrypted at rest",
        label: "EFS encrypted",
        severity: Severity::Medium,
        cis: &["2.4.1"],
        coverage: Coverage::Region,
        rescan: Rescan::Scope,
        passes_when: "Every file system `DescribeFileSystems` lists in the region has `Encrypted` true (with AWS \
            KMS). A region without file systems passes.",
        remediation: "Encryption at rest is chosen when a file system is created: create an encrypted one \
            (`aws efs create-file-system --encrypted --kms-key-id <key>`), copy the data (AWS DataSync), \
            point the mount targets' clients at it and delete the old one.",
        reads: &["elasticfilesystem:DescribeFileSystems"],
        cost: "1 per region and 100 file systems",
        events: &[ChangeEvent::Api { event_source: EFS, names: &["CreateFileSystem", "DeleteFileSystem"] }],
    }
    GuardDuty1 = "GuardDuty.1" {
        title: "GuardDuty is enabled",
        label: "GuardDuty on",
        severity: Severity::High,
        cis: &[],
        coverage: Coverage::Region,
        rescan: Rescan::Scope,
        passes_when: "The region has a detector with status `ENABLED` (suspended or absent fails). Its \
            active (non-archived) findings of severity 7 or more are counted by band (high 7.0–8.9, \
            critical 9.0–10.0); when they cannot be read the control still passes and the findings part is \
            unknown.",
        remediation: "`aws guardduty create-detector --enable` (or `update-detector --enable`) in every \
            region; look in CloudTrail for `DeleteDetector`, `UpdateDetector` or `Disassociate*` calls.",
        reads: &["guardduty:ListDetectors", "guardduty:GetDetector", "guardduty:GetFindingsStatistics"],
        cost: "1 per region, plus 1 per detector, plus 1 for the findings",
        events: &[
            ChangeEvent::Api {
                event_source: GUARDDUTY,
                names: &[
                    "DeleteDetector",
                    "UpdateDetector",
                    "DisassociateFromMasterAccount",
                    "DisassociateFromAdministratorAccount",
                    "DisassociateMembers",
                    "DeleteMembers",
                    "StopMonitoringMembers",
                ],
            },
            ChangeEvent::GuardDutyFinding,
        ],
    }
    Iam2 = "IAM.2" {
        title: "IAM users hold no policies of their own",
        label: "No user policies",
        severity: Severity::Low,
        cis: &["1.15"],
        coverage: Coverage::Account,
        rescan: Rescan::Scope,
        passes_when: "No IAM user has a managed policy attached (`AttachedManagedPolicies`) or an inline \
            policy (`UserPolicyList`): users get their permissions through groups (or, better, through \
            roles). Policies on groups and roles never fail.",
        remediation: "Put the user in a group that holds the policy (`aws iam add-user-to-group`), then \
            `detach-user-policy` / `delete-user-policy` each listed user's own policies.",
        reads: &["iam:GetAccountAuthorizationDetails"],
        cost: "1 per account and 1,000 users, groups and policies, shared with CIS3-1.16",
        events: &[ChangeEvent::Api {
            event_source: IAM,
            names: &["AttachUserPolicy", "DetachUserPolicy", "PutUserPolicy", "DeleteUserPolicy"],
        }],
    }
    Iam3 = "IAM.3" {
        title: "Active access keys are rotated every 90 days or less",
        label: "Keys rotated",
        severity: Severity::Medium,
        cis: &["1.14"],
        coverage: Coverage::Account,
        rescan: Rescan::User,
        passes_when: "No **active** access key is older than `posture.access_key_max_age_days` (default \
            90): a key exactly 90 days (90 × 86,400 s) old passes, one second more fails. Inactive keys \
            never fail. Read from the credential report, which AWS reuses for up to 4 hours; a user read on \
            their own after an event wins over the report's row until a report generated after that read.",
        remediation: "Create a new key, move its user to it, then deactivate and delete the old one \
            (`aws iam create-access-key`, `update-access-key --status Inactive`, `delete-access-key`). \
            Better: replace long-lived keys with roles and Portcullis grants.",
        reads: &[
            "iam:GenerateCredentialReport",
            "iam:GetCredentialReport",
            "iam:GetUser",
            "iam:GetLoginProfile",
            "iam:ListMFADevices",
            "iam:ListAccessKeys",
            "iam:GetAccessKeyLastUsed",
        ],
        cost: "2 per account (the credential report, shared with IAM.5 and IAM.22); after an event, 4 plus 1 \
            per key of the user it names",
        events: &[ChangeEvent::Api {
            event_source: IAM,
            names: &["CreateAccessKey", "UpdateAccessKey", "DeleteAccessKey", "CreateUser", "DeleteUser"],
        }],
    }
    Iam4 = "IAM.4" {
        title: "The root user has no access key",
        label: "No root key",
        severity: Severity::Critical,
        cis: &["1.4"],
        coverage: Coverage::Account,
        rescan: Rescan::RootUser,
        passes_when: "The root user has no access key (`AccountAccessKeysPresent` is 0).",
        remediation: "Sign in as the root user and delete its access keys (Security credentials); use roles \
            for automation.",
        reads: &["iam:GetAccountSummary"],
        cost: "1 per account, shared with IAM.9",
        events: &[ChangeEvent::Api {
            event_source: IAM,
            names: &["CreateAccessKey", "UpdateAccessKey", "DeleteAccessKey"],
        }],
    }
    Iam5 = "IAM.5" {
        title: "IAM users with a console password have MFA",
        label: "Console MFA",
        severity: Severity::Medium,
        cis: &["1.10"],
        coverage: Coverage::Account,
        rescan: Rescan::User,
        passes_when: "Every IAM user with a console password (`password_enabled`) has an MFA device \
            (`mfa_active`). Users without a password pass; the root user is IAM.9's.",
        remediation: "Have each listed user register an MFA device (`aws iam enable-mfa-device`), or remove \
            the console password of users who do not sign in (`aws iam delete-login-profile`).",
        reads: &["iam:GetCredentialReport", "iam:GetLoginProfile", "iam:ListMFADevices"],
        cost: "nothing beyond IAM.3's credential report; after an event, the reads of IAM.3's",
        events: &[ChangeEvent::Api {
            event_source: IAM,
            names: &["CreateLoginProfile", "DeleteLoginProfile", "EnableMFADevice", "DeactivateMFADevice", "DeleteUser"],
        }],
    }
    Iam6 = "IAM.6" {
        title: "The root user has hardware MFA",
        label: "Root hardware MFA",
        severity: Severity::Critical,
        cis: &["1.6"],
        coverage: Coverage::Account,
        rescan: Rescan::RootUser,
        passes_when: "The root user has MFA (`AccountMFAEnabled` is 1) and no assigned virtual MFA device \
            (`ListVirtualMFADevices --assignment-status Assigned`) belongs to it (its user is the account's \
            `:root`, or its serial is `:mfa/root-account-mfa-device`): its MFA is a hardware device (a FIDO \
            key or a hardware TOTP token).",
        remediation: "Sign in as the root user, register a hardware MFA device (Security credentials), \
            then remove the virtual one (`aws iam deactivate-mfa-device`, `delete-virtual-mfa-device`).",
        reads: &["iam:GetAccountSummary", "iam:ListVirtualMFADevices"],
        cost: "1 per account beyond IAM.4's `GetAccountSummary` (1,000 devices per page)",
        events: &[ChangeEvent::Api { event_source: IAM, names: &["EnableMFADevice", "DeactivateMFADevice"] }],
    }
    Iam9 = "IAM.9" {
        title: "The root user has MFA",
        label: "Root MFA",
        severity: Severity::Critical,
        cis: &["1.5"],
        coverage: Coverage::Account,
        rescan: Rescan::RootUser,
        passes_when: "The root user has an MFA device (`AccountMFAEnabled` is 1).",
        remediation: "Sign in as the root user and register an MFA device (a hardware key satisfies IAM.6 \
            too).",
        reads: &["iam:GetAccountSummary"],
        cost: "shared with IAM.4",
        events: &[ChangeEvent::Api { event_source: IAM, names: &["EnableMFADevice", "DeactivateMFADevice"] }],
    }
    Iam15 = "IAM.15" {
        title: "The password policy requires at least 14 characters",
        label: "Password length",
        severity: Severity::Medium,
        cis: &["1.8"],
        coverage: Coverage::Account,
        rescan: Rescan::Scope,
        passes_when: "The account password policy's `MinimumPasswordLength` is 14 or more (14 passes, 13 \
            fails); no password policy (`NoSuchEntity`) fails.",
        remediation: "`aws iam update-account-password-policy --minimum-password-length 14 \
            --password-reuse-prevention 24`: the call replaces the whole policy, so repeat every setting \
            you keep.",
        reads: &["iam:GetAccountPasswordPolicy"],
        cost: "1 per account, shared with IAM.16",
        events: &[ChangeEvent::Api {
            event_source: IAM,
            names: &["UpdateAccountPasswordPolicy", "DeleteAccountPasswordPolicy"],
        }],
    }
    Iam16 = "IAM.16" {
        title: "The password policy prevents reusing the last 24 passwords",
        label: "Password reuse",
        severity: Severity::Low,
        cis: &["1.9"],
        coverage: Coverage::Account,
        rescan: Rescan::Scope,
        passes_when: "The account password policy's `PasswordReusePrevention` is 24 (24 passes, 23 fails); \
            absent, or no password policy, fails.",
        remediation: "`aws iam update-account-password-policy --password-reuse-prevention 24 \
            --minimum-password-length 14`: the call replaces the whole policy, so repeat every setting you \
            keep.",
        reads: &["iam:GetAccountPasswordPolicy"],
        cost: "shared with IAM.15",
        events: &[ChangeEvent::Api {
            event_source: IAM,
            names: &["UpdateAccountPasswordPolicy", "DeleteAccountPasswordPolicy"],
        }],
    }
    Iam18 = "IAM.18" {
        title: "A support role exists to manage incidents with AWS Support",
        label: "Support role",
        severity: Severity::Low,
        cis: &["1.17"],
        coverage: Coverage::Account,
        rescan: Rescan::Scope,
        passes_when: "At least one IAM role has the AWS managed policy `AWSSupportAccess` attached (its \
            ARN `arn:<partition>:iam::aws:policy/AWSSupportAccess`; a customer policy of that name does \
            not count). As CIS 1.17 asks, a role: the policy on a user or group alone fails (Security Hub \
            accepts any principal).",
        remediation: "`aws iam create-role --role-name aws-support --assume-role-policy-document <trust \
            for the people who open cases>`, then `aws iam attach-role-policy --role-name aws-support \
            --policy-arn arn:aws:iam::aws:policy/AWSSupportAccess`.",
        reads: &["iam:ListEntitiesForPolicy"],
        cost: "1 per account (roles holding the policy)",
        events: &[ChangeEvent::Api {
            event_source: IAM,
            names: &["AttachRolePolicy", "DetachRolePolicy", "DeleteRole"],
        }],
    }
    Iam22 = "IAM.22" {
        title: "IAM user credentials unused for 45 days are removed",
        label: "Unused credentials",
        severity: Severity::Medium,
        cis: &["1.12"],
        coverage: Coverage::Account,
        rescan: Rescan::User,
        passes_when: "No console password and no **active** access key of an IAM user has gone unused for 45 \
            days or more: its last use (`password_last_used`, `access_key_N_last_used_date`), or when it was \
            never used its creation (`password_last_changed`, `access_key_N_last_rotated`), is less than 45 \
            × 86,400 s ago. Exactly 45 days fails; one second less passes. Inactive keys and users without \
            a password are ignored; the root user is skipped. Time makes credentials fail, so the periodic \
            scan matters most here; events rescan the user they name.",
        remediation: "Deactivate or delete each listed key (`aws iam update-access-key --status Inactive`, \
            `delete-access-key`) and remove unused console passwords (`aws iam delete-login-profile`).",
        reads: &[
            "iam:GetCredentialReport",
            "iam:GetUser",
            "iam:GetLoginProfile",
            "iam:ListAccessKeys",
            "iam:GetAccessKeyLastUsed",
        ],
        cost: "nothing beyond IAM.3's credential report; after an event, the reads of IAM.3's",
        events: &[ChangeEvent::Api {
            event_source: IAM,
            names: &[
                "CreateLoginProfile",
                "UpdateLoginProfile",
                "DeleteLoginProfile",
                "CreateAccessKey",
                "UpdateAccessKey",
                "DeleteAccessKey",
                "DeleteUser",
            ],
        }],
    }
    Iam26 = "IAM.26" {
        title: "Expired SSL/TLS server certificates are removed from IAM",
        label: "IAM certs expired",
        severity: Severity::Medium,
        cis: &["1.19"],
        coverage: Coverage::Account,
        rescan: Rescan::Scope,
        passes_when: "No server certificate `ListServerCertificates` lists has expired. The end of validity is \
            read from the certificate itself (`GetServerCertificate`'s PEM body, its `notAfter`), not from \
            the listing's `Expiration` (the emulator stamps a fixed date there; AWS derives it from the \
            body). A body that cannot be read or parsed leaves the control unknown unless another \
            certificate has expired. A certificate expires with no event: the periodic scan catches it.",
        remediation: "`aws iam delete-server-certificate --server-certificate-name <name>` once nothing uses \
            it (check load balancers and CloudFront first); prefer ACM, which renews.",
        reads: &["iam:ListServerCertificates", "iam:GetServerCertificate"],
        cost: "1 per account and 1,000 certificates, plus 1 `GetServerCertificate` per certificate",
        events: &[ChangeEvent::Api {
            event_source: IAM,
            names: &["UploadServerCertificate", "UpdateServerCertificate", "DeleteServerCertificate"],
        }],
    }
    Iam27 = "IAM.27" {
        title: "AWSCloudShellFullAccess is attached to nobody",
        label: "No CloudShell full",
        severity: Severity::Medium,
        cis: &["1.22"],
        coverage: Coverage::Account,
        rescan: Rescan::Scope,
        passes_when: "No IAM user, group or role has the AWS managed policy `AWSCloudShellFullAccess` \
            attached (it allows uploading and downloading files through CloudShell, a data-exfiltration \
            path).",
        remediation: "`aws iam list-entities-for-policy --policy-arn \
            arn:aws:iam::aws:policy/AWSCloudShellFullAccess`, then detach it from each (`detach-user-policy`, \
            `detach-group-policy`, `detach-role-policy`); grant a narrower CloudShell policy where needed.",
        reads: &["iam:GetAccountAuthorizationDetails", "iam:ListEntitiesForPolicy"],
        cost: "1 per account (roles holding the policy) beyond IAM.2's read of users and groups",
        events: &[ChangeEvent::Api {
            event_source: IAM,
            names: &[
                "AttachUserPolicy",
                "DetachUserPolicy",
                "AttachGroupPolicy",
                "DetachGroupPolicy",
                "AttachRolePolicy",
                "DetachRolePolicy",
            ],
        }],
    }
    Iam28 = "IAM.28" {
        title: "An IAM Access Analyzer external access analyzer is enabled in every region",
        label: "Access Analyzer",
        severity: Severity::High,
        cis: &["1.20"],
        coverage: Coverage::Region,
        rescan: Rescan::Scope,
        passes_when: "`ListAnalyzers` in the region lists an analyzer of type `ACCOUNT` or `ORGANIZATION` \
            (external access) with status `ACTIVE`; unused-access and internal-access analyzers do not \
            count, nor does a `CREATING`, `DISABLED` or `FAILED` one.",
        remediation: "`aws accessanalyzer create-analyzer --analyzer-name external --type ACCOUNT` in every \
            region (`ORGANIZATION` from the management or delegated administrator account); review its \
            findings.",
        reads: &["access-analyzer:ListAnalyzers"],
        cost: "1 per region and 100 analyzers",
        events: &[ChangeEvent::Api { event_source: ACCESS_ANALYZER, names: &["CreateAnalyzer", "DeleteAnalyzer"] }],
    }
    Kms3 = "KMS.3" {
        title: "No customer managed key is pending deletion",
        label: "No key deletion",
        severity: Severity::Critical,
        cis: &[],
        coverage: Coverage::Region,
        rescan: Rescan::Key,
        passes_when: "No customer managed key is pending deletion: `PendingDeletion`, or \
            `PendingReplicaDeletion` (a multi-Region primary scheduled for deletion while its replicas \
            remain). A key that cannot be described leaves the control unknown only when no readable key \
            fails.",
        remediation: "If the deletion is not intended: `aws kms cancel-key-deletion --key-id <id>`, then \
            `enable-key` (a cancelled key comes back disabled). Cancel a multi-Region primary before its \
            replicas are gone.",
        reads: &["kms:ListKeys", "kms:DescribeKey"],
        cost: "1 per region, plus 1 per key (shared with KMS.4)",
        events: &[ChangeEvent::Api { event_source: KMS, names: &["ScheduleKeyDeletion", "CancelKeyDeletion"] }],
    }
    Kms4 = "KMS.4" {
        title: "Customer managed symmetric keys rotate",
        label: "Key rotation",
        severity: Severity::Medium,
        cis: &["3.6"],
        coverage: Coverage::Region,
        rescan: Rescan::Key,
        passes_when: "Every customer managed, enabled, `SYMMETRIC_DEFAULT`, `AWS_KMS`-origin key has \
            automatic rotation on. Keys that cannot rotate (asymmetric, HMAC, imported, custom key store) \
            are not failures. A key that cannot be described leaves the control unknown only when no \
            readable key fails.",
        remediation: "`aws kms enable-key-rotation --key-id <id>`; CloudTrail's `DisableKeyRotation` events \
            say who turned it off.",
        reads: &["kms:ListKeys", "kms:DescribeKey", "kms:GetKeyRotationStatus"],
        cost: "1 per key that can rotate, beyond KMS.3's reads",
        events: &[ChangeEvent::Api {
            event_source: KMS,
            names: &["DisableKeyRotation", "EnableKeyRotation", "DisableKey", "EnableKey", "CreateKey", "CancelKeyDeletion"],
        }],
    }
    Rds2 = "RDS.2" {
        title: "RDS DB instances are not publicly accessible",
        label: "RDS not public",
        severity: Severity::Critical,
        cis: &["2.3.3"],
        coverage: Coverage::Region,
        rescan: Rescan::Scope,
        passes_when: "Every DB instance `DescribeDBInstances` lists in the region (Aurora instances included) \
            has `PubliclyAccessible` false. A region without DB instances passes. The setting is what is \
            judged, not the security groups or subnets that may still keep a public instance unreachable.",
        remediation: "`aws rds modify-db-instance --db-instance-identifier <id> --no-publicly-accessible \
            --apply-immediately`; reach the database from inside the VPC (a bastion, SSM port forwarding or \
            a VPN).",
        reads: DB_INSTANCE_READS,
        cost: DB_INSTANCE_COST,
        events: DB_INSTANCE_EVENTS,
    }
    Rds3 = "RDS.3" {
        title: "RDS DB instances are encrypted at rest",
        label: "RDS encrypted",
        severity: Severity::Medium,
        cis: &["2.3.1"],
        coverage: Coverage::Region,
        rescan: Rescan::Scope,
        passes_when: "Every DB instance `DescribeDBInstances` lists in the region has `StorageEncrypted` true. \
            A region without DB instances passes.",
        remediation: "Encryption is chosen at creation: snapshot the instance, copy the snapshot with \
            `--kms-key-id`, restore an encrypted instance from the copy and switch clients to it.",
        reads: DB_INSTANCE_READS,
        cost: DB_INSTANCE_COST,
        events: DB_INSTANCE_CREATION_EVENTS,
    }
    Rds13 = "RDS.13" {
        title: "RDS DB instances upgrade minor versions automatically",
        label: "RDS minor upgrades",
        severity: Severity::High,
        cis: &["2.3.2"],
        coverage: Coverage::Region,
        rescan: Rescan::Scope,
        passes_when: "Every DB instance `DescribeDBInstances` lists in the region has \
            `AutoMinorVersionUpgrade` true. A region without DB instances passes.",
        remediation: "`aws rds modify-db-instance --db-instance-identifier <id> --auto-minor-version-upgrade \
            --apply-immediately`; the upgrades then happen in the instance's maintenance window.",
        reads: DB_INSTANCE_READS,
        cost: DB_INSTANCE_COST,
        events: DB_INSTANCE_EVENTS,
    }
    S31 = "S3.1" {
        title: "S3 Block Public Access is on for the account",
        label: "S3 account BPA",
        severity: Severity::Medium,
        cis: &["2.1.4"],
        coverage: Coverage::Account,
        rescan: Rescan::Scope,
        passes_when: "The account-level S3 Block Public Access setting has all four of `BlockPublicAcls`, \
            `IgnorePublicAcls`, `BlockPublicPolicy` and `RestrictPublicBuckets` true; no setting \
            (`NoSuchPublicAccessBlockConfiguration`) fails. It covers every bucket of the account in every \
            region, so it is measured once, in the home region.",
        remediation: "`aws s3control put-public-access-block --account-id <id> \
            --public-access-block-configuration \
            BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true`, \
            after checking that no bucket must stay public (serve such content through CloudFront).",
        reads: &["s3:GetAccountPublicAccessBlock"],
        cost: "1 per account",
        events: &[ChangeEvent::Api {
            event_source: S3,
            names: &["PutAccountPublicAccessBlock", "DeleteAccountPublicAccessBlock"],
        }],
    }
    S35 = "S3.5" {
        title: "S3 buckets require requests to use TLS",
        label: "S3 TLS only",
        severity: Severity::Medium,
        cis: &["2.1.1"],
        coverage: Coverage::Account,
        rescan: Rescan::Scope,
        passes_when: "The policy of every bucket `ListBuckets` lists (each read in the bucket's region) has a \
            statement that denies everyone every S3 action without TLS: `Effect` `Deny`, `Principal` `*` (or \
            `{\"AWS\": \"*\"}`), `Action` `s3:*` or `*`, `Resource` covering the bucket and its objects, and \
            a `Condition` that is exactly `Bool` (or `BoolIfExists`) `aws:SecureTransport` `false`. A deny \
            with any other condition too covers some requests only and does not count; a bucket without a \
            policy fails; a bucket whose policy cannot be read leaves the control unknown unless another \
            fails. No bucket: pass.",
        remediation: "Add to the bucket policy: `{\"Effect\": \"Deny\", \"Principal\": \"*\", \"Action\": \
            \"s3:*\", \"Resource\": [\"arn:aws:s3:::<bucket>\", \"arn:aws:s3:::<bucket>/*\"], \"Condition\": \
            {\"Bool\": {\"aws:SecureTransport\": \"false\"}}}` (`aws s3api put-bucket-policy`).",
        reads: &[BUCKET_LIST_READS[0], BUCKET_LIST_READS[1], "s3:GetBucketPolicy"],
        cost: "1 `ListBuckets` per account, plus 1 `GetBucketLocation` and 1 `GetBucketPolicy` per bucket \
            (the list and locations shared with S3.8 and S3.20)",
        events: &[ChangeEvent::Api {
            event_source: S3,
            names: &["PutBucketPolicy", "DeleteBucketPolicy", "CreateBucket", "DeleteBucket"],
        }],
    }
    S38 = "S3.8" {
        title: "S3 buckets block public access",
        label: "S3 bucket BPA",
        severity: Severity::High,
        cis: &["2.1.4"],
        coverage: Coverage::Account,
        rescan: Rescan::Scope,
        passes_when: "Every bucket `ListBuckets` lists has all four bucket-level Block Public Access settings \
            (`BlockPublicAcls`, `IgnorePublicAcls`, `BlockPublicPolicy`, `RestrictPublicBuckets`) true; a \
            bucket with none (`NoSuchPublicAccessBlockConfiguration`) fails, whatever the account-level \
            setting (S3.1) says. No bucket: pass.",
        remediation: "`aws s3api put-public-access-block --bucket <bucket> --public-access-block-configuration \
            BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true`.",
        reads: &[BUCKET_LIST_READS[0], BUCKET_LIST_READS[1], "s3:GetBucketPublicAccessBlock"],
        cost: "1 `GetBucketPublicAccessBlock` per bucket, beyond S3.5's list and locations",
        events: &[ChangeEvent::Api {
            event_source: S3,
            names: &["PutBucketPublicAccessBlock", "DeleteBucketPublicAccessBlock", "CreateBucket", "DeleteBucket"],
        }],
    }
    S320 = "S3.20" {
        title: "S3 buckets have MFA delete enabled",
        label: "S3 MFA delete",
        severity: Severity::Low,
        cis: &["2.1.2"],
        coverage: Coverage::Account,
        rescan: Rescan::Scope,
        passes_when: "Every bucket `ListBuckets` lists has versioning with `MFADelete` `Enabled` \
            (`GetBucketVersioning`); an unversioned bucket, or one versioned without MFA delete, fails. \
            No bucket: pass.",
        remediation: "As the root user with its MFA device: `aws s3api put-bucket-versioning --bucket <bucket> \
            --versioning-configuration Status=Enabled,MFADelete=Enabled --mfa '<device arn> <code>'`. A bucket \
            with a lifecycle configuration cannot have MFA delete: decide which the bucket needs.",
        reads: &[BUCKET_LIST_READS[0], BUCKET_LIST_READS[1], "s3:GetBucketVersioning"],
        cost: "1 `GetBucketVersioning` per bucket, beyond S3.5's list and locations",
        events: &[ChangeEvent::Api { event_source: S3, names: &["PutBucketVersioning", "CreateBucket", "DeleteBucket"] }],
    }
    S322 = "S3.22" {
        title: "A multi-region trail logs S3 object-level write events",
        label: "S3 write events",
        severity: Severity::Medium,
        cis: &["3.8"],
        coverage: Coverage::Region,
        rescan: Rescan::Scope,
        passes_when: "At least one trail that is multi-region and logging records **write** data events for \
            every object of every bucket: a basic selector with `ReadWriteType` `All` or `WriteOnly` and a \
            data resource `AWS::S3::Object` with value `arn:aws:s3` (or `arn:aws:s3:::`), or an advanced \
            selector with `eventCategory` `Data`, `resources.type` `AWS::S3::Object`, `readOnly` absent or \
            `false`, and no other condition than `resources.ARN` `StartsWith` `arn:aws:s3:::`. Selectors \
            are OR'ed. A selector that names buckets, prefixes or event names covers only part of the \
            objects and does not count. A trail that cannot be read leaves the control unknown unless \
            another trail passes.",
        remediation: "`aws cloudtrail put-event-selectors --trail-name <multi-region trail> \
            --advanced-event-selectors '[{\"Name\":\"S3 writes\",\"FieldSelectors\":[{\"Field\":\"eventCategory\",\"Equals\":[\"Data\"]},{\"Field\":\"resources.type\",\"Equals\":[\"AWS::S3::Object\"]},{\"Field\":\"readOnly\",\"Equals\":[\"false\"]}]}]'` \
            (keep the management selector), or add the data resource to a basic selector. Data events \
            are billed per event.",
        reads: &["cloudtrail:DescribeTrails", "cloudtrail:GetTrailStatus", "cloudtrail:GetEventSelectors"],
        cost: "nothing beyond CloudTrail.1's reads",
        events: S3_DATA_EVENT_EVENTS,
    }
    S323 = "S3.23" {
        title: "A multi-region trail logs S3 object-level read events",
        label: "S3 read events",
        severity: Severity::Medium,
        cis: &["3.9"],
        coverage: Coverage::Region,
        rescan: Rescan::Scope,
        passes_when: "As S3.22, for **read** data events: `ReadWriteType` `All` or `ReadOnly` in a basic \
            selector, `readOnly` absent or `true` in an advanced one.",
        remediation: "As S3.22, with `readOnly` `true` (or no `readOnly` condition to record both).",
        reads: &["cloudtrail:DescribeTrails", "cloudtrail:GetTrailStatus", "cloudtrail:GetEventSelectors"],
        cost: "nothing beyond CloudTrail.1's reads",
        events: S3_DATA_EVENT_EVENTS,
    }
    Cis3_1_13 = "CIS3-1.13" {
        title: "No IAM user has more than one active access key",
        label: "One active key",
        severity: Severity::Medium,
        cis: &["1.13"],
        coverage: Coverage::Account,
        rescan: Rescan::User,
        passes_when: "No IAM user has two **active** access keys (`access_key_1_active` and \
            `access_key_2_active` both true in the credential report, or two `Active` keys in \
            `ListAccessKeys` after an event). An inactive second key (mid-rotation, deactivated) passes. \
            CIS only: Security Hub has no control for it.",
        remediation: "Deactivate and delete the key the user no longer uses (`aws iam update-access-key \
            --status Inactive`, then `delete-access-key`); rotate by creating the new key, moving to it, \
            and deleting the old one the same day.",
        reads: &["iam:GetCredentialReport", "iam:ListAccessKeys"],
        cost: "nothing beyond IAM.3's credential report; after an event, the reads of IAM.3's",
        events: &[ChangeEvent::Api {
            event_source: IAM,
            names: &["CreateAccessKey", "UpdateAccessKey", "DeleteAccessKey", "DeleteUser"],
        }],
    }
    Cis3_1_16 = "CIS3-1.16" {
        title: "No attached customer managed policy allows every action on every resource",
        label: "No full-admin policy",
        severity: Severity::High,
        cis: &["1.16"],
        coverage: Coverage::Account,
        rescan: Rescan::Scope,
        passes_when: "No customer managed policy that is attached to a user, group or role \
            (`AttachmentCount` above 0, or named by a principal) has, in its default version, a statement \
            with `Effect` `Allow`, `Action` `*` (alone or in a list) and `Resource` `*` (alone or in a \
            list), whatever its conditions. The document is URL-decoded and parsed as JSON, never \
            string-matched; a document that does not parse leaves the control unknown unless another \
            policy fails. Unattached policies, AWS managed policies and inline policies are not judged \
            (as CIS 1.16 audits). CIS only: Security Hub's CIS v3.0 standard has no control for it.",
        remediation: "Detach the policy from every principal (`aws iam list-entities-for-policy`, then \
            `detach-user-policy`, `detach-group-policy`, `detach-role-policy`), or publish a narrower \
            default version (`aws iam create-policy-version --set-as-default`). Administrators get access \
            just in time through Portcullis instead.",
        reads: &["iam:GetAccountAuthorizationDetails"],
        cost: "1 per account and 1,000 users, groups and policies, shared with IAM.2",
        events: &[ChangeEvent::Api {
            event_source: IAM,
            names: &[
                "CreatePolicyVersion",
                "SetDefaultPolicyVersion",
                "AttachUserPolicy",
                "DetachUserPolicy",
                "AttachGroupPolicy",
                "DetachGroupPolicy",
                "AttachRolePolicy",
                "DetachRolePolicy",
            ],
        }],
    }
    Cis3_4_1 = "CIS3-4.1" {
        title: "Unauthorized API calls are monitored",
        label: "Unauthorized calls",
        severity: Severity::Medium,
        cis: &["4.1"],
        coverage: Coverage::Region,
        rescan: Rescan::Scope,
        passes_when: "Events of this class (unauthorized API calls: `errorCode` `*UnauthorizedOperation` or `AccessDenied*`, except S3 log delivery and `HeadBucket`) reach a person. Some metric filter on the CloudWatch Logs group of a healthy trail (multi-region, logging \
            without a delivery error, recording every read and write management event: CloudTrail.1's \
            health; shadow trails read at home) has a JSON pattern that **covers** the benchmark's pattern, an \
            alarm with actions enabled watches a metric that filter publishes, and one of the alarm's actions \
            is an SNS topic with at least one confirmed subscription (`PendingConfirmation` does not count). \
            Coverage is decided on the parsed pattern, not its text: the benchmark's pattern is put in \
            disjunctive normal form and the filter must be true for every conjunction, so other order, \
            spacing, quoting, extra alternatives, dropped conditions and broader wildcards (`Access*` for \
            `AccessDenied*`) cover, while a missing event name or an extra condition does not (the reason \
            names what is missed). AND (`&&`) binds tighter than OR. An unreadable topic or trail leaves the \
            control unknown when nothing else passes. CIS only: Security Hub's CIS v3.0 standard has no \
            control for it.",
        remediation: "Put a metric filter with the benchmark's pattern on the trail's log group (`aws logs \
            put-metric-filter --filter-pattern ...`), an alarm on its metric (`aws cloudwatch put-metric-alarm \
            --threshold 1 --comparison-operator GreaterThanOrEqualToThreshold --alarm-actions <topic>`), and \
            subscribe someone who reads it to the topic (`aws sns subscribe`, then confirm). The trail needs \
            `--cloud-watch-logs-log-group-arn` and a role CloudTrail can deliver with.",
        reads: MONITORING_READS,
        cost: MONITORING_COST,
        events: MONITORING_EVENTS,
    }
    Cis3_4_2 = "CIS3-4.2" {
        title: "Console sign-in without MFA is monitored",
        label: "Sign-in without MFA",
        severity: Severity::Medium,
        cis: &["4.2"],
        coverage: Coverage::Region,
        rescan: Rescan::Scope,
        passes_when: "Events of this class (successful console sign-ins by IAM users without MFA) reach a person. Some metric filter on the CloudWatch Logs group of a healthy trail (multi-region, logging \
            without a delivery error, recording every read and write management event: CloudTrail.1's \
            health; shadow trails read at home) has a JSON pattern that **covers** the benchmark's pattern, an \
            alarm with actions enabled watches a metric that filter publishes, and one of the alarm's actions \
            is an SNS topic with at least one confirmed subscription (`PendingConfirmation` does not count). \
            Coverage is decided on the parsed pattern, not its text: the benchmark's pattern is put in \
            disjunctive normal form and the filter must be true for every conjunction, so other order, \
            spacing, quoting, extra alternatives, dropped conditions and broader wildcards (`Access*` for \
            `AccessDenied*`) cover, while a missing event name or an extra condition does not (the reason \
            names what is missed). AND (`&&`) binds tighter than OR. An unreadable topic or trail leaves the \
            control unknown when nothing else passes. CIS only: Security Hub's CIS v3.0 standard has no \
            control for it.",
        remediation: "Put a metric filter with the benchmark's pattern on the trail's log group (`aws logs \
            put-metric-filter --filter-pattern ...`), an alarm on its metric (`aws cloudwatch put-metric-alarm \
            --threshold 1 --comparison-operator GreaterThanOrEqualToThreshold --alarm-actions <topic>`), and \
            subscribe someone who reads it to the topic (`aws sns subscribe`, then confirm). The trail needs \
            `--cloud-watch-logs-log-group-arn` and a role CloudTrail can deliver with.",
        reads: MONITORING_READS,
        cost: MONITORING_COST,
        events: MONITORING_EVENTS,
    }
    Cis3_4_3 = "CIS3-4.3" {
        title: "Use of the root user is monitored",
        label: "Root usage",
        severity: Severity::Medium,
        cis: &["4.3"],
        coverage: Coverage::Region,
        rescan: Rescan::Scope,
        passes_when: "Events of this class (calls made by the root user itself, not by a service on its behalf) reach a person. Some metric filter on the CloudWatch Logs group of a healthy trail (multi-region, logging \
            without a delivery error, recording every read and write management event: CloudTrail.1's \
            health; shadow trails read at home) has a JSON pattern that **covers** the benchmark's pattern, an \
            alarm with actions enabled watches a metric that filter publishes, and one of the alarm's actions \
            is an SNS topic with at least one confirmed subscription (`PendingConfirmation` does not count). \
            Coverage is decided on the parsed pattern, not its text: the benchmark's pattern is put in \
            disjunctive normal form and the filter must be true for every conjunction, so other order, \
            spacing, quoting, extra alternatives, dropped conditions and broader wildcards (`Access*` for \
            `AccessDenied*`) cover, while a missing event name or an extra condition does not (the reason \
            names what is missed). AND (`&&`) binds tighter than OR. An unreadable topic or trail leaves the \
            control unknown when nothing else passes. CIS only: Security Hub's CIS v3.0 standard has no \
            control for it.",
        remediation: "Put a metric filter with the benchmark's pattern on the trail's log group (`aws logs \
            put-metric-filter --filter-pattern ...`), an alarm on its metric (`aws cloudwatch put-metric-alarm \
            --threshold 1 --comparison-operator GreaterThanOrEqualToThreshold --alarm-actions <topic>`), and \
            subscribe someone who reads it to the topic (`aws sns subscribe`, then confirm). The trail needs \
            `--cloud-watch-logs-log-group-arn` and a role CloudTrail can deliver with.",
        reads: MONITORING_READS,
        cost: MONITORING_COST,
        events: MONITORING_EVENTS,
    }
    Cis3_4_4 = "CIS3-4.4" {
        title: "IAM policy changes are monitored",
        label: "IAM policy changes",
        severity: Severity::Medium,
        cis: &["4.4"],
        coverage: Coverage::Region,
        rescan: Rescan::Scope,
        passes_when: "Events of this class (the 17 IAM calls that create, change, attach or detach policies) reach a person. Some metric filter on the CloudWatch Logs group of a healthy trail (multi-region, logging \
            without a delivery error, recording every read and write management event: CloudTrail.1's \
            health; shadow trails read at home) has a JSON pattern that **covers** the benchmark's pattern, an \
            alarm with actions enabled watches a metric that filter publishes, and one of the alarm's actions \
            is an SNS topic with at least one confirmed subscription (`PendingConfirmation` does not count). \
            Coverage is decided on the parsed pattern, not its text: the benchmark's pattern is put in \
            disjunctive normal form and the filter must be true for every conjunction, so other order, \
            spacing, quoting, extra alternatives, dropped conditions and broader wildcards (`Access*` for \
            `AccessDenied*`) cover, while a missing event name or an extra condition does not (the reason \
            names what is missed). AND (`&&`) binds tighter than OR. An unreadable topic or trail leaves the \
            control unknown when nothing else passes. CIS only: Security Hub's CIS v3.0 standard has no \
            control for it.",
        remediation: "Put a metric filter with the benchmark's pattern on the trail's log group (`aws logs \
            put-metric-filter --filter-pattern ...`), an alarm on its metric (`aws cloudwatch put-metric-alarm \
            --threshold 1 --comparison-operator GreaterThanOrEqualToThreshold --alarm-actions <topic>`), and \
            subscribe someone who reads it to the topic (`aws sns subscribe`, then confirm). The trail needs \
            `--cloud-watch-logs-log-group-arn` and a role CloudTrail can deliver with.",
        reads: MONITORING_READS,
        cost: MONITORING_COST,
        events: MONITORING_EVENTS,
    }
    Cis3_4_5 = "CIS3-4.5" {
        title: "CloudTrail configuration changes are monitored",
        label: "Trail changes",
        severity: Severity::Medium,
        cis: &["4.5"],
        coverage: Coverage::Region,
        rescan: Rescan::Scope,
        passes_when: "Events of this class (trails created, updated, deleted, started or stopped) reach a person. Some metric filter on the CloudWatch Logs group of a healthy trail (multi-region, logging \
            without a delivery error, recording every read and write management event: CloudTrail.1's \
            health; shadow trails read at home) has a JSON pattern that **covers** the benchmark's pattern, an \
            alarm with actions enabled watches a metric that filter publishes, and one of the alarm's actions \
            is an SNS topic with at least one confirmed subscription (`PendingConfirmation` does not count). \
            Coverage is decided on the parsed pattern, not its text: the benchmark's pattern is put in \
            disjunctive normal form and the filter must be true for every conjunction, so other order, \
            spacing, quoting, extra alternatives, dropped conditions and broader wildcards (`Access*` for \
            `AccessDenied*`) cover, while a missing event name or an extra condition does not (the reason \
            names what is missed). AND (`&&`) binds tighter than OR. An unreadable topic or trail leaves the \
            control unknown when nothing else passes. CIS only: Security Hub's CIS v3.0 standard has no \
            control for it.",
        remediation: "Put a metric filter with the benchmark's pattern on the trail's log group (`aws logs \
            put-metric-filter --filter-pattern ...`), an alarm on its metric (`aws cloudwatch put-metric-alarm \
            --threshold 1 --comparison-operator GreaterThanOrEqualToThreshold --alarm-actions <topic>`), and \
            subscribe someone who reads it to the topic (`aws sns subscribe`, then confirm). The trail needs \
            `--cloud-watch-logs-log-group-arn` and a role CloudTrail can deliver with.",
        reads: MONITORING_READS,
        cost: MONITORING_COST,
        events: MONITORING_EVENTS,
    }
    Cis3_4_6 = "CIS3-4.6" {
        title: "Console authentication failures are monitored",
        label: "Sign-in failures",
        severity: Severity::Medium,
        cis: &["4.6"],
        coverage: Coverage::Region,
        rescan: Rescan::Scope,
        passes_when: "Events of this class (console sign-ins that failed authentication) reach a person. Some metric filter on the CloudWatch Logs group of a healthy trail (multi-region, logging \
            without a delivery error, recording every read and write management event: CloudTrail.1's \
            health; shadow trails read at home) has a JSON pattern that **covers** the benchmark's pattern, an \
            alarm with actions enabled watches a metric that filter publishes, and one of the alarm's actions \
            is an SNS topic with at least one confirmed subscription (`PendingConfirmation` does not count). \
            Coverage is decided on the parsed pattern, not its text: the benchmark's pattern is put in \
            disjunctive normal form and the filter must be true for every conjunction, so other order, \
            spacing, quoting, extra alternatives, dropped conditions and broader wildcards (`Access*` for \
            `AccessDenied*`) cover, while a missing event name or an extra condition does not (the reason \
            names what is missed). AND (`&&`) binds tighter than OR. An unreadable topic or trail leaves the \
            control unknown when nothing else passes. CIS only: Security Hub's CIS v3.0 standard has no \
            control for it.",
        remediation: "Put a metric filter with the benchmark's pattern on the trail's log group (`aws logs \
            put-metric-filter --filter-pattern ...`), an alarm on its metric (`aws cloudwatch put-metric-alarm \
            --threshold 1 --comparison-operator GreaterThanOrEqualToThreshold --alarm-actions <topic>`), and \
            subscribe someone who reads it to the topic (`aws sns subscribe`, then confirm). The trail needs \
            `--cloud-watch-logs-log-group-arn` and a role CloudTrail can deliver with.",
        reads: MONITORING_READS,
        cost: MONITORING_COST,
        events: MONITORING_EVENTS,
    }
    Cis3_4_7 = "CIS3-4.7" {
        title: "Disabling or deleting customer managed keys is monitored",
        label: "CMK disable/delete",
        severity: Severity::Medium,
        cis: &["4.7"],
        coverage: Coverage::Region,
        rescan: Rescan::Scope,
        passes_when: "Events of this class (KMS `DisableKey` and `ScheduleKeyDeletion`) reach a person. Some metric filter on the CloudWatch Logs group of a healthy trail (multi-region, logging \
            without a delivery error, recording every read and write management event: CloudTrail.1's \
            health; shadow trails read at home) has a JSON pattern that **covers** the benchmark's pattern, an \
            alarm with actions enabled watches a metric that filter publishes, and one of the alarm's actions \
            is an SNS topic with at least one confirmed subscription (`PendingConfirmation` does not count). \
            Coverage is decided on the parsed pattern, not its text: the benchmark's pattern is put in \
            disjunctive normal form and the filter must be true for every conjunction, so other order, \
            spacing, quoting, extra alternatives, dropped conditions and broader wildcards (`Access*` for \
            `AccessDenied*`) cover, while a missing event name or an extra condition does not (the reason \
            names what is missed). AND (`&&`) binds tighter than OR. An unreadable topic or trail leaves the \
            control unknown when nothing else passes. CIS only: Security Hub's CIS v3.0 standard has no \
            control for it.",
        remediation: "Put a metric filter with the benchmark's pattern on the trail's log group (`aws logs \
            put-metric-filter --filter-pattern ...`), an alarm on its metric (`aws cloudwatch put-metric-alarm \
            --threshold 1 --comparison-operator GreaterThanOrEqualToThreshold --alarm-actions <topic>`), and \
            subscribe someone who reads it to the topic (`aws sns subscribe`, then confirm). The trail needs \
            `--cloud-watch-logs-log-group-arn` and a role CloudTrail can deliver with.",
        reads: MONITORING_READS,
        cost: MONITORING_COST,
        events: MONITORING_EVENTS,
    }
    Cis3_4_8 = "CIS3-4.8" {
        title: "S3 bucket policy changes are monitored",
        label: "Bucket policy changes",
        severity: Severity::Medium,
        cis: &["4.8"],
        coverage: Coverage::Region,
        rescan: Rescan::Scope,
        passes_when: "Events of this class (bucket ACL, policy, CORS, lifecycle and replication changes) reach a person. Some metric filter on the CloudWatch Logs group of a healthy trail (multi-region, logging \
            without a delivery error, recording every read and write management event: CloudTrail.1's \
            health; shadow trails read at home) has a JSON pattern that **covers** the benchmark's pattern, an \
            alarm with actions enabled watches a metric that filter publishes, and one of the alarm's actions \
            is an SNS topic with at least one confirmed subscription (`PendingConfirmation` does not count). \
            Coverage is decided on the parsed pattern, not its text: the benchmark's pattern is put in \
            disjunctive normal form and the filter must be true for every conjunction, so other order, \
            spacing, quoting, extra alternatives, dropped conditions and broader wildcards (`Access*` for \
            `AccessDenied*`) cover, while a missing event name or an extra condition does not (the reason \
            names what is missed). AND (`&&`) binds tighter than OR. An unreadable topic or trail leaves the \
            control unknown when nothing else passes. CIS only: Security Hub's CIS v3.0 standard has no \
            control for it.",
        remediation: "Put a metric filter with the benchmark's pattern on the trail's log group (`aws logs \
            put-metric-filter --filter-pattern ...`), an alarm on its metric (`aws cloudwatch put-metric-alarm \
            --threshold 1 --comparison-operator GreaterThanOrEqualToThreshold --alarm-actions <topic>`), and \
            subscribe someone who reads it to the topic (`aws sns subscribe`, then confirm). The trail needs \
            `--cloud-watch-logs-log-group-arn` and a role CloudTrail can deliver with.",
        reads: MONITORING_READS,
        cost: MONITORING_COST,
        events: MONITORING_EVENTS,
    }
    Cis3_4_9 = "CIS3-4.9" {
        title: "AWS Config configuration changes are monitored",
        label: "Config changes",
        severity: Severity::Medium,
        cis: &["4.9"],
        coverage: Coverage::Region,
        rescan: Rescan::Scope,
        passes_when: "Events of this class (recorders stopped or changed, delivery channels changed or deleted) reach a person. Some metric filter on the CloudWatch Logs group of a healthy trail (multi-region, logging \
            without a delivery error, recording every read and write management event: CloudTrail.1's \
            health; shadow trails read at home) has a JSON pattern that **covers** the benchmark's pattern, an \
            alarm with actions enabled watches a metric that filter publishes, and one of the alarm's actions \
            is an SNS topic with at least one confirmed subscription (`PendingConfirmation` does not count). \
            Coverage is decided on the parsed pattern, not its text: the benchmark's pattern is put in \
            disjunctive normal form and the filter must be true for every conjunction, so other order, \
            spacing, quoting, extra alternatives, dropped conditions and broader wildcards (`Access*` for \
            `AccessDenied*`) cover, while a missing event name or an extra condition does not (the reason \
            names what is missed). AND (`&&`) binds tighter than OR. An unreadable topic or trail leaves the \
            control unknown when nothing else passes. CIS only: Security Hub's CIS v3.0 standard has no \
            control for it.",
        remediation: "Put a metric filter with the benchmark's pattern on the trail's log group (`aws logs \
            put-metric-filter --filter-pattern ...`), an alarm on its metric (`aws cloudwatch put-metric-alarm \
            --threshold 1 --comparison-operator GreaterThanOrEqualToThreshold --alarm-actions <topic>`), and \
            subscribe someone who reads it to the topic (`aws sns subscribe`, then confirm). The trail needs \
            `--cloud-watch-logs-log-group-arn` and a role CloudTrail can deliver with.",
        reads: MONITORING_READS,
        cost: MONITORING_COST,
        events: MONITORING_EVENTS,
    }
    Cis3_4_10 = "CIS3-4.10" {
        title: "Security group changes are monitored",
        label: "SG changes",
        severity: Severity::Medium,
        cis: &["4.10"],
        coverage: Coverage::Region,
        rescan: Rescan::Scope,
        passes_when: "Events of this class (security groups created or deleted and their rules changed) reach a person. Some metric filter on the CloudWatch Logs group of a healthy trail (multi-region, logging \
            without a delivery error, recording every read and write management event: CloudTrail.1's \
            health; shadow trails read at home) has a JSON pattern that **covers** the benchmark's pattern, an \
            alarm with actions enabled watches a metric that filter publishes, and one of the alarm's actions \
            is an SNS topic with at least one confirmed subscription (`PendingConfirmation` does not count). \
            Coverage is decided on the parsed pattern, not its text: the benchmark's pattern is put in \
            disjunctive normal form and the filter must be true for every conjunction, so other order, \
            spacing, quoting, extra alternatives, dropped conditions and broader wildcards (`Access*` for \
            `AccessDenied*`) cover, while a missing event name or an extra condition does not (the reason \
            names what is missed). AND (`&&`) binds tighter than OR. An unreadable topic or trail leaves the \
            control unknown when nothing else passes. CIS only: Security Hub's CIS v3.0 standard has no \
            control for it.",
        remediation: "Put a metric filter with the benchmark's pattern on the trail's log group (`aws logs \
            put-metric-filter --filter-pattern ...`), an alarm on its metric (`aws cloudwatch put-metric-alarm \
            --threshold 1 --comparison-operator GreaterThanOrEqualToThreshold --alarm-actions <topic>`), and \
            subscribe someone who reads it to the topic (`aws sns subscribe`, then confirm). The trail needs \
            `--cloud-watch-logs-log-group-arn` and a role CloudTrail can deliver with.",
        reads: MONITORING_READS,
        cost: MONITORING_COST,
        events: MONITORING_EVENTS,
    }
    Cis3_4_11 = "CIS3-4.11" {
        title: "Network ACL changes are monitored",
        label: "NACL changes",
        severity: Severity::Medium,
        cis: &["4.11"],
        coverage: Coverage::Region,
        rescan: Rescan::Scope,
        passes_when: "Events of this class (network ACLs, their entries and associations changed) reach a person. Some metric filter on the CloudWatch Logs group of a healthy trail (multi-region, logging \
            without a delivery error, recording every read and write management event: CloudTrail.1's \
            health; shadow trails read at home) has a JSON pattern that **covers** the benchmark's pattern, an \
            alarm with actions enabled watches a metric that filter publishes, and one of the alarm's actions \
            is an SNS topic with at least one confirmed subscription (`PendingConfirmation` does not count). \
            Coverage is decided on the parsed pattern, not its text: the benchmark's pattern is put in \
            disjunctive normal form and the filter must be true for every conjunction, so other order, \
            spacing, quoting, extra alternatives, dropped conditions and broader wildcards (`Access*` for \
            `AccessDenied*`) cover, while a missing event name or an extra condition does not (the reason \
            names what is missed). AND (`&&`) binds tighter than OR. An unreadable topic or trail leaves the \
            control unknown when nothing else passes. CIS only: Security Hub's CIS v3.0 standard has no \
            control for it.",
        remediation: "Put a metric filter with the benchmark's pattern on the trail's log group (`aws logs \
            put-metric-filter --filter-pattern ...`), an alarm on its metric (`aws cloudwatch put-metric-alarm \
            --threshold 1 --comparison-operator GreaterThanOrEqualToThreshold --alarm-actions <topic>`), and \
            subscribe someone who reads it to the topic (`aws sns subscribe`, then confirm). The trail needs \
            `--cloud-watch-logs-log-group-arn` and a role CloudTrail can deliver with.",
        reads: MONITORING_READS,
        cost: MONITORING_COST,
        events: MONITORING_EVENTS,
    }
    Cis3_4_12 = "CIS3-4.12" {
        title: "Network gateway changes are monitored",
        label: "Gateway changes",
        severity: Severity::Medium,
        cis: &["4.12"],
        coverage: Coverage::Region,
        rescan: Rescan::Scope,
        passes_when: "Events of this class (customer and internet gateways created, deleted, attached or detached) reach a person. Some metric filter on the CloudWatch Logs group of a healthy trail (multi-region, logging \
            without a delivery error, recording every read and write management event: CloudTrail.1's \
            health; shadow trails read at home) has a JSON pattern that **covers** the benchmark's pattern, an \
            alarm with actions enabled watches a metric that filter publishes, and one of the alarm's actions \
            is an SNS topic with at least one confirmed subscription (`PendingConfirmation` does not count). \
            Coverage is decided on the parsed pattern, not its text: the benchmark's pattern is put in \
            disjunctive normal form and the filter must be true for every conjunction, so other order, \
            spacing, quoting, extra alternatives, dropped conditions and broader wildcards (`Access*` for \
            `AccessDenied*`) cover, while a missing event name or an extra condition does not (the reason \
            names what is missed). AND (`&&`) binds tighter than OR. An unreadable topic or trail leaves the \
            control unknown when nothing else passes. CIS only: Security Hub's CIS v3.0 standard has no \
            control for it.",
        remediation: "Put a metric filter with the benchmark's pattern on the trail's log group (`aws logs \
            put-metric-filter --filter-pattern ...`), an alarm on its metric (`aws cloudwatch put-metric-alarm \
            --threshold 1 --comparison-operator GreaterThanOrEqualToThreshold --alarm-actions <topic>`), and \
            subscribe someone who reads it to the topic (`aws sns subscribe`, then confirm). The trail needs \
            `--cloud-watch-logs-log-group-arn` and a role CloudTrail can deliver with.",
        reads: MONITORING_READS,
        cost: MONITORING_COST,
        events: MONITORING_EVENTS,
    }
    Cis3_4_13 = "CIS3-4.13" {
        title: "Route table changes are monitored",
        label: "Route changes",
        severity: Severity::Medium,
        cis: &["4.13"],
        coverage: Coverage::Region,
        rescan: Rescan::Scope,
        passes_when: "Events of this class (routes and route tables created, replaced, deleted or disassociated) reach a person. Some metric filter on the CloudWatch Logs group of a healthy trail (multi-region, logging \
            without a delivery error, recording every read and write management event: CloudTrail.1's \
            health; shadow trails read at home) has a JSON pattern that **covers** the benchmark's pattern, an \
            alarm with actions enabled watches a metric that filter publishes, and one of the alarm's actions \
            is an SNS topic with at least one confirmed subscription (`PendingConfirmation` does not count). \
            Coverage is decided on the parsed pattern, not its text: the benchmark's pattern is put in \
            disjunctive normal form and the filter must be true for every conjunction, so other order, \
            spacing, quoting, extra alternatives, dropped conditions and broader wildcards (`Access*` for \
            `AccessDenied*`) cover, while a missing event name or an extra condition does not (the reason \
            names what is missed). AND (`&&`) binds tighter than OR. An unreadable topic or trail leaves the \
            control unknown when nothing else passes. CIS only: Security Hub's CIS v3.0 standard has no \
            control for it.",
        remediation: "Put a metric filter with the benchmark's pattern on the trail's log group (`aws logs \
            put-metric-filter --filter-pattern ...`), an alarm on its metric (`aws cloudwatch put-metric-alarm \
            --threshold 1 --comparison-operator GreaterThanOrEqualToThreshold --alarm-actions <topic>`), and \
            subscribe someone who reads it to the topic (`aws sns subscribe`, then confirm). The trail needs \
            `--cloud-watch-logs-log-group-arn` and a role CloudTrail can deliver with.",
        reads: MONITORING_READS,
        cost: MONITORING_COST,
        events: MONITORING_EVENTS,
    }
    Cis3_4_14 = "CIS3-4.14" {
        title: "VPC changes are monitored",
        label: "VPC changes",
        severity: Severity::Medium,
        cis: &["4.14"],
        coverage: Coverage::Region,
        rescan: Rescan::Scope,
        passes_when: "Events of this class (VPCs, VPC peering and ClassicLink changed) reach a person. Some metric filter on the CloudWatch Logs group of a healthy trail (multi-region, logging \
            without a delivery error, recording every read and write management event: CloudTrail.1's \
            health; shadow trails read at home) has a JSON pattern that **covers** the benchmark's pattern, an \
            alarm with actions enabled watches a metric that filter publishes, and one of the alarm's actions \
            is an SNS topic with at least one confirmed subscription (`PendingConfirmation` does not count). \
            Coverage is decided on the parsed pattern, not its text: the benchmark's pattern is put in \
            disjunctive normal form and the filter must be true for every conjunction, so other order, \
            spacing, quoting, extra alternatives, dropped conditions and broader wildcards (`Access*` for \
            `AccessDenied*`) cover, while a missing event name or an extra condition does not (the reason \
            names what is missed). AND (`&&`) binds tighter than OR. An unreadable topic or trail leaves the \
            control unknown when nothing else passes. CIS only: Security Hub's CIS v3.0 standard has no \
            control for it.",
        remediation: "Put a metric filter with the benchmark's pattern on the trail's log group (`aws logs \
            put-metric-filter --filter-pattern ...`), an alarm on its metric (`aws cloudwatch put-metric-alarm \
            --threshold 1 --comparison-operator GreaterThanOrEqualToThreshold --alarm-actions <topic>`), and \
            subscribe someone who reads it to the topic (`aws sns subscribe`, then confirm). The trail needs \
            `--cloud-watch-logs-log-group-arn` and a role CloudTrail can deliver with.",
        reads: MONITORING_READS,
        cost: MONITORING_COST,
        events: MONITORING_EVENTS,
    }
    Cis3_4_15 = "CIS3-4.15" {
        title: "AWS Organizations changes are monitored",
        label: "Org changes",
        severity: Severity::Medium,
        cis: &["4.15"],
        coverage: Coverage::Region,
        rescan: Rescan::Scope,
        passes_when: "Events of this class (AWS Organizations accounts, OUs, policies and handshakes changed) reach a person. Some metric filter on the CloudWatch Logs group of a healthy trail (multi-region, logging \
            without a delivery error, recording every read and write management event: CloudTrail.1's \
            health; shadow trails read at home) has a JSON pattern that **covers** the benchmark's pattern, an \
            alarm with actions enabled watches a metric that filter publishes, and one of the alarm's actions \
            is an SNS topic with at least one confirmed subscription (`PendingConfirmation` does not count). \
            Coverage is decided on the parsed pattern, not its text: the benchmark's pattern is put in \
            disjunctive normal form and the filter must be true for every conjunction, so other order, \
            spacing, quoting, extra alternatives, dropped conditions and broader wildcards (`Access*` for \
            `AccessDenied*`) cover, while a missing event name or an extra condition does not (the reason \
            names what is missed). AND (`&&`) binds tighter than OR. An unreadable topic or trail leaves the \
            control unknown when nothing else passes. CIS only: Security Hub's CIS v3.0 standard has no \
            control for it.",
        remediation: "Put a metric filter with the benchmark's pattern on the trail's log group (`aws logs \
            put-metric-filter --filter-pattern ...`), an alarm on its metric (`aws cloudwatch put-metric-alarm \
            --threshold 1 --comparison-operator GreaterThanOrEqualToThreshold --alarm-actions <topic>`), and \
            subscribe someone who reads it to the topic (`aws sns subscribe`, then confirm). The trail needs \
            `--cloud-watch-logs-log-group-arn` and a role CloudTrail can deliver with.",
        reads: MONITORING_READS,
        cost: MONITORING_COST,
        events: MONITORING_EVENTS,
    }
    Cis3_4_16 = "CIS3-4.16" {
        title: "AWS Security Hub is enabled",
        label: "Security Hub",
        severity: Severity::Medium,
        cis: &["4.16"],
        coverage: Coverage::Region,
        rescan: Rescan::Scope,
        passes_when: "`DescribeHub` returns the region's hub (the account is subscribed to Security Hub there). \
            `InvalidAccessException` (not subscribed) fails; any other error, access denied included, leaves \
            the control unknown. Which standards are enabled is not judged. CIS only: Security Hub has no \
            control for itself.",
        remediation: "`aws securityhub enable-security-hub --enable-default-standards` in every region (or \
            from the organization's delegated administrator with central configuration).",
        reads: &["securityhub:DescribeHub"],
        cost: "1 per region",
        events: &[ChangeEvent::Api { event_source: SECURITYHUB, names: &["EnableSecurityHub", "DisableSecurityHub"] }],
    }
}

impl ControlId {
    pub fn title(self) -> &'static str {
        self.spec().title
    }

    /// Measured once per account (in its home region), not per region.
    pub fn is_global(self) -> bool {
        self.spec().coverage == Coverage::Account
    }

    /// The service family: the id's prefix (`IAM`, `EC2`, `CloudTrail`, ...), or `CIS` for the
    /// benchmark's own recommendations (`CIS3-1.16`).
    pub fn family(self) -> &'static str {
        let id = self.as_str();
        if id.starts_with(CIS_PREFIX) {
            return "CIS";
        }
        id.split_once('.').map(|(family, _)| family).unwrap_or(id)
    }

    /// Whether AWS Security Hub has this control (the others are CIS recommendations with no
    /// Security Hub control, named `CIS3-<recommendation>`).
    pub fn in_security_hub(self) -> bool {
        !self.as_str().starts_with(CIS_PREFIX)
    }

    pub fn parse(s: &str) -> Option<Self> {
        ControlId::ALL.iter().copied().find(|c| c.as_str().eq_ignore_ascii_case(s))
    }

    /// Where the control's documentation is, from the repository root (alert runbook links).
    pub fn runbook(self) -> String {
        format!("docs/posture.md#{}", self.as_str())
    }
}

impl std::fmt::Display for ControlId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One EventBridge rule of the stack on the default bus, delivering change events to the posture
/// queue. The event names of an API-call rule are every name the catalog's controls list for its
/// `eventSource`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRule {
    /// The CloudFormation logical id.
    pub logical_id: &'static str,
    /// The rule's name after `<prefix>-`.
    pub name: &'static str,
    /// What the rule catches (its description, before the controls it rescans).
    pub about: &'static str,
    /// The event's `source`.
    pub source: &'static str,
    pub kind: RuleKind,
    /// Why it must live in a particular region, if it must.
    pub note: Option<&'static str>,
}

/// What an [`EventRule`] matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    /// `AWS API Call via CloudTrail` from one `eventSource`.
    Api { event_source: &'static str },
    /// `GuardDuty Finding` with `detail.severity` ≥ 7 (a numeric match: never enumerate severities).
    GuardDutyFindings,
}

/// The stack's posture rules, in template order.
pub const EVENT_RULES: &[EventRule] = &[
    EventRule {
        logical_id: "AccountChangeRule",
        name: "account-changes",
        about: "The account's alternate contacts changed",
        source: "aws.account",
        kind: RuleKind::Api { event_source: ACCOUNT },
        note: Some(
            "The Account Management API is global: its CloudTrail events reach EventBridge in us-east-1 only, as \
             IAM's do; the periodic scan covers every region.",
        ),
    },
    EventRule {
        logical_id: "CloudTrailTamperingRule",
        name: "cloudtrail-tampering",
        about: "Trail stopped, deleted or reconfigured",
        source: "aws.cloudtrail",
        kind: RuleKind::Api { event_source: CLOUDTRAIL },
        note: None,
    },
    EventRule {
        logical_id: "GuardDutyFindingRule",
        name: "guardduty-findings",
        about: "GuardDuty findings of high or critical severity; the worker drops sample findings",
        source: "aws.guardduty",
        kind: RuleKind::GuardDutyFindings,
        note: None,
    },
    EventRule {
        logical_id: "GuardDutyTamperingRule",
        name: "guardduty-tampering",
        about: "Detector deleted, suspended or members disconnected",
        source: "aws.guardduty",
        kind: RuleKind::Api { event_source: GUARDDUTY },
        note: None,
    },
    EventRule {
        logical_id: "KmsChangeRule",
        name: "kms-changes",
        about: "Key rotation, state and deletion changes",
        source: "aws.kms",
        kind: RuleKind::Api { event_source: KMS },
        note: None,
    },
    EventRule {
        logical_id: "IamChangeRule",
        name: "iam-changes",
        about: "Access keys, passwords, MFA devices, users, policies and their attachments, and the password \
            policy changed",
        source: "aws.iam",
        kind: RuleKind::Api { event_source: IAM },
        note: Some(
            "IAM is global: its CloudTrail events reach EventBridge in us-east-1 only. Deploy this stack (or at \
             least this rule) in us-east-1 for targeted IAM rescans; the periodic scan covers every region.",
        ),
    },
    EventRule {
        logical_id: "Ec2ChangeRule",
        name: "ec2-changes",
        about: "Security group rules, network ACLs, VPCs, flow logs, instance metadata options and EBS default \
            encryption changed",
        source: "aws.ec2",
        kind: RuleKind::Api { event_source: EC2 },
        note: None,
    },
    EventRule {
        logical_id: "ConfigChangeRule",
        name: "config-changes",
        about: "Configuration recorders and delivery channels changed",
        source: "aws.config",
        kind: RuleKind::Api { event_source: CONFIG },
        note: None,
    },
    EventRule {
        logical_id: "S3AccountChangeRule",
        name: "s3-account-changes",
        about: "S3 Block Public Access (account or bucket), bucket policies, versioning, access logging, or \
            buckets created or deleted",
        source: "aws.s3",
        kind: RuleKind::Api { event_source: S3 },
        note: None,
    },
    EventRule {
        logical_id: "RdsChangeRule",
        name: "rds-changes",
        about: "RDS DB instances created, restored, modified or deleted",
        source: "aws.rds",
        kind: RuleKind::Api { event_source: RDS },
        note: None,
    },
    EventRule {
        logical_id: "EfsChangeRule",
        name: "efs-changes",
        about: "EFS file systems created or deleted",
        source: "aws.elasticfilesystem",
        kind: RuleKind::Api { event_source: EFS },
        note: None,
    },
    EventRule {
        logical_id: "AccessAnalyzerChangeRule",
        name: "access-analyzer-changes",
        about: "IAM Access Analyzer analyzers created or deleted",
        source: "aws.access-analyzer",
        kind: RuleKind::Api { event_source: ACCESS_ANALYZER },
        note: None,
    },
    EventRule {
        logical_id: "LogsChangeRule",
        name: "logs-changes",
        about: "CloudWatch Logs metric filters and log groups changed",
        source: "aws.logs",
        kind: RuleKind::Api { event_source: LOGS },
        note: None,
    },
    EventRule {
        logical_id: "AlarmChangeRule",
        name: "alarm-changes",
        about: "CloudWatch alarms changed, deleted, or their actions turned off or on",
        source: "aws.monitoring",
        kind: RuleKind::Api { event_source: MONITORING },
        note: None,
    },
    EventRule {
        logical_id: "SnsChangeRule",
        name: "sns-changes",
        about: "SNS subscriptions and topics changed",
        source: "aws.sns",
        kind: RuleKind::Api { event_source: SNS },
        note: None,
    },
    EventRule {
        logical_id: "SecurityHubChangeRule",
        name: "securityhub-changes",
        about: "Security Hub enabled or disabled",
        source: "aws.securityhub",
        kind: RuleKind::Api { event_source: SECURITYHUB },
        note: None,
    },
];

impl EventRule {
    /// The event names of an API-call rule: every name listed for its event source, in catalog
    /// order, each once.
    pub fn event_names(&self) -> Vec<&'static str> {
        let RuleKind::Api { event_source } = self.kind else { return Vec::new() };
        let mut names: Vec<&'static str> = Vec::new();
        for (source, name) in api_events() {
            if source == event_source && !names.contains(&name) {
                names.push(name);
            }
        }
        names
    }

    /// The controls its events rescan, in catalog order.
    pub fn controls(&self) -> Vec<ControlId> {
        ControlId::ALL
            .iter()
            .copied()
            .filter(|c| {
                c.spec().events.iter().any(|e| match (e, self.kind) {
                    (ChangeEvent::Api { event_source, .. }, RuleKind::Api { event_source: rule }) => {
                        *event_source == rule
                    }
                    (ChangeEvent::GuardDutyFinding, RuleKind::GuardDutyFindings) => true,
                    _ => false,
                })
            })
            .collect()
    }

    /// The rule's description: what it catches and what it rescans.
    pub fn description(&self) -> String {
        let ids: Vec<&str> = self.controls().iter().map(|c| c.as_str()).collect();
        format!("{} ({}).", self.about, ids.join(", "))
    }
}

/// Every (eventSource, eventName) some control lists, in catalog order (with repeats).
pub fn api_events() -> impl Iterator<Item = (&'static str, &'static str)> {
    ControlId::ALL.iter().flat_map(|c| {
        c.spec().events.iter().flat_map(|e| match e {
            ChangeEvent::Api { event_source, names } => names.iter().map(|n| (*event_source, *n)).collect::<Vec<_>>(),
            ChangeEvent::GuardDutyFinding => Vec::new(),
        })
    })
}

/// The controls an API call rescans.
pub fn controls_for_api_call(event_source: &str, event_name: &str) -> BTreeSet<ControlId> {
    ControlId::ALL
        .iter()
        .copied()
        .filter(|c| {
            c.spec().events.iter().any(|e| {
                matches!(e, ChangeEvent::Api { event_source: s, names } if *s == event_source && names.contains(&event_name))
            })
        })
        .collect()
}

/// The controls a GuardDuty finding rescans.
pub fn controls_for_findings() -> BTreeSet<ControlId> {
    ControlId::ALL.iter().copied().filter(|c| c.spec().events.contains(&ChangeEvent::GuardDutyFinding)).collect()
}

/// Whether the catalog has any event from `event_source`.
pub fn knows_event_source(event_source: &str) -> bool {
    api_events().any(|(s, _)| s == event_source)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_control_has_one_complete_entry() {
        let mut ids = BTreeSet::new();
        for c in ControlId::ALL {
            let spec = c.spec();
            assert_eq!(spec.id, *c);
            assert!(ids.insert(c.as_str()), "{c} twice");
            assert_eq!(ControlId::parse(c.as_str()), Some(*c));
            assert_eq!(serde_json::to_value(c).unwrap(), serde_json::json!(c.as_str()));
            for (what, text) in [
                ("title", spec.title),
                ("label", spec.label),
                ("passes_when", spec.passes_when),
                ("remediation", spec.remediation),
                ("cost", spec.cost),
            ] {
                assert!(!text.trim().is_empty(), "{c}: empty {what}");
                assert!(!text.contains('|'), "{c}: {what} would break a Markdown table");
            }
            assert!(!spec.reads.is_empty(), "{c} reads nothing");
            assert!(!spec.events.is_empty(), "{c}: no change event rescans it");
            for cis in spec.cis {
                assert!(cis.split('.').all(|n| n.parse::<u8>().is_ok()), "{c}: CIS `{cis}`");
            }
            // A CIS-only control is named after its one recommendation.
            if !c.in_security_hub() {
                assert_eq!(spec.cis, [c.as_str().trim_start_matches(CIS_PREFIX)], "{c}");
                assert_eq!(c.family(), "CIS");
            }
        }
        // Catalog order is the order results are reported in.
        let mut sorted = ControlId::ALL.to_vec();
        sorted.sort();
        assert_eq!(sorted, ControlId::ALL);
        assert_eq!(ControlId::Ec253.family(), "EC2");
        assert_eq!(ControlId::CloudTrail1.runbook(), "docs/posture.md#CloudTrail.1");
    }

    #[test]
    fn every_listed_event_has_a_rule_and_every_rule_a_control() {
        for (source, name) in api_events() {
            let rule = EVENT_RULES.iter().find(|r| r.kind == RuleKind::Api { event_source: source });
            let rule = rule.unwrap_or_else(|| panic!("no rule delivers {source} events ({name})"));
            assert!(rule.event_names().contains(&name));
            // AWS puts `aws.<service>` in `source` for CloudTrail events of `<service>.amazonaws.com`.
            assert_eq!(Some(rule.source.trim_start_matches("aws.")), source.split('.').next(), "{}", rule.logical_id);
        }
        for rule in EVENT_RULES {
            assert!(!rule.controls().is_empty(), "{} rescans nothing", rule.logical_id);
        }
        let mut logical_ids: Vec<&str> = EVENT_RULES.iter().map(|r| r.logical_id).collect();
        logical_ids.dedup();
        assert_eq!(logical_ids.len(), EVENT_RULES.len());
        assert_eq!(controls_for_findings(), BTreeSet::from([ControlId::GuardDuty1]));
    }

    /// An event must resolve to one target: a user, a key, or whole controls, of one coverage.
    #[test]
    fn the_controls_of_one_event_rescan_alike() {
        for (source, name) in api_events() {
            let controls = controls_for_api_call(source, name);
            let kinds: BTreeSet<&str> = controls
                .iter()
                .map(|c| match c.spec().rescan {
                    Rescan::Scope => "scope",
                    Rescan::User => "user",
                    Rescan::Key => "key",
                    Rescan::RootUser => "root",
                })
                .filter(|k| *k != "root")
                .collect();
            assert!(kinds.len() <= 1, "{source} {name} rescans {kinds:?}");
            let coverages: BTreeSet<bool> = controls.iter().map(|c| c.is_global()).collect();
            assert_eq!(coverages.len(), 1, "{source} {name} mixes account and regional controls");
        }
    }
}
