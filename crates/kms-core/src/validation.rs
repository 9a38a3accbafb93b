//! Field-constraint violations, rendered the way AWS renders `ValidationException` messages:
//! `1 validation error detected: Value 'x' at 'field' failed to satisfy constraint: Member must …`.

use std::borrow::Cow;
use std::fmt;

/// A constraint on a request member, as AWS's service model states it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Constraint {
    /// The member is required.
    NotNull,
    /// String or blob length (in characters or bytes) at least this.
    MinLength(usize),
    /// String or blob length at most this.
    MaxLength(usize),
    /// Number at least this.
    MinValue(i64),
    /// Number at most this.
    MaxValue(i64),
    /// String must match this regular expression.
    Pattern(&'static str),
    /// String must be one of these values.
    Enum(&'static [&'static str]),
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotNull => f.write_str("Member must not be null"),
            Self::MinLength(n) => write!(f, "Member must have length greater than or equal to {n}"),
            Self::MaxLength(n) => write!(f, "Member must have length less than or equal to {n}"),
            Self::MinValue(n) => write!(f, "Member must have value greater than or equal to {n}"),
            Self::MaxValue(n) => write!(f, "Member must have value less than or equal to {n}"),
            Self::Pattern(p) => write!(f, "Member must satisfy regular expression pattern: {p}"),
            Self::Enum(values) => write!(f, "Member must satisfy enum value set: [{}]", values.join(", ")),
        }
    }
}

/// One violated constraint on one request member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The member's name as AWS spells it in messages (camelCase, e.g. `plaintext`, or a path
    /// such as `tags.1.member.tagKey`).
    pub field: Cow<'static, str>,
    /// The offending value, when it may be echoed (never for secrets or blobs).
    pub value: Option<String>,
    /// What was violated.
    pub constraint: Constraint,
}

impl Violation {
    /// A violation that echoes `value` in the message.
    pub fn with_value(field: impl Into<Cow<'static, str>>, value: impl Into<String>, constraint: Constraint) -> Self {
        Self { field: field.into(), value: Some(value.into()), constraint }
    }

    /// A violation that does not echo the value (plaintext, blobs, missing members).
    pub fn without_value(field: impl Into<Cow<'static, str>>, constraint: Constraint) -> Self {
        Self { field: field.into(), value: None, constraint }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            None if self.constraint == Constraint::NotNull => {
                write!(f, "Value null at '{}' failed to satisfy constraint: {}", self.field, self.constraint)
            }
            Some(v) => write!(f, "Value '{v}' at '{}' failed to satisfy constraint: {}", self.field, self.constraint),
            None => write!(f, "Value at '{}' failed to satisfy constraint: {}", self.field, self.constraint),
        }
    }
}

/// One or more violations, collected over a whole request as AWS does.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Violations(pub Vec<Violation>);

impl Violations {
    /// Adds a violation.
    pub fn push(&mut self, v: Violation) {
        self.0.push(v);
    }

    /// Whether nothing was violated.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Checks a length range, recording a violation if it is outside.
    pub fn length(
        &mut self,
        field: impl Into<Cow<'static, str>>,
        echo: Option<&str>,
        len: usize,
        min: usize,
        max: usize,
    ) {
        let constraint = if len < min {
            Constraint::MinLength(min)
        } else if len > max {
            Constraint::MaxLength(max)
        } else {
            return;
        };
        self.push(Violation { field: field.into(), value: echo.map(str::to_owned), constraint });
    }

    /// Checks an integer range, recording a violation (which echoes the value) if it is outside.
    pub fn range(&mut self, field: &'static str, value: i64, min: i64, max: i64) {
        if value < min {
            self.push(Violation::with_value(field, value.to_string(), Constraint::MinValue(min)));
        } else if value > max {
            self.push(Violation::with_value(field, value.to_string(), Constraint::MaxValue(max)));
        }
    }
}

impl fmt::Display for Violations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(f, "{n} validation error{} detected: ", if n == 1 { "" } else { "s" })?;
        for (i, v) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_aws() {
        let mut v = Violations::default();
        v.length("plaintext", None, 5000, 1, 4096);
        assert_eq!(
            v.to_string(),
            "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: \
             Member must have length less than or equal to 4096"
        );
        v.range("limit", 0, 1, 1000);
        assert_eq!(
            v.to_string(),
            "2 validation errors detected: Value at 'plaintext' failed to satisfy constraint: \
             Member must have length less than or equal to 4096; Value '0' at 'limit' failed to \
             satisfy constraint: Member must have value greater than or equal to 1"
        );
    }
}
