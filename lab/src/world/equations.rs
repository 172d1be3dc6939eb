//! The arithmetic notation shared by both languages, and a parser that finds it in any text.

use std::fmt;
use std::ops::Range;

use super::tokens::split_tokens;

/// One written equation `a op b = c`, as rendered in every solution of the world (both
/// languages): `+`, `-`, `×` and `÷`, numbers as plain digits, spaces around every symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Equation {
    pub a: i64,
    pub op: char,
    pub b: i64,
    pub c: i64,
}

/// The operator symbols the world writes.
pub const OPERATORS: [char; 4] = ['+', '-', '×', '÷'];

impl Equation {
    pub fn new(a: i64, op: char, b: i64, c: i64) -> Self {
        Equation { a, op, b, c }
    }

    /// The correct value of `a op b`, or `None` for an unknown operator, a division by zero or
    /// a division with a remainder. `*` and `/` are read as `×` and `÷`.
    pub fn expected(&self) -> Option<i64> {
        match self.op {
            '+' => self.a.checked_add(self.b),
            '-' => self.a.checked_sub(self.b),
            '×' | '*' => self.a.checked_mul(self.b),
            '÷' | '/' => (self.b != 0 && self.a % self.b == 0).then(|| self.a / self.b),
            _ => None,
        }
    }

    pub fn is_correct(&self) -> bool {
        self.expected() == Some(self.c)
    }

    /// A two-digit addition or subtraction worked out tens first, as the careful writer does:
    /// `38 + 45 = 83` → (`38 + 40 = 78`, `78 + 5 = 83`). `None` where there is nothing to work
    /// out (a one-digit or round second operand, another operation, a wrong result).
    pub fn tens_first(&self) -> Option<(Equation, Equation)> {
        if !matches!(self.op, '+' | '-') || self.b < 10 || self.b % 10 == 0 || !self.is_correct() {
            return None;
        }
        let round = self.b - self.b % 10;
        let tens = Equation::new(
            self.a,
            self.op,
            round,
            Equation::new(self.a, self.op, round, 0).expected()?,
        );
        let units = Equation::new(tens.c, self.op, self.b % 10, self.c);
        Some((tens, units))
    }

    /// Whether `tens, units` have the shape of a [`tens_first`](Self::tens_first) pair: the same
    /// `+` or `-`, a round ten first, then one digit on its result. Right or wrong: the shape of
    /// the working, not its arithmetic.
    pub fn is_tens_first_pair(tens: &Equation, units: &Equation) -> bool {
        matches!(tens.op, '+' | '-')
            && tens.op == units.op
            && tens.b >= 10
            && tens.b % 10 == 0
            && (1..10).contains(&units.b)
            && units.a == tens.c
    }

    /// The same left-hand side with the correct result.
    pub fn corrected(&self) -> Option<Equation> {
        self.expected().map(|c| Equation { c, ..*self })
    }
}

impl fmt::Display for Equation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {} = {}", self.a, self.op, self.b, self.c)
    }
}

/// Every `a op b = c` in `text`, in order: five consecutive tokens number, operator (`+ - × ÷`,
/// or `* /`), number, `=`, number. Numbers too large for `i64` are skipped.
pub fn find_equations(text: &str) -> Vec<Equation> {
    find_equation_spans(text)
        .into_iter()
        .map(|(_, eq)| eq)
        .collect()
}

/// [`find_equations`] with where each equation is written: the byte range in `text` from its
/// first number to its result.
pub fn find_equation_spans(text: &str) -> Vec<(Range<usize>, Equation)> {
    let tokens = split_tokens(text);
    // Tokens are slices of `text`, so their place in it is their offset from its start.
    let offset = |t: &str| t.as_ptr() as usize - text.as_ptr() as usize;
    let number = |t: &str| -> Option<i64> {
        if t.bytes().all(|b| b.is_ascii_digit()) {
            t.parse().ok()
        } else {
            None
        }
    };
    let operator = |t: &str| -> Option<char> {
        let mut chars = t.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) if matches!(c, '+' | '-' | '×' | '÷' | '*' | '/') => Some(c),
            _ => None,
        }
    };
    let mut found = Vec::new();
    for w in tokens.windows(5) {
        if let (Some(a), Some(op), Some(b), true, Some(c)) = (
            number(w[0]),
            operator(w[1]),
            number(w[2]),
            w[3] == "=",
            number(w[4]),
        ) {
            let span = offset(w[0])..offset(w[4]) + w[4].len();
            found.push((span, Equation { a, op, b, c }));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_equations_in_both_languages() {
        let en = "She has 24 + 15 = 39 apples. Wait, that is wrong: 3 × 5 = 16. 40 ÷ 4 = 10.";
        let eqs = find_equations(en);
        assert_eq!(
            eqs,
            vec![
                Equation::new(24, '+', 15, 39),
                Equation::new(3, '×', 5, 16),
                Equation::new(40, '÷', 4, 10)
            ]
        );
        assert!(eqs[0].is_correct() && !eqs[1].is_correct() && eqs[2].is_correct());
        assert_eq!(eqs[1].corrected(), Some(Equation::new(3, '×', 5, 15)));
        let zh = "等等，我检查一下：23 - 20 = 3。所以他有 8 + 5 = 13 个。";
        assert_eq!(
            find_equations(zh),
            vec![Equation::new(23, '-', 20, 3), Equation::new(8, '+', 5, 13)]
        );
        assert!(find_equations("The answer is 11. 3 + = 4").is_empty());
        let spans = find_equation_spans(zh);
        assert_eq!(&zh[spans[0].0.clone()], "23 - 20 = 3");
        assert_eq!(&zh[spans[1].0.clone()], "8 + 5 = 13");
        assert_eq!(Equation::new(7, '÷', 2, 3).expected(), None);
        assert_eq!(Equation::new(3, '×', 5, 15).to_string(), "3 × 5 = 15");
    }
}
