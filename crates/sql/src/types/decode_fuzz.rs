//! Decoding what a client sends (a parameter's binary or text form, for
//! every type) must answer a value or an error, never panic: a panic here
//! would end the client's connection task on any malformed Bind message.
//! And what decodes must cast to every type without a panic either.

use proptest::prelude::*;

use super::{binary, cast, text, SqlType};

const TYPES: [SqlType; 22] = [
    SqlType::Bool,
    SqlType::Int2,
    SqlType::Int4,
    SqlType::Int8,
    SqlType::Float4,
    SqlType::Float8,
    SqlType::Numeric,
    SqlType::Text,
    SqlType::Varchar(Some(3)),
    SqlType::Char(2),
    SqlType::Bytea,
    SqlType::Timestamp,
    SqlType::TimestampTz,
    SqlType::Date,
    SqlType::Interval,
    SqlType::Uuid,
    SqlType::Jsonb,
    SqlType::Oid,
    SqlType::Name,
    SqlType::PgChar,
    SqlType::Unknown,
    SqlType::Varchar(None),
];

/// Text that looks like numbers, dates, times and intervals, so parsing
/// gets past its first character.
fn texty() -> impl Strategy<Value = String> {
    prop_oneof![
        "[-+0-9.eE ]{0,40}",
        "[0-9:. T+-]{0,32}",
        "[0-9a-z :@+-]{0,40}",
        "[ -~]{0,24}",
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn binary_parameters_of_every_type_decode_or_fail(
        bytes in prop::collection::vec(any::<u8>(), 0..40),
    ) {
        for ty in TYPES {
            if let Ok(datum) = binary::decode(&bytes, ty) {
                for to in TYPES {
                    let _ = cast::cast(datum.clone(), to, true);
                }
            }
        }
    }

    #[test]
    fn text_parameters_of_every_type_parse_or_fail(s in texty()) {
        for ty in TYPES {
            if let Ok(datum) = text::parse(&s, ty) {
                let _ = text::format(&datum);
                for to in TYPES {
                    let _ = cast::cast(datum.clone(), to, false);
                }
            }
        }
    }
}
