//! Scans: read the facts for one account and region (all controls, or just the ones an event
//! touched), evaluate them, and report.
//!
//! IAM is global, so IAM.3, IAM.4 and IAM.9 are measured once per account, in its *home region* (the
//! first configured region). The scanner keeps the last credential report and KMS key list per scope
//! so that an event about one user or one key costs one or two calls instead of a full sweep.
//!
//! AWS reuses a credential report for up to 4 hours. A user read on their own after an event is
//! newer than that report, so the read is kept (in a [`UserReadStore`] shared by the replicas, and
//! locally) and wins over the report's row for that user until a newer report arrives.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portcullis_domain::AccountId;
use portcullis_domain::posture::{
    AccessKeyAge, ControlId, ControlResult, CredentialReport, Findings, KmsKeyFacts, ScanReport, ScanTarget, Scope,
    Unreadable, UserRead,
    controls::{
        CREDENTIAL_REPORT_MAX_AGE, current_users, evaluate_cloudtrail, evaluate_guardduty, evaluate_kms, evaluate_root,
        evaluate_user_access_keys,
    },
};
use portcullis_runtime::clock::{Clock, SystemClock};

use crate::ports::{CollectError, FactReader, UserReadStore};

fn unknown(control: ControlId, e: &CollectError) -> ControlResult {
    ControlResult::unknown(control, e.code, format!("could not read {}: {}", e.op, e.message))
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
        }
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

    /// Scan `scope` for `target`.
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
        let region = scope.region.clone();
        let (cloudtrail, guardduty, kms, keys, root) = tokio::join!(
            async {
                matches!(target, ScanTarget::Full | ScanTarget::CloudTrail).then_some(())?;
                Some(match reader.trails().await {
                    Ok((trails, unreadable)) => evaluate_cloudtrail(&trails, &unreadable),
                    Err(e) => unknown(ControlId::CloudTrail1, &e),
                })
            },
            async {
                matches!(target, ScanTarget::Full | ScanTarget::GuardDuty).then_some(())?;
                Some(self.guardduty(reader).await)
            },
            async {
                match target {
                    ScanTarget::Full => Some(self.kms_full(reader, scope).await),
                    ScanTarget::KmsKey(id) => Some(self.kms_one(reader, scope, id).await),
                    _ => None,
                }
            },
            async {
                match target {
                    ScanTarget::Full if home => Some(self.keys_full(reader).await),
                    ScanTarget::AccessKeysOf(user) if home => Some(self.keys_of(reader, user).await),
                    _ => None,
                }
            },
            async {
                matches!(target, ScanTarget::Full | ScanTarget::Root).then_some(())?;
                home.then_some(())?;
                Some(match reader.root_summary().await {
                    Ok((keys, mfa)) => {
                        let (k, m) = evaluate_root(keys, mfa);
                        vec![k, m]
                    }
                    Err(e) => vec![unknown(ControlId::Iam4, &e), unknown(ControlId::Iam9, &e)],
                })
            },
        );
        if let Some(r) = cloudtrail {
            report.results.push((region.clone(), r));
        }
        if let Some((r, findings)) = guardduty {
            report.results.push((region.clone(), r));
            report.findings = findings;
        }
        if let Some(rs) = kms {
            report.results.extend(rs.into_iter().map(|r| (region.clone(), r)));
        }
        if let Some((r, age)) = keys {
            report.results.push((region.clone(), r));
            report.key_age = age.map(|a| (region.clone(), a));
        }
        if let Some(rs) = root {
            report.results.extend(rs.into_iter().map(|r| (region.clone(), r)));
        }
        report.results.sort_by_key(|(_, r)| r.control);
        report.finished_at = self.clock.now();
        Some(report)
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
            Err(e) => vec![unknown(ControlId::Kms3, &e), unknown(ControlId::Kms4, &e)],
        }
    }

    async fn kms_one(&self, reader: &dyn FactReader, scope: &Scope, key_id: &str) -> Vec<ControlResult> {
        let known = recent(&self.kms, scope, self.cache_ttl);
        if !known {
            // Nothing recent to update one key in: read them all (this key included).
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

    /// IAM.3 from the credential report, with the users read on their own since it was generated.
    async fn keys_full(&self, reader: &dyn FactReader) -> (ControlResult, Option<AccessKeyAge>) {
        match reader.credential_report().await {
            Ok(report) => {
                let reads = self.user_reads(reader.account_id()).await;
                let now = self.clock.now();
                let age = evaluate_user_access_keys(&current_users(&report, &reads, now), now, self.max_key_age_days);
                if let Ok(mut cache) = self.reports.lock() {
                    cache.insert(reader.account_id().clone(), (Instant::now(), report));
                }
                (age.result.clone(), Some(age))
            }
            Err(e) => (unknown(ControlId::Iam3, &e), None),
        }
    }

    /// IAM.3 after an event about `user`: that user read now, everyone else from the last report.
    async fn keys_of(&self, reader: &dyn FactReader, user: &str) -> (ControlResult, Option<AccessKeyAge>) {
        let account = reader.account_id();
        if !recent(&self.reports, account, self.cache_ttl) {
            // Nothing recent to update one user in: read the credential report first (it can be
            // hours old), then the user's own keys on top, below.
            if let (unreadable, None) = self.keys_full(reader).await {
                return (unreadable, None);
            }
        }
        let read_at = self.clock.now();
        let facts = match reader.iam_user(user).await {
            Ok(facts) => facts,
            Err(e) => return (unknown(ControlId::Iam3, &e), None),
        };
        self.keep_user_read(account, UserRead { user: user.to_owned(), read_at, facts }).await;
        let Some(report) = self.reports.lock().ok().and_then(|c| c.get(account).map(|(_, r)| r.clone())) else {
            return self.keys_full(reader).await;
        };
        let reads = self.user_reads(account).await;
        let now = self.clock.now();
        let age = evaluate_user_access_keys(&current_users(&report, &reads, now), now, self.max_key_age_days);
        (age.result.clone(), Some(age))
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
