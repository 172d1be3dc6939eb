//! How many single arithmetic facts a model knows: `lab facts`.
//!
//! With one token per number, every `a + b = c` of the world is a fact of its own, and a chain of
//! thought is only as right as the facts its steps need. A model's pass@1 mixes that with
//! everything else a chain can get wrong (reading the problem, the order of steps, the habits it
//! samples), so this probe asks for the facts alone: each fact is the end of a step sentence as
//! the corpus writes it, `Tom had 38 apples. Now he has 38 + 45 =` (and its Chinese twin), and the
//! model's greedy next number is its answer.
//!
//! Pure: the facts, their prompts and the scoring; the caller decodes.

use crate::rng::Rng;
use crate::world::Lang;

/// One addition or subtraction with its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fact {
    pub a: i64,
    pub op: char,
    pub b: i64,
    pub c: i64,
    pub lang: Lang,
}

/// Which facts to ask: `count` of them, drawn from `seed`, every number in `0..=max_value` and
/// the second operand in `2..=max_operand` (the world's defaults: quantities of hard problems up
/// to 120, stated numbers up to 40), half additions, half subtractions, alternating languages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FactSet {
    pub count: usize,
    pub seed: u64,
    pub max_value: i64,
    pub max_operand: i64,
}

impl Default for FactSet {
    fn default() -> Self {
        FactSet {
            count: 400,
            seed: 0,
            max_value: 120,
            max_operand: 40,
        }
    }
}

impl FactSet {
    /// The facts, the same for the same set. `None` when the ranges leave no fact.
    pub fn facts(&self) -> Option<Vec<Fact>> {
        if self.max_operand < 2 || self.max_value < self.max_operand + 1 {
            return None;
        }
        let mut rng = Rng::new(self.seed);
        let facts = (0..self.count)
            .map(|i| {
                let lang = if i % 2 == 0 { Lang::En } else { Lang::Zh };
                let b = 2 + rng.below((self.max_operand - 1) as u64) as i64;
                // The larger of the two numbers is drawn so the result stays in range.
                let larger = b + rng.below((self.max_value - b + 1) as u64) as i64;
                if (i / 2) % 2 == 0 {
                    Fact {
                        a: larger - b,
                        op: '+',
                        b,
                        c: larger,
                        lang,
                    }
                } else {
                    Fact {
                        a: larger,
                        op: '-',
                        b,
                        c: larger - b,
                        lang,
                    }
                }
            })
            .collect();
        Some(facts)
    }
}

/// The prompt that asks `fact`: a step sentence of the corpus cut after its `=`.
pub fn prompt(fact: &Fact) -> String {
    let Fact { a, op, b, .. } = *fact;
    match fact.lang {
        Lang::En => format!("Tom had {a} apples. Now he has {a} {op} {b} ="),
        Lang::Zh => format!("小明有 {a} 个苹果。现在他有 {a} {op} {b} ="),
    }
}

/// The number a completion of [`prompt`] states first, if it starts with one.
pub fn answer(completion: &str) -> Option<i64> {
    let first = completion.split_whitespace().next()?;
    first.parse().ok()
}

/// Right answers out of asked facts, in one slice of the set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub right: usize,
    pub asked: usize,
}

impl Tally {
    fn add(&mut self, right: bool) {
        self.right += right as usize;
        self.asked += 1;
    }

    /// The share right, in %, with its standard error (binomial), `None` when nothing was asked.
    pub fn percent(&self) -> Option<(f64, f64)> {
        (self.asked > 0).then(|| {
            let p = self.right as f64 / self.asked as f64;
            (
                100.0 * p,
                100.0 * (p * (1.0 - p) / self.asked as f64).sqrt(),
            )
        })
    }
}

/// A model's answers, sliced: all facts, by operation, by the second operand's digits, by language.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FactScore {
    pub all: Tally,
    pub addition: Tally,
    pub subtraction: Tally,
    pub one_digit: Tally,
    pub two_digit: Tally,
    pub en: Tally,
    pub zh: Tally,
}

impl FactScore {
    /// Scores `answers[i]` against `facts[i]`.
    pub fn new(facts: &[Fact], answers: &[Option<i64>]) -> FactScore {
        assert_eq!(facts.len(), answers.len(), "one answer per fact");
        let mut score = FactScore::default();
        for (fact, answer) in facts.iter().zip(answers) {
            let right = *answer == Some(fact.c);
            score.all.add(right);
            match fact.op {
                '+' => score.addition.add(right),
                _ => score.subtraction.add(right),
            }
            if fact.b < 10 {
                score.one_digit.add(right);
            } else {
                score.two_digit.add(right);
            }
            match fact.lang {
                Lang::En => score.en.add(right),
                Lang::Zh => score.zh.add(right),
            }
        }
        score
    }

    /// The slices in table order, with their column names.
    pub fn columns(&self) -> [(&'static str, Tally); 7] {
        [
            ("all", self.all),
            ("a + b", self.addition),
            ("a - b", self.subtraction),
            ("b < 10", self.one_digit),
            ("b ≥ 10", self.two_digit),
            ("en", self.en),
            ("zh", self.zh),
        ]
    }
}

/// A table of models' scores: one row per `(name, score)`, each cell `right % ± se`.
pub fn render(rows: &[(String, FactScore)]) -> String {
    let headers: Vec<String> = std::iter::once("model")
        .chain(FactScore::default().columns().map(|(name, _)| name))
        .map(String::from)
        .collect();
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|(name, score)| {
            std::iter::once(name.clone())
                .chain(score.columns().map(|(_, tally)| match tally.percent() {
                    Some((p, se)) => format!("{p:.1} ± {se:.1}"),
                    None => "-".into(),
                }))
                .collect()
        })
        .collect();
    let mut out = crate::table::render(&headers, &cells, 60);
    out.push_str(
        "\n% of facts the model completes right (greedy, one token), ± the binomial standard \
         error; b is the second operand\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fact_set_is_reproducible_in_range_and_balanced() {
        let set = FactSet::default();
        let facts = set.facts().unwrap();
        assert_eq!(facts, set.facts().unwrap());
        assert_eq!(facts.len(), 400);
        for f in &facts {
            assert!(
                (0..=120).contains(&f.a) && (0..=120).contains(&f.c),
                "{f:?}"
            );
            assert!((2..=40).contains(&f.b), "{f:?}");
            let value = if f.op == '+' { f.a + f.b } else { f.a - f.b };
            assert_eq!(value, f.c, "{f:?}");
        }
        let additions = facts.iter().filter(|f| f.op == '+').count();
        let chinese = facts.iter().filter(|f| f.lang == Lang::Zh).count();
        assert_eq!((additions, chinese), (200, 200));
        let other = FactSet { seed: 1, ..set }.facts().unwrap();
        assert_ne!(facts, other);
        assert!(FactSet {
            max_operand: 1,
            ..set
        }
        .facts()
        .is_none());
        assert!(FactSet {
            max_value: 10,
            max_operand: 10,
            ..set
        }
        .facts()
        .is_none());
    }

    #[test]
    fn prompts_end_at_the_equals_sign_and_answers_are_the_first_number() {
        let fact = Fact {
            a: 38,
            op: '+',
            b: 45,
            c: 83,
            lang: Lang::En,
        };
        assert_eq!(prompt(&fact), "Tom had 38 apples. Now he has 38 + 45 =");
        let zh = Fact {
            lang: Lang::Zh,
            ..fact
        };
        assert_eq!(prompt(&zh), "小明有 38 个苹果。现在他有 38 + 45 =");
        assert_eq!(answer(" 83 apples."), Some(83));
        assert_eq!(answer("apples"), None);
        assert_eq!(answer(""), None);
    }

    #[test]
    fn scores_slice_the_facts_and_count_only_exact_answers() {
        let facts = [
            Fact {
                a: 38,
                op: '+',
                b: 45,
                c: 83,
                lang: Lang::En,
            },
            Fact {
                a: 20,
                op: '-',
                b: 3,
                c: 17,
                lang: Lang::Zh,
            },
            Fact {
                a: 9,
                op: '+',
                b: 2,
                c: 11,
                lang: Lang::En,
            },
        ];
        let score = FactScore::new(&facts, &[Some(83), Some(16), None]);
        assert_eq!(score.all, Tally { right: 1, asked: 3 });
        assert_eq!(score.addition, Tally { right: 1, asked: 2 });
        assert_eq!(score.subtraction, Tally { right: 0, asked: 1 });
        assert_eq!(score.one_digit, Tally { right: 0, asked: 2 });
        assert_eq!(score.two_digit, Tally { right: 1, asked: 1 });
        assert_eq!(score.en, Tally { right: 1, asked: 2 });
        assert_eq!(score.zh, Tally { right: 0, asked: 1 });
        let (p, se) = score.all.percent().unwrap();
        assert!((p - 100.0 / 3.0).abs() < 1e-9);
        assert!((se - 100.0 * (2.0f64 / 27.0).sqrt()).abs() < 1e-9);
        assert_eq!(Tally::default().percent(), None);
        let table = render(&[("base".into(), score)]);
        assert!(table.contains("33.3 ± 27.2"), "{table}");
    }
}
