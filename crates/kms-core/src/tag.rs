//! Resource tags and AWS's rules for them.

use serde::{Deserialize, Serialize};

/// Most tags one key may carry.
pub const MAX_TAGS_PER_KEY: usize = 50;
/// Longest tag key, in characters.
pub const MAX_TAG_KEY_LEN: usize = 128;
/// Longest tag value, in characters.
pub const MAX_TAG_VALUE_LEN: usize = 256;

/// One tag.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    /// The key (1–128 characters, not starting with `aws:`).
    pub key: String,
    /// The value (0–256 characters).
    pub value: String,
}

/// Why a tag is refused (`TagException`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    /// A key beginning with the reserved `aws:` prefix.
    #[error("Tags beginning with aws: are reserved")]
    ReservedPrefix(String),
    /// The same key twice in one request.
    #[error("Duplicate tag keys")]
    Duplicate(String),
    /// More than [`MAX_TAGS_PER_KEY`] tags on one key.
    #[error("Too many tags")]
    TooMany,
    /// A key or value with characters outside AWS's tag character set.
    #[error("Tag key or value contains characters that are not allowed: {0}")]
    Characters(String),
}

/// Whether `c` may appear in a tag key or value: Unicode letters, digits, whitespace and
/// `_ . : / = + - @`, as AWS documents for tags.
fn allowed(c: char) -> bool {
    c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c)
}

impl Tag {
    /// Checks the AWS rules that are not plain length limits (those are `ValidationException`s
    /// checked at the wire).
    ///
    /// # Errors
    /// [`TagError`].
    pub fn check(&self) -> Result<(), TagError> {
        if self.key.to_ascii_lowercase().starts_with("aws:") {
            return Err(TagError::ReservedPrefix(self.key.clone()));
        }
        if !self.key.chars().all(allowed) || !self.value.chars().all(allowed) {
            return Err(TagError::Characters(self.key.clone()));
        }
        Ok(())
    }
}

/// Checks a set of tags given in one request.
///
/// # Errors
/// [`TagError`] for the first bad tag or a repeated key.
pub fn check_all(tags: &[Tag]) -> Result<(), TagError> {
    let mut seen = std::collections::HashSet::new();
    for tag in tags {
        tag.check()?;
        if !seen.insert(tag.key.as_str()) {
            return Err(TagError::Duplicate(tag.key.clone()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(k: &str, v: &str) -> Tag {
        Tag { key: k.into(), value: v.into() }
    }

    #[test]
    fn rules() {
        assert!(check_all(&[tag("team", "pay ments"), tag("cost-center", "")]).is_ok());
        assert!(matches!(tag("aws:x", "1").check(), Err(TagError::ReservedPrefix(_))));
        assert!(matches!(tag("AWS:x", "1").check(), Err(TagError::ReservedPrefix(_))));
        assert!(matches!(tag("a", "b!").check(), Err(TagError::Characters(_))));
        assert!(matches!(check_all(&[tag("a", "1"), tag("a", "2")]), Err(TagError::Duplicate(_))));
    }
}
