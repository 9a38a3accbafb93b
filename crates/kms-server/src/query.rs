//! The AWS query protocol shared by STS and IAM on the same endpoint: form-encoded requests
//! (`Action=…&Version=…`), XML answers, and each API's own error codes and statuses.

use kms_api::{ApiError, Exception};

/// Which query API a request is for (the SigV4 credential scope's service).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueryApi {
    /// AWS STS (`2011-06-15`).
    Sts,
    /// AWS IAM (`2010-05-08`).
    Iam,
}

impl QueryApi {
    /// The XML namespace of the API's answers.
    pub const fn namespace(self) -> &'static str {
        match self {
            Self::Sts => "https://sts.amazonaws.com/doc/2011-06-15/",
            Self::Iam => "https://iam.amazonaws.com/doc/2010-05-08/",
        }
    }

    /// CloudTrail's `eventSource` for the API.
    pub const fn event_source(self) -> &'static str {
        match self {
            Self::Sts => "sts.amazonaws.com",
            Self::Iam => "iam.amazonaws.com",
        }
    }

    /// The API whose `eventSource` this is, if a query API's.
    pub fn from_event_source(source: &str) -> Option<Self> {
        [Self::Sts, Self::Iam].into_iter().find(|api| api.event_source() == source)
    }

    /// The API's error code for an exception (authentication failures are the same in both).
    fn code(self, e: Exception) -> &'static str {
        match (e, self) {
            (Exception::UnrecognizedClient, _) => "InvalidClientTokenId",
            (Exception::InvalidSignature, _) => "SignatureDoesNotMatch",
            (Exception::IncompleteSignature, _) => "IncompleteSignature",
            (Exception::MissingAuthenticationToken, _) => "MissingAuthenticationToken",
            (Exception::ExpiredToken, _) => "ExpiredToken",
            (Exception::ExpiredIdentityToken, _) => "ExpiredTokenException",
            (Exception::InvalidIdentityToken, _) => "InvalidIdentityToken",
            (Exception::AccessDenied, _) => "AccessDenied",
            (Exception::Validation | Exception::Serialization, _) => "ValidationError",
            (Exception::KmsInternal, QueryApi::Sts) => "InternalFailure",
            (Exception::KmsInternal, QueryApi::Iam) => "ServiceFailure",
            (Exception::Throttling, _) => "Throttling",
            (Exception::NotFound, QueryApi::Iam) => "NoSuchEntity",
            (Exception::AlreadyExists, QueryApi::Iam) => "EntityAlreadyExists",
            (Exception::Conflict, QueryApi::Iam) => "DeleteConflict",
            (Exception::LimitExceeded, QueryApi::Iam) => "LimitExceeded",
            (Exception::MalformedPolicyDocument, QueryApi::Iam | QueryApi::Sts) => "MalformedPolicyDocument",
            (Exception::InvalidInput | Exception::InvalidMarker, QueryApi::Iam) => "InvalidInput",
            (Exception::UnknownOperation, _) => "InvalidAction",
            _ => "InvalidAction",
        }
    }

    /// The HTTP status of an error: 403 for authentication and authorization failures, IAM's
    /// 404 and 409 for missing entities and conflicts.
    pub fn status(self, e: Exception) -> u16 {
        match (e, self) {
            (
                Exception::UnrecognizedClient
                | Exception::InvalidSignature
                | Exception::IncompleteSignature
                | Exception::MissingAuthenticationToken
                | Exception::AccessDenied,
                _,
            ) => 403,
            (Exception::NotFound, QueryApi::Iam) => 404,
            (Exception::AlreadyExists | Exception::Conflict | Exception::LimitExceeded, QueryApi::Iam) => 409,
            (other, _) => other.status(),
        }
    }

    /// An error response body.
    pub fn error_body(self, e: &ApiError, request_id: &str) -> Vec<u8> {
        let kind = if e.exception == Exception::KmsInternal { "Receiver" } else { "Sender" };
        format!(
            "<ErrorResponse xmlns=\"{}\"><Error><Type>{kind}</Type><Code>{}</Code><Message>{}</Message></Error>\
             <RequestId>{}</RequestId></ErrorResponse>",
            self.namespace(),
            self.code(e.exception),
            xml_escape(e.message.as_deref().unwrap_or_default()),
            xml_escape(request_id)
        )
        .into_bytes()
    }

    /// A successful answer: `<{action}Response>` holding `<{action}Result>` (when `result` is
    /// given; IAM's operations that return nothing have none) and the request id.
    pub fn respond(self, action: &str, result: Option<&str>, request_id: &str) -> Vec<u8> {
        let result = result.map(|r| format!("<{action}Result>{r}</{action}Result>")).unwrap_or_default();
        format!(
            "<{action}Response xmlns=\"{}\">{result}<ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata>\
             </{action}Response>",
            self.namespace(),
            xml_escape(request_id)
        )
        .into_bytes()
    }
}

/// Escapes text for XML element content.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes text as IAM returns policy documents (RFC 3986: all but unreserved
/// characters).
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes an `application/x-www-form-urlencoded` body.
pub fn form(body: &[u8]) -> Vec<(String, String)> {
    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while let Some(&b) = bytes.get(i) {
            match b {
                b'+' => out.push(b' '),
                b'%' => {
                    let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
                    match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                        Some(v) => {
                            out.push(v);
                            i += 2;
                        }
                        None => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// The `Tags.member.N.Key` / `.Value` pairs of a request, in N order (IAM's and STS's tags).
pub fn tags(pairs: &[(String, String)]) -> Vec<kms_store::PrincipalTag> {
    let mut tags: Vec<(usize, kms_store::PrincipalTag)> = Vec::new();
    for (k, v) in pairs {
        let Some(rest) = k.strip_prefix("Tags.member.") else { continue };
        let Some((n, field)) = rest.split_once('.') else { continue };
        let Ok(n) = n.parse::<usize>() else { continue };
        let i = match tags.iter().position(|(m, _)| *m == n) {
            Some(i) => i,
            None => {
                tags.push((n, kms_store::PrincipalTag { key: String::new(), value: String::new() }));
                tags.len() - 1
            }
        };
        if let Some((_, tag)) = tags.get_mut(i) {
            match field {
                "Key" => v.clone_into(&mut tag.key),
                "Value" => v.clone_into(&mut tag.value),
                _ => {}
            }
        }
    }
    tags.sort_by_key(|(n, _)| *n);
    tags.into_iter().map(|(_, t)| t).collect()
}

/// The `Action` of a query request, for the audit record.
pub fn action_of(body: &[u8]) -> String {
    form(body).into_iter().find(|(k, _)| k == "Action").map(|(_, v)| v).unwrap_or_default()
}

/// Request members that never enter the audit trail (IAM's own and STS's secrets).
const SECRET_PARAMETERS: &[&str] = &["WebIdentityToken", "SAMLAssertion", "TokenCode"];

/// A query request's parameters as a JSON object for the audit record (`Action` and `Version`
/// left out, secrets dropped), with CloudTrail's lower-camel-case member names.
pub fn form_as_json(body: &[u8]) -> serde_json::Value {
    let map = form(body)
        .into_iter()
        .filter(|(k, _)| k != "Action" && k != "Version" && !SECRET_PARAMETERS.contains(&k.as_str()))
        .map(|(k, v)| (k, serde_json::Value::String(v)))
        .collect();
    serde_json::Value::Object(map)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding() {
        let p = form(b"Action=AssumeRole&RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fx&RoleSessionName=a+b&Bad=%zz");
        assert_eq!(p[0], ("Action".into(), "AssumeRole".into()));
        assert_eq!(p[1].1, "arn:aws:iam::1:role/x");
        assert_eq!(p[2].1, "a b");
        assert_eq!(p[3].1, "%zz");
    }

    #[test]
    fn escaping() {
        assert_eq!(xml_escape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&apos;");
        assert_eq!(url_encode(r#"{"a": "b/c"}"#), "%7B%22a%22%3A%20%22b%2Fc%22%7D");
    }

    #[test]
    fn iam_errors_have_iam_codes_and_statuses() {
        let e = ApiError::with_message(Exception::NotFound, "The user with name x cannot be found.");
        let body = String::from_utf8(QueryApi::Iam.error_body(&e, "r")).unwrap_or_default();
        assert!(body.contains("<Code>NoSuchEntity</Code>") && body.contains("iam.amazonaws.com/doc/2010-05-08"));
        assert_eq!(QueryApi::Iam.status(Exception::NotFound), 404);
        assert_eq!(QueryApi::Iam.status(Exception::Conflict), 409);
        assert_eq!(QueryApi::Sts.status(Exception::AccessDenied), 403);
        assert_eq!(QueryApi::Iam.code(Exception::InvalidInput), "InvalidInput");
    }
}
