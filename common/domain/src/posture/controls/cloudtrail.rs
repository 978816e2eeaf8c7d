//! CloudTrail controls, and which management events a trail's event selectors record.
//!
//! A multi-region trail shows up in every region as a *shadow* copy that carries its `HomeRegion`;
//! its status and selectors are read there (the collector's job). Selectors are OR'ed: CloudTrail
//! logs an event when any selector matches it, while the field conditions inside one advanced
//! selector are AND'ed.

use std::collections::BTreeSet;

use super::{ControlId, ControlResult, Unreadable};

/// What CloudTrail says about one trail. The configuration comes from `DescribeTrails` for a trail
/// at home and from `GetTrail` in its home region for a shadow copy; the status and selectors from
/// the home region (for a trail listed as unreadable they are left default).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TrailFacts {
    pub arn: String,
    /// The region the trail was created in (a multi-region trail is seen in every region).
    pub home_region: String,
    pub is_multi_region: bool,
    pub log_file_validation: bool,
    /// The KMS key that encrypts its log files (`None` or empty: not encrypted with KMS).
    pub kms_key_id: Option<String>,
    pub is_logging: bool,
    pub latest_delivery_error: Option<String>,
    /// The trail's event selectors; none at all is CloudTrail's default (every management event).
    pub selectors: Vec<TrailSelector>,
    /// The CloudWatch Logs group it delivers to (`CloudWatchLogsLogGroupArn`), for the CIS 4.x chain.
    pub cloudwatch_logs_group_arn: Option<String>,
    /// The S3 bucket it delivers log files to (CloudTrail.7).
    pub s3_bucket_name: Option<String>,
    /// Set when the configuration (KMS key, log file validation) could not be read in the trail's
    /// home region: CloudTrail.2 and CloudTrail.4 do not judge it on defaults.
    pub settings_unreadable: Option<Unreadable>,
}

/// One event selector of a trail, as CloudTrail returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrailSelector {
    /// A basic selector (`ReadWriteType`, `IncludeManagementEvents`, `ExcludeManagementEventSources`,
    /// `DataResources`).
    Basic {
        read: bool,
        write: bool,
        include_management: bool,
        excluded_sources: Vec<String>,
        /// (`Type`, `Values`) of each data resource: `AWS::S3::Object` with `arn:aws:s3` is every
        /// object of every bucket.
        data_resources: Vec<(String, Vec<String>)>,
    },
    /// An advanced selector: its field conditions are AND'ed.
    Advanced { name: String, fields: Vec<FieldCondition> },
}

/// One field condition of an advanced selector (each list is one operator's values).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldCondition {
    pub field: String,
    pub equals: Vec<String>,
    pub not_equals: Vec<String>,
    pub starts_with: Vec<String>,
    pub not_starts_with: Vec<String>,
    pub ends_with: Vec<String>,
    pub not_ends_with: Vec<String>,
}

/// Event sources a selector set records for one kind (read or write) of management event: every
/// source except some, or only some. Patterns from `StartsWith`/`EndsWith` appear as `prefix*` and
/// `*suffix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sources {
    AllExcept(BTreeSet<String>),
    Only(BTreeSet<String>),
}

impl Sources {
    fn none() -> Self {
        Sources::Only(BTreeSet::new())
    }

    fn all() -> Self {
        Sources::AllExcept(BTreeSet::new())
    }

    /// Whether every management event source is recorded.
    pub fn is_all(&self) -> bool {
        matches!(self, Sources::AllExcept(e) if e.is_empty())
    }

    /// Recorded by either (selectors are OR'ed).
    fn union(self, other: Sources) -> Sources {
        use Sources::*;
        match (self, other) {
            (AllExcept(a), AllExcept(b)) => AllExcept(a.intersection(&b).cloned().collect()),
            (AllExcept(a), Only(b)) | (Only(b), AllExcept(a)) => AllExcept(a.difference(&b).cloned().collect()),
            (Only(a), Only(b)) => Only(a.union(&b).cloned().collect()),
        }
    }

    /// Recorded by both (the conditions of one advanced selector are AND'ed).
    fn intersect(self, other: Sources) -> Sources {
        use Sources::*;
        match (self, other) {
            (AllExcept(a), AllExcept(b)) => AllExcept(a.union(&b).cloned().collect()),
            (AllExcept(a), Only(b)) | (Only(b), AllExcept(a)) => Only(b.difference(&a).cloned().collect()),
            (Only(a), Only(b)) => Only(a.intersection(&b).cloned().collect()),
        }
    }
}

/// Which management events a trail records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagementCoverage {
    pub read: Sources,
    pub write: Sources,
    /// Advanced selectors that filter on something other than the category, `readOnly` or the
    /// event source (an event name, a user): they record only part of the management events and
    /// are not counted.
    pub partial: Vec<String>,
}

impl ManagementCoverage {
    pub fn is_complete(&self) -> bool {
        self.read.is_all() && self.write.is_all()
    }

    /// What is missing, in words (empty when complete).
    fn gaps(&self) -> Vec<String> {
        let mut gaps = Vec::new();
        let missing = |s: &Sources| match s {
            Sources::Only(_) => true,
            Sources::AllExcept(_) => false,
        };
        if missing(&self.read) || missing(&self.write) {
            gaps.push("does not record read and write management events".to_owned());
        }
        let mut excluded = BTreeSet::new();
        for s in [&self.read, &self.write] {
            if let Sources::AllExcept(e) = s {
                excluded.extend(e.iter().cloned());
            }
        }
        if !excluded.is_empty() {
            gaps.push(format!("excludes {}", excluded.into_iter().collect::<Vec<_>>().join(", ")));
        }
        if !gaps.is_empty() && !self.partial.is_empty() {
            gaps.push(format!("selector(s) {} record only part of the events", self.partial.join(", ")));
        }
        gaps
    }
}

/// Which management events `selectors` record. No selector at all is CloudTrail's default: every
/// management event, read and write.
pub fn management_coverage(selectors: &[TrailSelector]) -> ManagementCoverage {
    if selectors.is_empty() {
        return ManagementCoverage { read: Sources::all(), write: Sources::all(), partial: Vec::new() };
    }
    let (mut read, mut write, mut partial) = (Sources::none(), Sources::none(), Vec::new());
    for s in selectors {
        let (records_read, records_write, sources) = match s {
            TrailSelector::Basic { include_management: false, .. } => continue,
            TrailSelector::Basic { read, write, excluded_sources, .. } => {
                (*read, *write, Sources::AllExcept(excluded_sources.iter().cloned().collect()))
            }
            TrailSelector::Advanced { name, fields } => match advanced_coverage(fields) {
                Advanced::NotManagement => continue,
                Advanced::Partial => {
                    partial.push(if name.is_empty() { "(unnamed)".to_owned() } else { name.clone() });
                    continue;
                }
                Advanced::Records { read, write, sources } => (read, write, sources),
            },
        };
        if records_read {
            read = read.union(sources.clone());
        }
        if records_write {
            write = write.union(sources);
        }
    }
    ManagementCoverage { read, write, partial }
}

enum Advanced {
    NotManagement,
    /// Filters on a field other than the category, `readOnly` and the event source.
    Partial,
    Records {
        read: bool,
        write: bool,
        sources: Sources,
    },
}

fn advanced_coverage(fields: &[FieldCondition]) -> Advanced {
    let management = fields.iter().any(|f| {
        f.field == "eventCategory"
            && f.equals.iter().any(|v| v == "Management")
            && !f.not_equals.iter().any(|v| v == "Management")
    });
    if !management {
        return Advanced::NotManagement;
    }
    let (mut read, mut write, mut sources) = (true, true, Sources::all());
    for f in fields {
        match f.field.as_str() {
            "eventCategory" => {}
            "readOnly" => {
                let is = |v: &str| f.equals.iter().any(|x| x == v);
                let is_not = |v: &str| f.not_equals.iter().any(|x| x == v);
                if !f.equals.is_empty() {
                    read &= is("true");
                    write &= is("false");
                }
                read &= !is_not("true");
                write &= !is_not("false");
            }
            "eventSource" => {
                let set = |v: &[String], fmt: fn(&String) -> String| v.iter().map(fmt).collect::<BTreeSet<_>>();
                let exact = |v: &String| v.clone();
                if !f.equals.is_empty() {
                    sources = sources.intersect(Sources::Only(set(&f.equals, exact)));
                }
                if !f.starts_with.is_empty() {
                    sources = sources.intersect(Sources::Only(set(&f.starts_with, |v| format!("{v}*"))));
                }
                if !f.ends_with.is_empty() {
                    sources = sources.intersect(Sources::Only(set(&f.ends_with, |v| format!("*{v}"))));
                }
                sources = sources.intersect(Sources::AllExcept(set(&f.not_equals, exact)));
                sources = sources.intersect(Sources::AllExcept(set(&f.not_starts_with, |v| format!("{v}*"))));
                sources = sources.intersect(Sources::AllExcept(set(&f.not_ends_with, |v| format!("*{v}"))));
            }
            _ => return Advanced::Partial,
        }
    }
    Advanced::Records { read, write, sources }
}

impl TrailFacts {
    /// What keeps it from being a healthy CloudTrail.1 trail (empty: healthy).
    pub(crate) fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if !self.is_multi_region {
            p.push("not multi-region".to_owned());
        }
        if !self.is_logging {
            p.push("not logging".to_owned());
        }
        if let Some(e) = self.latest_delivery_error.as_deref().filter(|e| !e.is_empty()) {
            p.push(format!("delivery error {e}"));
        }
        p.extend(management_coverage(&self.selectors).gaps());
        p
    }
}

/// CloudTrail.1: at least one trail that is multi-region, logging without delivery errors, and
/// records read and write management events with no excluded event source. Trails in `unreadable`
/// (status or selectors could not be read) are judged by nothing but that.
pub fn evaluate_cloudtrail(trails: &[TrailFacts], unreadable: &[Unreadable]) -> ControlResult {
    let trails: Vec<&TrailFacts> = trails.iter().filter(|t| !unreadable.iter().any(|u| u.resource == t.arn)).collect();
    let problems: Vec<(&TrailFacts, Vec<String>)> = trails.iter().map(|t| (*t, t.problems())).collect();
    if problems.iter().any(|(_, p)| p.is_empty()) {
        return ControlResult::pass(ControlId::CloudTrail1);
    }
    // One healthy trail is enough, so a trail that could not be read leaves the answer open.
    if let Some(first) = unreadable.first() {
        let which: Vec<String> = unreadable.iter().map(Unreadable::describe).collect();
        return ControlResult::unknown(
            ControlId::CloudTrail1,
            first.error_code,
            format!(
                "no readable trail is healthy and {} trail(s) could not be read ({})",
                which.len(),
                which.join("; ")
            ),
        );
    }
    if trails.is_empty() {
        return ControlResult::fail(ControlId::CloudTrail1, vec!["no trail".into()], "there is no trail");
    }
    let described: Vec<String> = problems.iter().map(|(t, p)| format!("{}: {}", t.arn, p.join(", "))).collect();
    ControlResult::fail(
        ControlId::CloudTrail1,
        trails.iter().map(|t| t.arn.clone()).collect(),
        format!("no healthy multi-region trail ({})", described.join("; ")),
    )
}

/// A control judged trail by trail over every trail listed in the region (shadow copies included,
/// their configuration read through their home region, as CIS 3.2 and 3.5 audit the trails
/// `DescribeTrails` lists). No trail passes (CloudTrail.1 reports that); a trail whose configuration
/// could not be read leaves a pass open (unknown) and is named beside readable failures.
fn per_trail(
    control: ControlId,
    trails: &[TrailFacts],
    fails: impl Fn(&TrailFacts) -> bool,
    what: &str,
) -> ControlResult {
    let mut seen = BTreeSet::new();
    let trails: Vec<&TrailFacts> = trails.iter().filter(|t| seen.insert(t.arn.as_str())).collect();
    let unreadable: Vec<Unreadable> = trails.iter().filter_map(|t| t.settings_unreadable.clone()).collect();
    let failing: Vec<String> =
        trails.iter().filter(|t| t.settings_unreadable.is_none() && fails(t)).map(|t| t.arn.clone()).collect();
    let n = failing.len();
    super::verdict(control, failing, &unreadable, format!("{n} trail(s) {what}"))
}

/// Whether `value` names every S3 object (`arn:<partition>:s3`, or `arn:<partition>:s3:::`).
fn is_every_s3_object(value: &str) -> bool {
    let mut parts = value.split(':');
    let (arn, partition, service) = (parts.next(), parts.next(), parts.next());
    let rest: Vec<&str> = parts.collect();
    arn == Some("arn")
        && partition.is_some_and(|p| p.starts_with("aws"))
        && service == Some("s3")
        && (rest.is_empty() || rest.iter().all(|r| r.is_empty()))
}

/// Which S3 object-level data events (read, write) `selectors` record for **every** bucket. Basic
/// selectors count with a `AWS::S3::Object` data resource of value `arn:aws:s3` (all buckets);
/// advanced ones with `eventCategory` `Data`, `resources.type` `AWS::S3::Object`, optionally
/// `readOnly`, and a `resources.ARN` condition only when it is `StartsWith` `arn:aws:s3:::` (every
/// bucket). A selector that names buckets, event names or anything else records only some objects
/// and does not count.
pub fn s3_object_coverage(selectors: &[TrailSelector]) -> (bool, bool) {
    let (mut read, mut write) = (false, false);
    for s in selectors {
        match s {
            TrailSelector::Basic { read: r, write: w, data_resources, .. } => {
                let all = data_resources
                    .iter()
                    .any(|(kind, values)| kind == "AWS::S3::Object" && values.iter().any(|v| is_every_s3_object(v)));
                if all {
                    read |= *r;
                    write |= *w;
                }
            }
            TrailSelector::Advanced { fields, .. } => {
                let has = |field: &str, value: &str| {
                    fields.iter().any(|f| {
                        f.field == field
                            && f.equals.iter().any(|v| v == value)
                            && !f.not_equals.iter().any(|v| v == value)
                    })
                };
                if !has("eventCategory", "Data") || !has("resources.type", "AWS::S3::Object") {
                    continue;
                }
                let (mut r, mut w) = (true, true);
                let mut partial = false;
                for f in fields {
                    match f.field.as_str() {
                        "eventCategory" | "resources.type" => {
                            partial |= f.equals.len() != 1 && f.field == "eventCategory";
                        }
                        "readOnly" => {
                            let is = |v: &str| f.equals.iter().any(|x| x == v);
                            let is_not = |v: &str| f.not_equals.iter().any(|x| x == v);
                            if !f.equals.is_empty() {
                                r &= is("true");
                                w &= is("false");
                            }
                            r &= !is_not("true");
                            w &= !is_not("false");
                        }
                        "resources.ARN" => {
                            let only_prefix = f.equals.is_empty()
                                && f.not_equals.is_empty()
                                && f.ends_with.is_empty()
                                && f.not_ends_with.is_empty()
                                && f.not_starts_with.is_empty()
                                && f.starts_with.iter().any(|v| is_every_s3_object(v));
                            partial |= !only_prefix;
                        }
                        _ => partial = true,
                    }
                }
                if !partial {
                    read |= r;
                    write |= w;
                }
            }
        }
    }
    (read, write)
}

/// S3.22 (`write`) and S3.23 (read): at least one multi-region trail that is logging records that
/// kind of S3 object-level data event for every bucket. A trail that could not be read leaves the
/// control unknown when no readable trail passes.
pub fn evaluate_s3_object_logging(trails: &[TrailFacts], unreadable: &[Unreadable], write: bool) -> ControlResult {
    let (control, kind) = if write { (ControlId::S322, "write") } else { (ControlId::S323, "read") };
    let readable: Vec<&TrailFacts> =
        trails.iter().filter(|t| !unreadable.iter().any(|u| u.resource == t.arn)).collect();
    let records = |t: &TrailFacts| {
        let (r, w) = s3_object_coverage(&t.selectors);
        if write { w } else { r }
    };
    if readable.iter().any(|t| t.is_multi_region && t.is_logging && records(t)) {
        return ControlResult::pass(control);
    }
    if let Some(first) = unreadable.first() {
        let which: Vec<String> = unreadable.iter().map(Unreadable::describe).collect();
        return ControlResult::unknown(
            control,
            first.error_code,
            format!(
                "no readable trail logs S3 object-level {kind} events and {} trail(s) could not be read ({})",
                which.len(),
                which.join("; ")
            ),
        );
    }
    let mut seen = BTreeSet::new();
    let mut failing: Vec<String> =
        readable.iter().filter(|t| seen.insert(t.arn.as_str())).map(|t| t.arn.clone()).collect();
    if failing.is_empty() {
        failing.push("no trail".into());
    }
    ControlResult::fail(
        control,
        failing,
        format!("no multi-region, logging trail records S3 object-level {kind} events for every bucket"),
    )
}

/// CloudTrail.2: every trail listed in the region (its own and shadow copies of multi-region trails
/// homed elsewhere) encrypts its log files with KMS.
pub fn evaluate_trail_encryption(trails: &[TrailFacts]) -> ControlResult {
    let unencrypted = |t: &TrailFacts| t.kms_key_id.as_deref().is_none_or(|k| k.trim().is_empty());
    per_trail(ControlId::CloudTrail2, trails, unencrypted, "are not encrypted with a KMS key")
}

/// CloudTrail.4: every trail listed in the region (its own and shadow copies of multi-region trails
/// homed elsewhere) validates its log files.
pub fn evaluate_log_file_validation(trails: &[TrailFacts]) -> ControlResult {
    per_trail(ControlId::CloudTrail4, trails, |t| !t.log_file_validation, "do not validate their log files")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use crate::posture::controls::Status;

    fn trail() -> TrailFacts {
        TrailFacts {
            arn: "arn:aws:cloudtrail:us-east-1:123456789012:trail/main".into(),
            home_region: "us-east-1".into(),
            is_multi_region: true,
            log_file_validation: true,
            kms_key_id: Some("arn:aws:kms:us-east-1:123456789012:key/k".into()),
            is_logging: true,
            latest_delivery_error: None,
            selectors: vec![],
            cloudwatch_logs_group_arn: None,
            s3_bucket_name: Some("trail-logs".into()),
            settings_unreadable: None,
        }
    }

    #[test]
    fn every_listed_trail_is_judged_for_encryption_and_validation_shadow_copies_too() {
        // A multi-region trail homed in eu-west-1, listed (as a shadow) where it is scanned.
        let eu = TrailFacts {
            arn: "arn:aws:cloudtrail:eu-west-1:123456789012:trail/eu".into(),
            home_region: "eu-west-1".into(),
            ..trail()
        };
        assert_eq!(evaluate_trail_encryption(&[]).status, Status::Pass, "no trail: CloudTrail.1's job");
        assert_eq!(evaluate_trail_encryption(&[trail(), eu.clone()]).status, Status::Pass);
        assert_eq!(evaluate_log_file_validation(&[trail(), eu.clone()]).status, Status::Pass);
        let plain_eu = TrailFacts { kms_key_id: Some(String::new()), log_file_validation: false, ..eu.clone() };
        let none = TrailFacts { kms_key_id: None, ..trail() };
        let r = evaluate_trail_encryption(&[trail(), plain_eu.clone()]);
        assert_eq!((r.status, r.failing_resources.clone()), (Status::Fail, vec![plain_eu.arn.clone()]));
        assert!(r.reason.as_deref().unwrap().contains("1 trail(s) are not encrypted"), "{r:?}");
        assert_eq!(evaluate_trail_encryption(&[none]).status, Status::Fail);
        let r = evaluate_log_file_validation(&[plain_eu.clone(), trail()]);
        assert_eq!((r.status, r.failing_resources), (Status::Fail, vec![plain_eu.arn.clone()]));
        // Listed twice (never by CloudTrail, but by a merge): judged once.
        let r = evaluate_log_file_validation(&[plain_eu.clone(), plain_eu.clone()]);
        assert_eq!(r.failing_resources, vec![plain_eu.arn.clone()]);

        // Its configuration could not be read at home: not judged on defaults, never a pass.
        let denied = Unreadable {
            resource: plain_eu.arn.clone(),
            error_code: ErrorCode::AccessDenied,
            reason: "cloudtrail:GetTrail: AccessDenied".into(),
        };
        let unread = TrailFacts { settings_unreadable: Some(denied), ..plain_eu.clone() };
        for r in [
            evaluate_trail_encryption(&[trail(), unread.clone()]),
            evaluate_log_file_validation(&[trail(), unread.clone()]),
        ] {
            assert_eq!((r.status, r.error_code), (Status::Unknown, Some(ErrorCode::AccessDenied)), "{r:?}");
            assert!(r.reason.as_deref().unwrap().contains("trail/eu"), "{r:?}");
        }
        // A readable failing trail still fails, naming the unreadable one.
        let r = evaluate_trail_encryption(&[TrailFacts { kms_key_id: None, ..trail() }, unread]);
        assert_eq!((r.status, r.failing_resources), (Status::Fail, vec![trail().arn]));
        assert!(r.reason.as_deref().unwrap().contains("could not be read"));
    }

    #[test]
    fn an_unreadable_trail_is_not_judged_on_its_default_status() {
        let org =
            TrailFacts { arn: "arn:aws:cloudtrail:us-east-1:999999999999:trail/org".into(), ..TrailFacts::default() };
        let denied =
            Unreadable { resource: org.arn.clone(), error_code: ErrorCode::AccessDenied, reason: "denied".into() };
        let r = evaluate_cloudtrail(&[org.clone(), trail()], std::slice::from_ref(&denied));
        assert_eq!(r.status, Status::Pass);
        let r = evaluate_cloudtrail(&[org], std::slice::from_ref(&denied));
        assert_eq!(r.status, Status::Unknown);
    }

    fn basic(read: bool, write: bool, excluded: &[&str]) -> TrailSelector {
        TrailSelector::Basic {
            read,
            write,
            include_management: true,
            excluded_sources: excluded.iter().map(|s| s.to_string()).collect(),
            data_resources: vec![],
        }
    }

    fn field(name: &str) -> FieldCondition {
        FieldCondition { field: name.into(), ..FieldCondition::default() }
    }

    fn management() -> FieldCondition {
        FieldCondition { equals: vec!["Management".into()], ..field("eventCategory") }
    }

    fn advanced(name: &str, fields: Vec<FieldCondition>) -> TrailSelector {
        TrailSelector::Advanced { name: name.into(), fields }
    }

    #[test]
    fn cloudtrail_needs_one_fully_healthy_trail() {
        assert_eq!(evaluate_cloudtrail(&[trail()], &[]).status, Status::Pass);
        assert_eq!(evaluate_cloudtrail(&[], &[]).status, Status::Fail);
        let broken: [(&str, TrailFacts); 5] = [
            ("not multi-region", TrailFacts { is_multi_region: false, ..trail() }),
            ("not logging", TrailFacts { is_logging: false, ..trail() }),
            ("delivery error", TrailFacts { latest_delivery_error: Some("AccessDenied".into()), ..trail() }),
            ("read and write", TrailFacts { selectors: vec![basic(false, true, &[])], ..trail() }),
            ("excludes", TrailFacts { selectors: vec![basic(true, true, &["kms.amazonaws.com"])], ..trail() }),
        ];
        for (why, t) in broken {
            let r = evaluate_cloudtrail(std::slice::from_ref(&t), &[]);
            assert_eq!(r.status, Status::Fail, "{why}");
            assert!(r.reason.as_deref().unwrap().contains(why), "{why}: {:?}", r.reason);
            assert_eq!(r.failing_resources, vec![t.arn.clone()]);
            // One healthy trail among broken ones is enough.
            assert_eq!(evaluate_cloudtrail(&[t, trail()], &[]).status, Status::Pass);
        }
        let empty_error = TrailFacts { latest_delivery_error: Some(String::new()), ..trail() };
        assert_eq!(evaluate_cloudtrail(&[empty_error], &[]).status, Status::Pass);

        // A trail that cannot be read: unknown unless another trail is healthy; never a silent pass.
        let org_trail = Unreadable {
            resource: "arn:aws:cloudtrail:us-east-1:999999999999:trail/org".into(),
            error_code: ErrorCode::AccessDenied,
            reason: "cloudtrail:GetTrailStatus: AccessDenied".into(),
        };
        let stopped = TrailFacts { is_logging: false, ..trail() };
        let r = evaluate_cloudtrail(std::slice::from_ref(&stopped), std::slice::from_ref(&org_trail));
        assert_eq!((r.status, r.error_code), (Status::Unknown, Some(ErrorCode::AccessDenied)));
        assert!(r.reason.as_deref().unwrap().contains("trail/org"), "{:?}", r.reason);
        assert_eq!(evaluate_cloudtrail(&[trail()], std::slice::from_ref(&org_trail)).status, Status::Pass);
    }

    #[test]
    fn basic_selectors_are_ored() {
        let complete = |s: Vec<TrailSelector>| management_coverage(&s).is_complete();
        assert!(complete(vec![]), "no selector: CloudTrail's default, every management event");
        assert!(complete(vec![basic(true, true, &[])]));
        // An exclusion in one selector does not remove what another records.
        assert!(complete(vec![basic(true, true, &["kms.amazonaws.com"]), basic(true, true, &[])]));
        // Read-only plus write-only is everything.
        assert!(complete(vec![basic(true, false, &[]), basic(false, true, &[])]));
        // Both exclude KMS (for writes): KMS writes are not logged.
        let both = management_coverage(&[
            basic(true, true, &["kms.amazonaws.com"]),
            basic(false, true, &["kms.amazonaws.com"]),
        ]);
        assert!(!both.is_complete());
        assert_eq!(both.gaps(), vec!["excludes kms.amazonaws.com"]);
        // Different exclusions in two all-events selectors cancel out.
        assert!(complete(vec![
            basic(true, true, &["kms.amazonaws.com"]),
            basic(true, true, &["rdsdata.amazonaws.com"])
        ]));
        // A data-events-only selector records no management event.
        let data_only = TrailSelector::Basic {
            read: true,
            write: true,
            include_management: false,
            excluded_sources: vec![],
            data_resources: vec![],
        };
        assert_eq!(management_coverage(&[data_only]).gaps(), vec!["does not record read and write management events"]);
        assert!(!complete(vec![basic(false, true, &[])]));
    }

    #[test]
    fn advanced_selectors_are_ored_and_their_fields_anded() {
        let complete = |s: Vec<TrailSelector>| management_coverage(&s).is_complete();
        let not_kms = FieldCondition { not_equals: vec!["kms.amazonaws.com".into()], ..field("eventSource") };
        let only_kms = FieldCondition { equals: vec!["kms.amazonaws.com".into()], ..field("eventSource") };
        let write_only = FieldCondition { equals: vec!["false".into()], ..field("readOnly") };
        let read_only = FieldCondition { equals: vec!["true".into()], ..field("readOnly") };
        assert!(complete(vec![advanced("all", vec![management()])]));
        assert!(complete(vec![
            advanced("no-kms", vec![management(), not_kms.clone()]),
            advanced("all", vec![management()])
        ]));
        // Everything but KMS, plus only KMS: everything.
        assert!(complete(vec![
            advanced("no-kms", vec![management(), not_kms.clone()]),
            advanced("kms", vec![management(), only_kms.clone()])
        ]));
        let alone = management_coverage(&[advanced("no-kms", vec![management(), not_kms.clone()])]);
        assert_eq!(alone.gaps(), vec!["excludes kms.amazonaws.com"]);
        assert!(!complete(vec![advanced("writes", vec![management(), write_only.clone()])]));
        assert!(complete(vec![
            advanced("writes", vec![management(), write_only]),
            advanced("reads", vec![management(), read_only])
        ]));
        // A filter on something else (an event name) records only part of the events.
        let not_decrypt = FieldCondition { not_equals: vec!["Decrypt".into()], ..field("eventName") };
        let partial = management_coverage(&[advanced("no-decrypt", vec![management(), not_decrypt.clone()])]);
        assert!(!partial.is_complete());
        assert!(partial.gaps().iter().any(|g| g.contains("no-decrypt")), "{:?}", partial.gaps());
        assert!(complete(vec![
            advanced("no-decrypt", vec![management(), not_decrypt]),
            advanced("all", vec![management()])
        ]));
        // Data events only.
        let data = FieldCondition { equals: vec!["Data".into()], ..field("eventCategory") };
        assert!(!complete(vec![advanced("data", vec![data])]));
        // Basic and advanced together are OR'ed as well (AWS accepts one kind per trail; moto both).
        assert!(complete(vec![
            basic(true, true, &["kms.amazonaws.com"]),
            advanced("kms", vec![management(), only_kms])
        ]));
    }

    #[test]
    fn s3_object_events_are_logged_for_every_bucket_or_not_counted() {
        let objects = |values: &[&str]| {
            vec![("AWS::S3::Object".to_owned(), values.iter().map(|v| v.to_string()).collect::<Vec<_>>())]
        };
        let basic_data = |read, write, values: &[&str]| TrailSelector::Basic {
            read,
            write,
            include_management: true,
            excluded_sources: vec![],
            data_resources: objects(values),
        };
        assert_eq!(s3_object_coverage(&[basic_data(true, true, &["arn:aws:s3"])]), (true, true));
        assert_eq!(s3_object_coverage(&[basic_data(false, true, &["arn:aws:s3:::"])]), (false, true));
        // One bucket only: not every object.
        assert_eq!(s3_object_coverage(&[basic_data(true, true, &["arn:aws:s3:::logs/"])]), (false, false));
        assert_eq!(s3_object_coverage(&[basic(true, true, &[])]), (false, false));
        // OR'ed: a read selector and a write selector make both.
        assert_eq!(
            s3_object_coverage(&[basic_data(true, false, &["arn:aws:s3"]), basic_data(false, true, &["arn:aws:s3"])]),
            (true, true)
        );

        let cond = |f: &str, equals: &[&str]| FieldCondition {
            equals: equals.iter().map(|v| v.to_string()).collect(),
            ..field(f)
        };
        let advanced = |fields: Vec<FieldCondition>| TrailSelector::Advanced { name: "s3".into(), fields };
        let data = || vec![cond("eventCategory", &["Data"]), cond("resources.type", &["AWS::S3::Object"])];
        assert_eq!(s3_object_coverage(&[advanced(data())]), (true, true));
        let mut writes = data();
        writes.push(cond("readOnly", &["false"]));
        assert_eq!(s3_object_coverage(&[advanced(writes)]), (false, true));
        let mut every_bucket = data();
        every_bucket.push(FieldCondition { starts_with: vec!["arn:aws:s3:::".into()], ..field("resources.ARN") });
        assert_eq!(s3_object_coverage(&[advanced(every_bucket)]), (true, true));
        let mut one_bucket = data();
        one_bucket.push(FieldCondition { starts_with: vec!["arn:aws:s3:::logs/".into()], ..field("resources.ARN") });
        assert_eq!(s3_object_coverage(&[advanced(one_bucket)]), (false, false));
        let mut some_names = data();
        some_names.push(cond("eventName", &["PutObject"]));
        assert_eq!(s3_object_coverage(&[advanced(some_names)]), (false, false));
        // Management selectors are not data selectors.
        assert_eq!(s3_object_coverage(&[advanced(vec![cond("eventCategory", &["Management"])])]), (false, false));

        // The controls: a multi-region, logging trail is needed; an unreadable trail leaves it unknown.
        let logged = TrailFacts { selectors: vec![basic_data(true, false, &["arn:aws:s3"])], ..trail() };
        assert_eq!(evaluate_s3_object_logging(std::slice::from_ref(&logged), &[], false).status, Status::Pass);
        let writes = evaluate_s3_object_logging(std::slice::from_ref(&logged), &[], true);
        assert_eq!((writes.status, writes.failing_resources.clone()), (Status::Fail, vec![logged.arn.clone()]));
        let regional = TrailFacts { is_multi_region: false, ..logged.clone() };
        assert_eq!(evaluate_s3_object_logging(&[regional], &[], false).status, Status::Fail);
        let stopped = TrailFacts { is_logging: false, ..logged.clone() };
        assert_eq!(evaluate_s3_object_logging(&[stopped], &[], false).status, Status::Fail);
        assert_eq!(evaluate_s3_object_logging(&[], &[], true).failing_resources, vec!["no trail"]);
        let denied = Unreadable {
            resource: "arn:aws:cloudtrail:us-east-1:999999999999:trail/org".into(),
            error_code: ErrorCode::AccessDenied,
            reason: "cloudtrail:GetEventSelectors: AccessDenied".into(),
        };
        let org = TrailFacts { arn: denied.resource.clone(), ..trail() };
        let r = evaluate_s3_object_logging(&[org], std::slice::from_ref(&denied), true);
        assert_eq!((r.status, r.error_code), (Status::Unknown, Some(ErrorCode::AccessDenied)));
    }
}
