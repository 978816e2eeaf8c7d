//! `portcullis console`: an AWS console sign-in URL for issued credentials, through the AWS
//! federation endpoint, as `granted` and `aws-vault login` do: `getSigninToken` with the session,
//! then a `login` URL carrying the token (valid 15 minutes).

use portcullis_domain::messages::ProcessCredentials;
use serde::Deserialize;
use serde_json::json;

/// The public federation endpoint.
pub const FEDERATION_URL: &str = "https://signin.aws.amazon.com/federation";

/// The `getSigninToken` URL for `credentials`.
pub fn signin_token_url(federation: &str, credentials: &ProcessCredentials) -> String {
    let session = json!({
        "sessionId": credentials.access_key_id,
        "sessionKey": credentials.secret_access_key,
        "sessionToken": credentials.session_token,
    })
    .to_string();
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("Action", "getSigninToken")
        .append_pair("Session", &session)
        .finish();
    format!("{federation}?{query}")
}

/// `url` as an error may show it: scheme, host, port and path only. The `getSigninToken` URL carries
/// the session (secret key and session token) in its query, and a configured endpoint may carry
/// user info: neither is ever printed.
pub fn endpoint_for_display(url: &str) -> String {
    match url::Url::parse(url) {
        // A URL with a host; `user:pw@host/path` parses too, as scheme `user` with no host.
        Ok(mut parsed) if parsed.has_host() => {
            parsed.set_query(None);
            parsed.set_fragment(None);
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.to_string()
        }
        // Not such a URL: whatever comes before a query or fragment, and never user info.
        _ => {
            let cut = url.split(['?', '#']).next().unwrap_or_default();
            cut.rsplit_once('@').map_or(cut, |(_, host)| host).to_owned()
        }
    }
}

/// The federation endpoint's answer to `getSigninToken`.
#[derive(Deserialize)]
pub struct SigninTokenResponse {
    #[serde(rename = "SigninToken")]
    pub signin_token: String,
}

impl std::fmt::Debug for SigninTokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigninTokenResponse(<redacted>)")
    }
}

/// The console login URL for a sign-in token.
pub fn login_url(federation: &str, signin_token: &str, destination: &str) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("Action", "login")
        .append_pair("Issuer", "portcullis")
        .append_pair("Destination", destination)
        .append_pair("SigninToken", signin_token)
        .finish();
    format!("{federation}?{query}")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn endpoints_are_shown_without_query_fragment_or_user_info() {
        let c = ProcessCredentials {
            version: 1,
            access_key_id: "ASIAX".into(),
            secret_access_key: "se/cret+".into(),
            session_token: "tok=".into(),
            expiration: chrono::Utc::now(),
        };
        let shown = endpoint_for_display(&signin_token_url("https://u:p@fed.example:8443/federation#x", &c));
        assert_eq!(shown, "https://fed.example:8443/federation");
        assert_eq!(endpoint_for_display("not a url?Session=secret"), "not a url");
        assert_eq!(endpoint_for_display("user:pw@host/path?x=1"), "host/path");
    }

    #[test]
    fn urls_carry_the_session_and_the_token() {
        let c = ProcessCredentials {
            version: 1,
            access_key_id: "ASIAX".into(),
            secret_access_key: "se/cret+".into(),
            session_token: "tok=".into(),
            expiration: chrono::Utc::now(),
        };
        let url = url::Url::parse(&signin_token_url(FEDERATION_URL, &c)).unwrap();
        let session: serde_json::Value =
            serde_json::from_str(&url.query_pairs().find(|(k, _)| k == "Session").unwrap().1).unwrap();
        assert_eq!(session["sessionKey"], "se/cret+");
        let login = url::Url::parse(&login_url(FEDERATION_URL, "T/1", "https://console.aws.amazon.com/")).unwrap();
        let pairs: std::collections::HashMap<_, _> = login.query_pairs().into_owned().collect();
        assert_eq!(pairs["SigninToken"], "T/1");
        assert_eq!(pairs["Action"], "login");
    }
}
