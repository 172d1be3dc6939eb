//! Reasoning habits of sampled chains and whether they pay: the R1 paper's "aha moment" and its
//! longer thinking are habits (re-checking a step, redoing it, working it out at length) that RL
//! keeps because they raise the reward. This module finds the world's habits in completions and
//! measures, over windows of RL steps, how often each appears and how its completions score
//! against the others *of the same group* (same prompt, same step), so a habit that only shows
//! up on easy prompts is not credited with their ease.
//!
//! The habits are those the web corpus writes (see `world::render`):
//! - **worked**: a two-digit addition or subtraction worked out tens first, `38 + 40 = 78,
//!   78 + 5 = 83` (two consecutive equations, the first adding a round ten, the second the units
//!   to its result);
//! - **check**: a step checked by its inverse, "let me check" / "检查一下" / "验算";
//! - **repair**: a step called wrong and redone, "that is wrong" / "I made a mistake" / "算错";
//! - **merged**: two gains or losses in one equation, the quantity between them unwritten,
//!   `48 + 24 - 12 = 60` (the terse writer's step, `terse_share`): the habit of a *shorter*
//!   chain.
//!
//! Checks are also judged for what they *say*: a check follows a step, and its verdict is
//! "wrong" when a disagreement or a repair follows it ("not 43", "that is wrong", "不是", "错")
//! before the next equation. A check that calls a wrong step wrong *catches* it; one that calls
//! a right step wrong is a *false alarm*. A check pays only if it catches more than it alarms.
//!
//! Pure: the input is the traces' step, prompt, completion and accuracy.

use std::collections::BTreeMap;

use crate::world::{find_equation_spans, find_equations, split_tokens, Equation};

/// A habit of a chain of thought.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Habit {
    Worked,
    Check,
    Repair,
    Merged,
}

impl Habit {
    pub const ALL: [Habit; 4] = [Habit::Worked, Habit::Check, Habit::Repair, Habit::Merged];

    pub fn name(self) -> &'static str {
        match self {
            Habit::Worked => "worked",
            Habit::Check => "check",
            Habit::Repair => "repair",
            Habit::Merged => "merged",
        }
    }

    /// Whether `completion` shows the habit.
    pub fn in_text(self, completion: &str) -> bool {
        match self {
            Habit::Worked => has_worked_step(completion),
            Habit::Check => contains_any(completion, &CHECK_MARKERS),
            Habit::Repair => {
                contains_any(completion, &["that is wrong", "i made a mistake", "算错"])
            }
            Habit::Merged => has_merged_step(completion),
        }
    }
}

/// The phrases that open a check, in both languages (lower case).
const CHECK_MARKERS: [&str; 3] = ["let me check", "检查一下", "验算"];

/// Phrases after a check's equation that call the checked step wrong: a stated disagreement
/// ("not 43", "不是 43") or a repair ("that is wrong", "I made a mistake", "算错").
const WRONG_VERDICT_MARKERS: [&str; 5] = ["not ", "wrong", "mistake", "不是", "错"];

/// What the checks of a set of completions said about the steps they checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckVerdicts {
    /// Checks that follow a step (an equation before them) and write an equation of their own.
    pub checks: usize,
    /// Of those, checks of a step whose arithmetic is wrong.
    pub wrong_steps: usize,
    /// Checks that call a wrong step wrong.
    pub caught: usize,
    /// Checks that call a right step wrong.
    pub false_alarms: usize,
}

impl CheckVerdicts {
    /// Share of checked wrong steps the check called wrong; `None` without any.
    pub fn catch_rate(&self) -> Option<f64> {
        (self.wrong_steps > 0).then(|| self.caught as f64 / self.wrong_steps as f64)
    }

    /// Share of checked right steps the check called wrong; `None` without any.
    pub fn false_alarm_rate(&self) -> Option<f64> {
        let right = self.checks - self.wrong_steps;
        (right > 0).then(|| self.false_alarms as f64 / right as f64)
    }

    fn add(&mut self, other: CheckVerdicts) {
        self.checks += other.checks;
        self.wrong_steps += other.wrong_steps;
        self.caught += other.caught;
        self.false_alarms += other.false_alarms;
    }
}

/// The verdicts of every check in `completion`. A check is judged against the last equation
/// written before it (the step it checks); its verdict is read from its own equation up to the
/// equation after it, where a repair would write the step again, or up to the next check.
pub fn check_verdicts(completion: &str) -> CheckVerdicts {
    let lower = completion.to_lowercase();
    let equations = find_equation_spans(&lower);
    let mut starts: Vec<usize> = CHECK_MARKERS
        .iter()
        .flat_map(|m| lower.match_indices(m).map(|(i, _)| i))
        .collect();
    starts.sort_unstable();
    let mut verdicts = CheckVerdicts::default();
    for (k, &start) in starts.iter().enumerate() {
        let end = starts.get(k + 1).copied().unwrap_or(lower.len());
        // Equations before the check, then those from it on.
        let first_after = equations.partition_point(|(span, _)| span.start < start);
        let (Some((_, step)), Some((check, _))) = (
            first_after.checked_sub(1).map(|i| &equations[i]),
            equations
                .get(first_after)
                .filter(|(span, _)| span.start < end),
        ) else {
            continue;
        };
        // Chained equations share a number (`13 × 5 = 65 + 5 = 70`): the next equation is the
        // first that starts after the check's.
        let next = equations.partition_point(|(span, _)| span.start < check.end);
        let verdict_end = equations
            .get(next)
            .map_or(end, |(next, _)| next.start.min(end));
        // "没错" ("no mistake") says right, though it holds "错".
        let verdict_text = lower[check.end..verdict_end].replace("没错", "");
        let says_wrong = WRONG_VERDICT_MARKERS
            .iter()
            .any(|m| verdict_text.contains(m));
        let step_wrong = !step.is_correct();
        verdicts.checks += 1;
        verdicts.wrong_steps += usize::from(step_wrong);
        verdicts.caught += usize::from(step_wrong && says_wrong);
        verdicts.false_alarms += usize::from(!step_wrong && says_wrong);
    }
    verdicts
}

fn contains_any(text: &str, markers: &[&str]) -> bool {
    let lower = text.to_lowercase();
    markers.iter().any(|m| lower.contains(m))
}

/// Two consecutive equations `a ± T = m, m ± u = c` ([`Equation::is_tens_first_pair`]). Right or
/// wrong: working out is the habit, its arithmetic is what it buys.
fn has_worked_step(text: &str) -> bool {
    find_equations(text)
        .windows(2)
        .any(|w| Equation::is_tens_first_pair(&w[0], &w[1]))
}

/// `a ± b ± c = d`: two additions or subtractions in one equation, right or wrong, read from
/// the world's tokens as [`find_equations`] reads `a op b = c`.
fn has_merged_step(text: &str) -> bool {
    let number = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    let additive = |t: &str| t == "+" || t == "-";
    split_tokens(text).windows(7).any(|w| {
        number(w[0])
            && additive(w[1])
            && number(w[2])
            && additive(w[3])
            && number(w[4])
            && w[5] == "="
            && number(w[6])
    })
}

/// One scored completion of an RL run.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredCompletion<'a> {
    pub step: i64,
    pub prompt: &'a str,
    pub completion: &'a str,
    pub accuracy: f64,
}

/// A habit over one window of steps.
#[derive(Debug, Clone, PartialEq)]
pub struct HabitStats {
    pub habit: Habit,
    /// Share of the window's completions that show it.
    pub share: f64,
    /// Groups holding completions with and without it.
    pub contrast_groups: usize,
    /// Mean over those groups of (accuracy with − accuracy without); `None` without any.
    pub accuracy_gain: Option<f64>,
}

/// The habits of one window of RL steps.
#[derive(Debug, Clone, PartialEq)]
pub struct HabitWindow {
    pub first_step: i64,
    pub last_step: i64,
    pub completions: usize,
    pub accuracy: f64,
    /// Mean completion length in whitespace-separated words (a Chinese clause counts once).
    pub words: f64,
    pub habits: Vec<HabitStats>,
    /// What the window's checks said about the steps they checked.
    pub check_verdicts: CheckVerdicts,
}

/// Splits `completions` into windows of `window` steps (step 1..=window, ...) and measures each
/// habit in each window. Windows without completions are left out.
pub fn habit_windows(completions: &[ScoredCompletion], window: i64) -> Vec<HabitWindow> {
    assert!(window > 0, "window must be positive");
    let mut by_window: BTreeMap<i64, Vec<&ScoredCompletion>> = BTreeMap::new();
    for c in completions {
        by_window
            .entry((c.step - 1).max(0) / window)
            .or_default()
            .push(c);
    }
    by_window
        .into_iter()
        .map(|(index, members)| measure(index * window + 1, &members))
        .collect()
}

fn measure(first_step: i64, members: &[&ScoredCompletion]) -> HabitWindow {
    let n = members.len() as f64;
    let mean = |f: &dyn Fn(&ScoredCompletion) -> f64| members.iter().map(|c| f(c)).sum::<f64>() / n;
    let mut groups: BTreeMap<(i64, &str), Vec<&ScoredCompletion>> = BTreeMap::new();
    for c in members {
        groups.entry((c.step, c.prompt)).or_default().push(c);
    }
    let habits = Habit::ALL
        .iter()
        .map(|&habit| {
            let shows = |c: &ScoredCompletion| habit.in_text(c.completion);
            let mut gains = Vec::new();
            for group in groups.values() {
                let (with, without): (Vec<&&ScoredCompletion>, Vec<_>) =
                    group.iter().partition(|c| shows(c));
                if !with.is_empty() && !without.is_empty() {
                    let avg = |cs: &[&&ScoredCompletion]| {
                        cs.iter().map(|c| c.accuracy).sum::<f64>() / cs.len() as f64
                    };
                    gains.push(avg(&with) - avg(&without));
                }
            }
            HabitStats {
                habit,
                share: mean(&|c| f64::from(u8::from(shows(c)))),
                contrast_groups: gains.len(),
                accuracy_gain: (!gains.is_empty())
                    .then(|| gains.iter().sum::<f64>() / gains.len() as f64),
            }
        })
        .collect();
    let mut verdicts = CheckVerdicts::default();
    for c in members {
        verdicts.add(check_verdicts(c.completion));
    }
    HabitWindow {
        first_step,
        last_step: members.iter().map(|c| c.step).max().unwrap_or(first_step),
        completions: members.len(),
        accuracy: mean(&|c| c.accuracy),
        words: mean(&|c| c.completion.split_whitespace().count() as f64),
        habits,
        check_verdicts: verdicts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_worlds_habits_in_both_languages() {
        let worked = "38 + 40 = 78, 78 + 5 = 83. She has 38 + 45 = 83 apples.";
        assert!(Habit::Worked.in_text(worked));
        assert!(Habit::Worked.in_text("23 - 10 = 13，13 - 4 = 9。"));
        // Wrong arithmetic is still working out; a round ten alone, a change of operation or two
        // unrelated steps are not.
        assert!(Habit::Worked.in_text("38 + 40 = 78, 78 + 5 = 84."));
        assert!(!Habit::Worked.in_text("38 + 40 = 78. She has 78 - 5 = 73."));
        assert!(!Habit::Worked.in_text("38 + 40 = 78. She has 77 + 5 = 82."));
        assert!(!Habit::Worked.in_text("3 + 4 = 7, 7 + 5 = 12."));
        assert!(Habit::Check.in_text("Wait, let me check: 83 - 45 = 38."));
        assert!(Habit::Check.in_text("验算一下：83 - 45 = 38，没错。"));
        assert!(Habit::Repair.in_text("Wait, I made a mistake. It should be 7."));
        assert!(Habit::Repair.in_text("等等，这里算错了：3 + 4 = 7。"));
        assert!(Habit::Merged.in_text("Now she has 48 + 24 - 12 = 60 apples."));
        assert!(Habit::Merged.in_text("现在她有 48 + 24 - 12 = 61 个苹果。"));
        // Two steps written apart, or a product in the chain, are not merged.
        assert!(!Habit::Merged.in_text("48 + 24 = 72, 72 - 12 = 60."));
        assert!(!Habit::Merged.in_text("6 + 4 × 8 = 38."));
        for habit in Habit::ALL {
            assert!(!habit.in_text("She has 3 + 4 = 7 apples. The answer is 7."));
        }
    }

    #[test]
    fn checks_are_judged_by_what_they_say_about_the_step_they_check() {
        // A right step confirmed; a wrong step caught by a disagreeing check and repaired.
        let text = "43 + 6 = 49. Wait, let me check: 49 - 6 = 43. 49 + 5 = 55. \
                    Let me check this step: 55 - 5 = 50, not 49. It is wrong. \
                    Wait, that is wrong: 49 + 5 = 54.";
        assert_eq!(
            check_verdicts(text),
            CheckVerdicts {
                checks: 2,
                wrong_steps: 1,
                caught: 1,
                false_alarms: 0
            }
        );
        // A wrong inverse that calls a wrong step right misses it; a right step called wrong is
        // a false alarm, and its repair writes a wrong step that no check follows.
        let zh = "她留下 48 ÷ 3 = 15 个。验算一下：15 × 3 = 48，没错。现在有 43 + 6 = 49 个。\
                  验算一下：49 - 6 = 43，不是 43，错了。等等，我算错了，应该是 43 + 6 = 59。";
        let v = check_verdicts(zh);
        assert_eq!(
            v,
            CheckVerdicts {
                checks: 2,
                wrong_steps: 1,
                caught: 0,
                false_alarms: 1
            }
        );
        assert_eq!(
            (v.catch_rate(), v.false_alarm_rate()),
            (Some(0.0), Some(1.0))
        );
        // A check chained into another equation reads its verdict after the chain.
        let chained = "她留下 65 ÷ 5 = 13 张。等等，我检查一下：13 × 5 = 55 + 5 = 70，不是 65。";
        assert_eq!(check_verdicts(chained).false_alarms, 1);
        // A check with nothing before it, or with no equation of its own, is not judged.
        assert_eq!(check_verdicts("Let me check: 3 + 4 = 7.").checks, 0);
        assert_eq!(
            check_verdicts("3 + 4 = 7. Let me check. It is right.").checks,
            0
        );
        assert_eq!(CheckVerdicts::default().catch_rate(), None);
    }

    #[test]
    fn a_habit_is_judged_against_its_own_group() {
        let c = |step, prompt, completion, accuracy| ScoredCompletion {
            step,
            prompt,
            completion,
            accuracy,
        };
        let check = "3 + 4 = 7. Let me check: 7 - 4 = 3.";
        let plain = "3 + 4 = 7.";
        let completions = [
            // An easy prompt where nobody checks and all are right: no contrast.
            c(1, "easy", plain, 1.0),
            c(1, "easy", plain, 1.0),
            // A hard prompt where the checked completion is right and the plain one wrong.
            c(1, "hard", check, 1.0),
            c(1, "hard", plain, 0.0),
            // Step 2 is in the same window; its group has both and checking does not help.
            c(2, "hard", check, 0.0),
            c(2, "hard", plain, 0.0),
            // Step 3 opens the next window.
            c(3, "hard", plain, 1.0),
        ];
        let windows = habit_windows(&completions, 2);
        assert_eq!(windows.len(), 2);
        let first = &windows[0];
        assert_eq!(
            (first.first_step, first.last_step, first.completions),
            (1, 2, 6)
        );
        assert!((first.accuracy - 0.5).abs() < 1e-12);
        let stats = |w: &HabitWindow, h: Habit| w.habits.iter().find(|s| s.habit == h).cloned();
        let checked = stats(first, Habit::Check).unwrap();
        assert!((checked.share - 2.0 / 6.0).abs() < 1e-12);
        assert_eq!(checked.contrast_groups, 2);
        // Pooled, checking looks no better (0.5 vs 0.5); within groups it gains +1 and 0.
        assert_eq!(checked.accuracy_gain, Some(0.5));
        let repair = stats(first, Habit::Repair).unwrap();
        assert_eq!((repair.share, repair.accuracy_gain), (0.0, None));
        assert_eq!((windows[1].first_step, windows[1].completions), (3, 1));
    }
}
