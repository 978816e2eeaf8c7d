//! Reading posture facts from AWS: one [`AwsReader`] per account and region.
//!
//! Calls are few and concurrent (bounded by one semaphore per scan): IAM.3 reads the credential
//! report (two calls for every user and key) instead of listing keys per user; KMS reads
//! `DescribeKey` for each key and `GetKeyRotationStatus` only for keys that can rotate. Errors are
//! classified into stable codes so a control becomes `unknown` with a reason, never a silent pass.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use portcullis_domain::posture::controls::{FieldCondition, TrailSelector};
use portcullis_domain::posture::{
    AccessKeyFacts, CredentialReport, FindingCounts, IamUserFacts, KmsKeyFacts, TrailFacts, Unreadable,
};
use portcullis_domain::{AccountId, ErrorCode};
use portcullis_runtime::aws::{ApiCallCounter, classify as classify_sdk};
use tokio::sync::Semaphore;

use crate::ports::{CollectError, FactReader};

/// Classify an SDK error into the code a posture result carries.
pub(crate) fn classify<E>(op: &'static str, e: &SdkError<E, HttpResponse>) -> CollectError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let failure = classify_sdk(e);
    CollectError { op, code: failure.kind.measurement_code(), message: failure.message }
}

/// Reads posture facts in one account and region.
#[derive(Debug, Clone)]
pub struct AwsReader {
    account_id: AccountId,
    region: String,
    cloudtrail: aws_sdk_cloudtrail::Client,
    guardduty: aws_sdk_guardduty::Client,
    iam: aws_sdk_iam::Client,
    kms: aws_sdk_kms::Client,
    /// CloudTrail clients for the home regions of shadow trails, made on demand from `base`.
    home_cloudtrail: Arc<Mutex<HashMap<String, aws_sdk_cloudtrail::Client>>>,
    base: Option<(SdkConfig, Option<ApiCallCounter>)>,
    limit: Arc<Semaphore>,
    concurrency: usize,
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
        let regional = sdk.to_builder().region(aws_config::Region::new(region.to_owned())).build();
        macro_rules! client {
            ($krate:ident) => {{
                let mut b = $krate::config::Builder::from(&regional);
                if let Some(c) = &counter {
                    b = b.interceptor(c.clone());
                }
                $krate::Client::from_conf(b.build())
            }};
        }
        Self {
            account_id: account_id.clone(),
            region: region.to_owned(),
            cloudtrail: client!(aws_sdk_cloudtrail),
            guardduty: client!(aws_sdk_guardduty),
            iam: client!(aws_sdk_iam),
            kms: client!(aws_sdk_kms),
            home_cloudtrail: Arc::default(),
            base: Some((sdk.clone(), counter.clone())),
            limit: Arc::new(Semaphore::new(concurrency.max(1))),
            concurrency: concurrency.max(1),
        }
    }

    /// A reader over given clients (tests use mocked ones).
    pub fn from_clients(
        account_id: &AccountId,
        region: &str,
        cloudtrail: aws_sdk_cloudtrail::Client,
        guardduty: aws_sdk_guardduty::Client,
        iam: aws_sdk_iam::Client,
        kms: aws_sdk_kms::Client,
        concurrency: usize,
    ) -> Self {
        Self {
            account_id: account_id.clone(),
            region: region.to_owned(),
            cloudtrail,
            guardduty,
            iam,
            kms,
            home_cloudtrail: Arc::default(),
            base: None,
            limit: Arc::new(Semaphore::new(concurrency.max(1))),
            concurrency: concurrency.max(1),
        }
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
            return self.cloudtrail.clone();
        }
        let Ok(mut clients) = self.home_cloudtrail.lock() else { return self.cloudtrail.clone() };
        if let Some(c) = clients.get(region) {
            return c.clone();
        }
        let Some((sdk, counter)) = &self.base else { return self.cloudtrail.clone() };
        let regional = sdk.to_builder().region(aws_config::Region::new(region.to_owned())).build();
        let mut b = aws_sdk_cloudtrail::config::Builder::from(&regional);
        if let Some(c) = counter {
            b = b.interceptor(c.clone());
        }
        let client = aws_sdk_cloudtrail::Client::from_conf(b.build());
        clients.insert(region.to_owned(), client.clone());
        client
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

    // -------------------------------------------------------------- CloudTrail

    /// Every trail visible in the region (shadow copies of multi-region trails included, read
    /// through their home region), with status and event selectors; trails whose status or
    /// selectors could not be read are returned apart, so one unreadable trail (another account's
    /// organization trail) does not hide the rest.
    async fn trails(&self) -> Result<(Vec<TrailFacts>, Vec<Unreadable>), CollectError> {
        let list = {
            let _p = self.permit().await;
            self.cloudtrail
                .describe_trails()
                .include_shadow_trails(true)
                .send()
                .await
                .map_err(|e| classify("cloudtrail:DescribeTrails", &e))?
        };
        let trails = list.trail_list.unwrap_or_default();
        let facts = futures::stream::iter(trails)
            .map(|t| async move {
                let arn = t.trail_arn.clone().or(t.name.clone()).unwrap_or_default();
                let home_region = t.home_region.clone().unwrap_or_default();
                let cloudtrail = self.cloudtrail_in(&home_region);
                let (status, selectors) = tokio::join!(
                    async {
                        let _p = self.permit().await;
                        cloudtrail.get_trail_status().name(&arn).send().await
                    },
                    async {
                        let _p = self.permit().await;
                        cloudtrail.get_event_selectors().trail_name(&arn).send().await
                    }
                );
                let unreadable = |e: CollectError| Unreadable {
                    resource: arn.clone(),
                    error_code: e.code,
                    reason: format!("{}: {}", e.op, e.message),
                };
                let status = status.map_err(|e| unreadable(classify("cloudtrail:GetTrailStatus", &e)))?;
                let selectors = selectors.map_err(|e| unreadable(classify("cloudtrail:GetEventSelectors", &e)))?;
                Ok::<_, Unreadable>(TrailFacts {
                    arn,
                    home_region,
                    is_multi_region: t.is_multi_region_trail.unwrap_or(false),
                    is_logging: status.is_logging.unwrap_or(false),
                    latest_delivery_error: status.latest_delivery_error.filter(|e| !e.is_empty()),
                    selectors: trail_selectors(&selectors),
                })
            })
            .buffer_unordered(self.concurrency)
            .collect::<Vec<_>>()
            .await;
        let (mut readable, mut unreadable) = (Vec::new(), Vec::new());
        for f in facts {
            match f {
                Ok(t) => readable.push(t),
                Err(u) => unreadable.push(u),
            }
        }
        readable.sort_by(|a, b| a.arn.cmp(&b.arn));
        Ok((readable, unreadable))
    }

    // -------------------------------------------------------------- GuardDuty

    /// Detectors as (id, status).
    async fn guardduty_detectors(&self) -> Result<Vec<(String, String)>, CollectError> {
        let ids = {
            let _p = self.permit().await;
            self.guardduty
                .list_detectors()
                .send()
                .await
                .map_err(|e| classify("guardduty:ListDetectors", &e))?
                .detector_ids
                .unwrap_or_default()
        };
        let mut out = Vec::new();
        for id in ids {
            let _p = self.permit().await;
            let d = self
                .guardduty
                .get_detector()
                .detector_id(&id)
                .send()
                .await
                .map_err(|e| classify("guardduty:GetDetector", &e))?;
            out.push((id, d.status.map(|s| s.as_str().to_owned()).unwrap_or_default()));
        }
        Ok(out)
    }

    /// Active (non-archived) findings of severity 7 and above, by band, from one
    /// `GetFindingsStatistics` call grouped by severity.
    async fn guardduty_findings(&self, detector_id: &str) -> Result<FindingCounts, CollectError> {
        use aws_sdk_guardduty::types::{Condition, FindingCriteria, GroupByType};
        let criteria = FindingCriteria::builder()
            .criterion("service.archived", Condition::builder().equals("false").build())
            .criterion("severity", Condition::builder().greater_than_or_equal(7).build())
            .build();
        let _p = self.permit().await;
        let out = self
            .guardduty
            .get_findings_statistics()
            .detector_id(detector_id)
            .finding_criteria(criteria)
            .group_by(GroupByType::Severity)
            .send()
            .await
            .map_err(|e| classify("guardduty:GetFindingsStatistics", &e))?;
        let mut counts = FindingCounts::default();
        if let Some(stats) = out.finding_statistics {
            for s in stats.grouped_by_severity() {
                counts.add(s.severity.unwrap_or(0.0), u64::try_from(s.total_findings.unwrap_or(0)).unwrap_or(0));
            }
            #[allow(deprecated)]
            if stats.grouped_by_severity().is_empty()
                && let Some(by) = stats.count_by_severity()
            {
                for (sev, n) in by {
                    counts.add(sev.parse().unwrap_or(0.0), u64::try_from(*n).unwrap_or(0));
                }
            }
        }
        Ok(counts)
    }

    // -------------------------------------------------------------- IAM

    /// The credential report (AWS generates a new one only when its last is older than 4 hours),
    /// with its generation time.
    async fn credential_report(&self) -> Result<CredentialReport, CollectError> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            // Generating is cheap when a report younger than 4 hours exists (it is reused).
            {
                let _p = self.permit().await;
                self.iam
                    .generate_credential_report()
                    .send()
                    .await
                    .map_err(|e| classify("iam:GenerateCredentialReport", &e))?;
            }
            let got = {
                let _p = self.permit().await;
                self.iam.get_credential_report().send().await
            };
            match got {
                Ok(report) => {
                    let generated_at = report
                        .generated_time
                        .and_then(|d| DateTime::<Utc>::from_timestamp(d.secs(), d.subsec_nanos()))
                        .ok_or_else(|| {
                            CollectError::new(
                                "iam:GetCredentialReport",
                                ErrorCode::ReadFailed,
                                "the report has no GeneratedTime",
                            )
                        })?;
                    let bytes = report.content.map(|b| b.into_inner()).unwrap_or_default();
                    return Ok(CredentialReport { generated_at, users: parse_credential_report(&bytes)? });
                }
                Err(e) => {
                    let not_ready = e.as_service_error().is_some_and(|s| {
                        s.is_credential_report_not_ready_exception() || s.is_credential_report_not_present_exception()
                    });
                    if !not_ready {
                        return Err(classify("iam:GetCredentialReport", &e));
                    }
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(CollectError::new(
                    "iam:GetCredentialReport",
                    ErrorCode::ReadFailed,
                    "the credential report was not ready within 30 s",
                ));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// One user's credentials (`ListAccessKeys`), for a targeted rescan after a change event.
    async fn iam_user(&self, user: &str) -> Result<Option<IamUserFacts>, CollectError> {
        let _p = self.permit().await;
        let out = match self.iam.list_access_keys().user_name(user).send().await {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_entity_exception()) => return Ok(None),
            Err(e) => return Err(classify("iam:ListAccessKeys", &e)),
        };
        let access_keys = out
            .access_key_metadata
            .into_iter()
            .map(|k| {
                let created =
                    k.create_date.and_then(|d| DateTime::<Utc>::from_timestamp(d.secs(), 0)).ok_or_else(|| {
                        CollectError::new("iam:ListAccessKeys", ErrorCode::ReadFailed, "a key has no valid CreateDate")
                    })?;
                Ok(AccessKeyFacts {
                    user: user.to_owned(),
                    key: k.access_key_id.unwrap_or_default(),
                    active: k.status.map(|s| s.as_str() == "Active").unwrap_or(false),
                    created,
                })
            })
            .collect::<Result<Vec<_>, CollectError>>()?;
        Ok(Some(IamUserFacts { user: user.to_owned(), access_keys }))
    }

    /// (`AccountAccessKeysPresent`, `AccountMFAEnabled`) from `GetAccountSummary`.
    async fn root_summary(&self) -> Result<(i64, i64), CollectError> {
        use aws_sdk_iam::types::SummaryKeyType;
        let _p = self.permit().await;
        let out = self.iam.get_account_summary().send().await.map_err(|e| classify("iam:GetAccountSummary", &e))?;
        let map = out.summary_map.unwrap_or_default();
        let get = |k: SummaryKeyType| map.get(&k).copied().map(i64::from);
        match (get(SummaryKeyType::AccountAccessKeysPresent), get(SummaryKeyType::AccountMfaEnabled)) {
            (Some(keys), Some(mfa)) => Ok((keys, mfa)),
            _ => Err(CollectError::new(
                "iam:GetAccountSummary",
                ErrorCode::ReadFailed,
                "the summary lacks the root user's keys or MFA",
            )),
        }
    }

    // -------------------------------------------------------------- KMS

    /// Every key in the region, described, with rotation status for keys that can rotate; keys that
    /// could not be described are returned apart.
    async fn kms_keys(&self) -> Result<(Vec<KmsKeyFacts>, Vec<Unreadable>), CollectError> {
        let mut ids = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = {
                let _p = self.permit().await;
                self.kms
                    .list_keys()
                    .limit(1000)
                    .set_marker(marker.clone())
                    .send()
                    .await
                    .map_err(|e| classify("kms:ListKeys", &e))?
            };
            ids.extend(page.keys.unwrap_or_default().into_iter().filter_map(|k| k.key_id));
            match (page.truncated, page.next_marker) {
                (true, Some(m)) => marker = Some(m),
                _ => break,
            }
        }
        let described = futures::stream::iter(ids)
            .map(|id| async move { (self.kms_key(&id).await, id) })
            .buffer_unordered(self.concurrency)
            .collect::<Vec<_>>()
            .await;
        let (mut keys, mut unreadable) = (Vec::new(), Vec::new());
        for (got, id) in described {
            match got {
                Ok(Some(k)) => keys.push(k),
                Ok(None) => {} // deleted since it was listed
                Err(e) => unreadable.push(Unreadable {
                    resource: id,
                    error_code: e.code,
                    reason: format!("{}: {}", e.op, e.message),
                }),
            }
        }
        keys.sort_by(|a, b| a.key_id.cmp(&b.key_id));
        unreadable.sort_by(|a, b| a.resource.cmp(&b.resource));
        Ok((keys, unreadable))
    }

    /// One key (`None` when it no longer exists).
    async fn kms_key(&self, key_id: &str) -> Result<Option<KmsKeyFacts>, CollectError> {
        let described = {
            let _p = self.permit().await;
            self.kms.describe_key().key_id(key_id).send().await
        };
        let meta = match described {
            Ok(out) => match out.key_metadata {
                Some(m) => m,
                None => return Ok(None),
            },
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found_exception()) => return Ok(None),
            Err(e) => return Err(classify("kms:DescribeKey", &e)),
        };
        let mut facts = KmsKeyFacts {
            key_id: meta.key_id.clone(),
            arn: meta.arn.clone().unwrap_or_else(|| meta.key_id.clone()),
            manager: meta.key_manager.as_ref().map(|m| m.as_str().to_owned()).unwrap_or_default(),
            state: meta.key_state.as_ref().map(|s| s.as_str().to_owned()).unwrap_or_default(),
            spec: meta.key_spec.as_ref().map(|s| s.as_str().to_owned()).unwrap_or_default(),
            origin: meta.origin.as_ref().map(|o| o.as_str().to_owned()).unwrap_or_default(),
            rotation_enabled: None,
        };
        if facts.can_rotate() {
            let _p = self.permit().await;
            let rotation = self
                .kms
                .get_key_rotation_status()
                .key_id(key_id)
                .send()
                .await
                .map_err(|e| classify("kms:GetKeyRotationStatus", &e))?;
            facts.rotation_enabled = Some(rotation.key_rotation_enabled);
        }
        Ok(Some(facts))
    }
}

/// A trail's event selectors as the domain sees them (which events they record is decided there).
fn trail_selectors(
    out: &aws_sdk_cloudtrail::operation::get_event_selectors::GetEventSelectorsOutput,
) -> Vec<TrailSelector> {
    use aws_sdk_cloudtrail::types::ReadWriteType;
    let basic = out.event_selectors().iter().map(|s| {
        let (read, write) = match s.read_write_type() {
            Some(ReadWriteType::ReadOnly) => (true, false),
            Some(ReadWriteType::WriteOnly) => (false, true),
            // `All`, and the default when absent.
            _ => (true, true),
        };
        TrailSelector::Basic {
            read,
            write,
            // CloudTrail's default for a selector is to include management events.
            include_management: s.include_management_events().unwrap_or(true),
            excluded_sources: s.exclude_management_event_sources().to_vec(),
        }
    });
    let advanced = out.advanced_event_selectors().iter().map(|s| TrailSelector::Advanced {
        name: s.name().unwrap_or_default().to_owned(),
        fields: s
            .field_selectors()
            .iter()
            .map(|f| FieldCondition {
                field: f.field().to_owned(),
                equals: f.equals().to_vec(),
                not_equals: f.not_equals().to_vec(),
                starts_with: f.starts_with().to_vec(),
                not_starts_with: f.not_starts_with().to_vec(),
                ends_with: f.ends_with().to_vec(),
                not_ends_with: f.not_ends_with().to_vec(),
            })
            .collect(),
    });
    basic.chain(advanced).collect()
}

/// Parse the IAM credential report (CSV) into users. The root user's row is skipped (IAM.4 and
/// IAM.9 cover it).
pub fn parse_credential_report(bytes: &[u8]) -> Result<Vec<IamUserFacts>, CollectError> {
    let bad = |m: String| CollectError::new("iam:GetCredentialReport", ErrorCode::ReadFailed, m);
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
    let headers = reader.headers().map_err(|e| bad(e.to_string()))?.clone();
    let col: HashMap<&str, usize> = headers.iter().enumerate().map(|(i, h)| (h, i)).collect();
    let need = |name: &str| col.get(name).copied().ok_or_else(|| bad(format!("the report has no `{name}` column")));
    let user_col = need("user")?;
    let mut users = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| bad(e.to_string()))?;
        let user = record.get(user_col).unwrap_or_default();
        if user == "<root_account>" {
            continue;
        }
        let mut access_keys = Vec::new();
        for n in [1, 2] {
            let active = record.get(need(&format!("access_key_{n}_active"))?).unwrap_or_default() == "true";
            let rotated = record.get(need(&format!("access_key_{n}_last_rotated"))?).unwrap_or_default();
            let Ok(created) = DateTime::parse_from_rfc3339(rotated) else {
                continue; // "N/A": no such key
            };
            access_keys.push(AccessKeyFacts {
                user: user.to_owned(),
                key: format!("access_key_{n}"),
                active,
                created: created.with_timezone(&Utc),
            });
        }
        users.push(IamUserFacts { user: user.to_owned(), access_keys });
    }
    Ok(users)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_report_parses_both_keys_and_skips_root() {
        let csv = "user,arn,user_creation_time,password_enabled,access_key_1_active,access_key_1_last_rotated,access_key_2_active,access_key_2_last_rotated\n\
<root_account>,arn:aws:iam::1:root,2020-01-01T00:00:00+00:00,not_supported,false,N/A,false,N/A\n\
alice,arn:aws:iam::1:user/alice,2020-01-01T00:00:00+00:00,false,true,2026-01-01T00:00:00+00:00,false,2025-01-01T00:00:00+00:00\n\
bob,arn:aws:iam::1:user/bob,2020-01-01T00:00:00+00:00,false,false,N/A,false,N/A\n";
        let users = parse_credential_report(csv.as_bytes()).unwrap();
        assert_eq!(users.iter().map(|u| u.user.as_str()).collect::<Vec<_>>(), vec!["alice", "bob"]);
        assert!(users[1].access_keys.is_empty());
        let keys = &users[0].access_keys;
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].user, "alice");
        assert!(keys[0].active);
        assert_eq!(keys[1].key, "access_key_2");
        assert!(!keys[1].active);
        assert!(parse_credential_report(b"nothing,useful\n").is_err());
    }

    #[test]
    fn selectors_reach_the_domain_as_cloudtrail_returns_them() {
        use aws_sdk_cloudtrail::operation::get_event_selectors::GetEventSelectorsOutput;
        use aws_sdk_cloudtrail::types::{AdvancedEventSelector, AdvancedFieldSelector, EventSelector, ReadWriteType};
        assert!(trail_selectors(&GetEventSelectorsOutput::builder().build()).is_empty());
        let out = GetEventSelectorsOutput::builder()
            .event_selectors(
                EventSelector::builder()
                    .read_write_type(ReadWriteType::WriteOnly)
                    .include_management_events(true)
                    .exclude_management_event_sources("kms.amazonaws.com")
                    .build(),
            )
            .event_selectors(EventSelector::builder().build())
            .advanced_event_selectors(
                AdvancedEventSelector::builder()
                    .name("no-kms")
                    .field_selectors(
                        AdvancedFieldSelector::builder().field("eventCategory").equals("Management").build().unwrap(),
                    )
                    .field_selectors(
                        AdvancedFieldSelector::builder()
                            .field("eventSource")
                            .not_equals("kms.amazonaws.com")
                            .build()
                            .unwrap(),
                    )
                    .build()
                    .unwrap(),
            )
            .build();
        let selectors = trail_selectors(&out);
        assert_eq!(
            selectors[0],
            TrailSelector::Basic {
                read: false,
                write: true,
                include_management: true,
                excluded_sources: vec!["kms.amazonaws.com".into()]
            }
        );
        assert_eq!(
            selectors[1],
            TrailSelector::Basic { read: true, write: true, include_management: true, excluded_sources: vec![] }
        );
        let TrailSelector::Advanced { name, fields } = &selectors[2] else { panic!("{selectors:?}") };
        assert_eq!(name, "no-kms");
        assert_eq!(fields[1].field, "eventSource");
        assert_eq!(fields[1].not_equals, vec!["kms.amazonaws.com"]);
    }
}
