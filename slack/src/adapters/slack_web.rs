//! Slack's Web API over HTTPS with the bot token (`Authorization: Bearer`), at
//! `slack.api_base_url` (the fake's in tests). A `200` with `"ok": false` is a failure.

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;
use slack_morphism::prelude::*;

use crate::ports::{PostedMessage, SlackApi, SlackError};
use crate::render::Ephemeral;
use crate::settings::{EdgeSettings, Secret};

/// Slack's Web API.
#[derive(Debug, Clone)]
pub struct SlackWebApi {
    base: String,
    token: Secret,
    http: reqwest::Client,
}

impl SlackWebApi {
    pub fn new(settings: &EdgeSettings) -> Result<Self, SlackError> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| SlackError { method: "client", message: e.to_string() })?;
        Ok(Self {
            base: settings.slack.api_base_url.trim_end_matches('/').to_owned(),
            token: settings.slack.bot_token.clone(),
            http,
        })
    }

    async fn call<B: Serialize + Sync>(&self, method: &'static str, body: &B) -> Result<Value, SlackError> {
        let fail = |message: String| SlackError { method, message };
        let response = self
            .http
            .post(format!("{}/{method}", self.base))
            .bearer_auth(self.token.expose())
            .json(body)
            .send()
            .await
            .map_err(|e| fail(e.without_url().to_string()))?;
        let status = response.status();
        let value: Value = response.json().await.map_err(|e| fail(format!("{status}: {}", e.without_url())))?;
        if value.get("ok").and_then(Value::as_bool) != Some(true) {
            let error = value.get("error").and_then(Value::as_str).unwrap_or("not ok");
            return Err(fail(format!("{status}: {error}")));
        }
        Ok(value)
    }
}

#[async_trait]
impl SlackApi for SlackWebApi {
    async fn post_message(&self, request: &SlackApiChatPostMessageRequest) -> Result<PostedMessage, SlackError> {
        let v = self.call("chat.postMessage", request).await?;
        let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        match (text("channel"), text("ts")) {
            (Some(channel), Some(ts)) => Ok(PostedMessage { channel, ts }),
            _ => Err(SlackError { method: "chat.postMessage", message: "no channel or ts in the answer".into() }),
        }
    }

    async fn update_message(&self, request: &SlackApiChatUpdateRequest) -> Result<(), SlackError> {
        self.call("chat.update", request).await.map(drop)
    }

    async fn open_view(&self, request: &SlackApiViewsOpenRequest) -> Result<(), SlackError> {
        self.call("views.open", request).await.map(drop)
    }

    async fn publish_view(&self, request: &SlackApiViewsPublishRequest) -> Result<(), SlackError> {
        self.call("views.publish", request).await.map(drop)
    }

    async fn respond(&self, response_url: &str, message: &Ephemeral) -> Result<(), SlackError> {
        // The response_url is the capability: no token goes with it.
        let fail = |message: String| SlackError { method: "response_url", message };
        let response =
            self.http.post(response_url).json(message).send().await.map_err(|e| fail(e.without_url().to_string()))?;
        if !response.status().is_success() {
            return Err(fail(response.status().to_string()));
        }
        Ok(())
    }

    async fn user_email(&self, user_id: &str) -> Result<Option<String>, SlackError> {
        let v = self.call("users.info", &serde_json::json!({ "user": user_id })).await?;
        let user = v.get("user");
        // Guests, bots and deleted users never match.
        let unusable = ["is_bot", "deleted", "is_restricted", "is_ultra_restricted"]
            .iter()
            .any(|k| user.and_then(|u| u.get(*k)).and_then(Value::as_bool) == Some(true));
        if unusable {
            return Ok(None);
        }
        Ok(user.and_then(|u| u.pointer("/profile/email")).and_then(Value::as_str).map(str::to_owned))
    }
}
