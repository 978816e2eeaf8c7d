//! How a use case fails: [`Failure`] (refused with a code, or worth retrying) and the one conversion
//! of every classified dependency failure into it. Imports nothing else from this crate.

use portcullis_domain::{ErrorCode, RequestError};
use portcullis_runtime::aws::{FailureKind, SdkFailure};

/// A storage failure.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    /// The store could not be reached or failed; retrying may help.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A stored item cannot be decoded: retrying cannot help.
    #[error("stored item {key} is unreadable: {message}")]
    Corrupt { key: String, message: String },
    /// A concurrent update won a conditional write; retry at once.
    #[error("concurrent update of {0}; retry")]
    Conflict(String),
    /// What a write was decided on changed since it was read (a condition of the write): read it
    /// again and decide again.
    #[error("{0} changed since it was read")]
    Stale(String),
    /// The store refused the request itself (for example a key over its size limit): retrying
    /// cannot help.
    #[error("the store refused the request: {0}")]
    Invalid(String),
    /// The deployment refused the call: the worker's role may not make it (`AccessDenied`, a key
    /// policy) or the table does not exist. Retrying cannot help; an operator must fix it.
    #[error("the store refused the worker: {0}")]
    Denied(String),
}

/// A refused request, or a failure worth retrying.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    Refused(RequestError),
    Retry(String),
    /// What the request was decided on changed before it was written: serve it again with fresh
    /// reads (the handler does at once; otherwise it is a retry).
    Stale(String),
}

impl From<RequestError> for Failure {
    fn from(e: RequestError) -> Self {
        Failure::Refused(e)
    }
}

/// The one conversion of a classified dependency failure into retry or refusal: throttling, an
/// outage or a lost race is retried with backoff; a call the deployment refuses (denied, a missing
/// resource, an unimplemented API) is refused at once as `worker_denied`, never retried to the last
/// delivery; a call AWS rejects as invalid is refused as `bad_request`.
impl From<SdkFailure> for Failure {
    fn from(f: SdkFailure) -> Self {
        match f.kind {
            FailureKind::Throttled | FailureKind::Transient | FailureKind::ConditionFailed => Failure::Retry(f.message),
            FailureKind::AccessDenied | FailureKind::NotFound | FailureKind::Unsupported => {
                Failure::Refused(worker_denied(&f.message))
            }
            FailureKind::Invalid => Failure::Refused(RequestError::new(
                ErrorCode::BadRequest,
                format!("AWS refused a call this request needs as invalid ({}); retrying cannot help", f.message),
            )),
        }
    }
}

fn worker_denied(message: &str) -> RequestError {
    RequestError::new(
        ErrorCode::WorkerDenied,
        format!(
            "{message}; the deployment refused a call Portcullis needs: an operator must fix the worker's \
             permissions, then redrive this message"
        ),
    )
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) | StoreError::Conflict(_) => Failure::Retry(e.to_string()),
            StoreError::Stale(_) => Failure::Stale(e.to_string()),
            StoreError::Denied(_) => Failure::Refused(worker_denied(&e.to_string())),
            StoreError::Invalid(_) => Failure::Refused(RequestError::new(
                ErrorCode::BadRequest,
                format!("the request could not be stored ({e}); check its names and values"),
            )),
            StoreError::Corrupt { .. } => Failure::Refused(RequestError::new(
                ErrorCode::StoredDataInvalid,
                format!("{e}; a Portcullis admin must repair or remove the record"),
            )),
        }
    }
}
