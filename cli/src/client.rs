//! A client for the access pipeline: send a request envelope, wait for its reply.
//!
//! Two ways to get replies:
//! - [`AccessClient::on_own_queue`] (the `portcullis` command): the person's own reply queue,
//!   `<prefix>-reply-<sub>`, created once and shared by every `portcullis` process of that person.
//!   A process takes only the reply whose `in_reply_to` is its own request: another process's reply
//!   is made visible again at once (so concurrent commands do not steal each other's answers), and a
//!   reply older than [`STALE_REPLY`] (its requester gave up long ago) is deleted.
//! - [`AccessClient::connect`] (tests, tools): a private queue `<prefix>-reply-<random>`, created on
//!   connect and deleted by [`AccessClient::close`]; every reply on it is this client's.
//!
//! Replies are matched by `in_reply_to`; a duplicate reply (at-least-once delivery) is dropped.
//!
//! A `credentials.request` sent through [`AccessClient::request`] without a `reply_key` gets one: a
//! fresh X25519 key made for that request alone, whose secret never leaves this process; the reply's
//! `sealed_credentials` is opened with it (HPKE, [`portcullis_domain::sealed`]) and the credentials
//! put in the result as `credentials`, as if they had come in clear.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::QueueAttributeName;
use chrono::Utc;
use serde_json::Value;
use tokio::sync::Mutex;

use portcullis_domain::MessageId;
use portcullis_domain::messages::{ENVELOPE_VERSION, Envelope, Kind, Reply, ReplyOutcome};
use portcullis_domain::naming::StackNames;
use portcullis_domain::sealed::{ReplySecret, SealedBox, generate_reply_key, open_credentials};
use portcullis_runtime::aws::error_message;

/// A client failure (transport, not a refused request: those are replies).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("SQS {op} failed: {message}")]
    Sqs { op: &'static str, message: String },
    #[error("no reply to {message_id} within {timeout:?}; is `portcullis-worker access` running?")]
    Timeout { message_id: MessageId, timeout: Duration },
    #[error("the request could not be encoded: {0}")]
    Encode(String),
    #[error("the stack's request queue has no URL: {0}")]
    NoQueueUrl(String),
    #[error("the credentials reply could not be opened: {0}")]
    Sealed(String),
}

fn sqs_err<E: std::error::Error + 'static>(
    op: &'static str,
) -> impl FnOnce(aws_sdk_sqs::error::SdkError<E>) -> ClientError {
    move |e| ClientError::Sqs { op, message: error_message(&e) }
}

/// Sends requests and receives their replies.
#[derive(Debug)]
pub struct AccessClient {
    sqs: Client,
    request_queue_url: String,
    reply_queue_url: String,
    early: Mutex<HashMap<MessageId, Reply<Value>>>,
    seen: Mutex<std::collections::HashSet<MessageId>>,
    /// The reply queue is shared with other processes of the same person.
    shared: bool,
}

/// A reply on a shared queue older than this is nobody's any more.
pub const STALE_REPLY: Duration = Duration::from_secs(15 * 60);

impl AccessClient {
    /// Find the stack's request queue and create a private reply queue.
    pub async fn connect(sqs: Client, names: &StackNames) -> Result<Self, ClientError> {
        let request_queue_url = sqs
            .get_queue_url()
            .queue_name(names.access_queue())
            .send()
            .await
            .map_err(sqs_err("GetQueueUrl"))?
            .queue_url
            .ok_or_else(|| ClientError::NoQueueUrl(names.access_queue()))?;
        let reply_name = format!("{}{}", names.reply_queue_prefix(), &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let reply_queue_url = sqs
            .create_queue()
            .queue_name(&reply_name)
            .attributes(QueueAttributeName::MessageRetentionPeriod, "600")
            .attributes(QueueAttributeName::SqsManagedSseEnabled, "true")
            .send()
            .await
            .map_err(sqs_err("CreateQueue"))?
            .queue_url
            .ok_or_else(|| ClientError::NoQueueUrl(reply_name.clone()))?;
        Ok(Self {
            sqs,
            request_queue_url,
            reply_queue_url,
            early: Mutex::new(HashMap::new()),
            seen: Mutex::new(Default::default()),
            shared: false,
        })
    }

    /// A client on existing queues: the person's own reply queue, shared with their other
    /// processes (never deleted by this client).
    pub fn on_own_queue(sqs: Client, request_queue_url: String, reply_queue_url: String) -> Self {
        Self {
            sqs,
            request_queue_url,
            reply_queue_url,
            early: Mutex::new(HashMap::new()),
            seen: Mutex::new(Default::default()),
            shared: true,
        }
    }

    pub fn request_queue_url(&self) -> &str {
        &self.request_queue_url
    }

    pub fn reply_queue_url(&self) -> &str {
        &self.reply_queue_url
    }

    /// A new envelope for `kind`, replying to this client's queue.
    pub fn envelope(&self, kind: Kind, body: Value, token: Option<&str>) -> Envelope<Value> {
        Envelope {
            version: ENVELOPE_VERSION,
            message_id: new_message_id(),
            kind: kind.as_str().to_owned(),
            sent_at: Utc::now(),
            identity_token: token.map(str::to_owned),
            on_behalf_of: None,
            reply_to: Some(self.reply_queue_url.clone()),
            body,
        }
    }

    /// Put any text on the request queue.
    pub async fn send_raw(&self, body: &str) -> Result<(), ClientError> {
        self.sqs
            .send_message()
            .queue_url(&self.request_queue_url)
            .message_body(body)
            .send()
            .await
            .map_err(sqs_err("SendMessage"))?;
        Ok(())
    }

    pub async fn send(&self, envelope: &Envelope<Value>) -> Result<(), ClientError> {
        let text = serde_json::to_string(envelope).map_err(|e| ClientError::Encode(e.to_string()))?;
        self.send_raw(&text).await
    }

    /// Send a request and wait for its reply.
    pub async fn request(
        &self,
        kind: Kind,
        body: Value,
        token: Option<&str>,
        timeout: Duration,
    ) -> Result<Reply<Value>, ClientError> {
        let sealing = kind == Kind::CredentialsRequest && body.get("reply_key").is_none();
        if !sealing {
            let envelope = self.envelope(kind, body, token);
            self.send(&envelope).await?;
            return self.wait_reply(&envelope.message_id, timeout).await;
        }
        let (secret, key) = generate_reply_key();
        let mut body = body;
        body["reply_key"] = Value::String(key.encode());
        let envelope = self.envelope(kind, body, token);
        self.send(&envelope).await?;
        let mut reply = self.wait_reply(&envelope.message_id, timeout).await?;
        open_reply(&mut reply, &secret, &envelope)?;
        Ok(reply)
    }

    /// Wait for the reply to `message_id`.
    pub async fn wait_reply(&self, message_id: &MessageId, timeout: Duration) -> Result<Reply<Value>, ClientError> {
        if self.shared {
            return self.wait_own_reply(message_id, timeout).await;
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(reply) = self.early.lock().await.remove(message_id) {
                return Ok(reply);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ClientError::Timeout { message_id: message_id.clone(), timeout });
            }
            for reply in self.receive(left.min(Duration::from_secs(2))).await? {
                let Some(key) = reply.in_reply_to.clone() else { continue };
                if !self.seen.lock().await.insert(key.clone()) {
                    continue; // a duplicate reply
                }
                self.early.lock().await.insert(key, reply);
            }
        }
    }

    /// On a shared queue: take our reply, release the others', drop stale ones.
    async fn wait_own_reply(&self, message_id: &MessageId, timeout: Duration) -> Result<Reply<Value>, ClientError> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ClientError::Timeout { message_id: message_id.clone(), timeout });
            }
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.reply_queue_url)
                .max_number_of_messages(10)
                .visibility_timeout(5)
                .wait_time_seconds(i32::try_from(left.as_secs().clamp(1, 20)).unwrap_or(1))
                .send()
                .await
                .map_err(sqs_err("ReceiveMessage"))?;
            let mut mine = None;
            let mut released = false;
            for m in out.messages.unwrap_or_default() {
                let Some(receipt) = m.receipt_handle else { continue };
                let reply = m.body.as_deref().and_then(|b| serde_json::from_str::<Reply<Value>>(b).ok());
                let ours = reply.as_ref().is_some_and(|r| r.in_reply_to.as_ref() == Some(message_id));
                let stale = reply.as_ref().is_none_or(|r| {
                    Utc::now().signed_duration_since(r.sent_at).to_std().is_ok_and(|age| age > STALE_REPLY)
                });
                if ours || stale {
                    self.sqs
                        .delete_message()
                        .queue_url(&self.reply_queue_url)
                        .receipt_handle(receipt)
                        .send()
                        .await
                        .map_err(sqs_err("DeleteMessage"))?;
                    if ours && mine.is_none() {
                        mine = reply;
                    }
                } else {
                    // Another command's reply: visible again at once for the process waiting on it.
                    released = true;
                    let _ = self
                        .sqs
                        .change_message_visibility()
                        .queue_url(&self.reply_queue_url)
                        .receipt_handle(receipt)
                        .visibility_timeout(0)
                        .send()
                        .await;
                }
            }
            if let Some(reply) = mine {
                return Ok(reply);
            }
            if released {
                // Only others' replies came back: give their processes a moment to take them.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    /// Every reply that arrives within `window`, duplicates included (for tests and diagnostics).
    pub async fn drain_replies(&self, window: Duration) -> Result<Vec<Reply<Value>>, ClientError> {
        let deadline = Instant::now() + window;
        let mut out: Vec<Reply<Value>> = self.early.lock().await.drain().map(|(_, r)| r).collect();
        while Instant::now() < deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            out.extend(self.receive(left.min(Duration::from_secs(1))).await?);
        }
        Ok(out)
    }

    async fn receive(&self, wait: Duration) -> Result<Vec<Reply<Value>>, ClientError> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(&self.reply_queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(i32::try_from(wait.as_secs().max(1)).unwrap_or(1).min(20))
            .send()
            .await
            .map_err(sqs_err("ReceiveMessage"))?;
        let mut replies = Vec::new();
        for m in out.messages.unwrap_or_default() {
            if let Some(body) = m.body.as_deref() {
                match serde_json::from_str::<Reply<Value>>(body) {
                    Ok(r) => replies.push(r),
                    Err(e) => tracing::warn!(error = %e, "unreadable reply dropped"),
                }
            }
            if let Some(receipt) = m.receipt_handle {
                self.sqs
                    .delete_message()
                    .queue_url(&self.reply_queue_url)
                    .receipt_handle(receipt)
                    .send()
                    .await
                    .map_err(sqs_err("DeleteMessage"))?;
            }
        }
        Ok(replies)
    }

    /// Delete the reply queue.
    pub async fn close(self) -> Result<(), ClientError> {
        self.sqs.delete_queue().queue_url(&self.reply_queue_url).send().await.map_err(sqs_err("DeleteQueue"))?;
        Ok(())
    }
}

/// A fresh message id (a UUID, which is always a valid one).
/// Open the `sealed_credentials` of a successful credentials reply into `credentials`.
fn open_reply(reply: &mut Reply<Value>, secret: &ReplySecret, request: &Envelope<Value>) -> Result<(), ClientError> {
    let ReplyOutcome::Ok { result } = &mut reply.outcome else { return Ok(()) };
    let sealed: SealedBox = serde_json::from_value(result.get("sealed_credentials").cloned().unwrap_or(Value::Null))
        .map_err(|e| ClientError::Sealed(format!("the reply has no usable sealed_credentials: {e}")))?;
    let account = request.body.get("account").and_then(Value::as_str).unwrap_or_default();
    let opened = open_credentials(secret, request.message_id.as_str(), account, &sealed)
        .map_err(|e| ClientError::Sealed(e.to_string()))?;
    let credentials: Value = serde_json::from_slice(&opened)
        .map_err(|e| ClientError::Sealed(format!("the opened credentials are not JSON: {e}")))?;
    result["credentials"] = credentials;
    Ok(())
}

pub fn new_message_id() -> MessageId {
    MessageId::parse(&uuid::Uuid::new_v4().to_string()).expect("a UUID is a valid message id")
}
