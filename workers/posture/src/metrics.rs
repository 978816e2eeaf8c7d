//! Posture metrics: the latest result of every control, observed by OTLP gauges.
//!
//! The gauges read a shared [`PostureState`] when metrics are collected, so a series exists exactly
//! while its fact is known: an account or control that stops being measured disappears instead of
//! repeating a stale value. Names follow `../shared/FACTS.md`: everything is `portcullis_posture_*`,
//! in base units, with `cloud.account.id` and `cloud.region` on every data point, except the seed
//! dashboard's four `aws_*` gauges, which keep the original exporter's *names*. Only
//! `aws_iam_access_key_max_age_days` keeps its meaning too; the other three follow the controls
//! (CloudTrail.1, GuardDuty.1, KMS.4) and differ from the original, gauge by gauge, as
//! `docs/posture.md` ("The seed gauges") sets out. Failing resources are never labels.
//!
//! Several replicas each export their own view, told apart by `service.instance.id`. A result is
//! applied only when no later-started measurement of the same control is already held (a slow
//! scheduled scan cannot overwrite a newer event-driven one), and a replica stops exporting a
//! control's series [`PostureState::stale_after`] after it last measured it, so a replica that lost
//! the scan lease does not keep repeating an old value: aggregate across instances with `min`/`max`
//! by account, region and control when several replicas run.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter, ObservableGauge};

use portcullis_domain::AccountId;
use portcullis_domain::metrics;
use portcullis_domain::posture::{ControlId, FindingCounts, Findings, ScanReport, Status};
use portcullis_runtime::telemetry::instruments;

/// The seed dashboard's gauges, by their original names. Each has a row in docs/posture.md ("The
/// seed gauges") saying what it measures next to the original exporter (a test checks).
pub const SEED_GAUGES: [&str; 4] = [
    metrics::SEED_CLOUDTRAIL_LOGGING.name,
    metrics::SEED_GUARDDUTY_HIGH.name,
    metrics::SEED_ACCESS_KEY_AGE.name,
    metrics::SEED_KMS_ROTATION.name,
];

/// The latest known state of one control in one account and region.
#[derive(Debug, Clone, PartialEq)]
pub struct ControlSnapshot {
    pub status: Status,
    pub failing: usize,
    pub checked_at: DateTime<Utc>,
    /// When the scan that measured it started: a result from a scan that started earlier is older.
    pub measured_at: DateTime<Utc>,
    /// When the control was last measured (pass or fail, not unknown).
    pub last_success: Option<DateTime<Utc>>,
}

/// (account, region, control).
pub type ControlKey = (AccountId, String, ControlId);

/// Oldest active access key of an account: (age in whole days, creation time).
pub type KeyAge = (i64, Option<DateTime<Utc>>);

/// Everything the gauges show.
#[derive(Debug, Default)]
pub struct PostureState {
    pub controls: BTreeMap<ControlKey, ControlSnapshot>,
    /// Active findings per (account, region); absent when GuardDuty is off or unreadable.
    pub findings: BTreeMap<(AccountId, String), FindingCounts>,
    /// Oldest active access key per (account, home region): (max age days, oldest creation).
    pub key_age: BTreeMap<(AccountId, String), KeyAge>,
    /// A control not measured for this long stops being exported (`None`: never).
    pub stale_after: Option<chrono::Duration>,
}

impl PostureState {
    /// Fold a scan report in. Results older than the ones held (by scan start) are ignored.
    pub fn apply(&mut self, report: &ScanReport) {
        let mut applied = BTreeSet::new();
        for (region, result) in &report.results {
            let key = (report.scope.account_id.clone(), region.clone(), result.control);
            let previous = self.controls.get(&key);
            if previous.is_some_and(|p| p.measured_at > report.started_at) {
                continue;
            }
            let previous_success = previous.and_then(|s| s.last_success);
            let measured = result.status != Status::Unknown;
            self.controls.insert(
                key,
                ControlSnapshot {
                    status: result.status,
                    failing: result.failing_resources.len(),
                    checked_at: report.finished_at,
                    measured_at: report.started_at,
                    last_success: if measured { Some(report.finished_at) } else { previous_success },
                },
            );
            applied.insert((region.clone(), result.control));
        }
        let scope_key = (report.scope.account_id.clone(), report.scope.region.clone());
        if applied.contains(&(report.scope.region.clone(), ControlId::GuardDuty1)) {
            // No count (GuardDuty off, or its statistics unreadable): no series, never an old count.
            match &report.findings {
                Some(Findings::Counted(f)) => {
                    self.findings.insert(scope_key.clone(), *f);
                }
                Some(Findings::Unknown { .. }) | None => {
                    self.findings.remove(&scope_key);
                }
            }
        }
        if let Some((region, age)) = &report.key_age
            && applied.contains(&(region.clone(), ControlId::Iam3))
        {
            self.key_age.insert(
                (report.scope.account_id.clone(), region.clone()),
                (age.max_age_days, age.oldest_active_created),
            );
        }
    }

    fn fresh(&self, snap: &ControlSnapshot, now: DateTime<Utc>) -> bool {
        self.stale_after.is_none_or(|d| now - snap.checked_at <= d)
    }

    /// The snapshots still exported at `now`.
    pub fn live_controls(&self, now: DateTime<Utc>) -> impl Iterator<Item = (&ControlKey, &ControlSnapshot)> {
        self.controls.iter().filter(move |(_, snap)| self.fresh(snap, now))
    }

    fn is_live(&self, account: &AccountId, region: &str, control: ControlId, now: DateTime<Utc>) -> bool {
        self.controls.get(&(account.clone(), region.to_owned(), control)).is_some_and(|snap| self.fresh(snap, now))
    }

    fn status(&self, account: &AccountId, region: &str, control: ControlId) -> Option<Status> {
        self.controls.get(&(account.clone(), region.to_owned(), control)).map(|s| s.status)
    }
}

fn scope_attrs(account: &AccountId, region: &str) -> Vec<KeyValue> {
    vec![KeyValue::new("cloud.account.id", account.to_string()), KeyValue::new("cloud.region", region.to_owned())]
}

/// The posture instruments.
#[derive(Debug, Clone)]
pub struct PostureMetrics {
    pub state: Arc<RwLock<PostureState>>,
    scan_errors: Counter<u64>,
    events_received: Counter<u64>,
    violations: Counter<u64>,
    scan_duration: Histogram<f64>,
    _gauges: Arc<Vec<ObservableGauge<i64>>>,
}

impl PostureMetrics {
    pub fn new(meter: &Meter) -> Self {
        let state: Arc<RwLock<PostureState>> = Arc::default();
        let mut gauges = Vec::new();
        macro_rules! gauge {
            ($metric:expr, |$s:ident, $obs:ident| $body:block) => {{
                let st = state.clone();
                gauges.push(
                    instruments::i64_gauge(meter, &$metric)
                        .with_callback(move |$obs| {
                            if let Ok($s) = st.read() {
                                $body
                            }
                        })
                        .build(),
                );
            }};
        }

        // The seed dashboard's gauges: the original names; their meaning against the original
        // exporter's is in docs/posture.md ("The seed gauges").
        gauge!(metrics::SEED_CLOUDTRAIL_LOGGING, |s, o| {
            for ((account, region, control), snap) in s.live_controls(Utc::now()) {
                if *control == ControlId::CloudTrail1 && snap.status != Status::Unknown {
                    o.observe(i64::from(snap.status == Status::Pass), &scope_attrs(account, region));
                }
            }
        });
        gauge!(metrics::SEED_GUARDDUTY_HIGH, |s, o| {
            for ((account, region, control), snap) in s.live_controls(Utc::now()) {
                if *control != ControlId::GuardDuty1 {
                    continue;
                }
                match snap.status {
                    Status::Fail => o.observe(-1, &scope_attrs(account, region)),
                    Status::Pass => {
                        if let Some(f) = s.findings.get(&(account.clone(), region.clone())) {
                            o.observe(
                                i64::try_from(f.high_or_above()).unwrap_or(i64::MAX),
                                &scope_attrs(account, region),
                            );
                        }
                    }
                    Status::Unknown => {}
                }
            }
        });
        gauge!(metrics::SEED_ACCESS_KEY_AGE, |s, o| {
            for ((account, region), (days, _)) in &s.key_age {
                if !s.is_live(account, region, ControlId::Iam3, Utc::now()) {
                    continue;
                }
                o.observe(*days, &scope_attrs(account, region));
            }
        });
        gauge!(metrics::SEED_KMS_ROTATION, |s, o| {
            for ((account, region, control), snap) in s.live_controls(Utc::now()) {
                if *control == ControlId::Kms4 && snap.status != Status::Unknown {
                    o.observe(i64::from(snap.status == Status::Pass), &scope_attrs(account, region));
                }
            }
        });

        // Per-control metrics.
        gauge!(metrics::CONTROL_STATUS, |s, o| {
            for ((account, region, control), snap) in s.live_controls(Utc::now()) {
                let mut attrs = scope_attrs(account, region);
                attrs.push(KeyValue::new("control_id", control.as_str()));
                o.observe(snap.status.gauge(), &attrs);
            }
        });
        gauge!(metrics::FAILING_RESOURCES, |s, o| {
            for ((account, region, control), snap) in s.live_controls(Utc::now()) {
                if snap.status == Status::Unknown {
                    continue;
                }
                let mut attrs = scope_attrs(account, region);
                attrs.push(KeyValue::new("control_id", control.as_str()));
                o.observe(i64::try_from(snap.failing).unwrap_or(i64::MAX), &attrs);
            }
        });
        gauge!(metrics::GUARDDUTY_FINDINGS, |s, o| {
            for ((account, region), f) in &s.findings {
                if !s.is_live(account, region, ControlId::GuardDuty1, Utc::now()) {
                    continue;
                }
                for (band, n) in [("high", f.high), ("critical", f.critical)] {
                    let mut attrs = scope_attrs(account, region);
                    attrs.push(KeyValue::new("severity", band));
                    o.observe(i64::try_from(n).unwrap_or(i64::MAX), &attrs);
                }
            }
        });
        gauge!(metrics::OLDEST_ACCESS_KEY_CREATED, |s, o| {
            for ((account, region), (_, oldest)) in &s.key_age {
                if !s.is_live(account, region, ControlId::Iam3, Utc::now()) {
                    continue;
                }
                if let Some(t) = oldest {
                    o.observe(t.timestamp(), &scope_attrs(account, region));
                }
            }
        });
        gauge!(metrics::SCAN_LAST_SUCCESS, |s, o| {
            for ((account, region, control), snap) in s.live_controls(Utc::now()) {
                if let Some(t) = snap.last_success {
                    let mut attrs = scope_attrs(account, region);
                    attrs.push(KeyValue::new("control_id", control.as_str()));
                    o.observe(t.timestamp(), &attrs);
                }
            }
        });

        Self {
            state,
            scan_errors: instruments::counter(meter, &metrics::SCAN_ERRORS),
            events_received: instruments::counter(meter, &metrics::EVENTS_RECEIVED),
            violations: instruments::counter(meter, &metrics::VIOLATIONS_PUBLISHED),
            scan_duration: instruments::histogram(
                meter,
                &metrics::SCAN_DURATION,
                vec![0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0],
            ),
            _gauges: Arc::new(gauges),
        }
    }

    /// Record a finished scan.
    pub fn record(&self, report: &ScanReport) {
        if let Ok(mut s) = self.state.write() {
            s.apply(report);
        }
        let scan_error = |region: &str, control: ControlId, code: Option<portcullis_domain::ErrorCode>| {
            let mut attrs = scope_attrs(&report.scope.account_id, region);
            attrs.push(KeyValue::new("control_id", control.as_str()));
            let code = code.unwrap_or(portcullis_domain::ErrorCode::ReadFailed);
            attrs.push(KeyValue::new("error_code", code.as_str()));
            self.scan_errors.add(1, &attrs);
        };
        for (region, r) in &report.results {
            if r.status == Status::Unknown {
                scan_error(region, r.control, r.error_code);
            }
        }
        // GuardDuty is on but its findings could not be counted: the part of GuardDuty.1 that is
        // unknown is counted like an unknown control.
        if let Some(Findings::Unknown { error_code, .. }) = &report.findings {
            scan_error(&report.scope.region, ControlId::GuardDuty1, Some(*error_code));
        }
        let seconds = (report.finished_at - report.started_at).num_milliseconds() as f64 / 1000.0;
        let mut attrs = scope_attrs(&report.scope.account_id, &report.scope.region);
        attrs.push(KeyValue::new("trigger", if report.trigger == "scheduled" { "scheduled" } else { "event" }));
        self.scan_duration.record(seconds.max(0.0), &attrs);
    }

    pub fn event_received(&self, account: &AccountId, region: &str, source: &str, event_name: &str) {
        let mut attrs = scope_attrs(account, region);
        attrs.push(KeyValue::new("source", source.to_owned()));
        attrs.push(KeyValue::new("event_name", event_name.to_owned()));
        self.events_received.add(1, &attrs);
    }

    pub fn violation_published(&self, account: &AccountId, region: &str, control: ControlId) {
        let mut attrs = scope_attrs(account, region);
        attrs.push(KeyValue::new("control_id", control.as_str()));
        self.violations.add(1, &attrs);
    }

    /// Stop exporting a control's series this long after this replica last measured it.
    pub fn set_stale_after(&self, after: std::time::Duration) {
        if let Ok(mut s) = self.state.write() {
            s.stale_after = chrono::Duration::from_std(after).ok();
        }
    }

    /// The last known status, for tests and the scan table.
    pub fn status(&self, account: &str, region: &str, control: ControlId) -> Option<Status> {
        let account = AccountId::parse(account).ok()?;
        self.state.read().ok().and_then(|s| s.status(&account, region, control))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use portcullis_domain::AccountId;
    use portcullis_domain::posture::{ControlResult, Scope};

    fn report(started_at: DateTime<Utc>, finished_at: DateTime<Utc>, result: ControlResult) -> ScanReport {
        ScanReport {
            scope: Scope { account_id: AccountId::parse("123456789012").unwrap(), region: "eu-west-1".into() },
            results: vec![("eu-west-1".into(), result)],
            findings: None,
            key_age: None,
            started_at,
            finished_at,
            trigger: "scheduled".into(),
        }
    }

    /// Every seed gauge says, in the docs, what it measures against the original exporter.
    #[test]
    fn every_seed_gauge_is_compared_with_the_original_in_the_docs() {
        let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/posture.md")).unwrap();
        let section = doc.split("### The seed gauges").nth(1).expect("a `The seed gauges` section");
        for name in SEED_GAUGES {
            let row = section.lines().find(|l| l.starts_with(&format!("| `{name}` |")));
            let row = row.unwrap_or_else(|| panic!("docs/posture.md compares no row for {name}"));
            assert_eq!(row.matches(" | ").count(), 3, "{name}: original, Portcullis, same meaning? ({row})");
        }
    }

    #[test]
    fn a_slow_scan_never_overwrites_a_newer_measurement() {
        let t0 = Utc::now();
        let mut state = PostureState::default();
        // An event-driven rescan starts after the scheduled scan but finishes first: trail stopped.
        state.apply(&report(
            t0 + Duration::seconds(2),
            t0 + Duration::seconds(3),
            ControlResult::fail(ControlId::CloudTrail1, vec!["trail".into()], "stopped"),
        ));
        // The scheduled scan, started before the change, finishes later with what it saw then.
        state.apply(&report(t0, t0 + Duration::seconds(10), ControlResult::pass(ControlId::CloudTrail1)));
        assert_eq!(
            state.status(&AccountId::parse("123456789012").unwrap(), "eu-west-1", ControlId::CloudTrail1),
            Some(Status::Fail)
        );
        // A scan that started later still wins.
        state.apply(&report(
            t0 + Duration::seconds(11),
            t0 + Duration::seconds(12),
            ControlResult::pass(ControlId::CloudTrail1),
        ));
        assert_eq!(
            state.status(&AccountId::parse("123456789012").unwrap(), "eu-west-1", ControlId::CloudTrail1),
            Some(Status::Pass)
        );
    }

    #[test]
    fn an_unreadable_finding_count_removes_the_old_one() {
        let t0 = Utc::now();
        let mut state = PostureState::default();
        let mut with_findings = report(t0, t0, ControlResult::pass(ControlId::GuardDuty1));
        with_findings.findings = Some(Findings::Counted(FindingCounts { high: 3, critical: 1 }));
        state.apply(&with_findings);
        assert_eq!(state.findings.len(), 1);
        let later = t0 + Duration::seconds(60);
        state.apply(&report(later, later, ControlResult::pass(ControlId::GuardDuty1)));
        assert!(state.findings.is_empty(), "no stale count once the statistics cannot be read");
    }

    #[test]
    fn a_replica_stops_exporting_what_it_has_not_measured_lately() {
        let t0 = Utc::now();
        let mut state = PostureState { stale_after: Some(Duration::seconds(120)), ..PostureState::default() };
        state.apply(&report(t0, t0, ControlResult::pass(ControlId::Kms4)));
        assert_eq!(state.live_controls(t0 + Duration::seconds(119)).count(), 1);
        assert_eq!(state.live_controls(t0 + Duration::seconds(121)).count(), 0);
        state.stale_after = None;
        assert_eq!(state.live_controls(t0 + Duration::days(30)).count(), 1);
    }
}
