//! How zone configs are kept in the system key space: one record per span
//! plus one for the default, so that setting the config of one table
//! writes one key and a reader rebuilds the whole map with one scan.
//!
//! | key | value |
//! |---|---|
//! | `system_key("zone", [0])` | the default [`ZoneConfig`] (JSON) |
//! | `system_key("zone", [1] ++ u32 BE len(start) ++ start ++ end)` | the span's [`ZoneConfig`] (JSON) |
//!
//! The length prefix makes the key unambiguous for any start and end;
//! record keys need no particular order, because [`ZoneConfigs`] sorts its
//! spans itself. JSON keeps the records readable with `debug kv`.
//!
//! Owns: the key layout and the value encoding, both ways. Does not own:
//! reading or writing them (the server's zone store and the SQL layer do,
//! in their transactions), validation (`validate`, `spans`).

use meridian_keys::space::{prefix_end, system_key};

use crate::config::ZoneConfig;
use crate::error::PlacementError;
use crate::spans::{SpanConfig, ZoneConfigs};

const ZONE_NAME: &[u8] = b"zone";
const DEFAULT_TAG: u8 = 0;
const SPAN_TAG: u8 = 1;

/// One stored record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ZoneRecord {
    /// The config every span inherits from.
    Default(ZoneConfig),
    Span(SpanConfig),
}

/// The first key of every zone record.
pub fn zone_records_start() -> Vec<u8> {
    system_key(ZONE_NAME, &[])
}

/// The key after every zone record.
pub fn zone_records_end() -> Vec<u8> {
    prefix_end(&zone_records_start()).expect("the system prefix is not all 0xff")
}

/// The key of the default config's record.
pub fn default_zone_key() -> Vec<u8> {
    system_key(ZONE_NAME, &[DEFAULT_TAG])
}

/// The key of the record of the config set on exactly `[start, end)`.
pub fn span_zone_key(start: &[u8], end: &[u8]) -> Vec<u8> {
    let mut suffix = Vec::with_capacity(5 + start.len() + end.len());
    suffix.push(SPAN_TAG);
    suffix.extend_from_slice(&(start.len() as u32).to_be_bytes());
    suffix.extend_from_slice(start);
    suffix.extend_from_slice(end);
    system_key(ZONE_NAME, &suffix)
}

/// A record's value.
pub fn encode_zone_config(config: &ZoneConfig) -> Vec<u8> {
    serde_json::to_vec(config).expect("a zone config always serializes")
}

/// A stored record back from its key and value.
pub fn decode_zone_record(key: &[u8], value: &[u8]) -> Result<ZoneRecord, PlacementError> {
    let corrupt = |why: &str| PlacementError::CorruptRecord(format!("{why} (key {key:x?})"));
    let suffix = key
        .strip_prefix(zone_records_start().as_slice())
        .ok_or_else(|| corrupt("not a zone record key"))?;
    let config: ZoneConfig =
        serde_json::from_slice(value).map_err(|e| corrupt(&format!("bad value: {e}")))?;
    match suffix.split_first() {
        Some((&DEFAULT_TAG, [])) => Ok(ZoneRecord::Default(config)),
        Some((&SPAN_TAG, rest)) if rest.len() >= 4 => {
            let (len, rest) = rest.split_at(4);
            let len = u32::from_be_bytes(len.try_into().expect("4 bytes")) as usize;
            if rest.len() < len {
                return Err(corrupt("start key longer than the record key"));
            }
            let (start, end) = rest.split_at(len);
            Ok(ZoneRecord::Span(SpanConfig {
                start: start.to_vec(),
                end: end.to_vec(),
                config,
            }))
        }
        _ => Err(corrupt("unknown record kind")),
    }
}

impl ZoneConfigs {
    /// The map the stored records describe (the result of a scan over
    /// [`zone_records_start`]..[`zone_records_end`]), over CockroachDB's
    /// defaults.
    pub fn from_records<'a>(
        records: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
    ) -> Result<ZoneConfigs, PlacementError> {
        Self::from_records_over(ZoneConfig::default_config(), records)
    }

    /// The same over `root`: what the default record leaves unset comes
    /// from `root` (a node's flags, say), the rest from CockroachDB's
    /// defaults. Spans are added as stored; they were checked to nest when
    /// they were set.
    pub fn from_records_over<'a>(
        root: ZoneConfig,
        records: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
    ) -> Result<ZoneConfigs, PlacementError> {
        let mut configs = ZoneConfigs::new();
        configs.set_default(root.clone());
        for (key, value) in records {
            match decode_zone_record(key, value)? {
                ZoneRecord::Default(config) => configs.set_default(config.inherit(&root)),
                ZoneRecord::Span(span) => configs.set(&span.start, &span.end, span.config)?,
            }
        }
        Ok(configs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn span_records_round_trip(start in proptest::collection::vec(any::<u8>(), 0..12),
                                   end in proptest::collection::vec(any::<u8>(), 0..12),
                                   replicas in 1u32..9) {
            let config = ZoneConfig { num_replicas: Some(replicas), ..ZoneConfig::default() };
            let key = span_zone_key(&start, &end);
            prop_assert!(key.as_slice() >= zone_records_start().as_slice());
            prop_assert!(key.as_slice() < zone_records_end().as_slice());
            let back = decode_zone_record(&key, &encode_zone_config(&config)).unwrap();
            prop_assert_eq!(back, ZoneRecord::Span(SpanConfig { start, end, config }));
        }
    }

    #[test]
    fn the_default_record_round_trips_and_sorts_inside_the_prefix() {
        let config = ZoneConfig {
            num_replicas: Some(5),
            ..ZoneConfig::default()
        };
        let key = default_zone_key();
        assert!(key.as_slice() < zone_records_end().as_slice());
        assert_eq!(
            decode_zone_record(&key, &encode_zone_config(&config)).unwrap(),
            ZoneRecord::Default(config)
        );
    }

    #[test]
    fn a_map_is_rebuilt_from_its_records() {
        let inner = ZoneConfig {
            num_replicas: Some(5),
            ..ZoneConfig::default()
        };
        let outer = ZoneConfig {
            gc_ttl_seconds: Some(60),
            ..ZoneConfig::default()
        };
        let records = [
            (span_zone_key(b"b", b"c"), encode_zone_config(&inner)),
            (span_zone_key(b"a", b"z"), encode_zone_config(&outer)),
        ];
        let configs =
            ZoneConfigs::from_records(records.iter().map(|(k, v)| (k.as_slice(), v.as_slice())))
                .unwrap();
        let effective = configs.effective(b"bb");
        assert_eq!(effective.num_replicas, 5);
        assert_eq!(effective.gc_ttl_seconds, 60);
        assert_eq!(configs.effective(b"d").num_replicas, 3);
    }

    #[test]
    fn the_default_record_overrides_only_what_it_sets_of_the_root() {
        let root = ZoneConfig {
            num_replicas: Some(1),
            gc_ttl_seconds: Some(5),
            ..ZoneConfig::default()
        };
        let stored = ZoneConfig {
            gc_ttl_seconds: Some(60),
            ..ZoneConfig::default()
        };
        let records = [(default_zone_key(), encode_zone_config(&stored))];
        let configs = ZoneConfigs::from_records_over(
            root,
            records.iter().map(|(k, v)| (k.as_slice(), v.as_slice())),
        )
        .unwrap();
        let effective = configs.effective(b"any");
        assert_eq!(effective.num_replicas, 1);
        assert_eq!(effective.gc_ttl_seconds, 60);
    }

    #[test]
    fn corrupt_records_are_errors_not_panics() {
        let good = encode_zone_config(&ZoneConfig::default());
        for key in [
            system_key(ZONE_NAME, &[]),
            system_key(ZONE_NAME, &[7]),
            system_key(ZONE_NAME, &[SPAN_TAG, 0, 0]),
            system_key(ZONE_NAME, &[SPAN_TAG, 0, 0, 0, 9, b'a']),
            b"elsewhere".to_vec(),
        ] {
            assert!(decode_zone_record(&key, &good).is_err(), "{key:?}");
        }
        assert!(decode_zone_record(&default_zone_key(), b"{not json").is_err());
    }
}
