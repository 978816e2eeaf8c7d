//! `portcullis console`: print (and open) an AWS console sign-in URL for the person's credentials.

use std::time::Duration;

use clap::Args;
use serde_json::json;

use super::credentials::{CredentialsArgs, issue};
use portcullis_domain::messages::ProcessCredentials;
use portcullis_domain::redact::redact_secrets;

use crate::console::{self, SigninTokenResponse};
use crate::context::Ctx;
use crate::error::CliError;
use crate::login;

#[derive(Debug, Args)]
pub struct ConsoleArgs {
    #[command(flatten)]
    pub credentials: CredentialsArgs,
    /// Only print the URL.
    #[arg(long)]
    pub no_browser: bool,
    /// Console page to land on.
    #[arg(long, default_value = "https://console.aws.amazon.com/")]
    pub destination: String,
}

pub(crate) async fn run(ctx: &Ctx, args: &ConsoleArgs) -> Result<u8, CliError> {
    let eff = ctx.effective()?;
    let creds = issue(ctx, &args.credentials).await?;
    let federation = eff.file.federation_url.clone().unwrap_or_else(|| console::FEDERATION_URL.into());
    let source = if eff.file.federation_url.is_some() {
        format!("federation_url in {}", eff.path.display())
    } else {
        "the default".into()
    };
    let token = signin_token(&federation, &source, &creds).await?;
    let url = console::login_url(&federation, &token.signin_token, &args.destination);
    if !args.no_browser && login::open_browser(&url) {
        eprintln!("opened the console in your browser");
    }
    ctx.print(&json!({ "url": url }), || format!("{url}\n"));
    Ok(0)
}

/// Trade `creds` for a sign-in token at `federation` (which came from `source`). Every error names
/// the endpoint without its query (where the session is) and never quotes the request URL:
/// `reqwest` errors carry it, so it is taken out first.
async fn signin_token(
    federation: &str,
    source: &str,
    creds: &ProcessCredentials,
) -> Result<SigninTokenResponse, CliError> {
    let shown = console::endpoint_for_display(federation);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .map_err(|e| CliError::local(e.without_url().to_string()))?;
    let unreachable = |e: reqwest::Error| CliError::Unreachable {
        what: "the AWS federation endpoint".into(),
        endpoint: shown.clone(),
        source: source.to_owned(),
        message: redact_secrets(&e.without_url().to_string()),
        fix: "check your network (or federation_url in the configuration)".into(),
    };
    let response = http.get(console::signin_token_url(federation, creds)).send().await.map_err(unreachable)?;
    let status = response.status();
    let token = response.json::<SigninTokenResponse>().await.ok().filter(|_| status.is_success()).ok_or_else(|| {
        CliError::local_hint(
            format!("the federation endpoint {shown} answered {status} without a SigninToken"),
            "the console needs credentials from AssumeRole; try --refresh",
        )
    })?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    const SESSION: &str = "FwoGZXIvYXdzEJr-session-token-value";

    fn creds() -> ProcessCredentials {
        ProcessCredentials {
            version: 1,
            access_key_id: "ASIAIOSFODNN7EXAMPLE".into(),
            secret_access_key: SECRET.into(),
            session_token: SESSION.into(),
            expiration: chrono::Utc::now(),
        }
    }

    /// A loopback server that answers every request with `response` (raw HTTP), or closes at once
    /// when it is empty.
    async fn serve(response: &'static str) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = [0u8; 8192];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            }
        });
        format!("http://{addr}/federation")
    }

    /// Every way the federation step can fail, and what the person sees (the error as printed,
    /// its hint, and its JSON form): never the secret key or session token, nor the URL's query.
    #[tokio::test]
    async fn console_errors_never_show_the_session() {
        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            drop(listener);
            format!("http://{addr}/federation")
        };
        let redirect_loop = "HTTP/1.1 302 Found\r\nLocation: /federation?again=1\r\nContent-Length: 0\r\n\r\n";
        let endpoints = [
            closed,
            "http://user:pw@127.0.0.1:9/federation".to_owned(),
            "http://nonexistent.invalid/federation".to_owned(),
            "not a url at all".to_owned(),
            serve("").await,
            serve("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 5\r\n\r\noops!").await,
            serve("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nnot json!").await,
            serve("HTTP/1.1 403 Forbidden\r\nContent-Length: 19\r\n\r\n{\"SigninToken\":\"x\"}").await,
            serve(redirect_loop).await,
        ];
        for endpoint in endpoints {
            let err = signin_token(&endpoint, "the test", &creds()).await.unwrap_err();
            let printed = format!("{err}\n{}\n{}\n{err:?}", err.hint().unwrap_or_default(), err.to_json());
            for secret in [SECRET, SESSION, "sessionKey", "Session=", "Action=getSigninToken", "pw@"] {
                assert!(!printed.contains(secret), "{endpoint}: `{secret}` in {printed}");
            }
            let encoded: String = url::form_urlencoded::byte_serialize(SECRET.as_bytes()).collect();
            assert!(!printed.contains(&encoded), "{printed}");
        }
    }
}
