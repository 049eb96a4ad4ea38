use std::cmp::Ordering;

use meridian_hlc::Timestamp;
use proptest::prelude::*;

use crate::encoding::*;
use crate::mvcc::*;
use crate::space::*;
use crate::KeyError;

fn enc(v: &Value, dir: Direction) -> Vec<u8> {
    let mut buf = Vec::new();
    encode_value(&mut buf, v, dir);
    buf
}

/// The SQL order of two values of one type: NULL first, floats with
/// `-0 == +0` and NaN above everything, strings bytewise.
fn sql_cmp(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Less,
        (_, Value::Null) => Ordering::Greater,
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Int(x), Value::Int(y)) => x.cmp(y),
        (Value::Float(x), Value::Float(y)) => match (x.is_nan(), y.is_nan()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => x.partial_cmp(y).unwrap(),
        },
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bytes(x), Value::Bytes(y)) => x.cmp(y),
        _ => panic!("values of different types"),
    }
}

/// Values compare equal after a round trip (NaN to NaN, -0 to +0).
fn same(a: &Value, b: &Value) -> bool {
    sql_cmp(a, b) == Ordering::Equal
}

fn float() -> impl Strategy<Value = f64> + Clone {
    prop_oneof![
        any::<f64>(),
        Just(f64::NAN),
        Just(-f64::NAN),
        Just(0.0),
        Just(-0.0),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(f64::MIN_POSITIVE),
        Just(-f64::MIN_POSITIVE),
    ]
}

fn int() -> impl Strategy<Value = i64> + Clone {
    prop_oneof![
        any::<i64>(),
        -300i64..300,
        Just(i64::MIN),
        Just(i64::MAX),
        Just(-256),
        Just(255),
        Just(256),
    ]
}

fn bytes() -> impl Strategy<Value = Vec<u8>> + Clone {
    proptest::collection::vec(
        prop_oneof![Just(0u8), Just(1u8), Just(0xffu8), any::<u8>()],
        0..12,
    )
}

/// Pairs of values of one type, NULL mixed into each.
fn same_type_pair() -> impl Strategy<Value = (Value, Value)> {
    fn with_null<S: Strategy<Value = Value> + Clone>(
        s: S,
    ) -> impl Strategy<Value = (Value, Value)> {
        let one = prop_oneof![1 => Just(Value::Null), 8 => s];
        (one.clone(), one)
    }
    prop_oneof![
        with_null(any::<bool>().prop_map(Value::Bool)),
        with_null(int().prop_map(Value::Int)),
        with_null(float().prop_map(Value::Float)),
        with_null(".{0,8}".prop_map(Value::String)),
        with_null(bytes().prop_map(Value::Bytes)),
    ]
}

fn direction() -> impl Strategy<Value = Direction> {
    prop_oneof![Just(Direction::Ascending), Just(Direction::Descending)]
}

proptest! {
    #[test]
    fn encoding_preserves_order((a, b) in same_type_pair(), dir in direction()) {
        let expected = match dir {
            Direction::Ascending => sql_cmp(&a, &b),
            Direction::Descending => sql_cmp(&b, &a),
        };
        prop_assert_eq!(enc(&a, dir).cmp(&enc(&b, dir)), expected, "{:?} vs {:?}", a, b);
    }

    #[test]
    fn encoding_round_trips((a, _) in same_type_pair(), dir in direction()) {
        let bytes = enc(&a, dir);
        let (decoded, got_dir, used) = decode_value(&bytes).unwrap();
        prop_assert!(same(&a, &decoded), "{:?} decoded as {:?}", a, decoded);
        prop_assert_eq!(got_dir, dir);
        prop_assert_eq!(used, bytes.len());
    }

    /// Composite keys compare column by column: the first differing column
    /// decides, whatever the columns after it hold.
    #[test]
    fn composite_keys_compare_by_column(
        (a1, b1) in same_type_pair(),
        (a2, b2) in same_type_pair(),
        d1 in direction(),
        d2 in direction(),
    ) {
        // The second column's type must match between the two keys.
        let b2 = if std::mem::discriminant(&a2) == std::mem::discriminant(&b2) { b2 } else { a2.clone() };
        let mut ka = Vec::new();
        encode_values(&mut ka, [(&a1, d1), (&a2, d2)]);
        let mut kb = Vec::new();
        encode_values(&mut kb, [(&b1, d1), (&b2, d2)]);
        let first = match d1 { Direction::Ascending => sql_cmp(&a1, &b1), Direction::Descending => sql_cmp(&b1, &a1) };
        let second = match d2 { Direction::Ascending => sql_cmp(&a2, &b2), Direction::Descending => sql_cmp(&b2, &a2) };
        prop_assert_eq!(ka.cmp(&kb), first.then(second));
        let decoded = decode_values(&ka).unwrap();
        prop_assert_eq!(decoded.len(), 2);
        prop_assert!(same(&decoded[0].0, &a1) && same(&decoded[1].0, &a2));
    }

    /// Decoding arbitrary bytes returns a value or an error, never panics.
    #[test]
    fn decoding_garbage_never_panics(raw in proptest::collection::vec(any::<u8>(), 0..40)) {
        let _ = decode_values(&raw);
        let _ = decode_mvcc_key(&raw);
        let _ = Key::decode(&raw);
    }

    /// Version keys sort by user key, then intent first, then newest first.
    #[test]
    fn mvcc_keys_order(
        ka in bytes(), kb in bytes(),
        ta in any::<(u64, u32)>(), tb in any::<(u64, u32)>(),
        a_intent in any::<bool>(), b_intent in any::<bool>(),
    ) {
        let (ta, tb) = (Timestamp::new(ta.0, ta.1), Timestamp::new(tb.0, tb.1));
        let ea = if a_intent { encode_intent_key(&ka) } else { encode_version_key(&ka, ta) };
        let eb = if b_intent { encode_intent_key(&kb) } else { encode_version_key(&kb, tb) };
        let by_version = match (a_intent, b_intent) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            (false, false) => tb.cmp(&ta),
        };
        prop_assert_eq!(ea.cmp(&eb), ka.cmp(&kb).then(by_version));
        let decoded = decode_mvcc_key(&ea).unwrap();
        prop_assert_eq!(&decoded.key, &ka);
        prop_assert_eq!(decoded.timestamp, if a_intent { None } else { Some(ta) });
        let prefix = user_key_prefix_len(&ea).unwrap();
        prop_assert_eq!(prefix, encode_intent_key(&ka).len());
        prop_assert_eq!(version_timestamp(&ea, prefix).unwrap(), decoded.timestamp);
    }
}

#[test]
fn small_ints_are_short() {
    assert_eq!(enc(&Value::Int(0), Direction::Ascending), vec![0x28]);
    assert_eq!(enc(&Value::Int(5), Direction::Ascending), vec![0x29, 5]);
    assert_eq!(enc(&Value::Int(-1), Direction::Ascending), vec![0x27]);
    assert_eq!(enc(&Value::Int(i64::MAX), Direction::Ascending).len(), 9);
}

#[test]
fn float_edge_cases_order() {
    let ordered = [
        f64::NEG_INFINITY,
        -1.5,
        -f64::MIN_POSITIVE,
        0.0,
        f64::MIN_POSITIVE,
        2.0,
        f64::INFINITY,
        f64::NAN,
    ];
    for w in ordered.windows(2) {
        let a = enc(&Value::Float(w[0]), Direction::Ascending);
        let b = enc(&Value::Float(w[1]), Direction::Ascending);
        assert!(a < b, "{} must sort before {}", w[0], w[1]);
    }
    assert_eq!(
        enc(&Value::Float(-0.0), Direction::Ascending),
        enc(&Value::Float(0.0), Direction::Ascending)
    );
}

#[test]
fn null_is_first_ascending_and_last_descending() {
    let null_asc = enc(&Value::Null, Direction::Ascending);
    let min_int = enc(&Value::Int(i64::MIN), Direction::Ascending);
    assert!(null_asc < min_int);
    let null_desc = enc(&Value::Null, Direction::Descending);
    let min_int_desc = enc(&Value::Int(i64::MIN), Direction::Descending);
    assert!(null_desc > min_int_desc);
}

#[test]
fn strings_with_zero_bytes_stay_ordered() {
    let a = enc(&Value::String("a".into()), Direction::Ascending);
    let a0 = enc(&Value::String("a\0".into()), Direction::Ascending);
    let a1 = enc(&Value::String("a\u{1}".into()), Direction::Ascending);
    assert!(a < a0 && a0 < a1);
}

#[test]
fn corrupt_encodings_are_errors() {
    assert_eq!(decode_value(&[]), Err(KeyError::Truncated));
    assert_eq!(decode_value(&[0x77]), Err(KeyError::UnknownTag(0x77)));
    assert_eq!(decode_value(&[0x50, b'a']), Err(KeyError::Truncated));
    assert_eq!(
        decode_value(&[0x50, 0x00, 0x07]),
        Err(KeyError::BadEscape(0x07))
    );
    assert_eq!(
        decode_value(&[0x50, 0xff, 0x00, 0x01]),
        Err(KeyError::InvalidUtf8)
    );
    // 5 written in two bytes is not canonical.
    assert_eq!(
        decode_value(&[0x2a, 0x00, 0x05]),
        Err(KeyError::NonCanonicalInt)
    );
    assert_eq!(
        decode_mvcc_key(&[b'k', 0x00, 0x01, 1, 2]),
        Err(KeyError::BadTimestampSuffix(2))
    );
}

#[test]
fn key_spaces_round_trip() {
    let table = Key::Table {
        table_id: 5,
        index_id: 1,
        columns: enc(&Value::Int(42), Direction::Ascending),
    };
    let raw = table.encode();
    assert_eq!(&raw[..5], &[0x10, 0x29, 0x05, 0x29, 0x01]);
    assert_eq!(Key::decode(&raw), table);

    let meta = Key::Meta {
        end_key: b"zz".to_vec(),
    };
    assert_eq!(Key::decode(&meta.encode()), meta);

    let system = Key::System {
        name: b"liveness".to_vec(),
        suffix: vec![0, 0, 0, 3],
    };
    assert_eq!(Key::decode(&system.encode()), system);

    let catalog = Key::Catalog {
        name: b"sql/tbl".to_vec(),
        suffix: enc(&Value::Int(100), Direction::Ascending),
    };
    assert_eq!(Key::decode(&catalog.encode()), catalog);
    let (catalog_start, catalog_end) = CATALOG_SPAN;
    assert!(catalog_start <= catalog.encode().as_slice());
    assert!(catalog.encode().as_slice() < catalog_end);

    let local = range_local_key(7, RangeLocalKind::Descriptor);
    assert_eq!(
        decode_range_local_key(&local).unwrap(),
        (7, RangeLocalKind::Descriptor)
    );

    // Spaces sort meta < system < catalog < tables.
    assert!(meta.encode() < system.encode() && system.encode() < catalog.encode());
    assert!(catalog.encode() < raw && catalog_end <= raw.as_slice());
}

#[test]
fn prefix_end_is_the_next_prefix() {
    assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
    assert_eq!(prefix_end(&[0x01, 0xff]), Some(vec![0x02]));
    assert_eq!(prefix_end(&[0xff, 0xff]), None);
    let p = table_prefix(9);
    let inside = table_index_prefix(9, 300);
    let end = prefix_end(&p).unwrap();
    assert!(p <= inside && inside < end);
    assert!(table_prefix(10) >= end);
}
