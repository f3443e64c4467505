//! Preconditions on symbols, derived from layers instead of guessing sizes: a 5x5 valid
//! convolution on `H` gives the output `H - 4`, whose size must be at least 1, which
//! [`Constraint::simplify`] turns into the readable `H >= 5`. A net's signature lists its
//! [`Preconditions`]; each call with concrete shapes is checked against them.

use super::{Atom, SYMBOL_MIN, SymDim, Symbol, ceil_div_i64};
use std::collections::BTreeSet;
use std::fmt;

/// A condition on dims that must hold for a program to be valid.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Constraint {
    /// `dim >= min`: an output size must be at least 1.
    AtLeast {
        /// The constrained dim.
        dim: SymDim,
        /// Its smallest allowed value.
        min: i64,
    },
    /// `dim <= max`: what an `AtLeast` on a negated dim becomes once solved.
    AtMost {
        /// The constrained dim.
        dim: SymDim,
        /// Its largest allowed value.
        max: i64,
    },
    /// `left == right`: two sizes that must agree.
    Equal {
        /// The first dim.
        left: SymDim,
        /// The second dim.
        right: SymDim,
    },
}

/// What is known about a constraint once simplified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Truth {
    /// It holds for every value of the symbols (at least [`SYMBOL_MIN`]).
    Always,
    /// It holds for no value of the symbols: the program is wrong whatever the input.
    Never,
    /// It depends on the symbols; the simplified, equivalent constraint.
    Depends(Constraint),
}

impl Constraint {
    /// `dim >= min`.
    pub fn at_least(dim: SymDim, min: i64) -> Self {
        Constraint::AtLeast { dim, min }
    }

    /// `dim <= max`.
    pub fn at_most(dim: SymDim, max: i64) -> Self {
        Constraint::AtMost { dim, max }
    }

    /// `left == right`.
    pub fn equal(left: SymDim, right: SymDim) -> Self {
        Constraint::Equal { left, right }
    }

    /// Decide the constraint if it does not depend on the symbols, else solve it for its
    /// symbol where it has one: `a*H + b >= c` becomes `H >= ceil((c - b)/a)`,
    /// `x//k + b >= c` becomes `x >= k*(c - b)` (and on, into `x`), `2*H == 10` becomes
    /// `H == 5`. Every step is an equivalence, so the result means the same as `self`;
    /// overflow only stops the solving early.
    pub fn simplify(self) -> Truth {
        match self {
            Constraint::AtLeast { dim, min } => solve_bound(dim, min, true),
            Constraint::AtMost { dim, max } => solve_bound(dim, max, false),
            Constraint::Equal { left, right } => solve_equal(left, right),
        }
    }

    /// Whether it holds for these symbol values; `None` if some value is missing.
    pub fn holds(&self, env: &impl Fn(&str) -> Option<i64>) -> Option<bool> {
        Some(match self {
            Constraint::AtLeast { dim, min } => dim.eval(env)? >= *min,
            Constraint::AtMost { dim, max } => dim.eval(env)? <= *max,
            Constraint::Equal { left, right } => left.eval(env)? == right.eval(env)?,
        })
    }

    /// Every symbol it mentions.
    pub fn symbols(&self) -> BTreeSet<Symbol> {
        match self {
            Constraint::AtLeast { dim, .. } | Constraint::AtMost { dim, .. } => dim.symbols(),
            Constraint::Equal { left, right } => {
                let mut all = left.symbols();
                all.extend(right.symbols());
                all
            }
        }
    }

    /// The same constraint with symbols replaced (a callee's `H` by the caller's dim), not
    /// yet simplified.
    pub fn substitute(&self, map: &impl Fn(&Symbol) -> Option<SymDim>) -> Constraint {
        match self {
            Constraint::AtLeast { dim, min } => Constraint::at_least(dim.substitute(map), *min),
            Constraint::AtMost { dim, max } => Constraint::at_most(dim.substitute(map), *max),
            Constraint::Equal { left, right } => {
                Constraint::equal(left.substitute(map), right.substitute(map))
            }
        }
    }

    /// The symbol and bound when this is `symbol >= min` on a bare symbol.
    fn lower_bound_of(&self) -> Option<(&Symbol, i64)> {
        match self {
            Constraint::AtLeast { dim, min } => Some((dim.as_symbol()?, *min)),
            Constraint::Equal { left, right } => Some((left.as_symbol()?, right.as_const()?)),
            Constraint::AtMost { .. } => None,
        }
    }

    /// The symbol and bound when this is `symbol <= max` on a bare symbol.
    fn upper_bound_of(&self) -> Option<(&Symbol, i64)> {
        match self {
            Constraint::AtMost { dim, max } => Some((dim.as_symbol()?, *max)),
            Constraint::Equal { left, right } => Some((left.as_symbol()?, right.as_const()?)),
            Constraint::AtLeast { .. } => None,
        }
    }
}

/// Solve `dim >= bound` (`at_least`) or `dim <= bound` for its one atom, as far as it goes.
fn solve_bound(mut dim: SymDim, mut bound: i64, mut at_least: bool) -> Truth {
    let rebuild = |dim: SymDim, bound: i64, at_least: bool| {
        if at_least {
            Constraint::at_least(dim, bound)
        } else {
            Constraint::at_most(dim, bound)
        }
    };
    loop {
        if let Some(value) = dim.as_const() {
            let holds = if at_least {
                value >= bound
            } else {
                value <= bound
            };
            return if holds { Truth::Always } else { Truth::Never };
        }
        let Some((coef, atom, constant)) = dim.as_single_atom_affine() else {
            return Truth::Depends(rebuild(dim, bound, at_least));
        };
        // coef*T + constant >= bound  <=>  coef*T >= bound - constant, then divide by coef
        // (rounding inwards; a negative coef flips the direction).
        let step = bound.checked_sub(constant).and_then(|target| {
            match (coef > 0, at_least) {
                (true, true) => ceil_div_i64(target, coef).map(|b| (b, true)),
                (true, false) => target.checked_div_euclid(coef).map(|b| (b, false)),
                // coef*T >= target with coef < 0  <=>  T <= floor(target / coef).
                (false, true) => floor_div_i64(target, coef).map(|b| (b, false)),
                (false, false) => ceil_div_signed(target, coef).map(|b| (b, true)),
            }
        });
        let Some((atom_bound, atom_at_least)) = step else {
            return Truth::Depends(rebuild(dim, bound, at_least));
        };
        match atom {
            Atom::Symbol(_) => {
                let symbol_dim = SymDim::from_atom(atom.clone());
                // Symbols are sizes: at least SYMBOL_MIN is known, anything below is not.
                return if atom_at_least && atom_bound <= SYMBOL_MIN {
                    Truth::Always
                } else if !atom_at_least && atom_bound < SYMBOL_MIN {
                    Truth::Never
                } else {
                    Truth::Depends(rebuild(symbol_dim, atom_bound, atom_at_least))
                };
            }
            Atom::Floor(floor) => {
                // x//k >= m  <=>  x >= k*m;   x//k <= m  <=>  x <= k*m + k - 1.
                let k = floor.divisor;
                let inner_bound = if atom_at_least {
                    atom_bound.checked_mul(k)
                } else {
                    atom_bound.checked_mul(k).and_then(|b| b.checked_add(k - 1))
                };
                let Some(inner_bound) = inner_bound else {
                    return Truth::Depends(rebuild(dim, bound, at_least));
                };
                dim = SymDim {
                    terms: floor.inner.clone(),
                };
                bound = inner_bound;
                at_least = atom_at_least;
            }
            Atom::Unknown(_) => {
                let unknown = SymDim::from_atom(atom.clone());
                return Truth::Depends(rebuild(unknown, atom_bound, atom_at_least));
            }
        }
    }
}

/// `floor(a / b)` for any non-zero `b`, without overflow.
fn floor_div_i64(a: i64, b: i64) -> Option<i64> {
    let q = a.checked_div(b)?;
    if a % b != 0 && ((a < 0) != (b < 0)) {
        q.checked_sub(1)
    } else {
        Some(q)
    }
}

/// `ceil(a / b)` for any non-zero `b`, without overflow.
fn ceil_div_signed(a: i64, b: i64) -> Option<i64> {
    let q = a.checked_div(b)?;
    if a % b != 0 && ((a < 0) == (b < 0)) {
        q.checked_add(1)
    } else {
        Some(q)
    }
}

/// Decide `left == right` when the difference is constant, or solve it when it is
/// `a*S + b` in one symbol: `S == -b/a` if that is a whole size, else never.
fn solve_equal(left: SymDim, right: SymDim) -> Truth {
    let difference = left.clone() - right.clone();
    if let Some(value) = difference.as_const() {
        return if value == 0 {
            Truth::Always
        } else {
            Truth::Never
        };
    }
    if let Some((coef, Atom::Symbol(symbol), constant)) = difference.as_single_atom_affine() {
        let symbol = symbol.clone();
        // coef*S + constant == 0. Overflow while solving keeps the constraint as written.
        let Some(target) = constant.checked_neg() else {
            return Truth::Depends(Constraint::equal(left, right));
        };
        if target.checked_rem(coef) != Some(0) {
            return match target.checked_rem(coef) {
                Some(_) => Truth::Never,
                None => Truth::Depends(Constraint::equal(left, right)),
            };
        }
        return match target.checked_div(coef) {
            Some(value) if value >= SYMBOL_MIN => Truth::Depends(Constraint::equal(
                SymDim::from_symbol(symbol),
                SymDim::constant(value),
            )),
            Some(_) => Truth::Never,
            None => Truth::Depends(Constraint::equal(left, right)),
        };
    }
    Truth::Depends(Constraint::equal(left, right))
}

impl fmt::Display for Constraint {
    /// `H >= 5`, `(H - 1)//2 + W <= 7`, `H == 2*W`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Constraint::AtLeast { dim, min } => write!(f, "{dim} >= {min}"),
            Constraint::AtMost { dim, max } => write!(f, "{dim} <= {max}"),
            Constraint::Equal { left, right } => write!(f, "{left} == {right}"),
        }
    }
}

/// A precondition that fails for concrete symbol values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The failing constraint.
    pub constraint: Constraint,
    /// The values of its symbols, in name order.
    pub bindings: Vec<(Symbol, i64)>,
}

impl fmt::Display for Violation {
    /// `H >= 5 does not hold with H = 3`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} does not hold", self.constraint)?;
        for (i, (symbol, value)) in self.bindings.iter().enumerate() {
            let lead = if i == 0 { " with " } else { ", " };
            write!(f, "{lead}{symbol} = {value}")?;
        }
        Ok(())
    }
}

/// The preconditions collected for one net (or one scope): simplified, without repeats,
/// in the order they were found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Preconditions {
    constraints: Vec<Constraint>,
}

impl Preconditions {
    /// No preconditions: symbols only need to be at least [`SYMBOL_MIN`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Require `constraint`. `Ok` when it always holds or was recorded; `Err` with the
    /// simplified constraint when it can never hold (or contradicts a recorded bound on
    /// the same symbol), which the caller reports (E0301, E0302, E0312).
    pub fn require(&mut self, constraint: Constraint) -> Result<(), Constraint> {
        let original = constraint.clone();
        match constraint.simplify() {
            Truth::Always => Ok(()),
            Truth::Never => Err(original),
            Truth::Depends(simple) => {
                if let Some((symbol, low)) = simple.lower_bound_of()
                    && self.upper_bound(symbol).is_some_and(|high| low > high)
                {
                    return Err(simple);
                }
                if let Some((symbol, high)) = simple.upper_bound_of()
                    && high < self.lower_bound(symbol)
                {
                    return Err(simple);
                }
                self.record(simple);
                Ok(())
            }
        }
    }

    /// Add a simplified constraint unless it repeats or is implied by a recorded bound on
    /// the same symbol; a new, stronger bound replaces the weaker one (`H >= 3` then
    /// `H >= 5` lists only `H >= 5`).
    fn record(&mut self, simple: Constraint) {
        if self.constraints.contains(&simple) {
            return;
        }
        if let Constraint::AtLeast { dim, min } = &simple
            && let Some(symbol) = dim.as_symbol()
        {
            let weaker = |c: &Constraint| matches!(c, Constraint::AtLeast { dim: d, min: m } if d.as_symbol() == Some(symbol) && m <= min);
            if self.lower_bound(symbol) >= *min {
                return;
            }
            self.constraints.retain(|c| !weaker(c));
        }
        if let Constraint::AtMost { dim, max } = &simple
            && let Some(symbol) = dim.as_symbol()
        {
            let weaker = |c: &Constraint| matches!(c, Constraint::AtMost { dim: d, max: m } if d.as_symbol() == Some(symbol) && m >= max);
            if self.upper_bound(symbol).is_some_and(|high| high <= *max) {
                return;
            }
            self.constraints.retain(|c| !weaker(c));
        }
        self.constraints.push(simple);
    }

    /// Require `dim >= min` (an output size must be at least 1: `require_at_least(out, 1)`).
    pub fn require_at_least(&mut self, dim: &SymDim, min: i64) -> Result<(), Constraint> {
        self.require(Constraint::at_least(dim.clone(), min))
    }

    /// The recorded constraints, simplified, in the order found.
    pub fn iter(&self) -> impl Iterator<Item = &Constraint> {
        self.constraints.iter()
    }

    /// Whether nothing beyond `symbol >= SYMBOL_MIN` is required.
    pub fn is_empty(&self) -> bool {
        self.constraints.is_empty()
    }

    /// The smallest value `symbol` may take given the recorded bounds on it alone.
    pub fn lower_bound(&self, symbol: &Symbol) -> i64 {
        self.iter()
            .filter_map(Constraint::lower_bound_of)
            .filter(|(s, _)| *s == symbol)
            .map(|(_, low)| low)
            .fold(SYMBOL_MIN, i64::max)
    }

    /// The largest value `symbol` may take given the recorded bounds on it alone, if any.
    pub fn upper_bound(&self, symbol: &Symbol) -> Option<i64> {
        self.iter()
            .filter_map(Constraint::upper_bound_of)
            .filter(|(s, _)| *s == symbol)
            .map(|(_, high)| high)
            .min()
    }

    /// Check every precondition against concrete symbol values (a call of the net) and
    /// return those that fail, with the values of their symbols. A precondition whose
    /// symbols are not all bound is skipped, not failed.
    pub fn check(&self, env: &impl Fn(&str) -> Option<i64>) -> Vec<Violation> {
        self.iter()
            .filter(|c| c.holds(env) == Some(false))
            .map(|c| Violation {
                constraint: c.clone(),
                bindings: c
                    .symbols()
                    .into_iter()
                    .filter_map(|s| Some((s.clone(), env(s.as_str())?)))
                    .collect(),
            })
            .collect()
    }
}

impl fmt::Display for Preconditions {
    /// `H >= 5, W >= 5`, as a net's signature lists them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in self.constraints.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h() -> SymDim {
        SymDim::symbol("H")
    }

    fn depends(c: Constraint) -> String {
        match c.simplify() {
            Truth::Depends(simple) => simple.to_string(),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn affine_in_one_symbol_is_solved() {
        assert_eq!(depends(Constraint::at_least(h() - 4, 1)), "H >= 5");
        assert_eq!(depends(Constraint::at_least(h() * 2 - 3, 4)), "H >= 4");
        assert_eq!(depends(Constraint::at_least(-h() + 10, 3)), "H <= 7");
        assert_eq!(depends(Constraint::at_most(h() * 3, 10)), "H <= 3");
        assert_eq!(depends(Constraint::at_most(-h() * 2, -5)), "H >= 3");
    }

    #[test]
    fn floors_are_solved_into_their_inner_dim() {
        // conv(H, k=3, s=2, p=0) = (H - 3)//2 + 1 >= 1  <=>  H >= 3.
        let out = (h() - 3).floor_div(2) + 1;
        assert_eq!(depends(Constraint::at_least(out, 1)), "H >= 3");
        assert_eq!(depends(Constraint::at_least(h().floor_div(2), 4)), "H >= 8");
        assert_eq!(depends(Constraint::at_most(h().floor_div(2), 4)), "H <= 9");
    }

    #[test]
    fn trivial_and_impossible_bounds_are_decided() {
        assert_eq!(Constraint::at_least(h(), 1).simplify(), Truth::Always);
        assert_eq!(
            Constraint::at_least((h() - 1).floor_div(2) + 1, 1).simplify(),
            Truth::Always
        );
        assert_eq!(Constraint::at_most(h(), 0).simplify(), Truth::Never);
        assert_eq!(
            Constraint::at_least(SymDim::constant(0), 1).simplify(),
            Truth::Never
        );
        assert_eq!(
            Constraint::at_least(SymDim::constant(3), 1).simplify(),
            Truth::Always
        );
    }

    #[test]
    fn equalities_in_one_symbol_are_solved() {
        assert_eq!(
            depends(Constraint::equal(h() * 2, SymDim::constant(10))),
            "H == 5"
        );
        assert_eq!(
            Constraint::equal(h() * 2, SymDim::constant(11)).simplify(),
            Truth::Never
        );
        assert_eq!(
            Constraint::equal(h() + 1, h() + 1).simplify(),
            Truth::Always
        );
        let w = SymDim::symbol("W");
        assert_eq!(depends(Constraint::equal(h(), w * 2)), "H == 2*W");
    }

    #[test]
    fn several_symbols_stay_as_written() {
        let w = SymDim::symbol("W");
        assert_eq!(depends(Constraint::at_least(h() + w, 9)), "H + W >= 9");
    }

    #[test]
    fn require_records_once_and_rejects_contradictions() {
        let mut pre = Preconditions::new();
        assert_eq!(pre.require_at_least(&(h() - 4), 1), Ok(()));
        assert_eq!(pre.require_at_least(&(h() - 4), 1), Ok(()));
        assert_eq!(pre.to_string(), "H >= 5");
        assert_eq!(pre.lower_bound(&Symbol::new("H")), 5);
        assert!(pre.require(Constraint::at_most(h(), 3)).is_err());
        assert!(pre.require_at_least(&SymDim::constant(-1), 1).is_err());
        assert_eq!(pre.iter().count(), 1);
    }

    #[test]
    fn check_reports_failures_with_values() {
        let mut pre = Preconditions::new();
        pre.require_at_least(&(h() - 4), 1).unwrap();
        let violations = pre.check(&|s| (s == "H").then_some(3));
        assert_eq!(violations.len(), 1);
        assert_eq!(violations[0].to_string(), "H >= 5 does not hold with H = 3");
        assert!(pre.check(&|_| Some(5)).is_empty());
        assert!(pre.check(&|_| None).is_empty());
    }

    #[test]
    fn overflow_stops_solving_without_changing_meaning() {
        let c = Constraint::at_least(h() * 2 + i64::MAX, i64::MIN);
        assert!(matches!(c.simplify(), Truth::Depends(_)));
    }
}
