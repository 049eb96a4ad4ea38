//! A small seeded pseudo-random generator (SplitMix64) for fault schedules
//! and workload choices, and the seed a run uses.
//!
//! Owns: turning one `u64` seed into the same stream of numbers on every
//! machine and every run, and reading the `MERIDIAN_NEMESIS_SEED` override.
//! Does not own: what the numbers decide (the schedule, the workloads).
//! It is not cryptographic and is not meant to be; it is deterministic,
//! which `rand`'s thread generator is not.

use std::time::Duration;

/// The environment variable that replaces a test's seeds with one seed, to
/// replay a schedule that failed.
pub const SEED_ENV: &str = "MERIDIAN_NEMESIS_SEED";

/// SplitMix64 (Steele, Lea and Flood): one 64-bit word of state, good
/// enough statistics for choosing faults, trivially reproducible.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    /// A generator derived from this seed for a sub-stream (a client, a
    /// key), independent of how many numbers the parent drew.
    pub fn fork(seed: u64, stream: u64) -> Rng {
        let mut mix = Rng::new(seed ^ stream.wrapping_mul(0xA24B_AED4_963E_E407));
        Rng::new(mix.next_u64())
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `[0, n)`; `n` must be positive.
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "Rng::below(0)");
        // Lemire's multiply-shift: no modulo bias worth caring about here.
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A number in `[lo, hi]`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        assert!(lo <= hi, "Rng::range({lo}, {hi})");
        lo + self.below(hi - lo + 1)
    }

    /// A duration in `[lo, hi]`, at millisecond granularity.
    pub fn duration(&mut self, lo: Duration, hi: Duration) -> Duration {
        Duration::from_millis(self.range(lo.as_millis() as u64, hi.as_millis() as u64))
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// The seeds a test runs: `MERIDIAN_NEMESIS_SEED` alone when it is set (a
/// decimal or `0x` hexadecimal u64), else `defaults`.
///
/// Panics on a malformed variable rather than run other seeds than asked.
pub fn seeds(defaults: &[u64]) -> Vec<u64> {
    match std::env::var(SEED_ENV) {
        Ok(text) => vec![parse_seed(&text)
            .unwrap_or_else(|| panic!("{SEED_ENV}={text:?} is not a u64 (decimal or 0x hex)"))],
        Err(_) => defaults.to_vec(),
    }
}

fn parse_seed(text: &str) -> Option<u64> {
    let text = text.trim();
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_seed_gives_one_stream_and_another_seed_another() {
        let stream = |seed| {
            let mut rng = Rng::new(seed);
            (0..8).map(|_| rng.next_u64()).collect::<Vec<_>>()
        };
        let (a, b, c) = (stream(7), stream(7), stream(8));
        assert_eq!(a, b);
        assert_ne!(a, c);
        // SplitMix64's published first output for seed 0.
        assert_eq!(Rng::new(0).next_u64(), 0xE220_A839_7B1D_CDAF);
    }

    #[test]
    fn ranges_stay_inside_their_bounds_and_reach_both_ends() {
        let mut rng = Rng::new(42);
        let draws: Vec<u64> = (0..2000).map(|_| rng.range(3, 6)).collect();
        assert!(draws.iter().all(|&d| (3..=6).contains(&d)));
        assert!(draws.contains(&3) && draws.contains(&6));
        let d = rng.duration(Duration::from_millis(10), Duration::from_millis(20));
        assert!(d >= Duration::from_millis(10) && d <= Duration::from_millis(20));
    }

    #[test]
    fn forks_are_independent_of_each_other() {
        assert_ne!(Rng::fork(1, 0).next_u64(), Rng::fork(1, 1).next_u64());
        assert_eq!(Rng::fork(1, 5).next_u64(), Rng::fork(1, 5).next_u64());
    }

    #[test]
    fn seeds_parse_in_decimal_and_hex() {
        assert_eq!(parse_seed("42"), Some(42));
        assert_eq!(parse_seed(" 0x2a "), Some(42));
        assert_eq!(parse_seed("forty-two"), None);
    }
}
