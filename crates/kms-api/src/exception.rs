//! AWS exceptions and the one mapping from domain errors to them.

use kms_core::KmsError;
use kms_core::error::ImportError;
use serde::Serialize;

/// An AWS exception name (`__type`) with its HTTP status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Exception {
    AccessDenied,
    AlreadyExists,
    /// CloudTrail's `CloudTrailARNInvalidException`.
    CloudTrailArnInvalid,
    Conflict,
    Disabled,
    DryRunOperation,
    ExpiredImportToken,
    /// STS: a web identity token past its `exp` (the query protocol only).
    ExpiredIdentityToken,
    ExpiredToken,
    IncompleteSignature,
    IncorrectKey,
    IncorrectKeyMaterial,
    InvalidAliasName,
    InvalidCiphertext,
    InvalidGrantToken,
    /// STS: a web identity token that does not verify (the query protocol only).
    InvalidIdentityToken,
    InvalidImportToken,
    /// IAM's `InvalidInput` (the query protocol only).
    InvalidInput,
    /// CloudTrail's `InvalidLookupAttributesException`.
    InvalidLookupAttributes,
    InvalidKeyUsage,
    /// CloudTrail's `InvalidMaxResultsException`.
    InvalidMaxResults,
    InvalidMarker,
    /// CloudTrail's `InvalidNextTokenException`.
    InvalidNextToken,
    InvalidSignature,
    /// CloudTrail's `InvalidTimeRangeException`.
    InvalidTimeRange,
    /// CloudTrail's `InvalidTokenException` (ListPublicKeys' NextToken).
    InvalidToken,
    /// CloudTrail's `InvalidTrailNameException`.
    InvalidTrailName,
    KmsInternal,
    KmsInvalidMac,
    KmsInvalidSignature,
    KmsInvalidState,
    LimitExceeded,
    MalformedPolicyDocument,
    MissingAuthenticationToken,
    NotAuthorized,
    NotFound,
    RequestEntityTooLarge,
    RequestTimeout,
    Serialization,
    Tag,
    Throttling,
    /// CloudTrail's `TrailNotFoundException`.
    TrailNotFound,
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
            Self::CloudTrailArnInvalid => "CloudTrailARNInvalidException",
            Self::Conflict => "ConflictException",
            Self::Disabled => "DisabledException",
            Self::DryRunOperation => "DryRunOperationException",
            Self::ExpiredImportToken => "ExpiredImportTokenException",
            Self::ExpiredIdentityToken => "ExpiredIdentityToken",
            Self::ExpiredToken => "ExpiredTokenException",
            Self::IncompleteSignature => "IncompleteSignatureException",
            Self::IncorrectKey => "IncorrectKeyException",
            Self::IncorrectKeyMaterial => "IncorrectKeyMaterialException",
            Self::InvalidAliasName => "InvalidAliasNameException",
            Self::InvalidCiphertext => "InvalidCiphertextException",
            Self::InvalidGrantToken => "InvalidGrantTokenException",
            Self::InvalidIdentityToken => "InvalidIdentityToken",
            Self::InvalidImportToken => "InvalidImportTokenException",
            Self::InvalidInput => "InvalidInput",
            Self::InvalidLookupAttributes => "InvalidLookupAttributesException",
            Self::InvalidKeyUsage => "InvalidKeyUsageException",
            Self::InvalidMaxResults => "InvalidMaxResultsException",
            Self::InvalidMarker => "InvalidMarkerException",
            Self::InvalidNextToken => "InvalidNextTokenException",
            Self::InvalidSignature => "InvalidSignatureException",
            Self::InvalidTimeRange => "InvalidTimeRangeException",
            Self::InvalidToken => "InvalidTokenException",
            Self::InvalidTrailName => "InvalidTrailNameException",
            Self::KmsInternal => "KMSInternalException",
            Self::KmsInvalidMac => "KMSInvalidMacException",
            Self::KmsInvalidSignature => "KMSInvalidSignatureException",
            Self::KmsInvalidState => "KMSInvalidStateException",
            Self::LimitExceeded => "LimitExceededException",
            Self::MalformedPolicyDocument => "MalformedPolicyDocumentException",
            Self::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            Self::NotAuthorized => "NotAuthorizedException",
            Self::NotFound => "NotFoundException",
            Self::RequestEntityTooLarge => "RequestEntityTooLargeException",
            Self::RequestTimeout => "RequestTimeoutException",
            Self::Serialization => "SerializationException",
            Self::Tag => "TagException",
            Self::Throttling => "ThrottlingException",
            Self::TrailNotFound => "TrailNotFoundException",
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
    Exception::CloudTrailArnInvalid,
    Exception::Conflict,
    Exception::Disabled,
    Exception::DryRunOperation,
    Exception::ExpiredImportToken,
    Exception::ExpiredIdentityToken,
    Exception::ExpiredToken,
    Exception::IncompleteSignature,
    Exception::IncorrectKey,
    Exception::IncorrectKeyMaterial,
    Exception::InvalidAliasName,
    Exception::InvalidCiphertext,
    Exception::InvalidGrantToken,
    Exception::InvalidIdentityToken,
    Exception::InvalidImportToken,
    Exception::InvalidInput,
    Exception::InvalidLookupAttributes,
    Exception::InvalidKeyUsage,
    Exception::InvalidMaxResults,
    Exception::InvalidMarker,
    Exception::InvalidNextToken,
    Exception::InvalidSignature,
    Exception::InvalidTimeRange,
    Exception::InvalidToken,
    Exception::InvalidTrailName,
    Exception::KmsInternal,
    Exception::KmsInvalidMac,
    Exception::KmsInvalidSignature,
    Exception::KmsInvalidState,
    Exception::LimitExceeded,
    Exception::MalformedPolicyDocument,
    Exception::MissingAuthenticationToken,
    Exception::NotAuthorized,
    Exception::NotFound,
    Exception::RequestEntityTooLarge,
    Exception::RequestTimeout,
    Exception::Serialization,
    Exception::Tag,
    Exception::Throttling,
    Exception::TrailNotFound,
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
            // AWS answers a customer's alias/aws/... name this way (not InvalidAliasNameException).
            KmsError::InvalidAliasName(kms_core::ids::AliasNameError::Reserved) => Exception::NotAuthorized,
            KmsError::InvalidAliasName(_) => Exception::InvalidAliasName,
            KmsError::LimitExceeded(_) => Exception::LimitExceeded,
            KmsError::MalformedPolicyDocument(_) | KmsError::PolicyLockout => Exception::MalformedPolicyDocument,
            KmsError::Tag(_) => Exception::Tag,
            KmsError::InvalidMarker => Exception::InvalidMarker,
            KmsError::InvalidGrantToken => Exception::InvalidGrantToken,
            KmsError::Unsupported(_) => Exception::UnsupportedOperation,
            KmsError::AccessDenied(_) => Exception::AccessDenied,
            KmsError::DryRun => Exception::DryRunOperation,
            KmsError::ReplicaExists { .. } => Exception::AlreadyExists,
            KmsError::NoReplica { .. } => Exception::NotFound,
            KmsError::Import(e) => match e {
                ImportError::NotExternal(_) => Exception::UnsupportedOperation,
                ImportError::InvalidToken(_) => Exception::InvalidImportToken,
                ImportError::ExpiredToken => Exception::ExpiredImportToken,
                ImportError::IncorrectMaterial(_) => Exception::IncorrectKeyMaterial,
                ImportError::UnknownMaterial { .. } => Exception::NotFound,
                ImportError::MaterialState(_) => Exception::KmsInvalidState,
            },
        };
        Self::with_message(exception, e.to_string())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use kms_core::error::{AccessDenied, ImportError, KeyUsageError, Limit, NotFound, RequestRule, Unsupported};
    use kms_core::ids::{AccountId, AliasArn, AliasName, AliasNameError, KeyArn, KeyId, Region};
    use kms_core::key::KeyState;
    use kms_core::policy::PolicyError;
    use kms_core::tag::TagError;
    use kms_core::validation::Violations;

    use super::*;

    /// The position of `e`'s variant. Exhaustive on purpose: a new variant does not compile
    /// until it has its number here, and then the table below lacks a row for it.
    fn variant(e: &KmsError) -> usize {
        match e {
            KmsError::NotFound(_) => 0,
            KmsError::Disabled(_) => 1,
            KmsError::InvalidState { .. } => 2,
            KmsError::NotPendingDeletion(_) => 3,
            KmsError::InvalidCiphertext => 4,
            KmsError::InvalidSignature => 5,
            KmsError::InvalidMac => 6,
            KmsError::IncorrectKey => 7,
            KmsError::Validation(_) => 8,
            KmsError::InvalidRequest(_) => 9,
            KmsError::InvalidKeyUsage(_) => 10,
            KmsError::AlreadyExists(_) => 11,
            KmsError::InvalidAliasName(_) => 12,
            KmsError::LimitExceeded(_) => 13,
            KmsError::MalformedPolicyDocument(_) => 14,
            KmsError::PolicyLockout => 15,
            KmsError::Tag(_) => 16,
            KmsError::InvalidMarker => 17,
            KmsError::InvalidGrantToken => 18,
            KmsError::AccessDenied(_) => 19,
            KmsError::DryRun => 20,
            KmsError::Unsupported(_) => 21,
            KmsError::Import(ImportError::NotExternal(_)) => 22,
            KmsError::Import(ImportError::InvalidToken(_)) => 23,
            KmsError::Import(ImportError::ExpiredToken) => 24,
            KmsError::Import(ImportError::IncorrectMaterial(_)) => 25,
            KmsError::Import(ImportError::UnknownMaterial { .. }) => 26,
            KmsError::Import(ImportError::MaterialState(_)) => 27,
            KmsError::ReplicaExists { .. } => 28,
            KmsError::NoReplica { .. } => 29,
        }
    }

    /// Every domain error becomes exactly the AWS exception (and status) of the table.
    #[test]
    fn every_domain_error_has_its_exception() {
        let region = Region::parse("us-east-1").unwrap();
        let account = AccountId::parse("111122223333").unwrap();
        let arn =
            KeyArn { region: region.clone(), account: account.clone(), key_id: KeyId::from_random_bytes([7; 16]) };
        let alias = AliasArn { region, account, name: AliasName::parse("alias/a").unwrap() };
        let table: Vec<(KmsError, &str, u16)> = vec![
            (KmsError::NotFound(NotFound::Key(arn.clone())), "NotFoundException", 400),
            (KmsError::Disabled(arn.clone()), "DisabledException", 400),
            (
                KmsError::InvalidState { arn: arn.clone(), state: KeyState::PendingDeletion },
                "KMSInvalidStateException",
                400,
            ),
            (KmsError::NotPendingDeletion(arn.clone()), "KMSInvalidStateException", 400),
            (KmsError::InvalidCiphertext, "InvalidCiphertextException", 400),
            (KmsError::InvalidSignature, "KMSInvalidSignatureException", 400),
            (KmsError::InvalidMac, "KMSInvalidMacException", 400),
            (KmsError::IncorrectKey, "IncorrectKeyException", 400),
            (KmsError::Validation(Violations::default()), "ValidationException", 400),
            (KmsError::InvalidRequest(RequestRule::KeyUsageRequired), "ValidationException", 400),
            (
                KmsError::InvalidKeyUsage(Box::new(KeyUsageError::SpecAlgorithm { algorithm: "A", spec: "S" })),
                "InvalidKeyUsageException",
                400,
            ),
            (KmsError::AlreadyExists(alias), "AlreadyExistsException", 400),
            (KmsError::InvalidAliasName(AliasNameError::Length(0)), "InvalidAliasNameException", 400),
            (KmsError::InvalidAliasName(AliasNameError::Reserved), "NotAuthorizedException", 400),
            (KmsError::LimitExceeded(Limit::TagsPerKey(50)), "LimitExceededException", 400),
            (KmsError::MalformedPolicyDocument(PolicyError::Json("x".into())), "MalformedPolicyDocumentException", 400),
            (KmsError::PolicyLockout, "MalformedPolicyDocumentException", 400),
            (KmsError::Tag(TagError::ReservedPrefix("aws:x".into())), "TagException", 400),
            (KmsError::InvalidMarker, "InvalidMarkerException", 400),
            (KmsError::InvalidGrantToken, "InvalidGrantTokenException", 400),
            (
                KmsError::AccessDenied(Box::new(AccessDenied {
                    principal: "p".into(),
                    action: "kms:Encrypt".into(),
                    resource: "r".into(),
                    reason: "because".into(),
                })),
                "AccessDeniedException",
                400,
            ),
            (KmsError::DryRun, "DryRunOperationException", 412),
            (KmsError::Unsupported(Unsupported::NotMultiRegion("k".into())), "UnsupportedOperationException", 400),
            (KmsError::Import(ImportError::NotExternal(arn.clone())), "UnsupportedOperationException", 400),
            (KmsError::Import(ImportError::InvalidToken(arn.clone())), "InvalidImportTokenException", 400),
            (KmsError::Import(ImportError::ExpiredToken), "ExpiredImportTokenException", 400),
            (KmsError::Import(ImportError::IncorrectMaterial("x".into())), "IncorrectKeyMaterialException", 400),
            (
                KmsError::Import(ImportError::UnknownMaterial { arn: arn.clone(), material: "m".into() }),
                "NotFoundException",
                400,
            ),
            (KmsError::Import(ImportError::MaterialState("x".into())), "KMSInvalidStateException", 400),
            (KmsError::ReplicaExists { arn: arn.clone(), region: "eu-west-1".into() }, "AlreadyExistsException", 400),
            (KmsError::NoReplica { arn: arn.clone(), region: "eu-west-1".into() }, "NotFoundException", 400),
        ];
        let mut seen: Vec<usize> = table.iter().map(|(e, _, _)| variant(e)).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen, (0..=29).collect::<Vec<_>>(), "a row for every variant");
        for (e, name, status) in table {
            let api = ApiError::from(e);
            assert_eq!((api.exception.name(), api.status()), (name, status));
        }
    }

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
