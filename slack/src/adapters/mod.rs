//! The edge's ports over the network: Slack's Web API (HTTP, bot token), Portcullis (SQS, as a
//! trusted producer), the stack's DynamoDB table, the Portcullis bus (EventBridge).

mod access;
mod dynamo;
mod events;
mod slack_web;

pub use self::access::SqsPortcullis;
pub use self::dynamo::DynamoEdgeStore;
pub use self::events::EventBridgeLinkAudit;
pub use self::slack_web::SlackWebApi;
