//! The AWS side of the access ports: DynamoDB, STS, SQS replies, and OIDC over HTTP.

mod dynamo;
mod evidence;
mod oidc;
mod sqs_reply;
mod sts;

pub use self::dynamo::DynamoStore;
pub use self::evidence::DynamoEvidenceReader;
pub use self::oidc::OidcVerifier;
pub use self::sqs_reply::{ATTR_IN_REPLY_TO, SqsReplySink};
pub use self::sts::StsBroker;
