//! The `Condition` element: operators, typed values, and their evaluation against the request.
//!
//! Semantics follow the IAM User Guide ("IAM JSON policy elements: Condition operators",
//! "Conditions with multiple context keys or values", "Single-valued vs. multivalued context
//! keys"): operators and keys in one block are ANDed, the values of one key are ORed (NORed for
//! negated operators); a key absent from the request fails a positive operator and satisfies a
//! negated one, except that `...IfExists` is satisfied by an absent key, `ForAllValues` is
//! satisfied by an absent or empty set and `ForAnyValue` is not; `Null` tests presence.

use std::fmt;
use std::net::IpAddr;

use base64::Engine as _;
use serde_json::Value;

use super::pattern::{ArnPattern, Pattern, Resolver};
use super::request::RequestKeys;
use super::{PolicyError, StatementRef};
use crate::time::Timestamp;

/// One condition: an operator applied to one condition key with one or more policy values.
#[derive(Clone, Debug, PartialEq)]
pub struct ConditionClause {
    /// The operator, with its set qualifier and `IfExists` suffix.
    pub operator: ConditionOperator,
    /// The condition key as written in the policy (matched case-insensitively).
    pub key: String,
    /// The policy's values, typed for the operator.
    pub values: ConditionValues,
}

/// A condition operator such as `StringEquals`, `ForAnyValue:StringLike` or `BoolIfExists`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConditionOperator {
    /// `ForAnyValue:` or `ForAllValues:`, for multi-valued keys.
    pub qualifier: Option<SetQualifier>,
    /// The comparison.
    pub test: ConditionTest,
    /// The `IfExists` suffix: an absent key satisfies the condition.
    pub if_exists: bool,
}

/// The set qualifiers for multi-valued condition keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetQualifier {
    /// At least one request value must match.
    ForAnyValue,
    /// Every request value must match; an absent or empty key matches.
    ForAllValues,
}

/// The comparisons IAM defines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // the variants are IAM's operator names
pub enum ConditionTest {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    NumericEquals,
    NumericNotEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateNotEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    BinaryEquals,
    IpAddress,
    NotIpAddress,
    ArnEquals,
    ArnLike,
    ArnNotEquals,
    ArnNotLike,
    Null,
}

const TESTS: [(&str, ConditionTest); 27] = {
    use ConditionTest as T;
    [
        ("StringEquals", T::StringEquals),
        ("StringNotEquals", T::StringNotEquals),
        ("StringEqualsIgnoreCase", T::StringEqualsIgnoreCase),
        ("StringNotEqualsIgnoreCase", T::StringNotEqualsIgnoreCase),
        ("StringLike", T::StringLike),
        ("StringNotLike", T::StringNotLike),
        ("NumericEquals", T::NumericEquals),
        ("NumericNotEquals", T::NumericNotEquals),
        ("NumericLessThan", T::NumericLessThan),
        ("NumericLessThanEquals", T::NumericLessThanEquals),
        ("NumericGreaterThan", T::NumericGreaterThan),
        ("NumericGreaterThanEquals", T::NumericGreaterThanEquals),
        ("DateEquals", T::DateEquals),
        ("DateNotEquals", T::DateNotEquals),
        ("DateLessThan", T::DateLessThan),
        ("DateLessThanEquals", T::DateLessThanEquals),
        ("DateGreaterThan", T::DateGreaterThan),
        ("DateGreaterThanEquals", T::DateGreaterThanEquals),
        ("Bool", T::Bool),
        ("BinaryEquals", T::BinaryEquals),
        ("IpAddress", T::IpAddress),
        ("NotIpAddress", T::NotIpAddress),
        ("ArnEquals", T::ArnEquals),
        ("ArnLike", T::ArnLike),
        ("ArnNotEquals", T::ArnNotEquals),
        ("ArnNotLike", T::ArnNotLike),
        ("Null", T::Null),
    ]
};

/// How a positive numeric or date test compares the request value with the policy value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Comparison {
    Equal,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}

impl Comparison {
    fn holds<T: PartialOrd>(self, request: &T, policy: &T) -> bool {
        match self {
            Self::Equal => request == policy,
            Self::Less => request < policy,
            Self::LessOrEqual => request <= policy,
            Self::Greater => request > policy,
            Self::GreaterOrEqual => request >= policy,
        }
    }
}

impl ConditionTest {
    /// IAM's name for the test.
    pub fn name(self) -> &'static str {
        TESTS.iter().find(|(_, t)| *t == self).map_or("Null", |(name, _)| name)
    }

    /// Whether the test is a negated one (`StringNotEquals`, `NotIpAddress`, ...): it holds when
    /// no policy value matches, and holds for an absent key.
    pub fn is_negated(self) -> bool {
        use ConditionTest as T;
        matches!(
            self,
            T::StringNotEquals
                | T::StringNotEqualsIgnoreCase
                | T::StringNotLike
                | T::NumericNotEquals
                | T::DateNotEquals
                | T::NotIpAddress
                | T::ArnNotEquals
                | T::ArnNotLike
        )
    }

    fn comparison(self) -> Comparison {
        use ConditionTest as T;
        match self {
            T::NumericLessThan | T::DateLessThan => Comparison::Less,
            T::NumericLessThanEquals | T::DateLessThanEquals => Comparison::LessOrEqual,
            T::NumericGreaterThan | T::DateGreaterThan => Comparison::Greater,
            T::NumericGreaterThanEquals | T::DateGreaterThanEquals => Comparison::GreaterOrEqual,
            _ => Comparison::Equal,
        }
    }
}

impl ConditionOperator {
    /// Parses an operator name such as `ForAnyValue:StringEqualsIfExists` (case-insensitively).
    /// `Null` takes neither a set qualifier nor `IfExists`.
    pub fn parse(name: &str) -> Option<Self> {
        let lower = name.to_ascii_lowercase();
        let (qualifier, rest) = if let Some(rest) = lower.strip_prefix("foranyvalue:") {
            (Some(SetQualifier::ForAnyValue), rest)
        } else if let Some(rest) = lower.strip_prefix("forallvalues:") {
            (Some(SetQualifier::ForAllValues), rest)
        } else {
            (None, lower.as_str())
        };
        let (if_exists, base) = match rest.strip_suffix("ifexists") {
            Some(base) => (true, base),
            None => (false, rest),
        };
        let test = TESTS.iter().find(|(n, _)| n.eq_ignore_ascii_case(base)).map(|(_, t)| *t)?;
        if test == ConditionTest::Null && (if_exists || qualifier.is_some()) {
            return None;
        }
        Some(Self { qualifier, test, if_exists })
    }
}

impl fmt::Display for ConditionOperator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.qualifier {
            Some(SetQualifier::ForAnyValue) => f.write_str("ForAnyValue:")?,
            Some(SetQualifier::ForAllValues) => f.write_str("ForAllValues:")?,
            None => {}
        }
        f.write_str(self.test.name())?;
        if self.if_exists { f.write_str("IfExists") } else { Ok(()) }
    }
}

/// The policy values of a condition, parsed for the operator's family when the policy is
/// parsed, so that a malformed date or address is refused then rather than never matching.
#[derive(Clone, Debug, PartialEq)]
pub enum ConditionValues {
    /// String, ARN and `Bool` values; policy variables are interpolated at evaluation.
    Strings(Vec<String>),
    /// Numeric values.
    Numbers(Vec<f64>),
    /// Dates, from ISO 8601 or epoch seconds.
    Dates(Vec<Timestamp>),
    /// `BinaryEquals` values, decoded from base64.
    Binary(Vec<Vec<u8>>),
    /// `IpAddress` / `NotIpAddress` ranges.
    Addresses(Vec<Cidr>),
    /// `Null`: `true` requires the key to be absent, `false` present.
    Null(Vec<bool>),
}

/// An IPv4 or IPv6 range in CIDR notation; a bare address is a /32 or /128.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `203.0.113.0/24`, `2001:DB8:1234:5678::/64` or a bare address.
    pub fn parse(s: &str) -> Option<Self> {
        let (address, prefix) = match s.trim().split_once('/') {
            Some((address, prefix)) if !prefix.is_empty() && prefix.bytes().all(|b| b.is_ascii_digit()) => {
                (address, Some(prefix.parse::<u8>().ok()?))
            }
            Some(_) => return None,
            None => (s.trim(), None),
        };
        let network: IpAddr = address.parse().ok()?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Self { network, prefix })
    }

    /// Whether `address` lies in the range. An IPv4-mapped IPv6 address counts as IPv4.
    pub fn contains(&self, address: IpAddr) -> bool {
        match (self.network, address.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// Parses a date as IAM accepts it: epoch seconds (`1700000000`, `1700000000.5`) or a W3C
/// ISO 8601 form (`2024-01-31`, `2024-01`, `2024-01-31T12:00Z`, `2024-01-31T12:00:00.123+02:00`).
/// A time without a zone designator is taken as UTC.
pub(crate) fn parse_date(s: &str) -> Option<Timestamp> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let (seconds, fraction) = s.split_once('.').unwrap_or((s, ""));
        if seconds.is_empty() || seconds.len() > 15 || fraction.contains('.') {
            return None;
        }
        let millis: i64 = format!("{:0<3}", fraction.get(..3).unwrap_or(fraction)).parse().ok()?;
        return seconds.parse::<i64>().ok()?.checked_mul(1000)?.checked_add(millis).map(Timestamp::from_unix_millis);
    }
    let (date, time) = match s.find(['T', 't']) {
        Some(i) => (s.get(..i)?, Some(s.get(i + 1..)?)),
        None => (s, None),
    };
    let mut fields = date.split('-');
    let year = number(fields.next()?, 4)?;
    let month = fields.next().map_or(Some(1), |m| number(m, 2))?;
    let day = fields.next().map_or(Some(1), |d| number(d, 2))?;
    if fields.next().is_some() {
        return None;
    }
    let date = time::Date::from_calendar_date(
        i32::try_from(year).ok()?,
        time::Month::try_from(u8::try_from(month).ok()?).ok()?,
        u8::try_from(day).ok()?,
    )
    .ok()?;
    let (clock, offset) = match time {
        Some(t) => parse_time(t)?,
        None => (time::Time::MIDNIGHT, time::UtcOffset::UTC),
    };
    let nanos = time::PrimitiveDateTime::new(date, clock).assume_offset(offset).unix_timestamp_nanos();
    i64::try_from(nanos.div_euclid(1_000_000)).ok().map(Timestamp::from_unix_millis)
}

/// `hh:mm[:ss[.fff]]` followed by `Z`, `±hh:mm` or nothing.
fn parse_time(s: &str) -> Option<(time::Time, time::UtcOffset)> {
    let (clock, offset) = if let Some(clock) = s.strip_suffix(['Z', 'z']) {
        (clock, time::UtcOffset::UTC)
    } else if let Some(i) = s.rfind(['+', '-']) {
        let (sign, zone) = (if s.get(i..=i) == Some("-") { -1 } else { 1 }, s.get(i + 1..)?);
        let (h, m) = zone.split_once(':')?;
        let (h, m) = (i8::try_from(number(h, 2)?).ok()?, i8::try_from(number(m, 2)?).ok()?);
        (s.get(..i)?, time::UtcOffset::from_hms(sign * h, sign * m, 0).ok()?)
    } else {
        (s, time::UtcOffset::UTC)
    };
    let (hms, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    let mut fields = hms.split(':');
    let hour = number(fields.next()?, 2)?;
    let minute = number(fields.next()?, 2)?;
    let second = fields.next().map_or(Some(0), |s| number(s, 2))?;
    if fields.next().is_some() || (!fraction.is_empty() && !fraction.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    let nanos: u32 = format!("{:0<9}", fraction.get(..9).unwrap_or(fraction)).parse().ok()?;
    let clock = time::Time::from_hms_nano(
        u8::try_from(hour).ok()?,
        u8::try_from(minute).ok()?,
        u8::try_from(second).ok()?,
        nanos,
    )
    .ok()?;
    Some((clock, offset))
}

/// Exactly `len` ASCII digits.
fn number(s: &str, len: usize) -> Option<u32> {
    (s.len() == len && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
}

/// A finite decimal number, as the numeric operators accept.
fn parse_number(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|n| n.is_finite())
}

/// Parses the `Condition` element of a statement.
pub(crate) fn parse_block(
    value: &Value,
    statement: &StatementRef,
    interpolate: bool,
) -> Result<Vec<ConditionClause>, PolicyError> {
    let block = value.as_object().ok_or_else(|| PolicyError::ElementType {
        statement: statement.clone(),
        element: "Condition",
        expected: "an object whose members are condition operators",
    })?;
    let mut clauses = Vec::new();
    for (name, keys) in block {
        let operator = ConditionOperator::parse(name).ok_or_else(|| PolicyError::UnknownConditionOperator {
            statement: statement.clone(),
            operator: name.clone(),
        })?;
        let keys = keys
            .as_object()
            .ok_or_else(|| PolicyError::ConditionBlock { statement: statement.clone(), operator: name.clone() })?;
        for (key, values) in keys {
            let invalid = |value: String, expected: &'static str| PolicyError::InvalidConditionValue {
                statement: statement.clone(),
                operator: name.clone(),
                key: key.clone(),
                value,
                expected,
            };
            if !matches!(key.split_once(':'), Some((prefix, rest)) if !prefix.is_empty() && !rest.is_empty()) {
                return Err(PolicyError::InvalidConditionKey {
                    statement: statement.clone(),
                    operator: name.clone(),
                    key: key.clone(),
                });
            }
            if operator.qualifier.is_some() && key.to_lowercase().starts_with("kms:encryptioncontext:") {
                return Err(PolicyError::OverlyPermissiveCondition {
                    statement: statement.clone(),
                    operator: name.clone(),
                    key: key.clone(),
                });
            }
            let raw = scalars(values).ok_or_else(|| invalid(values.to_string(), SCALARS))?;
            let values = typed(operator.test, raw, interpolate).map_err(|(bad, expected)| invalid(bad, expected))?;
            clauses.push(ConditionClause { operator, key: key.clone(), values });
        }
    }
    Ok(clauses)
}

const SCALARS: &str = "a string, number or boolean, or a non-empty array of them";

/// A scalar or a non-empty array of scalars, as strings.
fn scalars(value: &Value) -> Option<Vec<String>> {
    fn scalar(v: &Value) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
    match value {
        Value::Array(items) if !items.is_empty() => items.iter().map(scalar).collect(),
        Value::Array(_) => None,
        other => scalar(other).map(|s| vec![s]),
    }
}

/// Types the raw values for the operator; `Err((value, expected))` names the first bad one.
fn typed(test: ConditionTest, raw: Vec<String>, interpolate: bool) -> Result<ConditionValues, (String, &'static str)> {
    use ConditionTest as T;
    fn each<T>(
        raw: &[String],
        expected: &'static str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<Vec<T>, (String, &'static str)> {
        raw.iter().map(|s| parse(s).ok_or_else(|| (format!("{s:?}"), expected))).collect()
    }
    Ok(match test {
        T::NumericEquals
        | T::NumericNotEquals
        | T::NumericLessThan
        | T::NumericLessThanEquals
        | T::NumericGreaterThan
        | T::NumericGreaterThanEquals => ConditionValues::Numbers(each(&raw, "a number", parse_number)?),
        T::DateEquals
        | T::DateNotEquals
        | T::DateLessThan
        | T::DateLessThanEquals
        | T::DateGreaterThan
        | T::DateGreaterThanEquals => ConditionValues::Dates(each(
            &raw,
            "a date: ISO 8601 such as \"2024-01-31T12:00:00Z\", or epoch seconds",
            parse_date,
        )?),
        T::BinaryEquals => ConditionValues::Binary(each(&raw, "base64-encoded binary", |s| {
            base64::engine::general_purpose::STANDARD.decode(s).ok()
        })?),
        T::IpAddress | T::NotIpAddress => ConditionValues::Addresses(each(
            &raw,
            "an IP address or CIDR range such as \"203.0.113.0/24\" or \"2001:db8::/32\"",
            Cidr::parse,
        )?),
        T::Null => ConditionValues::Null(each(&raw, "true or false", parse_bool)?),
        T::Bool => {
            // Bool accepts policy variables, which are resolved at evaluation.
            each(&raw, "true or false", |s| {
                (parse_bool(s).is_some() || (interpolate && s.contains("${"))).then_some(())
            })?;
            ConditionValues::Strings(raw)
        }
        _ => ConditionValues::Strings(raw),
    })
}

fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// The policy side of a condition, with policy variables resolved, ready to test request values.
enum Matcher<'c> {
    Exact(Vec<String>),
    IgnoreCase(Vec<String>),
    Like(Vec<Pattern>),
    Arn(Vec<ArnPattern>),
    Bool(Vec<String>),
    Numbers(&'c [f64], Comparison),
    Dates(&'c [Timestamp], Comparison),
    Binary(&'c [Vec<u8>]),
    Addresses(&'c [Cidr]),
}

impl<'c> Matcher<'c> {
    /// `None` when a policy variable cannot be resolved: IAM then treats the condition as false.
    fn new(clause: &'c ConditionClause, variables: Option<Resolver<'_>>) -> Option<Self> {
        use ConditionTest as T;
        let test = clause.operator.test;
        Some(match &clause.values {
            ConditionValues::Strings(values) => {
                let patterns = values.iter().map(|v| Pattern::compile(v, variables)).collect::<Option<Vec<_>>>();
                match test {
                    T::StringLike | T::StringNotLike => Self::Like(patterns?),
                    T::StringEqualsIgnoreCase | T::StringNotEqualsIgnoreCase => {
                        Self::IgnoreCase(patterns?.iter().map(|p| p.literal().to_lowercase()).collect())
                    }
                    T::Bool => Self::Bool(patterns?.iter().map(|p| p.literal().to_ascii_lowercase()).collect()),
                    T::ArnEquals | T::ArnLike | T::ArnNotEquals | T::ArnNotLike => {
                        Self::Arn(values.iter().map(|v| ArnPattern::compile(v, variables)).collect::<Option<Vec<_>>>()?)
                    }
                    _ => Self::Exact(patterns?.iter().map(Pattern::literal).collect()),
                }
            }
            ConditionValues::Numbers(values) => Self::Numbers(values, test.comparison()),
            ConditionValues::Dates(values) => Self::Dates(values, test.comparison()),
            ConditionValues::Binary(values) => Self::Binary(values),
            ConditionValues::Addresses(values) => Self::Addresses(values),
            // Null is answered before a matcher is needed.
            ConditionValues::Null(_) => return None,
        })
    }

    /// Whether one request value matches any policy value, in the operator's positive sense.
    fn matches_any(&self, value: &str) -> bool {
        match self {
            Self::Exact(policy) => policy.iter().any(|p| p == value),
            Self::IgnoreCase(policy) => {
                let value = value.to_lowercase();
                policy.contains(&value)
            }
            Self::Like(policy) => policy.iter().any(|p| p.matches(value)),
            Self::Arn(policy) => policy.iter().any(|p| p.matches(value)),
            Self::Bool(policy) => policy.iter().any(|p| p.eq_ignore_ascii_case(value)),
            Self::Numbers(policy, comparison) => {
                parse_number(value).is_some_and(|v| policy.iter().any(|p| comparison.holds(&v, p)))
            }
            Self::Dates(policy, comparison) => {
                parse_date(value).is_some_and(|v| policy.iter().any(|p| comparison.holds(&v, p)))
            }
            Self::Binary(policy) => {
                base64::engine::general_purpose::STANDARD.decode(value).is_ok_and(|v| policy.contains(&v))
            }
            Self::Addresses(policy) => {
                value.trim().parse::<IpAddr>().is_ok_and(|v| policy.iter().any(|p| p.contains(v)))
            }
        }
    }
}

impl ConditionClause {
    /// Whether the condition holds for the request. `interpolate` is true for version
    /// 2012-10-17 policies, the only ones whose values may hold policy variables.
    pub(crate) fn holds(&self, keys: &RequestKeys<'_>, interpolate: bool) -> bool {
        let present = keys.values(&self.key);
        if let ConditionValues::Null(expected) = &self.values {
            return expected.contains(&present.is_none());
        }
        let operator = self.operator;
        let negated = operator.test.is_negated();
        let Some(request_values) = present else {
            return operator.if_exists
                || match operator.qualifier {
                    Some(SetQualifier::ForAllValues) => true,
                    Some(SetQualifier::ForAnyValue) => false,
                    None => negated,
                };
        };
        let resolve = |key: &str| keys.variable(key);
        let variables: Option<Resolver<'_>> = if interpolate { Some(&resolve) } else { None };
        let Some(matcher) = Matcher::new(self, variables) else {
            return false;
        };
        match operator.qualifier {
            // A single-valued operator on a multi-valued key: matched if any value matches,
            // and its negation is the negation of that.
            None => request_values.iter().any(|v| matcher.matches_any(v)) != negated,
            Some(SetQualifier::ForAnyValue) => request_values.iter().any(|v| matcher.matches_any(v) != negated),
            Some(SetQualifier::ForAllValues) => request_values.iter().all(|v| matcher.matches_any(v) != negated),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn operator_names() {
        let op = ConditionOperator::parse("ForAnyValue:StringEqualsIfExists").unwrap();
        assert_eq!(op.qualifier, Some(SetQualifier::ForAnyValue));
        assert_eq!(op.test, ConditionTest::StringEquals);
        assert!(op.if_exists);
        assert_eq!(op.to_string(), "ForAnyValue:StringEqualsIfExists");
        assert_eq!(ConditionOperator::parse("forallvalues:stringlike").unwrap().to_string(), "ForAllValues:StringLike");
        assert!(ConditionOperator::parse("NullIfExists").is_none());
        assert!(ConditionOperator::parse("StringEqual").is_none());
        assert!(ConditionOperator::parse("ForSomeValues:StringEquals").is_none());
        for (name, test) in TESTS {
            assert_eq!(test.name(), name);
            assert_eq!(ConditionOperator::parse(name).unwrap().test, test);
        }
    }

    #[test]
    fn dates() {
        let t = |s: &str| parse_date(s).map(Timestamp::unix_millis);
        assert_eq!(t("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(t("2014-11-30T12:00Z"), Some(1_417_348_800_000));
        assert_eq!(t("2014-11-30T14:00+02:00"), Some(1_417_348_800_000));
        assert_eq!(t("2014-11-30T10:00:00.5-02:00"), Some(1_417_348_800_500));
        assert_eq!(t("2014-11-30"), Some(1_417_305_600_000));
        assert_eq!(t("2014-11"), Some(1_414_800_000_000));
        assert_eq!(t("1417348800"), Some(1_417_348_800_000));
        assert_eq!(t("1417348800.25"), Some(1_417_348_800_250));
        for bad in
            ["", "2014-13-01", "2014-02-30", "14-11-30", "2014-11-30T25:00Z", "abc", "1.2.3", "2014-11-30T12", "."]
        {
            assert_eq!(t(bad), None, "{bad}");
        }
    }

    #[test]
    fn cidrs() {
        let c = Cidr::parse("203.0.113.0/24").unwrap();
        assert!(c.contains("203.0.113.77".parse().unwrap()));
        assert!(c.contains("::ffff:203.0.113.77".parse().unwrap()));
        assert!(!c.contains("203.0.114.1".parse().unwrap()));
        assert!(!c.contains("2001:db8::1".parse().unwrap()));
        let c = Cidr::parse("2001:DB8:1234:5678::/64").unwrap();
        assert!(c.contains("2001:db8:1234:5678:ffff::1".parse().unwrap()));
        assert!(!c.contains("2001:db8:1234:5679::1".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains("8.8.8.8".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.1").unwrap().contains("10.0.0.1".parse().unwrap()));
        assert!(!Cidr::parse("10.0.0.1").unwrap().contains("10.0.0.2".parse().unwrap()));
        for bad in ["10.0.0.0/33", "10.0.0.0/", "10.0.0/8", "::/129", "x", "10.0.0.0/-1"] {
            assert!(Cidr::parse(bad).is_none(), "{bad}");
        }
    }
}
