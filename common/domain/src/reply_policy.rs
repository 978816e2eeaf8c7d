//! Where replies may go: the check that keeps credentials away from queues Portcullis does not trust.

use crate::glob;
use crate::ids::{AccountId, QueueUrl};

/// Replies may go to queues on the request queue's endpoint, in the allowed accounts, whose name
/// matches one of the configured globs (`*`).
#[derive(Debug, Clone)]
pub struct ReplyPolicy {
    endpoint: String,
    accounts: Vec<AccountId>,
    name_patterns: Vec<String>,
}

impl ReplyPolicy {
    /// `accounts` empty means the request queue's own account.
    pub fn new(request_queue: &QueueUrl, accounts: &[AccountId], name_patterns: Vec<String>) -> Self {
        let accounts = if accounts.is_empty() { vec![request_queue.account().clone()] } else { accounts.to_vec() };
        Self { endpoint: request_queue.endpoint().to_owned(), accounts, name_patterns }
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
