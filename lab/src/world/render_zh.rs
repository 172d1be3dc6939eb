//! Chinese templates. Written without spaces except around numbers and equations, with
//! full-width punctuation and Arabic digits ("小明有 48 个苹果。").

use super::equations::Equation;
use super::problem::{Op, Structure};
use super::render::{Gender, Plan, StepPlan, StepTrace};

fn pronoun(plan: &Plan) -> &'static str {
    match plan.gender {
        Gender::Female => "她",
        Gender::Male => "他",
    }
}

const CONNECTIVES: [&str; 4] = ["", "然后，", "后来，", "接着，"];

pub(crate) fn question(plan: &Plan, structure: &Structure) -> String {
    let name = plan.name_zh;
    let p = pronoun(plan);
    let item = plan.item.zh;
    let m = plan.item.zh_measure;
    let bx = plan.item.zh_box;
    let n = structure.start;
    let mut out = match plan.start_variant % 3 {
        0 => format!("{name}有 {n} {m}{item}。"),
        1 => format!("{name}原来有 {n} {m}{item}。"),
        _ => format!("一开始，{name}有 {n} {m}{item}。"),
    };
    for (op, sp) in structure.ops.iter().zip(&plan.steps) {
        let v = sp.question_variant;
        let clause = match *op {
            Op::Gain(k) => match v % 4 {
                0 => format!("{p}又买了 {k} {m}{item}。"),
                1 => format!("{p}又找到了 {k} {m}{item}。"),
                2 => format!("朋友又送给{p} {k} {m}{item}。"),
                _ => format!("{p}在游戏中赢了 {k} {m}{item}。"),
            },
            Op::Lose(k) => match v % if plan.item.edible { 4 } else { 3 } {
                0 => format!("{p}把 {k} {m}{item}送给了朋友。"),
                1 => format!("{p}卖掉了其中 {k} {m}。"),
                2 => format!("{p}弄丢了 {k} {m}{item}。"),
                _ => format!("{p}吃掉了其中 {k} {m}。"),
            },
            Op::Boxes { count, each } => match v % 3 {
                0 => format!("{p}又买了 {count} {bx}{item}，每{bx} {each} {m}。"),
                1 => format!("{p}买了 {count} {bx}{item}，每{bx}有 {each} {m}。"),
                _ => format!("朋友送给{p} {count} {bx}{item}，每{bx}里有 {each} {m}。"),
            },
            Op::Share(parts) if sp.friends => format!(
                "{p}和 {} 个朋友平均分这些{item}，每人分得一样多。",
                parts - 1
            ),
            Op::Share(parts) => match v % 2 {
                0 => format!("{p}把{item}平均分成 {parts} 份，自己留下一份。"),
                _ => format!("{p}把所有的{item}平均分成 {parts} 堆，留下其中一堆。"),
            },
        };
        out.push_str(CONNECTIVES[(sp.connective % 4) as usize]);
        out.push_str(&clause);
    }
    out.push_str(&match plan.question_variant % 3 {
        0 => format!("{name}现在有多少{m}{item}？"),
        1 => format!("{p}最后有多少{m}{item}？"),
        _ => format!("现在{name}一共有多少{m}{item}？"),
    });
    out
}

pub(crate) fn step(plan: &Plan, sp: &StepPlan, t: &StepTrace) -> String {
    let p = pronoun(plan);
    let item = plan.item.zh;
    let m = plan.item.zh_measure;
    let bx = plan.item.zh_box;
    let eq = t.result_equation();
    let r = t.after;
    let v = sp.solution_variant;
    match t.op {
        Op::Gain(k) => match v % 3 {
            0 => format!("{p}又得到 {k} {m}，现在有 {eq} {m}{item}。"),
            1 => format!("{eq}，所以{p}有 {r} {m}{item}。"),
            _ => format!("现在{p}有 {eq} {m}{item}。"),
        },
        Op::Lose(_) => match v % 3 {
            0 => format!("{p}还剩 {eq} {m}{item}。"),
            1 => format!("{eq}，所以{p}还有 {r} {m}{item}。"),
            _ => format!("现在{p}有 {eq} {m}{item}。"),
        },
        Op::Boxes { count, each } => {
            let product = Equation::new(count as i64, '×', each as i64, t.product);
            match v % 3 {
                0 => format!("{count} {bx}一共有 {product} {m}，所以{p}有 {eq} {m}{item}。"),
                1 => format!("{product}，{eq}，所以{p}有 {r} {m}{item}。"),
                _ => format!("{p}又得到 {product} {m}{item}，现在有 {eq} {m}。"),
            }
        }
        Op::Share(parts) if sp.friends => {
            let people = Equation::new(parts as i64 - 1, '+', 1, parts as i64);
            format!("一共有 {people} 个人，每人分到 {eq} {m}{item}。")
        }
        Op::Share(_) => match v % 2 {
            0 => format!("{p}留下 {eq} {m}{item}。"),
            _ => format!("每份有 {eq} {m}，所以{p}有 {r} {m}{item}。"),
        },
    }
}

/// Two consecutive gains or losses in one equation, the quantity between them unwritten: `现在她有
/// 48 + 24 - 12 = 60 个苹果。`
pub(crate) fn terse_steps(plan: &Plan, expression: &str) -> String {
    let p = pronoun(plan);
    format!(
        "现在{p}有 {expression} {}{}。",
        plan.item.zh_measure, plan.item.zh
    )
}
