//! Language-independent problem structures, the train/test split, and rendered problems.

use crate::rng::Rng;

use super::config::WorldConfig;

/// The language a problem or document is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    En,
    Zh,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Zh];

    /// "en" or "zh".
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh",
        }
    }

    /// The other language.
    pub fn other(self) -> Lang {
        match self {
            Lang::En => Lang::Zh,
            Lang::Zh => Lang::En,
        }
    }
}

/// One operation on the protagonist's quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// Gets `k` more (buys, finds, wins ...): `+k`.
    Gain(u32),
    /// Gives away, sells, loses or eats `k`: `-k`.
    Lose(u32),
    /// Gets `count` boxes of `each`: `+count*each`.
    Boxes { count: u32, each: u32 },
    /// Splits everything equally into `n` parts and keeps one: `/n`, always exact.
    Share(u32),
}

impl Op {
    /// The quantity after this operation, or `None` when it is not defined on the naturals
    /// (a result below zero, or a division with a remainder).
    pub fn apply(self, value: i64) -> Option<i64> {
        match self {
            Op::Gain(k) => Some(value + k as i64),
            Op::Lose(k) => (value >= k as i64).then(|| value - k as i64),
            Op::Boxes { count, each } => Some(value + count as i64 * each as i64),
            Op::Share(n) => (n > 0 && value % n as i64 == 0).then(|| value / n as i64),
        }
    }

    /// Index of the kind: 0 gain, 1 lose, 2 boxes, 3 share.
    pub fn kind(self) -> usize {
        match self {
            Op::Gain(_) => 0,
            Op::Lose(_) => 1,
            Op::Boxes { .. } => 2,
            Op::Share(_) => 3,
        }
    }
}

/// What a problem is, independent of language, names and items: a start value and operations.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Structure {
    pub start: u32,
    pub ops: Vec<Op>,
}

impl Structure {
    /// The quantity after every operation, starting with `start`. Panics if an operation is
    /// undefined (generated structures never are).
    pub fn trajectory(&self) -> Vec<i64> {
        let mut values = vec![self.start as i64];
        let mut value = self.start as i64;
        for op in &self.ops {
            value = op.apply(value).expect("structure stays on the naturals");
            values.push(value);
        }
        values
    }

    /// The final quantity.
    pub fn answer(&self) -> i64 {
        *self.trajectory().last().expect("trajectory has the start")
    }

    /// blake3 of a canonical, versioned byte encoding of the start value and operations.
    pub fn structure_hash(&self) -> [u8; 32] {
        let mut bytes = Vec::with_capacity(32 + 9 * self.ops.len());
        bytes.extend_from_slice(b"r1lab/world/structure/v1");
        bytes.extend_from_slice(&self.start.to_le_bytes());
        bytes.extend_from_slice(&(self.ops.len() as u32).to_le_bytes());
        for op in &self.ops {
            let (tag, a, b) = match *op {
                Op::Gain(k) => (1u8, k, 0),
                Op::Lose(k) => (2, k, 0),
                Op::Boxes { count, each } => (3, count, each),
                Op::Share(n) => (4, n, 0),
            };
            bytes.push(tag);
            bytes.extend_from_slice(&a.to_le_bytes());
            bytes.extend_from_slice(&b.to_le_bytes());
        }
        *blake3::hash(&bytes).as_bytes()
    }

    /// First 16 hex characters of the structure hash.
    pub fn id(&self) -> String {
        hex(&self.structure_hash()[..8])
    }

    /// Whether this structure belongs to the test side of the split.
    pub fn is_test(&self, test_share: f64) -> bool {
        is_test_hash(&self.structure_hash(), test_share)
    }
}

/// The split: the hash's first 8 bytes, read as a little-endian integer and mapped to `[0, 1)`,
/// fall below `test_share` exactly for test structures.
pub fn is_test_hash(hash: &[u8; 32], test_share: f64) -> bool {
    let x = u64::from_le_bytes(hash[..8].try_into().expect("8 bytes")) >> 11;
    (x as f64) * (1.0 / (1u64 << 53) as f64) < test_share
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A problem rendered in one language, with its correct step-by-step solution.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
pub struct Problem {
    /// First 16 hex characters of the structure hash: the same structure has the same id in
    /// every language and wording. Unique within a benchmark.
    pub id: String,
    pub lang: Lang,
    pub operations: usize,
    pub structure: Structure,
    pub question: String,
    pub answer: i64,
    /// One sentence per operation ("a + b = c" arithmetic), then "The answer is N." / "答案是 N。"
    pub solution: String,
}

/// The named difficulty levels of the benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Difficulty {
    /// 1-2 operations, numbers up to `easy_number_max`.
    Easy,
    /// 3-4 operations, numbers up to `hard_number_max`.
    Hard,
    /// 5 operations (never in training), numbers up to `ood_number_max`.
    Ood,
}

impl Difficulty {
    pub const ALL: [Difficulty; 3] = [Difficulty::Easy, Difficulty::Hard, Difficulty::Ood];

    pub fn name(self) -> &'static str {
        match self {
            Difficulty::Easy => "easy",
            Difficulty::Hard => "hard",
            Difficulty::Ood => "ood",
        }
    }

    /// Inclusive range of operation counts.
    pub fn operations(self) -> (usize, usize) {
        match self {
            Difficulty::Easy => (1, 2),
            Difficulty::Hard => (3, 4),
            Difficulty::Ood => (5, 5),
        }
    }

    /// Largest number stated in the question.
    pub fn number_max(self, config: &WorldConfig) -> u32 {
        match self {
            Difficulty::Easy => config.easy_number_max,
            Difficulty::Hard => config.hard_number_max,
            Difficulty::Ood => config.ood_number_max,
        }
    }

    /// Largest quantity held at any step.
    pub fn value_max(self, config: &WorldConfig) -> u32 {
        match self {
            Difficulty::Easy => config.easy_value_max,
            Difficulty::Hard => config.hard_value_max,
            Difficulty::Ood => config.ood_value_max,
        }
    }

    /// The difficulty whose numbers a training problem with `operations` operations uses.
    pub fn for_operations(operations: usize) -> Difficulty {
        match operations {
            0..=2 => Difficulty::Easy,
            3..=4 => Difficulty::Hard,
            _ => Difficulty::Ood,
        }
    }
}

/// Smallest quantity the protagonist ever holds in a correct solution (keeps plurals and the
/// stories sensible: nobody is left with nothing).
pub(crate) const MIN_VALUE: u32 = 2;
/// Largest number of parts in a share.
pub(crate) const MAX_PARTS: u32 = 10;

/// A random structure with `operations` operations whose stated numbers are at most
/// `number_max` and whose quantity stays in `MIN_VALUE..=value_max` at every step.
pub(crate) fn random_structure(
    rng: &mut Rng,
    operations: usize,
    number_max: u32,
    value_max: u32,
    config: &WorldConfig,
) -> Structure {
    let cap = value_max;
    let kind_weights = config.operation_weights.weights();
    let box_count_max = (number_max / 4).clamp(3, 9);
    let box_each_max = (number_max / 2).clamp(5, config.box_size_max);
    'attempt: loop {
        let start = rng.range_inclusive(MIN_VALUE as i64 + 1, number_max as i64) as u32;
        let mut value = start;
        let mut ops = Vec::with_capacity(operations);
        for _ in 0..operations {
            // Which kinds can follow from `value`?
            let gain_max = number_max.min(cap - value);
            let lose_max = number_max.min(value.saturating_sub(MIN_VALUE));
            let boxes_ok = value + 2 * 2 <= cap;
            let divisors: Vec<u32> = (2..=MAX_PARTS)
                .filter(|n| value.is_multiple_of(*n) && value / n >= MIN_VALUE)
                .collect();
            let possible = [gain_max >= 2, lose_max >= 2, boxes_ok, !divisors.is_empty()];
            let weights: Vec<f64> = (0..4)
                .map(|i| if possible[i] { kind_weights[i] } else { 0.0 })
                .collect();
            if !weights.iter().any(|w| *w > 0.0) {
                continue 'attempt;
            }
            let op = match rng.weighted_index(&weights) {
                0 => Op::Gain(rng.range_inclusive(2, gain_max as i64) as u32),
                1 => Op::Lose(rng.range_inclusive(2, lose_max as i64) as u32),
                2 => loop {
                    let count = rng.range_inclusive(2, box_count_max as i64) as u32;
                    let each = rng.range_inclusive(2, box_each_max as i64) as u32;
                    if value + count * each <= cap {
                        break Op::Boxes { count, each };
                    }
                },
                _ => Op::Share(*rng.choose(&divisors)),
            };
            value = op.apply(value as i64).expect("chosen to be possible") as u32;
            ops.push(op);
        }
        return Structure { start, ops };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_and_trajectory() {
        let s = Structure {
            start: 48,
            ops: vec![
                Op::Lose(24),
                Op::Boxes { count: 3, each: 5 },
                Op::Share(3),
                Op::Gain(7),
            ],
        };
        assert_eq!(s.trajectory(), vec![48, 24, 39, 13, 20]);
        assert_eq!(s.answer(), 20);
        assert_eq!(Op::Share(4).apply(10), None);
        assert_eq!(Op::Lose(11).apply(10), None);
    }

    #[test]
    fn structure_hash_is_pinned() {
        // The split depends on this encoding: changing it moves problems between train and test.
        let s = Structure {
            start: 48,
            ops: vec![Op::Lose(24), Op::Boxes { count: 3, each: 5 }],
        };
        assert_eq!(s.id(), PINNED_ID);
        let other = Structure {
            start: 48,
            ops: vec![Op::Boxes { count: 3, each: 5 }, Op::Lose(24)],
        };
        assert_ne!(s.structure_hash(), other.structure_hash());
    }
    const PINNED_ID: &str = "0737175ff4734629";

    #[test]
    fn split_share_is_roughly_test_share() {
        let config = WorldConfig::default();
        let mut rng = Rng::new(5);
        let n = 4000;
        let test = (0..n)
            .filter(|i| random_structure(&mut rng, 1 + i % 4, 200, 999, &config).is_test(0.25))
            .count();
        let share = test as f64 / n as f64;
        assert!((0.2..0.3).contains(&share), "test share {share}");
    }

    #[test]
    fn random_structures_stay_in_range() {
        let config = WorldConfig {
            max_number: 999,
            box_size_max: 25,
            ..WorldConfig::default()
        };
        let mut rng = Rng::new(9);
        let mut kinds = [0usize; 4];
        for i in 0..3000 {
            let (ops, max) = [(1, 20), (2, 20), (4, 200), (5, 100), (5, 999)][i % 5];
            let s = random_structure(&mut rng, ops, max, config.max_number, &config);
            assert_eq!(s.ops.len(), ops);
            assert!(s.start <= max);
            for v in s.trajectory() {
                assert!(
                    (MIN_VALUE as i64..=config.max_number as i64).contains(&v),
                    "{s:?}"
                );
            }
            for op in &s.ops {
                kinds[op.kind()] += 1;
                match *op {
                    Op::Gain(k) | Op::Lose(k) => assert!((2..=max).contains(&k)),
                    Op::Boxes { count, each } => assert!(count <= max && each <= max),
                    Op::Share(n) => assert!((2..=MAX_PARTS).contains(&n)),
                }
            }
        }
        assert!(kinds.iter().all(|k| *k > 300), "{kinds:?}");
    }
}
