//! Where replies may go: the check that keeps credentials away from queues Portcullis does not trust.
//!
//! Two checks. [`ReplyPolicy::allows`], at admission: the address is a queue on the request queue's
//! endpoint, in an allowed account, with an allowed name. [`ReplyPolicy::check_owner`], once the
//! requester is known: the queue is the requester's *own*, `<prefix>-reply-<sub>`, the name the
//! requester role's IAM policy lets that same `sub` use (through the policy variable
//! `${<issuer>:sub}`). So a person who can send requests cannot have credentials sent to somebody
//! else's queue, and the worker never writes to a queue on behalf of someone who does not own it.
//!
//! IAM substitutes the raw `sub` into the policy, so the queue name cannot be a mapping of it: a
//! `sub` with a character SQS names cannot hold (anything but `A-Z a-z 0-9 _ -`), or too long for
//! the 80-character limit with the prefix, has no reply queue, and [`own_reply_queue_name`] says so.

use crate::error::{ErrorCode, RequestError};
use crate::glob;
use crate::ids::{AccountId, MAX_QUEUE_NAME_CHARS, QueueUrl};

/// Why a subject has no reply queue of its own.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyQueueNameError {
    #[error(
        "the token's `sub` `{subject}` holds characters an SQS queue name cannot (only A-Z, a-z, 0-9, '_' and '-'); \
         the reply queue is bound to the exact `sub` by IAM, so it cannot be renamed: configure the identity \
         provider to issue such subjects (for example a UUID) for Portcullis' client"
    )]
    Charset { subject: String },
    #[error(
        "the reply queue `{prefix}{subject}` would be {len} characters, over SQS's {MAX_QUEUE_NAME_CHARS}: use a \
         shorter stack prefix or shorter subjects"
    )]
    TooLong { prefix: String, subject: String, len: usize },
    #[error("the token has an empty `sub`")]
    Empty,
}

/// The name of the reply queue owned by `subject` (the ID token's `sub`): `<reply_prefix><sub>`,
/// where `reply_prefix` is [`crate::naming::StackNames::reply_queue_prefix`].
pub fn own_reply_queue_name(reply_prefix: &str, subject: &str) -> Result<String, ReplyQueueNameError> {
    if subject.is_empty() {
        return Err(ReplyQueueNameError::Empty);
    }
    if !subject.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return Err(ReplyQueueNameError::Charset { subject: subject.chars().take(100).collect() });
    }
    let len = reply_prefix.len() + subject.len();
    if len > MAX_QUEUE_NAME_CHARS {
        return Err(ReplyQueueNameError::TooLong { prefix: reply_prefix.into(), subject: subject.into(), len });
    }
    Ok(format!("{reply_prefix}{subject}"))
}

/// Whether `queue` is the reply queue `subject` owns.
pub fn is_own_reply_queue(queue: &QueueUrl, reply_prefix: &str, subject: &str) -> bool {
    own_reply_queue_name(reply_prefix, subject).is_ok_and(|name| name == queue.name())
}

/// Replies may go to queues on the request queue's endpoint, in the allowed accounts, whose name
/// matches one of the configured globs (`*`).
#[derive(Debug, Clone)]
pub struct ReplyPolicy {
    endpoint: String,
    accounts: Vec<AccountId>,
    name_patterns: Vec<String>,
    /// When set, a reply queue must be the requester's own: `<this prefix><sub>`.
    owner_prefix: Option<String>,
}

impl ReplyPolicy {
    /// `accounts` empty means the request queue's own account.
    pub fn new(request_queue: &QueueUrl, accounts: &[AccountId], name_patterns: Vec<String>) -> Self {
        let accounts = if accounts.is_empty() { vec![request_queue.account().clone()] } else { accounts.to_vec() };
        Self { endpoint: request_queue.endpoint().to_owned(), accounts, name_patterns, owner_prefix: None }
    }

    /// Require every reply queue to be its requester's own, `<reply_prefix><sub>`
    /// (see [`own_reply_queue_name`]).
    pub fn bound_to_subject(mut self, reply_prefix: impl Into<String>) -> Self {
        self.owner_prefix = Some(reply_prefix.into());
        self
    }

    /// After authentication: `queue` may receive `subject`'s replies. Always true when the policy is
    /// not bound to subjects.
    pub fn check_owner(&self, queue: &QueueUrl, subject: &str) -> Result<(), RequestError> {
        let Some(prefix) = &self.owner_prefix else { return Ok(()) };
        if is_own_reply_queue(queue, prefix, subject) {
            return Ok(());
        }
        let yours = own_reply_queue_name(prefix, subject).unwrap_or_else(|e| format!("none ({e})"));
        Err(RequestError::new(
            ErrorCode::ReplyForbidden,
            format!("reply_to {} is not your own reply queue (yours: {yours}); nothing was sent there", queue.name()),
        ))
    }

    /// The parsed reply address when replies may go there. A FIFO queue never may: a reply carries
    /// no message group, so it could not be delivered there.
    pub fn allows(&self, url: &str) -> Option<QueueUrl> {
        let queue = QueueUrl::parse(url)?;
        let allowed = !queue.is_fifo()
            && queue.endpoint() == self.endpoint
            && self.accounts.contains(queue.account())
            && self.name_patterns.iter().any(|p| glob::matches(p.as_bytes(), queue.name().as_bytes()));
        allowed.then_some(queue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> ReplyPolicy {
        let request = QueueUrl::parse("http://127.0.0.1:4566/123456789012/stack-access-requests").unwrap();
        ReplyPolicy::new(&request, &[], vec!["stack-reply-*".into()])
    }

    #[test]
    fn only_matching_queues_on_the_same_endpoint() {
        let p = policy();
        assert!(p.allows("http://127.0.0.1:4566/123456789012/stack-reply-abc").is_some());
        for refused in [
            "http://127.0.0.1:4566/123456789012/stack-access-requests",
            "http://127.0.0.1:4566/999999999999/stack-reply-abc",
            "http://evil.example:4566/123456789012/stack-reply-abc",
            "http://127.0.0.1:4566/123456789012/stack-reply-abc/extra",
            "ftp://127.0.0.1:4566/123456789012/stack-reply-abc",
            "http://user@127.0.0.1:4566/123456789012/stack-reply-abc",
            "http://127.0.0.1:4566/123456789012/stack-reply-abc.fifo",
            "http://127.0.0.1:4566/123456789012/stack-reply-%61bc",
            "not a url",
        ] {
            assert!(p.allows(refused).is_none(), "{refused}");
        }
    }

    #[test]
    fn own_reply_queues_are_named_after_the_subject() {
        assert_eq!(own_reply_queue_name("stack-reply-", "alice").unwrap(), "stack-reply-alice");
        assert_eq!(
            own_reply_queue_name("stack-reply-", "0b6f3c2a-9d1e-4c55-8f0e-2a7b9c1d3e4f").unwrap(),
            "stack-reply-0b6f3c2a-9d1e-4c55-8f0e-2a7b9c1d3e4f"
        );
        for bad in ["auth0|123", "alice@example.com", "a.b", "a b", "ü", "a/b", "a:b"] {
            assert!(
                matches!(own_reply_queue_name("stack-reply-", bad), Err(ReplyQueueNameError::Charset { .. })),
                "{bad}"
            );
        }
        assert_eq!(own_reply_queue_name("stack-reply-", ""), Err(ReplyQueueNameError::Empty));
        let long = "a".repeat(80 - "stack-reply-".len());
        assert!(own_reply_queue_name("stack-reply-", &long).is_ok());
        assert!(matches!(
            own_reply_queue_name("stack-reply-", &format!("{long}a")),
            Err(ReplyQueueNameError::TooLong { len: 81, .. })
        ));
    }

    #[test]
    fn a_bound_policy_accepts_only_the_requesters_own_queue() {
        let bound = policy().bound_to_subject("stack-reply-");
        let queue = |name: &str| QueueUrl::parse(&format!("http://127.0.0.1:4566/123456789012/{name}")).unwrap();
        assert!(bound.check_owner(&queue("stack-reply-alice"), "alice").is_ok());
        let err = bound.check_owner(&queue("stack-reply-bob"), "alice").unwrap_err();
        assert_eq!(err.code, ErrorCode::ReplyForbidden);
        assert!(err.message.contains("stack-reply-alice"), "{}", err.message);
        // A prefix of the name is not enough, nor a subject that only matches once mapped.
        assert!(bound.check_owner(&queue("stack-reply-alice2"), "alice").is_err());
        assert!(bound.check_owner(&queue("stack-reply-auth0-1"), "auth0|1").is_err());
        // Unbound: anything the name patterns allow.
        assert!(policy().check_owner(&queue("stack-reply-bob"), "alice").is_ok());
    }

    /// The attack that overflowed the old recursive matcher: a 100,000-character queue name, checked
    /// on a thread with a small stack.
    #[test]
    fn a_huge_reply_address_is_refused_without_recursion() {
        std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(|| {
                let p = policy();
                let url = format!("http://127.0.0.1:4566/123456789012/stack-reply-{}", "a".repeat(100_000));
                assert!(p.allows(&url).is_none());
                let stars = ReplyPolicy::new(
                    &QueueUrl::parse("http://h/123456789012/q").unwrap(),
                    &[],
                    vec!["*".repeat(100_000)],
                );
                assert!(stars.allows("http://h/123456789012/stack-reply-x").is_some());
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
