//! The operator's dead-letter tools against real SQS (moto): inspect shows every dead letter with its
//! code and no secret and leaves the queue as it was; redrive moves exactly the chosen ones back.

use std::collections::HashMap;

use portcullis_domain::ErrorCode;
use portcullis_runtime::queue::{DeadLetters, NO_CODE, Queue, ReceivedMessage, RedriveFilter, SqsQueue};
use portcullis_tests::{Moto, random_prefix, sdk_config};

const JWT: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXNlY3JldA";

async fn queue_pair(sqs: &aws_sdk_sqs::Client, prefix: &str) -> (String, String) {
    let dlq = sqs
        .create_queue()
        .queue_name(format!("{prefix}-dlq"))
        .send()
        .await
        .expect("queue created")
        .queue_url
        .expect("a queue URL");
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("queue attributes")
        .attributes
        .expect("attributes")[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    let source = sqs
        .create_queue()
        .queue_name(format!("{prefix}-src"))
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy,
            format!(r#"{{"deadLetterTargetArn":"{arn}","maxReceiveCount":"3"}}"#),
        )
        .send()
        .await
        .expect("queue created")
        .queue_url
        .expect("a queue URL");
    (source, dlq)
}

fn kept(id: &str, body: &str) -> ReceivedMessage {
    ReceivedMessage {
        message_id: id.into(),
        receipt_handle: "unused".into(),
        body: body.into(),
        receive_count: 1,
        sender_id: None,
        attributes: HashMap::new(),
    }
}

async fn bodies_in(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        let got = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("SQS answers")
            .messages
            .unwrap_or_default();
        if got.is_empty() {
            return out;
        }
        out.extend(got.into_iter().filter_map(|m| m.body));
    }
}

#[tokio::test]
async fn inspect_lists_dead_letters_without_secrets_and_redrive_moves_only_the_chosen_ones() {
    let moto = Moto::start();
    let sdk = sdk_config(&moto.endpoint).await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let prefix = random_prefix();
    let (source_url, dlq_url) = queue_pair(&sqs, &prefix).await;
    let source = SqsQueue::connect(sqs.clone(), &format!("{prefix}-src")).await.unwrap();
    // Two kept by the consumer with codes (bodies already redacted as the consumer keeps them, but a
    // reason and a raw body carrying a token too), one moved verbatim by the redrive policy.
    source
        .dead_letter(&kept("src-1", r#"{"kind":"grant.request","n":1}"#), ErrorCode::BadRequest, "not valid")
        .await
        .unwrap();
    source
        .dead_letter(
            &kept("src-2", r#"{"kind":"grant.request","n":2}"#),
            ErrorCode::Unauthenticated,
            &format!("token {JWT} expired"),
        )
        .await
        .unwrap();
    sqs.send_message()
        .queue_url(&dlq_url)
        .message_body(format!(r#"{{"identity_token":"{JWT}","n":3}}"#))
        .send()
        .await
        .unwrap();

    let dead = DeadLetters::connect(sqs.clone(), &format!("{prefix}-src")).await.unwrap();
    let letters = dead.inspect().await.unwrap();
    assert_eq!(letters.len(), 3, "{letters:?}");
    let mut codes: Vec<&str> = letters.iter().map(|l| l.code_or_none()).collect();
    codes.sort();
    assert_eq!(codes, ["bad_request", NO_CODE, "unauthenticated"]);
    let shown = serde_json::to_string(&letters).unwrap();
    assert!(!shown.contains("c2lnbmF0dXJl"), "no secret shown: {shown}");
    assert!(letters.iter().any(|l| l.source_message_id.as_deref() == Some("src-2")));
    // Inspecting left every message there, visible at once.
    assert_eq!(dead.inspect().await.unwrap().len(), 3, "inspect is repeatable");

    let report =
        dead.redrive(&RedriveFilter { codes: vec!["bad_request".into(), NO_CODE.into()], ids: vec![] }).await.unwrap();
    assert_eq!((report.moved.len(), report.kept), (2, 1));
    // Moved back as kept: the policy-moved message with its original body, for its handler to read.
    let back = bodies_in(&sqs, &source_url).await;
    assert_eq!(back.len(), 2, "{back:?}");
    assert!(back.iter().any(|b| b.contains(r#""n":1"#)) && back.iter().any(|b| b.contains(r#""n":3"#)), "{back:?}");
    let left = dead.inspect().await.unwrap();
    assert_eq!(left.iter().map(|l| l.code_or_none()).collect::<Vec<_>>(), ["unauthenticated"]);

    // By id (the source's message id), then nothing is left.
    let report = dead.redrive(&RedriveFilter { codes: vec![], ids: vec!["src-2".into()] }).await.unwrap();
    assert_eq!((report.moved.len(), report.kept), (1, 0));
    assert!(dead.inspect().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_queue_without_a_dead_letter_queue_is_a_clear_error() {
    let moto = Moto::start();
    let sdk = sdk_config(&moto.endpoint).await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let name = format!("{}-plain", random_prefix());
    sqs.create_queue().queue_name(&name).send().await.unwrap();
    let err = DeadLetters::connect(sqs, &name).await.unwrap_err();
    assert!(err.to_string().contains("no redrive policy"), "{err}");
}
