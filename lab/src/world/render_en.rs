//! English templates. Sentences are written lowercase-first and capitalised, so a connective
//! ("then ...") can precede any of them. No apostrophes anywhere (the tokenizer has none).

use super::equations::Equation;
use super::problem::{Op, Structure};
use super::render::{capitalize, Gender, Plan, StepPlan, StepTrace};

fn subject(plan: &Plan) -> &'static str {
    match plan.gender {
        Gender::Female => "she",
        Gender::Male => "he",
    }
}

const CONNECTIVES: [&str; 4] = ["", "then ", "after that, ", "later, "];

pub(crate) fn question(plan: &Plan, structure: &Structure) -> String {
    let name = plan.name_en;
    let p = subject(plan);
    let items = plan.item.en;
    let boxes = plan.item.en_boxes;
    let a_box = plan.item.en_box;
    let n = structure.start;
    let mut sentences = vec![match plan.start_variant % 3 {
        0 => format!("{name} had {n} {items}."),
        1 => format!("{name} started with {n} {items}."),
        _ => format!("at first, {name} had {n} {items}."),
    }];
    for (op, sp) in structure.ops.iter().zip(&plan.steps) {
        let v = sp.question_variant;
        let clause = match *op {
            Op::Gain(k) => match v % 4 {
                0 => format!("{p} bought {k} more {items}."),
                1 => format!("{p} found {k} more {items}."),
                2 => format!("{p} got {k} more {items} from a friend."),
                _ => format!("{p} won {k} {items} in a game."),
            },
            Op::Lose(k) => match v % if plan.item.edible { 4 } else { 3 } {
                0 => format!("{p} gave {k} {items} to a friend."),
                1 => format!("{p} sold {k} of them."),
                2 => format!("{p} lost {k} {items}."),
                _ => format!("{p} ate {k} of them."),
            },
            Op::Boxes { count, each } => match v % 3 {
                0 => format!(
                    "{p} bought {count} {boxes} of {items} with {each} {items} in each {a_box}."
                ),
                1 => format!("{p} bought {count} {boxes} of {each} {items} each."),
                _ => format!("{p} got {count} {boxes}, and each {a_box} had {each} {items}."),
            },
            Op::Share(parts) if sp.friends => format!(
                "{p} shared the {items} equally with {} friends, and everyone got the same number.",
                parts - 1
            ),
            Op::Share(parts) => match v % 2 {
                0 => {
                    format!("{p} split the {items} equally into {parts} groups and kept one group.")
                }
                _ => format!("{p} divided the {items} into {parts} equal piles and kept one pile."),
            },
        };
        let connective = CONNECTIVES[(sp.connective % 4) as usize];
        sentences.push(format!("{connective}{clause}"));
    }
    sentences.push(match plan.question_variant % 3 {
        0 => format!("how many {items} does {name} have now?"),
        1 => format!("how many {items} does {p} have in the end?"),
        _ => format!("how many {items} does {name} have at the end?"),
    });
    sentences
        .iter()
        .map(|s| capitalize(s))
        .collect::<Vec<_>>()
        .join(" ")
}

pub(crate) fn step(plan: &Plan, sp: &StepPlan, t: &StepTrace) -> String {
    let p = subject(plan);
    let items = plan.item.en;
    let boxes = plan.item.en_boxes;
    let eq = t.result_equation();
    let r = t.after;
    let v = sp.solution_variant;
    let sentence = match t.op {
        Op::Gain(k) => match v % 3 {
            0 => format!("{p} gets {k} more, so {p} has {eq} {items}."),
            1 => format!("{eq}, so {p} has {r} {items}."),
            _ => format!("now {p} has {eq} {items}."),
        },
        Op::Lose(_) => match v % 3 {
            0 => format!("{p} has {eq} {items} left."),
            1 => format!("{eq}, so {p} has {r} {items}."),
            _ => format!("now {p} has {eq} {items}."),
        },
        Op::Boxes { count, each } => {
            let product = Equation::new(count as i64, '×', each as i64, t.product);
            match v % 3 {
                0 => format!("the {boxes} hold {product} {items}, so {p} has {eq} {items}."),
                1 => format!("{product}, and {eq}, so {p} has {r} {items}."),
                _ => format!("{p} gets {product} more {items}, so now {p} has {eq} {items}."),
            }
        }
        Op::Share(parts) if sp.friends => {
            let people = Equation::new(parts as i64 - 1, '+', 1, parts as i64);
            format!("there are {people} people, so each gets {eq} {items}.")
        }
        Op::Share(_) => match v % 2 {
            0 => format!("{p} keeps {eq} {items}."),
            _ => format!("each part has {eq} {items}, so {p} has {r} {items}."),
        },
    };
    capitalize(&sentence)
}

/// Two consecutive gains or losses in one equation, the quantity between them unwritten: `now
/// she has 48 + 24 - 12 = 60 apples.`
pub(crate) fn terse_steps(plan: &Plan, expression: &str) -> String {
    let p = subject(plan);
    let items = plan.item.en;
    capitalize(&format!("now {p} has {expression} {items}."))
}
