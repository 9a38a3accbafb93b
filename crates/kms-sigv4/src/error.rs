//! The verification error type and its AWS error codes and messages.

use crate::time::format_iso_basic;
use crate::{MAX_CLOCK_SKEW_SECS, SIGNATURE_MISMATCH_MESSAGE};

/// Why a request's SigV4 authentication was rejected.
///
/// [`aws_error_code`](Self::aws_error_code) gives the AWS JSON-protocol error
/// code (the `__type` of the error body) and `Display` gives the message AWS's
/// JSON-protocol services return for the same failure. Values taken from the
/// request (header values, credential parts) are echoed in messages as AWS
/// does; secrets never are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SigV4Error {
    /// The request has no `Authorization` header, or one that does not start
    /// with `AWS4-` (no SigV4 authentication was attempted).
    #[error("Request is missing Authentication Token")]
    MissingAuthenticationToken,

    /// The `Authorization` header lacks `Credential`, `Signature` or
    /// `SignedHeaders`, or the request has neither `X-Amz-Date` nor `Date`.
    #[error("{}", missing_parameters_message(*.credential, *.signature, *.signed_headers, *.date, .authorization))]
    MissingParameters {
        /// `Credential=` is absent or empty.
        credential: bool,
        /// `Signature=` is absent or empty.
        signature: bool,
        /// `SignedHeaders=` is absent or empty.
        signed_headers: bool,
        /// Neither an `X-Amz-Date` nor a `Date` header is present.
        date: bool,
        /// The `Authorization` header as received.
        authorization: String,
    },

    /// A comma-separated item of the `Authorization` header has no `=`.
    #[error(
        "'{pair}' not a valid key=value pair (missing equal-sign) in Authorization header: \
         '{authorization}'."
    )]
    InvalidKeyValuePair {
        /// The offending item.
        pair: String,
        /// The `Authorization` header as received.
        authorization: String,
    },

    /// A parameter appears more than once in the `Authorization` header.
    #[error("Authorization header has more than one '{name}' parameter. Authorization={authorization}")]
    DuplicateParameter {
        /// The repeated parameter name.
        name: String,
        /// The `Authorization` header as received.
        authorization: String,
    },

    /// A header that must appear at most once appears several times.
    #[error("The request has more than one '{name}' header.")]
    DuplicateHeader {
        /// The repeated header name.
        name: &'static str,
    },

    /// The `Authorization` header contains bytes other than visible ASCII,
    /// space and tab.
    #[error(
        "Authorization header must contain only visible ASCII characters. \
         Authorization={authorization}"
    )]
    MalformedAuthorization {
        /// The header, lossily decoded as UTF-8.
        authorization: String,
    },

    /// The signing algorithm is not `AWS4-HMAC-SHA256`.
    #[error("Unsupported AWS 'algorithm': '{algorithm}' (only AWS4-HMAC-SHA256 for now). ")]
    UnsupportedAlgorithm {
        /// The algorithm named in the header.
        algorithm: String,
    },

    /// `X-Amz-Date` (or the `Date` fallback) is not a valid date in the
    /// accepted formats.
    #[error("Date must be in ISO-8601 'basic format'. Got '{value}'. See http://en.wikipedia.org/wiki/ISO_8601")]
    MalformedDate {
        /// The header value, lossily decoded as UTF-8.
        value: String,
    },

    /// The credential is not `keyid/date/region/service/term` with five
    /// non-empty elements.
    #[error(
        "Credential must have exactly 5 slash-delimited elements, e.g. \
         keyid/date/region/service/term, got '{credential}'"
    )]
    MalformedCredential {
        /// The `Credential` value.
        credential: String,
    },

    /// `SignedHeaders` is not a `;`-separated list of lowercase header names.
    #[error(
        "SignedHeaders must be a ';'-separated list of lowercase header names, \
         got '{signed_headers}'."
    )]
    MalformedSignedHeaders {
        /// The `SignedHeaders` value.
        signed_headers: String,
    },

    /// `host` is not among the signed headers.
    #[error("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")]
    HostNotSigned,

    /// A header listed in `SignedHeaders` is absent from the request.
    #[error("'{name}' is listed in 'SignedHeaders' but is not present in the request.")]
    SignedHeaderMissing {
        /// The absent header's name.
        name: String,
    },

    /// The credential scope does not end in `aws4_request`.
    #[error("Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'.")]
    InvalidTerminator {
        /// The terminator given.
        terminator: String,
    },

    /// The credential scope date differs from the date of the request time.
    #[error(
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date \
         from HTTP: '{scope_date}' != '{request_date}', from '{request_time}'."
    )]
    ScopeDateMismatch {
        /// The date in the credential scope.
        scope_date: String,
        /// `YYYYMMDD` of the request time.
        request_date: String,
        /// The request time in ISO 8601 basic format.
        request_time: String,
    },

    /// The credential scope names another region than this server's.
    #[error("Credential should be scoped to a valid region, not '{region}'. ")]
    WrongRegion {
        /// The region in the credential scope.
        region: String,
    },

    /// The credential scope names another service than the expected one.
    #[error("Credential should be scoped to correct service: '{expected}'. ")]
    WrongService {
        /// The service the server expects.
        expected: String,
    },

    /// The request time is more than 15 minutes before `now`.
    #[error(
        "Signature expired: {} is now earlier than {} ({} - 15 min.)",
        format_iso_basic(*.request_time),
        format_iso_basic(.now.saturating_sub(MAX_CLOCK_SKEW_SECS)),
        format_iso_basic(*.now)
    )]
    SignatureExpired {
        /// Request time, unix seconds.
        request_time: i64,
        /// Server time, unix seconds.
        now: i64,
    },

    /// The request time is more than 15 minutes after `now`.
    #[error(
        "Signature not yet current: {} is still later than {} ({} + 15 min.)",
        format_iso_basic(*.request_time),
        format_iso_basic(.now.saturating_add(MAX_CLOCK_SKEW_SECS)),
        format_iso_basic(*.now)
    )]
    SignatureNotYetCurrent {
        /// Request time, unix seconds.
        request_time: i64,
        /// Server time, unix seconds.
        now: i64,
    },

    /// `X-Amz-Content-Sha256` is present and differs from the SHA-256 of the
    /// body.
    #[error("The provided 'x-amz-content-sha256' header does not match what was computed.")]
    ContentSha256Mismatch,

    /// The signature is not the one computed from the request and key (or is
    /// not 64 lowercase hex digits).
    #[error("{}", SIGNATURE_MISMATCH_MESSAGE)]
    SignatureMismatch,

    /// The access key id or security token is not recognized. This crate
    /// returns it only for a security token that is not visible ASCII; the
    /// caller returns it when its secret lookup fails, so that the error has
    /// AWS's code and message.
    #[error("The security token included in the request is invalid.")]
    UnrecognizedClient,
}

impl SigV4Error {
    /// The AWS exception this error is answered with.
    #[must_use]
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::MissingAuthenticationToken => ErrorClass::MissingAuthenticationToken,
            Self::MissingParameters { .. }
            | Self::InvalidKeyValuePair { .. }
            | Self::DuplicateParameter { .. }
            | Self::DuplicateHeader { .. }
            | Self::MalformedAuthorization { .. }
            | Self::UnsupportedAlgorithm { .. }
            | Self::MalformedDate { .. }
            | Self::MalformedCredential { .. }
            | Self::MalformedSignedHeaders { .. } => ErrorClass::IncompleteSignature,
            Self::HostNotSigned
            | Self::SignedHeaderMissing { .. }
            | Self::InvalidTerminator { .. }
            | Self::ScopeDateMismatch { .. }
            | Self::WrongRegion { .. }
            | Self::WrongService { .. }
            | Self::SignatureExpired { .. }
            | Self::SignatureNotYetCurrent { .. }
            | Self::ContentSha256Mismatch
            | Self::SignatureMismatch => ErrorClass::InvalidSignature,
            Self::UnrecognizedClient => ErrorClass::UnrecognizedClient,
        }
    }

    /// The AWS error code (JSON `__type`) for this error, as KMS and other AWS JSON-protocol
    /// services return it.
    #[must_use]
    pub fn aws_error_code(&self) -> &'static str {
        self.class().aws_error_code()
    }
}

/// AWS lists every missing piece, then echoes the header.
fn missing_parameters_message(
    credential: bool,
    signature: bool,
    signed_headers: bool,
    date: bool,
    authorization: &str,
) -> String {
    let mut message = String::new();
    for (missing, name) in [(credential, "Credential"), (signature, "Signature"), (signed_headers, "SignedHeaders")] {
        if missing {
            message.push_str(&format!("Authorization header requires '{name}' parameter. "));
        }
    }
    if date {
        message.push_str("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ");
    }
    message + "Authorization=" + authorization
}

/// The four exceptions AWS answers authentication failures with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// No credentials at all.
    MissingAuthenticationToken,
    /// An Authorization header or query that is not a complete SigV4 signature.
    IncompleteSignature,
    /// A signature that does not verify, or is for another scope or time.
    InvalidSignature,
    /// An access key the service does not know.
    UnrecognizedClient,
}

impl ErrorClass {
    /// The AWS error code (`__type`).
    pub const fn aws_error_code(self) -> &'static str {
        match self {
            Self::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            Self::IncompleteSignature => "IncompleteSignatureException",
            Self::InvalidSignature => "InvalidSignatureException",
            Self::UnrecognizedClient => "UnrecognizedClientException",
        }
    }
}
