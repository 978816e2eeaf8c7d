//! The client: send a request envelope on the queue its kind belongs on, wait for the reply whose
//! `in_reply_to` is its `message_id`, and read it.
//!
//! Two kinds of reply queue:
//! - **shared** ([`AccessClient::on_own_queue`], [`AccessClient::for_producer`]): a person's own
//!   `<prefix>-reply-<sub>`, or a producer's queue, read by every process of that person or every
//!   replica of that producer. A process takes only its own reply: another's is made visible again
//!   at once (so concurrent commands do not steal each other's answers), and one older than
//!   [`STALE_REPLY`] (its requester gave up long ago), or that is not a reply at all, is deleted.
//! - **private** ([`AccessClient::connect`]; tests, tools): `<prefix>-reply-<random>`, created on
//!   connect and deleted by [`AccessClient::close`]; every reply on it is this client's, and a
//!   duplicate (at-least-once delivery) is dropped.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::QueueAttributeName;
use chrono::Utc;
use portcullis_domain::MessageId;
use portcullis_domain::messages::{ENVELOPE_VERSION, Envelope, Kind, KindRequest, OnBehalfOf, QueueRole, Reply};
use portcullis_domain::naming::StackNames;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::answer::{self, Head};
use crate::error::{AskError, AwsError, ClientError, sqs};
use crate::sealing;

/// A reply on a shared queue older than this is nobody's any more.
pub const STALE_REPLY: Duration = Duration::from_secs(15 * 60);
/// How long [`AccessClient::ask`] waits for a reply unless told otherwise.
pub const DEFAULT_REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// Who a request is from.
#[derive(Clone, PartialEq)]
pub enum Auth {
    /// A person, by an OIDC ID token from the configured issuer (the `portcullis` command).
    IdToken(String),
    /// A trusted producer relaying for a person (a chat bot): configured with `on_behalf = true`
    /// under `[[producers]]` and recognised by the SQS `SenderId` of its own AWS credentials.
    OnBehalfOf(OnBehalfOf),
    /// A trusted producer speaking for itself, recognised by its `SenderId` alone (the HR system's
    /// directory events).
    Producer,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::IdToken(_) => f.write_str("IdToken(<redacted>)"),
            Auth::OnBehalfOf(who) => f.debug_tuple("OnBehalfOf").field(who).finish(),
            Auth::Producer => f.write_str("Producer"),
        }
    }
}

impl Auth {
    /// `Some(token)` is a person's ID token, `None` a producer speaking for itself.
    pub fn from_token(token: Option<&str>) -> Self {
        token.map_or(Auth::Producer, |t| Auth::IdToken(t.to_owned()))
    }
}

/// The stack's request queues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestQueues {
    /// `<prefix>-access-requests`.
    pub access: String,
    /// `<prefix>-directory-events`, for producers that send directory kinds.
    pub directory: Option<String>,
}

impl RequestQueues {
    fn for_kind(&self, kind: Kind) -> Result<&str, ClientError> {
        match kind.queue() {
            QueueRole::Access => Ok(&self.access),
            QueueRole::Directory => self.directory.as_deref().ok_or(ClientError::NoQueueFor { kind: kind.as_str() }),
        }
    }
}

#[derive(Debug)]
enum ReplyQueue {
    /// Every reply is ours: kept by `in_reply_to` until asked for.
    Private { early: Mutex<HashMap<MessageId, Value>>, seen: Mutex<HashSet<MessageId>> },
    /// Shared with other processes: take ours, leave theirs.
    Shared,
}

/// Sends requests and receives their replies.
#[derive(Debug)]
pub struct AccessClient {
    sqs: Client,
    queues: RequestQueues,
    reply_queue_url: String,
    reply_queue: ReplyQueue,
    reply_timeout: Duration,
}

impl AccessClient {
    /// Find the stack's request queues and create a private reply queue (tests, tools).
    pub async fn connect(sqs: Client, names: &StackNames) -> Result<Self, ClientError> {
        let queues = RequestQueues {
            access: queue_url(&sqs, &names.access_queue()).await?,
            directory: Some(queue_url(&sqs, &names.directory_queue()).await?),
        };
        let reply_name = format!("{}{}", names.reply_queue_prefix(), &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let reply_queue_url = create_reply_queue(&sqs, &reply_name, 600).await?;
        let reply_queue = ReplyQueue::Private { early: Mutex::default(), seen: Mutex::default() };
        Ok(Self { sqs, queues, reply_queue_url, reply_queue, reply_timeout: DEFAULT_REPLY_TIMEOUT })
    }

    /// A person's client on existing queues: their own reply queue, shared with their other
    /// processes and never deleted by this client (see [`crate::requester`] for finding both).
    pub fn on_own_queue(sqs: Client, request_queue_url: String, reply_queue_url: String) -> Self {
        let queues = RequestQueues { access: request_queue_url, directory: None };
        Self::shared(sqs, queues, reply_queue_url)
    }

    /// A client on the given queues whose reply queue is shared (see the module documentation).
    pub fn shared(sqs: Client, queues: RequestQueues, reply_queue_url: String) -> Self {
        Self { sqs, queues, reply_queue_url, reply_queue: ReplyQueue::Shared, reply_timeout: DEFAULT_REPLY_TIMEOUT }
    }

    /// How long [`Self::ask`] waits for each reply.
    pub fn with_reply_timeout(mut self, timeout: Duration) -> Self {
        self.reply_timeout = timeout;
        self
    }

    pub fn request_queue_url(&self) -> &str {
        &self.queues.access
    }

    pub fn request_queues(&self) -> &RequestQueues {
        &self.queues
    }

    pub fn reply_queue_url(&self) -> &str {
        &self.reply_queue_url
    }

    /// Send `body` as its kind and wait for the typed result, or the refusal.
    pub async fn ask<B: KindRequest>(&self, auth: &Auth, body: &B) -> Result<B::Result, AskError> {
        self.ask_with_id(auth, body, new_message_id()).await
    }

    /// [`Self::ask`] with a `message_id` the caller chose: the workers act once per (requester,
    /// message id), so a client that derives the id from what caused the request (a chat bot: the
    /// click, the slash command's trigger) makes a repeat of that cause act once.
    pub async fn ask_with_id<B: KindRequest>(
        &self,
        auth: &Auth,
        body: &B,
        message_id: MessageId,
    ) -> Result<B::Result, AskError> {
        let body = serde_json::to_value(body).map_err(|e| ClientError::Encode(e.to_string()))?;
        let reply = self.exchange_as(B::KIND, body, auth, self.reply_timeout, Some(message_id)).await?;
        answer::decode(B::KIND, reply)
    }

    /// A new envelope for `kind`, replying to this client's queue; `token` is a person's ID token
    /// (`None`: a producer speaking for itself).
    pub fn envelope(&self, kind: Kind, body: Value, token: Option<&str>) -> Envelope<Value> {
        self.envelope_as(kind, body, &Auth::from_token(token))
    }

    /// A new envelope for `kind` from `auth`, replying to this client's queue.
    pub fn envelope_as(&self, kind: Kind, body: Value, auth: &Auth) -> Envelope<Value> {
        let (identity_token, on_behalf_of) = match auth {
            Auth::IdToken(token) => (Some(token.clone()), None),
            Auth::OnBehalfOf(who) => (None, Some(who.clone())),
            Auth::Producer => (None, None),
        };
        Envelope {
            version: ENVELOPE_VERSION,
            message_id: new_message_id(),
            kind: kind.as_str().to_owned(),
            sent_at: Utc::now(),
            identity_token,
            on_behalf_of,
            reply_to: Some(self.reply_queue_url.clone()),
            body,
        }
    }

    /// Put any text on the access-requests queue (tests of what the worker does with it).
    pub async fn send_raw(&self, body: &str) -> Result<(), ClientError> {
        self.send_text(&self.queues.access, body).await
    }

    /// Send an envelope on the queue its kind belongs on (an unknown kind: the access queue).
    pub async fn send(&self, envelope: &Envelope<Value>) -> Result<(), ClientError> {
        let queue = match Kind::parse(&envelope.kind) {
            Ok(kind) => self.queues.for_kind(kind)?,
            Err(_) => &self.queues.access,
        };
        let text = serde_json::to_string(envelope).map_err(|e| ClientError::Encode(e.to_string()))?;
        self.send_text(queue, &text).await
    }

    async fn send_text(&self, queue_url: &str, body: &str) -> Result<(), ClientError> {
        self.sqs.send_message().queue_url(queue_url).message_body(body).send().await.map_err(sqs("SendMessage"))?;
        Ok(())
    }

    /// Send a request and wait for its reply, untyped (tests and tools that send what the contract
    /// does not allow). A `credentials.request` without a `reply_key` gets one, and its credentials
    /// are opened into `result.credentials`, as with [`Self::ask`].
    pub async fn request(
        &self,
        kind: Kind,
        body: Value,
        token: Option<&str>,
        timeout: Duration,
    ) -> Result<Reply<Value>, ClientError> {
        let reply = self.exchange(kind, body, &Auth::from_token(token), timeout).await?;
        answer::untyped(kind.as_str(), reply)
    }

    /// Send, wait for the reply, and open sealed credentials in it: the reply as JSON.
    async fn exchange(&self, kind: Kind, body: Value, auth: &Auth, timeout: Duration) -> Result<Value, ClientError> {
        self.exchange_as(kind, body, auth, timeout, None).await
    }

    /// [`Self::exchange`] with the caller's `message_id`, if any.
    async fn exchange_as(
        &self,
        kind: Kind,
        mut body: Value,
        auth: &Auth,
        timeout: Duration,
        message_id: Option<MessageId>,
    ) -> Result<Value, ClientError> {
        let secret = sealing::prepare(kind, &mut body);
        let mut envelope = self.envelope_as(kind, body, auth);
        if let Some(id) = message_id {
            envelope.message_id = id;
        }
        self.send(&envelope).await?;
        let mut reply = self.wait_raw(&envelope.message_id, timeout).await?;
        if let Some(secret) = secret {
            let account = envelope.body.get("account").and_then(Value::as_str).unwrap_or_default();
            sealing::open_reply(&mut reply, &secret, &envelope.message_id, account)?;
        }
        Ok(reply)
    }

    /// Wait for the reply to `message_id`, untyped.
    pub async fn wait_reply(&self, message_id: &MessageId, timeout: Duration) -> Result<Reply<Value>, ClientError> {
        let reply = self.wait_raw(message_id, timeout).await?;
        let kind = reply.get("kind").and_then(Value::as_str).unwrap_or("unknown").to_owned();
        answer::untyped(&kind, reply)
    }

    async fn wait_raw(&self, message_id: &MessageId, timeout: Duration) -> Result<Value, ClientError> {
        match &self.reply_queue {
            ReplyQueue::Shared => self.wait_own_reply(message_id, timeout).await,
            ReplyQueue::Private { early, seen } => {
                let deadline = Instant::now() + timeout;
                loop {
                    if let Some(reply) = early.lock().await.remove(message_id) {
                        return Ok(reply);
                    }
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(ClientError::Timeout { message_id: message_id.clone(), timeout });
                    }
                    for reply in self.receive(left.min(Duration::from_secs(2))).await? {
                        let Some(key) = Head::of(&reply).and_then(|h| h.in_reply_to) else { continue };
                        if !seen.lock().await.insert(key.clone()) {
                            continue; // a duplicate reply
                        }
                        early.lock().await.insert(key, reply);
                    }
                }
            }
        }
    }

    /// On a shared queue: take our reply, release the others', drop stale ones and non-replies.
    async fn wait_own_reply(&self, message_id: &MessageId, timeout: Duration) -> Result<Value, ClientError> {
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
                .map_err(sqs("ReceiveMessage"))?;
            let mut mine = None;
            let mut released = false;
            for m in out.messages.unwrap_or_default() {
                let Some(receipt) = m.receipt_handle else { continue };
                let reply = m.body.as_deref().and_then(|b| serde_json::from_str::<Value>(b).ok());
                let head = reply.as_ref().and_then(Head::of);
                let ours = head.as_ref().is_some_and(|h| h.in_reply_to.as_ref() == Some(message_id));
                let stale = head.as_ref().and_then(|h| h.sent_at).is_none_or(|sent| {
                    Utc::now().signed_duration_since(sent).to_std().is_ok_and(|age| age > STALE_REPLY)
                });
                if ours || stale {
                    self.sqs
                        .delete_message()
                        .queue_url(&self.reply_queue_url)
                        .receipt_handle(receipt)
                        .send()
                        .await
                        .map_err(sqs("DeleteMessage"))?;
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

    /// Every reply that arrives within `window`, duplicates included (tests and diagnostics; private
    /// reply queues only). Messages that are not replies are dropped.
    pub async fn drain_replies(&self, window: Duration) -> Result<Vec<Reply<Value>>, ClientError> {
        let deadline = Instant::now() + window;
        let mut raw: Vec<Value> = match &self.reply_queue {
            ReplyQueue::Private { early, .. } => early.lock().await.drain().map(|(_, r)| r).collect(),
            ReplyQueue::Shared => Vec::new(),
        };
        while Instant::now() < deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            raw.extend(self.receive(left.min(Duration::from_secs(1))).await?);
        }
        Ok(raw
            .into_iter()
            .filter_map(|r| {
                serde_json::from_value::<Reply<Value>>(r)
                    .inspect_err(|e| tracing::warn!(error = %e, "unreadable reply dropped"))
                    .ok()
            })
            .collect())
    }

    /// Receive and delete what is on the reply queue (private queues).
    async fn receive(&self, wait: Duration) -> Result<Vec<Value>, ClientError> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(&self.reply_queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(i32::try_from(wait.as_secs().max(1)).unwrap_or(1).min(20))
            .send()
            .await
            .map_err(sqs("ReceiveMessage"))?;
        let mut replies = Vec::new();
        for m in out.messages.unwrap_or_default() {
            if let Some(body) = m.body.as_deref() {
                match serde_json::from_str::<Value>(body) {
                    Ok(r) => replies.push(r),
                    Err(e) => tracing::warn!(error = %e, "a reply that is not JSON dropped"),
                }
            }
            if let Some(receipt) = m.receipt_handle {
                self.sqs
                    .delete_message()
                    .queue_url(&self.reply_queue_url)
                    .receipt_handle(receipt)
                    .send()
                    .await
                    .map_err(sqs("DeleteMessage"))?;
            }
        }
        Ok(replies)
    }

    /// Delete the reply queue (private queues; a shared one is kept for its other readers).
    pub async fn close(self) -> Result<(), ClientError> {
        if let ReplyQueue::Shared = self.reply_queue {
            return Ok(());
        }
        self.sqs.delete_queue().queue_url(&self.reply_queue_url).send().await.map_err(sqs("DeleteQueue"))?;
        Ok(())
    }
}

/// The URL of the queue `name` (in the caller's account).
pub(crate) async fn queue_url(sqs: &Client, name: &str) -> Result<String, ClientError> {
    sqs.get_queue_url()
        .queue_name(name)
        .send()
        .await
        .map_err(crate::error::sqs("GetQueueUrl"))?
        .queue_url
        .ok_or_else(|| ClientError::NoQueueUrl(name.to_owned()))
}

/// Create the reply queue `name`, or find it: the same attributes every time make `CreateQueue`
/// idempotent. Replies are encrypted at rest (SSE-SQS) and kept `retention_seconds`.
pub(crate) async fn create_reply_queue(sqs: &Client, name: &str, retention_seconds: u32) -> Result<String, AwsError> {
    sqs.create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::MessageRetentionPeriod, retention_seconds.to_string())
        .attributes(QueueAttributeName::SqsManagedSseEnabled, "true")
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("SQS", "CreateQueue", &e))?
        .queue_url
        .ok_or_else(|| AwsError::missing("SQS", "CreateQueue", "queue URL"))
}

/// A fresh message id (a UUID, which is always a valid one).
pub fn new_message_id() -> MessageId {
    MessageId::parse(&uuid::Uuid::new_v4().to_string()).expect("a UUID is a valid message id")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::{Arc, Mutex as StdMutex};

    use aws_sdk_sqs::operation::receive_message::ReceiveMessageOutput;
    use aws_sdk_sqs::types::Message;
    use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
    use portcullis_domain::messages::{CredentialsRequest, CredentialsResult, GrantList, GrantListResult, ReplyStamp};
    use portcullis_domain::sealed::{ReplyKey, seal_credentials};
    use portcullis_domain::{AccountId, ErrorCode, RequestError};
    use serde_json::json;

    use super::*;
    use crate::error::{Refusal, RefusalCode};

    fn message(receipt: &str, body: &str) -> Message {
        Message::builder().receipt_handle(receipt).body(body).build()
    }

    fn reply_text(in_reply_to: &str, sent_at: chrono::DateTime<Utc>, kind: &str, result: Value) -> String {
        let stamp = ReplyStamp { message_id: "r".into(), sent_at };
        serde_json::to_string(&Reply::ok(stamp, Some(MessageId::parse(in_reply_to).unwrap()), kind, result)).unwrap()
    }

    fn deletes(receipt: &'static str) -> Rule {
        mock!(aws_sdk_sqs::Client::delete_message)
            .match_requests(move |r| r.receipt_handle() == Some(receipt))
            .then_output(|| aws_sdk_sqs::operation::delete_message::DeleteMessageOutput::builder().build())
    }

    #[tokio::test]
    async fn on_a_shared_queue_a_process_takes_its_reply_and_leaves_the_others() {
        let now = Utc::now();
        let ours = reply_text("m-ours", now, "grant.list", json!({"grants": []}));
        let theirs = reply_text("m-theirs", now, "grant.list", json!({"grants": []}));
        let stale = reply_text("m-old", now - chrono::TimeDelta::hours(1), "grant.list", json!({"grants": []}));
        let receive = mock!(aws_sdk_sqs::Client::receive_message).then_output(move || {
            ReceiveMessageOutput::builder()
                .messages(message("h-theirs", &theirs))
                .messages(message("h-stale", &stale))
                .messages(message("h-garbage", "not a reply"))
                .messages(message("h-ours", &ours))
                .build()
        });
        let (delete_ours, delete_stale, delete_garbage, delete_theirs) =
            (deletes("h-ours"), deletes("h-stale"), deletes("h-garbage"), deletes("h-theirs"));
        let release = mock!(aws_sdk_sqs::Client::change_message_visibility)
            .match_requests(|r| r.receipt_handle() == Some("h-theirs") && r.visibility_timeout() == Some(0))
            .then_output(|| {
                aws_sdk_sqs::operation::change_message_visibility::ChangeMessageVisibilityOutput::builder().build()
            });
        let sqs = mock_client!(
            aws_sdk_sqs,
            RuleMode::MatchAny,
            [&receive, &delete_ours, &delete_stale, &delete_garbage, &delete_theirs, &release]
        );
        let client = AccessClient::on_own_queue(sqs, "https://q/requests".into(), "https://q/reply-alice".into());
        let reply = client.wait_raw(&MessageId::parse("m-ours").unwrap(), Duration::from_secs(5)).await.unwrap();
        assert_eq!(reply["in_reply_to"], "m-ours");
        assert_eq!(receive.num_calls(), 1);
        assert_eq!((delete_ours.num_calls(), delete_stale.num_calls(), delete_garbage.num_calls()), (1, 1, 1));
        assert_eq!(delete_theirs.num_calls(), 0, "another process's reply is never deleted");
        assert_eq!(release.num_calls(), 1, "and is made visible again at once");
    }

    /// `ask` end to end over a mocked SQS: the envelope sent, its reply read as the typed result; a
    /// refusal read as one.
    #[tokio::test]
    async fn ask_sends_the_kinds_envelope_and_reads_the_typed_result_or_refusal() {
        let sent: Arc<StdMutex<Vec<Value>>> = Arc::default();
        let record = sent.clone();
        let send = mock!(aws_sdk_sqs::Client::send_message)
            .match_requests(move |r| {
                record.lock().unwrap().push(serde_json::from_str(r.message_body().unwrap_or_default()).unwrap());
                true
            })
            .then_output(|| aws_sdk_sqs::operation::send_message::SendMessageOutput::builder().build());
        let answer = sent.clone();
        let receive = mock!(aws_sdk_sqs::Client::receive_message).then_compute_output(move |_| {
            let last = answer.lock().unwrap().last().cloned().unwrap();
            let (id, body) = (last["message_id"].as_str().unwrap(), &last["body"]);
            let text = if body.get("account").is_some() {
                let stamp = ReplyStamp { message_id: "r".into(), sent_at: Utc::now() };
                let refused = RequestError::new(ErrorCode::NoGrants, "you have no live grant in 123456789012");
                serde_json::to_string(&Reply::error(stamp, MessageId::parse(id).ok(), "grant.list", refused)).unwrap()
            } else {
                reply_text(id, Utc::now(), "grant.list", json!({"grants": []}))
            };
            ReceiveMessageOutput::builder().messages(message("h", &text)).build()
        });
        let delete = deletes("h");
        let sqs = mock_client!(aws_sdk_sqs, RuleMode::MatchAny, [&send, &receive, &delete]);
        let client = AccessClient::on_own_queue(sqs, "https://q/requests".into(), "https://q/reply-alice".into());
        let alice = Auth::IdToken("eyJ.alice".into());

        let listed: GrantListResult = client.ask(&alice, &GrantList::default()).await.unwrap();
        assert!(listed.grants.is_empty());
        let envelope = sent.lock().unwrap()[0].clone();
        assert_eq!(envelope["kind"], "grant.list");
        assert_eq!(envelope["identity_token"], "eyJ.alice");
        assert_eq!(envelope["reply_to"], "https://q/reply-alice");
        assert_eq!(envelope["body"], json!({}));

        let account = AccountId::parse("123456789012").unwrap();
        let refused = client.ask(&alice, &GrantList { account: Some(account), include_ended: false }).await;
        let Err(AskError::Refused(Refusal { code, message, .. })) = refused else { panic!("{refused:?}") };
        assert_eq!(code, RefusalCode::Known(ErrorCode::NoGrants));
        assert!(message.contains("no live grant"));
        assert!(!format!("{alice:?}").contains("eyJ"), "a token is never printed");
    }

    /// A credentials request gets a fresh reply key; the worker's sealed answer is opened into the
    /// typed result, and the secret never travels.
    #[tokio::test]
    async fn credentials_are_asked_for_sealed_and_opened() {
        let sent: Arc<StdMutex<Vec<Value>>> = Arc::default();
        let record = sent.clone();
        let send = mock!(aws_sdk_sqs::Client::send_message)
            .match_requests(move |r| {
                record.lock().unwrap().push(serde_json::from_str(r.message_body().unwrap_or_default()).unwrap());
                true
            })
            .then_output(|| aws_sdk_sqs::operation::send_message::SendMessageOutput::builder().build());
        let answer = sent.clone();
        let receive = mock!(aws_sdk_sqs::Client::receive_message).then_compute_output(move |_| {
            let request = answer.lock().unwrap().last().cloned().unwrap();
            let id = request["message_id"].as_str().unwrap();
            let key = ReplyKey::parse(request["body"]["reply_key"].as_str().unwrap()).unwrap();
            let plaintext = json!({"Version": 1, "AccessKeyId": "ASIAEXAMPLE", "SecretAccessKey": "s",
                                   "SessionToken": "t", "Expiration": "2026-11-22T13:00:00Z"});
            let sealed = seal_credentials(&key, id, "123456789012", &serde_json::to_vec(&plaintext).unwrap()).unwrap();
            let result = json!({"sealed_credentials": sealed, "expires_at": "2026-11-22T13:00:00Z",
                "account": "123456789012", "role_arn": "arn:aws:iam::123456789012:role/broker", "session_name": "alice",
                "source_identity": "alice", "session_policy_size": 300, "grant_ids": []});
            let text = reply_text(id, Utc::now(), "credentials.request", result);
            ReceiveMessageOutput::builder().messages(message("h", &text)).build()
        });
        let delete = deletes("h");
        let sqs = mock_client!(aws_sdk_sqs, RuleMode::MatchAny, [&send, &receive, &delete]);
        let client = AccessClient::on_own_queue(sqs, "https://q/requests".into(), "https://q/reply-alice".into());
        let body =
            CredentialsRequest { account: AccountId::parse("123456789012").unwrap(), duration: None, reply_key: None };
        let result: CredentialsResult = client.ask(&Auth::IdToken("t".into()), &body).await.unwrap();
        assert_eq!(result.credentials.unwrap().access_key_id, "ASIAEXAMPLE");
        let envelope = sent.lock().unwrap()[0].clone();
        assert_eq!(envelope["body"]["reply_key"].as_str().map(str::len), Some(43), "a fresh public key was sent");
    }
}
