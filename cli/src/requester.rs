//! The person's binding to the queues, cached: `portcullis_client::requester` assumes the
//! requester role with the ID token and finds the access queue and the person's own reply queue;
//! this keeps what that costs in `<cache>/requester.json` (0600) until five minutes before the
//! role's credentials expire, so an everyday command costs the request's own SQS calls and nothing
//! more.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use portcullis_client::AccessClient;
use portcullis_client::requester::{self as binding, ReplyQueueError, RoleCredentials};
use serde::{Deserialize, Serialize};

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

impl RequesterCache {
    fn credentials(&self) -> RoleCredentials {
        RoleCredentials {
            access_key_id: self.access_key_id.clone(),
            secret_access_key: self.secret_access_key.clone(),
            session_token: self.session_token.clone(),
            expiration: self.expiration,
        }
    }
}

pub fn cache_path(cache: &Path) -> PathBuf {
    cache.join("requester.json")
}

/// How long before expiry cached role credentials are replaced.
const ROLE_MARGIN_SECONDS: i64 = 300;

/// A connected requester: a client on the person's own reply queue.
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
    // The requester role's credentials are as secret as the session: kept where it is.
    let store = eff.secret_store();
    let usable = |c: &RequesterCache| {
        c.subject == session.subject
            && c.issuer == session.issuer
            && c.role_arn == role_arn
            && c.endpoint == endpoint
            && (c.expiration - now).num_seconds() > ROLE_MARGIN_SECONDS
    };
    let cached = store.read_json::<RequesterCache>(&path).filter(usable);
    let mut state = match cached {
        Some(c) => c,
        None => {
            let _lock =
                files::FileLock::acquire(&path).map_err(|e| CliError::local(format!("{}: {e}", path.display())))?;
            match store.read_json::<RequesterCache>(&path).filter(usable) {
                Some(c) => c,
                None => assume(eff, session, &role_arn, endpoint.clone()).await?,
            }
        }
    };
    let sdk = binding::sdk_config(&eff.region.0, endpoint.as_deref(), Some(&state.credentials())).await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let sqs_endpoint = eff.sqs_endpoint();
    let mut changed = false;
    let request_queue_url = match &state.request_queue_url {
        Some(url) => url.clone(),
        None => {
            changed = true;
            binding::request_queue_url(&sqs, &eff.names, &eff.stack_account)
                .await
                .map_err(|e| aws_error("the Portcullis access queue", "sqs:GetQueueUrl", &sqs_endpoint, &e))?
        }
    };
    let reply_queue_url = match &state.reply_queue_url {
        Some(url) => url.clone(),
        None => {
            changed = true;
            binding::own_reply_queue(&sqs, &eff.names, &session.subject).await.map_err(|e| match e {
                ReplyQueueError::Name(e) => CliError::local_hint(
                    e.to_string(),
                    "ask your identity provider's administrator: a reply queue needs a `sub` SQS can name",
                ),
                ReplyQueueError::Aws(e) => aws_error("SQS (your reply queue)", "sqs:CreateQueue", &sqs_endpoint, &e),
            })?
        }
    };
    if changed {
        state.request_queue_url = Some(request_queue_url.clone());
        state.reply_queue_url = Some(reply_queue_url.clone());
        store.write_json(&path, &state).map_err(|e| CliError::local(format!("{}: {e}", path.display())))?;
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
    let sdk = binding::sdk_config(&eff.region.0, endpoint.as_deref(), None).await;
    let sts_endpoint = match &eff.endpoint_url {
        Some((e, s)) => (e.clone(), s.clone()),
        None => (format!("https://sts.{}.amazonaws.com", eff.region.0), eff.region.1.clone()),
    };
    let c = binding::assume_requester_role(&sdk, role_arn, &session.subject, &session.id_token, 3600)
        .await
        .map_err(|e| aws_error("STS", "sts:AssumeRoleWithWebIdentity", &sts_endpoint, &e))?;
    Ok(RequesterCache {
        issuer: session.issuer.clone(),
        subject: session.subject.clone(),
        role_arn: role_arn.to_owned(),
        endpoint,
        access_key_id: c.access_key_id,
        secret_access_key: c.secret_access_key,
        session_token: c.session_token,
        expiration: c.expiration,
        request_queue_url: None,
        reply_queue_url: None,
    })
}
