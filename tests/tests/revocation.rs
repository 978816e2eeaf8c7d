//! Taking access away, through real queues against the emulator: directory events from the HR
//! system, revoke and revoke-all, live sessions killed on the broker role, trusted producers, audit
//! events, and no secret anywhere.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use chrono::{DateTime, Utc};
use portcullis_domain::messages::Kind;
use portcullis_domain::redact::contains_secret;
use portcullis_tests::*;
use serde_json::{Value, json};

fn grant(bucket: &str) -> Value {
    json!({"template": "bucketRead", "params": {"bucketName": bucket}, "account": ACCOUNT, "ttl": 3600, "reason": "incident 42"})
}

/// The users (`aws:SourceIdentity`) the revocation policy denies, with their cutoffs.
fn denied(policy: &Option<Value>) -> Vec<(String, String)> {
    let Some(policy) = policy else { return Vec::new() };
    let mut out = Vec::new();
    for s in policy["Statement"].as_array().unwrap().iter() {
        let cutoff = s["Condition"]["DateLessThan"]["aws:TokenIssueTime"].as_str().unwrap_or_default().to_owned();
        let users = match &s["Condition"]["StringEquals"]["aws:SourceIdentity"] {
            Value::Array(u) => u.iter().map(|x| x.as_str().unwrap().to_owned()).collect(),
            Value::String(u) => vec![u.clone()],
            _ => Vec::new(),
        };
        out.extend(users.into_iter().map(|u| (u, cutoff.clone())));
    }
    out
}

fn live_ids(reply: &portcullis_domain::messages::Reply<Value>) -> Vec<String> {
    ok(reply)["grants"].as_array().unwrap().iter().map(|g| g["id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn a_team_change_revokes_the_old_teams_grants_and_stale_tokens_are_refused() {
    let app = spawn_app_with_directory("", &trusted_everything()).await;
    app.put_example_templates().await;
    let as_payments = app.token("alice", Some("payments"), &[]);
    let old = app.grant_bucket(&as_payments, "payments-data", 3600).await;
    // The IdP already says growth (the token was refreshed), before HR's event.
    let as_growth = app.token("alice", Some("growth"), &[]);
    let new = app.grant_bucket(&as_growth, "growth-data", 3600).await;

    let effective: DateTime<Utc> = Utc::now();
    let reply = app
        .directory(
            Kind::UserTeamChanged,
            json!({"user": "alice", "from_team": "payments", "to_team": "growth", "effective_at": effective}),
        )
        .await;
    let result = ok(&reply);
    assert_eq!(result["applied"], true);
    assert_eq!(result["revoked_grants"], json!([old["id"]]));
    assert_eq!(result["session_accounts"], json!([ACCOUNT]));

    let list = app.request(Kind::GrantList, json!({}), &as_growth).await;
    assert_eq!(live_ids(&list), vec![new["id"].as_str().unwrap()], "only the old team's grant went");
    // The token issued before the change, still saying payments, is stale.
    let stale = app.request(Kind::GrantList, json!({}), &as_payments).await;
    assert_eq!(error_code(&stale), "token_stale");
    assert!(denied(&app.revocation_policy().await).iter().any(|(u, _)| u == "alice"));

    // Redelivered: the same answer, nothing more revoked.
    let again = app
        .directory(
            Kind::UserTeamChanged,
            json!({"user": "alice", "from_team": "payments", "to_team": "growth", "effective_at": effective}),
        )
        .await;
    assert_eq!(ok(&again)["revoked_grants"], json!([old["id"]]));
    // An older change arriving late is not applied and revokes nothing current.
    let older = app
        .directory(
            Kind::UserTeamChanged,
            json!({"user": "alice", "from_team": "growth", "to_team": "payments", "effective_at": effective - chrono::Duration::hours(1)}),
        )
        .await;
    assert_eq!((ok(&older)["applied"].clone(), ok(&older)["revoked_grants"].clone()), (json!(false), json!([])));
    assert_eq!(live_ids(&app.request(Kind::GrantList, json!({}), &as_growth).await).len(), 1);
}

#[tokio::test]
async fn offboarding_revokes_everything_kills_sessions_and_refuses_what_follows() {
    let app = spawn_app_with_directory("", &trusted_everything()).await;
    app.put_example_templates().await;
    let bus = app.capture_bus().await;
    let alice = app.token("alice", Some("payments"), &[]);
    app.grant_bucket(&alice, "one", 3600).await;
    app.grant_bucket(&alice, "two", 3600).await;
    let issued = app.request(Kind::CredentialsRequest, json!({"account": ACCOUNT}), &alice).await;
    let credentials = ok(&issued)["credentials"].clone();

    // A credentials request races the offboarding.
    let key = portcullis_domain::sealed::generate_reply_key().1.encode();
    let racing =
        app.client.envelope(Kind::CredentialsRequest, json!({"account": ACCOUNT, "reply_key": key}), Some(&alice));
    app.client.send(&racing).await.unwrap();
    let reply = app.directory(Kind::UserOffboarded, json!({"user": "alice", "effective_at": Utc::now()})).await;
    let result = ok(&reply);
    assert_eq!(result["revoked_grants"].as_array().unwrap().len(), 2);
    assert_eq!(result["session_accounts"], json!([ACCOUNT]));
    let racing_reply = app.client.wait_reply(&racing.message_id, REPLY_TIMEOUT).await.unwrap();

    // The deny is on the broker role, for sessions issued before the offboarding was applied.
    let denies = denied(&app.revocation_policy().await);
    let cutoff: DateTime<Utc> = denies.iter().find(|(u, _)| u == "alice").expect("alice is denied").1.parse().unwrap();
    // Whatever the race gave, it was issued before the cutoff (so the deny covers it), or refused.
    let events = app.receive_all_json(&bus, Duration::from_secs(3)).await;
    let issued_at: Vec<DateTime<Utc>> = events
        .iter()
        .filter(|e| e["detail-type"] == "Credentials Issued")
        .map(|e| e["detail"]["at"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(issued_at.iter().all(|t| *t <= cutoff), "every session issued is covered: {issued_at:?} vs {cutoff}");
    if let portcullis_domain::messages::ReplyOutcome::Error { error } = &racing_reply.outcome {
        assert!(["token_stale", "no_grants", "access_revoked"].contains(&error.code.as_str()), "{}", error.code);
    }
    // After the event, nothing is issued, whatever the token.
    let after = app.request(Kind::CredentialsRequest, json!({"account": ACCOUNT}), &alice).await;
    assert_eq!(error_code(&after), "token_stale");
    let fresh = app.token("alice", Some("payments"), &[]);
    assert_eq!(error_code(&app.request(Kind::GrantList, json!({}), &fresh).await), "token_stale");

    // The audit trail: who, on whose behalf, what, why, when; and no secret in it.
    let types: Vec<&str> = events.iter().filter_map(|e| e["detail-type"].as_str()).collect();
    for t in ["Grant Created", "Credentials Issued", "Directory Change Applied", "Grant Revoked", "Sessions Revoked"] {
        assert!(types.contains(&t), "{t} in {types:?}");
    }
    let applied = events.iter().find(|e| e["detail-type"] == "Directory Change Applied").unwrap();
    assert_eq!(applied["detail"]["actor"], json!({"user": "directory", "via": "hr"}));
    assert_eq!(applied["detail"]["user"], "alice");
    let secret = credentials["SecretAccessKey"].as_str().unwrap();
    let session = credentials["SessionToken"].as_str().unwrap();
    for e in &events {
        let text = e.to_string();
        assert!(
            !text.contains(secret) && !text.contains(session) && !text.contains(&alice) && !contains_secret(&text),
            "{text:.300}"
        );
    }
}

#[tokio::test]
async fn revoke_by_owner_admin_or_nobody_else_and_revoke_all() {
    let app = spawn_app_with_directory("", &trusted_everything()).await;
    app.put_example_templates().await;
    let alice = app.token("alice", Some("payments"), &[]);
    let bob = app.token("bob", None, &[]);
    let admin = app.admin_token();
    let g1 = app.grant_bucket(&alice, "one", 3600).await["id"].clone();
    let g2 = app.grant_bucket(&alice, "two", 3600).await["id"].clone();
    let g3 = app.grant_bucket(&alice, "three", 3600).await["id"].clone();

    let by_bob = app.request(Kind::GrantRevoke, json!({"grant_id": g1, "reason": "mine now"}), &bob).await;
    assert_eq!(error_code(&by_bob), "grant_not_found");
    let by_owner = app.request(Kind::GrantRevoke, json!({"grant_id": g1, "reason": "done"}), &alice).await;
    assert_eq!(ok(&by_owner)["grants"], json!([g1]));
    assert_eq!(ok(&by_owner)["accounts"], json!([ACCOUNT]));
    let by_admin = app.request(Kind::GrantRevoke, json!({"grant_id": g2, "reason": "audit finding"}), &admin).await;
    assert_eq!(ok(&by_admin)["grants"], json!([g2]));
    let listed = app.request(Kind::GrantList, json!({"include_revoked": true}), &alice).await;
    let revoked: Vec<&Value> =
        ok(&listed)["grants"].as_array().unwrap().iter().filter(|g| g.get("revoked").is_some()).collect();
    assert_eq!(revoked.len(), 2);
    assert_eq!(live_ids(&app.request(Kind::GrantList, json!({}), &alice).await), vec![g3.as_str().unwrap()]);
    // The revocations killed alice's live sessions: any session issued until five minutes from now (the
    // clock-skew allowance) would be denied too, so she is told when to ask again instead of being
    // handed credentials that do not work.
    let creds = app.request(Kind::CredentialsRequest, json!({"account": ACCOUNT}), &alice).await;
    assert_eq!(error_code(&creds), "access_revoked");
    assert!(error_message(&creds).contains("ask again after"), "{}", error_message(&creds));

    let not_admin = app.request(Kind::GrantRevokeAll, json!({"user": "alice", "reason": "x"}), &alice).await;
    assert_eq!(error_code(&not_admin), "forbidden");
    let all = app.request(Kind::GrantRevokeAll, json!({"user": "alice", "reason": "laptop stolen"}), &admin).await;
    assert_eq!(ok(&all)["grants"], json!([g3]));
    assert_eq!(
        error_code(&app.request(Kind::CredentialsRequest, json!({"account": ACCOUNT}), &alice).await),
        "no_grants"
    );
    assert!(denied(&app.revocation_policy().await).iter().any(|(u, _)| u == "alice"));
}

#[tokio::test]
async fn producers_send_only_what_they_may() {
    // A producer list without the emulator's sender: the HR event is refused and kept.
    let hr_elsewhere = "[[producers]]\nname = \"hr\"\nsender_ids = [\"AIDASOMEWHEREELSE\"]\nkinds = [\"user.*\"]\n";
    let app = spawn_app_with_directory("", hr_elsewhere).await;
    app.send_directory(Kind::UserOffboarded, json!({"user": "alice", "effective_at": Utc::now()})).await;
    let dead = app.dead_letters_in(&app.names.directory_dlq(), 1).await;
    assert_eq!(dead[0].1["portcullis.error_code"], "producer_forbidden");

    // A producer that may send grant requests for people, but not directory events, nor templates.
    let slack = format!(
        "[[producers]]\nname = \"slack\"\nsender_ids = [\"{MOTO_SENDER_ID}\"]\nkinds = [\"grant.*\", \"credentials.request\"]\non_behalf = true\n"
    );
    let app = spawn_app_with_directory("", &slack).await;
    let offboard = app.directory(Kind::UserOffboarded, json!({"user": "alice", "effective_at": Utc::now()})).await;
    assert_eq!(error_code(&offboard), "producer_forbidden");
    let template = app.request(Kind::TemplateList, json!({}), &app.admin_token()).await;
    assert_eq!(error_code(&template), "producer_forbidden");
    // Acting for alice: no token, and the grant records the producer.
    let mut for_alice = app.client.envelope(Kind::GrantList, json!({}), None);
    for_alice.on_behalf_of =
        Some(portcullis_domain::messages::OnBehalfOf { user: "alice".into(), team: None, groups: vec![] });
    app.client.send(&for_alice).await.unwrap();
    ok(&app.client.wait_reply(&for_alice.message_id, REPLY_TIMEOUT).await.unwrap());

    // A producer that may not act for people.
    let strict = format!("[[producers]]\nname = \"bot\"\nsender_ids = [\"{MOTO_SENDER_ID}\"]\nkinds = [\"grant.*\"]\n");
    let app = spawn_app_with("", &strict).await;
    let mut relayed = app.client.envelope(Kind::GrantList, json!({}), None);
    relayed.on_behalf_of =
        Some(portcullis_domain::messages::OnBehalfOf { user: "alice".into(), team: None, groups: vec![] });
    app.client.send(&relayed).await.unwrap();
    assert_eq!(
        error_code(&app.client.wait_reply(&relayed.message_id, REPLY_TIMEOUT).await.unwrap()),
        "producer_forbidden"
    );
    let dead = app.dead_letters(1).await;
    assert_eq!(dead[0].1["portcullis.error_code"], "producer_forbidden");
}

/// After a full run of grants, credentials, refusals (secrets pasted into reasons among them),
/// revocations and directory events: no secret key, session token or ID token in any log line, audit
/// event, dead-lettered message, reply or table item.
#[tokio::test]
async fn no_secret_in_any_log_event_or_dead_letter() {
    let app = spawn_app_with_directory("", &trusted_everything()).await;
    app.put_example_templates().await;
    let bus = app.capture_bus().await;
    let alice = app.token("alice", Some("payments"), &[]);
    app.grant_bucket(&alice, "one", 3600).await;
    let creds = app.request(Kind::CredentialsRequest, json!({"account": ACCOUNT}), &alice).await;
    let secret = ok(&creds)["credentials"]["SecretAccessKey"].as_str().unwrap().to_owned();
    let session = ok(&creds)["credentials"]["SessionToken"].as_str().unwrap().to_owned();
    // Refusals of every kind, some carrying the token or the issued secrets in a free-text field.
    let mut replies = Vec::new();
    replies.push(app.request(Kind::GrantRequest, grant("*"), &alice).await);
    replies.push(app.request(Kind::GrantList, json!({"note": alice}), &alice).await);
    for leaked in [&alice, &secret, &session] {
        let mut body = grant("one");
        body["reason"] = json!(format!("incident 42, see {leaked}"));
        let reply = app.request(Kind::GrantRequest, body, &alice).await;
        assert_eq!(error_code(&reply), "secret_in_request");
        replies.push(reply);
        let revoke = json!({"grant_id": "g-0123456789abcdef0123456789abcdef", "reason": leaked});
        replies.push(app.request(Kind::GrantRevoke, revoke, &alice).await);
    }
    app.client.send_raw(&format!("not json {alice}")).await.unwrap();
    replies.push(app.request(Kind::GrantRevokeAll, json!({"user": "alice", "reason": "r"}), &alice).await);
    app.directory(Kind::UserOffboarded, json!({"user": "alice", "effective_at": Utc::now()})).await;
    replies.push(app.request(Kind::GrantList, json!({}), &alice).await);

    let mut kept: Vec<String> =
        app.all_dead_letters(Duration::from_secs(3)).await.into_iter().map(|(b, a)| format!("{b} {a:?}")).collect();
    assert!(kept.len() >= 5, "{kept:?}");
    kept.extend(app.receive_all_json(&bus, Duration::from_secs(3)).await.iter().map(Value::to_string));
    kept.push(captured_logs());
    kept.extend(replies.iter().map(|r| serde_json::to_string(r).unwrap()));
    // Everything stored in the table.
    let items = app.dynamodb().scan().table_name(app.names.table()).send().await.unwrap();
    kept.extend(items.items().iter().map(|item| format!("{item:?}")));
    for text in &kept {
        for s in [&secret, &session, &alice] {
            assert!(!text.contains(s.as_str()), "a secret leaked: {text:.400}");
        }
        assert!(!contains_secret(text), "a JWT-shaped string leaked: {text:.400}");
    }
}
