//! The access store's contract, run against both of its implementations: the in-memory fake every
//! unit test of the workers relies on (`portcullis_access::fakes::MemoryStore`) and the DynamoDB
//! adapter on the emulator (`portcullis_access::adapters::DynamoStore`). The same cases, the same
//! expected answers: a rule one of them keeps and the other does not fails here, so the fake the
//! unit tests trust cannot drift from what production does.
//!
//! Each case uses its own user, account and template names, so the cases share one store.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, DurationRound, TimeDelta, Utc};
use portcullis_access::adapters::DynamoStore;
use portcullis_access::failure::StoreError;
use portcullis_access::fakes::MemoryStore;
use portcullis_access::ports::{
    AccessStore, DecidedOn, NewRecord, PublishedEvent, Recorded, RequestKey, RequestRecord,
};
use portcullis_domain::directory::{DirectoryChange, DirectoryRecord, ScheduledChange};
use portcullis_domain::grant::{Grant, GrantApproval, GrantStatus, Revocation};
use portcullis_domain::revocation::{SessionRevocation, cutoff_for};
use portcullis_domain::template::StoredTemplate;
use portcullis_domain::{AccountId, GrantId, MessageId, TemplateName};
use portcullis_tests::TestStack;
use serde_json::json;

const ACCOUNT_A: &str = "111111111111";
const ACCOUNT_B: &str = "222222222222";

/// Now, to the millisecond (what every store keeps of a time).
fn now() -> DateTime<Utc> {
    Utc::now().duration_trunc(TimeDelta::milliseconds(1)).unwrap()
}

fn account(a: &str) -> AccountId {
    AccountId::parse(a).unwrap()
}

fn message_id(n: &str) -> MessageId {
    MessageId::parse(n).unwrap()
}

fn grant(user: &str, account_id: &str, n: u32, created_at: DateTime<Utc>, ttl: i64) -> Grant {
    let request = message_id(&format!("m-{user}-{n}"));
    Grant {
        id: Grant::id_for(user, &request),
        status: GrantStatus::Active,
        user: user.to_owned(),
        user_display_name: Some(user.to_uppercase()),
        team: Some("payments".into()),
        groups: vec!["engineers".into()],
        account: account(account_id),
        template: TemplateName::parse("bucketRead").unwrap(),
        template_version: 1,
        params: BTreeMap::from([("bucketName".to_owned(), format!("b-{n}"))]),
        statements: vec![
            json!({"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": [format!("arn:aws:s3:::b-{n}/*")]}),
        ],
        reason: "contract".into(),
        created_at,
        expires_at: created_at + Duration::seconds(ttl),
        ttl_seconds: u64::try_from(ttl.max(0)).unwrap(),
        request_message_id: request,
        via: None,
        approval: None,
        break_glass: None,
        revoked: None,
        revision: 0,
    }
}

/// Decided on no directory record (the contract's users have none unless a case writes one).
const NO_RECORD: DecidedOn = DecidedOn { directory_revision: None };

/// Version `version` of a template called `name`.
fn template(name: &str, version: u32) -> StoredTemplate {
    serde_json::from_value(json!({
        "name": name,
        "description": "contract",
        "parameters": [{"name": "bucketName", "description": "bucket", "pattern": "[a-z0-9-]{3,63}"}],
        "statements": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::{{ bucketName }}/*"]}],
        "max_ttl_seconds": 3600,
        "version": version,
        "created_by": "admin",
        "created_at": "2026-12-03T00:00:00Z",
    }))
    .unwrap()
}

fn record<'a>(user: &'a str, id: &'a MessageId, reply: &str) -> NewRecord<'a> {
    NewRecord {
        key: RequestKey { user, message_id: id },
        record: RequestRecord {
            digest: format!("digest-of-{reply}"),
            reply: reply.to_owned(),
            events: vec![PublishedEvent {
                detail_type: "Grant Created".into(),
                detail: json!({"r": reply}).to_string(),
            }],
        },
        expires_at: (Utc::now() + Duration::days(1)).timestamp(),
    }
}

/// A grant is written once with its request record; the same request again replays the record
/// and writes nothing; reading back gives the grant as written.
async fn grants_are_written_once_with_their_record(store: &dyn AccessStore) {
    let t = now();
    let g = grant("c-once", ACCOUNT_A, 1, t, 3600);
    let id = g.request_message_id.clone();
    assert!(store.request_record(&RequestKey { user: "c-once", message_id: &id }).await.unwrap().is_none());
    assert!(matches!(
        store.put_grant(&g, NO_RECORD, &record("c-once", &id, "first")).await.unwrap(),
        Recorded::Applied(())
    ));
    let mut again = g.clone();
    again.expires_at = t + Duration::seconds(60);
    match store.put_grant(&again, NO_RECORD, &record("c-once", &id, "second")).await.unwrap() {
        Recorded::Replayed(earlier) => {
            assert_eq!(earlier.reply, "first");
            assert_eq!(earlier.digest, "digest-of-first");
            assert_eq!(earlier.events.len(), 1);
        }
        Recorded::Applied(()) => panic!("the same request wrote a second time"),
    }
    let stored = store.grant("c-once", &g.account, &g.id).await.unwrap().expect("the grant");
    assert_eq!(stored.expires_at, g.expires_at, "the first write stands");
    assert_eq!(stored.params, g.params);
    assert_eq!(stored.statements, g.statements);
    assert_eq!(store.grant_by_id(&g.id).await.unwrap().map(|s| s.id), Some(g.id.clone()));
    let missing = GrantId::parse(&format!("g-{:032x}", 7)).unwrap();
    assert!(store.grant_by_id(&missing).await.unwrap().is_none());
    // A record without a change (a revocation's): once, then replayed.
    let rid = message_id("m-c-once-revoke");
    assert!(matches!(store.put_request_record(&record("c-once", &rid, "r")).await.unwrap(), Recorded::Applied(())));
    assert!(matches!(store.put_request_record(&record("c-once", &rid, "x")).await.unwrap(), Recorded::Replayed(_)));
}

/// Live grants: active and unexpired only, per account or all, oldest first; kept grants include
/// the expired and revoked ones.
async fn live_grants_are_filtered_and_ordered(store: &dyn AccessStore) {
    let t = now();
    let user = "c-live";
    let old = grant(user, ACCOUNT_A, 1, t - Duration::seconds(30), 3600);
    let newer = grant(user, ACCOUNT_A, 2, t - Duration::seconds(10), 3600);
    let other_account = grant(user, ACCOUNT_B, 3, t - Duration::seconds(20), 3600);
    let expired = grant(user, ACCOUNT_A, 4, t - Duration::seconds(7200), 3600);
    let revoked = grant(user, ACCOUNT_A, 5, t - Duration::seconds(5), 3600);
    for g in [&newer, &old, &other_account, &expired, &revoked] {
        let id = g.request_message_id.clone();
        store.put_grant(g, NO_RECORD, &record(user, &id, "ok")).await.unwrap();
    }
    let revocation = Revocation { at: t, by: "admin".into(), reason: "contract".into() };
    assert!(store.revoke_grant(&revoked, &revocation).await.unwrap());
    assert!(!store.revoke_grant(&revoked, &revocation).await.unwrap(), "revoked once");
    let ids = |gs: Vec<Grant>| gs.into_iter().map(|g| g.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.live_grants(user, Some(&account(ACCOUNT_A)), t).await.unwrap()),
        [old.id.clone(), newer.id.clone()]
    );
    assert_eq!(
        ids(store.live_grants(user, None, t).await.unwrap()),
        [old.id.clone(), other_account.id.clone(), newer.id.clone()]
    );
    assert!(store.live_grants(user, Some(&account(ACCOUNT_A)), t + Duration::seconds(7200)).await.unwrap().is_empty());
    let kept = store.kept_grants(user, t).await.unwrap();
    assert_eq!(kept.len(), 5, "expired and revoked grants are still kept");
    let stored = store.grant(user, &revoked.account, &revoked.id).await.unwrap().unwrap();
    assert_eq!(stored.status_at(t), GrantStatus::Revoked);
    assert_eq!(stored.revoked.as_ref().map(|r| r.reason.as_str()), Some("contract"));
}

/// A grant's update is conditional on the revision it was read at; the approvers' list follows
/// the grant's status.
async fn updates_are_conditional_and_the_approvals_list_follows(store: &dyn AccessStore) {
    let t = now();
    let user = "c-update";
    let mut g = grant(user, ACCOUNT_A, 1, t, 3600);
    g.status = GrantStatus::Pending;
    g.approval = Some(GrantApproval {
        required: 1,
        approver_groups: vec!["portcullis-approvers".into()],
        approvals: Vec::new(),
        pending_until: t + Duration::seconds(600),
        activated_at: None,
        denied: None,
    });
    let id = g.request_message_id.clone();
    store.put_grant(&g, NO_RECORD, &record(user, &id, "pending")).await.unwrap();
    let waiting = |gs: Vec<Grant>| gs.iter().any(|w| w.id == g.id);
    assert!(waiting(store.pending_approvals(t).await.unwrap()), "listed for approvers");
    let read = store.grant(user, &g.account, &g.id).await.unwrap().unwrap();
    let mut approved = read.clone();
    approved.status = GrantStatus::Active;
    if let Some(a) = approved.approval.as_mut() {
        a.activated_at = Some(t);
    }
    let approve_id = message_id("m-c-update-approve");
    assert!(matches!(
        store.update_grant(&approved, &record("bob", &approve_id, "approved")).await.unwrap(),
        Recorded::Applied(())
    ));
    // A second writer that read the same revision loses.
    let deny_id = message_id("m-c-update-deny");
    let mut denied = read.clone();
    denied.status = GrantStatus::Denied;
    match store.update_grant(&denied, &record("carol", &deny_id, "denied")).await {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("a stale revision must conflict: {other:?}"),
    }
    let stored = store.grant(user, &g.account, &g.id).await.unwrap().unwrap();
    assert_eq!(stored.status, GrantStatus::Active);
    assert_eq!(stored.revision, read.revision + 1);
    assert!(!waiting(store.pending_approvals(t).await.unwrap()), "no longer waiting for approval");
}

/// Directory records are written over the revision read; reading them with a template index
/// gives both.
async fn directory_records_are_conditional(store: &dyn AccessStore) {
    let t = now();
    assert!(store.directory_record("c-dir").await.unwrap().is_none());
    let mut r = DirectoryRecord::new("c-dir");
    r.apply(&DirectoryChange::Offboarded { effective_at: t }, t);
    store.put_directory_record(&r, None).await.unwrap();
    assert!(matches!(store.put_directory_record(&r, None).await, Err(StoreError::Conflict(_))), "exists already");
    let (read, revision) = store.directory_record("c-dir").await.unwrap().unwrap();
    assert_eq!(read, r);
    store.put_directory_record(&r, Some(revision)).await.unwrap();
    assert!(matches!(store.put_directory_record(&r, Some(revision)).await, Err(StoreError::Conflict(_))), "stale");
    let nothing = TemplateName::parse("cContractNone").unwrap();
    let (both, index) = store.directory_record_and_template_index("c-dir", &nothing).await.unwrap();
    assert_eq!(both.map(|(r, _)| r), Some(r));
    assert!(index.is_none());
}

/// Session revocations accumulate once each and bump the account's generation.
async fn session_revocations_count_once(store: &dyn AccessStore) {
    let t = now();
    let a = account("333333333333");
    let (generation, list) = store.session_revocations(&a).await.unwrap();
    assert!(list.is_empty());
    // Cutoffs are whole seconds (`revocation_cutoff`): kept exactly.
    let r = SessionRevocation { source_identity: "c-sessions".into(), cutoff: cutoff_for(t) };
    let keep = (t + Duration::hours(12)).timestamp();
    store.add_session_revocation(&a, &r, keep).await.unwrap();
    store.add_session_revocation(&a, &r, keep).await.unwrap();
    let (after, list) = store.session_revocations(&a).await.unwrap();
    assert_eq!(list, [r]);
    assert!(after > generation, "the generation moved");
    // A cutoff within a second is never kept earlier than given (that would deny less).
    let b = account("444444444444");
    let within =
        SessionRevocation { source_identity: "c-sessions".into(), cutoff: cutoff_for(t) + Duration::milliseconds(250) };
    store.add_session_revocation(&b, &within, keep).await.unwrap();
    let (_, list) = store.session_revocations(&b).await.unwrap();
    assert!(list.len() == 1 && list[0].cutoff >= within.cutoff, "{list:?}");
}

/// Scheduled changes come back due in order, once each, and go when deleted.
async fn scheduled_changes_come_due_in_order(store: &dyn AccessStore) {
    let t = now();
    let change = |minutes: i64, n: &str| ScheduledChange {
        due: t + Duration::minutes(minutes),
        user: "c-scheduled".into(),
        kind: "user.offboarded".into(),
        body: json!({"user": "c-scheduled"}),
        message_id: message_id(&format!("m-c-scheduled-{n}")),
        producer: Some("hr".into()),
    };
    let (later, sooner, future) = (change(-5, "later"), change(-10, "sooner"), change(60, "future"));
    for c in [&later, &sooner, &future, &later] {
        store.put_scheduled_change(c).await.unwrap();
    }
    let due = store.due_scheduled_changes(t).await.unwrap();
    let mine: Vec<&ScheduledChange> = due.iter().filter(|c| c.user == "c-scheduled").collect();
    assert_eq!(mine, [&sooner, &later], "due ones, earliest first, a repeat kept once");
    store.delete_scheduled_change(&sooner).await.unwrap();
    let due = store.due_scheduled_changes(t + Duration::minutes(61)).await.unwrap();
    let mine: Vec<&ScheduledChange> = due.iter().filter(|c| c.user == "c-scheduled").collect();
    assert_eq!(mine, [&later, &future]);
}

/// A grant is written only while what it was decided on holds: the requester's directory record
/// at the revision read (or still absent) and its template at the version used, not deleted.
/// Otherwise `Stale`, and nothing is written; a request recorded already replays all the same.
async fn grants_are_written_only_on_what_they_were_decided_on(store: &dyn AccessStore) {
    let t = now();
    let user = "c-decided";
    let name = TemplateName::parse("cDecided").unwrap();
    let admin_id = message_id("m-c-decided-put-1");
    let admin = |id| NewRecord { key: RequestKey { user: "admin", message_id: id }, ..record("admin", id, "put") };
    store.put_template(&template("cDecided", 1), None, &admin(&admin_id)).await.unwrap();
    let mut g = grant(user, ACCOUNT_A, 1, t, 3600);
    g.template = name.clone();
    let written = |g: Grant| async move { store.grant(user, &g.account, &g.id).await.unwrap().is_some() };
    let is_stale = |r: Result<Recorded<()>, StoreError>| matches!(r, Err(StoreError::Stale(_)));

    // The directory wrote a record after the decision read none.
    let mut r = DirectoryRecord::new(user);
    r.apply(&DirectoryChange::TeamChanged { from: "payments".into(), to: "search".into(), effective_at: t }, t);
    store.put_directory_record(&r, None).await.unwrap();
    let id = g.request_message_id.clone();
    assert!(is_stale(store.put_grant(&g, NO_RECORD, &record(user, &id, "stale")).await), "a record appeared");
    assert!(!written(g.clone()).await, "nothing written");
    assert!(store.request_record(&RequestKey { user, message_id: &id }).await.unwrap().is_none(), "nor recorded");
    let (_, revision) = store.directory_record(user).await.unwrap().unwrap();
    let stale_revision = DecidedOn { directory_revision: Some(revision + 1) };
    assert!(is_stale(store.put_grant(&g, stale_revision, &record(user, &id, "stale")).await), "another revision");
    let current = DecidedOn { directory_revision: Some(revision) };
    assert!(matches!(store.put_grant(&g, current, &record(user, &id, "ok")).await.unwrap(), Recorded::Applied(())));
    assert!(written(g.clone()).await);
    // Recorded already: replayed, whatever changed since.
    assert!(matches!(
        store.put_grant(&g, NO_RECORD, &record(user, &id, "again")).await.unwrap(),
        Recorded::Replayed(_)
    ));

    // The template moved on to version 2: a grant decided on version 1 is stale.
    let put_2 = message_id("m-c-decided-put-2");
    store.put_template(&template("cDecided", 2), Some(1), &admin(&put_2)).await.unwrap();
    let mut old_version = grant(user, ACCOUNT_A, 2, t, 3600);
    old_version.template = name.clone();
    let id = old_version.request_message_id.clone();
    assert!(is_stale(store.put_grant(&old_version, current, &record(user, &id, "v1")).await), "version 1 is old");
    let mut latest = old_version.clone();
    latest.template_version = 2;
    assert!(matches!(
        store.put_grant(&latest, current, &record(user, &id, "v2")).await.unwrap(),
        Recorded::Applied(())
    ));

    // Deleted: no grant from it.
    let delete = message_id("m-c-decided-delete");
    store.delete_template(&name, &admin(&delete)).await.unwrap();
    let mut after = grant(user, ACCOUNT_A, 3, t, 3600);
    after.template = name;
    after.template_version = 2;
    let id = after.request_message_id.clone();
    assert!(is_stale(store.put_grant(&after, current, &record(user, &id, "deleted")).await), "deleted");
    assert!(!written(after).await);
}

/// What credentials are checked against after STS: the directory record, each grant asked for as
/// stored (in order; `None` when there is none), and the account's revocation generation, which
/// moves with every session revocation added.
async fn entitlement_reads_the_record_the_grants_and_the_generation(store: &dyn AccessStore) {
    let t = now();
    let user = "c-entitled";
    let a = account("555555555555");
    let live = grant(user, "555555555555", 1, t, 3600);
    let revoked = grant(user, "555555555555", 2, t, 3600);
    for g in [&live, &revoked] {
        let id = g.request_message_id.clone();
        store.put_grant(g, NO_RECORD, &record(user, &id, "ok")).await.unwrap();
    }
    store.revoke_grant(&revoked, &Revocation { at: t, by: "admin".into(), reason: "contract".into() }).await.unwrap();
    let missing = GrantId::parse(&format!("g-{:032x}", 9)).unwrap();
    let ids = [live.id.clone(), missing, revoked.id.clone()];
    let before = store.entitlement(user, &a, &ids).await.unwrap();
    assert!(before.directory.is_none());
    assert_eq!(before.revocation_generation, 0, "no revocation in this account yet");
    let found: Vec<Option<(GrantId, bool)>> =
        before.grants.iter().map(|g| g.as_ref().map(|g| (g.id.clone(), g.is_live(t)))).collect();
    assert_eq!(found, [Some((live.id.clone(), true)), None, Some((revoked.id.clone(), false))]);

    let mut r = DirectoryRecord::new(user);
    r.apply(&DirectoryChange::Offboarded { effective_at: t }, t);
    store.put_directory_record(&r, None).await.unwrap();
    let cut = SessionRevocation { source_identity: user.into(), cutoff: cutoff_for(t) };
    store.add_session_revocation(&a, &cut, (t + Duration::hours(1)).timestamp()).await.unwrap();
    let after = store.entitlement(user, &a, &ids[..1]).await.unwrap();
    assert_eq!(after.directory.as_ref().map(|(d, _)| d), Some(&r));
    assert_eq!(after.grants.len(), 1);
    let (generation, _) = store.session_revocations(&a).await.unwrap();
    assert!(generation > 0 && after.revocation_generation == generation, "{generation} {after:?}");
}

async fn contract(store: &dyn AccessStore) {
    let setup = message_id("m-c-template");
    let put = NewRecord { key: RequestKey { user: "admin", message_id: &setup }, ..record("admin", &setup, "put") };
    store.put_template(&template("bucketRead", 1), None, &put).await.unwrap();
    grants_are_written_only_on_what_they_were_decided_on(store).await;
    entitlement_reads_the_record_the_grants_and_the_generation(store).await;
    grants_are_written_once_with_their_record(store).await;
    live_grants_are_filtered_and_ordered(store).await;
    updates_are_conditional_and_the_approvals_list_follows(store).await;
    directory_records_are_conditional(store).await;
    session_revocations_count_once(store).await;
    scheduled_changes_come_due_in_order(store).await;
}

#[tokio::test]
async fn the_in_memory_fake_keeps_the_store_contract() {
    contract(&MemoryStore::default()).await;
}

#[tokio::test]
async fn the_dynamodb_adapter_keeps_the_store_contract() {
    let stack = TestStack::deploy("", "").await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&stack.sdk), stack.names.table());
    contract(&store).await;
}
