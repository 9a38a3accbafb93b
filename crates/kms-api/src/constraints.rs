//! How the generated [`crate::model`] checks a request against AWS's constraints: the rule of
//! each constrained shape, and the checks that turn a broken rule into a [`Violation`] named
//! the way AWS names it (`keyId`, `tags.1.member.tagKey`).

use std::borrow::Cow;
use std::sync::LazyLock;

use kms_core::validation::{Constraint, Violation, Violations};

/// A request structure that can be checked against its constraints.
pub trait Validate {
    /// Adds every violated constraint of this structure, found at path `at` (empty for a
    /// request), to `out`.
    fn validate(&self, at: &str, out: &mut Violations);
}

/// Every violation in `request`, in model order.
pub fn violations(request: &impl Validate) -> Violations {
    let mut out = Violations::default();
    request.validate("", &mut out);
    out
}

/// A string shape's constraints.
#[derive(Debug)]
pub struct StringRule {
    /// Fewest characters.
    pub min: Option<usize>,
    /// Most characters.
    pub max: Option<usize>,
    /// The whole value must match.
    pub pattern: Option<&'static Pattern>,
    /// The value must be one of these.
    pub values: Option<&'static [&'static str]>,
    /// The value is secret: never echoed in a message.
    pub sensitive: bool,
}

/// A blob shape's constraints (in bytes, after base64 decoding).
#[derive(Debug)]
pub struct BlobRule {
    /// Fewest bytes.
    pub min: Option<usize>,
    /// Most bytes.
    pub max: Option<usize>,
}

/// A number shape's range.
#[derive(Debug)]
pub struct IntegerRule {
    /// Smallest value.
    pub min: Option<i64>,
    /// Largest value.
    pub max: Option<i64>,
}

/// A list shape's length.
#[derive(Debug)]
pub struct ListRule {
    /// Fewest items.
    pub min: Option<usize>,
    /// Most items.
    pub max: Option<usize>,
}

/// A model pattern, compiled on first use. AWS matches the whole value against it (the STS
/// `roleSessionName` pattern `[\w+=,.@-]*` refuses `a b`), and its `\w` and `\d` are ASCII.
pub struct Pattern {
    source: &'static str,
    regex: LazyLock<Option<regex_lite::Regex>>,
}

impl Pattern {
    /// The pattern `source`, compiled by `regex` (see [`compile`]).
    pub const fn new(source: &'static str, regex: LazyLock<Option<regex_lite::Regex>>) -> Self {
        Self { source, regex }
    }

    /// The pattern as the model states it (and AWS's messages quote it).
    pub const fn source(&self) -> &'static str {
        self.source
    }

    /// Whether all of `value` matches. A pattern that does not compile refuses nothing (a
    /// test compiles every pattern of the model).
    pub fn matches(&self, value: &str) -> bool {
        self.regex.as_ref().is_none_or(|r| r.is_match(value))
    }

    /// Whether the pattern compiled.
    pub fn compiles(&self) -> bool {
        self.regex.is_some()
    }
}

impl std::fmt::Debug for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.source)
    }
}

/// Compiles a model pattern to match whole values.
pub fn compile(source: &str) -> Option<regex_lite::Regex> {
    regex_lite::Regex::new(&format!("^(?:{source})$")).ok()
}

/// The path of member `name` of the structure at `at`.
pub fn path(at: &str, name: &'static str) -> Cow<'static, str> {
    if at.is_empty() { Cow::Borrowed(name) } else { Cow::Owned(format!("{at}.{name}")) }
}

/// The path of item `index` (from 0) of the list at `at`, as AWS writes it (from 1).
pub fn element(at: &str, index: usize) -> String {
    format!("{at}.{}.member", index + 1)
}

/// A required member.
pub fn required(out: &mut Violations, at: &str, name: &'static str, present: bool) {
    if !present {
        out.push(Violation::without_value(path(at, name), Constraint::NotNull));
    }
}

/// A string member's length, pattern and value set.
pub fn string(out: &mut Violations, field: impl Into<Cow<'static, str>>, value: Option<&str>, rule: &StringRule) {
    let Some(value) = value else { return };
    let field = field.into();
    let echo = (!rule.sensitive).then_some(value);
    let mut broken = |constraint| {
        out.push(Violation { field: field.clone(), value: echo.map(str::to_owned), constraint });
    };
    let len = value.chars().count();
    if let Some(min) = rule.min.filter(|&min| len < min) {
        broken(Constraint::MinLength(min));
    }
    if let Some(max) = rule.max.filter(|&max| len > max) {
        broken(Constraint::MaxLength(max));
    }
    if let Some(pattern) = rule.pattern.filter(|p| !p.matches(value)) {
        broken(Constraint::Pattern(pattern.source()));
    }
    if let Some(values) = rule.values.filter(|v| !v.contains(&value)) {
        broken(Constraint::Enum(values));
    }
}

/// A blob member's length in bytes (never echoed).
pub fn blob(out: &mut Violations, field: impl Into<Cow<'static, str>>, len: Option<usize>, rule: &BlobRule) {
    let Some(len) = len else { return };
    out.length(field, None, len, rule.min.unwrap_or(0), rule.max.unwrap_or(usize::MAX));
}

/// A number member's range.
pub fn integer(out: &mut Violations, field: impl Into<Cow<'static, str>>, value: Option<i64>, rule: &IntegerRule) {
    let Some(value) = value else { return };
    let constraint = match (rule.min, rule.max) {
        (Some(min), _) if value < min => Constraint::MinValue(min),
        (_, Some(max)) if value > max => Constraint::MaxValue(max),
        _ => return,
    };
    out.push(Violation::with_value(field, value.to_string(), constraint));
}

/// A list member's length (not echoed).
pub fn list(out: &mut Violations, field: impl Into<Cow<'static, str>>, len: Option<usize>, rule: &ListRule) {
    let Some(len) = len else { return };
    out.length(field, None, len, rule.min.unwrap_or(0), rule.max.unwrap_or(usize::MAX));
}

#[cfg(test)]
mod tests {
    use super::*;

    static ALIAS: Pattern = Pattern::new("^[a-zA-Z0-9:/_-]+$", LazyLock::new(|| compile("^[a-zA-Z0-9:/_-]+$")));
    static WORD: Pattern = Pattern::new("[\\w]+", LazyLock::new(|| compile("[\\w]+")));
    static LATIN1: Pattern = Pattern::new("[\\u0020-\\u00FF]*", LazyLock::new(|| compile("[\\u0020-\\u00FF]*")));

    #[test]
    fn patterns_match_whole_values_with_ascii_classes() {
        assert!(ALIAS.matches("alias/my-key") && !ALIAS.matches("alias/my key"));
        assert!(WORD.matches("default") && !WORD.matches("a b") && !WORD.matches("é"));
        assert!(LATIN1.matches("née café") && !LATIN1.matches("中") && !LATIN1.matches("a\tb"));
        assert!(ALIAS.compiles() && WORD.compiles() && LATIN1.compiles());
    }

    #[test]
    fn every_broken_rule_of_a_member_is_reported() {
        let rule = StringRule { min: Some(1), max: Some(256), pattern: Some(&ALIAS), values: None, sensitive: false };
        let mut out = Violations::default();
        string(&mut out, "aliasName", Some(""), &rule);
        assert_eq!(
            out.to_string(),
            "2 validation errors detected: Value '' at 'aliasName' failed to satisfy constraint: Member must \
             have length greater than or equal to 1; Value '' at 'aliasName' failed to satisfy constraint: \
             Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$"
        );
    }

    #[test]
    fn secrets_are_not_echoed() {
        let rule = StringRule { min: Some(5), max: None, pattern: None, values: None, sensitive: true };
        let mut out = Violations::default();
        string(&mut out, "password", Some("abc"), &rule);
        assert!(!out.to_string().contains("abc"), "{out}");
    }

    #[test]
    fn paths_name_nested_members_as_aws_does() {
        assert_eq!(path("", "keyId"), "keyId");
        assert_eq!(path(&element("tags", 0), "tagKey"), "tags.1.member.tagKey");
    }
}
