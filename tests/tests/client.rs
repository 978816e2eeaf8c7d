//! The typed client (`portcullis-client`) against the real workers through real queues: every kind
//! sent as its typed body and read back as its typed result (results refuse unknown fields, so a
//! field the worker writes that the domain type does not declare fails here), refusals read as
//! typed refusals, credentials sealed and opened, and a trusted producer acting for a person and
//! sending directory events on its own reply queue with its own credentials.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use chrono::Utc;
use portcullis_client::{AccessClient, AskError, Auth, RefusalCode};
use portcullis_domain::grant::{GrantStatus, Verdict};
use portcullis_domain::messages::*;
use portcullis_domain::template::TemplateSpec;
use portcullis_domain::{AccountId, ErrorCode, TemplateName};
use portcullis_tests::*;

fn account() -> AccountId {
    AccountId::parse(ACCOUNT).unwrap()
}

fn name(s: &str) -> TemplateName {
    TemplateName::parse(s).unwrap()
}

fn example(template: &str) -> TemplateSpec {
    let text = std::fs::read_to_string(workspace_root().join(format!("examples/templates/{template}.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn write_request(bucket: &str, break_glass: bool) -> GrantRequest {
    GrantRequest {
        template: name("bucketWrite"),
        params: BTreeMap::from([("bucketName".to_owned(), bucket.to_owned())]),
        account: account(),
        ttl: 1200,
        reason: "INC-7: repair the nightly export".into(),
        break_glass,
    }
}

fn refused_code<T: std::fmt::Debug>(result: Result<T, AskError>) -> RefusalCode {
    match result {
        Err(AskError::Refused(r)) => r.code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn every_access_kind_round_trips_typed_through_the_worker() {
    let app = spawn_app_with("", "").await;
    let client = &app.client;
    let admin = Auth::IdToken(app.admin_token());
    let alice = Auth::IdToken(app.token("alice", Some("payments"), &["engineers"]));
    let bob = Auth::IdToken(app.token("bob", Some("security"), &["portcullis-approvers", "security"]));

    // Templates.
    for t in ["bucketRead", "bucketWrite"] {
        let put = client.ask(&admin, &TemplatePut { template: example(t) }).await.unwrap();
        assert_eq!((put.name.as_str(), put.version), (t, 1));
    }
    let listed = client.ask(&alice, &TemplateList {}).await.unwrap();
    let names: Vec<&str> = listed.templates.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["bucketRead", "bucketWrite"]);
    assert!(listed.templates[1].break_glass && listed.templates[1].approval.is_some());
    let got = client.ask(&alice, &TemplateGet { name: name("bucketWrite"), version: None }).await.unwrap();
    assert_eq!(got.template.spec, example("bucketWrite"));
    assert_eq!(got.template.created_by, "admin");

    // A grant that needs bob's approval; one denied; one by break glass, reviewed.
    let pending = client.ask(&alice, &write_request("exports", false)).await.unwrap().grant;
    assert_eq!(pending.status, GrantStatus::Pending);
    let waiting = client.ask(&bob, &GrantPending {}).await.unwrap();
    assert_eq!(waiting.approvals.iter().map(|g| &g.id).collect::<Vec<_>>(), [&pending.id]);
    let approved = client.ask(&bob, &GrantApprove { grant_id: pending.id.clone() }).await.unwrap().grant;
    assert_eq!(approved.status, GrantStatus::Active);
    let other = client.ask(&alice, &write_request("imports", false)).await.unwrap().grant;
    let deny = GrantDeny { grant_id: other.id.clone(), reason: "use the replica".into() };
    let denied = client.ask(&bob, &deny).await.unwrap().grant;
    assert_eq!(denied.status, GrantStatus::Denied);
    let glass = client.ask(&alice, &write_request("hotfix", true)).await.unwrap().grant;
    assert!(glass.break_glass.is_some());
    let review = GrantReview { grant_id: glass.id.clone(), verdict: Verdict::Justified, note: "SEV1".into() };
    let reviewed = client.ask(&bob, &review).await.unwrap().grant;
    assert_eq!(reviewed.break_glass.unwrap().review.unwrap().verdict, Verdict::Justified);

    // Credentials: sealed to a key made for the request, opened by the client.
    let body = CredentialsRequest { account: account(), duration: None, reply_key: None };
    let issued = client.ask(&alice, &body).await.unwrap();
    assert!(issued.sealed_credentials.is_some(), "the reply carried them sealed");
    let credentials = issued.credentials.expect("opened");
    assert!(!credentials.secret_access_key.is_empty());
    assert_eq!(issued.grant_ids.len(), 2, "the approved and the break-glass grant");

    // Listing, revoking one, revoking all.
    let mine = client.ask(&alice, &GrantList { account: Some(account()), include_ended: true }).await.unwrap();
    assert_eq!(mine.grants.len(), 3);
    let revoked =
        client.ask(&alice, &GrantRevoke { grant_id: approved.id.clone(), reason: "done".into() }).await.unwrap();
    assert_eq!(revoked.grants, std::slice::from_ref(&approved.id));
    assert_eq!(revoked.accounts, [account()]);
    let all = client.ask(&admin, &GrantRevokeAll { user: "alice".into(), reason: "left".into() }).await.unwrap();
    assert_eq!(all.grants, std::slice::from_ref(&glass.id));

    // Posture: nothing measured here, but the result reads; outside the reader groups, a refusal.
    let posture = client.ask(&bob, &PostureStatus::default()).await.unwrap();
    assert!(posture.controls.is_empty());
    assert_eq!(
        refused_code(client.ask(&alice, &PostureStatus::default()).await),
        RefusalCode::Known(ErrorCode::Forbidden)
    );

    // Refusals are typed, with the worker's code; deleting a template is typed too.
    let mut too_long = write_request("exports", false);
    too_long.ttl = 86_400;
    assert_eq!(refused_code(client.ask(&alice, &too_long).await), RefusalCode::Known(ErrorCode::TtlTooLong));
    let deleted = client.ask(&admin, &TemplateDelete { name: name("bucketRead") }).await.unwrap();
    assert!(deleted.deleted);
    let gone = client.ask(&alice, &TemplateGet { name: name("bucketRead"), version: None }).await;
    assert_eq!(refused_code(gone), RefusalCode::Known(ErrorCode::TemplateNotFound));
}

/// A trusted producer (a chat bot, the HR system) with its own credentials and its own reply
/// queue: requests for a person `on_behalf_of` them, and directory events for itself, on the
/// queue each kind belongs on.
#[tokio::test]
async fn a_trusted_producer_acts_for_people_and_sends_directory_events_on_its_own_queue() {
    let app = spawn_app_with_directory("", &trusted_everything()).await;
    app.put_example_templates().await;
    let reply_queue = format!("{}-reply-slack", app.names.prefix());
    let bot = AccessClient::for_producer(app.sqs(), &app.names, &reply_queue).await.unwrap();
    assert!(bot.reply_queue_url().ends_with(&reply_queue));
    let alice = Auth::OnBehalfOf(OnBehalfOf { user: "alice".into(), team: Some("payments".into()), groups: vec![] });

    let read = GrantRequest {
        template: name("bucketRead"),
        params: BTreeMap::from([("bucketName".to_owned(), "reports".to_owned())]),
        account: account(),
        ttl: 3600,
        reason: "asked in #ops".into(),
        break_glass: false,
    };
    let grant = bot.ask(&alice, &read).await.unwrap().grant;
    assert_eq!((grant.user.as_str(), grant.via.as_deref()), ("alice", Some("hr")));
    let listed = bot.ask(&alice, &GrantList::default()).await.unwrap();
    assert_eq!(listed.grants.iter().map(|g| &g.id).collect::<Vec<_>>(), [&grant.id]);

    // The HR system speaks for itself, on the directory-events queue.
    let offboarded = bot.ask(&Auth::Producer, &UserOffboarded { user: "alice".into(), effective_at: Utc::now() }).await;
    let offboarded = offboarded.unwrap();
    assert!(offboarded.applied);
    assert_eq!(offboarded.revoked_grants, std::slice::from_ref(&grant.id));
    assert_eq!(offboarded.session_accounts, [account()]);
    // And from then on, nobody may act for alice.
    let after = bot.ask(&alice, &GrantList::default()).await;
    assert!(matches!(after, Err(AskError::Refused(_))), "{after:?}");

    // A client without the directory queue says so before sending anything.
    let person =
        AccessClient::on_own_queue(app.sqs(), bot.request_queue_url().to_owned(), bot.reply_queue_url().to_owned());
    let err = person
        .ask(&Auth::Producer, &UserGroupsChanged { user: "bob".into(), groups: vec![], effective_at: Utc::now() })
        .await;
    assert!(err.unwrap_err().to_string().contains("directory-events queue"));
}
