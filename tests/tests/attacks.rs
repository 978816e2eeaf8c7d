//! What an outside attack run found, each through real queues against the emulator: Portcullis
//! granted to itself, hostile input that crashed the worker, dead letters without a code or with a
//! token in clear, a reused message id acting twice, unbounded token times, unknown actions.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use chrono::Utc;
use portcullis_domain::MessageId;
use portcullis_domain::messages::Kind;
use portcullis_domain::redact::contains_secret;
use portcullis_tests::portcullis_client::dev_issuer as dev;
use portcullis_tests::*;
use serde_json::{Value, json};

fn example(name: &str) -> Value {
    let path = format!("{}/../examples/templates/{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Finding 1: the shipped templates cannot reach the stack's own table or queues, and the broker
/// role's ceiling denies them too.
#[tokio::test]
async fn portcullis_can_never_be_granted_to_itself() {
    let app = spawn_app().await;
    app.put_example_templates().await;
    let alice = app.token("alice", Some("payments"), &[]);
    let prefix = app.names.prefix().to_owned();
    let grant = |template: &str, params: Value| json!({"template": template, "params": params, "account": ACCOUNT, "ttl": 600, "reason": "attack"});
    for (template, params, own) in [
        (
            "tableReader",
            json!({"region": "us-east-1", "account": ACCOUNT, "tableName": format!("{prefix}-state")}),
            format!("{prefix}-state"),
        ),
        (
            "queueConsumer",
            json!({"region": "us-east-1", "account": ACCOUNT, "queueName": app.names.access_queue()}),
            app.names.access_queue(),
        ),
        (
            "queueConsumer",
            json!({"region": "us-east-1", "account": ACCOUNT, "queueName": app.names.access_dlq()}),
            app.names.access_dlq(),
        ),
    ] {
        let reply = app.request(Kind::GrantRequest, grant(template, params), &alice).await;
        assert_eq!(error_code(&reply), "guardrail_violation", "{template}");
        assert!(error_message(&reply).contains(&own), "{}", error_message(&reply));
    }
    let fine = app
        .request(
            Kind::GrantRequest,
            grant("tableReader", json!({"region": "us-east-1", "account": ACCOUNT, "tableName": "orders"})),
            &alice,
        )
        .await;
    ok(&fine);

    // The ceiling: the broker role's inline policy denies the stack's own resources whatever a
    // session policy allows.
    let policy = aws_sdk_iam::Client::new(&app.sdk)
        .get_role_policy()
        .role_name(format!("{prefix}-broker"))
        .policy_name("BrokerCeiling")
        .send()
        .await
        .unwrap()
        .policy_document;
    let doc = policy_document(&policy);
    let deny =
        doc["Statement"].as_array().unwrap().iter().find(|s| s["Sid"] == "NeverPortcullisItself").expect("the deny");
    assert_eq!(deny["Effect"], "Deny");
    let resources: Vec<&str> = deny["Resource"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    for own in app.names.own_resources() {
        let (service_and_type, name) = own.rsplit_once(':').unwrap();
        let service = service_and_type.split(':').nth(2).unwrap();
        assert!(
            resources.iter().any(|r| r.contains(&format!(":{service}:")) && r.ends_with(name)),
            "the ceiling denies {own}: {resources:?}"
        );
    }
}

/// Finding 2: hostile sizes and shapes are refused with a code, and the worker keeps answering.
#[tokio::test]
async fn hostile_input_never_crashes_the_worker() {
    let app = spawn_app().await;
    let admin = app.admin_token();
    let alice = app.token("alice", None, &[]);
    // A reply address with a 100,000-character queue name.
    let mut long_reply = app.client.envelope(Kind::GrantList, json!({}), Some(&alice));
    long_reply.reply_to = Some(format!("{}-reply-{}", app.client.reply_queue_url(), "a".repeat(100_000)));
    app.client.send(&long_reply).await.unwrap();
    // A template with a 100,000-character literal action.
    let mut huge = example("bucketRead");
    huge["statements"][0]["Action"] = json!(format!("s3:{}", "Get*".repeat(25_000)));
    let reply = app.request(Kind::TemplatePut, json!({"template": huge}), &admin).await;
    assert_eq!(error_code(&reply), "template_invalid");
    // A template that renders a huge action from a repeated parameter.
    let repeated = json!({"name": "repeat", "description": "d",
        "parameters": [{"name": "a", "description": "d", "pattern": "[A-Za-z*]{1,256}", "allow_wildcards": true}],
        "statements": [{"Effect": "Allow", "Action": format!("s3:{}", "{{ a }}".repeat(1000)), "Resource": "*"}],
        "max_ttl_seconds": 3600});
    ok(&app.request(Kind::TemplatePut, json!({"template": repeated}), &admin).await);
    let reply = app
        .request(
            Kind::GrantRequest,
            json!({"template": "repeat", "params": {"a": "Get*".repeat(64)}, "account": ACCOUNT, "ttl": 600, "reason": "r"}),
            &alice,
        )
        .await;
    assert_eq!(error_code(&reply), "template_invalid");
    // Deeply nested JSON.
    app.client.send_raw(&format!("{}{}", "[".repeat(50_000), "]".repeat(50_000))).await.unwrap();

    // Still alive and answering.
    ok(&app.request(Kind::TemplateList, json!({}), &alice).await);
    let dead = app.dead_letters(4).await;
    let mut codes: Vec<&str> = dead.iter().map(|(_, a)| a["portcullis.error_code"].as_str()).collect();
    codes.sort();
    assert_eq!(codes, vec!["bad_request", "reply_forbidden", "template_invalid", "template_invalid"]);
}

/// Finding 3: a reply that cannot be delivered, a FIFO or encoded reply address, malformed or
/// deeply nested JSON, and tokens in unexpected places: every dead letter carries a code and no
/// token, anywhere.
#[tokio::test]
async fn dead_letters_always_carry_a_code_and_never_a_token() {
    let mut app = spawn_app().await;
    app.put_example_templates().await;
    let alice = app.token("alice", Some("payments"), &[]);
    let sqs = app.sqs();

    // The reply queue is deleted (as the CLI did on timeout) before the worker answers.
    app.stop_worker().await;
    let gone = sqs.create_queue().queue_name(format!("{}-reply-gone", app.names.prefix())).send().await.unwrap();
    let gone_url = gone.queue_url.unwrap();
    let mut orphan = app.client.envelope(
        Kind::GrantRequest,
        json!({"template": "bucketRead", "params": {"bucketName": "reports"}, "account": ACCOUNT, "ttl": 600, "reason": "r"}),
        Some(&alice),
    );
    orphan.reply_to = Some(gone_url.clone());
    app.client.send(&orphan).await.unwrap();
    sqs.delete_queue().queue_url(&gone_url).send().await.unwrap();
    app.start_worker();

    // A FIFO reply queue and an encoded name.
    let base = app.client.reply_queue_url().rsplit_once('/').unwrap().0.to_owned();
    for name in [format!("{}-reply-x.fifo", app.names.prefix()), format!("{}-reply-%61", app.names.prefix())] {
        let mut odd = app.client.envelope(Kind::GrantList, json!({}), Some(&alice));
        odd.reply_to = Some(format!("{base}/{name}"));
        app.client.send(&odd).await.unwrap();
    }
    // Malformed JSON with a token in it; a token in another field; a token nested deep.
    app.client
        .send_raw(&format!(r#"{{"version": 1, "identity_token": "{alice}", "kind": "grant.list", "body": "#))
        .await
        .unwrap();
    let mut elsewhere = app.client.envelope(Kind::GrantList, json!({"note": alice}), None);
    elsewhere.message_id = MessageId::parse("m-elsewhere").unwrap();
    app.client.send(&elsewhere).await.unwrap();
    app.client.send_raw(&format!("{}\"{alice}\"{}", "[".repeat(200), "]".repeat(200))).await.unwrap();

    // Six coded dead letters, and nothing else arrives there (no raw redrive).
    let mut dead = app.dead_letters(6).await;
    dead.extend(app.all_dead_letters(Duration::from_secs(3)).await);
    assert_eq!(dead.len(), 6, "{dead:?}");
    let codes: Vec<&str> =
        dead.iter().map(|(_, a)| a.get("portcullis.error_code").map_or("<none>", String::as_str)).collect();
    for code in ["reply_undeliverable", "reply_forbidden", "bad_request"] {
        assert!(codes.contains(&code), "{code} in {codes:?}");
    }
    for (body, attrs) in &dead {
        assert!(attrs.contains_key("portcullis.error_code"), "every dead letter has a code: {body:.200}");
        assert!(!body.contains(&alice) && !contains_secret(body), "no token in a dead letter: {body:.300}");
        for value in attrs.values() {
            assert!(!contains_secret(value), "no token in an attribute: {value:.300}");
        }
    }
    // The orphaned request was handled: its grant exists, and re-sending it to a working queue
    // replays the recorded reply.
    let mut again = orphan.clone();
    again.reply_to = Some(app.client.reply_queue_url().to_owned());
    app.client.send(&again).await.unwrap();
    let reply = app.client.wait_reply(&orphan.message_id, REPLY_TIMEOUT).await.unwrap();
    assert_eq!(ok(&reply)["grant"]["user"], "alice");
}

/// Finding 5: a reused message id with another kind or body is refused and acts once.
#[tokio::test]
async fn a_reused_message_id_with_another_body_is_refused() {
    let app = spawn_app().await;
    app.put_example_templates().await;
    let alice = app.token("alice", None, &[]);
    let admin = app.admin_token();
    let grant = |account: &str| json!({"template": "bucketRead", "params": {"bucketName": "reports"}, "account": account, "ttl": 600, "reason": "r"});
    let first = app.client.envelope(Kind::GrantRequest, grant(ACCOUNT), Some(&alice));
    app.client.send(&first).await.unwrap();
    ok(&app.client.wait_reply(&first.message_id, REPLY_TIMEOUT).await.unwrap());
    let mut reused = first.clone();
    reused.body = json!({"template": "bucketRead", "params": {"bucketName": "reports"}, "account": ACCOUNT, "ttl": 900, "reason": "r"});
    app.client.send(&reused).await.unwrap();
    let replies = app.client.drain_replies(Duration::from_secs(3)).await.unwrap();
    assert_eq!(replies.len(), 1);
    assert_eq!(error_code(&replies[0]), "message_id_reused");
    assert_eq!(ok(&app.request(Kind::GrantList, json!({}), &alice).await)["grants"].as_array().unwrap().len(), 1);

    let put = app.client.envelope(Kind::TemplatePut, json!({"template": example("tableReader")}), Some(&admin));
    app.client.send(&put).await.unwrap();
    ok(&app.client.wait_reply(&put.message_id, REPLY_TIMEOUT).await.unwrap());
    let mut delete = app.client.envelope(Kind::TemplateDelete, json!({"name": "tableReader"}), Some(&admin));
    delete.message_id = put.message_id.clone();
    app.client.send(&delete).await.unwrap();
    let replies = app.client.drain_replies(Duration::from_secs(3)).await.unwrap();
    assert_eq!(error_code(&replies[0]), "message_id_reused");
    ok(&app.request(Kind::TemplateGet, json!({"name": "tableReader"}), &admin).await);
}

/// Finding 6: tokens issued in the future, valid for ten years, or for extra audiences without
/// `azp` are refused.
#[tokio::test]
async fn unbounded_token_times_and_extra_audiences_are_refused() {
    let app = spawn_app().await;
    let (pem, jwks) = dev::load(app.issuer_dir()).unwrap();
    let now = Utc::now().timestamp();
    let claims = |extra: Value| {
        let mut c = json!({"iss": app.settings.identity.issuer, "aud": app.settings.identity.audience, "sub": "alice",
                           "iat": now, "exp": now + 300});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        dev::sign_with(&pem, &jwks, &c).unwrap()
    };
    for (token, why) in [
        (claims(json!({"iat": now + 3600, "exp": now + 7200})), "issued in the future"),
        (claims(json!({"exp": now + 10 * 365 * 86_400})), "longer than"),
        (claims(json!({"aud": [app.settings.identity.audience, "someone-else"]})), "other audiences"),
    ] {
        let reply = app.request(Kind::GrantList, json!({}), &token).await;
        assert_eq!(error_code(&reply), "unauthenticated");
        assert!(error_message(&reply).contains(why), "{}", error_message(&reply));
    }
    let with_azp =
        claims(json!({"aud": [app.settings.identity.audience, "someone-else"], "azp": app.settings.identity.audience}));
    ok(&app.request(Kind::GrantList, json!({}), &with_azp).await);
}

/// Finding 7: actions are judged by meaning: an action must exist in the IAM catalog.
#[tokio::test]
async fn unknown_actions_are_refused_naming_them() {
    let app = spawn_app().await;
    let mut typo = example("bucketRead");
    typo["statements"][0]["Action"] = json!(["s3:GetObject", "s3:GetObjekt"]);
    let reply = app.request(Kind::TemplatePut, json!({"template": typo}), &app.admin_token()).await;
    assert_eq!(error_code(&reply), "action_unknown");
    assert!(error_message(&reply).contains("s3:GetObjekt"), "{}", error_message(&reply));
}
