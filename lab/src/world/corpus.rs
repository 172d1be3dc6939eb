//! Rendered problems and the pretraining "web" corpus built from them.

use crate::rng::Rng;

use super::config::WorldConfig;
use super::problem::{random_structure, Difficulty, Lang, Problem, Structure};
use super::render::{self, join, Plan, Sentence, StepTrace};

/// The response style of a web document.
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Style {
    BareAnswer,
    StepByStep,
    CodeSwitched,
    SelfCheck,
    SelfRepair,
    Tagged,
    WrongAnswer,
}

impl Style {
    /// In the order of [`super::CorpusShares::weights`].
    pub const ALL: [Style; 7] = [
        Style::BareAnswer,
        Style::StepByStep,
        Style::CodeSwitched,
        Style::SelfCheck,
        Style::SelfRepair,
        Style::Tagged,
        Style::WrongAnswer,
    ];
}

/// One document of the web corpus: a question followed by a response in some style.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
pub struct WebDocument {
    /// The question's language (a code-switched response also uses the other one).
    pub lang: Lang,
    pub style: Style,
    pub operations: usize,
    pub text: String,
    /// False only for [`Style::WrongAnswer`]: its final answer is wrong.
    pub answer_correct: bool,
    /// Framed as a chat with a tagged answer (see [`chat`]). Absent in worlds stored before the
    /// framing existed.
    #[serde(default)]
    pub chat: bool,
}

/// `User: {question} Assistant: <think> {reasoning} </think> <answer> N </answer>`: the compact
/// R1-Zero template's framing, answered.
pub fn chat(question: &str, reasoning: &str, answer: i64) -> String {
    format!("User: {question} Assistant: {}", tagged(reasoning, answer))
}

/// `<think> reasoning </think> <answer> N </answer>`: the R1 response format, with the bare
/// integer inside `<answer>`.
pub fn tagged(reasoning: &str, answer: i64) -> String {
    crate::response::tagged(reasoning, answer)
}

/// Renders `structure` in `lang` with the wording `plan`.
pub(crate) fn render_problem(
    structure: &Structure,
    lang: Lang,
    plan: &Plan,
    config: &WorldConfig,
) -> Problem {
    let solution = join(&render::solution_sentences(
        lang,
        plan,
        structure,
        config.max_number,
    ));
    Problem {
        id: structure.id(),
        lang,
        operations: structure.ops.len(),
        structure: structure.clone(),
        question: render::question(lang, plan, structure),
        answer: structure.answer(),
        solution,
    }
}

/// Draws a language with `zh_share`.
pub(crate) fn draw_lang(rng: &mut Rng, config: &WorldConfig) -> Lang {
    if rng.chance(config.zh_share) {
        Lang::Zh
    } else {
        Lang::En
    }
}

/// Draws an operation count (1-4) for a training-side problem.
pub(crate) fn draw_train_operations(rng: &mut Rng, config: &WorldConfig) -> usize {
    1 + rng.weighted_index(&config.train_operation_weights)
}

/// A random structure from the train side of the split with `operations` operations.
pub(crate) fn train_structure(rng: &mut Rng, operations: usize, config: &WorldConfig) -> Structure {
    let difficulty = Difficulty::for_operations(operations);
    let (number_max, value_max) = (difficulty.number_max(config), difficulty.value_max(config));
    loop {
        let s = random_structure(rng, operations, number_max, value_max, config);
        if !s.is_test(config.test_share) {
            return s;
        }
    }
}

/// A training problem: train side, 1-4 operations, language by `zh_share`.
pub(crate) fn train_problem(rng: &mut Rng, config: &WorldConfig) -> Problem {
    let lang = draw_lang(rng, config);
    let operations = draw_train_operations(rng, config);
    let structure = train_structure(rng, operations, config);
    let plan = Plan::random(rng, &structure);
    render_problem(&structure, lang, &plan, config)
}

/// One web document and the structure it was built from.
pub(crate) fn web_document(rng: &mut Rng, config: &WorldConfig) -> (WebDocument, Structure) {
    let lang = draw_lang(rng, config);
    let style = Style::ALL[rng.weighted_index(&config.shares.weights())];
    // No draw at a zero share, so worlds from before the framing regenerate byte for byte.
    let framed = config.chat_share > 0.0 && rng.chance(config.chat_share);
    let worked = config.worked_share > 0.0 && rng.chance(config.worked_share);
    let terse = config.terse_share > 0.0 && rng.chance(config.terse_share);
    let operations = draw_train_operations(rng, config);
    let max = config.max_number;
    loop {
        let structure = train_structure(rng, operations, config);
        let plan = Plan::random(rng, &structure);
        let question: Sentence = (lang, render::question(lang, &plan, &structure));
        let answer = structure.answer();
        let correct = render::traces(&structure, None, max).expect("valid structure");
        let mut sentences = vec![question];
        // A step as the document writes it: worked out first when the writer is careful.
        let push_step = |sentences: &mut Vec<Sentence>, l: Lang, i: usize, trace: &StepTrace| {
            let step = render::step(l, &plan, i, trace);
            let eq = trace.result_equation();
            if worked && config.worked_inline {
                if let Some(inline) = render::worked_in_step(l, &step, eq) {
                    sentences.push((l, inline));
                    return;
                }
            } else if worked {
                if let Some(w) = render::worked_sentence(l, eq) {
                    sentences.push((l, w));
                }
            }
            sentences.push((l, step));
        };
        let mut answer_correct = true;
        let mut final_answer = answer;
        match style {
            Style::BareAnswer => sentences.push((lang, render::answer_sentence(lang, answer))),
            Style::StepByStep => {
                let mut i = 0;
                while i < correct.len() {
                    match correct.get(i + 1) {
                        Some(next) if terse && render::mergeable(&correct[i], next) => {
                            let merged = render::terse_steps(lang, &plan, &correct[i], next);
                            sentences.push((lang, merged));
                            i += 2;
                        }
                        _ => {
                            push_step(&mut sentences, lang, i, &correct[i]);
                            i += 1;
                        }
                    }
                }
                sentences.push((lang, render::answer_sentence(lang, answer)));
            }
            Style::Tagged => {
                let solution = join(&render::solution_sentences(lang, &plan, &structure, max));
                sentences.push((lang, tagged(&solution, answer)));
            }
            Style::CodeSwitched => {
                let count = structure.ops.len() + 1;
                let mut switched: Vec<bool> = (0..count)
                    .map(|_| rng.chance(config.code_switch_rate))
                    .collect();
                if !switched.iter().any(|s| *s) {
                    switched[rng.below(count as u64) as usize] = true;
                }
                let pick = |i: usize| if switched[i] { lang.other() } else { lang };
                for (i, trace) in correct.iter().enumerate() {
                    push_step(&mut sentences, pick(i), i, trace);
                }
                let l = pick(count - 1);
                sentences.push((l, render::answer_sentence(l, answer)));
            }
            Style::SelfCheck => {
                let n = structure.ops.len();
                let mut checked: Vec<bool> =
                    (0..n).map(|_| rng.chance(config.self_check_rate)).collect();
                if !checked.iter().any(|c| *c) {
                    checked[rng.below(n as u64) as usize] = true;
                }
                for (i, trace) in correct.iter().enumerate() {
                    push_step(&mut sentences, lang, i, trace);
                    if checked[i] {
                        let variant = rng.below(1 << 16) as u32;
                        let eq = trace.check_equation();
                        sentences.push((lang, render::check_sentence(lang, variant, eq)));
                    }
                }
                sentences.push((lang, render::answer_sentence(lang, answer)));
            }
            Style::SelfRepair => {
                let bad = rng.below(structure.ops.len() as u64) as usize;
                for (i, trace) in correct.iter().enumerate() {
                    if i == bad {
                        let (wrong_after, check) = if config.checked_repair {
                            let (wrong, check) = render::wrong_checkable_result(rng, trace, max);
                            (wrong, Some(check))
                        } else {
                            (render::wrong_result(rng, trace.after, max), None)
                        };
                        let wrong = StepTrace {
                            after: wrong_after,
                            ..*trace
                        };
                        sentences.push((lang, render::step(lang, &plan, i, &wrong)));
                        let variant = rng.below(1 << 16) as u32;
                        if let Some(check) = check {
                            sentences.push((
                                lang,
                                render::failed_check_sentence(lang, variant, check, trace.before),
                            ));
                        }
                        let eq = trace.result_equation();
                        sentences.push((lang, render::repair_sentence(lang, variant, eq)));
                    } else {
                        push_step(&mut sentences, lang, i, trace);
                    }
                }
                sentences.push((lang, render::answer_sentence(lang, answer)));
            }
            Style::WrongAnswer => {
                // Structures where no error keeps every later step possible are redrawn.
                let Some(fault) = render::find_fault(rng, &structure, max) else {
                    continue;
                };
                let wrong = render::traces(&structure, Some(fault), max).expect("checked");
                for (i, trace) in wrong.iter().enumerate() {
                    // The faulty step's equation is wrong, so it is never worked out.
                    push_step(&mut sentences, lang, i, trace);
                }
                let final_value = wrong.last().expect("at least one step").after;
                sentences.push((lang, render::answer_sentence(lang, final_value)));
                answer_correct = false;
                final_answer = final_value;
            }
        }
        let text = if framed {
            let (question, response) = (&sentences[0].1, &sentences[1..]);
            match style {
                // Already `<think> ... </think> <answer> N </answer>`.
                Style::Tagged => format!("User: {question} Assistant: {}", response[0].1),
                _ => chat(question, &join(response), final_answer),
            }
        } else {
            join(&sentences)
        };
        let document = WebDocument {
            lang,
            style,
            operations,
            text,
            answer_correct,
            chat: framed,
        };
        return (document, structure);
    }
}
