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
