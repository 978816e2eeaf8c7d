//! The AWS side of the access ports: DynamoDB, STS, SQS replies, IAM (session revocations),
//! EventBridge (audit events), and OIDC over HTTP.

mod dynamo;
mod events;
mod evidence;
mod iam;
mod oidc;
mod sqs_reply;
mod sts;

pub use self::dynamo::DynamoStore;
pub use self::events::EventBridgeAudit;
pub use self::evidence::DynamoEvidenceReader;
pub use self::iam::{IamSessionRevoker, decode_policy, role_name};
pub use self::oidc::OidcVerifier;
pub use self::sqs_reply::{ATTR_IN_REPLY_TO, SqsReplySink};
pub use self::sts::StsBroker;

/// Every adapter keeps the classified failure of its AWS call: the one conversion
/// ([`crate::front::Failure`]) then retries an outage and refuses a denied call at once.
#[cfg(test)]
mod failure_tests {
    use aws_smithy_mocks::{RuleMode, mock, mock_client};
    use portcullis_domain::{AccountId, TemplateName};

    use super::*;
    use crate::ports::{AccessStore, AuditSink, FailureKind, PublishedEvent, SessionRevoker, StoreError};

    fn meta(code: &str) -> aws_sdk_dynamodb::error::ErrorMetadata {
        aws_sdk_dynamodb::error::ErrorMetadata::builder().code(code).message("m").build()
    }

    #[tokio::test]
    async fn the_store_is_denied_unavailable_or_invalid_by_dynamodbs_code() {
        use aws_sdk_dynamodb::operation::get_item::GetItemError;
        for (code, denied, retryable) in [
            ("AccessDeniedException", true, false),
            ("KMSAccessDeniedException", true, false),
            ("ResourceNotFoundException", true, false),
            ("ProvisionedThroughputExceededException", false, true),
            ("ThrottlingException", false, true),
            ("InternalServerError", false, true),
            ("ValidationException", false, false),
        ] {
            let rule = mock!(aws_sdk_dynamodb::Client::get_item).then_error(move || GetItemError::generic(meta(code)));
            let store = DynamoStore::new(mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&rule]), "t");
            let err = store.template_index(&TemplateName::parse("bucketRead").unwrap()).await.unwrap_err();
            assert_eq!(matches!(err, StoreError::Denied(_)), denied, "{code}: {err:?}");
            assert_eq!(matches!(err, StoreError::Unavailable(_)), retryable, "{code}: {err:?}");
            assert!(err.to_string().contains("DynamoDB GetItem"), "{err}");
        }
    }

    #[tokio::test]
    async fn iam_on_the_broker_role_keeps_its_failure_kind() {
        use aws_sdk_iam::operation::put_role_policy::PutRolePolicyError;
        let account = AccountId::parse("111111111111").unwrap();
        for (code, kind) in [
            ("AccessDenied", FailureKind::AccessDenied),
            ("NoSuchEntity", FailureKind::NotFound),
            ("Throttling", FailureKind::Throttled),
            ("ServiceFailure", FailureKind::Transient),
            ("MalformedPolicyDocument", FailureKind::Invalid),
        ] {
            let rule = mock!(aws_sdk_iam::Client::put_role_policy).then_error(move || {
                PutRolePolicyError::generic(
                    aws_sdk_iam::error::ErrorMetadata::builder().code(code).message("m").build(),
                )
            });
            let iam = mock_client!(aws_sdk_iam, RuleMode::MatchAny, [&rule]);
            let revoker = IamSessionRevoker::default().with_account(account.clone(), iam, "p-broker");
            let err = revoker.put_policy(&account, "{}").await.unwrap_err();
            assert_eq!(err.kind, kind, "{code}: {err}");
            assert!(err.message.starts_with("iam:PutRolePolicy on p-broker in 111111111111: "), "{err}");
        }
        // An account without a broker role is the deployment's mistake, not an outage.
        let other = AccountId::parse("222222222222").unwrap();
        assert_eq!(
            IamSessionRevoker::default().put_policy(&other, "{}").await.unwrap_err().kind,
            FailureKind::NotFound
        );
    }

    #[tokio::test]
    async fn concurrent_publishers_share_one_put_events_and_each_gets_its_own_outcome() {
        use aws_sdk_eventbridge::operation::put_events::PutEventsOutput;
        use aws_sdk_eventbridge::types::PutEventsResultEntry;
        let rule = mock!(aws_sdk_eventbridge::Client::put_events)
            .match_requests(|r| r.entries().len() == 3)
            .then_output(|| {
                PutEventsOutput::builder()
                    .failed_entry_count(1)
                    .entries(PutEventsResultEntry::builder().event_id("a").build())
                    .entries(PutEventsResultEntry::builder().error_code("InternalFailure").error_message("m").build())
                    .entries(PutEventsResultEntry::builder().event_id("c").build())
                    .build()
            });
        let audit = EventBridgeAudit::with_linger(
            mock_client!(aws_sdk_eventbridge, RuleMode::MatchAny, [&rule]),
            "bus",
            std::time::Duration::from_millis(200),
        );
        let event =
            |n: &str| [PublishedEvent { detail_type: "Grant Created".into(), detail: format!("{{\"n\":\"{n}\"}}") }];
        let (a, b, c) = (event("a"), event("b"), event("c"));
        let (first, second, third) = tokio::join!(
            audit.publish(&a),
            async {
                tokio::task::yield_now().await;
                audit.publish(&b).await
            },
            async {
                tokio::task::yield_now().await;
                tokio::task::yield_now().await;
                audit.publish(&c).await
            }
        );
        assert_eq!(rule.num_calls(), 1, "one call for the three publishers");
        assert!(first.is_ok() && third.is_ok(), "{first:?} {third:?}");
        assert_eq!(second.unwrap_err().kind, FailureKind::Transient, "only the failed entry's publisher fails");
    }

    #[tokio::test]
    async fn a_denied_bus_or_a_denied_entry_is_denied_and_an_outage_is_not() {
        use aws_sdk_eventbridge::operation::put_events::{PutEventsError, PutEventsOutput};
        use aws_sdk_eventbridge::types::PutEventsResultEntry;
        let events = [PublishedEvent { detail_type: "Grant Created".into(), detail: "{}".into() }];
        for (code, kind) in [
            ("AccessDeniedException", FailureKind::AccessDenied),
            ("ResourceNotFoundException", FailureKind::NotFound),
            ("ThrottlingException", FailureKind::Throttled),
            ("InternalException", FailureKind::Transient),
        ] {
            let rule = mock!(aws_sdk_eventbridge::Client::put_events).then_error(move || {
                PutEventsError::generic(
                    aws_sdk_eventbridge::error::ErrorMetadata::builder().code(code).message("m").build(),
                )
            });
            let audit = EventBridgeAudit::new(mock_client!(aws_sdk_eventbridge, RuleMode::MatchAny, [&rule]), "bus");
            assert_eq!(audit.publish(&events).await.unwrap_err().kind, kind, "{code}");
        }
        for (code, kind) in
            [("AccessDeniedException", FailureKind::AccessDenied), ("InternalFailure", FailureKind::Transient)]
        {
            let rule = mock!(aws_sdk_eventbridge::Client::put_events).then_output(move || {
                PutEventsOutput::builder()
                    .failed_entry_count(1)
                    .entries(PutEventsResultEntry::builder().error_code(code).error_message("m").build())
                    .build()
            });
            let audit = EventBridgeAudit::new(mock_client!(aws_sdk_eventbridge, RuleMode::MatchAny, [&rule]), "bus");
            let err = audit.publish(&events).await.unwrap_err();
            assert_eq!(err.kind, kind, "{code}: {err}");
            assert!(err.message.contains(code), "{err}");
        }
    }
}
