//! The `posture.status` use case: the latest posture evidence, read-only, for the people allowed to
//! see it. Evidence comes through the [`EvidenceReader`] port; who may read it and which accounts and
//! regions exist come from the settings, as a [`PostureReading`] given to
//! [`AccessHandler::with_posture_reading`].

use std::sync::Arc;

use portcullis_domain::messages::{PostureStatus, PostureStatusResult};
use portcullis_domain::{AccountId, ErrorCode, RequestError};
use portcullis_runtime::config::Settings;

use crate::front::Failure;
use crate::handler::{AccessHandler, Ctx};
use crate::ports::EvidenceReader;

/// Where posture evidence is read from, and who may read it.
#[derive(Debug, Clone)]
pub struct PostureReading {
    pub reader: Arc<dyn EvidenceReader>,
    /// Members of any of these groups may read it.
    pub reader_groups: Vec<String>,
    /// Every account the posture worker scans.
    pub accounts: Vec<AccountId>,
    /// Every region it scans; empty means all regions (then a request must name one).
    pub regions: Vec<String>,
}

impl PostureReading {
    /// The reading the settings describe for a worker whose own account is `own_account`: that
    /// account and `posture.accounts`, in `posture.regions` (default: the stack's region).
    pub fn from_settings(settings: &Settings, own_account: &AccountId, reader: Arc<dyn EvidenceReader>) -> Self {
        let mut accounts = vec![own_account.clone()];
        for a in &settings.posture.accounts {
            if !accounts.contains(&a.account_id) {
                accounts.push(a.account_id.clone());
            }
        }
        let regions = match settings.posture.regions.as_slice() {
            [all] if all == "all" => Vec::new(),
            [] => vec![settings.aws.region.clone().unwrap_or_else(|| "us-east-1".into())],
            some => some.to_vec(),
        };
        Self { reader, reader_groups: settings.access.posture_reader_groups.clone(), accounts, regions }
    }
}

/// Whether `region` looks like an AWS region name (`us-east-1`, `ap-southeast-2`, `us-gov-west-1`).
pub(crate) fn is_region_name(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && region.len() <= 32
        && parts[0].len() == 2
        && parts[..parts.len() - 1].iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].len() == 1
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
}

impl AccessHandler {
    pub(crate) async fn posture_status(&self, r: PostureStatus, ctx: &Ctx<'_>) -> Result<String, Failure> {
        let Some(reading) = &self.posture else {
            return Err(RequestError::new(
                ErrorCode::Unavailable,
                "this access worker does not serve posture.status; ask a Portcullis admin",
            )
            .into());
        };
        if !ctx.who.in_any_group(&reading.reader_groups) {
            return Err(RequestError::new(
                ErrorCode::Forbidden,
                format!(
                    "only members of {} may read the posture evidence; ask a Portcullis admin",
                    reading.reader_groups.join(" or ")
                ),
            )
            .into());
        }
        let accounts = match r.account {
            Some(account) if reading.accounts.contains(&account) => vec![account],
            Some(account) => {
                let known: Vec<&str> = reading.accounts.iter().map(AccountId::as_str).collect();
                return Err(RequestError::new(
                    ErrorCode::AccountUnknown,
                    format!("account `{account}` is not scanned by Portcullis; use one of {}", known.join(", ")),
                )
                .into());
            }
            None => reading.accounts.clone(),
        };
        let regions = match r.region {
            Some(region) if is_region_name(&region) => vec![region],
            Some(_) => {
                return Err(
                    RequestError::new(ErrorCode::BadRequest, "region must be a region name such as us-east-1").into()
                );
            }
            None if reading.regions.is_empty() => {
                return Err(RequestError::new(
                    ErrorCode::BadRequest,
                    "Portcullis scans every region here: name one, e.g. {\"region\": \"us-east-1\"}",
                )
                .into());
            }
            None => reading.regions.clone(),
        };
        let mut controls = reading.reader.latest_evidence(&accounts, &regions).await?;
        controls.sort_by(|a, b| (&a.account, &a.region, &a.control_id).cmp(&(&b.account, &b.region, &b.control_id)));
        ctx.answer.ok_text(&PostureStatusResult { controls })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_names() {
        for ok in ["us-east-1", "ap-southeast-2", "us-gov-west-1", "eu-central-1"] {
            assert!(is_region_name(ok), "{ok}");
        }
        for bad in ["", "us-east", "US-EAST-1", "us-east-12", "x-east-1", "us--1", "us-east-1#x"] {
            assert!(!is_region_name(bad), "{bad}");
        }
    }
}
