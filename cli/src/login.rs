//! Logging in with the company's OpenID provider, and the session that results.
//!
//! [`login_browser`] runs the authorization code flow with PKCE (RFC 7636, S256) and a loopback
//! redirect (RFC 8252 §7.3): a listener on `127.0.0.1:<free port>/callback`, the browser opened on
//! the authorization URL (`$BROWSER`, else `xdg-open`/`open`; the URL is printed either way).
//! [`login_device`] runs the device authorization grant (RFC 8628) for machines without a browser.
//! Both discover the endpoints from `<issuer>/.well-known/openid-configuration` and verify the ID
//! token (signature against the discovered JWKS, `iss`, `aud`, `exp`, and the nonce in the browser
//! flow) with the `openidconnect` crate, whose HTTP goes through this crate's reqwest client (no
//! redirects followed).
//!
//! The [`Session`] (ID token, refresh token, who it names) is kept in `<cache>/session.json`, mode
//! 0600. [`current_session`] refreshes it (under a lock: refresh tokens rotate, and a refresh token
//! used twice revokes the whole grant) when the ID token expires within the configured margin.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, TimeZone, Utc};
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthenticationFlow, CoreClaimName, CoreClaimType, CoreClient, CoreClientAuthMethod,
    CoreDeviceAuthorizationResponse, CoreGrantType, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm, CoreResponseMode, CoreResponseType,
    CoreSubjectIdentifierType, CoreTokenResponse,
};
use openidconnect::{
    AdditionalProviderMetadata, AuthorizationCode, ClientId, CsrfToken, DeviceAuthorizationUrl, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, ProviderMetadata, RedirectUrl, RefreshToken, Scope, TokenResponse,
};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::files;

/// A failure to log in or to refresh.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("cannot reach the identity provider at {url}: {message}")]
    Unreachable { url: String, message: String },
    #[error("the identity provider refused: {0}")]
    Refused(String),
    #[error("the ID token does not verify: {0}")]
    BadToken(String),
    #[error("{0}")]
    Other(String),
    #[error("nobody completed the login within {0:?}")]
    TimedOut(Duration),
}

/// What the CLI keeps after a login.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub issuer: String,
    pub client_id: String,
    pub id_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The ID token's `exp`.
    pub expires_at: DateTime<Utc>,
    /// The ID token's `iat`.
    pub issued_at: DateTime<Utc>,
    pub subject: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    /// `browser` or `device`.
    pub flow: String,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("issuer", &self.issuer)
            .field("subject", &self.subject)
            .field("expires_at", &self.expires_at)
            .field("id_token", &"<redacted>")
            .finish()
    }
}

/// `<cache>/session.json`.
pub fn session_path(cache: &Path) -> PathBuf {
    cache.join("session.json")
}

/// The issuer's endpoints as discovery gives them, plus the device endpoint openidconnect's core
/// metadata leaves out.
#[derive(Clone, Debug, Deserialize, Serialize)]
struct DeviceEndpoint {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    device_authorization_endpoint: Option<DeviceAuthorizationUrl>,
}
impl AdditionalProviderMetadata for DeviceEndpoint {}

type Metadata = ProviderMetadata<
    DeviceEndpoint,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// The HTTP error openidconnect sees.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpError(String);

/// One request through reqwest (which follows no redirects here).
async fn send(
    client: reqwest::Client,
    request: openidconnect::HttpRequest,
) -> Result<openidconnect::HttpResponse, HttpError> {
    let request = reqwest::Request::try_from(request).map_err(|e| HttpError(e.to_string()))?;
    let url = request.url().to_string();
    let response = client.execute(request).await.map_err(|e| HttpError(format!("{url}: {e}")))?;
    let mut builder = openidconnect::http::Response::builder().status(response.status().as_u16());
    for (name, value) in response.headers() {
        builder = builder.header(name.as_str(), value.as_bytes());
    }
    let body = response.bytes().await.map_err(|e| HttpError(format!("{url}: {e}")))?;
    builder.body(body.to_vec()).map_err(|e| HttpError(e.to_string()))
}

/// What login needs: the issuer, the client, scopes, and an HTTP client.
#[derive(Debug, Clone)]
pub struct Provider {
    pub issuer: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    http: reqwest::Client,
}

struct Discovered {
    client: CoreClient<
        openidconnect::EndpointSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointMaybeSet,
        openidconnect::EndpointMaybeSet,
    >,
    device: Option<DeviceAuthorizationUrl>,
}

/// Signature algorithms accepted on ID tokens (never HMAC, never `none`).
const ALGS: [CoreJwsSigningAlgorithm; 3] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EdDsa,
];

impl Provider {
    pub fn new(issuer: &str, client_id: &str, scopes: &[String]) -> Result<Self, LoginError> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(15))
            .build()
            .map_err(|e| LoginError::Other(e.to_string()))?;
        Ok(Self { issuer: issuer.to_owned(), client_id: client_id.to_owned(), scopes: scopes.to_vec(), http })
    }

    fn http(
        &self,
    ) -> impl Fn(
        openidconnect::HttpRequest,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<openidconnect::HttpResponse, HttpError>> + Send>>
    + '_ {
        move |req| Box::pin(send(self.http.clone(), req))
    }

    fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer.trim_end_matches('/'))
    }

    async fn discover(&self) -> Result<Discovered, LoginError> {
        let issuer = IssuerUrl::new(self.issuer.clone()).map_err(|e| LoginError::Other(format!("issuer: {e}")))?;
        let http = self.http();
        let metadata = Metadata::discover_async(issuer, &http)
            .await
            .map_err(|e| LoginError::Unreachable { url: self.discovery_url(), message: error_chain(&e) })?;
        let device = metadata.additional_metadata().device_authorization_endpoint.clone();
        let client = CoreClient::from_provider_metadata(metadata, ClientId::new(self.client_id.clone()), None);
        Ok(Discovered { client, device })
    }

    fn scopes(&self) -> impl Iterator<Item = Scope> + '_ {
        self.scopes.iter().filter(|s| s.as_str() != "openid").map(|s| Scope::new(s.clone()))
    }

    /// Authorization code + PKCE with a loopback redirect. `open` is called with the authorization
    /// URL (it opens a browser, or prints it); the login must complete within `wait`.
    pub async fn login_browser(&self, open: impl FnOnce(&str), wait: Duration) -> Result<Session, LoginError> {
        let d = self.discover().await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| LoginError::Other(format!("cannot listen on 127.0.0.1: {e}")))?;
        let port = listener.local_addr().map_err(|e| LoginError::Other(e.to_string()))?.port();
        let redirect = format!("http://127.0.0.1:{port}/callback");
        let client =
            d.client.set_redirect_uri(RedirectUrl::new(redirect).map_err(|e| LoginError::Other(e.to_string()))?);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = client
            .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
            .add_scopes(self.scopes())
            .set_pkce_challenge(challenge)
            .url();
        open(url.as_str());
        let params = tokio::time::timeout(wait, wait_for_callback(&listener))
            .await
            .map_err(|_| LoginError::TimedOut(wait))??;
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        if get("state").as_deref() != Some(state.secret().as_str()) {
            return Err(LoginError::Refused("the redirect's state does not match this login (ignored)".into()));
        }
        if let Some(error) = get("error") {
            let description = get("error_description").unwrap_or_default();
            return Err(LoginError::Refused(format!("{error}: {description}")));
        }
        if let Some(iss) = get("iss")
            && iss != self.issuer
        {
            return Err(LoginError::Refused(format!("the redirect came from issuer {iss}, not {}", self.issuer)));
        }
        let code = get("code").ok_or_else(|| LoginError::Refused("the redirect carries no code".into()))?;
        let http = self.http();
        let response = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| LoginError::Other(e.to_string()))?
            .set_pkce_verifier(verifier)
            .request_async(&http)
            .await
            .map_err(|e| LoginError::Refused(error_chain(&e)))?;
        self.session_from(&client, &response, Some(&nonce), None, "browser")
    }

    /// The device authorization grant: `show(verification_uri, user_code, verification_uri_complete)`
    /// tells the person where to go; polls until they approve, deny, or `wait` passes.
    pub async fn login_device(
        &self,
        show: impl FnOnce(&str, &str, Option<&str>),
        wait: Duration,
    ) -> Result<Session, LoginError> {
        let d = self.discover().await?;
        let endpoint = d.device.ok_or_else(|| {
            LoginError::Other(format!(
                "{} offers no device_authorization_endpoint; use `portcullis login` (browser) instead",
                self.issuer
            ))
        })?;
        let client = d.client.set_device_authorization_url(endpoint);
        let http = self.http();
        let details: CoreDeviceAuthorizationResponse = client
            .exchange_device_code()
            .add_scopes(self.scopes())
            .request_async(&http)
            .await
            .map_err(|e| LoginError::Refused(error_chain(&e)))?;
        show(
            details.verification_uri().as_str(),
            details.user_code().secret(),
            details.verification_uri_complete().map(|u| u.secret().as_str()),
        );
        let response = client
            .exchange_device_access_token(&details)
            .map_err(|e| LoginError::Other(e.to_string()))?
            .request_async(&http, tokio::time::sleep, Some(wait))
            .await
            .map_err(|e| {
                let text = error_chain(&e);
                if text.contains("expired") || text.contains("timed out") || text.contains("Timeout") {
                    LoginError::TimedOut(wait)
                } else {
                    LoginError::Refused(text)
                }
            })?;
        self.session_from(&client, &response, None, None, "device")
    }

    /// A fresh session from the refresh token.
    pub async fn refresh(&self, session: &Session) -> Result<Session, LoginError> {
        let token = session
            .refresh_token
            .clone()
            .ok_or_else(|| LoginError::Refused("no refresh token; run `portcullis login` again".into()))?;
        let d = self.discover().await?;
        let http = self.http();
        let token = RefreshToken::new(token);
        let response = d
            .client
            .exchange_refresh_token(&token)
            .map_err(|e| LoginError::Other(e.to_string()))?
            .request_async(&http)
            .await
            .map_err(|e| LoginError::Refused(error_chain(&e)))?;
        self.session_from(&d.client, &response, None, Some(session), &session.flow)
    }

    fn session_from<A, B, C, D, E, F>(
        &self,
        client: &CoreClient<A, B, C, D, E, F>,
        response: &CoreTokenResponse,
        nonce: Option<&Nonce>,
        previous: Option<&Session>,
        flow: &str,
    ) -> Result<Session, LoginError>
    where
        A: openidconnect::EndpointState,
        B: openidconnect::EndpointState,
        C: openidconnect::EndpointState,
        D: openidconnect::EndpointState,
        E: openidconnect::EndpointState,
        F: openidconnect::EndpointState,
    {
        let id_token = response
            .id_token()
            .ok_or_else(|| LoginError::BadToken("the token response has no id_token (is `openid` allowed?)".into()))?;
        let verifier = client.id_token_verifier().set_allowed_algs(ALGS);
        let claims = match nonce {
            Some(nonce) => id_token.claims(&verifier, nonce),
            // Device-flow tokens carry no nonce; refreshed ones repeat the original.
            None => id_token.claims(&verifier, |_: Option<&Nonce>| Ok(())),
        }
        .map_err(|e| LoginError::BadToken(e.to_string()))?;
        let raw = id_token.to_string();
        let extra = payload(&raw).unwrap_or_default();
        let groups = match extra.get("groups") {
            Some(serde_json::Value::Array(items)) => {
                items.iter().filter_map(|g| g.as_str().map(str::to_owned)).collect()
            }
            Some(serde_json::Value::String(one)) => vec![one.clone()],
            _ => Vec::new(),
        };
        Ok(Session {
            issuer: self.issuer.clone(),
            client_id: self.client_id.clone(),
            id_token: raw,
            // Refresh tokens rotate: keep the newest, or the old one when none came back.
            refresh_token: response
                .refresh_token()
                .map(|t| t.secret().clone())
                .or_else(|| previous.and_then(|p| p.refresh_token.clone())),
            expires_at: claims.expiration(),
            issued_at: claims.issue_time(),
            subject: claims.subject().as_str().to_owned(),
            team: extra.get("team").and_then(|t| t.as_str()).map(str::to_owned),
            groups,
            flow: flow.to_owned(),
        })
    }

    /// Revoke the refresh token at the IdP, when it has a revocation endpoint (best effort).
    pub async fn revoke(&self, session: &Session) -> bool {
        let Some(token) = &session.refresh_token else { return false };
        let Ok(doc) = self.http.get(self.discovery_url()).send().await else { return false };
        let Ok(doc) = doc.json::<serde_json::Value>().await else { return false };
        let Some(endpoint) = doc.get("revocation_endpoint").and_then(|v| v.as_str()) else { return false };
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("token", token)
            .append_pair("token_type_hint", "refresh_token")
            .append_pair("client_id", &self.client_id)
            .finish();
        self.http
            .post(endpoint)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    }
}

/// The claims of a JWT, unverified (only for claims of a token that was verified, or for display).
pub fn payload(jwt: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    let middle = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(middle.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The `sub` and `exp` of a token given on the command line (`--token`, dev tokens).
pub fn session_from_raw_token(token: &str) -> Option<Session> {
    let claims = payload(token)?;
    let text = |k: &str| claims.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    let time = |k: &str| claims.get(k).and_then(|v| v.as_i64()).and_then(|t| Utc.timestamp_opt(t, 0).single());
    Some(Session {
        issuer: text("iss").unwrap_or_default(),
        client_id: String::new(),
        id_token: token.to_owned(),
        refresh_token: None,
        expires_at: time("exp")?,
        issued_at: time("iat").unwrap_or_else(Utc::now),
        subject: text("sub")?,
        team: text("team"),
        groups: match claims.get("groups") {
            Some(serde_json::Value::Array(items)) => {
                items.iter().filter_map(|g| g.as_str().map(str::to_owned)).collect()
            }
            _ => Vec::new(),
        },
        flow: "token".into(),
    })
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

/// Serve the loopback redirect: answer requests until one is `GET /callback?...`; return its query.
async fn wait_for_callback(listener: &tokio::net::TcpListener) -> Result<Vec<(String, String)>, LoginError> {
    loop {
        let (mut stream, _) = listener.accept().await.map_err(|e| LoginError::Other(e.to_string()))?;
        let mut buf = Vec::with_capacity(2048);
        let mut chunk = [0u8; 1024];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
            match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk)).await {
                Ok(Ok(0)) | Err(_) | Ok(Err(_)) => break,
                Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let head = String::from_utf8_lossy(&buf);
        let target = head.lines().next().and_then(|l| l.strip_prefix("GET ")).and_then(|l| l.split(' ').next());
        let Some(query) = target.and_then(|t| t.strip_prefix("/callback")).map(|q| q.trim_start_matches('?')) else {
            let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
            continue;
        };
        let params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
        let ok = !params.iter().any(|(k, _)| k == "error");
        let page = if ok {
            "<!DOCTYPE html><html><body><h1>portcullis: signed in</h1><p>You can close this window and return to the terminal.</p></body></html>"
        } else {
            "<!DOCTYPE html><html><body><h1>portcullis: sign-in failed</h1><p>See the terminal.</p></body></html>"
        };
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
            page.len()
        );
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
        return Ok(params);
    }
}

/// Open `url` in a browser: `$BROWSER` (a command; `%s` is replaced by the URL, else it is
/// appended), else `xdg-open` (or `open` on macOS). Returns whether a browser command started.
pub fn open_browser(url: &str) -> bool {
    let command = match std::env::var("BROWSER").ok().filter(|b| !b.trim().is_empty()) {
        Some(b) => b,
        None if cfg!(target_os = "macos") => "open".into(),
        None => "xdg-open".into(),
    };
    let mut words: Vec<String> = command.split_whitespace().map(str::to_owned).collect();
    if words.iter().any(|w| w.contains("%s")) {
        for w in &mut words {
            *w = w.replace("%s", url);
        }
    } else {
        words.push(url.to_owned());
    }
    let Some((program, args)) = words.split_first() else { return false };
    std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .is_ok()
}

/// The stored session, if any (whatever its issuer).
pub fn stored_session(cache: &Path) -> Option<Session> {
    files::read_json(&session_path(cache))
}

/// Store a session (0600).
pub fn store_session(cache: &Path, session: &Session) -> std::io::Result<()> {
    files::write_json(&session_path(cache), session)
}

/// The session for `provider`, refreshed when its ID token expires within `margin_seconds`.
/// `Ok(None)`: not logged in (or logged in elsewhere).
pub async fn current_session(
    provider: &Provider,
    cache: &Path,
    margin_seconds: i64,
    now: DateTime<Utc>,
) -> Result<Option<Session>, LoginError> {
    let fresh = |s: &Session| s.expires_at.timestamp() - now.timestamp() > margin_seconds;
    let mine = |s: &Session| s.issuer == provider.issuer && s.client_id == provider.client_id;
    match stored_session(cache) {
        Some(s) if mine(&s) && fresh(&s) => return Ok(Some(s)),
        Some(s) if mine(&s) && s.refresh_token.is_some() => {}
        Some(s) if mine(&s) && s.expires_at > now => return Ok(Some(s)),
        _ => return Ok(None),
    }
    // Refresh under the lock, and look again once we hold it: another process may have refreshed.
    let path = session_path(cache);
    let _lock = files::FileLock::acquire(&path).map_err(|e| LoginError::Other(format!("{}: {e}", path.display())))?;
    let Some(session) = stored_session(cache).filter(|s| mine(s)) else { return Ok(None) };
    if fresh(&session) {
        return Ok(Some(session));
    }
    match provider.refresh(&session).await {
        Ok(new) => {
            store_session(cache, &new).map_err(|e| LoginError::Other(format!("{}: {e}", path.display())))?;
            Ok(Some(new))
        }
        // Still valid for a while: use it, and try to refresh next time.
        Err(LoginError::Unreachable { .. }) if session.expires_at > now => Ok(Some(session)),
        Err(e) => Err(e),
    }
}
