//! The crate's one source of randomness: xoshiro256++ seeded through SplitMix64.
//!
//! Why not `rand` or libtorch's generator: every random choice (batch indices, prior samples,
//! initial centroids, augmentations) must come from the run's recorded seed and stay the same
//! across library upgrades and thread schedules. libtorch's default generator is process-global,
//! so two runs in one process (tests, multi-seed loops) would share it.

#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        let mut sm = seed;
        Rng { s: [splitmix64(&mut sm), splitmix64(&mut sm), splitmix64(&mut sm), splitmix64(&mut sm)] }
    }

    /// An independent stream for a named purpose, so that adding draws to one stage never shifts
    /// the random numbers of another.
    pub fn derive(seed: u64, stream: &str) -> Self {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325; // FNV-1a of the stream name
        for b in stream.bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        Rng::new(seed ^ h.rotate_left(17))
    }

    pub fn next_u64(&mut self) -> u64 {
        let result = (self.s[0].wrapping_add(self.s[3])).rotate_left(23).wrapping_add(self.s[0]);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in [0, n); n > 0. Lemire's multiply-shift, bias below 2^-64 * n.
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform(); // (0, 1]
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }

    /// `k` distinct indices from 0..n (partial Fisher-Yates over a scratch permutation).
    pub fn sample_without_replacement(&mut self, scratch: &mut Vec<i64>, n: usize, k: usize) -> Vec<i64> {
        if scratch.len() != n {
            *scratch = (0..n as i64).collect();
        }
        let k = k.min(n);
        for i in 0..k {
            let j = i + self.below(n - i);
            scratch.swap(i, j);
        }
        scratch[..k].to_vec()
    }

    /// Index drawn with probability proportional to `weights` (non-negative, positive sum).
    pub fn categorical(&mut self, cumulative: &[f64]) -> usize {
        let total = *cumulative.last().unwrap_or(&0.0);
        let u = self.uniform() * total;
        cumulative.partition_point(|&c| c <= u).min(cumulative.len().saturating_sub(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_streams_differ() {
        let a: Vec<u64> = (0..5).map({ let mut r = Rng::new(7); move |_| r.next_u64() }).collect();
        let b: Vec<u64> = (0..5).map({ let mut r = Rng::new(7); move |_| r.next_u64() }).collect();
        assert_eq!(a, b);
        let c = Rng::derive(7, "batches").next_u64();
        let d = Rng::derive(7, "prior").next_u64();
        assert_ne!(c, d);
    }

    #[test]
    fn uniform_and_normal_moments() {
        let mut r = Rng::new(1);
        let n = 200_000;
        let u: f64 = (0..n).map(|_| r.uniform()).sum::<f64>() / n as f64;
        assert!((u - 0.5).abs() < 0.01, "mean of uniform {u}");
        let xs: Vec<f64> = (0..n).map(|_| r.normal()).collect();
        let m = xs.iter().sum::<f64>() / n as f64;
        let v = xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n as f64;
        assert!(m.abs() < 0.01 && (v - 1.0).abs() < 0.02, "normal mean {m} var {v}");
    }

    #[test]
    fn categorical_follows_weights() {
        let mut r = Rng::new(3);
        let cumulative = [0.1, 0.1, 1.0]; // weights 0.1, 0, 0.9
        let mut counts = [0usize; 3];
        for _ in 0..100_000 {
            counts[r.categorical(&cumulative)] += 1;
        }
        assert_eq!(counts[1], 0);
        assert!((counts[0] as f64 / 1e5 - 0.1).abs() < 0.01, "{counts:?}");
    }
}
