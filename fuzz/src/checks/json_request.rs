//! The JSON request decoder (`kms_api::decode_request`) with the request of every operation:
//! never panics, refuses only with `SerializationException` (a body that is not a request) or `ValidationException` (a request that breaks AWS's constraints, in AWS's
//! "N validation errors detected" wording), accepts only JSON objects (or an empty body), and
//! never echoes a plaintext in its error message.

use kms_api::{ApiError, Exception, Operation, Request};

/// Decodes `body` as the request of `op` through the operation table, as the server's
/// dispatcher does.
pub fn decode_for(op: Operation, body: &[u8]) -> Option<Result<(), ApiError>> {
    Some(Request::decode(op, body).map(drop))
}

/// The `Plaintext` member of a body, if it is a string that occurs exactly once in the raw bytes
/// (so that finding it in a message can only mean the decoder echoed that member).
/// `body` with the first occurrence of `from` replaced by `to`.
fn replace_once(body: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    match body.windows(from.len().max(1)).position(|w| w == from) {
        Some(at) => [&body[..at], to, &body[at + from.len()..]].concat(),
        None => body.to_vec(),
    }
}

fn lone_plaintext(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let text = value.get("Plaintext")?.as_str()?.to_owned();
    let occurrences = body.windows(text.len().max(1)).filter(|w| *w == text.as_bytes()).count();
    (text.len() >= 4 && occurrences == 1).then_some(text)
}

/// Checks the decoder on arbitrary input: the first byte picks the operation, the rest is the
/// request body.
pub fn check(data: &[u8]) {
    let Some((selector, body)) = data.split_first() else {
        return;
    };
    let all = Operation::ALL;
    let Some(op) = all.get(usize::from(*selector) % all.len()).copied() else {
        return;
    };
    let Some(result) = decode_for(op, body) else {
        return;
    };
    match result {
        Ok(()) => {
            // Only an object (or nothing at all) is a request: UTF-8 text in JSON's grammar whose
            // value is an object. (Grammar only: a number out of f64's range in an unknown member
            // is valid JSON, and ignoring it is what AWS does with unknown members.)
            let blank = body.iter().all(u8::is_ascii_whitespace);
            let object = std::str::from_utf8(body).is_ok()
                && body.trim_ascii_start().first() == Some(&b'{')
                && serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok();
            assert!(blank || object, "{} accepted a body that is not a JSON object", op.name());
        }
        Err(e) => {
            let message = e.message.clone().unwrap_or_default();
            match e.exception {
                Exception::Serialization => assert!(!message.is_empty(), "SerializationException without a message"),
                Exception::Validation => assert!(
                    message.contains(" validation error") && message.contains(" detected: "),
                    "{}: a ValidationException not in AWS's wording: {message}",
                    op.name()
                ),
                _ => panic!("{}: {e:?}", op.name()),
            }
            if let Some(plaintext) = lone_plaintext(body)
                && message.contains(&plaintext)
            {
                // The message may hold the plaintext's text only because its own wording does (a
                // plaintext that spells "blob member is not valid base64", found by fuzzing): it
                // is an echo when the message for the same body with another plaintext lacks it.
                let other = replace_once(body, plaintext.as_bytes(), b"*");
                let other_message = decode_for(op, &other).and_then(Result::err).and_then(|e| e.message);
                assert!(
                    other_message.is_some_and(|m| m.contains(&plaintext)),
                    "{}: the error message echoes the plaintext",
                    op.name()
                );
            }
        }
    }
}
