//! Encryption context: the non-secret key–value pairs bound to a ciphertext as additional
//! authenticated data.

use std::collections::BTreeMap;

/// An encryption context, kept sorted by key so that its canonical form does not depend on the
/// order in which the client sent the pairs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EncryptionContext(BTreeMap<String, String>);

impl EncryptionContext {
    /// The empty context.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The pairs, sorted by key.
    pub fn pairs(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    /// The canonical byte form authenticated with the ciphertext: the number of pairs, then for
    /// each pair in key order the key and the value, every item preceded by its length, all
    /// lengths as 4-byte big-endian integers. Length-prefixing makes the encoding injective, so no
    /// two different contexts share a canonical form.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let size = 4 + self.0.iter().map(|(k, v)| 8 + k.len() + v.len()).sum::<usize>();
        let mut out = Vec::with_capacity(size);
        push_len(&mut out, self.0.len());
        for (k, v) in &self.0 {
            push_len(&mut out, k.len());
            out.extend_from_slice(k.as_bytes());
            push_len(&mut out, v.len());
            out.extend_from_slice(v.as_bytes());
        }
        out
    }
}

fn push_len(out: &mut Vec<u8>, len: usize) {
    // Request bodies are far below 4 GiB, so lengths always fit; saturate rather than wrap.
    let n = u32::try_from(len).unwrap_or(u32::MAX);
    out.extend_from_slice(&n.to_be_bytes());
}

impl From<BTreeMap<String, String>> for EncryptionContext {
    fn from(map: BTreeMap<String, String>) -> Self {
        Self(map)
    }
}

impl FromIterator<(String, String)> for EncryptionContext {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(pairs: &[(&str, &str)]) -> EncryptionContext {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn order_does_not_matter_but_content_does() {
        let a = ctx(&[("b", "2"), ("a", "1")]);
        let b = ctx(&[("a", "1"), ("b", "2")]);
        assert_eq!(a.canonical_bytes(), b.canonical_bytes());
        // Moving a byte between key and value must change the encoding.
        assert_ne!(ctx(&[("ab", "c")]).canonical_bytes(), ctx(&[("a", "bc")]).canonical_bytes());
        assert_ne!(EncryptionContext::empty().canonical_bytes(), ctx(&[("", "")]).canonical_bytes());
    }
}
