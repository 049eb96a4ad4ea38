//! Constraints on where replicas may go: `+region=eu` (required),
//! `-zone=eu-1` (prohibited), grouped into conjunctions, in CockroachDB's
//! two written forms.
//!
//! - List form `[+region=eu, -zone=eu-1]`: one conjunction that *every*
//!   replica (of the kind the field governs) must satisfy. Stored as one
//!   [`Conjunction`] with `num_replicas == 0`.
//! - Per-count form `{"+region=eu": 2, "+region=us,-zone=us-2": 1}`: at
//!   least that many replicas satisfy each conjunction; the rest are free.
//!
//! Lease preferences are an ordered list of conjunctions,
//! `[[+region=eu], [+region=us]]`.
//!
//! Owns: the types, matching against a [`Locality`], the text forms (parse
//! and print, printing in the form CockroachDB's `SHOW ZONE CONFIGURATION`
//! uses). Does not own: counting replicas against per-count conjunctions
//! (the allocator and validation do that).
//!
//! The tiers are those of a [`Locality`]: `region` and `zone`; any other
//! key is refused when parsed, since no node could ever match it.

use std::fmt;

use meridian_topology::Locality;
use serde::{Deserialize, Serialize};

use crate::error::PlacementError;

/// Required (`+`) or prohibited (`-`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ConstraintKind {
    Required,
    Prohibited,
}

/// The locality tier a constraint names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Tier {
    Region,
    Zone,
}

/// One `+tier=value` or `-tier=value`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Constraint {
    pub kind: ConstraintKind,
    pub tier: Tier,
    pub value: String,
}

impl Constraint {
    pub fn required_region(region: impl Into<String>) -> Self {
        Constraint {
            kind: ConstraintKind::Required,
            tier: Tier::Region,
            value: region.into(),
        }
    }

    /// Whether a node at `locality` satisfies this constraint.
    pub fn matches(&self, locality: &Locality) -> bool {
        let actual = match self.tier {
            Tier::Region => &locality.region,
            Tier::Zone => &locality.zone,
        };
        (actual == &self.value) == (self.kind == ConstraintKind::Required)
    }
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = match self.kind {
            ConstraintKind::Required => '+',
            ConstraintKind::Prohibited => '-',
        };
        let tier = match self.tier {
            Tier::Region => "region",
            Tier::Zone => "zone",
        };
        write!(f, "{sign}{tier}={}", self.value)
    }
}

/// Constraints that must all hold, for `num_replicas` replicas (0: all).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Conjunction {
    pub num_replicas: u32,
    pub constraints: Vec<Constraint>,
}

impl Conjunction {
    /// Whether a node at `locality` satisfies every constraint.
    pub fn matches(&self, locality: &Locality) -> bool {
        self.constraints.iter().all(|c| c.matches(locality))
    }

    /// The constraints joined by commas, as in a per-count key.
    pub fn describe(&self) -> String {
        join(&self.constraints)
    }
}

/// A `constraints` or `voter_constraints` value: either one list-form
/// conjunction (every replica) or per-count conjunctions.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Constraints(pub Vec<Conjunction>);

impl Constraints {
    /// The list form: every replica satisfies all of `constraints`.
    pub fn all(constraints: Vec<Constraint>) -> Self {
        if constraints.is_empty() {
            Constraints(Vec::new())
        } else {
            Constraints(vec![Conjunction {
                num_replicas: 0,
                constraints,
            }])
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a node at `locality` may hold a replica at all: it meets
    /// every list-form conjunction (per-count ones do not bar a node).
    pub fn allows(&self, locality: &Locality) -> bool {
        self.0
            .iter()
            .filter(|c| c.num_replicas == 0)
            .all(|c| c.matches(locality))
    }

    /// The per-count conjunctions.
    pub fn per_count(&self) -> impl Iterator<Item = &Conjunction> {
        self.0.iter().filter(|c| c.num_replicas > 0)
    }

    /// The sum of the per-count conjunctions' counts.
    pub fn counted(&self) -> u32 {
        self.per_count().map(|c| c.num_replicas).sum()
    }

    /// Parses the list form `[+a=b, -c=d]` or the per-count form
    /// `{+a=b: 2, "+c=d,-e=f": 1}`.
    pub fn parse(input: &str) -> Result<Self, PlacementError> {
        let text = input.trim();
        let bad = |reason: &str| PlacementError::MalformedConstraint {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        if let Some(inner) = strip(text, '[', ']') {
            return Ok(Constraints::all(parse_list(inner, input)?));
        }
        let Some(inner) = strip(text, '{', '}') else {
            return Err(bad("expected [list] or {per-count map}"));
        };
        let mut out = Vec::new();
        for entry in split_top(inner) {
            let entry = entry.trim();
            if entry.is_empty() {
                continue;
            }
            let (key, count) = entry
                .rsplit_once(':')
                .ok_or_else(|| bad("a per-count entry lacks ': count'"))?;
            let count: u32 = count
                .trim()
                .parse()
                .map_err(|_| bad("a per-count entry's count is not a whole number"))?;
            if count == 0 {
                return Err(bad("a per-count entry's count must be at least 1"));
            }
            let key = key.trim();
            let key = strip(key, '"', '"').unwrap_or(key);
            let constraints = parse_list(key, input)?;
            if constraints.is_empty() {
                return Err(bad("a per-count entry has no constraint"));
            }
            out.push(Conjunction {
                num_replicas: count,
                constraints,
            });
        }
        Ok(Constraints(out))
    }
}

impl fmt::Display for Constraints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [] => write!(f, "[]"),
            [only] if only.num_replicas == 0 => write!(f, "[{}]", only.describe()),
            all => {
                let parts: Vec<String> = all
                    .iter()
                    .map(|c| {
                        if c.constraints.len() > 1 {
                            format!("\"{}\": {}", c.describe(), c.num_replicas)
                        } else {
                            format!("{}: {}", c.describe(), c.num_replicas)
                        }
                    })
                    .collect();
                write!(f, "{{{}}}", parts.join(", "))
            }
        }
    }
}

/// An ordered list of lease preferences: the lease goes to a voter meeting
/// the first preference some voter meets.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LeasePreferences(pub Vec<Vec<Constraint>>);

impl LeasePreferences {
    /// Parses `[[+region=a], [+region=b, -zone=b-1]]`.
    pub fn parse(input: &str) -> Result<Self, PlacementError> {
        let bad = |reason: &str| PlacementError::MalformedConstraint {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        let inner = strip(input.trim(), '[', ']').ok_or_else(|| bad("expected [[...], [...]]"))?;
        let mut out = Vec::new();
        for part in split_top(inner) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let list =
                strip(part, '[', ']').ok_or_else(|| bad("each lease preference is a [list]"))?;
            let constraints = parse_list(list, input)?;
            if constraints.is_empty() {
                return Err(bad("an empty lease preference"));
            }
            out.push(constraints);
        }
        Ok(LeasePreferences(out))
    }
}

impl fmt::Display for LeasePreferences {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|p| format!("[{}]", join(p))).collect();
        write!(f, "[{}]", parts.join(", "))
    }
}

/// Whether a node at `locality` meets every constraint of `list`.
pub fn matches_all(list: &[Constraint], locality: &Locality) -> bool {
    list.iter().all(|c| c.matches(locality))
}

/// Human wording for where a list of constraints points: "in region eu"
/// for the common single-region case, else "matching [..]".
pub fn describe_place(list: &[Constraint]) -> String {
    match list {
        [c] if c.kind == ConstraintKind::Required && c.tier == Tier::Region => {
            format!("in region {}", c.value)
        }
        [c] if c.kind == ConstraintKind::Required && c.tier == Tier::Zone => {
            format!("in zone {}", c.value)
        }
        _ => format!("matching [{}]", join(list)),
    }
}

fn join(list: &[Constraint]) -> String {
    let parts: Vec<String> = list.iter().map(Constraint::to_string).collect();
    parts.join(",")
}

fn strip(text: &str, open: char, close: char) -> Option<&str> {
    text.strip_prefix(open)?.strip_suffix(close)
}

/// Splits on commas not inside brackets or double quotes.
fn split_top(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut quoted, mut start) = (0i32, false, 0);
    for (i, ch) in text.char_indices() {
        match ch {
            '"' => quoted = !quoted,
            '[' | '{' if !quoted => depth += 1,
            ']' | '}' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// Parses `+a=b, -c=d` (no brackets).
fn parse_list(text: &str, input: &str) -> Result<Vec<Constraint>, PlacementError> {
    let mut out = Vec::new();
    for part in text.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        out.push(parse_one(part, input)?);
    }
    Ok(out)
}

fn parse_one(text: &str, input: &str) -> Result<Constraint, PlacementError> {
    let bad = |reason: String| PlacementError::MalformedConstraint {
        input: input.to_string(),
        reason,
    };
    let (kind, rest) = match text.chars().next() {
        Some('+') => (ConstraintKind::Required, &text[1..]),
        Some('-') => (ConstraintKind::Prohibited, &text[1..]),
        _ => {
            return Err(bad(format!(
                "{text:?} must start with + (required) or - (prohibited)"
            )))
        }
    };
    let (key, value) = rest
        .split_once('=')
        .ok_or_else(|| bad(format!("{text:?} is not tier=value")))?;
    let tier = match key.trim() {
        "region" => Tier::Region,
        "zone" => Tier::Zone,
        other => {
            return Err(bad(format!(
                "unknown locality tier {other:?} (only region and zone)"
            )))
        }
    };
    let value = value.trim();
    if value.is_empty() || value.contains(|c: char| c.is_whitespace() || "[]{}:\"'".contains(c)) {
        return Err(bad(format!("{text:?} has an empty or malformed value")));
    }
    Ok(Constraint {
        kind,
        tier,
        value: value.to_string(),
    })
}
