//! JSON text written by hand on the hot paths (the audit record, the Encrypt/Decrypt/
//! GenerateDataKey responses): whether a string needs escaping, and a string literal written
//! as serde_json writes it. Most strings there (ids, ARNs, names, base64) need none, and
//! testing for that a word at a time is most of what writing them costs.

/// Appends `value` as a JSON string literal, escaped exactly as serde_json escapes it.
pub fn push_string(out: &mut String, value: &str) {
    // The common case (no quote, backslash or control character) is a plain copy.
    if !needs_escape(value.as_bytes()) {
        out.push('"');
        out.push_str(value);
        out.push('"');
        return;
    }
    out.push_str(&serde_json::to_string(value).unwrap_or_default());
}

/// Whether `text` holds a byte JSON must escape: a quote, a backslash or a control character.
/// Eight bytes at a time (most of an audit record's text is strings; a byte-by-byte test was
/// about 3% of the instructions per Encrypt).
pub fn needs_escape(text: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    // Some byte of `word` is zero (may also flag a byte above a zero one: never a false alarm
    // for the word as a whole).
    let has_zero = |word: u64| word.wrapping_sub(ONES) & !word & HIGHS != 0;
    // Some byte is below 0x20 (the same trick, for "less than" a value up to 0x80).
    let has_control = |word: u64| word.wrapping_sub(ONES * 0x20) & !word & HIGHS != 0;
    let chunks = text.chunks_exact(8);
    let rest = chunks.remainder();
    for chunk in chunks {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        let word = u64::from_ne_bytes(bytes);
        if has_control(word) || has_zero(word ^ (ONES * u64::from(b'"'))) || has_zero(word ^ (ONES * u64::from(b'\\')))
        {
            return true;
        }
    }
    rest.iter().any(|&b| b == b'"' || b == b'\\' || b < 0x20)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    /// The word-at-a-time test agrees with the byte-by-byte one for every byte value at every
    /// position of texts of up to 24 bytes, next to plain and to multi-byte (UTF-8) neighbours.
    #[test]
    fn needs_escape_finds_exactly_quotes_backslashes_and_control_characters() {
        let slow = |text: &[u8]| text.iter().any(|&b| b == b'"' || b == b'\\' || b < 0x20);
        for len in 0..24 {
            for at in 0..len {
                for filler in [b'a', 0xC3, 0x7F, 0xFF, b' '] {
                    for b in 0..=255u8 {
                        let mut text = vec![filler; len];
                        text[at] = b;
                        assert_eq!(
                            needs_escape(&text),
                            slow(&text),
                            "byte {b:#04x} at {at} of {len} among {filler:#04x}"
                        );
                    }
                }
            }
        }
    }

    /// A string literal is serde_json's text for the same string, escaped or not.
    #[test]
    fn a_string_literal_is_serde_jsons_text() {
        for text in ["plain", "", "quote \" backslash \\ newline \n tab \t nul \u{0} del \u{7f} emoji 🔑", "é"] {
            let mut out = String::from("x");
            push_string(&mut out, text);
            assert_eq!(out, format!("x{}", serde_json::to_string(text).unwrap_or_default()));
        }
    }
}
