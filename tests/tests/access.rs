//! The access pipeline end to end: real SQS messages to an in-process worker, against moto.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use portcullis_domain::MessageId;
use portcullis_domain::messages::Kind;
use portcullis_tests::portcullis_client::dev_issuer as dev;
use portcullis_tests::*;
use serde_json::{Value, json};

fn template_body(v: Value) -> Value {
    json!({ "template": v })
}

#[tokio::test]
async fn templates_put_get_list_delete_with_versions() {
    let app = spawn_app().await;
    let admin = app.admin_token();
    app.put_example_templates().await;

    // Putting an existing name makes a new version.
    let mut bucket: Value = serde_json::from_str(include_str!("../../examples/templates/bucketRead.json")).unwrap();
    bucket["description"] = json!("Read objects in one bucket (v2)");
    let put = app.request(Kind::TemplatePut, template_body(bucket), &admin).await;
    assert_eq!(ok(&put)["version"], 2);

    let latest = app.request(Kind::TemplateGet, json!({"name": "bucketRead"}), &admin).await;
    assert_eq!(ok(&latest)["template"]["version"], 2);
    assert_eq!(ok(&latest)["template"]["created_by"], "admin");
    let v1 = app.request(Kind::TemplateGet, json!({"name": "bucketRead", "version": 1}), &admin).await;
    assert_eq!(ok(&v1)["template"]["description"], "Read objects, and their versions, in one S3 bucket.");

    let list = app.request(Kind::TemplateList, json!({}), &admin).await;
    let names: Vec<&str> =
        ok(&list)["templates"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["bucketRead", "bucketWrite", "queueConsumer", "tableReader"]);

    let deleted = app.request(Kind::TemplateDelete, json!({"name": "queueConsumer"}), &admin).await;
    assert_eq!(ok(&deleted)["deleted"], true);
    let gone = app.request(Kind::TemplateGet, json!({"name": "queueConsumer"}), &admin).await;
    assert_eq!(error_code(&gone), "template_not_found");
    let list = app.request(Kind::TemplateList, json!({}), &admin).await;
    assert_eq!(ok(&list)["templates"].as_array().unwrap().len(), 3);
    let again = app.request(Kind::TemplateDelete, json!({"name": "queueConsumer"}), &admin).await;
    assert_eq!(error_code(&again), "template_not_found");

    // Grants record the version they used.
    let alice = app.token("alice", Some("payments"), &[]);
    let grant = app.grant_bucket(&alice, "reports", 600).await;
    assert_eq!(grant["template_version"], 2);
}

#[tokio::test]
async fn only_admins_change_templates_and_bad_templates_are_refused() {
    let app = spawn_app().await;
    let alice = app.token("alice", Some("payments"), &["engineers"]);
    let template: Value = serde_json::from_str(include_str!("../../examples/templates/bucketRead.json")).unwrap();
    let reply = app.request(Kind::TemplatePut, template_body(template.clone()), &alice).await;
    assert_eq!(error_code(&reply), "forbidden");

    let admin = app.admin_token();
    let mut undeclared = template.clone();
    undeclared["statements"][0]["Resource"] = json!("arn:aws:s3:::{{ bucketName }}/{{ prefix }}/*");
    let reply = app.request(Kind::TemplatePut, template_body(undeclared), &admin).await;
    assert_eq!(error_code(&reply), "template_invalid");
    assert!(error_message(&reply).contains("prefix"), "{}", error_message(&reply));

    let mut wide = template.clone();
    wide["statements"][0]["Action"] = json!(["s3:GetObject", "iam:PassRole"]);
    let reply = app.request(Kind::TemplatePut, template_body(wide), &admin).await;
    assert_eq!(error_code(&reply), "guardrail_violation");
    assert!(error_message(&reply).contains("iam:PassRole"), "{}", error_message(&reply));

    let missing = app.request(Kind::TemplateGet, json!({"name": "nope"}), &admin).await;
    assert_eq!(error_code(&missing), "template_not_found");

    // Every refusal is kept in the dead-letter queue with its code.
    let dead = app.dead_letters(4).await;
    let mut codes: Vec<&str> = dead.iter().map(|(_, a)| a["portcullis.error_code"].as_str()).collect();
    codes.sort();
    assert_eq!(codes, vec!["forbidden", "guardrail_violation", "template_invalid", "template_not_found"]);
}

#[tokio::test]
async fn grant_request_renders_and_stores_a_grant_with_ttl() {
    let app = spawn_app().await;
    app.put_example_templates().await;
    let alice = app.token("alice", Some("payments"), &["engineers"]);
    let before = Utc::now();
    let grant = app.grant_bucket(&alice, "analytics-reports", 1800).await;

    assert_eq!(grant["user"], "alice");
    assert_eq!(grant["team"], "payments");
    assert_eq!(grant["groups"], json!(["engineers"]));
    assert_eq!(grant["template"], "bucketRead");
    assert_eq!(grant["template_version"], 1);
    assert_eq!(grant["account"], ACCOUNT);
    assert_eq!(grant["reason"], "incident 42");
    assert_eq!(grant["params"], json!({"bucketName": "analytics-reports"}));
    assert_eq!(
        grant["statements"],
        json!([{"Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectVersion"], "Resource": "arn:aws:s3:::analytics-reports/*"}])
    );
    let expires: DateTime<Utc> = grant["expires_at"].as_str().unwrap().parse().unwrap();
    let lifetime = (expires - before).num_seconds();
    assert!((1795..=1830).contains(&lifetime), "lifetime {lifetime}");

    // Stored with the TTL attribute as epoch seconds: kept a week after it ended (`grant.list` with
    // include_ended shows how it ended).
    let items = app
        .dynamodb()
        .query()
        .table_name(app.names.table())
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S("GRANTS#alice".into()))
        .send()
        .await
        .unwrap()
        .items
        .unwrap();
    assert_eq!(items.len(), 1);
    let keep = expires.timestamp() + portcullis_domain::grant::GRANT_RETENTION_DAYS * 86_400;
    assert_eq!(items[0]["expires_at"].as_n().unwrap(), &keep.to_string());

    let list = app.request(Kind::GrantList, json!({}), &alice).await;
    assert_eq!(ok(&list)["grants"].as_array().unwrap().len(), 1);
    // Bob sees none of Alice's grants: the requester comes from the token only.
    let bob = app.token("bob", None, &[]);
    let list = app.request(Kind::GrantList, json!({}), &bob).await;
    assert_eq!(ok(&list)["grants"], json!([]));
}

#[tokio::test]
async fn grant_request_errors_have_stable_codes() {
    let app = spawn_app().await;
    app.put_example_templates().await;
    let admin = app.admin_token();
    let mut pinned: Value = serde_json::from_str(include_str!("../../examples/templates/bucketRead.json")).unwrap();
    pinned["name"] = json!("pinnedBucketRead");
    pinned["allowed_accounts"] = json!(["111111111111"]);
    ok(&app.request(Kind::TemplatePut, template_body(pinned), &admin).await);
    let any_action = json!({
        "name": "anyRead",
        "description": "Read with a chosen action",
        "parameters": [{"name": "action", "description": "an action", "pattern": "[a-z0-9]+:[A-Za-z]+"}],
        "statements": [{"Effect": "Allow", "Action": "{{ action }}", "Resource": "*"}],
        "max_ttl_seconds": 3600
    });
    ok(&app.request(Kind::TemplatePut, template_body(any_action), &admin).await);

    let alice = app.token("alice", Some("payments"), &[]);
    let grant = |template: &str, params: Value, account: &str, ttl: u64| json!({"template": template, "params": params, "account": account, "ttl": ttl, "reason": "testing"});
    let cases = [
        (grant("nope", json!({}), ACCOUNT, 600), "template_not_found", "nope"),
        (grant("bucketRead", json!({"bucketName": "Bad Bucket"}), ACCOUNT, 600), "param_invalid", "bucketName"),
        (grant("bucketRead", json!({"bucketName": "*"}), ACCOUNT, 600), "param_invalid", "bucketName"),
        (grant("bucketRead", json!({}), ACCOUNT, 600), "param_invalid", "bucketName"),
        (grant("bucketRead", json!({"bucketName": "ok-bucket", "extra": "x"}), ACCOUNT, 600), "param_invalid", "extra"),
        (grant("bucketRead", json!({"bucketName": "ok-bucket"}), ACCOUNT, 86_400), "ttl_too_long", "43200"),
        (
            grant("bucketRead", json!({"bucketName": "ok-bucket"}), "999999999999", 600),
            "account_unknown",
            "999999999999",
        ),
        (
            grant("pinnedBucketRead", json!({"bucketName": "ok-bucket"}), ACCOUNT, 600),
            "account_forbidden",
            "111111111111",
        ),
        (grant("anyRead", json!({"action": "iam:CreateUser"}), ACCOUNT, 600), "guardrail_violation", "iam:CreateUser"),
        (grant("bucketRead", json!({"bucketName": "ok-bucket"}), ACCOUNT, 10), "duration_invalid", "60"),
        (grant("bucketRead", json!({"bucketName": "ok-bucket"}), "12345", 600), "bad_request", "12-digit"),
        (grant(&"x".repeat(2000), json!({}), ACCOUNT, 600), "bad_request", "template name"),
        (json!({"template": "bucketRead", "account": ACCOUNT, "ttl": 600}), "bad_request", "reason"),
        (
            json!({"template": "bucketRead", "account": ACCOUNT, "ttl": 600, "reason": "x", "user": "root"}),
            "bad_request",
            "user",
        ),
    ];
    for (body, code, mentions) in cases {
        let reply = app.request(Kind::GrantRequest, body.clone(), &alice).await;
        assert_eq!(error_code(&reply), code, "{body}");
        let message = error_message(&reply);
        assert!(message.contains(mentions), "{code}: `{message}` should mention {mentions}");
    }
    let list = app.request(Kind::GrantList, json!({}), &alice).await;
    assert_eq!(ok(&list)["grants"], json!([]), "no refused request created a grant");
}

#[tokio::test]
async fn expired_grants_are_never_returned_or_used() {
    let app = spawn_app().await;
    app.put_example_templates().await;
    let alice = app.token("alice", None, &[]);
    let live = app.grant_bucket(&alice, "live-bucket", 900).await;

    // An expired grant DynamoDB has not deleted yet (TTL deletion is late).
    let mut expired = live.clone();
    expired["id"] = json!("g-expired");
    expired["params"] = json!({"bucketName": "old-bucket"});
    expired["statements"][0]["Resource"] = json!("arn:aws:s3:::old-bucket/*");
    expired["expires_at"] = json!((Utc::now() - chrono::Duration::minutes(5)).to_rfc3339());
    app.dynamodb()
        .put_item()
        .table_name(app.names.table())
        .item("pk", AttributeValue::S("GRANTS#alice".into()))
        .item("sk", AttributeValue::S(format!("GRANT#{ACCOUNT}#g-expired")))
        .item("doc", AttributeValue::S(expired.to_string()))
        .item("expires_at", AttributeValue::N((Utc::now().timestamp() - 300).to_string()))
        .send()
        .await
        .unwrap();

    let list = app.request(Kind::GrantList, json!({"account": ACCOUNT}), &alice).await;
    let ids: Vec<&str> = ok(&list)["grants"].as_array().unwrap().iter().map(|g| g["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![live["id"].as_str().unwrap()]);

    let creds = app.request(Kind::CredentialsRequest, json!({"account": ACCOUNT}), &alice).await;
    assert_eq!(ok(&creds)["grant_ids"], json!([live["id"]]));
}

#[tokio::test]
async fn credentials_are_issued_for_live_grants_and_work() {
    let app = spawn_app().await;
    app.put_example_templates().await;
    let alice = app.token("alice", Some("payments"), &[]);
    let g1 = app.grant_bucket(&alice, "reports", 1800).await;
    let g2 = app.grant_bucket(&alice, "exports", 3000).await;

    let reply = app.request(Kind::CredentialsRequest, json!({"account": ACCOUNT}), &alice).await;
    let result = ok(&reply);
    let creds = &result["credentials"];
    assert_eq!(creds["Version"], 1);
    for k in ["AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"] {
        assert!(creds[k].as_str().is_some_and(|s| !s.is_empty()), "{k} missing: {creds}");
    }
    assert_eq!(result["session_name"], "alice");
    assert_eq!(result["source_identity"], "alice");
    assert_eq!(result["role_arn"], format!("arn:aws:iam::{ACCOUNT}:role/{}-broker", app.names.prefix()));
    assert_eq!(result["grant_ids"], json!([g1["id"], g2["id"]]));
    assert!(result["packed_policy_size"].as_i64().is_some(), "{result}");
    let size = result["session_policy_size"].as_u64().unwrap();
    assert!(size > 100 && size <= 2048, "{size}");
    // Duration: until the latest grant expires, capped at the role's 3600 s.
    let expiration: DateTime<Utc> = creds["Expiration"].as_str().unwrap().parse().unwrap();
    let secs = (expiration - Utc::now()).num_seconds();
    assert!((2900..=3600).contains(&secs), "session of {secs}s");

    // The credentials are real: STS knows who they belong to.
    let who = aws_sdk_sts::Client::from_conf(
        aws_sdk_sts::config::Builder::from(&app.sdk)
            .credentials_provider(aws_sdk_sts::config::Credentials::new(
                creds["AccessKeyId"].as_str().unwrap(),
                creds["SecretAccessKey"].as_str().unwrap(),
                Some(creds["SessionToken"].as_str().unwrap().to_owned()),
                None,
                "portcullis",
            ))
            .build(),
    )
    .get_caller_identity()
    .send()
    .await
    .unwrap();
    assert_eq!(who.arn().unwrap(), format!("arn:aws:sts::{ACCOUNT}:assumed-role/{}-broker/alice", app.names.prefix()));

    // A shorter explicit duration is honoured.
    let reply = app.request(Kind::CredentialsRequest, json!({"account": ACCOUNT, "duration": 900}), &alice).await;
    let expiration: DateTime<Utc> = ok(&reply)["credentials"]["Expiration"].as_str().unwrap().parse().unwrap();
    assert!((expiration - Utc::now()).num_seconds() <= 900);

    let issued = app.metrics.find("portcullis_credentials_issued", &[("cloud.account.id", ACCOUNT)]);
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0].value, 2.0);
    let sizes = app.metrics.find("portcullis_session_policy_chars", &[]);
    assert_eq!(sizes[0].value, 2.0, "two policies recorded");
    assert_eq!(sizes[0].unit, "{char}");
    let packed = app.metrics.find("portcullis_packed_policy_size_percent", &[]);
    assert_eq!(packed[0].value, 2.0);
}

#[tokio::test]
async fn credentials_errors_have_stable_codes() {
    let app = spawn_app().await;
    app.put_example_templates().await;
    let alice = app.token("alice", None, &[]);

    let none = app.request(Kind::CredentialsRequest, json!({"account": ACCOUNT}), &alice).await;
    assert_eq!(error_code(&none), "no_grants");
    let unknown = app.request(Kind::CredentialsRequest, json!({"account": "999999999999"}), &alice).await;
    assert_eq!(error_code(&unknown), "account_unknown");

    app.grant_bucket(&alice, "reports", 900).await;
    let short = app.request(Kind::CredentialsRequest, json!({"account": ACCOUNT, "duration": 60}), &alice).await;
    assert_eq!(error_code(&short), "duration_invalid");

    // Enough distinct long grants no longer fit STS's 2,048 characters.
    let mut ids = Vec::new();
    for i in 0..14 {
        let g = app.grant_bucket(&alice, &format!("a-rather-long-bucket-name-for-policy-size-{i:02}"), 900).await;
        ids.push(g["id"].as_str().unwrap().to_owned());
    }
    let big = app.request(Kind::CredentialsRequest, json!({"account": ACCOUNT}), &alice).await;
    assert_eq!(error_code(&big), "policy_too_large");
    let message = error_message(&big);
    assert!(ids.iter().all(|id| message.contains(id)), "names every grant: {message}");
}

#[tokio::test]
async fn identity_comes_only_from_a_verified_token() {
    let app = spawn_app().await;
    app.put_example_templates().await;
    let list = json!({});

    let anonymous = app.client.envelope(Kind::GrantList, list.clone(), None);
    app.client.send(&anonymous).await.unwrap();
    let reply = app.client.wait_reply(&anonymous.message_id, REPLY_TIMEOUT).await.unwrap();
    assert_eq!(error_code(&reply), "unauthenticated");

    // Minted already expired (issued an hour ago for a minute): nothing to wait for.
    let expired = app.stack.token_issued_at(
        "alice",
        None,
        &[],
        Duration::from_secs(60),
        Some(Utc::now() - chrono::Duration::hours(1)),
    );
    let reply = app.request(Kind::GrantList, list.clone(), &expired).await;
    assert_eq!(error_code(&reply), "unauthenticated");
    assert!(error_message(&reply).contains("expired"));

    let stale = {
        let (pem, jwks) = (
            std::fs::read_to_string(app.issuer_dir().join("signing-key.pem")).unwrap(),
            serde_json::from_str::<Value>(&std::fs::read_to_string(app.issuer_dir().join("jwks.json")).unwrap())
                .unwrap(),
        );
        // Signed correctly but for another audience.
        dev::mint_with(
            &pem,
            &jwks,
            &dev::DevClaims {
                issuer: app.settings.identity.issuer.clone(),
                audience: "another-app".into(),
                user: "alice".into(),
                team: None,
                groups: vec![],
                ttl: Duration::from_secs(600),
                issued_at: None,
            },
        )
        .unwrap()
    };
    let reply = app.request(Kind::GrantList, list.clone(), &stale).await;
    assert_eq!(error_code(&reply), "unauthenticated");
    assert!(error_message(&reply).contains("audience"));

    // A token from another key claiming the issuer's key id.
    let (evil_pem, _) = dev::generate().unwrap();
    let jwks: Value =
        serde_json::from_str(&std::fs::read_to_string(app.issuer_dir().join("jwks.json")).unwrap()).unwrap();
    let forged = dev::mint_with(
        &evil_pem,
        &jwks,
        &dev::DevClaims {
            issuer: app.settings.identity.issuer.clone(),
            audience: app.settings.identity.audience.clone(),
            user: "admin".into(),
            team: None,
            groups: vec!["portcullis-admins".into()],
            ttl: Duration::from_secs(600),
            issued_at: None,
        },
    )
    .unwrap();
    let reply = app.request(Kind::TemplateDelete, json!({"name": "bucketRead"}), &forged).await;
    assert_eq!(error_code(&reply), "unauthenticated");
    let still_there = app.request(Kind::TemplateGet, json!({"name": "bucketRead"}), &app.admin_token()).await;
    ok(&still_there);
}

#[tokio::test]
async fn malformed_messages_are_answered_and_dead_lettered() {
    let app = spawn_app().await;
    let reply_to = app.client.reply_queue_url().to_owned();

    // Not JSON at all, no reply address: kept in the DLQ with the reason.
    app.client.send_raw("this is not json").await.unwrap();
    // Broken envelope that still names a reply address: answered, then kept.
    app.client
        .send_raw(&json!({"version": 1, "message_id": "m-broken", "reply_to": reply_to, "body": {}}).to_string())
        .await
        .unwrap();
    let reply = app.client.wait_reply(&MessageId::parse("m-broken").unwrap(), REPLY_TIMEOUT).await.unwrap();
    assert_eq!(error_code(&reply), "bad_request");
    // Unknown kind and unsupported version.
    let token = app.token("alice", None, &[]);
    let mut unknown = app.client.envelope(Kind::GrantList, json!({}), Some(&token));
    unknown.kind = "grant.steal".into();
    app.client.send(&unknown).await.unwrap();
    assert_eq!(error_code(&app.client.wait_reply(&unknown.message_id, REPLY_TIMEOUT).await.unwrap()), "unknown_kind");
    let mut v2 = app.client.envelope(Kind::GrantList, json!({}), Some(&token));
    v2.version = 2;
    app.client.send(&v2).await.unwrap();
    assert_eq!(error_code(&app.client.wait_reply(&v2.message_id, REPLY_TIMEOUT).await.unwrap()), "unsupported_version");

    // A reply address that is not an allowed reply queue gets nothing, and the request is kept.
    let other = app
        .sqs()
        .create_queue()
        .queue_name(format!("{}-not-a-reply-queue", app.names.prefix()))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let mut misdirected = app.client.envelope(Kind::GrantList, json!({}), Some(&token));
    misdirected.reply_to = Some(other.clone());
    app.client.send(&misdirected).await.unwrap();

    let dead = app.dead_letters(5).await;
    let by_code = |code: &str| dead.iter().filter(|(_, a)| a["portcullis.error_code"] == code).count();
    assert_eq!(by_code("bad_request"), 2);
    assert_eq!(by_code("unknown_kind"), 1);
    assert_eq!(by_code("unsupported_version"), 1);
    assert_eq!(by_code("reply_forbidden"), 1);
    let poison = dead.iter().find(|(b, _)| b == "this is not json").expect("the poison message is kept verbatim");
    assert!(poison.1["portcullis.error_reason"].contains("not a valid envelope"), "{:?}", poison.1);
    assert_eq!(poison.1["portcullis.source_queue"], app.names.access_queue());
    for (body, _) in &dead {
        assert!(!body.contains(&token), "no identity token is kept in the dead-letter queue: {body}");
    }
    assert!(dead.iter().any(|(b, _)| b.contains("[redacted]")), "{dead:?}");
    let stray = app.sqs().receive_message().queue_url(other).wait_time_seconds(1).send().await.unwrap();
    assert!(stray.messages.unwrap_or_default().is_empty(), "nothing was sent to a forbidden reply queue");

    // Nothing is left behind on the request queue.
    eventually(Duration::from_secs(10), "an empty request queue", || async {
        (app.access_queue_depth().await == 0).then_some(())
    })
    .await;
    let rejected = app.metrics.find("portcullis_messages_processed", &[("outcome", "rejected")]);
    assert_eq!(rejected.iter().map(|p| p.value).sum::<f64>(), 5.0, "{rejected:?}");
}

#[tokio::test]
async fn oversized_and_unlisted_senders_are_refused() {
    let app = spawn_app_with("max_message_bytes = 2000", "").await;
    let token = app.token("alice", None, &[]);
    let mut big = app.client.envelope(Kind::GrantList, json!({"padding": "x".repeat(3000)}), Some(&token));
    big.message_id = MessageId::parse("m-big").unwrap();
    app.client.send(&big).await.unwrap();
    let reply = app.client.wait_reply(&MessageId::parse("m-big").unwrap(), REPLY_TIMEOUT).await.unwrap();
    assert_eq!(error_code(&reply), "message_too_large");

    let strict = spawn_app_with("allowed_sender_ids = [\"AIDA-SOMEONE-ELSE\"]", "").await;
    let token = strict.token("alice", None, &[]);
    let env = strict.client.envelope(Kind::GrantList, json!({}), Some(&token));
    strict.client.send(&env).await.unwrap();
    let dead = strict.dead_letters(1).await;
    assert_eq!(dead[0].1["portcullis.error_code"], "sender_forbidden");
    let replies = strict.client.drain_replies(Duration::from_secs(2)).await.unwrap();
    assert!(replies.is_empty(), "an unlisted sender is never answered");
}

#[tokio::test]
async fn redelivered_requests_act_once_and_get_the_same_reply() {
    let app = spawn_app().await;
    app.put_example_templates().await;
    let alice = app.token("alice", None, &[]);
    let admin = app.admin_token();

    let request = app.client.envelope(
        Kind::GrantRequest,
        json!({"template": "bucketRead", "params": {"bucketName": "reports"}, "account": ACCOUNT, "ttl": 600, "reason": "r"}),
        Some(&alice),
    );
    app.client.send(&request).await.unwrap();
    app.client.send(&request).await.unwrap();
    let replies = app.client.drain_replies(Duration::from_secs(4)).await.unwrap();
    assert_eq!(replies.len(), 2, "each delivery is answered");
    let grant_ids: Vec<&Value> = replies.iter().map(|r| &ok(r)["grant"]["id"]).collect();
    assert_eq!(grant_ids[0], grant_ids[1], "the same grant both times");
    assert_eq!(replies[0].outcome, replies[1].outcome, "the same reply both times");
    let list = app.request(Kind::GrantList, json!({}), &alice).await;
    assert_eq!(ok(&list)["grants"].as_array().unwrap().len(), 1, "one grant, not two");

    // The same for a template version.
    let template: Value = serde_json::from_str(include_str!("../../examples/templates/tableReader.json")).unwrap();
    let put = app.client.envelope(Kind::TemplatePut, json!({"template": template}), Some(&admin));
    app.client.send(&put).await.unwrap();
    app.client.send(&put).await.unwrap();
    let replies = app.client.drain_replies(Duration::from_secs(4)).await.unwrap();
    assert_eq!(replies.len(), 2);
    assert!(replies.iter().all(|r| ok(r)["version"] == 2), "{replies:?}");
    let latest = app.request(Kind::TemplateGet, json!({"name": "tableReader"}), &admin).await;
    assert_eq!(ok(&latest)["template"]["version"], 2, "one new version, not two");

    // Reusing someone else's message id replays nothing of theirs.
    let mut stolen = request.clone();
    let mallory = app.token("mallory", None, &[]);
    stolen.identity_token = Some(mallory.clone());
    app.client.send(&stolen).await.unwrap();
    let theirs = eventually(Duration::from_secs(20), "mallory's own grant", || async {
        let list = app.request(Kind::GrantList, json!({}), &mallory).await;
        let grants = ok(&list)["grants"].as_array().unwrap().clone();
        (!grants.is_empty()).then_some(grants)
    })
    .await;
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0]["user"], "mallory");
    assert_ne!(theirs[0]["id"], *grant_ids[0]);

    // A grant request redelivered after its template was deleted still finds the grant it made.
    ok(&app.request(Kind::TemplateDelete, json!({"name": "bucketRead"}), &admin).await);
    app.client.drain_replies(Duration::from_secs(2)).await.unwrap(); // mallory's reply has the same in_reply_to
    app.client.send(&request).await.unwrap();
    // (wait_reply would skip it: the client has seen a reply to this message id already.)
    let replies = app.client.drain_replies(Duration::from_secs(4)).await.unwrap();
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(ok(&replies[0])["grant"]["id"], *grant_ids[0], "{replies:?}");
}

#[tokio::test]
async fn a_worker_that_dies_after_receiving_loses_nothing() {
    let mut app = spawn_app().await;
    app.put_example_templates().await;
    app.stop_worker().await;
    let alice = app.token("alice", None, &[]);
    let request = app.client.envelope(
        Kind::GrantRequest,
        json!({"template": "bucketRead", "params": {"bucketName": "reports"}, "account": ACCOUNT, "ttl": 600, "reason": "r"}),
        Some(&alice),
    );
    app.client.send(&request).await.unwrap();

    // A "worker" receives the message and dies before doing anything (never deletes it).
    let queue_url = app.client.request_queue_url().to_owned();
    let stolen = app
        .sqs()
        .receive_message()
        .queue_url(&queue_url)
        .visibility_timeout(2)
        .wait_time_seconds(5)
        .send()
        .await
        .unwrap();
    assert_eq!(stolen.messages.unwrap_or_default().len(), 1);

    // A new worker picks it up once the visibility timeout lapses.
    app.start_worker();
    let reply = app.client.wait_reply(&request.message_id, REPLY_TIMEOUT).await.unwrap();
    assert_eq!(ok(&reply)["grant"]["user"], "alice");
    eventually(Duration::from_secs(10), "an empty request queue", || async {
        (app.access_queue_depth().await == 0).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_dependency_that_keeps_failing_ends_in_unavailable() {
    let app = spawn_app().await;
    let token = app.token("alice", None, &[]);
    // The issuer's keys disappear: verification cannot happen, which is not the requester's fault.
    std::fs::remove_file(app.issuer_dir().join("jwks.json")).unwrap();
    let env = app.client.envelope(Kind::GrantList, json!({}), Some(&token));
    app.client.send(&env).await.unwrap();
    let reply = app.client.wait_reply(&env.message_id, Duration::from_secs(60)).await.unwrap();
    assert_eq!(error_code(&reply), "unavailable");
    let retries = app.metrics.find("portcullis_messages_processed", &[("outcome", "retry")]);
    assert_eq!(retries.iter().map(|p| p.value).sum::<f64>(), 2.0, "retried before giving up: {retries:?}");
    let dead = app.dead_letters(1).await;
    assert_eq!(dead[0].1["portcullis.error_code"], "unavailable");
}

#[tokio::test]
async fn pipeline_metrics_are_recorded_by_kind_and_outcome() {
    let app = spawn_app().await;
    app.put_example_templates().await;
    let alice = app.token("alice", None, &[]);
    app.grant_bucket(&alice, "reports", 600).await;
    let missing = app.request(Kind::TemplateGet, json!({"name": "nope"}), &alice).await;
    assert_eq!(error_code(&missing), "template_not_found");

    let processed = |kind: &str, outcome: &str| -> f64 {
        app.metrics
            .find("portcullis_messages_processed", &[("kind", kind), ("outcome", outcome)])
            .iter()
            .map(|p| p.value)
            .sum()
    };
    assert_eq!(processed("template.put", "ok"), 4.0);
    assert_eq!(processed("grant.request", "ok"), 1.0);
    assert_eq!(processed("template.get", "rejected"), 1.0);
    let failed =
        app.metrics.find("portcullis_messages_failed", &[("kind", "template.get"), ("code", "template_not_found")]);
    assert_eq!(failed.len(), 1);
    let received: f64 = app.metrics.find("portcullis_messages_received", &[]).iter().map(|p| p.value).sum();
    assert_eq!(received, 6.0, "four templates, a grant, a get");
    assert!(app.metrics.assert_declared() >= 5, "every metric exported is declared once");
    let durations = app.metrics.find("portcullis_handler_duration", &[("kind", "grant.request")]);
    assert_eq!(durations[0].unit, "s");
    assert_eq!(durations[0].kind, "histogram");
    assert_eq!(durations[0].value, 1.0);
    let grants =
        app.metrics.find("portcullis_grants_created", &[("cloud.account.id", ACCOUNT), ("template", "bucketRead")]);
    assert_eq!(grants[0].value, 1.0);
}
