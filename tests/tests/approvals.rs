//! The second person and sealed credentials, through real queues against the emulator: approvals
//! (self-approval and non-approvers refused, one approver counted once, the TTL from activation,
//! pending grants lapsing), break glass (announced, reviewed, counted until then), and credentials
//! that only the requester's key opens, checked with an independent HPKE implementation (pyhpke).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use portcullis_domain::messages::{Kind, ReplyOutcome};
use portcullis_domain::sealed::{SealedBox, generate_reply_key, open_credentials};
use portcullis_tests::*;
use serde_json::{Value, json};

fn write_request(bucket: &str, ttl: u64, break_glass: bool) -> Value {
    json!({"template": "bucketWrite", "params": {"bucketName": bucket}, "account": ACCOUNT, "ttl": ttl,
           "reason": "INC-7: repair the nightly export", "break_glass": break_glass})
}

fn at(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

/// Open `sealed` with tests/hpke/open.py (pyhpke in the emulator's venv): the plaintext, or the
/// script's complaint.
fn open_with_pyhpke(secret: &[u8; 32], message_id: &str, account: &str, sealed: &Value) -> Result<Vec<u8>, String> {
    let python = workspace_root().join(".venv/bin/python");
    assert!(python.exists(), "{} is missing: run `make venv` (it installs pyhpke)", python.display());
    let mut child = Command::new(python)
        .arg(workspace_root().join("tests/hpke/open.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let input = json!({
        "secret": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret),
        "message_id": message_id, "account": account, "sealed": sealed,
    });
    child.stdin.take().unwrap().write_all(input.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    match out.status.success() {
        true => Ok(out.stdout),
        false => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
    }
}

#[tokio::test]
async fn a_second_person_approves_and_the_credentials_open_only_with_the_requesters_key() {
    let app = spawn_app().await;
    app.put_example_templates().await;
    let bus = app.capture_bus().await;
    let alice = app.token("alice", Some("payments"), &["portcullis-approvers"]);
    let bob = app.token("bob", Some("security"), &["portcullis-approvers"]);
    let eve = app.token("eve", Some("payments"), &["engineers"]);

    let requested = app.request(Kind::GrantRequest, write_request("exports", 1200, false), &alice).await;
    let grant = ok(&requested)["grant"].clone();
    assert_eq!(grant["status"], "pending");
    let id = grant["id"].clone();
    assert_eq!(
        error_code(&app.request(Kind::CredentialsRequest, json!({"account": ACCOUNT}), &alice).await),
        "no_grants"
    );

    // Not by herself, though she is an approver; not by someone outside the approver groups.
    let approve = json!({"grant_id": id});
    assert_eq!(error_code(&app.request(Kind::GrantApprove, approve.clone(), &alice).await), "approval_forbidden");
    assert_eq!(error_code(&app.request(Kind::GrantApprove, approve.clone(), &eve).await), "approval_forbidden");
    // bob sees it waiting and approves it; his approval activates it (the template needs one), and
    // the lifetime counts from then.
    let waiting = app.request(Kind::GrantPending, json!({}), &bob).await;
    assert_eq!(ok(&waiting)["approvals"][0]["id"], id);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let approved = app.request(Kind::GrantApprove, approve.clone(), &bob).await;
    let active = ok(&approved)["grant"].clone();
    assert_eq!(active["status"], "active");
    let activated = at(&active["approval"]["activated_at"]);
    assert_eq!(at(&active["expires_at"]), activated + chrono::Duration::seconds(1200));
    assert!(activated >= at(&grant["created_at"]) + chrono::Duration::seconds(2));
    // Approving again changes nothing and counts once.
    let again = app.request(Kind::GrantApprove, approve.clone(), &bob).await;
    assert_eq!(error_code(&again), "grant_not_pending");
    assert_eq!(ok(&app.request(Kind::GrantPending, json!({}), &bob).await)["approvals"], json!([]));

    // Credentials, sealed to a key made for this request: the reply holds nothing usable without it.
    let (secret, key) = generate_reply_key();
    let request = app.client.envelope(
        Kind::CredentialsRequest,
        json!({"account": ACCOUNT, "reply_key": key.encode()}),
        Some(&alice),
    );
    app.client.send(&request).await.unwrap();
    let reply = app.client.wait_reply(&request.message_id, REPLY_TIMEOUT).await.unwrap();
    let ReplyOutcome::Ok { result } = &reply.outcome else { panic!("{reply:?}") };
    assert!(result.get("credentials").is_none(), "never in clear: {result}");
    let sealed_json = result["sealed_credentials"].clone();
    let sealed: SealedBox = serde_json::from_value(sealed_json.clone()).unwrap();
    let ours = open_credentials(&secret, request.message_id.as_str(), ACCOUNT, &sealed).unwrap();
    let credentials: Value = serde_json::from_slice(&ours).unwrap();
    assert!(credentials["AccessKeyId"].as_str().unwrap().starts_with("ASIA"), "{credentials}");
    let reply_text = serde_json::to_string(&reply).unwrap();
    for secret_part in ["SecretAccessKey", "SessionToken"] {
        assert!(!reply_text.contains(credentials[secret_part].as_str().unwrap()), "{secret_part} travelled in clear");
    }
    // An independent HPKE implementation opens it the same way, and only with the right key and context.
    let theirs = open_with_pyhpke(secret.as_bytes(), request.message_id.as_str(), ACCOUNT, &sealed_json).unwrap();
    assert_eq!(theirs, ours.as_slice());
    let (other, _) = generate_reply_key();
    assert!(open_with_pyhpke(other.as_bytes(), request.message_id.as_str(), ACCOUNT, &sealed_json).is_err());
    assert!(open_with_pyhpke(secret.as_bytes(), "another-request", ACCOUNT, &sealed_json).is_err());
    assert!(open_credentials(&other, request.message_id.as_str(), ACCOUNT, &sealed).is_err());
    // The session policy holds the approved grant.
    let session =
        app.client.request(Kind::CredentialsRequest, json!({"account": ACCOUNT}), Some(&alice), REPLY_TIMEOUT);
    assert_eq!(ok(&session.await.unwrap())["grant_ids"], json!([id]));

    let events = app.receive_all_json(&bus, Duration::from_secs(3)).await;
    let types: Vec<&str> = events.iter().map(|e| e["detail-type"].as_str().unwrap()).collect();
    for t in ["Grant Pending Approval", "Grant Approved", "Grant Activated", "Credentials Issued"] {
        assert!(types.contains(&t), "{t} in {types:?}");
    }
    let pending = events.iter().find(|e| e["detail-type"] == "Grant Pending Approval").unwrap();
    assert_eq!(pending["detail"]["approver_groups"], json!(["portcullis-approvers"]));
    let issued = events.iter().find(|e| e["detail-type"] == "Credentials Issued").unwrap();
    assert_eq!(issued["detail"]["sealed"], true);
    app.metrics.assert_declared();
}

#[tokio::test]
async fn credentials_without_a_key_are_refused_and_kept_with_their_code() {
    let app = spawn_app().await;
    app.put_example_templates().await;
    let alice = app.token("alice", Some("payments"), &[]);
    app.grant_bucket(&alice, "reports", 600).await;
    let bare = app.client.envelope(Kind::CredentialsRequest, json!({"account": ACCOUNT}), Some(&alice));
    app.client.send(&bare).await.unwrap();
    let reply = app.client.wait_reply(&bare.message_id, REPLY_TIMEOUT).await.unwrap();
    assert_eq!(error_code(&reply), "reply_key_required");
    let bad = app.request(Kind::CredentialsRequest, json!({"account": ACCOUNT, "reply_key": "A".repeat(43)}), &alice);
    assert_eq!(error_code(&bad.await), "reply_key_invalid");
    let dead = app.dead_letters(2).await;
    let mut codes: Vec<&str> = dead.iter().map(|(_, a)| a["portcullis.error_code"].as_str()).collect();
    codes.sort_unstable();
    assert_eq!(codes, ["reply_key_invalid", "reply_key_required"], "in any order");
    assert!(dead.iter().all(|(body, _)| !body.contains("eyJ")), "no token in a dead letter");
}

#[tokio::test]
async fn a_pending_grant_lapses_a_denied_one_stays_denied() {
    let app = spawn_app_with("pending_ttl_seconds = 2", "").await;
    app.put_example_templates().await;
    let alice = app.token("alice", Some("payments"), &[]);
    let bob = app.token("bob", Some("security"), &["portcullis-approvers"]);
    let lapsing =
        ok(&app.request(Kind::GrantRequest, write_request("one", 600, false), &alice).await)["grant"]["id"].clone();
    let denied =
        ok(&app.request(Kind::GrantRequest, write_request("two", 600, false), &alice).await)["grant"]["id"].clone();
    let deny = app.request(Kind::GrantDeny, json!({"grant_id": denied, "reason": "use the replica"}), &bob).await;
    assert_eq!(ok(&deny)["grant"]["status"], "denied");
    assert_eq!(
        error_code(&app.request(Kind::GrantApprove, json!({"grant_id": denied}), &bob).await),
        "grant_not_pending"
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        error_code(&app.request(Kind::GrantApprove, json!({"grant_id": lapsing}), &bob).await),
        "grant_not_pending"
    );
    assert_eq!(ok(&app.request(Kind::GrantPending, json!({}), &bob).await)["approvals"], json!([]));
    let listed = app.request(Kind::GrantList, json!({"include_ended": true}), &alice).await;
    let mut statuses: Vec<(String, String)> = ok(&listed)["grants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["params"]["bucketName"].as_str().unwrap().to_owned(), g["status"].as_str().unwrap().to_owned()))
        .collect();
    statuses.sort();
    assert_eq!(statuses, [("one".into(), "expired".into()), ("two".into(), "denied".into())]);
    assert_eq!(
        error_code(&app.request(Kind::CredentialsRequest, json!({"account": ACCOUNT}), &alice).await),
        "no_grants"
    );
}

#[tokio::test]
async fn break_glass_is_active_at_once_announced_and_reviewed() {
    let app = spawn_app().await;
    app.put_example_templates().await;
    let bus = app.capture_bus().await;
    let alice = app.token("alice", Some("payments"), &[]);
    let bob = app.token("bob", Some("security"), &["portcullis-approvers"]);
    let glass = app.request(Kind::GrantRequest, write_request("exports", 900, true), &alice).await;
    let grant = ok(&glass)["grant"].clone();
    assert_eq!(grant["status"], "active");
    assert!(at(&grant["break_glass"]["review_due"]) > Utc::now() + chrono::Duration::hours(23));
    let creds = app.request(Kind::CredentialsRequest, json!({"account": ACCOUNT}), &alice).await;
    assert_eq!(ok(&creds)["grant_ids"], json!([grant["id"]]));
    // Not every template allows it.
    let read = json!({"template": "bucketRead", "params": {"bucketName": "x1"}, "account": ACCOUNT, "ttl": 600,
                      "reason": "r", "break_glass": true});
    assert_eq!(error_code(&app.request(Kind::GrantRequest, read, &alice).await), "break_glass_forbidden");
    // The review is owed to the approvers, not to alice.
    let owed = app.request(Kind::GrantPending, json!({}), &bob).await;
    assert_eq!(ok(&owed)["reviews"][0]["id"], grant["id"]);
    let review = json!({"grant_id": grant["id"], "verdict": "justified", "note": "SEV1 confirmed in the incident log"});
    assert_eq!(error_code(&app.request(Kind::GrantReview, review.clone(), &alice).await), "approval_forbidden");
    let reviewed = app.request(Kind::GrantReview, review.clone(), &bob).await;
    assert_eq!(ok(&reviewed)["grant"]["break_glass"]["review"]["by"], "bob");
    assert_eq!(ok(&reviewed)["grant"]["status"], "active", "a justified use keeps its access");
    assert_eq!(ok(&app.request(Kind::GrantPending, json!({}), &bob).await)["reviews"], json!([]));
    assert_eq!(error_code(&app.request(Kind::GrantReview, review, &bob).await), "review_not_needed");

    let events = app.receive_all_json(&bus, Duration::from_secs(3)).await;
    let used = events.iter().find(|e| e["detail-type"] == "Break Glass Used").expect("Break Glass Used");
    assert_eq!(used["detail"]["reason"], "INC-7: repair the nightly export");
    let review = events.iter().find(|e| e["detail-type"] == "Break Glass Reviewed").expect("Break Glass Reviewed");
    assert_eq!(
        (review["detail"]["verdict"].clone(), review["detail"]["overdue"].clone()),
        (json!("justified"), json!(false))
    );
}
