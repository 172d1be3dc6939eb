//! What both renderers share: the cast and items, the wording plan drawn for a problem, and the
//! numbers each solution step writes (correct, or with one injected error).

use crate::rng::Rng;

use super::equations::{find_equations, Equation};
use super::problem::{Lang, Op, Structure};
use super::{render_en, render_zh};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gender {
    Female,
    Male,
}

/// An item type with its words in both languages.
#[derive(Debug)]
pub(crate) struct Item {
    /// English plural ("apples").
    pub en: &'static str,
    /// English container, singular and plural ("box", "boxes").
    pub en_box: &'static str,
    pub en_boxes: &'static str,
    /// Chinese noun, its measure word and its container ("苹果", "个", "盒").
    pub zh: &'static str,
    pub zh_measure: &'static str,
    pub zh_box: &'static str,
    /// Whether "ate k of them" makes sense.
    pub edible: bool,
}

const fn item(
    en: &'static str,
    en_box: &'static str,
    en_boxes: &'static str,
    zh: &'static str,
    zh_measure: &'static str,
    zh_box: &'static str,
    edible: bool,
) -> Item {
    Item {
        en,
        en_box,
        en_boxes,
        zh,
        zh_measure,
        zh_box,
        edible,
    }
}

pub(crate) const ITEMS: [Item; 14] = [
    item("apples", "box", "boxes", "苹果", "个", "盒", true),
    item("pencils", "box", "boxes", "铅笔", "支", "盒", false),
    item("stickers", "pack", "packs", "贴纸", "张", "包", false),
    item("marbles", "bag", "bags", "弹珠", "颗", "袋", false),
    item("cookies", "box", "boxes", "饼干", "块", "盒", true),
    item("cards", "pack", "packs", "卡片", "张", "包", false),
    item("balloons", "bag", "bags", "气球", "个", "袋", false),
    item("eggs", "box", "boxes", "鸡蛋", "个", "盒", true),
    item("candies", "bag", "bags", "糖果", "颗", "袋", true),
    item("books", "box", "boxes", "书", "本", "箱", false),
    item("oranges", "bag", "bags", "橙子", "个", "袋", true),
    item("clips", "box", "boxes", "回形针", "个", "盒", false),
    item("tennis balls", "can", "cans", "网球", "个", "筒", false),
    item("flowers", "bunch", "bunches", "花", "朵", "束", false),
];

pub(crate) const NAMES_EN_FEMALE: [&str; 8] = [
    "Natalia", "Lily", "Mia", "Emma", "Anna", "Sara", "Grace", "Olivia",
];
pub(crate) const NAMES_EN_MALE: [&str; 8] =
    ["Tom", "Sam", "Ben", "Jack", "Leo", "Max", "David", "Omar"];
pub(crate) const NAMES_ZH_FEMALE: [&str; 6] = ["小红", "小丽", "小芳", "小雪", "李娜", "王芳"];
pub(crate) const NAMES_ZH_MALE: [&str; 6] = ["小明", "小刚", "小军", "小亮", "李华", "张伟"];

/// Wording choices for one operation. Variant numbers are raw draws; each renderer reduces them
/// modulo its own number of templates, so one plan renders in either language.
#[derive(Debug, Clone)]
pub(crate) struct StepPlan {
    pub connective: u32,
    pub question_variant: u32,
    pub solution_variant: u32,
    /// For a share into `n >= 3` parts: told as "shares with n-1 friends".
    pub friends: bool,
}

/// Every wording choice of one problem: who, what, and which template for each sentence.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub gender: Gender,
    pub name_en: &'static str,
    pub name_zh: &'static str,
    pub item: &'static Item,
    pub start_variant: u32,
    pub question_variant: u32,
    pub steps: Vec<StepPlan>,
}

impl Plan {
    pub fn random(rng: &mut Rng, structure: &Structure) -> Plan {
        let gender = if rng.chance(0.5) {
            Gender::Female
        } else {
            Gender::Male
        };
        let (name_en, name_zh) = match gender {
            Gender::Female => (*rng.choose(&NAMES_EN_FEMALE), *rng.choose(&NAMES_ZH_FEMALE)),
            Gender::Male => (*rng.choose(&NAMES_EN_MALE), *rng.choose(&NAMES_ZH_MALE)),
        };
        let item = rng.choose(&ITEMS);
        let mut draw = || rng.below(1 << 16) as u32;
        let start_variant = draw();
        let question_variant = draw();
        let steps = structure
            .ops
            .iter()
            .map(|op| StepPlan {
                connective: draw(),
                question_variant: draw(),
                solution_variant: draw(),
                friends: matches!(op, Op::Share(n) if *n >= 3) && draw() % 3 == 0,
            })
            .collect();
        Plan {
            gender,
            name_en,
            name_zh,
            item,
            start_variant,
            question_variant,
            steps,
        }
    }
}

/// The numbers one solution step writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StepTrace {
    pub op: Op,
    pub before: i64,
    /// `count × each` for boxes (0 otherwise).
    pub product: i64,
    pub after: i64,
}

impl StepTrace {
    /// The equation that produces the new quantity.
    pub fn result_equation(&self) -> Equation {
        match self.op {
            Op::Gain(k) => Equation::new(self.before, '+', k as i64, self.after),
            Op::Lose(k) => Equation::new(self.before, '-', k as i64, self.after),
            Op::Boxes { .. } => Equation::new(self.before, '+', self.product, self.after),
            Op::Share(n) => Equation::new(self.before, '÷', n as i64, self.after),
        }
    }

    /// The inverse equation that checks the step ("23 - 20 = 3" after "3 + 20 = 23").
    pub fn check_equation(&self) -> Equation {
        match self.op {
            Op::Gain(k) => Equation::new(self.after, '-', k as i64, self.before),
            Op::Lose(k) => Equation::new(self.after, '+', k as i64, self.before),
            Op::Boxes { .. } => Equation::new(self.after, '-', self.product, self.before),
            Op::Share(n) => Equation::new(self.after, '×', n as i64, self.before),
        }
    }
}

/// One arithmetic error: at `step`, the box product (`in_product`) or the step's result is
/// written as `value`; later steps compute correctly from what was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fault {
    pub step: usize,
    pub in_product: bool,
    pub value: i64,
}

/// The numbers every step writes, with an optional fault carried forward. `None` when the fault
/// makes a later step impossible (a value outside `0..=max_number`, or an inexact division).
pub(crate) fn traces(
    structure: &Structure,
    fault: Option<Fault>,
    max_number: u32,
) -> Option<Vec<StepTrace>> {
    let in_range = |v: i64| (0..=max_number as i64).contains(&v);
    let mut value = structure.start as i64;
    let mut out = Vec::with_capacity(structure.ops.len());
    for (i, op) in structure.ops.iter().enumerate() {
        let here = fault.filter(|f| f.step == i);
        let product = match *op {
            Op::Boxes { count, each } => match here {
                Some(f) if f.in_product => f.value,
                _ => count as i64 * each as i64,
            },
            _ => 0,
        };
        let after = match (here, *op) {
            (Some(f), _) if !f.in_product => f.value,
            (_, Op::Boxes { .. }) => value + product,
            (_, op) => op.apply(value)?,
        };
        if !in_range(product) || !in_range(after) {
            return None;
        }
        out.push(StepTrace {
            op: *op,
            before: value,
            product,
            after,
        });
        value = after;
    }
    Some(out)
}

/// Looks for one error that keeps every later step possible and changes the final answer:
/// off by a small amount (or by a multiple of the later share divisors, so divisions stay
/// exact). `None` if no step admits one.
pub(crate) fn find_fault(rng: &mut Rng, structure: &Structure, max_number: u32) -> Option<Fault> {
    let correct = traces(structure, None, max_number)?;
    let mut steps: Vec<usize> = (0..structure.ops.len()).collect();
    rng.shuffle(&mut steps);
    for step in steps {
        let later: i64 = structure.ops[step + 1..]
            .iter()
            .map(|op| match op {
                Op::Share(n) => *n as i64,
                _ => 1,
            })
            .product();
        let mut targets = vec![false];
        if matches!(structure.ops[step], Op::Boxes { .. }) {
            targets.push(true);
        }
        rng.shuffle(&mut targets);
        for in_product in targets {
            let base = if in_product {
                correct[step].product
            } else {
                correct[step].after
            };
            let mut deltas: Vec<i64> = Vec::new();
            for d in [1, 2, 3, 5, 10] {
                for m in [1, later] {
                    if m <= max_number as i64 {
                        deltas.push(d * m);
                        deltas.push(-d * m);
                    }
                }
            }
            deltas.sort_unstable();
            deltas.dedup();
            rng.shuffle(&mut deltas);
            for delta in deltas {
                let fault = Fault {
                    step,
                    in_product,
                    value: base + delta,
                };
                if let Some(t) = traces(structure, Some(fault), max_number) {
                    if t.last().map(|s| s.after) != correct.last().map(|s| s.after) {
                        return Some(fault);
                    }
                }
            }
        }
    }
    None
}

/// A wrong result for one step that a self-repairing solution writes and then corrects.
pub(crate) fn wrong_result(rng: &mut Rng, correct: i64, max_number: u32) -> i64 {
    loop {
        let delta = *rng.choose(&[1i64, 2, 3, 5, 10]) * if rng.chance(0.5) { 1 } else { -1 };
        let wrong = correct + delta;
        if (0..=max_number as i64).contains(&wrong) {
            return wrong;
        }
    }
}

/// A sentence and the language it is written in.
pub(crate) type Sentence = (Lang, String);

/// Joins sentences: Chinese follows Chinese directly, anything next to English gets a space.
pub(crate) fn join(sentences: &[Sentence]) -> String {
    let mut out = String::new();
    for (i, (lang, text)) in sentences.iter().enumerate() {
        if i > 0 && !(sentences[i - 1].0 == Lang::Zh && *lang == Lang::Zh) {
            out.push(' ');
        }
        out.push_str(text);
    }
    out
}

pub(crate) fn question(lang: Lang, plan: &Plan, structure: &Structure) -> String {
    match lang {
        Lang::En => render_en::question(plan, structure),
        Lang::Zh => render_zh::question(plan, structure),
    }
}

pub(crate) fn step(lang: Lang, plan: &Plan, index: usize, trace: &StepTrace) -> String {
    match lang {
        Lang::En => render_en::step(plan, &plan.steps[index], trace),
        Lang::Zh => render_zh::step(plan, &plan.steps[index], trace),
    }
}

pub(crate) fn answer_sentence(lang: Lang, answer: i64) -> String {
    match lang {
        Lang::En => format!("The answer is {answer}."),
        Lang::Zh => format!("答案是 {answer}。"),
    }
}

pub(crate) fn check_sentence(lang: Lang, variant: u32, eq: Equation) -> String {
    match (lang, variant % 2) {
        (Lang::En, 0) => format!("Wait, let me check: {eq}."),
        (Lang::En, _) => format!("Let me check this step: {eq}. It is right."),
        (Lang::Zh, 0) => format!("等等，我检查一下：{eq}。"),
        (Lang::Zh, _) => format!("验算一下：{eq}，没错。"),
    }
}

/// A check of a wrong step: its inverse `eq`, computed correctly, disagrees with `expected`,
/// the number the step started from. It opens as [`check_sentence`] does.
pub(crate) fn failed_check_sentence(
    lang: Lang,
    variant: u32,
    eq: Equation,
    expected: i64,
) -> String {
    match (lang, variant % 2) {
        (Lang::En, 0) => format!("Wait, let me check: {eq}, not {expected}."),
        (Lang::En, _) => format!("Let me check this step: {eq}, not {expected}. It is wrong."),
        (Lang::Zh, 0) => format!("等等，我检查一下：{eq}，不是 {expected}。"),
        (Lang::Zh, _) => format!("验算一下：{eq}，不是 {expected}，错了。"),
    }
}

/// A wrong result for `trace` whose check, the inverse equation computed correctly, stays in
/// `0..=max_number` (so it can be written) and so disagrees with the step's starting number;
/// with that check.
pub(crate) fn wrong_checkable_result(
    rng: &mut Rng,
    trace: &StepTrace,
    max_number: u32,
) -> (i64, Equation) {
    let checked = |wrong: i64| failed_check(trace, wrong, max_number).map(|check| (wrong, check));
    // The draws keep the errors as varied as `wrong_result`'s; should they all miss, the nearest
    // wrong result with a check in range is taken (a step one lower always has one unless it
    // starts from 0, and then one higher does).
    (0..64)
        .find_map(|_| checked(wrong_result(rng, trace.after, max_number)))
        .or_else(|| {
            (0..trace.after)
                .rev()
                .chain((trace.after + 1)..=max_number as i64)
                .find_map(checked)
        })
        .expect("some wrong result of a step has a check in range")
}

/// The check of a step written with the wrong result `wrong`: its inverse equation with the
/// correct value, when that value can be written.
pub(crate) fn failed_check(trace: &StepTrace, wrong: i64, max_number: u32) -> Option<Equation> {
    let written = StepTrace {
        after: wrong,
        ..*trace
    };
    let check = written.check_equation().corrected()?;
    ((0..=max_number as i64).contains(&check.c) && check.c != trace.before).then_some(check)
}

pub(crate) fn repair_sentence(lang: Lang, variant: u32, eq: Equation) -> String {
    match (lang, variant % 2) {
        (Lang::En, 0) => format!("Wait, that is wrong: {eq}."),
        (Lang::En, _) => format!("Wait, I made a mistake. It should be {eq}."),
        (Lang::Zh, 0) => format!("等等，这里算错了：{eq}。"),
        (Lang::Zh, _) => format!("等等，我算错了，应该是 {eq}。"),
    }
}

/// Whether the terse writer merges `first` and the step after it, `second`: both are gains or
/// losses.
pub(crate) fn mergeable(first: &StepTrace, second: &StepTrace) -> bool {
    let additive = |t: &StepTrace| matches!(t.op, Op::Gain(_) | Op::Lose(_));
    additive(first) && additive(second)
}

/// Two merged steps ([`mergeable`]) in a sentence of `lang`, as one equation from the first's
/// start to the second's result: `48 + 24 - 12 = 60`.
pub(crate) fn terse_steps(
    lang: Lang,
    plan: &Plan,
    first: &StepTrace,
    second: &StepTrace,
) -> String {
    let (a, b) = (first.result_equation(), second.result_equation());
    let expression = format!("{} {} {} {} {} = {}", a.a, a.op, a.b, b.op, b.b, b.c);
    match lang {
        Lang::En => render_en::terse_steps(plan, &expression),
        Lang::Zh => render_zh::terse_steps(plan, &expression),
    }
}

/// The correct solution's sentences in `lang`: one per step, then the answer sentence.
pub(crate) fn solution_sentences(
    lang: Lang,
    plan: &Plan,
    structure: &Structure,
    max_number: u32,
) -> Vec<Sentence> {
    let traces = traces(structure, None, max_number).expect("generated structures are valid");
    let mut out: Vec<Sentence> = traces
        .iter()
        .enumerate()
        .map(|(i, t)| (lang, step(lang, plan, i, t)))
        .collect();
    out.push((lang, answer_sentence(lang, structure.answer())));
    out
}

/// A two-digit addition or subtraction worked out tens first, in one language-neutral sentence:
/// `38 + 45 = 83` → `38 + 40 = 78, 78 + 5 = 83.` (`，` and `。` in Chinese). `None` where there is
/// nothing to work out (a one-digit or round second operand, another operation, a wrong result).
pub(crate) fn worked_sentence(lang: Lang, eq: Equation) -> Option<String> {
    worked_equations(lang, eq).map(|w| format!("{w}{}", full_stop(lang)))
}

/// The two equations of [`worked_sentence`] without its full stop: `38 + 40 = 78, 78 + 5 = 83`.
fn worked_equations(lang: Lang, eq: Equation) -> Option<String> {
    let (tens, units) = eq.tens_first()?;
    Some(match lang {
        Lang::En => format!("{tens}, {units}"),
        Lang::Zh => format!("{tens}，{units}"),
    })
}

/// The mark that ends a sentence in `lang`.
fn full_stop(lang: Lang) -> char {
    match lang {
        Lang::En => '.',
        Lang::Zh => '。',
    }
}

/// A step sentence whose equation `eq` is worked out in place (`so she has 38 + 40 = 78, 78 + 5
/// = 83 apples.`); `None` where there is nothing to work out or the sentence does not write
/// `eq`.
pub(crate) fn worked_in_step(lang: Lang, step: &str, eq: Equation) -> Option<String> {
    let worked = worked_equations(lang, eq)?;
    let plain = eq.to_string();
    step.contains(&plain)
        .then(|| step.replacen(&plain, &worked, 1))
}

/// A correct solution as the careful writer of the web corpus writes it: every two-digit addition
/// or subtraction worked out tens first ([`worked_sentence`]) in a sentence of its own, just
/// before the step that uses it. `solution` is a rendered solution (`Problem::solution`): its
/// sentences end with `.` (English, joined by a space) or `。` (Chinese, joined by nothing).
pub fn worked_solution(lang: Lang, solution: &str) -> String {
    let mut sentences: Vec<Sentence> = Vec::new();
    for sentence in solution.split_inclusive(full_stop(lang)) {
        let sentence = sentence.trim();
        if sentence.is_empty() {
            continue;
        }
        for eq in find_equations(sentence) {
            if let Some(worked) = worked_sentence(lang, eq) {
                sentences.push((lang, worked));
            }
        }
        sentences.push((lang, sentence.to_string()));
    }
    join(&sentences)
}

/// Uppercases the first character (English sentences start with a lowercase template).
pub(crate) fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
