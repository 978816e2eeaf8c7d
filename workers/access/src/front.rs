//! What every request queue's handler does around its own work: admission (producer, size,
//! envelope, reply address, kind) and the answer (the reply, the refusal's audit event, and the
//! message's disposition). The access and directory handlers share it.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use portcullis_domain::audit::{self, Actor, AuditEvent};
use portcullis_domain::identity::Identity;
use portcullis_domain::messages::{Envelope, Kind, QueueRole, Reply, ReplyStamp};
use portcullis_domain::producers::{Producer, Producers};
use portcullis_domain::redact::{redact_secrets, secret_in_body};
use portcullis_domain::reply_policy::ReplyPolicy;
use portcullis_domain::{ErrorCode, MessageId, QueueUrl, RequestError};
use portcullis_runtime::clock::Clock;
use portcullis_runtime::consumer::{Disposition, Outcome};
use portcullis_runtime::queue::{Attempt, ReceivedMessage};
use serde::Serialize;
use serde_json::Value;
use tracing::warn;

pub use crate::failure::Failure;
use crate::ports::{AuditSink, PublishedEvent, ReplyError, ReplySink};

/// Admission and answering for one queue.
#[derive(Debug, Clone)]
pub struct Front {
    pub role: QueueRole,
    pub allowed_sender_ids: Vec<String>,
    pub max_message_bytes: usize,
    pub reply_policy: ReplyPolicy,
    pub producers: Producers,
    pub replies: Arc<dyn ReplySink>,
    pub audit: Arc<dyn AuditSink>,
    pub clock: Arc<dyn Clock>,
}

/// Where and how to answer one request.
#[derive(Debug, Clone)]
pub struct Answer {
    pub kind: &'static str,
    pub reply_to: Option<QueueUrl>,
    pub in_reply_to: Option<MessageId>,
    pub stamp: ReplyStamp,
}

impl Answer {
    /// The exact text of an ok reply carrying `result`.
    pub fn ok_text<T: Serialize>(&self, result: &T) -> Result<String, Failure> {
        let value = serde_json::to_value(result).map_err(encoding_failure)?;
        let reply = Reply::ok(self.stamp.clone(), self.in_reply_to.clone(), self.kind, value);
        serde_json::to_string(&reply).map_err(encoding_failure)
    }

    /// The exact text of an error reply: its message through [`redact_secrets`] (a refusal never
    /// quotes a secret back).
    pub fn error_text(&self, mut error: RequestError) -> Result<String, Failure> {
        error.message = redact_secrets(&error.message);
        let reply = Reply::error(self.stamp.clone(), self.in_reply_to.clone(), self.kind, error);
        serde_json::to_string(&reply).map_err(encoding_failure)
    }
}

fn encoding_failure(e: serde_json::Error) -> Failure {
    Failure::Refused(RequestError::new(ErrorCode::InternalError, format!("the reply could not be encoded: {e}")))
}

/// A message that passed admission.
#[derive(Debug)]
pub struct Admitted {
    pub envelope: Envelope<Value>,
    pub kind: Kind,
    pub answer: Answer,
    /// The trusted producer it came from, when producers are configured.
    pub producer: Option<Producer>,
    pub sender_id: Option<String>,
}

/// Why admission stopped.
#[derive(Debug)]
pub enum Stop {
    /// Decided without answering anyone (an unlisted producer, a forbidden reply address).
    Silent(Outcome),
    /// Answer with this refusal.
    Refuse(Box<(Answer, RequestError)>),
}

impl Front {
    /// The front of `role`'s queue, with the rules of `config` and the sinks of `ports`.
    pub fn new(role: QueueRole, config: &crate::handler::AccessConfig, ports: &crate::handler::Ports) -> Self {
        Front {
            role,
            allowed_sender_ids: config.allowed_sender_ids.clone(),
            max_message_bytes: config.max_message_bytes,
            reply_policy: config.reply_policy.clone(),
            producers: config.producers.clone(),
            replies: ports.replies.clone(),
            audit: ports.audit.clone(),
            clock: ports.clock.clone(),
        }
    }

    pub fn stamp(&self, now: DateTime<Utc>) -> ReplyStamp {
        ReplyStamp { message_id: uuid::Uuid::new_v4().to_string(), sent_at: now }
    }

    /// The answer to a message that could not be fully read: its reply address, only if allowed.
    fn salvaged_answer(&self, raw: &str, now: DateTime<Utc>) -> Answer {
        let (reply_to, in_reply_to) = Envelope::salvage_reply_to(raw);
        Answer {
            kind: "unknown",
            reply_to: reply_to.and_then(|to| self.reply_policy.allows(&to)),
            in_reply_to,
            stamp: self.stamp(now),
        }
    }

    /// Who sent it, its size, its envelope, where the answer goes, its kind, and whether its
    /// sender may send it.
    pub fn admit(&self, message: &ReceivedMessage, now: DateTime<Utc>) -> Result<Admitted, Stop> {
        let raw = message.body.as_str();
        let allowed = &self.allowed_sender_ids;
        if !allowed.is_empty() && !message.sender_id.as_ref().is_some_and(|s| allowed.contains(s)) {
            let who = message.sender_id.as_deref().unwrap_or("unknown");
            return Err(Stop::Silent(Outcome::rejected(
                "unknown",
                ErrorCode::SenderForbidden,
                format!("sender {who} is not in access.allowed_sender_ids"),
            )));
        }
        if raw.len() > self.max_message_bytes {
            let err = RequestError::new(
                ErrorCode::MessageTooLarge,
                format!(
                    "the message is {} bytes; the limit is {}. Send less data (for example fewer parameters)",
                    raw.len(),
                    self.max_message_bytes
                ),
            );
            return Err(Stop::Refuse(Box::new((self.salvaged_answer(raw, now), err))));
        }
        let envelope =
            Envelope::parse(raw).map_err(|err| Stop::Refuse(Box::new((self.salvaged_answer(raw, now), err))))?;
        let kind = Kind::parse(&envelope.kind);
        let label = kind.as_ref().map_or("unknown", |k| k.as_str());
        let reply_to = match &envelope.reply_to {
            None => None,
            Some(to) => match self.reply_policy.allows(to) {
                Some(queue) => Some(queue),
                None => {
                    let shown: String = to.chars().take(200).collect();
                    return Err(Stop::Silent(Outcome::rejected(
                        label,
                        ErrorCode::ReplyForbidden,
                        format!("reply_to {shown} is not an allowed reply queue; nothing was sent there"),
                    )));
                }
            },
        };
        let answer =
            Answer { kind: label, reply_to, in_reply_to: Some(envelope.message_id.clone()), stamp: self.stamp(now) };
        let kind = match kind {
            Ok(kind) if kind.queue() == self.role => kind,
            Ok(kind) => {
                let here = match self.role {
                    QueueRole::Access => "access-requests",
                    QueueRole::Directory => "directory-events",
                };
                let err = RequestError::new(
                    ErrorCode::UnknownKind,
                    format!("`{}` does not belong on the {here} queue", kind.as_str()),
                );
                return Err(Stop::Refuse(Box::new((answer, err))));
            }
            Err(err) => return Err(Stop::Refuse(Box::new((answer, err)))),
        };
        let producer = match self.producers.admit(message.sender_id.as_deref(), kind, envelope.on_behalf_of.is_some()) {
            Ok(p) => p.cloned(),
            Err(err) => return Err(Stop::Refuse(Box::new((answer, err)))),
        };
        // Free text is free to hold anything but a secret: refused before anything stores, logs or
        // publishes it (the value is never quoted back).
        if let Some((path, what)) = secret_in_body(&envelope.body) {
            let err = RequestError::new(
                ErrorCode::SecretInRequest,
                format!(
                    "`{path}` holds what looks like {what}; nothing was done. Remove it (and if it is a real \
                     secret, treat it as leaked and rotate it)"
                ),
            );
            return Err(Stop::Refuse(Box::new((answer, err))));
        }
        Ok(Admitted { envelope, kind, answer, producer, sender_id: message.sender_id.clone() })
    }

    /// The `Request Refused` event for a refusal.
    fn refused_event(
        &self,
        answer: &Answer,
        who: Option<&Identity>,
        sender_id: Option<&str>,
        err: &RequestError,
    ) -> Option<PublishedEvent> {
        let at = answer.stamp.sent_at;
        let id_part = answer.in_reply_to.as_ref().map_or(answer.stamp.message_id.as_str(), |m| m.as_str());
        let event = AuditEvent::RequestRefused(audit::RequestRefused {
            event_id: audit::event_id(&[who.map_or("", |w| w.user.as_str()), id_part, "refused", err.code.as_str()]),
            at,
            actor: who.map(Actor::of),
            sender_id: sender_id.map(|s| s.chars().take(256).collect()),
            kind: answer.kind.to_owned(),
            message_id: answer.in_reply_to.clone(),
            code: err.code,
            reason: redact_secrets(&err.message),
        });
        PublishedEvent::from_event(&event).ok()
    }

    /// Send the reply (when there is somewhere to send it) and decide what becomes of the
    /// message.
    pub async fn answer(
        &self,
        answer: &Answer,
        result: Result<String, Failure>,
        attempt: Attempt,
        who: Option<&Identity>,
        sender_id: Option<&str>,
    ) -> Outcome {
        let kind = answer.kind;
        if let Err(Failure::Refused(err)) = &result
            && let Some(event) = self.refused_event(answer, who, sender_id, err)
            && let Err(e) = self.audit.publish(&[event]).await
        {
            if !attempt.is_last {
                return Outcome::retry(kind, e.to_string());
            }
            warn!(error = %e, "the refusal's audit event could not be published; answering anyway");
        }
        let (text, refusal) = match result {
            Ok(text) => (Ok(text), None),
            Err(Failure::Retry(reason) | Failure::Stale(reason)) if !attempt.is_last => {
                return Outcome::retry(kind, reason);
            }
            Err(Failure::Retry(reason) | Failure::Stale(reason)) => {
                warn!(reason = %reason, "last delivery failed; answering unavailable");
                let err = RequestError::new(
                    ErrorCode::Unavailable,
                    "Portcullis could not complete the request after several tries; try again later",
                );
                (answer.error_text(err), Some((ErrorCode::Unavailable, reason)))
            }
            Err(Failure::Refused(err)) => {
                let refusal = (err.code, err.message.clone());
                (answer.error_text(err), Some(refusal))
            }
        };
        let text = match text {
            Ok(text) => text,
            Err(Failure::Refused(e)) => return Outcome::rejected(kind, e.code, e.message),
            Err(Failure::Retry(reason) | Failure::Stale(reason)) => return Outcome::retry(kind, reason),
        };
        if let Some(to) = &answer.reply_to {
            match self.replies.send(to, answer.in_reply_to.as_ref(), &text).await {
                Ok(()) => {}
                Err(ReplyError::Unavailable(why)) if !attempt.is_last => return Outcome::retry(kind, why),
                Err(e) => {
                    warn!(error = %e, "the reply could not be delivered");
                    return match refusal {
                        Some((code, reason)) => {
                            Outcome::rejected(kind, code, format!("{reason}; the reply could not be delivered: {e}"))
                        }
                        None => Outcome::rejected(kind, ErrorCode::ReplyUndeliverable, e.to_string()),
                    };
                }
            }
        }
        match refusal {
            None => Outcome::done(kind),
            Some((code, reason)) => Outcome::rejected(kind, code, reason),
        }
    }

    /// The outcome of a message admission stopped: silent refusals are audited, others answered.
    pub async fn stopped(&self, stop: Stop, attempt: Attempt, sender: Option<&str>, now: DateTime<Utc>) -> Outcome {
        match stop {
            Stop::Silent(outcome) => {
                // Not answered, but audited.
                if let Disposition::Reject { code, reason } = &outcome.disposition {
                    let answer = Answer { kind: "unknown", reply_to: None, in_reply_to: None, stamp: self.stamp(now) };
                    let err = RequestError::new(*code, reason.clone());
                    if let Some(event) = self.refused_event(&answer, None, sender, &err)
                        && let Err(e) = self.audit.publish(&[event]).await
                    {
                        if !attempt.is_last {
                            return Outcome::retry(outcome.kind, e.to_string());
                        }
                        warn!(error = %e, "the refusal's audit event could not be published");
                    }
                }
                outcome
            }
            Stop::Refuse(refusal) => {
                let (answer, err) = *refusal;
                self.answer(&answer, Err(Failure::Refused(err)), attempt, None, sender).await
            }
        }
    }

    /// Publish audit events (an outage is retried, a denied bus refused: [`Failure`]'s conversion).
    pub async fn publish(&self, events: &[PublishedEvent]) -> Result<(), Failure> {
        if events.is_empty() {
            return Ok(());
        }
        self.audit.publish(events).await.map_err(Failure::from)
    }
}
