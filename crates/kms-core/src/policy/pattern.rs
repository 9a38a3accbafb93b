//! Wildcard patterns, ARN segment matching and policy-variable interpolation.
//!
//! IAM patterns use `*` (any run of characters, possibly empty) and `?` (exactly one character).
//! In version 2012-10-17 policies a pattern may also hold policy variables: `${aws:username}`,
//! `${kms:CallerAccount, 'default'}`, and the escapes `${*}`, `${?}` and `${$}` for the literal
//! characters. Interpolated text is always literal: a `*` inside a user name is not a wildcard.

/// One element of a compiled pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token {
    /// This exact character.
    Char(char),
    /// `*`: any run of characters, possibly empty.
    AnyRun,
    /// `?`: exactly one character.
    AnyOne,
}

/// Resolves a policy variable (a condition key name) to its single value, if it has one.
pub(crate) type Resolver<'a> = &'a dyn Fn(&str) -> Option<String>;

/// A compiled pattern: the policy text after interpolation, wildcards kept apart from literals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Pattern(Vec<Token>);

impl Pattern {
    /// Compiles `raw`. With a resolver (version 2012-10-17), `${...}` is a policy variable; an
    /// unknown variable without a default makes the whole pattern unresolvable (`None`), which
    /// IAM treats as "this cannot match". Without a resolver, `${` is ordinary text.
    pub(crate) fn compile(raw: &str, variables: Option<Resolver<'_>>) -> Option<Self> {
        let mut tokens = Vec::with_capacity(raw.len());
        let mut rest = raw;
        while let Some(c) = rest.chars().next() {
            if let (Some(resolve), Some(body)) = (variables, rest.strip_prefix("${"))
                && let Some(end) = body.find('}')
            {
                let name = body.get(..end).unwrap_or_default();
                rest = body.get(end + 1..).unwrap_or_default();
                match name {
                    "*" | "?" | "$" => tokens.extend(name.chars().map(Token::Char)),
                    _ => tokens.extend(interpolate(name, resolve)?.chars().map(Token::Char)),
                }
                continue;
            }
            tokens.push(match c {
                '*' => Token::AnyRun,
                '?' => Token::AnyOne,
                other => Token::Char(other),
            });
            rest = rest.get(c.len_utf8()..).unwrap_or_default();
        }
        Some(Self(tokens))
    }

    /// The pattern read literally (`*` and `?` as themselves), for the exact-match operators.
    pub(crate) fn literal(&self) -> String {
        self.0
            .iter()
            .map(|t| match t {
                Token::Char(c) => *c,
                Token::AnyRun => '*',
                Token::AnyOne => '?',
            })
            .collect()
    }

    /// Whether `text` matches the pattern, wildcards included, case-sensitively.
    pub(crate) fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = text.chars().collect();
        glob(&self.0, &text)
    }
}

/// The value of the variable `${name}` or `${name, 'default'}`.
fn interpolate(name: &str, resolve: Resolver<'_>) -> Option<String> {
    let (key, default) = match name.split_once(',') {
        Some((key, default)) => {
            let default = default.trim();
            let quoted = default.strip_prefix('\'').and_then(|d| d.strip_suffix('\''));
            (key.trim(), quoted)
        }
        None => (name.trim(), None),
    };
    resolve(key).or_else(|| default.map(str::to_owned))
}

/// Wildcard matching with backtracking to the most recent `*`: linear in practice and
/// `O(pattern × text)` at worst, never exponential.
fn glob(pattern: &[Token], text: &[char]) -> bool {
    let (mut p, mut t) = (0, 0);
    // Where the last `*` was seen, and the text position it is currently stretched to.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match (pattern.get(p), text.get(t)) {
            (Some(Token::AnyRun), _) => {
                star = Some((p, t));
                p += 1;
            }
            (Some(Token::AnyOne), Some(_)) => {
                p += 1;
                t += 1;
            }
            (Some(Token::Char(a)), Some(b)) if a == b => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    star = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    pattern.get(p..).unwrap_or_default().iter().all(|token| *token == Token::AnyRun)
}

/// Splits an ARN pattern into at most six colon-separated parts (the sixth keeps any further
/// colons), leaving colons inside `${...}` alone so that `${aws:PrincipalAccount}` stays whole.
pub(crate) fn arn_parts(pattern: &str) -> Vec<&str> {
    let mut parts = Vec::with_capacity(6);
    let mut start = 0;
    let mut depth = 0_usize;
    let bytes = pattern.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if parts.len() == 5 {
            break;
        }
        match b {
            b'{' if i > 0 && bytes.get(i - 1) == Some(&b'$') => depth += 1,
            b'}' if depth > 0 => depth -= 1,
            b':' if depth == 0 => {
                parts.push(pattern.get(start..i).unwrap_or_default());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(pattern.get(start..).unwrap_or_default());
    parts
}

/// An ARN pattern as IAM matches `Resource` and the `Arn*` operators: `"*"` matches anything;
/// otherwise both sides must have six colon-separated parts and each part of the value must
/// match the corresponding part of the pattern on its own, so a `*` never spans a colon except
/// in the final resource part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ArnPattern {
    /// `"*"`.
    Any,
    /// The six parts.
    Parts(Vec<Pattern>),
    /// Not six parts: matches nothing.
    Malformed,
}

impl ArnPattern {
    /// Compiles `raw`; `None` when a policy variable cannot be resolved.
    pub(crate) fn compile(raw: &str, variables: Option<Resolver<'_>>) -> Option<Self> {
        if raw == "*" {
            return Some(Self::Any);
        }
        let parts = arn_parts(raw);
        if parts.len() != 6 {
            return Some(Self::Malformed);
        }
        parts.iter().map(|part| Pattern::compile(part, variables)).collect::<Option<Vec<_>>>().map(Self::Parts)
    }

    /// Whether the ARN `value` matches.
    pub(crate) fn matches(&self, value: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Malformed => false,
            Self::Parts(parts) => {
                let values: Vec<&str> = value.splitn(6, ':').collect();
                values.len() == parts.len() && parts.iter().zip(values).all(|(p, v)| p.matches(v))
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn plain(p: &str, text: &str) -> bool {
        Pattern::compile(p, None).unwrap().matches(text)
    }

    #[test]
    fn wildcards() {
        assert!(plain("kms:*", "kms:Encrypt"));
        assert!(plain("kms:Encrypt*", "kms:Encrypt"));
        assert!(plain("kms:Re?ncrypt*", "kms:ReEncryptFrom"));
        assert!(!plain("kms:Re?ncrypt*", "kms:Rncrypt"));
        assert!(plain("*", ""));
        assert!(plain("a*b*c", "aXXbYYbc"));
        assert!(!plain("a*b*c", "aXXbYYb"));
        assert!(!plain("abc", "abcd"));
        assert!(plain("", ""));
        assert!(!plain("?", ""));
    }

    #[test]
    fn variables_and_escapes() {
        let resolve = |k: &str| (k == "aws:username").then(|| "ali*ce".to_owned());
        let p = Pattern::compile("home/${aws:username}/*", Some(&resolve)).unwrap();
        assert!(p.matches("home/ali*ce/x"));
        assert!(!p.matches("home/aliXce/x"), "interpolated text is literal");
        let p = Pattern::compile("a${*}b${?}c${$}", Some(&resolve)).unwrap();
        assert_eq!(p.literal(), "a*b?c$");
        assert!(p.matches("a*b?c$"));
        assert!(!p.matches("aXb?c$"));
        assert!(Pattern::compile("${aws:userid}", Some(&resolve)).is_none());
        let p = Pattern::compile("${aws:userid, 'anonymous'}", Some(&resolve)).unwrap();
        assert_eq!(p.literal(), "anonymous");
        // Without a resolver (version 2008-10-17) variables are text.
        assert_eq!(Pattern::compile("${aws:username}", None).unwrap().literal(), "${aws:username}");
        // An unterminated variable is text too.
        assert_eq!(Pattern::compile("${aws", Some(&resolve)).unwrap().literal(), "${aws");
    }

    /// The `ArnLike` versus `StringLike` example of the IAM User Guide ("Amazon Resource Name
    /// (ARN) condition operators").
    #[test]
    fn arn_parts_match_separately() {
        let pattern = "arn:aws:someservice:*:111122223333:finance/*";
        let value = "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt";
        assert!(plain(pattern, value), "StringLike matches");
        let arn = |p: &str, v: &str| ArnPattern::compile(p, None).unwrap().matches(v);
        assert!(!arn(pattern, value), "ArnLike does not");
        assert!(arn("arn:aws:kms:*:111122223333:key/*", "arn:aws:kms:us-east-1:111122223333:key/k"));
        assert!(arn("*", "anything"));
        assert!(!arn("arn:aws:kms:*", "arn:aws:kms:us-east-1:1:key/k"));
        assert!(!arn("arn:aws:kms:us-east-1:111122223333:key/k", "arn:aws:kms:us-east-1:111122223333"));
        assert_eq!(
            arn_parts("arn:aws:kms:*:${aws:PrincipalAccount}:key/a:b"),
            ["arn", "aws", "kms", "*", "${aws:PrincipalAccount}", "key/a:b"]
        );
    }
}
