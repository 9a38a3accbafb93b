//! Construction of the SigV4 canonical request (non-S3 rules).
//!
//! Everything is built as bytes, so header values that are not UTF-8 are
//! canonicalized as sent (and then simply fail to match) instead of failing.

use http::HeaderMap;

use crate::SigV4Error;

/// The request pieces the canonical request is built from.
pub(crate) struct RequestParts<'a> {
    /// HTTP method, e.g. `POST`.
    pub(crate) method: &'a str,
    /// The path as received on the wire (percent-encoded by the client).
    pub(crate) path: &'a str,
    /// The raw query string, without `?`.
    pub(crate) query: Option<&'a str>,
    /// The request headers.
    pub(crate) headers: &'a HeaderMap,
    /// The URI authority, used for `host` when there is no `Host` header
    /// (HTTP/2 `:authority`).
    pub(crate) authority: Option<&'a str>,
}

/// Builds the canonical request for `signed_headers` (already validated by
/// `parse`) and the hex SHA-256 of the payload.
#[cfg(test)]
pub(crate) fn canonical_request(
    req: &RequestParts<'_>,
    signed_headers: &str,
    payload_hash: &[u8],
) -> Result<Vec<u8>, SigV4Error> {
    let mut out = canonical_head(req, signed_headers)?;
    out.extend_from_slice(payload_hash);
    Ok(out)
}

/// The canonical request up to the payload hash (which the caller appends): method, URI,
/// query, the signed headers' canonical lines and the signed-header list, each line ended.
/// A signed header the request does not have is [`SigV4Error::SignedHeaderMissing`].
pub(crate) fn canonical_head(req: &RequestParts<'_>, signed_headers: &str) -> Result<Vec<u8>, SigV4Error> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(req.method.as_bytes());
    out.push(b'\n');
    canonical_uri(req.path, &mut out);
    out.push(b'\n');
    canonical_query(req.query.unwrap_or_default(), &mut out);
    out.push(b'\n');
    for name in signed_headers.split(';') {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        if !append_header_value(req, name, &mut out) {
            return Err(SigV4Error::SignedHeaderMissing { name: name.to_owned() });
        }
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(signed_headers.as_bytes());
    out.push(b'\n');
    Ok(out)
}

/// Appends the canonical value of header `name` (lowercase) to `out`: every value trimmed, runs
/// of spaces collapsed, values joined with `,` in the order received; `host` may also come from
/// the URI authority. `false`, with nothing appended, if the request does not carry it.
fn append_header_value(req: &RequestParts<'_>, name: &str, out: &mut Vec<u8>) -> bool {
    let mut found = false;
    for value in req.headers.get_all(name) {
        if found {
            out.push(b',');
        }
        found = true;
        trim_all(value.as_bytes(), out);
    }
    if !found && name == "host" {
        let Some(authority) = req.authority else { return false };
        trim_all(authority.as_bytes(), out);
        found = true;
    }
    found
}

/// Appends `value` without leading/trailing spaces or tabs and with every run
/// of spaces collapsed to one space.
fn trim_all(value: &[u8], out: &mut Vec<u8>) {
    let is_blank = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !is_blank(b)).unwrap_or(value.len());
    let end = value.iter().rposition(|b| !is_blank(b)).map_or(start, |i| i + 1);
    let mut previous_space = false;
    for &b in value.get(start..end).unwrap_or_default() {
        if b == b' ' && previous_space {
            continue;
        }
        previous_space = b == b' ';
        out.push(b);
    }
}

/// Appends the canonical URI: `path` with `.`/`..` segments and empty
/// segments removed (RFC 3986 §5.2.4, as the AWS SDKs do), each segment
/// URI-encoded once more. The client already encoded the path once to put it
/// on the wire, so this is AWS's double encoding for non-S3 services.
fn canonical_uri(path: &str, out: &mut Vec<u8>) {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    out.push(b'/');
    for (i, segment) in segments.iter().enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        uri_encode(segment.as_bytes(), out);
    }
    let trailing_slash = ["/", "/.", "/.."].iter().any(|end| path.ends_with(end));
    if trailing_slash && !segments.is_empty() {
        out.push(b'/');
    }
}

/// Appends the canonical query string: parameters percent-decoded, re-encoded
/// with [`uri_encode`], sorted by encoded name then value, joined `k=v&...`.
/// `+` is taken literally, not as a space.
fn canonical_query(query: &str, out: &mut Vec<u8>) {
    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let mut encoded_name = Vec::new();
            let mut encoded_value = Vec::new();
            uri_encode(&percent_decode(name), &mut encoded_name);
            uri_encode(&percent_decode(value), &mut encoded_value);
            (encoded_name, encoded_value)
        })
        .collect();
    pairs.sort();
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(b'&');
        }
        out.extend_from_slice(name);
        out.push(b'=');
        out.extend_from_slice(value);
    }
}

/// AWS URI encoding: every byte except the unreserved characters
/// `A-Z a-z 0-9 - . _ ~` becomes `%XX` (uppercase hex).
fn uri_encode(bytes: &[u8], out: &mut Vec<u8>) {
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', hex_upper(b >> 4), hex_upper(b & 0x0f)]);
        }
    }
}

fn hex_upper(nibble: u8) -> u8 {
    if nibble < 10 { b'0' + nibble } else { b'A' + (nibble - 10) }
}

/// Decodes `%XX` escapes; a `%` not followed by two hex digits is kept as is.
fn percent_decode(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut rest = s.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if let (b'%', [hi, lo, after @ ..]) = (b, tail)
            && let (Some(hi), Some(lo)) = (hex_value(*hi), hex_value(*lo))
        {
            out.push(hi << 4 | lo);
            rest = after;
            continue;
        }
        out.push(b);
        rest = tail;
    }
    out
}

fn hex_value(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(path: &str) -> String {
        let mut out = Vec::new();
        canonical_uri(path, &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    fn query(q: &str) -> String {
        let mut out = Vec::new();
        canonical_query(q, &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn uri_normalization() {
        assert_eq!(uri(""), "/");
        assert_eq!(uri("/"), "/");
        assert_eq!(uri("//"), "/");
        assert_eq!(uri("/./"), "/");
        assert_eq!(uri("/example/.."), "/");
        assert_eq!(uri("/example1/example2/../.."), "/");
        assert_eq!(uri("/./example"), "/example");
        assert_eq!(uri("//example//"), "/example/");
        assert_eq!(uri("/foo/bar/.."), "/foo/");
        assert_eq!(uri("/a/b/c/./../../g"), "/a/g");
        assert_eq!(uri("/../foo"), "/foo");
    }

    #[test]
    fn uri_double_encoding() {
        // The wire form is encoded once more: `%` becomes `%25`.
        assert_eq!(uri("/example%20space/"), "/example%2520space/");
        assert_eq!(uri("/example space/"), "/example%20space/");
        assert_eq!(uri("/\u{1234}"), "/%E1%88%B4");
        assert_eq!(uri("/a:b@c"), "/a%3Ab%40c");
        assert_eq!(uri("/foo%2F.%2Fbar"), "/foo%252F.%252Fbar");
    }

    #[test]
    fn query_canonicalization() {
        assert_eq!(query(""), "");
        assert_eq!(query("Param2=value2&Param1=value1"), "Param1=value1&Param2=value2");
        assert_eq!(query("Param1=value2&Param1=Value1"), "Param1=Value1&Param1=value2");
        assert_eq!(query("c+d"), "c%2Bd=");
        assert_eq!(query("%E1%88%B4=bar"), "%E1%88%B4=bar");
        assert_eq!(query("a=b%20c&&x"), "a=b%20c&x=");
        assert_eq!(query("bad=%zz%4"), "bad=%25zz%254");
    }

    #[test]
    fn header_trimming() {
        let mut out = Vec::new();
        trim_all(b"  \"a   b   c\"  ", &mut out);
        assert_eq!(out, b"\"a b c\"");
        out.clear();
        trim_all(b"   ", &mut out);
        assert!(out.is_empty());
    }
}
