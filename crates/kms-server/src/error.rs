//! The service's error type and its mapping to what the client sees.

use kms_api::{ApiError, Exception};
use kms_core::KmsError;
use kms_crypto::{CryptoError, RootKeyError};
use kms_store::StoreError;

/// Everything a request can fail with inside the service.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A domain error: the client's request cannot be honoured.
    #[error(transparent)]
    Kms(#[from] KmsError),
    /// A wire-level error already in AWS form (serialization, authentication).
    #[error("{}", .0.exception.name())]
    Api(ApiError),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The root key could not unwrap or wrap.
    #[error("root key: {0}")]
    RootKey(#[from] RootKeyError),
    /// A cipher failed where it cannot fail for valid input.
    #[error("crypto: {0}")]
    Crypto(CryptoError),
}

impl From<ApiError> for ServiceError {
    fn from(e: ApiError) -> Self {
        Self::Api(e)
    }
}

impl ServiceError {
    /// What the client sees. Internal failures become `KMSInternalException` naming the request
    /// id, with the detail left to the server log.
    pub fn to_api(&self, request_id: &str) -> ApiError {
        match self {
            Self::Kms(e) => ApiError::from(e.clone()),
            // Another request kept changing the same key: the client may retry, as with AWS's
            // ConflictException for rotations in progress.
            Self::Store(StoreError::Conflict) => ApiError::with_message(
                Exception::Conflict,
                "The request conflicted with concurrent changes to the same key. Retry the request.",
            ),
            Self::Api(e) => e.clone(),
            Self::Store(_) | Self::RootKey(_) | Self::Crypto(_) => ApiError::with_message(
                Exception::KmsInternal,
                format!("The request failed because of an internal error. Request id: {request_id}"),
            ),
        }
    }

    /// Whether this is a server-side fault worth logging at error level.
    pub fn is_internal(&self) -> bool {
        matches!(self, Self::Store(e) if !matches!(e, StoreError::Conflict))
            || matches!(self, Self::RootKey(_) | Self::Crypto(_))
    }
}
