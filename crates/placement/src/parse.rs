//! The text form of a zone config: CockroachDB's `CONFIGURE ZONE USING`
//! list, both ways.
//!
//! ```text
//! num_replicas = 5, num_voters = 3, constraints = '{+region=eu: 2}',
//! voter_constraints = '[+region=eu]', lease_preferences = '[[+region=eu]]',
//! gc.ttlseconds = 600, range_min_bytes = 1048576, range_max_bytes = 67108864,
//! global_reads = true, num_voters = COPY FROM PARENT
//! ```
//!
//! Values are whole numbers, `true`/`false`, single-quoted strings (for
//! the constraint fields), or `COPY FROM PARENT`, which leaves the field
//! unset so it is inherited. Unlike CockroachDB, arithmetic (`64 << 20`)
//! is not accepted: a number is digits, optionally with `_` separators.
//!
//! Owns: [`parse_using`] and the `Display` of [`ZoneConfig`] (only the
//! fields set, one per line, in the order above), which parses back to the
//! same config. Does not own: whether the values make sense together
//! (`validate`).

use std::fmt;

use crate::config::ZoneConfig;
use crate::constraint::{Constraints, LeasePreferences};
use crate::error::PlacementError;

/// The field names, as written.
pub const FIELDS: [&str; 9] = [
    "num_replicas",
    "num_voters",
    "constraints",
    "voter_constraints",
    "lease_preferences",
    "range_min_bytes",
    "range_max_bytes",
    "gc.ttlseconds",
    "global_reads",
];

/// Parses the list after `CONFIGURE ZONE USING` into a config holding only
/// the fields named.
pub fn parse_using(input: &str) -> Result<ZoneConfig, PlacementError> {
    let mut config = ZoneConfig::default();
    let mut seen: Vec<String> = Vec::new();
    for item in split_items(input)? {
        let item = item.trim();
        if item.is_empty() {
            return Err(PlacementError::Syntax {
                at: input.to_string(),
                reason: "an empty item (stray comma?)",
            });
        }
        let (name, value) = item.split_once('=').ok_or(PlacementError::Syntax {
            at: item.to_string(),
            reason: "expected field = value",
        })?;
        let name = name.trim().to_ascii_lowercase();
        let value = value.trim();
        if !FIELDS.contains(&name.as_str()) {
            return Err(PlacementError::UnknownField { field: name });
        }
        if seen.contains(&name) {
            return Err(PlacementError::DuplicateField { field: name });
        }
        seen.push(name.clone());
        let value = Value::parse(value);
        if matches!(value, Value::CopyFromParent) {
            continue;
        }
        match name.as_str() {
            "num_replicas" => config.num_replicas = Some(value.count(&name)?),
            "num_voters" => config.num_voters = Some(value.count(&name)?),
            "range_min_bytes" => config.range_min_bytes = Some(value.number(&name)?),
            "range_max_bytes" => config.range_max_bytes = Some(value.number(&name)?),
            "gc.ttlseconds" => config.gc_ttl_seconds = Some(value.number(&name)?),
            "global_reads" => config.global_reads = Some(value.boolean(&name)?),
            "constraints" => config.constraints = Some(Constraints::parse(value.string(&name)?)?),
            "voter_constraints" => {
                config.voter_constraints = Some(Constraints::parse(value.string(&name)?)?)
            }
            "lease_preferences" => {
                config.lease_preferences = Some(LeasePreferences::parse(value.string(&name)?)?)
            }
            _ => unreachable!("every name in FIELDS is handled"),
        }
    }
    Ok(config)
}

/// Splits on commas outside single quotes; refuses an unclosed quote.
fn split_items(input: &str) -> Result<Vec<&str>, PlacementError> {
    let mut items = Vec::new();
    let (mut quoted, mut start) = (false, 0);
    for (i, ch) in input.char_indices() {
        match ch {
            '\'' => quoted = !quoted,
            ',' if !quoted => {
                items.push(&input[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if quoted {
        return Err(PlacementError::Syntax {
            at: input[start..].trim().to_string(),
            reason: "unclosed quote",
        });
    }
    items.push(&input[start..]);
    Ok(items)
}

/// One value, before its field says what it must be.
enum Value<'a> {
    Number(u64),
    Bool(bool),
    Str(&'a str),
    CopyFromParent,
    Other(&'a str),
}

impl<'a> Value<'a> {
    fn parse(text: &'a str) -> Value<'a> {
        let lower = text.to_ascii_lowercase();
        if lower.split_whitespace().collect::<Vec<_>>() == ["copy", "from", "parent"] {
            return Value::CopyFromParent;
        }
        if let Some(inner) = text.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')) {
            return Value::Str(inner);
        }
        match lower.as_str() {
            "true" => return Value::Bool(true),
            "false" => return Value::Bool(false),
            _ => {}
        }
        let digits: String = text.chars().filter(|&c| c != '_').collect();
        if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) {
            if let Ok(n) = digits.parse() {
                return Value::Number(n);
            }
        }
        Value::Other(text)
    }

    fn describe(&self) -> String {
        match self {
            Value::Number(n) => format!("the number {n}"),
            Value::Bool(b) => format!("the boolean {b}"),
            Value::Str(s) => format!("the string '{s}'"),
            Value::CopyFromParent => "COPY FROM PARENT".to_string(),
            Value::Other(t) => format!("{t:?}"),
        }
    }

    fn wrong(&self, field: &str, expected: &'static str) -> PlacementError {
        PlacementError::WrongType {
            field: field.to_string(),
            expected,
            got: self.describe(),
        }
    }

    fn number(&self, field: &str) -> Result<u64, PlacementError> {
        match self {
            Value::Number(n) => Ok(*n),
            _ => Err(self.wrong(field, "a whole number")),
        }
    }

    fn count(&self, field: &str) -> Result<u32, PlacementError> {
        match self {
            Value::Number(n) => u32::try_from(*n).map_err(|_| self.wrong(field, "a count")),
            _ => Err(self.wrong(field, "a whole number")),
        }
    }

    fn boolean(&self, field: &str) -> Result<bool, PlacementError> {
        match self {
            Value::Bool(b) => Ok(*b),
            _ => Err(self.wrong(field, "true or false")),
        }
    }

    fn string(&self, field: &str) -> Result<&'a str, PlacementError> {
        match self {
            Value::Str(s) => Ok(s),
            _ => Err(self.wrong(field, "a quoted string such as '[+region=eu]'")),
        }
    }
}

impl fmt::Display for ZoneConfig {
    /// The fields set, `name = value` joined by ",\n", in [`FIELDS`] order.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut lines: Vec<String> = Vec::new();
        if let Some(n) = self.num_replicas {
            lines.push(format!("num_replicas = {n}"));
        }
        if let Some(n) = self.num_voters {
            lines.push(format!("num_voters = {n}"));
        }
        if let Some(c) = &self.constraints {
            lines.push(format!("constraints = '{c}'"));
        }
        if let Some(c) = &self.voter_constraints {
            lines.push(format!("voter_constraints = '{c}'"));
        }
        if let Some(p) = &self.lease_preferences {
            lines.push(format!("lease_preferences = '{p}'"));
        }
        if let Some(n) = self.range_min_bytes {
            lines.push(format!("range_min_bytes = {n}"));
        }
        if let Some(n) = self.range_max_bytes {
            lines.push(format!("range_max_bytes = {n}"));
        }
        if let Some(n) = self.gc_ttl_seconds {
            lines.push(format!("gc.ttlseconds = {n}"));
        }
        if let Some(b) = self.global_reads {
            lines.push(format!("global_reads = {b}"));
        }
        write!(f, "{}", lines.join(",\n"))
    }
}
