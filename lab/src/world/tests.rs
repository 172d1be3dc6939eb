//! Tests across the whole world: determinism, the split, arithmetic, rendering, benchmarks.

use std::collections::{HashMap, HashSet};

use super::render::{self, Plan};
use super::tokens::{is_han, is_number, is_word};
use super::*;

fn small() -> WorldConfig {
    WorldConfig {
        web_documents: 2_000,
        train_problems: 400,
        benchmark_size: 30,
        ..WorldConfig::default()
    }
}

/// The web documents of `config` with the structures they were built from, drawn exactly as
/// `generate` draws them.
fn web_with_structures(config: &WorldConfig) -> Vec<(WebDocument, Structure)> {
    let mut rng = Rng::derive(config.seed, "world/web");
    (0..config.web_documents)
        .map(|_| corpus::web_document(&mut rng, config))
        .collect()
}

fn all_texts(world: &GeneratedWorld) -> Vec<&str> {
    let mut texts: Vec<&str> = world.web.iter().map(|d| d.text.as_str()).collect();
    let problems = world
        .train
        .iter()
        .chain(world.benchmarks.iter().flat_map(|b| &b.problems));
    for p in problems {
        texts.push(&p.question);
        texts.push(&p.solution);
    }
    texts
}

fn last_number(text: &str) -> i64 {
    split_tokens(text)
        .into_iter()
        .rev()
        .find(|t| is_number(t))
        .expect("a number")
        .parse()
        .unwrap()
}

#[test]
fn deterministic_and_seed_sensitive() {
    let config = WorldConfig {
        web_documents: 300,
        train_problems: 100,
        benchmark_size: 10,
        ..WorldConfig::default()
    };
    let a = serde_json::to_vec(&generate(&config)).unwrap();
    let b = serde_json::to_vec(&generate(&config)).unwrap();
    assert_eq!(a, b);
    let other = WorldConfig { seed: 1, ..config };
    assert_ne!(a, serde_json::to_vec(&generate(&other)).unwrap());
}

#[test]
fn parts_are_independent_of_each_others_sizes() {
    let config = WorldConfig {
        web_documents: 50,
        train_problems: 30,
        benchmark_size: 10,
        ..WorldConfig::default()
    };
    let bigger = WorldConfig {
        web_documents: 80,
        ..config.clone()
    };
    let (a, b) = (generate(&config), generate(&bigger));
    assert_eq!(a.train, b.train);
    assert_eq!(a.benchmarks, b.benchmarks);
    assert_eq!(a.web[..], b.web[..50]);
}

#[test]
fn train_and_test_structures_are_disjoint() {
    let config = small();
    let world = generate(&config);
    let web = web_with_structures(&config);
    assert_eq!(
        web.iter().map(|(d, _)| d).cloned().collect::<Vec<_>>(),
        world.web
    );
    let train: HashSet<[u8; 32]> = web
        .iter()
        .map(|(_, s)| s)
        .chain(world.train.iter().map(|p| &p.structure))
        .map(|s| s.structure_hash())
        .collect();
    let test: HashSet<[u8; 32]> = world
        .benchmarks
        .iter()
        .flat_map(|b| &b.problems)
        .map(|p| p.structure.structure_hash())
        .collect();
    assert!(train.is_disjoint(&test));
    assert!(train
        .iter()
        .all(|h| !problem::is_test_hash(h, config.test_share)));
    assert!(test
        .iter()
        .all(|h| problem::is_test_hash(h, config.test_share)));
}

#[test]
fn problems_are_consistent_and_their_arithmetic_is_right() {
    let world = generate(&small());
    let problems = world
        .train
        .iter()
        .chain(world.benchmarks.iter().flat_map(|b| &b.problems));
    for p in problems {
        assert_eq!(p.answer, p.structure.answer());
        assert_eq!(p.operations, p.structure.ops.len());
        assert_eq!(p.id, p.structure.id());
        let eqs = find_equations(&p.solution);
        assert!(eqs.len() >= p.operations, "{}", p.solution);
        assert!(eqs.iter().all(Equation::is_correct), "{}", p.solution);
        assert_eq!(last_number(&p.solution), p.answer);
        let ending = match p.lang {
            Lang::En => format!("The answer is {}.", p.answer),
            Lang::Zh => format!("答案是 {}。", p.answer),
        };
        assert!(p.solution.ends_with(&ending), "{}", p.solution);
        // The question states no equation.
        assert!(find_equations(&p.question).is_empty());
    }
}

/// The chat framing peeled off a framed document: its question and reasoning, as an unframed
/// document of the same style would read (the tagged answer repeats the final number).
fn unframed(doc: &WebDocument) -> String {
    if !doc.chat {
        return doc.text.clone();
    }
    let rest = doc
        .text
        .strip_prefix("User: ")
        .expect("a chat starts with the user");
    let (question, response) = rest.split_once(" Assistant: ").expect("then the assistant");
    if doc.style == Style::Tagged {
        return format!("{question} {response}");
    }
    let think = response
        .strip_prefix("<think> ")
        .expect("the assistant thinks first");
    let (reasoning, answer) = think
        .split_once(" </think> <answer> ")
        .expect("then answers");
    let answer = answer
        .strip_suffix(" </answer>")
        .expect("closes the answer");
    assert_eq!(last_number(reasoning).to_string(), answer, "{}", doc.text);
    let sep = if doc.lang == Lang::Zh && split_tokens(reasoning).iter().any(|t| is_han(t)) {
        ""
    } else {
        " "
    };
    format!("{question}{sep}{reasoning}")
}

#[test]
fn web_documents_follow_their_style() {
    let mut config = small();
    config.shares.tagged = 0.05;
    let mut per_style: HashMap<Style, usize> = HashMap::new();
    let mut chats = 0;
    for (doc, structure) in web_with_structures(&config) {
        *per_style.entry(doc.style).or_default() += 1;
        chats += doc.chat as usize;
        let doc = WebDocument {
            text: unframed(&doc),
            ..doc
        };
        assert!((1..=4).contains(&doc.operations), "{doc:?}");
        assert_eq!(doc.operations, structure.ops.len());
        let eqs = find_equations(&doc.text);
        let wrong: Vec<usize> = (0..eqs.len()).filter(|i| !eqs[*i].is_correct()).collect();
        let answer = structure.answer();
        assert_eq!(doc.answer_correct, doc.style != Style::WrongAnswer);
        match doc.style {
            Style::WrongAnswer => {
                assert_eq!(wrong.len(), 1, "{}", doc.text);
                assert_ne!(last_number(&doc.text), answer, "{}", doc.text);
            }
            Style::SelfRepair => {
                assert_eq!(wrong.len(), 1, "{}", doc.text);
                let fix = eqs.get(wrong[0] + 1).expect("a correction follows");
                assert_eq!(Some(*fix), eqs[wrong[0]].corrected(), "{}", doc.text);
                assert!(doc.text.contains("Wait") || doc.text.contains("等等"));
                assert_eq!(last_number(&doc.text), answer);
            }
            _ => {
                assert!(wrong.is_empty(), "{}", doc.text);
                assert_eq!(last_number(&doc.text), answer);
            }
        }
        let tokens = split_tokens(&doc.text);
        let has_han = tokens.iter().any(|t| is_han(t));
        let has_word = tokens.iter().any(|t| is_word(t));
        match doc.style {
            Style::BareAnswer => assert!(eqs.is_empty()),
            Style::Tagged => {
                assert!(doc.text.ends_with(&format!("<answer> {answer} </answer>")));
                assert_eq!(tokens.iter().filter(|t| **t == "<think>").count(), 1);
            }
            Style::CodeSwitched => assert!(has_han && has_word, "{}", doc.text),
            Style::SelfCheck => {
                assert!(
                    doc.text.contains("check")
                        || doc.text.contains("检查")
                        || doc.text.contains("验算")
                );
                assert!(eqs.len() > doc.operations);
            }
            _ => {}
        }
        if doc.style != Style::CodeSwitched {
            // One language throughout (English text has no Han; Chinese text has no words).
            match doc.lang {
                Lang::En => assert!(!has_han, "{}", doc.text),
                Lang::Zh => assert!(!has_word, "{}", doc.text),
            }
        }
        if doc.style != Style::Tagged {
            assert!(!doc.text.contains('<'));
        }
    }
    for style in Style::ALL {
        assert!(
            per_style.get(&style).copied().unwrap_or(0) > 10,
            "{per_style:?}"
        );
    }
    let share = chats as f64 / config.web_documents as f64;
    assert!(
        (share - config.chat_share).abs() < 0.05,
        "chat share {share}"
    );
}

#[test]
fn chat_documents_read_as_the_compact_template_answered() {
    let config = small();
    let web = web_with_structures(&config);
    let prompting = crate::evaluation::Prompting::Compact;
    let mut seen = 0;
    for (doc, structure) in web.iter().filter(|(d, _)| d.chat).take(200) {
        let (question, _) = doc.text["User: ".len()..]
            .split_once(" Assistant: ")
            .expect("framed");
        let prompt = crate::evaluation::render_prompt(prompting, question, doc.lang);
        let completion = doc
            .text
            .strip_prefix(&prompt)
            .expect("the prompt is a prefix");
        let read = crate::evaluation::extract_answer(completion, prompting);
        let expected = if doc.answer_correct {
            structure.answer()
        } else {
            last_number(&doc.text)
        };
        assert_eq!(read, Some(expected), "{}", doc.text);
        seen += 1;
    }
    assert!(seen > 100);
}

/// A world spec of v1's knobs regenerates v1's texts byte for byte (pinned from the code
/// before the learnable world), so results of old worlds stay reproducible by spec.
#[test]
fn world_v1_regenerates_from_its_knobs() {
    let mut config = WorldConfig {
        max_number: 999,
        hard_number_max: 200,
        ood_number_max: 100,
        easy_value_max: 999,
        hard_value_max: 999,
        ood_value_max: 999,
        box_size_max: 25,
        chat_share: 0.0,
        worked_share: 0.0,
        ..small()
    };
    config.shares = CorpusShares {
        bare_answer: 0.22,
        step_by_step: 0.35,
        code_switched: 0.08,
        self_check: 0.05,
        self_repair: 0.03,
        tagged: 0.12,
        wrong_answer: 0.15,
    };
    let world = generate(&config);
    let mut hash = blake3::Hasher::new();
    for doc in &world.web {
        hash.update(doc.text.as_bytes());
        hash.update(b"\n");
    }
    let problems = world
        .train
        .iter()
        .chain(world.benchmarks.iter().flat_map(|b| &b.problems));
    for p in problems {
        for text in [&p.question, &p.solution] {
            hash.update(text.as_bytes());
            hash.update(b"\n");
        }
    }
    assert_eq!(
        hash.finalize().to_hex().as_str(),
        "0ff1294d5289295ae7fac5221ce41bc96a592b3dcf24014a1e535495674f1d92"
    );
}

#[test]
fn every_operation_renders_in_both_languages() {
    let config = WorldConfig::default();
    let cases = [
        (Op::Gain(5), vec!["5"], "40 + 5 = 45"),
        (Op::Lose(7), vec!["7"], "40 - 7 = 33"),
        (
            Op::Boxes { count: 3, each: 4 },
            vec!["3", "4"],
            "40 + 12 = 52",
        ),
        (Op::Share(4), vec![], "40 ÷ 4 = 10"),
    ];
    for (op, numbers, equation) in cases {
        let structure = Structure {
            start: 40,
            ops: vec![op],
        };
        let mut friends_seen = false;
        let mut rng = Rng::new(11);
        for _ in 0..60 {
            let plan = Plan::random(&mut rng, &structure);
            friends_seen |= plan.steps[0].friends;
            for lang in Lang::ALL {
                let p = corpus::render_problem(&structure, lang, &plan, &config);
                let q = split_tokens(&p.question);
                assert!(q.contains(&"40"), "{}", p.question);
                for n in &numbers {
                    assert!(q.contains(n), "{} lacks {n}", p.question);
                }
                if let Op::Share(n) = op {
                    let told = if plan.steps[0].friends { n - 1 } else { n };
                    assert!(q.contains(&told.to_string().as_str()), "{}", p.question);
                }
                assert!(p.solution.contains(equation), "{}", p.solution);
                if let Op::Boxes { .. } = op {
                    assert!(p.solution.contains("3 × 4 = 12"), "{}", p.solution);
                }
                let all: Vec<&str> = q
                    .iter()
                    .chain(&split_tokens(&p.solution))
                    .copied()
                    .collect();
                match lang {
                    Lang::En => {
                        assert!(!all.iter().any(|t| is_han(t)), "{}", p.question);
                        assert!(p.question.ends_with('?'));
                    }
                    Lang::Zh => {
                        assert!(!all.iter().any(|t| is_word(t)), "{}", p.question);
                        assert!(p.question.ends_with('？'));
                    }
                }
            }
        }
        if matches!(op, Op::Share(_)) {
            assert!(friends_seen, "the friends wording never came up");
        }
    }
    // Checks and repairs invert and restate each step.
    let t = render::traces(
        &Structure {
            start: 20,
            ops: vec![Op::Gain(4), Op::Share(2), Op::Boxes { count: 2, each: 5 }],
        },
        None,
        999,
    )
    .unwrap();
    assert_eq!(t[0].check_equation().to_string(), "24 - 4 = 20");
    assert_eq!(t[2].check_equation().to_string(), "22 - 10 = 12");
    assert_eq!(t[2].result_equation().to_string(), "12 + 10 = 22");
}

#[test]
fn benchmarks_have_configured_sizes_and_difficulties() {
    let config = small();
    let world = generate(&config);
    let names: Vec<&str> = world.benchmarks.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(
        names,
        ["easy-en", "easy-zh", "hard-en", "hard-zh", "ood-en", "ood-zh"]
    );
    for b in &world.benchmarks {
        assert_eq!(b.problems.len(), config.benchmark_size);
        let (difficulty, lang) = b.name.split_once('-').unwrap();
        let (ops, max, value_max) = match difficulty {
            "easy" => (1..=2, config.easy_number_max, config.easy_value_max),
            "hard" => (3..=4, config.hard_number_max, config.hard_value_max),
            _ => (5..=5, config.ood_number_max, config.ood_value_max),
        };
        let ids: HashSet<&str> = b.problems.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids.len(), b.problems.len(), "duplicate in {}", b.name);
        for p in &b.problems {
            assert_eq!(p.lang.code(), lang);
            assert!(
                ops.contains(&p.operations),
                "{} in {}",
                p.operations,
                b.name
            );
            assert!(p.structure.start <= max);
            assert!(
                p.structure
                    .trajectory()
                    .iter()
                    .all(|v| *v <= value_max as i64),
                "{:?} in {}",
                p.structure,
                b.name
            );
        }
        let counts: HashSet<usize> = b.problems.iter().map(|p| p.operations).collect();
        assert_eq!(counts.len(), ops.count(), "{}: {counts:?}", b.name);
    }
    assert!(world.train.iter().all(|p| (1..=4).contains(&p.operations)));
    let zh = world.train.iter().filter(|p| p.lang == Lang::Zh).count();
    assert!(zh > 100 && zh < 300, "{zh} of 400 in Chinese");
}

#[test]
fn rendered_text_stays_within_the_vocabulary() {
    let config = WorldConfig {
        max_number: 300,
        hard_number_max: 120,
        ..small()
    };
    let world = generate(&config);
    let mut vocab: HashMap<&str, HashSet<&str>> = HashMap::new();
    for text in all_texts(&world) {
        assert!(!text.contains('\''), "{text}");
        assert!(!text.contains("  "), "{text}");
        for t in split_tokens(text) {
            if is_number(t) {
                assert!(
                    t.parse::<u64>().unwrap() <= config.max_number as u64,
                    "{text}"
                );
                assert!(t == "0" || !t.starts_with('0'), "{text}");
            } else if is_han(t) {
                vocab.entry("han").or_default().insert(t);
            } else if is_word(t) {
                vocab.entry("word").or_default().insert(t);
            } else {
                vocab.entry("other").or_default().insert(t);
            }
        }
    }
    let sizes: HashMap<&str, usize> = vocab.iter().map(|(k, v)| (*k, v.len())).collect();
    assert!(
        sizes["word"] < 300 && sizes["han"] < 300 && sizes["other"] < 30,
        "{sizes:?}"
    );
}

#[test]
fn progress_reaches_the_total() {
    let config = WorldConfig {
        web_documents: 2_500,
        train_problems: 10,
        benchmark_size: 5,
        ..WorldConfig::default()
    };
    let mut calls = Vec::new();
    generate_with_progress(&config, &mut |done, total| calls.push((done, total)));
    let total = 2_500 + 10 + 6 * 5;
    assert_eq!(calls.first(), Some(&(1000, total)));
    assert_eq!(calls.last(), Some(&(total, total)));
    assert!(calls.windows(2).all(|w| w[0].0 < w[1].0));
}

#[test]
#[should_panic(expected = "invalid world config")]
fn invalid_config_panics() {
    generate(&WorldConfig {
        benchmark_size: 0,
        ..WorldConfig::default()
    });
}

#[test]
fn careful_writers_work_two_digit_steps_out_tens_first() {
    use super::render::worked_sentence;
    let eq = |a, op, b, c| Equation::new(a, op, b, c);
    assert_eq!(
        worked_sentence(Lang::En, eq(38, '+', 45, 83)).as_deref(),
        Some("38 + 40 = 78, 78 + 5 = 83.")
    );
    assert_eq!(
        worked_sentence(Lang::Zh, eq(75, '-', 39, 36)).as_deref(),
        Some("75 - 30 = 45，45 - 9 = 36。")
    );
    // Nothing to work out: one digit, a round number, a wrong result, a product.
    for e in [
        eq(38, '+', 5, 43),
        eq(38, '+', 40, 78),
        eq(38, '+', 45, 84),
        eq(6, '×', 17, 102),
    ] {
        assert_eq!(worked_sentence(Lang::En, e), None, "{e}");
    }
    // In the web, about `worked_share` of the step-by-step documents that have such a step
    // work it out: the tens step, the units step, then the step itself.
    let config = small();
    let web = web_with_structures(&config);
    let (mut eligible, mut worked) = (0, 0);
    for (doc, _) in web.iter().filter(|(d, _)| d.style == Style::StepByStep) {
        let eqs = find_equations(&doc.text);
        if !eqs.iter().any(|e| worked_sentence(doc.lang, *e).is_some()) {
            continue;
        }
        eligible += 1;
        let shows_work = eqs.windows(2).any(|w| {
            let (tens, units) = (w[0], w[1]);
            Equation::is_tens_first_pair(&tens, &units)
                && eqs
                    .iter()
                    .any(|e| e.a == tens.a && e.b == tens.b + units.b && e.c == units.c)
        });
        worked += shows_work as usize;
    }
    let share = worked as f64 / eligible as f64;
    assert!(eligible > 200, "{eligible}");
    assert!(
        (share - config.worked_share).abs() < 0.08,
        "worked share {share}"
    );
}

#[test]
fn worked_solutions_insert_the_tens_first_steps_and_keep_the_rest() {
    let world = generate(&small());
    let mut worked_any = 0;
    for p in &world.train {
        let worked = worked_solution(p.lang, &p.solution);
        let plain: Vec<Equation> = find_equations(&p.solution);
        let workable: Vec<Equation> = plain
            .iter()
            .filter(|e| e.tens_first().is_some())
            .copied()
            .collect();
        if workable.is_empty() {
            assert_eq!(worked, p.solution);
            continue;
        }
        worked_any += 1;
        // Two more equations per workable step, all correct, the answer sentence unchanged.
        let equations = find_equations(&worked);
        assert_eq!(
            equations.len(),
            plain.len() + 2 * workable.len(),
            "{worked}"
        );
        assert!(equations.iter().all(|e| e.is_correct()), "{worked}");
        assert_eq!(last_number(&worked), p.answer, "{worked}");
        // Each worked pair ends where its step's equation does, just before the step.
        for eq in &workable {
            let step = worked.find(&eq.to_string()).expect("the step stays");
            let before = &worked[..step];
            let tens = eq.b - eq.b % 10;
            assert!(
                before.contains(&format!("{} {} {} =", eq.a, eq.op, tens)),
                "{worked}"
            );
        }
    }
    assert!(worked_any > world.train.len() / 4, "{worked_any}");
}

/// Inline working replaces a step's single fact by its worked equations, and changes nothing
/// else: the same documents, styles and answers, drawn from the same random streams.
#[test]
fn inline_worked_steps_replace_the_single_fact() {
    let before = generate(&small());
    let inline = generate(&WorldConfig {
        worked_inline: true,
        ..small()
    });
    assert_eq!(before.train, inline.train);
    assert_eq!(before.benchmarks, inline.benchmarks);
    let worked_pairs = |text: &str| -> Vec<(Equation, Equation)> {
        find_equations(text)
            .windows(2)
            .filter(|w| Equation::is_tens_first_pair(&w[0], &w[1]))
            .map(|w| (w[0], w[1]))
            .collect()
    };
    let (mut inline_docs, mut plain_after) = (0, 0);
    for (old, new) in before.web.iter().zip(&inline.web) {
        assert_eq!(
            (old.style, old.lang, old.answer_correct, old.chat),
            (new.style, new.lang, new.answer_correct, new.chat)
        );
        assert_eq!(last_number(&old.text), last_number(&new.text));
        let single = |t: &str, (tens, units): (Equation, Equation)| {
            t.contains(&Equation::new(tens.a, tens.op, tens.b + units.b, units.c).to_string())
        };
        // A self-check's inverse equation may be the single fact of a later worked step.
        if new.style == Style::SelfCheck {
            continue;
        }
        for pair in worked_pairs(&new.text) {
            inline_docs += 1;
            assert!(!single(&new.text, pair), "{}", new.text);
        }
        for pair in worked_pairs(&old.text) {
            plain_after += usize::from(single(&old.text, pair));
        }
    }
    assert!(inline_docs > 100, "{inline_docs}");
    assert!(plain_after > 100, "{plain_after}");
    // Left out of the resolved spec when off, so older worlds keep their ids.
    let json = serde_json::to_value(small()).unwrap();
    assert!(json.get("worked_inline").is_none());
    let json = serde_json::to_value(WorldConfig {
        worked_inline: true,
        ..small()
    })
    .unwrap();
    assert_eq!(json["worked_inline"], true);
}

/// `lab habits` finds checks and repairs by their phrases: every variant the world writes, in
/// both languages, must be found, so a new wording cannot silently go uncounted.
#[test]
fn the_habits_report_finds_every_check_and_repair_the_world_writes() {
    use crate::habits::Habit;
    let eq = Equation::new(83, '-', 45, 38);
    for lang in Lang::ALL {
        for variant in 0..4 {
            let check = render::check_sentence(lang, variant, eq);
            assert!(Habit::Check.in_text(&check), "{check}");
            assert!(!Habit::Repair.in_text(&check), "{check}");
            let failed = render::failed_check_sentence(lang, variant, eq, 36);
            assert!(Habit::Check.in_text(&failed), "{failed}");
            assert!(!Habit::Repair.in_text(&failed), "{failed}");
            let repair = render::repair_sentence(lang, variant, eq);
            assert!(Habit::Repair.in_text(&repair), "{repair}");
            assert!(!Habit::Check.in_text(&repair), "{repair}");
        }
        let worked = render::worked_sentence(lang, Equation::new(38, '+', 45, 83)).unwrap();
        assert!(Habit::Worked.in_text(&worked), "{worked}");
    }
}

/// With `checked_repair`, every wrong step of a self-repairing writer is followed by its check,
/// the inverse computed correctly, which disagrees with the step's starting number and says so,
/// and then by the step done right; the knob stays out of the resolved spec when off.
#[test]
fn checked_repairs_show_the_check_that_catches_the_wrong_step() {
    use crate::habits::{check_verdicts, CheckVerdicts};
    let config = WorldConfig {
        checked_repair: true,
        ..small()
    };
    let world = generate(&config);
    let mut repairs = 0;
    for doc in world.web.iter().filter(|d| d.style == Style::SelfRepair) {
        let eqs = find_equations(&doc.text);
        let wrong: Vec<usize> = (0..eqs.len()).filter(|i| !eqs[*i].is_correct()).collect();
        assert_eq!(wrong.len(), 1, "{}", doc.text);
        let (step, check, fix) = (eqs[wrong[0]], eqs[wrong[0] + 1], eqs[wrong[0] + 2]);
        assert!(check.is_correct(), "{}", doc.text);
        assert_eq!(
            check.a, step.c,
            "the check starts from the wrong result: {}",
            doc.text
        );
        assert_ne!(check.c, step.a, "{}", doc.text);
        assert!(
            doc.text.contains(&format!("not {}", step.a))
                || doc.text.contains(&format!("不是 {}", step.a)),
            "{}",
            doc.text
        );
        assert_eq!(Some(fix), step.corrected(), "{}", doc.text);
        assert!(doc.answer_correct);
        // `lab habits` reads the check as one that catches its wrong step.
        let verdicts = check_verdicts(&doc.text);
        let caught_one = CheckVerdicts {
            checks: 1,
            wrong_steps: 1,
            caught: 1,
            false_alarms: 0,
        };
        assert_eq!(verdicts, caught_one, "{}", doc.text);
        repairs += 1;
    }
    for doc in world.web.iter().filter(|d| d.style == Style::SelfCheck) {
        let verdicts = check_verdicts(&doc.text);
        assert!(verdicts.checks >= 1, "{}", doc.text);
        assert_eq!(
            (verdicts.wrong_steps, verdicts.false_alarms),
            (0, 0),
            "{}",
            doc.text
        );
    }
    assert!(repairs > 20, "{repairs}");
    assert_eq!(world.train, generate(&small()).train);
    let json = serde_json::to_value(small()).unwrap();
    assert!(json.get("checked_repair").is_none());
    assert_eq!(
        serde_json::to_value(config).unwrap()["checked_repair"],
        true
    );
}

#[test]
fn the_terse_writer_merges_consecutive_gains_and_losses_into_one_equation() {
    let terse = web_with_structures(&WorldConfig {
        terse_share: 1.0,
        ..small()
    });
    let plain = web_with_structures(&small());
    let (mut merged_docs, mut unmerged_pairs) = (0, 0);
    for (doc, structure) in &terse {
        if doc.style != Style::StepByStep {
            continue;
        }
        let trajectory = structure.trajectory();
        let additive = |op: &Op| matches!(op, Op::Gain(_) | Op::Lose(_));
        // Every run of gains and losses is merged pairwise from its start.
        let mut i = 0;
        while i < structure.ops.len() {
            if i + 1 < structure.ops.len()
                && additive(&structure.ops[i])
                && additive(&structure.ops[i + 1])
            {
                let sign = |op: &Op| match op {
                    Op::Gain(k) => format!("+ {k}"),
                    Op::Lose(k) => format!("- {k}"),
                    _ => unreachable!(),
                };
                let expression = format!(
                    "{} {} {} = {}",
                    trajectory[i],
                    sign(&structure.ops[i]),
                    sign(&structure.ops[i + 1]),
                    trajectory[i + 2]
                );
                assert!(doc.text.contains(&expression), "{expression}: {}", doc.text);
                // `lab habits` finds the merged step.
                assert!(
                    crate::habits::Habit::Merged.in_text(&doc.text),
                    "{}",
                    doc.text
                );
                merged_docs += 1;
                i += 2;
            } else {
                i += 1;
            }
        }
        assert!(doc.answer_correct);
    }
    for (doc, structure) in &plain {
        assert!(
            !crate::habits::Habit::Merged.in_text(&doc.text),
            "{}",
            doc.text
        );
        let ops = &structure.ops;
        if doc.style == Style::StepByStep
            && ops.windows(2).any(|w| {
                matches!(w[0], Op::Gain(_) | Op::Lose(_))
                    && matches!(w[1], Op::Gain(_) | Op::Lose(_))
            })
        {
            // Without the terse writer, every step's result is written.
            for value in structure.trajectory() {
                assert!(doc.text.contains(&value.to_string()), "{}", doc.text);
            }
            unmerged_pairs += 1;
        }
    }
    assert!(
        merged_docs > 100 && unmerged_pairs > 100,
        "{merged_docs} {unmerged_pairs}"
    );
    // Left out of the resolved spec at 0, so older worlds keep their ids; a probability.
    let json = serde_json::to_value(small()).unwrap();
    assert!(json.get("terse_share").is_none());
    let bad = WorldConfig {
        terse_share: 1.5,
        ..small()
    };
    assert!(format!("{:?}", bad.validate()).contains("terse_share"));
}
