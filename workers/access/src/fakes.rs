//! In-memory implementations of every access port, with the same rules as the AWS adapters
//! (conditional writes, live-grant filtering), and switches to make them fail. For tests: this
//! crate's own, and others' with the `test-util` feature.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use portcullis_domain::directory::{DirectoryRecord, ScheduledChange};
use portcullis_domain::grant::{Grant, Revocation};
use portcullis_domain::identity::Identity;
use portcullis_domain::messages::{ProcessCredentials, TemplateSummary};
use portcullis_domain::revocation::SessionRevocation;
use portcullis_domain::template::StoredTemplate;
use portcullis_domain::{AccountId, GrantId, MessageId, QueueUrl, TemplateName};
use portcullis_runtime::clock::Clock;

use crate::ports::{
    AccessStore, AssumeRequest, AuditError, AuditSink, BrokerError, CredentialBroker, DecidedOn, FailureKind,
    IdentityError, IdentityVerifier, IssuedCredentials, NewRecord, PublishedEvent, Recorded, ReplyError, ReplySink,
    RequestKey, RequestRecord, RevokerError, SessionRevoker, StoreError, TemplateIndex,
};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

// ---------------------------------------------------------------------------------------- store

#[derive(Debug, Default)]
struct StoreState {
    records: HashMap<(String, MessageId), RequestRecord>,
    index: BTreeMap<TemplateName, (TemplateIndex, TemplateSummary)>,
    versions: HashMap<(TemplateName, u32), StoredTemplate>,
    grants: BTreeMap<(String, AccountId, GrantId), Grant>,
    directory: HashMap<String, (DirectoryRecord, u64)>,
    revocations: HashMap<AccountId, (u64, Vec<SessionRevocation>)>,
    scheduled: BTreeMap<(DateTime<Utc>, MessageId, String), ScheduledChange>,
}

/// [`AccessStore`] in memory.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<StoreState>,
    fail_next: Mutex<Vec<StoreError>>,
    fail_writes_next: Mutex<Vec<StoreError>>,
    template_version_reads: std::sync::atomic::AtomicUsize,
    directory_reads: std::sync::atomic::AtomicUsize,
}

impl MemoryStore {
    /// How many times a template version was read.
    pub fn template_version_reads(&self) -> usize {
        self.template_version_reads.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// How many times a directory record was read.
    pub fn directory_reads(&self) -> usize {
        self.directory_reads.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Make the next calls fail with these errors, in order.
    pub fn fail_next(&self, errors: impl IntoIterator<Item = StoreError>) {
        lock(&self.fail_next).extend(errors);
    }

    /// Make the next writes (puts and deletes) fail with these errors, in order.
    pub fn fail_writes_next(&self, errors: impl IntoIterator<Item = StoreError>) {
        lock(&self.fail_writes_next).extend(errors);
    }

    /// Every stored grant, live or not.
    pub fn grants(&self) -> Vec<Grant> {
        lock(&self.state).grants.values().cloned().collect()
    }

    /// Store a grant directly (a forged or expired one).
    pub fn insert_grant(&self, grant: Grant) {
        lock(&self.state).grants.insert((grant.user.clone(), grant.account.clone(), grant.id.clone()), grant);
    }

    fn injected(&self) -> Result<(), StoreError> {
        let mut next = lock(&self.fail_next);
        if next.is_empty() { Ok(()) } else { Err(next.remove(0)) }
    }

    fn injected_write(&self) -> Result<(), StoreError> {
        self.injected()?;
        let mut next = lock(&self.fail_writes_next);
        if next.is_empty() { Ok(()) } else { Err(next.remove(0)) }
    }

    /// The earlier record of this request, if any (checked before any other condition, as the
    /// DynamoDB transaction reports it).
    fn earlier(state: &StoreState, new: &NewRecord<'_>) -> Option<RequestRecord> {
        state.records.get(&(new.key.user.to_owned(), new.key.message_id.clone())).cloned()
    }

    fn record(state: &mut StoreState, new: &NewRecord<'_>) {
        state.records.insert((new.key.user.to_owned(), new.key.message_id.clone()), new.record.clone());
    }
}

#[async_trait]
impl AccessStore for MemoryStore {
    async fn request_record(&self, key: &RequestKey<'_>) -> Result<Option<RequestRecord>, StoreError> {
        self.injected()?;
        Ok(lock(&self.state).records.get(&(key.user.to_owned(), key.message_id.clone())).cloned())
    }

    async fn template_index(&self, name: &TemplateName) -> Result<Option<TemplateIndex>, StoreError> {
        self.injected()?;
        Ok(lock(&self.state).index.get(name).map(|(i, _)| *i))
    }

    async fn put_template(
        &self,
        template: &StoredTemplate,
        previous: Option<u32>,
        record: &NewRecord<'_>,
    ) -> Result<Recorded<()>, StoreError> {
        self.injected_write()?;
        let mut state = lock(&self.state);
        let name = template.spec.name.clone();
        if let Some(earlier) = Self::earlier(&state, record) {
            return Ok(Recorded::Replayed(earlier));
        }
        if state.index.get(&name).map(|(i, _)| i.latest_version) != previous {
            return Err(StoreError::Conflict(name.to_string()));
        }
        Self::record(&mut state, record);
        let summary = TemplateSummary::of(template);
        state.index.insert(name.clone(), (TemplateIndex { latest_version: template.version, deleted: false }, summary));
        state.versions.insert((name, template.version), template.clone());
        Ok(Recorded::Applied(()))
    }

    async fn template_version(&self, name: &TemplateName, version: u32) -> Result<Option<StoredTemplate>, StoreError> {
        self.injected()?;
        self.template_version_reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(lock(&self.state).versions.get(&(name.clone(), version)).cloned())
    }

    async fn list_templates(&self) -> Result<Vec<TemplateSummary>, StoreError> {
        self.injected()?;
        Ok(lock(&self.state).index.values().filter(|(i, _)| !i.deleted).map(|(_, s)| s.clone()).collect())
    }

    async fn delete_template(&self, name: &TemplateName, record: &NewRecord<'_>) -> Result<Recorded<bool>, StoreError> {
        self.injected_write()?;
        let mut state = lock(&self.state);
        if let Some(earlier) = Self::earlier(&state, record) {
            return Ok(Recorded::Replayed(earlier));
        }
        if state.index.get(name).is_none_or(|(i, _)| i.deleted) {
            return Ok(Recorded::Applied(false));
        }
        Self::record(&mut state, record);
        if let Some((index, _)) = state.index.get_mut(name) {
            index.deleted = true;
        }
        Ok(Recorded::Applied(true))
    }

    async fn grant(&self, user: &str, account: &AccountId, id: &GrantId) -> Result<Option<Grant>, StoreError> {
        self.injected()?;
        Ok(lock(&self.state).grants.get(&(user.to_owned(), account.clone(), id.clone())).cloned())
    }

    async fn put_grant(
        &self,
        grant: &Grant,
        decided_on: DecidedOn,
        record: &NewRecord<'_>,
    ) -> Result<Recorded<()>, StoreError> {
        self.injected_write()?;
        let mut state = lock(&self.state);
        let key = (grant.user.clone(), grant.account.clone(), grant.id.clone());
        if let Some(earlier) = Self::earlier(&state, record) {
            return Ok(Recorded::Replayed(earlier));
        }
        if state.directory.get(&grant.user).map(|(_, rev)| *rev) != decided_on.directory_revision {
            return Err(StoreError::Stale("the requester's directory record".into()));
        }
        let index = state.index.get(&grant.template).map(|(i, _)| *i);
        if index != Some(TemplateIndex { latest_version: grant.template_version, deleted: false }) {
            return Err(StoreError::Stale("the template's index".into()));
        }
        if state.grants.contains_key(&key) {
            return Err(StoreError::Conflict(grant.id.to_string()));
        }
        Self::record(&mut state, record);
        state.grants.insert(key, grant.clone());
        Ok(Recorded::Applied(()))
    }

    async fn live_grants(
        &self,
        user: &str,
        account: Option<&AccountId>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Grant>, StoreError> {
        self.injected()?;
        let mut grants: Vec<Grant> = lock(&self.state)
            .grants
            .values()
            .filter(|g| g.user == user && account.is_none_or(|a| &g.account == a) && g.is_live(now))
            .cloned()
            .collect();
        grants.sort_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| a.id.cmp(&b.id)));
        Ok(grants)
    }

    async fn put_request_record(&self, record: &NewRecord<'_>) -> Result<Recorded<()>, StoreError> {
        self.injected_write()?;
        let mut state = lock(&self.state);
        if let Some(earlier) = Self::earlier(&state, record) {
            return Ok(Recorded::Replayed(earlier));
        }
        Self::record(&mut state, record);
        Ok(Recorded::Applied(()))
    }

    async fn kept_grants(&self, user: &str, now: DateTime<Utc>) -> Result<Vec<Grant>, StoreError> {
        self.injected()?;
        let mut grants: Vec<Grant> =
            lock(&self.state).grants.values().filter(|g| g.user == user && g.keep_until() > now).cloned().collect();
        grants.sort_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| a.id.cmp(&b.id)));
        Ok(grants)
    }

    async fn update_grant(&self, grant: &Grant, record: &NewRecord<'_>) -> Result<Recorded<()>, StoreError> {
        self.injected_write()?;
        let mut state = lock(&self.state);
        if let Some(earlier) = Self::earlier(&state, record) {
            return Ok(Recorded::Replayed(earlier));
        }
        let key = (grant.user.clone(), grant.account.clone(), grant.id.clone());
        let Some(stored) = state.grants.get(&key) else { return Err(StoreError::Conflict(grant.id.to_string())) };
        if stored.revision != grant.revision {
            return Err(StoreError::Conflict(grant.id.to_string()));
        }
        // As in DynamoDB: a revocation written meanwhile stays.
        let revoked = stored.revoked.clone();
        Self::record(&mut state, record);
        state.grants.insert(key, Grant { revision: grant.revision + 1, revoked, ..grant.clone() });
        Ok(Recorded::Applied(()))
    }

    async fn pending_approvals(&self, now: DateTime<Utc>) -> Result<Vec<Grant>, StoreError> {
        self.injected()?;
        let mut grants: Vec<Grant> = lock(&self.state)
            .grants
            .values()
            .filter(|g| g.awaiting_approval_until().is_some_and(|until| until > now))
            .cloned()
            .collect();
        grants.sort_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| a.id.cmp(&b.id)));
        Ok(grants)
    }

    async fn reviews_owed(&self) -> Result<Vec<Grant>, StoreError> {
        self.injected()?;
        let mut grants: Vec<Grant> = lock(&self.state).grants.values().filter(|g| g.awaits_review()).cloned().collect();
        grants.sort_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| a.id.cmp(&b.id)));
        Ok(grants)
    }

    async fn grant_by_id(&self, id: &GrantId) -> Result<Option<Grant>, StoreError> {
        self.injected()?;
        Ok(lock(&self.state).grants.values().find(|g| &g.id == id).cloned())
    }

    async fn revoke_grant(&self, grant: &Grant, revocation: &Revocation) -> Result<bool, StoreError> {
        self.injected_write()?;
        let mut state = lock(&self.state);
        match state.grants.get_mut(&(grant.user.clone(), grant.account.clone(), grant.id.clone())) {
            Some(g) if g.revoked.is_none() => {
                g.revoked = Some(revocation.clone());
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn directory_record(&self, user: &str) -> Result<Option<(DirectoryRecord, u64)>, StoreError> {
        self.injected()?;
        self.directory_reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(lock(&self.state).directory.get(user).cloned())
    }

    async fn put_directory_record(&self, record: &DirectoryRecord, revision: Option<u64>) -> Result<(), StoreError> {
        self.injected_write()?;
        let mut state = lock(&self.state);
        let current = state.directory.get(&record.user).map(|(_, r)| *r);
        if current != revision {
            return Err(StoreError::Conflict(format!("USER#{}", record.user)));
        }
        state.directory.insert(record.user.clone(), (record.clone(), revision.map_or(1, |r| r + 1)));
        Ok(())
    }

    async fn add_session_revocation(
        &self,
        account: &AccountId,
        revocation: &SessionRevocation,
        _expires_at: i64,
    ) -> Result<(), StoreError> {
        self.injected_write()?;
        let mut state = lock(&self.state);
        let (generation, list) = state.revocations.entry(account.clone()).or_default();
        if !list.contains(revocation) {
            list.push(revocation.clone());
            *generation += 1;
        }
        Ok(())
    }

    async fn session_revocations(&self, account: &AccountId) -> Result<(u64, Vec<SessionRevocation>), StoreError> {
        self.injected()?;
        Ok(lock(&self.state).revocations.get(account).cloned().unwrap_or_default())
    }

    async fn put_scheduled_change(&self, change: &ScheduledChange) -> Result<(), StoreError> {
        self.injected_write()?;
        lock(&self.state).scheduled.insert(scheduled_key(change), change.clone());
        Ok(())
    }

    async fn due_scheduled_changes(&self, now: DateTime<Utc>) -> Result<Vec<ScheduledChange>, StoreError> {
        self.injected()?;
        Ok(lock(&self.state).scheduled.values().filter(|c| c.due <= now).cloned().collect())
    }

    async fn delete_scheduled_change(&self, change: &ScheduledChange) -> Result<(), StoreError> {
        self.injected_write()?;
        lock(&self.state).scheduled.remove(&scheduled_key(change));
        Ok(())
    }
}

fn scheduled_key(change: &ScheduledChange) -> (DateTime<Utc>, MessageId, String) {
    (change.due, change.message_id.clone(), change.user.clone())
}

impl MemoryStore {
    /// Every scheduled directory change.
    pub fn scheduled_changes(&self) -> Vec<ScheduledChange> {
        lock(&self.state).scheduled.values().cloned().collect()
    }
}

// ---------------------------------------------------------------------------------------- broker

/// [`CredentialBroker`] that issues made-up credentials (or fails as told) and remembers requests.
/// With [`FakeBroker::hold_next`], the next call blocks until the test releases it (STS answering
/// slowly), so a test can put a revocation exactly there.
#[derive(Debug, Default)]
pub struct FakeBroker {
    requests: Mutex<Vec<AssumeRequest>>,
    fail_next: Mutex<Vec<BrokerError>>,
    held: Mutex<Option<Arc<BrokerGate>>>,
    clock: Mutex<Option<Arc<dyn Clock>>>,
}

/// A held STS call: [`BrokerGate::entered`] returns once the call is waiting (the request was
/// checked and sent), [`BrokerGate::release`] lets it answer.
#[derive(Debug, Default)]
pub struct BrokerGate {
    entered: tokio::sync::Notify,
    released: tokio::sync::Notify,
}

impl BrokerGate {
    /// Wait until the held call is in STS.
    pub async fn entered(&self) {
        self.entered.notified().await;
    }

    /// Let the held call answer.
    pub fn release(&self) {
        self.released.notify_one();
    }
}

impl FakeBroker {
    pub fn requests(&self) -> Vec<AssumeRequest> {
        lock(&self.requests).clone()
    }

    pub fn fail_next(&self, errors: impl IntoIterator<Item = BrokerError>) {
        lock(&self.fail_next).extend(errors);
    }

    /// Hold the next call until the returned gate is released.
    pub fn hold_next(&self) -> Arc<BrokerGate> {
        let gate = Arc::new(BrokerGate::default());
        *lock(&self.held) = Some(gate.clone());
        gate
    }

    /// Stamp sessions with `clock` (STS's clock, which may differ from the worker's): a session's
    /// expiration is then issue time + duration, as STS's is. Without it, sessions expire in 2100.
    pub fn set_clock(&self, clock: Arc<dyn Clock>) {
        *lock(&self.clock) = Some(clock);
    }
}

#[async_trait]
impl CredentialBroker for FakeBroker {
    async fn assume(&self, request: &AssumeRequest) -> Result<IssuedCredentials, BrokerError> {
        lock(&self.requests).push(request.clone());
        let held = lock(&self.held).take();
        if let Some(gate) = held {
            gate.entered.notify_one();
            gate.released.notified().await;
        }
        {
            let mut next = lock(&self.fail_next);
            if !next.is_empty() {
                return Err(next.remove(0));
            }
        }
        let n = lock(&self.requests).len();
        let sts_clock = lock(&self.clock).clone();
        let expiration = match sts_clock {
            Some(clock) => {
                clock.now() + chrono::Duration::seconds(i64::try_from(request.duration_seconds).unwrap_or(0))
            }
            None => DateTime::<Utc>::from_timestamp(4_102_444_800, 0).unwrap_or_default(),
        };
        Ok(IssuedCredentials {
            credentials: ProcessCredentials {
                version: 1,
                access_key_id: format!("ASIAFAKE{n:08}"),
                secret_access_key: format!("secret-{n}"),
                session_token: format!("session-{n}"),
                expiration,
            },
            packed_policy_size: Some(7),
        })
    }
}

// ---------------------------------------------------------------------------------------- replies

/// A reply as sent.
#[derive(Debug, Clone, PartialEq)]
pub struct SentReply {
    pub to: QueueUrl,
    pub in_reply_to: Option<MessageId>,
    pub text: String,
}

/// [`ReplySink`] that keeps every reply (or fails as told).
#[derive(Debug, Default)]
pub struct RecordingReplies {
    sent: Mutex<Vec<SentReply>>,
    fail_next: Mutex<Vec<ReplyError>>,
}

impl RecordingReplies {
    pub fn sent(&self) -> Vec<SentReply> {
        lock(&self.sent).clone()
    }

    pub fn fail_next(&self, errors: impl IntoIterator<Item = ReplyError>) {
        lock(&self.fail_next).extend(errors);
    }
}

#[async_trait]
impl ReplySink for RecordingReplies {
    async fn send(&self, to: &QueueUrl, in_reply_to: Option<&MessageId>, reply: &str) -> Result<(), ReplyError> {
        {
            let mut next = lock(&self.fail_next);
            if !next.is_empty() {
                return Err(next.remove(0));
            }
        }
        lock(&self.sent).push(SentReply { to: to.clone(), in_reply_to: in_reply_to.cloned(), text: reply.to_owned() });
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------- sessions

/// [`SessionRevoker`] that keeps each account's policy document (or fails as told).
#[derive(Debug, Default)]
pub struct FakeSessions {
    policies: Mutex<HashMap<AccountId, String>>,
    fail_next: Mutex<Vec<RevokerError>>,
}

impl FakeSessions {
    /// The policy on `account`'s broker role.
    pub fn policy(&self, account: &AccountId) -> Option<String> {
        lock(&self.policies).get(account).cloned()
    }

    /// Make the next calls (reads or writes) fail with these errors, in order.
    pub fn fail_next(&self, errors: impl IntoIterator<Item = RevokerError>) {
        lock(&self.fail_next).extend(errors);
    }

    fn failure(&self) -> Result<(), RevokerError> {
        let mut next = lock(&self.fail_next);
        if next.is_empty() { Ok(()) } else { Err(next.remove(0)) }
    }
}

#[async_trait]
impl SessionRevoker for FakeSessions {
    async fn get_policy(&self, account: &AccountId) -> Result<Option<String>, RevokerError> {
        self.failure()?;
        Ok(self.policy(account))
    }
    async fn put_policy(&self, account: &AccountId, document: &str) -> Result<(), RevokerError> {
        self.failure()?;
        lock(&self.policies).insert(account.clone(), document.to_owned());
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------- audit

/// [`AuditSink`] that keeps every event (or fails as told).
#[derive(Debug, Default)]
pub struct RecordingAudit {
    events: Mutex<Vec<PublishedEvent>>,
    fail_next: Mutex<Vec<AuditError>>,
}

impl RecordingAudit {
    pub fn events(&self) -> Vec<PublishedEvent> {
        lock(&self.events).clone()
    }

    /// Detail-types published, in order.
    pub fn detail_types(&self) -> Vec<String> {
        lock(&self.events).iter().map(|e| e.detail_type.clone()).collect()
    }

    /// Make the next `times` publishes fail as an outage.
    pub fn fail_next(&self, times: usize) {
        self.fail_next_with(vec![AuditError::new(FailureKind::Transient, "the bus is down"); times]);
    }

    /// Make the next publishes fail with these errors, in order.
    pub fn fail_next_with(&self, errors: impl IntoIterator<Item = AuditError>) {
        lock(&self.fail_next).extend(errors);
    }
}

#[async_trait]
impl AuditSink for RecordingAudit {
    async fn publish(&self, events: &[PublishedEvent]) -> Result<(), AuditError> {
        {
            let mut fail = lock(&self.fail_next);
            if !fail.is_empty() {
                return Err(fail.remove(0));
            }
        }
        lock(&self.events).extend(events.iter().cloned());
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------- identity

/// [`IdentityVerifier`] for made-up tokens: `fake:<user>[:<team>[:<group>,<group>...[:<iat>]]]` (iat
/// in epoch seconds; default: now). The token `keys-down` makes the issuer unavailable; anything else
/// is unauthenticated.
#[derive(Debug, Default)]
pub struct FakeVerifier;

impl FakeVerifier {
    /// A token for `user` with an optional team and groups.
    pub fn token(user: &str, team: Option<&str>, groups: &[&str]) -> String {
        format!("fake:{user}:{}:{}", team.unwrap_or(""), groups.join(","))
    }

    /// A token that says it was issued at `at`.
    pub fn token_issued(user: &str, team: Option<&str>, groups: &[&str], at: DateTime<Utc>) -> String {
        format!("{}:{}", Self::token(user, team, groups), at.timestamp())
    }
}

#[async_trait]
impl IdentityVerifier for FakeVerifier {
    async fn verify(&self, token: Option<&str>, now: DateTime<Utc>) -> Result<Identity, IdentityError> {
        let token =
            token.ok_or_else(|| IdentityError::Unauthenticated("the message carries no identity token".into()))?;
        if token == "keys-down" {
            return Err(IdentityError::Unavailable("the fake issuer is down".into()));
        }
        let mut parts = token
            .strip_prefix("fake:")
            .map(|t| t.splitn(4, ':'))
            .ok_or_else(|| IdentityError::Unauthenticated("the identity token's signature does not verify".into()))?;
        let user = parts.next().filter(|u| !u.is_empty()).unwrap_or("nobody").to_owned();
        let team = parts.next().filter(|t| !t.is_empty()).map(str::to_owned);
        let groups = parts.next().map(|g| g.split(',').filter(|g| !g.is_empty()).map(str::to_owned).collect());
        let issued_at = parts
            .next()
            .and_then(|t| t.parse::<i64>().ok())
            .and_then(|t| DateTime::<Utc>::from_timestamp(t, 0))
            .unwrap_or(now);
        Ok(Identity {
            issuer: "https://fake.issuer".into(),
            subject: user.clone(),
            display_name: user.clone(),
            user,
            team,
            groups: groups.unwrap_or_default(),
            issued_at,
            via: None,
        })
    }
}

// ---------------------------------------------------------------------------------------- evidence

/// [`crate::ports::EvidenceReader`] over a fixed list of evidence items.
#[derive(Debug, Default)]
pub struct FixedEvidence {
    pub items: Mutex<Vec<portcullis_domain::messages::ControlEvidence>>,
}

#[async_trait]
impl crate::ports::EvidenceReader for FixedEvidence {
    async fn latest_evidence(
        &self,
        accounts: &[AccountId],
        regions: &[String],
    ) -> Result<Vec<portcullis_domain::messages::ControlEvidence>, StoreError> {
        Ok(lock(&self.items)
            .iter()
            .filter(|e| accounts.contains(&e.account) && regions.contains(&e.region))
            .cloned()
            .collect())
    }
}
