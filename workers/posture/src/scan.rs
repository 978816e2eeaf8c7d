//! Scans: read the facts for one account and region (all controls, or just the ones an event
//! touched), evaluate them, and report.
//!
//! Each control is measured from one [`Reading`] (one or a few API calls that serve several
//! controls: one `DescribeSecurityGroups` for EC2.2, EC2.53 and EC2.54); a scan makes the readings
//! its target needs, concurrently, and reports the controls it asked for.
//!
//! Account-wide controls (IAM, S3.1) are measured once per account, in its *home region* (the first
//! configured region). The scanner keeps the last credential report and KMS key list per scope so
//! that an event about one user or one key costs a few calls instead of a full sweep.
//!
//! AWS reuses a credential report for up to 4 hours. A user read on their own after an event is
//! newer than that report, so the read is kept (in a [`UserReadStore`] shared by the replicas, and
//! locally) and wins over the report's row for that user until a newer report arrives.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portcullis_domain::AccountId;
use portcullis_domain::posture::controls::{
    Anywhere, CREDENTIAL_REPORT_MAX_AGE, MONITORING_CLASSES, MonitoringFacts, current_users, evaluate_access_analyzer,
    evaluate_account_public_access_block, evaluate_admin_ports, evaluate_bucket_public_access_blocks,
    evaluate_bucket_tls, evaluate_cloudshell_access, evaluate_cloudtrail, evaluate_config, evaluate_console_mfa,
    evaluate_db_instances, evaluate_default_security_groups, evaluate_ebs_default_encryption, evaluate_file_systems,
    evaluate_flow_logs, evaluate_full_admin_policies, evaluate_guardduty, evaluate_imdsv2, evaluate_kms,
    evaluate_log_file_validation, evaluate_mfa_delete, evaluate_monitoring, evaluate_nacl_admin_ports,
    evaluate_one_active_key, evaluate_password_policy, evaluate_root, evaluate_root_hardware_mfa,
    evaluate_s3_object_logging, evaluate_security_contact, evaluate_security_hub, evaluate_server_certificates,
    evaluate_support_role, evaluate_trail_bucket_logging, evaluate_trail_encryption, evaluate_unused_credentials,
    evaluate_user_access_keys, evaluate_user_policies, monitored_log_groups, trail_buckets,
};
use portcullis_domain::posture::{
    AccessKeyAge, ControlId, ControlResult, CredentialReport, Findings, IamUserFacts, KmsKeyFacts, ScanReport,
    ScanTarget, Scope, TrailFacts, Unreadable, UserRead,
};
use portcullis_runtime::clock::{Clock, SystemClock};

use crate::ports::{BucketReadsWanted, CollectError, FactReader, UserReadStore};

fn unknown(control: ControlId, e: &CollectError) -> ControlResult {
    ControlResult::unknown(control, e.code, format!("could not read {}: {}", e.op, e.message))
}

/// One read of the facts some controls are evaluated from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// `DescribeTrails`, and each trail's status and selectors; for CIS 4.1-4.15, the chain after
    /// the healthy trails (metric filters, alarms, topic subscriptions).
    Trails,
    /// Detectors and finding statistics.
    GuardDuty,
    /// The credential report, or one user.
    IamUsers,
    /// `GetAccountSummary` (and, for IAM.6, `ListVirtualMFADevices`).
    RootSummary,
    /// `GetAccountAuthorizationDetails`: who holds which policy.
    IamAuthorization,
    PasswordPolicy,
    AccountPublicAccessBlock,
    EbsDefaultEncryption,
    ConfigRecorders,
    SecurityGroups,
    /// `DescribeInstances`.
    Instances,
    /// `DescribeNetworkAcls`.
    NetworkAcls,
    VpcsAndFlowLogs,
    /// Keys, or one key.
    Kms,
    /// `DescribeHub`.
    SecurityHub,
    /// `GetAlternateContact` (`SECURITY`).
    SecurityContact,
    /// `DescribeDBInstances`.
    DbInstances,
    /// `DescribeFileSystems`.
    FileSystems,
    /// `ListBuckets`, then each bucket's location and the reads its controls need.
    Buckets,
    /// `ListServerCertificates` and each certificate's body.
    ServerCertificates,
    /// `ListAnalyzers`.
    AccessAnalyzers,
}

impl Reading {
    /// What `control` is measured from. Every control of the catalog has one (the compiler checks).
    pub fn of(control: ControlId) -> Reading {
        use ControlId::*;
        match control {
            // The CIS 4.x chain starts at the trails: one reading of them serves both.
            CloudTrail1 | CloudTrail2 | CloudTrail4 | S322 | S323 => Reading::Trails,
            // The trails name the buckets whose logging CloudTrail.7 reads.
            CloudTrail7 => Reading::Trails,
            S35 | S38 | S320 => Reading::Buckets,
            Cis3_4_1 | Cis3_4_2 | Cis3_4_3 | Cis3_4_4 | Cis3_4_5 | Cis3_4_6 | Cis3_4_7 | Cis3_4_8 | Cis3_4_9
            | Cis3_4_10 | Cis3_4_11 | Cis3_4_12 | Cis3_4_13 | Cis3_4_14 | Cis3_4_15 => Reading::Trails,
            Cis3_4_16 => Reading::SecurityHub,
            Account1 => Reading::SecurityContact,
            Config1 => Reading::ConfigRecorders,
            Efs1 => Reading::FileSystems,
            Rds2 | Rds3 | Rds13 => Reading::DbInstances,
            Ec22 | Ec253 | Ec254 => Reading::SecurityGroups,
            Ec26 => Reading::VpcsAndFlowLogs,
            Ec27 => Reading::EbsDefaultEncryption,
            Ec28 => Reading::Instances,
            Ec221 => Reading::NetworkAcls,
            GuardDuty1 => Reading::GuardDuty,
            Iam3 | Iam5 | Iam22 | Cis3_1_13 => Reading::IamUsers,
            Iam4 | Iam6 | Iam9 => Reading::RootSummary,
            Iam2 | Iam18 | Iam27 | Cis3_1_16 => Reading::IamAuthorization,
            Iam15 | Iam16 => Reading::PasswordPolicy,
            Iam26 => Reading::ServerCertificates,
            Iam28 => Reading::AccessAnalyzers,
            Kms3 | Kms4 => Reading::Kms,
            S31 => Reading::AccountPublicAccessBlock,
        }
    }

    /// The controls this reading serves.
    pub fn controls(self) -> Vec<ControlId> {
        ControlId::ALL.iter().copied().filter(|c| Reading::of(*c) == self).collect()
    }

    /// Every control of this reading unknown, for one failed read.
    fn unknown(self, e: &CollectError) -> Vec<ControlResult> {
        self.controls().into_iter().map(|c| unknown(c, e)).collect()
    }
}

/// Reads and evaluates. One per process; safe to share.
#[derive(Debug)]
pub struct Scanner {
    readers: HashMap<Scope, Arc<dyn FactReader>>,
    home_regions: HashMap<AccountId, String>,
    own_account: Option<AccountId>,
    max_key_age_days: u64,
    /// The facts of the last full read, which a targeted rescan updates one user or key in, with
    /// when that full read was. Older than `cache_ttl` (another replica did the recent full scans),
    /// a targeted rescan reads everything again rather than merge into stale facts.
    reports: Mutex<HashMap<AccountId, (Instant, CredentialReport)>>,
    /// Users read on their own by this replica, per account (also in `shared_reads` when set).
    local_reads: Mutex<HashMap<AccountId, Vec<UserRead>>>,
    shared_reads: Option<Arc<dyn UserReadStore>>,
    kms: Mutex<HashMap<Scope, (Instant, KmsKeys)>>,
    cache_ttl: Duration,
    clock: Arc<dyn Clock>,
    /// Config.1 requires the service-linked role (`posture.config_require_service_linked_role`).
    config_requires_service_linked_role: bool,
}

/// The keys of a region that could be described, and those that could not.
type KmsKeys = (Vec<KmsKeyFacts>, Vec<Unreadable>);

/// Whether `cache` holds a full read for `key` younger than `ttl`.
fn recent<K: std::hash::Hash + Eq, V>(cache: &Mutex<HashMap<K, (Instant, V)>>, key: &K, ttl: Duration) -> bool {
    cache.lock().ok().is_some_and(|c| c.get(key).is_some_and(|(at, _)| at.elapsed() < ttl))
}

/// Default age after which a targeted rescan no longer trusts the last full read.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(120);

impl Scanner {
    /// `readers` must hold one reader per scope; the first region listed for an account is its home.
    pub fn new(readers: Vec<Arc<dyn FactReader>>, max_key_age_days: u64) -> Self {
        let mut home_regions = HashMap::new();
        let mut map = HashMap::new();
        let own_account = readers.first().map(|r| r.account_id().clone());
        for r in readers {
            home_regions.entry(r.account_id().clone()).or_insert_with(|| r.region().to_owned());
            map.insert(Scope { account_id: r.account_id().clone(), region: r.region().to_owned() }, r);
        }
        Self {
            readers: map,
            home_regions,
            own_account,
            max_key_age_days,
            reports: Mutex::default(),
            local_reads: Mutex::default(),
            shared_reads: None,
            kms: Mutex::default(),
            cache_ttl: DEFAULT_CACHE_TTL,
            clock: Arc::new(SystemClock),
            config_requires_service_linked_role: true,
        }
    }

    /// Whether Config.1 requires the service-linked role (default true, as Security Hub does).
    pub fn with_config_service_linked_role(mut self, required: bool) -> Self {
        self.config_requires_service_linked_role = required;
        self
    }

    /// Read the time (key ages, report times) from `clock`.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Keep per-user reads in `store`, where every replica sees them.
    pub fn with_user_reads(mut self, store: Arc<dyn UserReadStore>) -> Self {
        self.shared_reads = Some(store);
        self
    }

    /// How long a full read may serve targeted rescans (default [`DEFAULT_CACHE_TTL`]).
    pub fn with_cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        self
    }

    /// The worker's own account (the first reader's).
    pub fn own_account(&self) -> Option<&AccountId> {
        self.own_account.as_ref()
    }

    /// Every scope, sorted.
    pub fn scopes(&self) -> Vec<Scope> {
        let mut s: Vec<Scope> = self.readers.keys().cloned().collect();
        s.sort();
        s
    }

    /// The home region of an account (where IAM results live).
    pub fn home_region(&self, account: &AccountId) -> Option<&str> {
        self.home_regions.get(account).map(String::as_str)
    }

    pub fn is_home(&self, scope: &Scope) -> bool {
        self.home_region(&scope.account_id) == Some(scope.region.as_str())
    }

    /// Scan `scope` for `target`: the readings its controls need, concurrently, and the results of
    /// those controls (sorted by control).
    pub async fn scan(&self, scope: &Scope, target: &ScanTarget, trigger: &str) -> Option<ScanReport> {
        let reader: &dyn FactReader = self.readers.get(scope)?.as_ref();
        let started_at = self.clock.now();
        let mut report = ScanReport {
            scope: scope.clone(),
            results: Vec::new(),
            findings: None,
            key_age: None,
            started_at,
            finished_at: started_at,
            trigger: trigger.to_owned(),
        };
        let home = self.is_home(scope);
        let region = scope.region.as_str();
        let wanted: BTreeSet<ControlId> = target.measures(home);
        let needs = |r: Reading| wanted.iter().any(|c| Reading::of(*c) == r);
        let account = scope.account_id.as_str();
        let (
            trails,
            guardduty,
            users,
            root,
            authorization,
            policy,
            public_access,
            ebs,
            config,
            groups,
            instances,
            acls,
            flow_logs,
            security_contact,
            security_hub,
            kms,
            db_instances,
            file_systems,
            buckets,
            certificates,
            analyzers,
        ) = tokio::join!(
            async {
                needs(Reading::Trails).then_some(())?;
                let monitoring = MONITORING_CLASSES.iter().any(|m| wanted.contains(&m.control));
                Some(match reader.trails().await {
                    Ok((trails, unreadable)) => {
                        let mut results = vec![
                            evaluate_cloudtrail(&trails, &unreadable),
                            evaluate_trail_encryption(&trails),
                            evaluate_log_file_validation(&trails),
                            evaluate_s3_object_logging(&trails, &unreadable, true),
                            evaluate_s3_object_logging(&trails, &unreadable, false),
                        ];
                        if wanted.contains(&ControlId::CloudTrail7) {
                            results.push(match reader.trail_bucket_logging(&trail_buckets(&trails)).await {
                                Ok(logging) => evaluate_trail_bucket_logging(&logging),
                                Err(e) => unknown(ControlId::CloudTrail7, &e),
                            });
                        }
                        if monitoring {
                            results.extend(self.monitoring(reader, account, &trails, unreadable).await);
                        }
                        results
                    }
                    Err(e) => Reading::Trails.unknown(&e),
                })
            },
            async {
                needs(Reading::GuardDuty).then_some(())?;
                Some(self.guardduty(reader).await)
            },
            async {
                needs(Reading::IamUsers).then_some(())?;
                Some(match target {
                    ScanTarget::User(user) => self.users_with(reader, user).await,
                    _ => self.users_full(reader).await,
                })
            },
            async {
                needs(Reading::RootSummary).then_some(())?;
                Some(self.root(reader, wanted.contains(&ControlId::Iam6)).await)
            },
            async {
                needs(Reading::IamAuthorization).then_some(())?;
                Some(match reader.authorization_details().await {
                    Ok(facts) => vec![
                        evaluate_user_policies(&facts),
                        evaluate_support_role(account, &facts),
                        evaluate_cloudshell_access(&facts),
                        evaluate_full_admin_policies(&facts),
                    ],
                    Err(e) => Reading::IamAuthorization.unknown(&e),
                })
            },
            async {
                needs(Reading::PasswordPolicy).then_some(())?;
                Some(match reader.password_policy().await {
                    Ok(policy) => {
                        let (length, reuse) = evaluate_password_policy(account, policy.as_ref());
                        vec![length, reuse]
                    }
                    Err(e) => Reading::PasswordPolicy.unknown(&e),
                })
            },
            async {
                needs(Reading::AccountPublicAccessBlock).then_some(())?;
                Some(match reader.account_public_access_block().await {
                    Ok(block) => vec![evaluate_account_public_access_block(account, block.as_ref())],
                    Err(e) => Reading::AccountPublicAccessBlock.unknown(&e),
                })
            },
            async {
                needs(Reading::EbsDefaultEncryption).then_some(())?;
                Some(match reader.ebs_encryption_by_default().await {
                    Ok(on) => vec![evaluate_ebs_default_encryption(region, on)],
                    Err(e) => Reading::EbsDefaultEncryption.unknown(&e),
                })
            },
            async {
                needs(Reading::ConfigRecorders).then_some(())?;
                Some(match reader.config_recorders().await {
                    Ok(recorders) => {
                        vec![evaluate_config(region, home, &recorders, self.config_requires_service_linked_role)]
                    }
                    Err(e) => Reading::ConfigRecorders.unknown(&e),
                })
            },
            async {
                needs(Reading::SecurityGroups).then_some(())?;
                Some(match reader.security_groups().await {
                    Ok(groups) => vec![
                        evaluate_default_security_groups(&groups),
                        evaluate_admin_ports(&groups, Anywhere::Ipv4),
                        evaluate_admin_ports(&groups, Anywhere::Ipv6),
                    ],
                    Err(e) => Reading::SecurityGroups.unknown(&e),
                })
            },
            async {
                needs(Reading::Instances).then_some(())?;
                Some(match reader.instances().await {
                    Ok(instances) => vec![evaluate_imdsv2(&instances)],
                    Err(e) => Reading::Instances.unknown(&e),
                })
            },
            async {
                needs(Reading::NetworkAcls).then_some(())?;
                Some(match reader.network_acls().await {
                    Ok(acls) => vec![evaluate_nacl_admin_ports(&acls)],
                    Err(e) => Reading::NetworkAcls.unknown(&e),
                })
            },
            async {
                needs(Reading::VpcsAndFlowLogs).then_some(())?;
                Some(match reader.vpcs_and_flow_logs().await {
                    Ok((vpcs, flow_logs)) => vec![evaluate_flow_logs(&vpcs, &flow_logs)],
                    Err(e) => Reading::VpcsAndFlowLogs.unknown(&e),
                })
            },
            async {
                needs(Reading::SecurityContact).then_some(())?;
                Some(match reader.security_contact().await {
                    Ok(present) => vec![evaluate_security_contact(account, present)],
                    Err(e) => Reading::SecurityContact.unknown(&e),
                })
            },
            async {
                needs(Reading::SecurityHub).then_some(())?;
                Some(match reader.security_hub().await {
                    Ok(hub) => vec![evaluate_security_hub(account, region, hub.as_deref())],
                    Err(e) => Reading::SecurityHub.unknown(&e),
                })
            },
            async {
                needs(Reading::Kms).then_some(())?;
                Some(match target {
                    ScanTarget::KmsKey(id) => self.kms_one(reader, scope, id).await,
                    _ => self.kms_full(reader, scope).await,
                })
            },
            async {
                needs(Reading::DbInstances).then_some(())?;
                Some(match reader.db_instances().await {
                    Ok(instances) => evaluate_db_instances(&instances).into(),
                    Err(e) => Reading::DbInstances.unknown(&e),
                })
            },
            async {
                needs(Reading::FileSystems).then_some(())?;
                Some(match reader.file_systems().await {
                    Ok(file_systems) => vec![evaluate_file_systems(&file_systems)],
                    Err(e) => Reading::FileSystems.unknown(&e),
                })
            },
            async {
                needs(Reading::Buckets).then_some(())?;
                let wanted = BucketReadsWanted {
                    policy: wanted.contains(&ControlId::S35),
                    public_access_block: wanted.contains(&ControlId::S38),
                    versioning: wanted.contains(&ControlId::S320),
                };
                Some(match reader.buckets(wanted).await {
                    Ok(facts) => vec![
                        evaluate_bucket_tls(&facts),
                        evaluate_bucket_public_access_blocks(&facts),
                        evaluate_mfa_delete(&facts),
                    ],
                    Err(e) => Reading::Buckets.unknown(&e),
                })
            },
            async {
                needs(Reading::ServerCertificates).then_some(())?;
                Some(match reader.server_certificates().await {
                    Ok((certificates, unreadable)) => {
                        vec![evaluate_server_certificates(&certificates, &unreadable, self.clock.now())]
                    }
                    Err(e) => Reading::ServerCertificates.unknown(&e),
                })
            },
            async {
                needs(Reading::AccessAnalyzers).then_some(())?;
                Some(match reader.access_analyzers().await {
                    Ok(analyzers) => vec![evaluate_access_analyzer(account, region, &analyzers)],
                    Err(e) => Reading::AccessAnalyzers.unknown(&e),
                })
            },
        );
        if let Some((r, findings)) = guardduty {
            report.results.push((region.to_owned(), r));
            report.findings = findings;
        }
        if let Some((rs, age)) = users {
            report.key_age = age.filter(|_| wanted.contains(&ControlId::Iam3)).map(|a| (region.to_owned(), a));
            report.results.extend(rs.into_iter().map(|r| (region.to_owned(), r)));
        }
        let readings = [
            trails,
            root,
            authorization,
            policy,
            public_access,
            ebs,
            config,
            groups,
            instances,
            acls,
            flow_logs,
            security_contact,
            security_hub,
            kms,
            db_instances,
            file_systems,
            buckets,
            certificates,
            analyzers,
        ];
        for rs in readings.into_iter().flatten() {
            report.results.extend(rs.into_iter().map(|r| (region.to_owned(), r)));
        }
        report.results.retain(|(_, r)| wanted.contains(&r.control));
        report.results.sort_by_key(|(_, r)| r.control);
        report.finished_at = self.clock.now();
        Some(report)
    }

    /// CIS 4.1-4.15 from the trails already read: the chain after the healthy ones, read once for
    /// the fifteen. Trails that could not be read leave the chain unknown when nothing else passes.
    async fn monitoring(
        &self,
        reader: &dyn FactReader,
        account: &str,
        trails: &[TrailFacts],
        trails_unreadable: Vec<Unreadable>,
    ) -> Vec<ControlResult> {
        let log_groups = monitored_log_groups(trails, &trails_unreadable);
        let read =
            if log_groups.is_empty() { Ok(MonitoringFacts::default()) } else { reader.monitoring(&log_groups).await };
        match read {
            Ok(mut facts) => {
                facts.unreadable.extend(trails_unreadable);
                MONITORING_CLASSES
                    .iter()
                    .map(|class| evaluate_monitoring(class, account, &log_groups, &facts))
                    .collect()
            }
            Err(e) => MONITORING_CLASSES.iter().map(|class| unknown(class.control, &e)).collect(),
        }
    }

    /// IAM.4 and IAM.9 from the account summary; IAM.6 (when `hardware` is asked) from it and the
    /// virtual MFA devices.
    async fn root(&self, reader: &dyn FactReader, hardware: bool) -> Vec<ControlResult> {
        let (summary, devices) = tokio::join!(reader.root_summary(), async {
            if hardware { Some(reader.virtual_mfa_devices().await) } else { None }
        });
        let mut results = match &summary {
            Ok((keys, mfa)) => {
                let (k, m) = evaluate_root(*keys, *mfa);
                vec![k, m]
            }
            Err(e) => vec![unknown(ControlId::Iam4, e), unknown(ControlId::Iam9, e)],
        };
        match (summary, devices) {
            (_, None) => {}
            (Err(e), Some(_)) | (Ok(_), Some(Err(e))) => results.push(unknown(ControlId::Iam6, &e)),
            (Ok((_, mfa)), Some(Ok(devices))) => results.push(evaluate_root_hardware_mfa(mfa, &devices)),
        }
        results
    }

    async fn guardduty(&self, reader: &dyn FactReader) -> (ControlResult, Option<Findings>) {
        match reader.guardduty_detectors().await {
            Ok(detectors) => {
                let result = evaluate_guardduty(reader.region(), &detectors);
                let enabled = detectors.iter().find(|(_, s)| s.eq_ignore_ascii_case("ENABLED"));
                let findings = match enabled {
                    Some((id, _)) => Some(match reader.guardduty_findings(id).await {
                        Ok(f) => Findings::Counted(f),
                        Err(e) => {
                            tracing::warn!(region = %reader.region(), error = %e, "GuardDuty findings statistics unavailable");
                            Findings::Unknown {
                                error_code: e.code,
                                reason: format!("could not read {}: {}", e.op, e.message),
                            }
                        }
                    }),
                    None => None,
                };
                (result, findings)
            }
            Err(e) => (unknown(ControlId::GuardDuty1, &e), None),
        }
    }

    async fn kms_full(&self, reader: &dyn FactReader, scope: &Scope) -> Vec<ControlResult> {
        match reader.kms_keys().await {
            Ok((keys, unreadable)) => {
                let (rotation, deletion) = evaluate_kms(&keys, &unreadable);
                if let Ok(mut cache) = self.kms.lock() {
                    cache.insert(scope.clone(), (Instant::now(), (keys, unreadable)));
                }
                vec![deletion, rotation]
            }
            Err(e) => Reading::Kms.unknown(&e),
        }
    }

    async fn kms_one(&self, reader: &dyn FactReader, scope: &Scope, key_id: &str) -> Vec<ControlResult> {
        let known = recent(&self.kms, scope, self.cache_ttl);
        if !known {
            // Nothing recent to update one key in: read them all (this key described anew).
            reader.forget_kms_key(key_id);
            return self.kms_full(reader, scope).await;
        }
        let read = reader.kms_key(key_id).await;
        let (keys, unreadable) = {
            let Ok(mut cache) = self.kms.lock() else { return Vec::new() };
            let (_, (keys, unreadable)) =
                cache.entry(scope.clone()).or_insert_with(|| (Instant::now(), Default::default()));
            keys.retain(|k| k.key_id != key_id && k.arn != key_id);
            unreadable.retain(|u| u.resource != key_id);
            match read {
                Ok(fact) => keys.extend(fact),
                Err(e) => unreadable.push(Unreadable {
                    resource: key_id.to_owned(),
                    error_code: e.code,
                    reason: format!("{}: {}", e.op, e.message),
                }),
            }
            (keys.clone(), unreadable.clone())
        };
        let (rotation, deletion) = evaluate_kms(&keys, &unreadable);
        vec![deletion, rotation]
    }

    /// The per-user controls (IAM.3, IAM.5, IAM.22, CIS 1.13) over `users`, and the oldest active key.
    fn evaluate_users(&self, users: &[IamUserFacts]) -> (Vec<ControlResult>, Option<AccessKeyAge>) {
        let now = self.clock.now();
        let age = evaluate_user_access_keys(users, now, self.max_key_age_days);
        let results = vec![
            age.result.clone(),
            evaluate_console_mfa(users),
            evaluate_unused_credentials(users, now),
            evaluate_one_active_key(users),
        ];
        (results, Some(age))
    }

    /// The per-user controls from the credential report, with the users read on their own since it
    /// was generated.
    async fn users_full(&self, reader: &dyn FactReader) -> (Vec<ControlResult>, Option<AccessKeyAge>) {
        match reader.credential_report().await {
            Ok(report) => {
                let reads = self.user_reads(reader.account_id()).await;
                let users = current_users(&report, &reads, self.clock.now());
                if let Ok(mut cache) = self.reports.lock() {
                    cache.insert(reader.account_id().clone(), (Instant::now(), report));
                }
                self.evaluate_users(&users)
            }
            Err(e) => (Reading::IamUsers.unknown(&e), None),
        }
    }

    /// The per-user controls after an event about `user`: that user read now, everyone else from
    /// the last credential report.
    async fn users_with(&self, reader: &dyn FactReader, user: &str) -> (Vec<ControlResult>, Option<AccessKeyAge>) {
        let account = reader.account_id();
        if !recent(&self.reports, account, self.cache_ttl) {
            // Nothing recent to update one user in: read the credential report first (it can be
            // hours old), then the user on top, below.
            if let (unreadable, None) = self.users_full(reader).await {
                return (unreadable, None);
            }
        }
        let read_at = self.clock.now();
        let facts = match reader.iam_user(user).await {
            Ok(facts) => facts,
            Err(e) => return (Reading::IamUsers.unknown(&e), None),
        };
        self.keep_user_read(account, UserRead { user: user.to_owned(), read_at, facts }).await;
        let Some(report) = self.reports.lock().ok().and_then(|c| c.get(account).map(|(_, r)| r.clone())) else {
            return self.users_full(reader).await;
        };
        let reads = self.user_reads(account).await;
        self.evaluate_users(&current_users(&report, &reads, self.clock.now()))
    }

    /// Keep a per-user read here and in the shared store (a failure there is logged: this replica
    /// still honours the read).
    async fn keep_user_read(&self, account: &AccountId, read: UserRead) {
        let now = self.clock.now();
        if let Ok(mut local) = self.local_reads.lock() {
            let reads = local.entry(account.clone()).or_default();
            reads.retain(|r| r.user != read.user && now - r.read_at <= CREDENTIAL_REPORT_MAX_AGE);
            reads.push(read.clone());
        }
        if let Some(store) = &self.shared_reads
            && let Err(e) = store.put_user_read(account, &read).await
        {
            tracing::warn!(account = %account, error = %e, "could not share a per-user IAM read with other replicas");
        }
    }

    /// This replica's per-user reads and the shared ones.
    async fn user_reads(&self, account: &AccountId) -> Vec<UserRead> {
        let mut reads = self.local_reads.lock().ok().and_then(|l| l.get(account).cloned()).unwrap_or_default();
        if let Some(store) = &self.shared_reads {
            match store.user_reads(account).await {
                Ok(shared) => reads.extend(shared),
                Err(e) => tracing::warn!(account = %account, error = %e,
                    "could not read other replicas' per-user IAM reads; using this replica's"),
            }
        }
        reads
    }
}
