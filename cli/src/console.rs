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
