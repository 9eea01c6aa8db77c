//! Access skew: the fraction of accesses that land on the most popular fraction of the keys (the
//! "access curve"), and samplers that draw key ranks with that skew. Owns the Zipf mathematics; the
//! workload spec picks the curve, the simulations read it to size the hot set.

use rand::Rng;
use serde::Serialize;

/// How accesses spread over keys ranked by popularity (rank 0 = most popular).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AccessCurve {
    /// Every key equally likely.
    Uniform,
    /// Zipf: `P(rank i) ∝ (i+1)^−theta` over `n` keys.
    Zipf {
        /// The Zipf constant.
        theta: f64,
        /// Number of keys.
        n: u64,
    },
    /// `hot_fraction` of the keys get `hot_access` of the accesses, uniformly within each part.
    HotSet {
        /// Fraction of keys that are hot.
        hot_fraction: f64,
        /// Fraction of accesses that go to them.
        hot_access: f64,
    },
    /// Measured from a trace: `points[i] = (key fraction, access fraction)`, increasing, ending (1, 1).
    Empirical {
        /// The measured curve.
        points: Vec<(f64, f64)>,
    },
}

/// Terms below which [`harmonic`] sums exactly (from a cached prefix table).
const EXACT_TERMS: usize = 10_000;

thread_local! {
    /// Prefix sums `Σ_{i≤j} i^−θ` for `j ≤ EXACT_TERMS`, per θ: the models evaluate the curve millions
    /// of times for the same θ, so each call must be O(1).
    static PREFIX: std::cell::RefCell<Vec<(u64, std::rc::Rc<Vec<f64>>)>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn prefix(theta: f64) -> std::rc::Rc<Vec<f64>> {
    PREFIX.with(|c| {
        let mut c = c.borrow_mut();
        if let Some((_, t)) = c.iter().find(|(b, _)| *b == theta.to_bits()) {
            return t.clone();
        }
        let mut t = Vec::with_capacity(EXACT_TERMS + 2);
        t.push(0.0);
        let mut acc = 0.0;
        for i in 1..=EXACT_TERMS + 1 {
            acc += (i as f64).powf(-theta);
            t.push(acc);
        }
        let t = std::rc::Rc::new(t);
        if c.len() > 16 {
            c.remove(0);
        }
        c.push((theta.to_bits(), t.clone()));
        t
    })
}

/// Generalised harmonic number `H(n, θ) = Σ_{i=1..n} i^−θ`. Exact up to 10 000 terms (cached
/// prefix sums; a fractional `n` interpolates the next term); above, the exact sum of the first
/// 10 000 terms plus the midpoint integral `∫_{10000.5}^{n+0.5} t^−θ dt`, whose relative error is
/// below 1e−9 for the θ of interest. O(1) per call, so it serves n = 10^12.
pub fn harmonic(n: f64, theta: f64) -> f64 {
    if n <= 0.0 {
        return 0.0;
    }
    let table = prefix(theta);
    if n <= EXACT_TERMS as f64 {
        let whole = n.floor() as usize;
        return table[whole] + (n - whole as f64) * (table[whole + 1] - table[whole]);
    }
    let (a, b) = (EXACT_TERMS as f64 + 0.5, n + 0.5);
    let integral = if (theta - 1.0).abs() < 1e-12 {
        (b / a).ln()
    } else {
        (b.powf(1.0 - theta) - a.powf(1.0 - theta)) / (1.0 - theta)
    };
    table[EXACT_TERMS] + integral
}

impl AccessCurve {
    /// Fraction of accesses that go to the most popular `x` fraction of the keys (`x` in [0, 1]).
    pub fn hit_fraction(&self, x: f64) -> f64 {
        let x = x.clamp(0.0, 1.0);
        match self {
            AccessCurve::Uniform => x,
            AccessCurve::Zipf { theta, n } => {
                let n = (*n).max(1) as f64;
                harmonic(x * n, *theta) / harmonic(n, *theta)
            }
            AccessCurve::HotSet {
                hot_fraction: h,
                hot_access: a,
            } => {
                if x <= *h {
                    if *h == 0.0 {
                        0.0
                    } else {
                        a * x / h
                    }
                } else if *h >= 1.0 {
                    1.0
                } else {
                    a + (1.0 - a) * (x - h) / (1.0 - h)
                }
            }
            AccessCurve::Empirical { points } => {
                let mut prev = (0.0, 0.0);
                for &(px, py) in points {
                    if x <= px {
                        let span = px - prev.0;
                        return if span <= 0.0 {
                            py
                        } else {
                            prev.1 + (py - prev.1) * (x - prev.0) / span
                        };
                    }
                    prev = (px, py);
                }
                1.0
            }
        }
    }

    /// The same curve over `n` keys (only Zipf depends on the key count).
    pub fn with_keys(&self, n: u64) -> AccessCurve {
        match self {
            AccessCurve::Zipf { theta, .. } => AccessCurve::Zipf { theta: *theta, n },
            other => other.clone(),
        }
    }
}

/// Draws key ranks in `0..n` following an [`AccessCurve`]. Zipf uses a cumulative table (exact,
/// O(log n) per draw), so it is meant for the scaled-down runs of `validate`, not for 10^9 keys.
#[derive(Clone, Debug)]
pub struct RankSampler {
    n: u64,
    kind: SamplerKind,
}

#[derive(Clone, Debug)]
enum SamplerKind {
    Uniform,
    Table(Vec<f64>),
    HotSet { hot: u64, hot_access: f64 },
}

/// Largest key count a Zipf or empirical sampler tabulates.
pub const MAX_TABLE_KEYS: u64 = 50_000_000;

impl RankSampler {
    /// A sampler over `n` ranks (`n ≥ 1`; an `n` above [`MAX_TABLE_KEYS`] for Zipf is capped there and
    /// ranks are spread over `n` by scaling, which keeps the head of the distribution exact enough).
    pub fn new(curve: &AccessCurve, n: u64) -> RankSampler {
        let n = n.max(1);
        let kind = match curve {
            AccessCurve::Uniform => SamplerKind::Uniform,
            AccessCurve::HotSet {
                hot_fraction,
                hot_access,
            } => SamplerKind::HotSet {
                hot: ((*hot_fraction * n as f64).round() as u64).clamp(0, n),
                hot_access: *hot_access,
            },
            AccessCurve::Zipf { theta, .. } => {
                let m = n.min(MAX_TABLE_KEYS) as usize;
                let mut cdf = Vec::with_capacity(m);
                let mut acc = 0.0;
                for i in 0..m {
                    acc += ((i + 1) as f64).powf(-theta);
                    cdf.push(acc);
                }
                SamplerKind::Table(cdf)
            }
            AccessCurve::Empirical { .. } => {
                let m = n.min(MAX_TABLE_KEYS) as usize;
                let cdf = (0..m)
                    .map(|i| curve.hit_fraction((i + 1) as f64 / m as f64))
                    .collect();
                SamplerKind::Table(cdf)
            }
        };
        RankSampler { n, kind }
    }

    /// One rank.
    pub fn sample(&self, rng: &mut impl Rng) -> u64 {
        match &self.kind {
            SamplerKind::Uniform => rng.gen_range(0..self.n),
            SamplerKind::HotSet { hot, hot_access } => {
                let (hot, n) = (*hot, self.n);
                if hot > 0 && (hot == n || rng.gen::<f64>() < *hot_access) {
                    rng.gen_range(0..hot)
                } else {
                    rng.gen_range(hot..n)
                }
            }
            SamplerKind::Table(cdf) => {
                let total = *cdf.last().unwrap_or(&1.0);
                let u = rng.gen::<f64>() * total;
                let i = cdf.partition_point(|&c| c < u).min(cdf.len() - 1) as u64;
                if cdf.len() as u64 == self.n {
                    i
                } else {
                    // Table capped: spread within the rank's share of n.
                    let scale = self.n as f64 / cdf.len() as f64;
                    ((i as f64 + rng.gen::<f64>()) * scale) as u64
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::SmallRng, SeedableRng};

    #[test]
    fn harmonic_matches_exact_sum_across_the_switch() {
        let exact: f64 = (1..=20_000u64).map(|i| (i as f64).powf(-0.99)).sum();
        assert!((harmonic(20_000.0, 0.99) - exact).abs() / exact < 1e-9);
        let exact1: f64 = (1..=50_000u64).map(|i| 1.0 / i as f64).sum();
        assert!((harmonic(50_000.0, 1.0) - exact1).abs() / exact1 < 1e-9);
    }

    #[test]
    fn curves_are_monotone_and_end_at_one() {
        let curves = [
            AccessCurve::Uniform,
            AccessCurve::Zipf {
                theta: 0.99,
                n: 1_000_000_000,
            },
            AccessCurve::HotSet {
                hot_fraction: 0.2,
                hot_access: 0.8,
            },
        ];
        for c in &curves {
            let mut prev = 0.0;
            for i in 0..=100 {
                let y = c.hit_fraction(i as f64 / 100.0);
                assert!(y + 1e-12 >= prev, "{c:?} at {i}");
                prev = y;
            }
            assert!((c.hit_fraction(1.0) - 1.0).abs() < 1e-9);
        }
        let hs = &curves[2];
        assert!((hs.hit_fraction(0.2) - 0.8).abs() < 1e-12);
        // Zipf 0.99 over a billion keys: the top 1 % draws well over half of the accesses.
        assert!(curves[1].hit_fraction(0.01) > 0.6);
    }

    #[test]
    fn zipf_sampler_matches_curve() {
        let curve = AccessCurve::Zipf {
            theta: 0.99,
            n: 10_000,
        };
        let s = RankSampler::new(&curve, 10_000);
        let mut rng = SmallRng::seed_from_u64(7);
        let draws = 200_000;
        let top = (0..draws).filter(|_| s.sample(&mut rng) < 100).count();
        let measured = top as f64 / draws as f64;
        let predicted = curve.hit_fraction(0.01);
        assert!(
            (measured - predicted).abs() < 0.01,
            "{measured} vs {predicted}"
        );
    }

    #[test]
    fn hotset_sampler_matches_curve() {
        let curve = AccessCurve::HotSet {
            hot_fraction: 0.1,
            hot_access: 0.9,
        };
        let s = RankSampler::new(&curve, 1000);
        let mut rng = SmallRng::seed_from_u64(1);
        let hot = (0..100_000).filter(|_| s.sample(&mut rng) < 100).count();
        assert!((hot as f64 / 100_000.0 - 0.9).abs() < 0.01);
    }
}
