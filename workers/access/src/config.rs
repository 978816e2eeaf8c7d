//! The access rules a worker runs with: [`AccessConfig`], read from the settings and checked once at
//! start-up. Imports nothing else from this crate.

use std::collections::BTreeMap;

use portcullis_domain::AccountId;
use portcullis_domain::QueueUrl;
use portcullis_domain::guardrails::Guardrails;
use portcullis_domain::naming::StackNames;
use portcullis_domain::producers::Producers;
use portcullis_domain::reply_policy::ReplyPolicy;
use portcullis_runtime::config::Settings;

/// One brokered account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokeredAccount {
    pub role_arn: String,
    pub max_session_seconds: u64,
}

/// The access rules, from the settings, checked at start-up.
#[derive(Debug, Clone)]
pub struct AccessConfig {
    pub admin_groups: Vec<String>,
    pub allowed_sender_ids: Vec<String>,
    pub max_message_bytes: usize,
    pub guardrails: Guardrails,
    pub reply_policy: ReplyPolicy,
    pub accounts: BTreeMap<AccountId, BrokeredAccount>,
    pub max_credentials_seconds: u64,
    pub idempotency_ttl_seconds: u64,
    pub producers: Producers,
    pub revocation_policy_max_chars: usize,
    /// Credentials only go out sealed to the request's `reply_key`.
    pub require_sealed_credentials: bool,
    pub pending_ttl_seconds: u64,
    pub break_glass_review_seconds: u64,
}

impl AccessConfig {
    /// The rules of `settings` for a worker whose request queue is `request_queue`.
    pub fn from_settings(settings: &Settings, request_queue: &QueueUrl) -> anyhow::Result<Self> {
        let access = &settings.access;
        let guardrails = Guardrails::new(&access.denied_actions, &settings.own_resources())
            .map_err(|e| anyhow::anyhow!("access.denied_actions: {e}"))?;
        Ok(Self {
            admin_groups: access.admin_groups.clone(),
            allowed_sender_ids: access.allowed_sender_ids.clone(),
            max_message_bytes: access.max_message_bytes,
            guardrails,
            reply_policy: {
                let policy =
                    ReplyPolicy::new(request_queue, &access.reply_queue_accounts, settings.reply_queue_patterns());
                match access.bind_reply_queue_to_subject {
                    true => policy.bound_to_subject(StackNames::new(&settings.stack.prefix).reply_queue_prefix()),
                    false => policy,
                }
            },
            accounts: settings
                .accounts
                .iter()
                .map(|(id, a)| {
                    (
                        id.clone(),
                        BrokeredAccount {
                            role_arn: a.role_arn.clone(),
                            max_session_seconds: a.max_session_duration_seconds,
                        },
                    )
                })
                .collect(),
            max_credentials_seconds: access.max_credentials_seconds,
            idempotency_ttl_seconds: access.idempotency_ttl_seconds,
            producers: Producers::new(settings.producers.clone()),
            revocation_policy_max_chars: access.revocation_policy_max_chars,
            require_sealed_credentials: access.require_sealed_credentials,
            pending_ttl_seconds: access.pending_ttl_seconds,
            break_glass_review_seconds: access.break_glass_review_seconds,
        })
    }
}
