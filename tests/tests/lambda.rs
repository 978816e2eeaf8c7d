//! The Lambda entry over the real access worker, on the emulator: messages sent to the access queue
//! are received the way an SQS event source mapping receives them, handed to the function as the
//! `Records` Lambda would deliver, and what the function reports decides what Lambda deletes.
//! A request is answered, a malformed message is answered (when it can be) and kept in the
//! dead-letter queue with its code, and neither is reported as a failure, exactly as on ECS.

use std::time::{Duration, SystemTime};

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName};
use portcullis_access::AccessHandler;
use portcullis_domain::MessageId;
use portcullis_domain::messages::Kind;
use portcullis_runtime::consumer::{ConsumerOptions, PipelineMetrics};
use portcullis_runtime::queue::SqsQueue;
use portcullis_tests::{REPLY_TIMEOUT, TestApp, error_code, ok, spawn_app};
use portcullis_worker::lambda::Function;
use serde_json::{Value, json};

/// Receive what is on `queue_url` as a Lambda SQS event: each message in the record shape Lambda
/// delivers (`messageId`, `receiptHandle`, `attributes` with `ApproximateReceiveCount` and
/// `SenderId`, `messageAttributes`, `eventSourceARN`, …).
async fn receive_as_lambda_event(sqs: &aws_sdk_sqs::Client, queue_url: &str, want: usize) -> Value {
    let arn = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("queue attributes")
        .attributes
        .expect("attributes")[&QueueAttributeName::QueueArn]
        .clone();
    let mut records = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while records.len() < want && std::time::Instant::now() < deadline {
        let got = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .visibility_timeout(60)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .expect("SQS answers");
        for m in got.messages.unwrap_or_default() {
            let attributes: serde_json::Map<String, Value> = m
                .attributes
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k.as_str().to_owned(), Value::from(v)))
                .collect();
            let message_attributes: serde_json::Map<String, Value> = m
                .message_attributes
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| {
                    let shape = json!({
                        "stringValue": v.string_value,
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": v.data_type,
                    });
                    (k, shape)
                })
                .collect();
            records.push(json!({
                "messageId": m.message_id,
                "receiptHandle": m.receipt_handle,
                "body": m.body,
                "attributes": attributes,
                "messageAttributes": message_attributes,
                "md5OfBody": m.md5_of_body,
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": "us-east-1",
            }));
        }
    }
    assert_eq!(records.len(), want, "received {} of {want} messages", records.len());
    json!({ "Records": records })
}

/// What Lambda does with the response: delete every record not reported as failed.
async fn delete_unreported(sqs: &aws_sdk_sqs::Client, queue_url: &str, event: &Value, response: &Value) {
    let failed: Vec<&str> = response["batchItemFailures"]
        .as_array()
        .expect("batchItemFailures")
        .iter()
        .filter_map(|f| f["itemIdentifier"].as_str())
        .collect();
    let entries: Vec<DeleteMessageBatchRequestEntry> = event["Records"]
        .as_array()
        .expect("records")
        .iter()
        .filter(|r| !failed.contains(&r["messageId"].as_str().unwrap_or_default()))
        .enumerate()
        .map(|(i, r)| {
            DeleteMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .receipt_handle(r["receiptHandle"].as_str().expect("receipt"))
                .build()
                .expect("entry")
        })
        .collect();
    if !entries.is_empty() {
        sqs.delete_message_batch().queue_url(queue_url).set_entries(Some(entries)).send().await.expect("deleted");
    }
}

/// A fresh stack whose access queue is read only by the Lambda function over the real access worker
/// (the consumer loop is stopped).
async fn access_function() -> (TestApp, Function<SqsQueue, AccessHandler>) {
    let mut app = spawn_app().await;
    app.stop_worker().await;
    let meter = app.metrics.meter();
    let (queue, handler) =
        portcullis_worker::app::access_worker(&app.settings, &app.sdk, &meter).await.expect("access worker");
    let function =
        Function::new(queue, handler, ConsumerOptions::from(&app.settings.worker), PipelineMetrics::new(&meter));
    (app, function)
}

#[tokio::test]
async fn a_lambda_batch_is_answered_and_refused_as_on_ecs() {
    let (app, function) = access_function().await;

    let token = app.token("alice", None, &[]);
    let list = app.client.envelope(Kind::TemplateList, json!({}), Some(&token));
    app.client.send(&list).await.expect("sent");
    let reply_to = app.client.reply_queue_url().to_owned();
    app.client
        .send_raw(&json!({"version": 1, "message_id": "m-broken", "reply_to": reply_to, "body": {}}).to_string())
        .await
        .expect("sent");
    app.client.send_raw("this is not json").await.expect("sent");

    let sqs = app.sqs();
    let queue_url = app.client.request_queue_url().to_owned();
    let event = receive_as_lambda_event(&sqs, &queue_url, 3).await;
    let response = function
        .invoke(event.clone(), SystemTime::now() + Duration::from_secs(30))
        .await
        .expect("the invocation succeeds");
    assert_eq!(response["batchItemFailures"], json!([]), "nothing is left for redelivery: {response}");
    delete_unreported(&sqs, &queue_url, &event, &response).await;

    // Answered: the request, and the broken envelope that names a reply address.
    ok(&app.client.wait_reply(&list.message_id, REPLY_TIMEOUT).await.expect("a reply"));
    let broken = app.client.wait_reply(&MessageId::parse("m-broken").expect("an id"), REPLY_TIMEOUT).await;
    assert_eq!(error_code(&broken.expect("a reply")), "bad_request");
    // Kept with their codes, and gone from the queue.
    let dead = app.dead_letters(2).await;
    assert!(
        dead.iter().all(|(_, a)| a.get("portcullis.error_code").map(String::as_str) == Some("bad_request")),
        "{dead:?}"
    );
    assert_eq!(app.access_queue_depth().await, 0, "Lambda deleted every record the function did not report");
}

#[tokio::test]
async fn a_lambda_record_from_another_queue_is_not_handled() {
    let (app, function) = access_function().await;
    let token = app.token("alice", None, &[]);
    app.client.send(&app.client.envelope(Kind::TemplateList, json!({}), Some(&token))).await.expect("sent");
    let sqs = app.sqs();
    let mut event = receive_as_lambda_event(&sqs, app.client.request_queue_url(), 1).await;
    event["Records"][0]["eventSourceARN"] = Value::from("arn:aws:sqs:us-east-1:123456789012:someone-elses-queue");
    let err = function.invoke(event, SystemTime::now() + Duration::from_secs(30)).await.expect_err("refused");
    assert!(err.to_string().contains("someone-elses-queue"), "{err}");
}
