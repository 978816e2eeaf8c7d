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
//! 0600 (or, with `keychain = true`, in the OS keychain: [`crate::secrets`]). [`current_session`] refreshes it (under a lock: refresh tokens rotate, and a refresh token
//! used twice revokes the whole grant) when the ID token expires within the configured margin.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, TimeZone, Utc};
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreClaimName, CoreClaimType, CoreClient,
    CoreClientAuthMethod, CoreDeviceAuthorizationResponse, CoreGrantType, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm, CoreResponseMode,
    CoreResponseType, CoreSubjectIdentifierType, CoreTokenResponse,
};
use openidconnect::{
    AdditionalProviderMetadata, AuthUrl, AuthorizationCode, ClientId, CsrfToken, DeviceAuthorizationUrl, IssuerUrl,
    Nonce, OAuth2TokenResponse, PkceCodeChallenge, ProviderMetadata, RedirectUrl, RefreshToken, Scope, TokenResponse,
    TokenUrl,
};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::files;
use crate::secrets::SecretStore;

/// A failure to log in or to refresh. Every variant that comes from an HTTP exchange names the
/// endpoint (its URL without the query string) and keeps the root cause.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Nothing answered at `url` (connection refused, DNS, TLS, a timeout): `message` is the cause.
    #[error("cannot reach the identity provider at {url}: {message}")]
    Unreachable { url: String, message: String },
    /// The identity provider answered with an HTTP status that is not an OAuth answer (a 5xx, or a
    /// 4xx without an OAuth error body).
    #[error("the identity provider at {url} answered HTTP {status}{}", detail_suffix(.detail))]
    Status { url: String, status: u16, detail: String },
    /// The identity provider said no (an OAuth error such as `access_denied`).
    #[error("the identity provider at {url} refused: {message}")]
    Refused { url: String, message: String },
    /// The identity provider no longer accepts the refresh token (revoked, expired, reused).
    #[error("the identity provider at {url} refused the refresh token: {message}")]
    RefreshRefused { url: String, message: String },
    /// A grant answered without an `id_token`.
    #[error("the token response from {url} has no ID token ({grant} grant)")]
    NoIdToken { url: String, grant: &'static str },
    #[error("the ID token does not verify: {0}")]
    BadToken(String),
    /// The session needs a refresh but there is no refresh token: it ended at `expired_at`.
    #[error("your session with {issuer} expired at {expired_at} and no refresh token was issued")]
    Expired { issuer: String, expired_at: DateTime<Utc> },
    /// `--device`, but discovery names no device endpoint and none is configured.
    #[error("{issuer} does not advertise a device_authorization_endpoint in {discovery}")]
    NoDeviceEndpoint { issuer: String, discovery: String },
    #[error("{0}")]
    Other(String),
    #[error("nobody completed the login within {0:?}")]
    TimedOut(Duration),
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() { String::new() } else { format!(": {detail}") }
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
    /// The person's name for people to read (the configured display-name claim, else `sub`); `sub`
    /// stays the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

impl Session {
    /// The display name, else the subject.
    pub fn name(&self) -> &str {
        self.display_name.as_deref().unwrap_or(&self.subject)
    }

    /// `name (sub)` when the two differ, else the subject.
    pub fn who(&self) -> String {
        match &self.display_name {
            Some(n) if n != &self.subject => format!("{n} ({})", self.subject),
            _ => self.subject.clone(),
        }
    }
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

/// The HTTP error openidconnect sees: where it happened and why, kept apart so that the CLI can
/// say which endpoint failed and how.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{url}: {message}")]
    Unreachable { url: String, message: String },
    #[error("HTTP {status} from {url}")]
    Status { url: String, status: u16, detail: String },
    #[error("{0}")]
    Other(String),
}

/// `url` without its query string or fragment (they may carry codes and tokens).
pub fn without_query(url: &url::Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

/// Whether `body` is an OAuth error answer (`{"error": "..."}`), which openidconnect reads itself.
fn is_oauth_error(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body).is_ok_and(|v| v.get("error").is_some_and(|e| e.is_string()))
}

/// One request through reqwest (which follows no redirects here). A status that is neither success
/// nor an OAuth error answer becomes [`HttpError::Status`], with the URL and a short detail.
async fn send(
    client: reqwest::Client,
    request: openidconnect::HttpRequest,
) -> Result<openidconnect::HttpResponse, HttpError> {
    let request = reqwest::Request::try_from(request).map_err(|e| HttpError::Other(e.to_string()))?;
    let url = without_query(request.url());
    let response = client
        .execute(request)
        .await
        .map_err(|e| HttpError::Unreachable { url: url.clone(), message: error_chain(&e.without_url()) })?;
    let status = response.status();
    let mut builder = openidconnect::http::Response::builder().status(status.as_u16());
    for (name, value) in response.headers() {
        builder = builder.header(name.as_str(), value.as_bytes());
    }
    let body = response
        .bytes()
        .await
        .map_err(|e| HttpError::Unreachable { url: url.clone(), message: error_chain(&e.without_url()) })?;
    let oauth_answer = status.is_client_error() && is_oauth_error(&body);
    if !(status.is_success() || oauth_answer) {
        let text = String::from_utf8_lossy(&body);
        let detail: String = text.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(120).collect();
        let reason = status.canonical_reason().unwrap_or_default();
        return Err(HttpError::Status {
            url,
            status: status.as_u16(),
            detail: if detail.is_empty() { reason.to_owned() } else { format!("{reason}: {detail}") },
        });
    }
    builder.body(body.to_vec()).map_err(|e| HttpError::Other(e.to_string()))
}

/// An HTTP failure as a login error.
fn http_failure(e: HttpError) -> LoginError {
    match e {
        HttpError::Unreachable { url, message } => LoginError::Unreachable { url, message },
        HttpError::Status { url, status, detail } => LoginError::Status { url, status, detail },
        HttpError::Other(m) => LoginError::Other(m),
    }
}

/// What can go wrong at the token (or device authorization) endpoint `url`.
type TokenError<T> = openidconnect::RequestTokenError<HttpError, openidconnect::StandardErrorResponse<T>>;

/// A token endpoint's failure: an OAuth error is a refusal (`refused` builds it), a transport or
/// status failure keeps its own kind, a body that does not read names the endpoint.
fn token_failure<T: openidconnect::ErrorResponseType + std::fmt::Display + 'static>(
    e: TokenError<T>,
    url: &str,
    refused: impl FnOnce(String, String) -> LoginError,
) -> LoginError {
    match e {
        openidconnect::RequestTokenError::ServerResponse(r) => {
            let mut message = r.error().to_string();
            if let Some(d) = r.error_description() {
                message = format!("{message}: {d}");
            }
            refused(url.to_owned(), message)
        }
        openidconnect::RequestTokenError::Request(e) => http_failure(e),
        openidconnect::RequestTokenError::Parse(e, _) => {
            LoginError::Other(format!("the answer from {url} does not read as OAuth: {e}"))
        }
        openidconnect::RequestTokenError::Other(m) => LoginError::Other(format!("{url}: {m}")),
    }
}

/// Endpoints set in the configuration, used instead of what discovery says (or where it says
/// nothing, as for the device endpoint at several providers).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointOverrides {
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
    pub device_authorization_endpoint: Option<String>,
    pub revocation_endpoint: Option<String>,
}

/// The claims a display name is read from when none is configured, in order (then `sub`).
pub const DISPLAY_NAME_CLAIMS: [&str; 3] = ["preferred_username", "email", "name"];

/// How the CLI logs in, beyond the issuer and client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginOptions {
    /// Scopes besides `openid`.
    pub scopes: Vec<String>,
    /// Ask for `offline_access` (a refresh token) when the provider advertises it.
    pub offline_access: bool,
    /// The claim that names a person (else [`DISPLAY_NAME_CLAIMS`], then `sub`).
    pub display_name_claim: Option<String>,
    pub endpoints: EndpointOverrides,
}

impl Default for LoginOptions {
    fn default() -> Self {
        LoginOptions {
            scopes: vec!["portcullis".into()],
            offline_access: true,
            display_name_claim: None,
            endpoints: EndpointOverrides::default(),
        }
    }
}

/// The display name in `claims`: the configured claim, else the first of [`DISPLAY_NAME_CLAIMS`];
/// `None` when there is none (the subject is shown).
pub fn display_name(claims: &serde_json::Map<String, serde_json::Value>, configured: Option<&str>) -> Option<String> {
    let text = |k: &str| claims.get(k).and_then(|v| v.as_str()).map(str::trim).filter(|v| !v.is_empty());
    match configured {
        Some(claim) => text(claim),
        None => DISPLAY_NAME_CLAIMS.iter().find_map(|c| text(c)),
    }
    .map(str::to_owned)
}

/// What login needs: the issuer, the client, how to log in, and an HTTP client.
#[derive(Debug, Clone)]
pub struct Provider {
    pub issuer: String,
    pub client_id: String,
    pub options: LoginOptions,
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
    /// The token endpoint (for messages).
    token_url: String,
    /// Whether the provider advertises `offline_access`.
    offline_access: bool,
}

/// Signature algorithms accepted on ID tokens (never HMAC, never `none`).
const ALGS: [CoreJwsSigningAlgorithm; 3] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EdDsa,
];

/// `value` as an endpoint URL, or a configuration error naming `key`.
fn endpoint<T>(
    key: &str,
    value: &str,
    make: impl FnOnce(String) -> Result<T, url::ParseError>,
) -> Result<T, LoginError> {
    make(value.to_owned())
        .map_err(|e| LoginError::Other(format!("{key} `{value}` in the configuration is not a URL: {e}")))
}

impl Provider {
    pub fn new(issuer: &str, client_id: &str, options: LoginOptions) -> Result<Self, LoginError> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(15))
            .build()
            .map_err(|e| LoginError::Other(e.to_string()))?;
        Ok(Self { issuer: issuer.to_owned(), client_id: client_id.to_owned(), options, http })
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
        let mut metadata = Metadata::discover_async(issuer, &http).await.map_err(|e| match e {
            openidconnect::DiscoveryError::Request(e) => http_failure(e),
            other => LoginError::Other(format!(
                "the discovery document at {} does not read: {}",
                self.discovery_url(),
                error_chain(&other)
            )),
        })?;
        let o = &self.options.endpoints;
        if let Some(url) = &o.authorization_endpoint {
            metadata = metadata.set_authorization_endpoint(endpoint("authorization_endpoint", url, AuthUrl::new)?);
        }
        if let Some(url) = &o.token_endpoint {
            metadata = metadata.set_token_endpoint(Some(endpoint("token_endpoint", url, TokenUrl::new)?));
        }
        let device = match &o.device_authorization_endpoint {
            Some(url) => Some(endpoint("device_authorization_endpoint", url, DeviceAuthorizationUrl::new)?),
            None => metadata.additional_metadata().device_authorization_endpoint.clone(),
        };
        let token_url =
            metadata.token_endpoint().map(|u| without_query(u.url())).unwrap_or_else(|| self.discovery_url());
        let offline_access =
            metadata.scopes_supported().is_some_and(|scopes| scopes.iter().any(|s| s.as_str() == "offline_access"));
        let client = CoreClient::from_provider_metadata(metadata, ClientId::new(self.client_id.clone()), None);
        Ok(Discovered { client, device, token_url, offline_access })
    }

    /// The scopes to ask for besides `openid`: the configured ones, and `offline_access` when the
    /// provider advertises it and the configuration does not turn it off.
    fn scopes(&self, d: &Discovered) -> Vec<Scope> {
        let mut scopes: Vec<String> = self.options.scopes.iter().filter(|s| s.as_str() != "openid").cloned().collect();
        if self.options.offline_access && d.offline_access && !scopes.iter().any(|s| s == "offline_access") {
            scopes.push("offline_access".into());
        }
        scopes.into_iter().map(Scope::new).collect()
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
        let scopes = self.scopes(&d);
        let client =
            d.client.set_redirect_uri(RedirectUrl::new(redirect).map_err(|e| LoginError::Other(e.to_string()))?);
        let authorize = without_query(client.auth_uri().url());
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        // OpenID Connect Core §11: a provider may ignore `offline_access` without `prompt=consent`.
        let offline = scopes.iter().any(|s| s.as_str() == "offline_access");
        let mut request = client
            .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
            .add_scopes(scopes)
            .set_pkce_challenge(challenge);
        if offline {
            request = request.add_prompt(CoreAuthPrompt::Consent);
        }
        let (url, state, nonce) = request.url();
        open(url.as_str());
        let params = tokio::time::timeout(wait, wait_for_callback(&listener))
            .await
            .map_err(|_| LoginError::TimedOut(wait))??;
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let refused = |message: String| LoginError::Refused { url: authorize.clone(), message };
        if get("state").as_deref() != Some(state.secret().as_str()) {
            return Err(refused("the redirect's state does not match this login (ignored)".into()));
        }
        if let Some(error) = get("error") {
            let description = get("error_description").unwrap_or_default();
            return Err(refused(format!("{error}: {description}")));
        }
        if let Some(iss) = get("iss")
            && iss != self.issuer
        {
            return Err(refused(format!("the redirect came from issuer {iss}, not {}", self.issuer)));
        }
        let code = get("code").ok_or_else(|| refused("the redirect carries no code".into()))?;
        let http = self.http();
        let response = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| LoginError::Other(e.to_string()))?
            .set_pkce_verifier(verifier)
            .request_async(&http)
            .await
            .map_err(|e| token_failure(e, &d.token_url, |url, message| LoginError::Refused { url, message }))?;
        self.session_from(&client, &response, Some(&nonce), None, "browser", &d.token_url)
    }

    /// The device authorization grant: `show(verification_uri, user_code, verification_uri_complete)`
    /// tells the person where to go; polls until they approve, deny, or `wait` passes.
    pub async fn login_device(
        &self,
        show: impl FnOnce(&str, &str, Option<&str>),
        wait: Duration,
    ) -> Result<Session, LoginError> {
        let d = self.discover().await?;
        let scopes = self.scopes(&d);
        let endpoint = d.device.clone().ok_or_else(|| LoginError::NoDeviceEndpoint {
            issuer: self.issuer.clone(),
            discovery: self.discovery_url(),
        })?;
        let device_url = without_query(endpoint.url());
        let client = d.client.clone().set_device_authorization_url(endpoint);
        let http = self.http();
        let details: CoreDeviceAuthorizationResponse = client
            .exchange_device_code()
            .add_scopes(scopes)
            .request_async(&http)
            .await
            .map_err(|e| token_failure(e, &device_url, |url, message| LoginError::Refused { url, message }))?;
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
            .map_err(|e| match e {
                openidconnect::RequestTokenError::ServerResponse(r)
                    if matches!(r.error(), openidconnect::DeviceCodeErrorResponseType::ExpiredToken) =>
                {
                    LoginError::TimedOut(wait)
                }
                openidconnect::RequestTokenError::Other(m) if m.contains("imed out") || m.contains("Timeout") => {
                    LoginError::TimedOut(wait)
                }
                other => token_failure(other, &d.token_url, |url, message| LoginError::Refused { url, message }),
            })?;
        self.session_from(&client, &response, None, None, "device", &d.token_url)
    }

    /// A fresh session from the refresh token.
    pub async fn refresh(&self, session: &Session) -> Result<Session, LoginError> {
        let token = session
            .refresh_token
            .clone()
            .ok_or_else(|| LoginError::Expired { issuer: session.issuer.clone(), expired_at: session.expires_at })?;
        let d = self.discover().await?;
        let http = self.http();
        let token = RefreshToken::new(token);
        let response = d
            .client
            .exchange_refresh_token(&token)
            .map_err(|e| LoginError::Other(e.to_string()))?
            .request_async(&http)
            .await
            .map_err(|e| token_failure(e, &d.token_url, |url, message| LoginError::RefreshRefused { url, message }))?;
        self.session_from(&d.client, &response, None, Some(session), &session.flow, &d.token_url)
    }

    #[allow(clippy::too_many_arguments)]
    fn session_from<A, B, C, D, E, F>(
        &self,
        client: &CoreClient<A, B, C, D, E, F>,
        response: &CoreTokenResponse,
        nonce: Option<&Nonce>,
        previous: Option<&Session>,
        flow: &str,
        token_url: &str,
    ) -> Result<Session, LoginError>
    where
        A: openidconnect::EndpointState,
        B: openidconnect::EndpointState,
        C: openidconnect::EndpointState,
        D: openidconnect::EndpointState,
        E: openidconnect::EndpointState,
        F: openidconnect::EndpointState,
    {
        let grant = match (previous, flow) {
            (Some(_), _) => "refresh_token",
            (None, "device") => "device_code",
            (None, _) => "authorization_code",
        };
        let id_token = response.id_token().ok_or_else(|| LoginError::NoIdToken { url: token_url.to_owned(), grant })?;
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
            display_name: display_name(&extra, self.options.display_name_claim.as_deref()),
        })
    }

    /// Revoke the refresh token at the IdP, when it has a revocation endpoint (best effort).
    pub async fn revoke(&self, session: &Session) -> bool {
        let Some(token) = &session.refresh_token else { return false };
        let endpoint = match &self.options.endpoints.revocation_endpoint {
            Some(e) => e.clone(),
            None => {
                let Ok(doc) = self.http.get(self.discovery_url()).send().await else { return false };
                let Ok(doc) = doc.json::<serde_json::Value>().await else { return false };
                let Some(endpoint) = doc.get("revocation_endpoint").and_then(|v| v.as_str()) else { return false };
                endpoint.to_owned()
            }
        };
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
        display_name: display_name(&claims, None),
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
pub fn stored_session(store: &SecretStore, cache: &Path) -> Option<Session> {
    store.read_json(&session_path(cache))
}

/// Store a session (a 0600 file, or the OS keychain).
pub fn store_session(store: &SecretStore, cache: &Path, session: &Session) -> std::io::Result<()> {
    store.write_json(&session_path(cache), session)
}

/// The session for `provider`, refreshed when its ID token expires within `margin_seconds`.
/// `Ok(None)`: not logged in (or logged in elsewhere); [`LoginError::Expired`]: logged in, but the
/// ID token expired and there is no refresh token.
pub async fn current_session(
    provider: &Provider,
    store: &SecretStore,
    cache: &Path,
    margin_seconds: i64,
    now: DateTime<Utc>,
) -> Result<Option<Session>, LoginError> {
    let fresh = |s: &Session| s.expires_at.timestamp() - now.timestamp() > margin_seconds;
    let mine = |s: &Session| s.issuer == provider.issuer && s.client_id == provider.client_id;
    match stored_session(store, cache) {
        Some(s) if mine(&s) && fresh(&s) => return Ok(Some(s)),
        Some(s) if mine(&s) && s.refresh_token.is_some() => {}
        Some(s) if mine(&s) && s.expires_at > now => return Ok(Some(s)),
        Some(s) if mine(&s) => return Err(LoginError::Expired { issuer: s.issuer, expired_at: s.expires_at }),
        _ => return Ok(None),
    }
    // Refresh under the lock, and look again once we hold it: another process may have refreshed.
    let path = session_path(cache);
    let _lock = files::FileLock::acquire(&path).map_err(|e| LoginError::Other(format!("{}: {e}", path.display())))?;
    let Some(session) = stored_session(store, cache).filter(|s| mine(s)) else { return Ok(None) };
    if fresh(&session) {
        return Ok(Some(session));
    }
    match provider.refresh(&session).await {
        Ok(new) => {
            store_session(store, cache, &new).map_err(|e| LoginError::Other(format!("{}: {e}", path.display())))?;
            Ok(Some(new))
        }
        // Still valid for a while: use it, and try to refresh next time.
        Err(LoginError::Unreachable { .. } | LoginError::Status { .. }) if session.expires_at > now => {
            Ok(Some(session))
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// A loopback HTTP server answering every request with `status` and `body`, `n` times; it
    /// returns the paths it was asked for.
    fn answer(status: u16, body: &'static str, n: usize) -> (String, std::thread::JoinHandle<Vec<String>>) {
        let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
        let base = format!("http://{}", server.server_addr().to_ip().unwrap());
        let seen = std::thread::spawn(move || {
            (0..n)
                .map(|_| {
                    let r = server.recv().unwrap();
                    let url = r.url().to_owned();
                    r.respond(tiny_http::Response::from_string(body).with_status_code(status)).unwrap();
                    url
                })
                .collect()
        });
        (base, seen)
    }

    fn provider(issuer: &str) -> Provider {
        Provider::new(issuer, "portcullis-cli", LoginOptions::default()).unwrap()
    }

    #[tokio::test]
    async fn an_idp_answering_500_is_named_with_its_status_and_url() {
        let (issuer, seen) = answer(500, "<html>upstream exploded</html>", 1);
        let e = provider(&issuer).login_device(|_, _, _| {}, Duration::from_secs(1)).await.unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, LoginError::Status { status: 500, .. }), "{e:?}");
        assert!(
            text.contains(&format!("{issuer}/.well-known/openid-configuration"))
                && text.contains("HTTP 500")
                && text.contains("upstream exploded"),
            "{text}"
        );
        assert_eq!(seen.join().unwrap(), ["/.well-known/openid-configuration"]);
    }

    #[tokio::test]
    async fn an_unreachable_idp_keeps_the_root_cause() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let issuer = format!("http://127.0.0.1:{port}");
        let e = provider(&issuer).login_device(|_, _, _| {}, Duration::from_secs(1)).await.unwrap_err();
        let LoginError::Unreachable { url, message } = &e else { panic!("{e:?}") };
        assert_eq!(url, &format!("{issuer}/.well-known/openid-configuration"));
        assert!(message.to_lowercase().contains("connection refused"), "{message}");
    }

    #[test]
    fn urls_lose_their_query_and_oauth_errors_are_recognised() {
        let u = url::Url::parse("https://idp.example.com/token?code=secret#frag").unwrap();
        assert_eq!(without_query(&u), "https://idp.example.com/token");
        assert!(is_oauth_error(br#"{"error":"invalid_grant","error_description":"x"}"#));
        assert!(!is_oauth_error(b"<html>500</html>") && !is_oauth_error(br#"{"message":"x"}"#));
    }

    #[test]
    fn the_display_name_is_the_configured_claim_else_the_first_known_one() {
        let claims: serde_json::Map<String, serde_json::Value> = serde_json::from_value(serde_json::json!({
            "sub": "00u1a2b3", "email": "alice@example.com", "name": "Alice Liddell", "preferred_username": " "
        }))
        .unwrap();
        assert_eq!(display_name(&claims, None).as_deref(), Some("alice@example.com"), "blank ones are skipped");
        assert_eq!(display_name(&claims, Some("name")).as_deref(), Some("Alice Liddell"));
        assert_eq!(display_name(&claims, Some("nickname")), None);
        assert_eq!(display_name(&serde_json::Map::new(), None), None);
    }

    fn session(expires_at: DateTime<Utc>, refresh: Option<&str>) -> Session {
        Session {
            issuer: "http://127.0.0.1:9".into(),
            client_id: "portcullis-cli".into(),
            id_token: "x.y.z".into(),
            refresh_token: refresh.map(str::to_owned),
            expires_at,
            issued_at: expires_at - chrono::Duration::minutes(10),
            subject: "u8f3a".into(),
            team: None,
            groups: vec![],
            flow: "browser".into(),
            display_name: Some("alice".into()),
        }
    }

    #[tokio::test]
    async fn an_expired_session_without_a_refresh_token_says_when_it_expired() {
        let cache = tempfile::tempdir().unwrap();
        let now = Utc::now();
        let p = provider("http://127.0.0.1:9");
        store_session(&SecretStore::Files, cache.path(), &session(now - chrono::Duration::minutes(3), None)).unwrap();
        let e = current_session(&p, &SecretStore::Files, cache.path(), 60, now).await.unwrap_err();
        assert!(matches!(e, LoginError::Expired { expired_at, .. } if expired_at < now), "{e:?}");
        // Still valid (inside the margin, nothing to refresh with): used as it is.
        store_session(&SecretStore::Files, cache.path(), &session(now + chrono::Duration::seconds(30), None)).unwrap();
        assert_eq!(
            current_session(&p, &SecretStore::Files, cache.path(), 60, now).await.unwrap().unwrap().name(),
            "alice"
        );
        // Another issuer's session: not logged in here.
        let other = Provider::new("http://127.0.0.1:10", "portcullis-cli", LoginOptions::default()).unwrap();
        assert!(current_session(&other, &SecretStore::Files, cache.path(), 60, now).await.unwrap().is_none());
    }

    #[test]
    fn who_shows_the_name_and_the_subject_when_they_differ() {
        let s = session(Utc::now(), None);
        assert_eq!(s.who(), "alice (u8f3a)");
        let plain = Session { display_name: None, ..s };
        assert_eq!((plain.name(), plain.who().as_str()), ("u8f3a", "u8f3a"));
    }
}
