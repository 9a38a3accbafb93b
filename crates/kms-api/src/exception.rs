//! AWS exceptions and the one mapping from domain errors to them.

use kms_core::KmsError;
use serde::Serialize;

/// An AWS exception name (`__type`) with its HTTP status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Exception {
    AccessDenied,
    AlreadyExists,
    Conflict,
    Disabled,
    DryRunOperation,
    ExpiredToken,
    IncompleteSignature,
    IncorrectKey,
    InvalidAliasName,
    InvalidCiphertext,
    InvalidGrantToken,
    InvalidKeyUsage,
    InvalidMarker,
    InvalidSignature,
    KmsInternal,
    KmsInvalidMac,
    KmsInvalidSignature,
    KmsInvalidState,
    LimitExceeded,
    MalformedPolicyDocument,
    MissingAuthenticationToken,
    NotFound,
    RequestEntityTooLarge,
    RequestTimeout,
    Serialization,
    Tag,
    Throttling,
    UnknownOperation,
    UnrecognizedClient,
    UnsupportedOperation,
    Validation,
}

impl Exception {
    /// The `__type` name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::AccessDenied => "AccessDeniedException",
            Self::AlreadyExists => "AlreadyExistsException",
            Self::Conflict => "ConflictException",
            Self::Disabled => "DisabledException",
            Self::DryRunOperation => "DryRunOperationException",
            Self::ExpiredToken => "ExpiredTokenException",
            Self::IncompleteSignature => "IncompleteSignatureException",
            Self::IncorrectKey => "IncorrectKeyException",
            Self::InvalidAliasName => "InvalidAliasNameException",
            Self::InvalidCiphertext => "InvalidCiphertextException",
            Self::InvalidGrantToken => "InvalidGrantTokenException",
            Self::InvalidKeyUsage => "InvalidKeyUsageException",
            Self::InvalidMarker => "InvalidMarkerException",
            Self::InvalidSignature => "InvalidSignatureException",
            Self::KmsInternal => "KMSInternalException",
            Self::KmsInvalidMac => "KMSInvalidMacException",
            Self::KmsInvalidSignature => "KMSInvalidSignatureException",
            Self::KmsInvalidState => "KMSInvalidStateException",
            Self::LimitExceeded => "LimitExceededException",
            Self::MalformedPolicyDocument => "MalformedPolicyDocumentException",
            Self::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            Self::NotFound => "NotFoundException",
            Self::RequestEntityTooLarge => "RequestEntityTooLargeException",
            Self::RequestTimeout => "RequestTimeoutException",
            Self::Serialization => "SerializationException",
            Self::Tag => "TagException",
            Self::Throttling => "ThrottlingException",
            Self::UnknownOperation => "UnknownOperationException",
            Self::UnrecognizedClient => "UnrecognizedClientException",
            Self::UnsupportedOperation => "UnsupportedOperationException",
            Self::Validation => "ValidationException",
        }
    }

    /// The HTTP status: AWS KMS answers every client error with 400; server faults are 500;
    /// a DryRun that would have succeeded is 412; an oversized body is 413; a body not received
    /// within the server's deadline is 408 (as AWS front ends answer it).
    pub const fn status(self) -> u16 {
        match self {
            Self::KmsInternal => 500,
            Self::DryRunOperation => 412,
            Self::RequestTimeout => 408,
            Self::RequestEntityTooLarge => 413,
            _ => 400,
        }
    }

    /// Looks an exception up by its `__type` name.
    pub fn from_name(name: &str) -> Option<Self> {
        ALL.iter().copied().find(|e| e.name() == name)
    }
}

const ALL: &[Exception] = &[
    Exception::AccessDenied,
    Exception::AlreadyExists,
    Exception::Conflict,
    Exception::Disabled,
    Exception::DryRunOperation,
    Exception::ExpiredToken,
    Exception::IncompleteSignature,
    Exception::IncorrectKey,
    Exception::InvalidAliasName,
    Exception::InvalidCiphertext,
    Exception::InvalidGrantToken,
    Exception::InvalidKeyUsage,
    Exception::InvalidMarker,
    Exception::InvalidSignature,
    Exception::KmsInternal,
    Exception::KmsInvalidMac,
    Exception::KmsInvalidSignature,
    Exception::KmsInvalidState,
    Exception::LimitExceeded,
    Exception::MalformedPolicyDocument,
    Exception::MissingAuthenticationToken,
    Exception::NotFound,
    Exception::RequestEntityTooLarge,
    Exception::RequestTimeout,
    Exception::Serialization,
    Exception::Tag,
    Exception::Throttling,
    Exception::UnknownOperation,
    Exception::UnrecognizedClient,
    Exception::UnsupportedOperation,
    Exception::Validation,
];

/// An error as the client sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// The exception.
    pub exception: Exception,
    /// The message, if AWS sends one for this case.
    pub message: Option<String>,
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "__type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
}

impl ApiError {
    /// An error with an optional message.
    pub fn new(exception: Exception, message: Option<String>) -> Self {
        Self { exception, message }
    }

    /// An error with a message.
    pub fn with_message(exception: Exception, message: impl Into<String>) -> Self {
        Self { exception, message: Some(message.into()) }
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.exception.status()
    }

    /// The JSON body: `{"__type": "...", "message": "..."}`.
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&Body { kind: self.exception.name(), message: self.message.as_deref() }).unwrap_or_default()
    }
}

impl From<KmsError> for ApiError {
    /// The one mapping from domain errors to AWS exceptions. Exhaustive on purpose: a new
    /// domain error must decide what the client sees.
    fn from(e: KmsError) -> Self {
        let exception = match &e {
            KmsError::NotFound(_) => Exception::NotFound,
            KmsError::Disabled(_) => Exception::Disabled,
            KmsError::InvalidState { .. } | KmsError::NotPendingDeletion(_) => Exception::KmsInvalidState,
            KmsError::InvalidCiphertext => return Self::new(Exception::InvalidCiphertext, None),
            KmsError::InvalidSignature => return Self::new(Exception::KmsInvalidSignature, None),
            KmsError::InvalidMac => return Self::new(Exception::KmsInvalidMac, None),
            KmsError::IncorrectKey => Exception::IncorrectKey,
            KmsError::Validation(_) | KmsError::InvalidRequest(_) => Exception::Validation,
            KmsError::InvalidKeyUsage(_) => Exception::InvalidKeyUsage,
            KmsError::AlreadyExists(_) => Exception::AlreadyExists,
            KmsError::InvalidAliasName(_) => Exception::InvalidAliasName,
            KmsError::LimitExceeded(_) => Exception::LimitExceeded,
            KmsError::MalformedPolicyDocument(_) | KmsError::PolicyLockout => Exception::MalformedPolicyDocument,
            KmsError::Tag(_) => Exception::Tag,
            KmsError::InvalidMarker => Exception::InvalidMarker,
            KmsError::InvalidGrantToken => Exception::InvalidGrantToken,
            KmsError::Unsupported(_) => Exception::UnsupportedOperation,
            KmsError::AccessDenied(_) => Exception::AccessDenied,
            KmsError::DryRun => Exception::DryRunOperation,
        };
        Self::with_message(exception, e.to_string())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn body_shape() {
        let e = ApiError::with_message(Exception::NotFound, "Invalid keyId 'x'");
        let v: serde_json::Value = serde_json::from_slice(&e.body()).unwrap();
        assert_eq!(v["__type"], "NotFoundException");
        assert_eq!(v["message"], "Invalid keyId 'x'");
        let c: serde_json::Value = serde_json::from_slice(&ApiError::from(KmsError::InvalidCiphertext).body()).unwrap();
        assert_eq!(c, serde_json::json!({"__type": "InvalidCiphertextException"}));
        for e in ALL {
            assert_eq!(Exception::from_name(e.name()), Some(*e));
        }
    }
}
