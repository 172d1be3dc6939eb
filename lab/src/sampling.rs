//! Choosing the next token from a model's logits: greedy, temperature and top-p (nucleus)
//! sampling, independent of any model (like candle's `LogitsProcessor`).
//!
//! Each sample of a batch draws from its own stream, [`sample_seed`]`(seed, index)`, so one
//! sample can be regenerated alone and a batch's composition never changes another sample.

use crate::rng::Rng;

/// How much a top-p mass may fall short of `top_p` and still count as reaching it. Logits are
/// `f32` (about 1e-7 relative error), so a set whose true mass is exactly `top_p` can compute a
/// hair below it; without this slack it would take one token more than the smallest set.
pub const TOP_P_SLACK: f64 = 1e-6;

/// Temperature and top-p sampling of one token from logits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogitsProcessor {
    temperature: f64,
    top_p: f64,
}

impl LogitsProcessor {
    /// `temperature == 0` is greedy decoding; `top_p == 1` keeps every token.
    ///
    /// # Panics
    /// If `temperature` is negative or not finite, or `top_p` is not in `(0, 1]`.
    pub fn new(temperature: f64, top_p: f64) -> Self {
        assert!(
            temperature.is_finite() && temperature >= 0.0,
            "temperature must be finite and non-negative, got {temperature}"
        );
        assert!(
            top_p > 0.0 && top_p <= 1.0,
            "top_p must be in (0, 1], got {top_p}"
        );
        LogitsProcessor { temperature, top_p }
    }

    /// Argmax decoding.
    pub fn greedy() -> Self {
        LogitsProcessor::new(0.0, 1.0)
    }

    pub fn temperature(&self) -> f64 {
        self.temperature
    }

    pub fn top_p(&self) -> f64 {
        self.top_p
    }

    /// The tokens that can be drawn and their probabilities, highest first (ties: lower id
    /// first), summing to one.
    ///
    /// Greedy: the argmax alone. Otherwise `softmax(logits / temperature)` computed in `f64`,
    /// cut to the smallest set of highest-probability tokens whose mass reaches `top_p` (within
    /// [`TOP_P_SLACK`]; always at least one token, never one with probability zero, i.e. a
    /// `-inf` logit), then renormalised.
    ///
    /// # Panics
    /// If a logit is NaN or `+inf`, or every logit is `-inf`: the model has diverged.
    pub fn distribution(&self, logits: &[f32]) -> Vec<(u32, f64)> {
        if self.temperature == 0.0 {
            return vec![(argmax(logits), 1.0)];
        }
        let max = check_logits(logits);
        let mut probs: Vec<(u32, f64)> = logits
            .iter()
            .enumerate()
            .map(|(i, l)| (i as u32, ((*l as f64 - max) / self.temperature).exp()))
            .filter(|(_, p)| *p > 0.0)
            .collect();
        let total: f64 = probs.iter().map(|(_, p)| p).sum();
        for (_, p) in &mut probs {
            *p /= total;
        }
        // Highest probability first; equal probabilities keep the lower id first (the order a
        // stable sort of the id-ordered list gives, at an unstable sort's speed).
        probs.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        if self.top_p < 1.0 {
            let mut mass = 0.0;
            let mut keep = 0;
            for (_, p) in &probs {
                mass += p;
                keep += 1;
                if mass >= self.top_p - TOP_P_SLACK {
                    break;
                }
            }
            probs.truncate(keep);
            let kept: f64 = probs.iter().map(|(_, p)| p).sum();
            for (_, p) in &mut probs {
                *p /= kept;
            }
        }
        probs
    }

    /// One token drawn from [`LogitsProcessor::distribution`]. Greedy decoding draws nothing
    /// from `rng`; otherwise exactly one `f64` is drawn.
    ///
    /// # Panics
    /// As [`LogitsProcessor::distribution`].
    pub fn sample(&self, logits: &[f32], rng: &mut Rng) -> u32 {
        if self.temperature == 0.0 {
            return argmax(logits);
        }
        let candidates = self.distribution(logits);
        let weights: Vec<f64> = candidates.iter().map(|(_, p)| *p).collect();
        candidates[rng.weighted_index(&weights)].0
    }
}

/// The random stream of sample `sample_index` of a generation seeded with `seed`.
pub fn sample_seed(seed: u64, sample_index: u64) -> Rng {
    Rng::derive(seed, &format!("sample/{sample_index}"))
}

/// The index of the largest logit; the lowest index among equal ones.
///
/// # Panics
/// As [`LogitsProcessor::distribution`].
pub fn argmax(logits: &[f32]) -> u32 {
    let max = check_logits(logits);
    logits
        .iter()
        .position(|l| *l as f64 == max)
        .expect("the maximum is one of the logits") as u32
}

/// The largest logit, after checking that none is NaN or `+inf` and one is finite.
fn check_logits(logits: &[f32]) -> f64 {
    let mut max = f64::NEG_INFINITY;
    for (i, l) in logits.iter().enumerate() {
        assert!(
            !l.is_nan() && *l != f32::INFINITY,
            "logit {i} is {l}: logits must be finite or -inf"
        );
        max = max.max(*l as f64);
    }
    assert!(
        max.is_finite(),
        "no token has a finite logit (of {})",
        logits.len()
    );
    max
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Logits whose softmax is `probs`.
    fn logits_of(probs: &[f64]) -> Vec<f32> {
        probs.iter().map(|p| p.ln() as f32).collect()
    }

    fn counts(processor: LogitsProcessor, logits: &[f32], draws: usize, seed: u64) -> Vec<usize> {
        let mut rng = Rng::new(seed);
        let mut counts = vec![0; logits.len()];
        for _ in 0..draws {
            counts[processor.sample(logits, &mut rng) as usize] += 1;
        }
        counts
    }

    #[test]
    fn greedy_takes_the_argmax_lowest_index_on_ties() {
        let greedy = LogitsProcessor::greedy();
        let mut rng = Rng::new(0);
        assert_eq!(greedy.sample(&[0.1, 2.0, -1.0, 2.0], &mut rng), 1);
        assert_eq!(greedy.sample(&[f32::NEG_INFINITY, -5.0], &mut rng), 1);
        assert_eq!(greedy.sample(&[3.0], &mut rng), 0);
        assert_eq!(greedy.distribution(&[0.0, 1.0]), vec![(1, 1.0)]);
        // Greedy draws nothing from the stream.
        assert_eq!(rng.next_u64(), Rng::new(0).next_u64());
        // Sampling with a tiny top-p is greedy too.
        let nucleus = LogitsProcessor::new(1.0, 1e-3);
        assert_eq!(nucleus.sample(&[0.1, 2.0, -1.0, 2.0], &mut rng), 1);
    }

    #[test]
    fn same_seed_same_samples_and_streams_per_sample() {
        let processor = LogitsProcessor::new(0.6, 0.95);
        let logits: Vec<f32> = (0..50).map(|i| ((i * 37) % 11) as f32 * 0.3).collect();
        let run = |index: u64| -> Vec<u32> {
            let mut rng = sample_seed(42, index);
            (0..100)
                .map(|_| processor.sample(&logits, &mut rng))
                .collect()
        };
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
        assert_eq!(
            sample_seed(42, 3).next_u64(),
            Rng::derive(42, "sample/3").next_u64()
        );
    }

    #[test]
    fn top_p_keeps_exactly_the_smallest_set_reaching_p() {
        let logits = logits_of(&[0.5, 0.3, 0.15, 0.05]);
        let ids = |p: f64| -> Vec<u32> {
            let d = LogitsProcessor::new(1.0, p).distribution(&logits);
            let total: f64 = d.iter().map(|(_, q)| q).sum();
            assert!((total - 1.0).abs() < 1e-12);
            d.into_iter().map(|(i, _)| i).collect()
        };
        assert_eq!(ids(0.5), [0]);
        assert_eq!(ids(0.51), [0, 1]);
        assert_eq!(ids(0.8), [0, 1]);
        assert_eq!(ids(0.81), [0, 1, 2]);
        assert_eq!(ids(0.95), [0, 1, 2]);
        assert_eq!(ids(0.96), [0, 1, 2, 3]);
        assert_eq!(ids(1.0), [0, 1, 2, 3]);

        // Renormalised: 0.5 / 0.8 and 0.3 / 0.8.
        let d = LogitsProcessor::new(1.0, 0.8).distribution(&logits);
        assert!((d[0].1 - 0.625).abs() < 1e-6 && (d[1].1 - 0.375).abs() < 1e-6);

        // Empirically: p = 0.8 only ever samples the first two, p = 0.81 three.
        let c = counts(LogitsProcessor::new(1.0, 0.8), &logits, 20_000, 1);
        assert_eq!((c[2], c[3]), (0, 0));
        assert!((c[0] as f64 / 20_000.0 - 0.625).abs() < 0.02, "{c:?}");
        let c = counts(LogitsProcessor::new(1.0, 0.81), &logits, 20_000, 1);
        assert!(c[2] > 0 && c[3] == 0, "{c:?}");
        assert!((c[2] as f64 / 20_000.0 - 0.15 / 0.95).abs() < 0.02, "{c:?}");
    }

    #[test]
    fn ties_in_the_nucleus_go_to_the_lower_id() {
        let logits = logits_of(&[0.2, 0.4, 0.4]);
        let d = LogitsProcessor::new(1.0, 0.3).distribution(&logits);
        assert_eq!(d, vec![(1, 1.0)]);
    }

    #[test]
    fn temperature_sharpens_and_flattens() {
        let logits = [1.0f32, 0.0, 0.0, 0.0];
        let share =
            |t: f64| counts(LogitsProcessor::new(t, 1.0), &logits, 20_000, 7)[0] as f64 / 2e4;
        let expected = |t: f64| {
            let e = (1.0 / t).exp();
            e / (e + 3.0)
        };
        let (cold, warm, hot) = (share(0.5), share(1.0), share(2.0));
        assert!(cold > warm && warm > hot, "{cold} {warm} {hot}");
        for (t, got) in [(0.5, cold), (1.0, warm), (2.0, hot)] {
            assert!(
                (got - expected(t)).abs() < 0.02,
                "T={t}: {got} vs {}",
                expected(t)
            );
        }
    }

    #[test]
    fn never_samples_a_minus_infinity_logit() {
        let inf = f32::NEG_INFINITY;
        let logits = [0.0, inf, 0.0, inf, -30.0];
        for (t, p) in [(1.0, 1.0), (5.0, 1.0), (5.0, 0.999_999_999), (100.0, 0.5)] {
            let c = counts(LogitsProcessor::new(t, p), &logits, 5_000, 3);
            assert_eq!((c[1], c[3]), (0, 0), "T={t} p={p}: {c:?}");
        }
        let d = LogitsProcessor::new(1.0, 1.0).distribution(&logits);
        assert!(d.iter().all(|(i, _)| *i != 1 && *i != 3));
    }

    #[test]
    #[should_panic(expected = "logits must be finite or -inf")]
    fn nan_logits_are_refused() {
        LogitsProcessor::new(1.0, 1.0).sample(&[0.0, f32::NAN], &mut Rng::new(0));
    }

    #[test]
    #[should_panic(expected = "no token has a finite logit")]
    fn all_minus_infinity_is_refused() {
        argmax(&[f32::NEG_INFINITY; 3]);
    }

    #[test]
    #[should_panic(expected = "top_p must be in (0, 1]")]
    fn bad_top_p_is_refused() {
        LogitsProcessor::new(1.0, 0.0);
    }
}
