//! Reaching the access queue with nothing but the ID token.
//!
//! The CLI assumes the stack's requester role with STS `AssumeRoleWithWebIdentity` (an unsigned
//! call: no AWS credentials on the laptop), then sends requests on the access-requests queue and
//! reads replies from the person's own reply queue, `<prefix>-reply-<sub>`, created on first use and
//! kept. The role credentials, the queue URLs and the subject they belong to are cached in
//! `<cache>/requester.json` (0600) until five minutes before the credentials expire, so an
//! everyday command costs the request's own SQS calls and nothing more.

use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sqs::types::QueueAttributeName;
use chrono::{DateTime, Utc};
use portcullis_domain::reply_policy::own_reply_queue_name;
use portcullis_domain::session::sts_name_for;
use serde::{Deserialize, Serialize};

use crate::client::AccessClient;
use crate::config::Effective;
use crate::error::{CliError, aws_error};
use crate::files;
use crate::login::Session;

/// The requester role's credentials and the queues, as cached.
#[derive(Clone, Serialize, Deserialize)]
pub struct RequesterCache {
    pub issuer: String,
    pub subject: String,
    pub role_arn: String,
    pub endpoint: Option<String>,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    pub expiration: DateTime<Utc>,
    pub request_queue_url: Option<String>,
    pub reply_queue_url: Option<String>,
}

impl std::fmt::Debug for RequesterCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequesterCache").field("subject", &self.subject).field("expiration", &self.expiration).finish()
    }
}

pub fn cache_path(cache: &Path) -> PathBuf {
    cache.join("requester.json")
}

/// How long before expiry cached role credentials are replaced.
const ROLE_MARGIN_SECONDS: i64 = 300;

async fn sdk(eff: &Effective, credentials: Option<aws_sdk_sqs::config::Credentials>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(eff.region.0.clone()))
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(2))
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(25))
                .build(),
        );
    if let Some((endpoint, _)) = &eff.endpoint_url {
        loader = loader.endpoint_url(endpoint);
    }
    loader = match credentials {
        Some(c) => loader.credentials_provider(c),
        None => loader.no_credentials(),
    };
    loader.load().await
}

/// A connected requester: an access client on the person's own reply queue.
#[derive(Debug)]
pub struct Requester {
    pub client: AccessClient,
    pub subject: String,
}

/// Connect as the person `session` names: cached role credentials and queues, or fresh ones.
pub async fn connect(
    eff: &Effective,
    session: &Session,
    cache: &Path,
    now: DateTime<Utc>,
) -> Result<Requester, CliError> {
    let role_arn = eff.requester_role_arn();
    let endpoint = eff.endpoint_url.as_ref().map(|e| e.0.clone());
    let path = cache_path(cache);
    let usable = |c: &RequesterCache| {
        c.subject == session.subject
            && c.issuer == session.issuer
            && c.role_arn == role_arn
            && c.endpoint == endpoint
            && (c.expiration - now).num_seconds() > ROLE_MARGIN_SECONDS
    };
    let cached = files::read_json::<RequesterCache>(&path).filter(usable);
    let mut state = match cached {
        Some(c) => c,
        None => {
            let _lock =
                files::FileLock::acquire(&path).map_err(|e| CliError::local(format!("{}: {e}", path.display())))?;
            match files::read_json::<RequesterCache>(&path).filter(usable) {
                Some(c) => c,
                None => assume(eff, session, &role_arn, endpoint.clone()).await?,
            }
        }
    };
    let credentials = aws_sdk_sqs::config::Credentials::new(
        state.access_key_id.clone(),
        state.secret_access_key.clone(),
        Some(state.session_token.clone()),
        None,
        "portcullis-requester",
    );
    let sqs = aws_sdk_sqs::Client::new(&sdk(eff, Some(credentials)).await);
    let sqs_endpoint = eff.sqs_endpoint();
    let mut changed = false;
    let request_queue_url = match &state.request_queue_url {
        Some(url) => url.clone(),
        None => {
            let url = sqs
                .get_queue_url()
                .queue_name(eff.names.access_queue())
                .queue_owner_aws_account_id(eff.stack_account.as_str())
                .send()
                .await
                .map_err(|e| aws_error("the Portcullis access queue", "sqs:GetQueueUrl", &sqs_endpoint, &e))?
                .queue_url
                .ok_or_else(|| CliError::local("sqs:GetQueueUrl returned no URL"))?;
            changed = true;
            url
        }
    };
    let reply_queue_url = match &state.reply_queue_url {
        Some(url) => url.clone(),
        None => {
            let name = own_reply_queue_name(&eff.names.reply_queue_prefix(), &session.subject)
                .map_err(|e| CliError::local_hint(e.to_string(), "see docs/messages.md#reply-queues"))?;
            // The same attributes every time: CreateQueue is then idempotent.
            let url = sqs
                .create_queue()
                .queue_name(&name)
                .attributes(QueueAttributeName::MessageRetentionPeriod, "3600")
                .attributes(QueueAttributeName::SqsManagedSseEnabled, "true")
                .send()
                .await
                .map_err(|e| aws_error("SQS (your reply queue)", "sqs:CreateQueue", &sqs_endpoint, &e))?
                .queue_url
                .ok_or_else(|| CliError::local("sqs:CreateQueue returned no URL"))?;
            changed = true;
            url
        }
    };
    if changed {
        state.request_queue_url = Some(request_queue_url.clone());
        state.reply_queue_url = Some(reply_queue_url.clone());
        files::write_json(&path, &state).map_err(|e| CliError::local(format!("{}: {e}", path.display())))?;
    }
    Ok(Requester {
        client: AccessClient::on_own_queue(sqs, request_queue_url, reply_queue_url),
        subject: session.subject.clone(),
    })
}

async fn assume(
    eff: &Effective,
    session: &Session,
    role_arn: &str,
    endpoint: Option<String>,
) -> Result<RequesterCache, CliError> {
    let sts = aws_sdk_sts::Client::new(&sdk(eff, None).await);
    let sts_endpoint = match &eff.endpoint_url {
        Some((e, s)) => (e.clone(), s.clone()),
        None => (format!("https://sts.{}.amazonaws.com", eff.region.0), eff.region.1.clone()),
    };
    let out = sts
        .assume_role_with_web_identity()
        .role_arn(role_arn)
        .role_session_name(sts_name_for(&session.subject))
        .web_identity_token(&session.id_token)
        .duration_seconds(3600)
        .send()
        .await
        .map_err(|e| aws_error("STS", "sts:AssumeRoleWithWebIdentity", &sts_endpoint, &e))?;
    let c = out.credentials.ok_or_else(|| CliError::local("STS returned no credentials"))?;
    let expiration = DateTime::<Utc>::from_timestamp(c.expiration.secs(), 0).unwrap_or_else(Utc::now);
    Ok(RequesterCache {
        issuer: session.issuer.clone(),
        subject: session.subject.clone(),
        role_arn: role_arn.to_owned(),
        endpoint,
        access_key_id: c.access_key_id,
        secret_access_key: c.secret_access_key,
        session_token: c.session_token,
        expiration,
        request_queue_url: None,
        reply_queue_url: None,
    })
}
