//! Session revocation per account, against two emulated accounts in one moto process: moto keeps
//! each account's IAM apart and serves a request in the account of the credentials that signed it
//! (an assumed role's credentials belong to that role's account). Both accounts have a broker role of
//! the same name (the stack's default), which is what made a cross-wired write possible.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use aws_config::SdkConfig;
use portcullis_access::adapters::DynamoStore;
use portcullis_access::handler::BrokeredAccount;
use portcullis_access::revoke::{RevokeError, Revoker};
use portcullis_domain::AccountId;
use portcullis_runtime::aws::assumed_role_config;
use portcullis_runtime::config::Settings;
use portcullis_tests::*;
use serde_json::Value;

/// The second emulated account.
const OTHER: &str = "222222222222";

/// Credentials in `account` (moto lets any role be assumed, existing or not).
async fn in_account(sdk: &SdkConfig, account: &str) -> SdkConfig {
    assumed_role_config(sdk, &format!("arn:aws:iam::{account}:role/test-setup"), "test-setup").await
}

/// The stack's settings with the second account, with or without a revoker role there.
fn two_account_settings(stack: &TestStack, revoker_role: bool) -> Settings {
    let prefix = stack.names.prefix();
    let revoker = if revoker_role {
        format!("revoker_role_arn = \"arn:aws:iam::{OTHER}:role/{prefix}-revoker\"\n")
    } else {
        String::new()
    };
    let extra = format!(
        "[accounts.{OTHER}]\nrole_arn = \"arn:aws:iam::{OTHER}:role/{prefix}-broker\"\n\
         max_session_duration_seconds = 3600\n{revoker}"
    );
    let jwks = stack.issuer_dir.path().join("jwks.json");
    Settings::from_toml(&settings_toml(prefix, &stack.moto.endpoint, &jwks, "", &extra)).unwrap()
}

/// The users the revocation policy on `role` (as `sdk` sees it) denies.
async fn denied_users(sdk: &SdkConfig, role: &str) -> BTreeSet<String> {
    let Ok(out) = aws_sdk_iam::Client::new(sdk)
        .get_role_policy()
        .role_name(role)
        .policy_name("PortcullisRevocations")
        .send()
        .await
    else {
        return BTreeSet::new();
    };
    let policy: Value = policy_document(&out.policy_document);
    let mut users = BTreeSet::new();
    for s in policy["Statement"].as_array().unwrap() {
        if let Some(list) = s["Condition"]["StringEquals"]["aws:SourceIdentity"].as_array() {
            users.extend(list.iter().map(|u| u.as_str().unwrap().to_owned()));
        }
    }
    users
}

async fn deploy_with_second_account() -> (TestStack, SdkConfig) {
    let stack = TestStack::deploy("", "").await;
    let other = in_account(&stack.sdk, OTHER).await;
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}"#;
    aws_sdk_iam::Client::new(&other)
        .create_role()
        .role_name(format!("{}-broker", stack.names.prefix()))
        .assume_role_policy_document(trust)
        .send()
        .await
        .expect("the second account's broker role");
    (stack, other)
}

/// An account whose broker role the worker's own credentials cannot reach (no revoker role there)
/// is a configuration error at start-up, naming the key to set; never a write to the worker's own
/// account's role of the same name.
#[tokio::test]
async fn an_account_without_its_own_credentials_is_refused_at_startup() {
    let (stack, _) = deploy_with_second_account().await;
    let settings = two_account_settings(&stack, false);
    let err = portcullis_worker::app::session_revoker(&settings, &stack.sdk).await.unwrap_err().to_string();
    assert!(
        err.contains(&format!("accounts.{OTHER}")) && err.contains(ACCOUNT) && err.contains("revoker_role_arn"),
        "{err}"
    );
    // The access worker does not start either.
    let meter = opentelemetry::global::meter("test");
    let run = portcullis_worker::app::run_access(
        Arc::new(settings),
        &stack.sdk,
        &meter,
        tokio_util::sync::CancellationToken::new(),
    )
    .await;
    assert!(run.unwrap_err().to_string().contains("revoker_role_arn"));
    assert!(denied_users(&stack.sdk, &format!("{}-broker", stack.names.prefix())).await.is_empty());
}

/// Two replicas revoke users in both accounts at once: each broker role ends up denying exactly its
/// own account's revoked users (and the user revoked in both, in both), read with that account's
/// credentials.
#[tokio::test]
async fn each_accounts_role_converges_to_exactly_its_own_revocations() {
    let (stack, other_sdk) = deploy_with_second_account().await;
    let settings = two_account_settings(&stack, true);
    let (home, other) = (AccountId::parse(ACCOUNT).unwrap(), AccountId::parse(OTHER).unwrap());
    let accounts: BTreeMap<AccountId, BrokeredAccount> = settings
        .accounts
        .iter()
        .map(|(id, a)| (id.clone(), BrokeredAccount { role_arn: a.role_arn.clone(), max_session_seconds: 3600 }))
        .collect();
    let store = Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&stack.sdk), stack.names.table()));
    let mut replicas = Vec::new();
    for _ in 0..2 {
        let sessions = Arc::new(portcullis_worker::app::session_revoker(&settings, &stack.sdk).await.unwrap());
        replicas.push(Revoker::new(store.clone(), sessions, accounts.clone(), 8192));
    }
    let mut jobs: Vec<(String, Vec<AccountId>)> = Vec::new();
    for i in 0..5 {
        jobs.push((format!("home-user-{i}"), vec![home.clone()]));
        jobs.push((format!("other-user-{i}"), vec![other.clone()]));
    }
    jobs.push(("everywhere".into(), vec![home.clone(), other.clone()]));
    let tasks: Vec<_> = jobs
        .into_iter()
        .enumerate()
        .map(|(i, (user, accounts))| {
            let revoker = replicas[i % 2].clone();
            tokio::spawn(async move {
                // As a redelivery would: a writer that kept losing the race tries again.
                for _ in 0..5 {
                    let now = chrono::Utc::now();
                    match revoker.kill_sessions(&user, &accounts, now, now).await {
                        Ok(_) => return,
                        Err(RevokeError::Sessions(_)) => continue,
                        Err(e) => panic!("{e}"),
                    }
                }
                panic!("{user}: the revocation never converged");
            })
        })
        .collect();
    for t in futures::future::join_all(tasks).await {
        t.unwrap();
    }
    let role = format!("{}-broker", stack.names.prefix());
    let expected = |side: &str| -> BTreeSet<String> {
        (0..5).map(|i| format!("{side}-user-{i}")).chain(["everywhere".to_owned()]).collect()
    };
    assert_eq!(denied_users(&stack.sdk, &role).await, expected("home"));
    assert_eq!(denied_users(&other_sdk, &role).await, expected("other"));
}
