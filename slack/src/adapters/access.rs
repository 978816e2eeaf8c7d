//! Portcullis over SQS through `portcullis-client`: the edge's own reply queue, its own AWS
//! credentials (whose `SenderId` the workers' `[[producers]]` entry names, `on_behalf = true`),
//! and the person from the binding as `on_behalf_of`.

use async_trait::async_trait;
use portcullis_client::{AccessClient, AskError, Auth};
use portcullis_domain::MessageId;
use portcullis_domain::messages::{GrantPending, OnBehalfOf, TemplateList};

use crate::ports::{Answer, Ask, Portcullis};

/// Portcullis, as a trusted producer.
#[derive(Debug)]
pub struct SqsPortcullis {
    client: AccessClient,
}

impl SqsPortcullis {
    pub fn new(client: AccessClient) -> Self {
        Self { client }
    }
}

#[async_trait]
impl Portcullis for SqsPortcullis {
    async fn ask(&self, who: &OnBehalfOf, id: MessageId, ask: Ask) -> Result<Answer, AskError> {
        let auth = Auth::OnBehalfOf(who.clone());
        let c = &self.client;
        Ok(match ask {
            Ask::Request(b) => Answer::Grant(Box::new(c.ask_with_id(&auth, &b, id).await?.grant)),
            Ask::Approve(b) => Answer::Grant(Box::new(c.ask_with_id(&auth, &b, id).await?.grant)),
            Ask::Deny(b) => Answer::Grant(Box::new(c.ask_with_id(&auth, &b, id).await?.grant)),
            Ask::Review(b) => Answer::Grant(Box::new(c.ask_with_id(&auth, &b, id).await?.grant)),
            Ask::Revoke(b) => Answer::Revoked(c.ask_with_id(&auth, &b, id).await?),
            Ask::List(b) => Answer::Grants(c.ask_with_id(&auth, &b, id).await?.grants),
            Ask::Pending => Answer::Pending(c.ask_with_id(&auth, &GrantPending {}, id).await?),
            Ask::Template(b) => Answer::Template(Box::new(c.ask_with_id(&auth, &b, id).await?.template)),
            Ask::Templates => Answer::Templates(c.ask_with_id(&auth, &TemplateList {}, id).await?.templates),
        })
    }
}
