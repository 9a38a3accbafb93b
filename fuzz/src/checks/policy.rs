//! The policy parser (`kms_core::policy`): never panics, and what it accepts depends only on the
//! JSON value, not on how the text spells it.

use kms_core::policy::{KeyPolicy, PolicyDocument, PolicyKind};

const KINDS: [PolicyKind; 3] = [PolicyKind::Key, PolicyKind::Identity, PolicyKind::RoleTrust];

/// Checks the parser on arbitrary input: the first byte picks the policy kind, the rest is the
/// document text (lossily decoded, as a policy arrives as a JSON string member).
pub fn check(data: &[u8]) {
    let Some((selector, text)) = data.split_first() else {
        return;
    };
    let kind = KINDS.get(usize::from(*selector) % KINDS.len()).copied().unwrap_or(PolicyKind::Key);
    let text = String::from_utf8_lossy(text);
    let parsed = PolicyDocument::parse(&text, kind);
    if let Err(e) = &parsed {
        // The message becomes MalformedPolicyDocumentException's; it must render.
        let _ = e.to_string();
    }
    if kind == PolicyKind::Key {
        // The key-policy wrapper accepts exactly what the parser accepts.
        let wrapped = KeyPolicy::parse(&text);
        assert_eq!(wrapped.as_ref().map(|p| p.document().clone()).map_err(Clone::clone), parsed.clone());
        if let Ok(policy) = wrapped {
            assert_eq!(policy.as_str(), text, "a key policy keeps the client's text");
        }
    }
    let Ok(document) = parsed else {
        return;
    };
    // Accepted documents are JSON objects, and re-spelling the JSON (whitespace, escapes, number
    // forms) changes nothing: the same document comes out.
    let value: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => panic!("the parser accepted text that is not JSON: {e}"),
    };
    assert!(value.is_object(), "the parser accepted a JSON value that is not an object");
    let respelled = value.to_string();
    match PolicyDocument::parse(&respelled, kind) {
        Ok(again) => assert_eq!(again, document, "re-spelled JSON parsed to another document"),
        Err(e) => panic!("re-spelled JSON was refused: {e}"),
    }
    let pretty = serde_json::to_string_pretty(&value).unwrap_or_default();
    assert_eq!(PolicyDocument::parse(&pretty, kind).ok(), Some(document), "pretty-printed JSON differs");
}
