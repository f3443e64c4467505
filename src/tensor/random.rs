//! The random number generator behind `rand`, `randn`, `randint`, `normal_`, `uniform_`
//! and dropout: one per thread, reproducible after `seed(n)`.
//!
//! It is xoshiro256++ seeded through SplitMix64, written out here rather than taken from a
//! crate so that a seed keeps producing the same numbers across dependency upgrades
//! (`rand` documents that its `StdRng` stream may change between versions). Like PyTorch,
//! the generator starts from a fixed default seed, so unseeded runs repeat too.

use std::cell::RefCell;

/// PyTorch's default seed (`torch.initial_seed()` of a fresh process).
pub const DEFAULT_SEED: u64 = 67_280_421_310_721;

/// xoshiro256++ (Blackman and Vigna): 256 bits of state, period 2^256 - 1.
#[derive(Debug, Clone)]
struct Xoshiro256 {
    state: [u64; 4],
}

impl Xoshiro256 {
    fn from_seed(seed: u64) -> Xoshiro256 {
        // SplitMix64 spreads any seed, even 0, over a state that is never all zero.
        let mut z = seed;
        let mut next = || {
            z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut x = z;
            x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            x ^ (x >> 31)
        };
        Xoshiro256 {
            state: [next(), next(), next(), next()],
        }
    }

    fn next_u64(&mut self) -> u64 {
        let s = &mut self.state;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in `[0, bound)` without modulo bias (Lemire's method).
    fn below(&mut self, bound: u64) -> u64 {
        loop {
            let product = u128::from(self.next_u64()) * u128::from(bound);
            let low = product as u64;
            if low >= bound.wrapping_neg() % bound {
                return (product >> 64) as u64;
            }
        }
    }
}

thread_local! {
    static RNG: RefCell<Xoshiro256> = RefCell::new(Xoshiro256::from_seed(DEFAULT_SEED));
}

fn with_rng<R>(f: impl FnOnce(&mut Xoshiro256) -> R) -> R {
    RNG.with(|rng| f(&mut rng.borrow_mut()))
}

/// `seed(n)`: every draw after this is determined by `n`.
pub fn seed(n: u64) {
    with_rng(|rng| *rng = Xoshiro256::from_seed(n));
}

/// The generator's state, to put back with [`set_state`]: work that must not change the
/// program's random stream (a net's build probes) runs between the two.
#[derive(Debug, Clone)]
pub struct RngState(Xoshiro256);

/// The current state of this thread's generator.
pub fn state() -> RngState {
    with_rng(|rng| RngState(rng.clone()))
}

/// Restores a state taken by [`state`]: the draws after it repeat.
pub fn set_state(state: RngState) {
    with_rng(|rng| *rng = state.0);
}

/// Fills `out` with draws uniform in `[low, high)`.
pub fn fill_uniform(out: &mut [f32], low: f64, high: f64) {
    with_rng(|rng| {
        for x in out {
            *x = (low + (high - low) * rng.next_f64()) as f32;
        }
    });
}

/// Fills `out` with normal draws of the given mean and standard deviation (Box–Muller in
/// f64, both values of each pair used).
pub fn fill_normal(out: &mut [f32], mean: f64, std: f64) {
    with_rng(|rng| {
        for pair in out.chunks_mut(2) {
            // 1 - u lies in (0, 1], so the logarithm is finite.
            let radius = (-2.0 * (1.0 - rng.next_f64()).ln()).sqrt();
            let angle = std::f64::consts::TAU * rng.next_f64();
            pair[0] = (mean + std * radius * angle.cos()) as f32;
            if let Some(second) = pair.get_mut(1) {
                *second = (mean + std * radius * angle.sin()) as f32;
            }
        }
    });
}

/// Fills `out` with integers uniform in `[low, high)` (as floats); `high > low` is the
/// caller's check.
pub fn fill_randint(out: &mut [f32], low: i64, high: i64) {
    let span = high.saturating_sub(low).max(1) as u64;
    with_rng(|rng| {
        for x in out {
            *x = (low + rng.below(span) as i64) as f32;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeding_repeats_the_stream() {
        let mut a = [0.0; 5];
        let mut b = [0.0; 5];
        seed(7);
        fill_normal(&mut a, 0.0, 1.0);
        seed(7);
        fill_normal(&mut b, 0.0, 1.0);
        assert_eq!(a, b);
    }

    #[test]
    fn draws_have_the_right_moments() {
        seed(1);
        let mut values = vec![0.0; 100_000];
        fill_normal(&mut values, 1.0, 2.0);
        let mean = values.iter().map(|&x| f64::from(x)).sum::<f64>() / values.len() as f64;
        let var = values
            .iter()
            .map(|&x| (f64::from(x) - mean).powi(2))
            .sum::<f64>()
            / values.len() as f64;
        assert!((mean - 1.0).abs() < 0.03, "mean {mean}");
        assert!((var - 4.0).abs() < 0.1, "var {var}");
        fill_randint(&mut values, -2, 3);
        assert!(
            values
                .iter()
                .all(|&x| (-2.0..3.0).contains(&x) && x.fract() == 0.0)
        );
        assert!(values.contains(&-2.0) && values.contains(&2.0));
    }
}
