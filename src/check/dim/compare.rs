//! Deciding whether two dims are equal for every value of their symbols, and finding a
//! counterexample when they are not (E0312: `with H = 5: 6 vs 5`).
//!
//! Three tools, cheapest first:
//!
//! 1. the normal form: structurally equal dims are equal;
//! 2. periodicity: when the difference `f = a - b` is built from symbols and floor terms
//!    without products, shifting a symbol by `M` (the least common multiple of the
//!    divisors, nested ones multiplied) changes `f` by a constant `Δ`. If every `Δ` is 0,
//!    `f` is periodic and is zero everywhere iff it is zero on one `M x ... x M` box; if
//!    some `Δ` is not 0, `f` cannot be zero everywhere;
//! 3. a search over small values of the symbols (smallest first, so the counterexample is
//!    easy to read), respecting the recorded preconditions.
//!
//! Anything else is [`Comparison::Unknown`]: never a guess.

use super::{Atom, Poly, Preconditions, SYMBOL_MIN, SymDim, Symbol};
use std::collections::BTreeSet;
use std::fmt;

/// Values of the symbols for which two dims differ, and both values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counterexample {
    /// The symbol values, in name order.
    pub bindings: Vec<(Symbol, i64)>,
    /// The first dim's value there.
    pub left: i64,
    /// The second dim's value there.
    pub right: i64,
}

impl fmt::Display for Counterexample {
    /// `with H = 5: 6 vs 5`, or just `6 vs 5` when no symbol is involved.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.bindings.is_empty() {
            f.write_str("with ")?;
            for (i, (symbol, value)) in self.bindings.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{symbol} = {value}")?;
            }
            f.write_str(": ")?;
        }
        write!(f, "{} vs {}", self.left, self.right)
    }
}

/// The outcome of comparing two dims.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Comparison {
    /// Equal for every value of the symbols (proved, not sampled).
    Equal,
    /// Different for the values in the counterexample, which satisfy the preconditions.
    Differ(Counterexample),
    /// Neither proved equal nor shown to differ (unknown parts, products of symbols that
    /// the search could not separate, too many symbols, or preconditions that exclude
    /// every counterexample the search tried).
    Unknown,
}

/// Most symbol assignments one comparison evaluates, to bound the checker's time.
const SEARCH_BUDGET: u64 = 1 << 18;

/// Values tried per symbol when there are at most three symbols (all combinations).
const SEARCH_SPAN: i64 = 64;

/// Largest period for which the periodicity proof runs.
const MAX_PERIOD: i64 = 1 << 12;

/// Whether `a` and `b` are equal for every value of the symbols, by normal form or by the
/// periodicity argument. `false` means "not proved", not "different".
pub fn provably_equal(a: &SymDim, b: &SymDim) -> bool {
    a == b || periodic_zero(&(a.clone() - b.clone())) == Some(true)
}

/// A counterexample to `a == b` among symbol values that satisfy `preconditions`, if one
/// can be found.
pub fn may_differ(a: &SymDim, b: &SymDim, preconditions: &Preconditions) -> Option<Counterexample> {
    match compare(a, b, preconditions) {
        Comparison::Differ(counterexample) => Some(counterexample),
        Comparison::Equal | Comparison::Unknown => None,
    }
}

/// Compare `a` and `b`: proved equal, a counterexample (whose symbol values satisfy
/// `preconditions` and are at least [`SYMBOL_MIN`]), or an honest unknown.
pub fn compare(a: &SymDim, b: &SymDim, preconditions: &Preconditions) -> Comparison {
    if a == b {
        return Comparison::Equal;
    }
    if a.has_unknown() || b.has_unknown() {
        return Comparison::Unknown;
    }
    let difference = a.clone() - b.clone();
    if difference.has_unknown() {
        return Comparison::Unknown;
    }
    let period = period(&difference.terms);
    if period.is_some() && periodic_zero(&difference) == Some(true) {
        return Comparison::Equal;
    }
    match search(a, b, preconditions, period) {
        Some(counterexample) => Comparison::Differ(counterexample),
        None => Comparison::Unknown,
    }
}

/// `Some(true)` if `f` is zero for all integer symbol values, `Some(false)` if it is not,
/// `None` when `f` is outside the periodic fragment or its period is too large.
fn periodic_zero(f: &SymDim) -> Option<bool> {
    if f.has_unknown() {
        return None;
    }
    let period = period(&f.terms)?;
    let symbols: Vec<Symbol> = f.symbols().into_iter().collect();
    for symbol in &symbols {
        if shift(&f.terms, symbol, period)? != 0 {
            return Some(false);
        }
    }
    // Periodic with period `period` in every symbol: one box of residues covers all values.
    let count = u32::try_from(symbols.len()).ok()?;
    let box_size = u64::try_from(period).ok()?.checked_pow(count)?;
    if box_size > SEARCH_BUDGET {
        return None;
    }
    let mut values = vec![0; symbols.len()];
    loop {
        let env = |name: &str| {
            let i = symbols.iter().position(|s| s.as_str() == name)?;
            Some(values[i])
        };
        if f.eval(&env)? != 0 {
            return Some(false);
        }
        // Odometer over 0..period in every coordinate.
        let mut i = 0;
        loop {
            if i == values.len() {
                return Some(true);
            }
            values[i] += 1;
            if values[i] < period {
                break;
            }
            values[i] = 0;
            i += 1;
        }
    }
}

/// The period `M` of the fragment without products: the least common multiple of the
/// products of divisors along every chain of nested floor terms. `None` outside the
/// fragment (a product of non-constant atoms, an unknown) or when `M` is too large.
fn period(p: &Poly) -> Option<i64> {
    let mut m = 1;
    for mono in p.keys() {
        match mono.0.as_slice() {
            [] | [Atom::Symbol(_)] => {}
            [Atom::Floor(floor)] => {
                let inner = period(&floor.inner)?;
                m = lcm(m, inner.checked_mul(floor.divisor)?)?;
            }
            _ => return None,
        }
    }
    (m <= MAX_PERIOD).then_some(m)
}

fn lcm(a: i64, b: i64) -> Option<i64> {
    let mut x = a;
    let mut y = b;
    while y != 0 {
        (x, y) = (y, x % y);
    }
    (a / x).checked_mul(b)
}

/// `f(s + period) - f(s)` for the periodic fragment; a constant because every floor
/// term's inner shift is a multiple of its divisor when `period` is as [`period`] gives.
fn shift(p: &Poly, symbol: &Symbol, period: i64) -> Option<i64> {
    let mut total: i64 = 0;
    for (mono, &coef) in p {
        let delta = match mono.0.as_slice() {
            [] => 0,
            [Atom::Symbol(s)] if s == symbol => period,
            [Atom::Symbol(_)] => 0,
            [Atom::Floor(floor)] => {
                let inner = shift(&floor.inner, symbol, period)?;
                if inner % floor.divisor != 0 {
                    return None;
                }
                inner / floor.divisor
            }
            _ => return None,
        };
        total = total.checked_add(coef.checked_mul(delta)?)?;
    }
    Some(total)
}

/// Search small symbol values, smallest maximum first, for a point satisfying the
/// preconditions where `a` and `b` differ.
fn search(
    a: &SymDim,
    b: &SymDim,
    preconditions: &Preconditions,
    period: Option<i64>,
) -> Option<Counterexample> {
    let symbols = relevant_symbols(a, b, preconditions);
    let count = symbols.len();
    let lows: Vec<i64> = symbols
        .iter()
        .map(|s| preconditions.lower_bound(s).max(SYMBOL_MIN))
        .collect();
    let highs: Vec<Option<i64>> = symbols
        .iter()
        .map(|s| preconditions.upper_bound(s))
        .collect();
    let span = search_span(count, period);
    let mut values = lows.clone();
    let mut evaluated: u64 = 0;
    // Shell by shell: every point whose largest offset from the lower bounds is `radius`,
    // so the first counterexample found has the smallest values.
    for radius in 0..span {
        let mut offsets = vec![0i64; count];
        loop {
            if offsets.contains(&radius) || count == 0 {
                let mut in_range = true;
                for i in 0..count {
                    values[i] = lows[i].checked_add(offsets[i])?;
                    if highs[i].is_some_and(|high| values[i] > high) {
                        in_range = false;
                    }
                }
                if in_range {
                    evaluated += 1;
                    if let Some(found) = differs_at(a, b, &symbols, &values, preconditions) {
                        return Some(found);
                    }
                    if evaluated >= SEARCH_BUDGET {
                        return None;
                    }
                }
            }
            if count == 0 {
                return None;
            }
            // Odometer over 0..=radius in every coordinate, the last symbol fastest, so
            // points come in lexicographic order within a shell.
            let mut i = count;
            let mut wrapped = true;
            while i > 0 {
                i -= 1;
                offsets[i] += 1;
                if offsets[i] <= radius {
                    wrapped = false;
                    break;
                }
                offsets[i] = 0;
            }
            if wrapped {
                break;
            }
        }
    }
    None
}

/// Values per symbol: all of `SEARCH_SPAN` for up to three symbols, fewer for more so the
/// box stays within the budget, but two periods when that fits (a non-zero shift is then
/// sure to show within the box).
fn search_span(count: usize, period: Option<i64>) -> i64 {
    let fits = |span: i64| {
        u64::try_from(span)
            .ok()
            .and_then(|s| s.checked_pow(u32::try_from(count).ok()?))
            .is_some_and(|size| size <= SEARCH_BUDGET)
    };
    let mut span = SEARCH_SPAN;
    while span > 2 && !fits(span) {
        span /= 2;
    }
    if let Some(two_periods) = period.and_then(|p| p.checked_mul(2))
        && two_periods > span
        && fits(two_periods)
    {
        span = two_periods;
    }
    span
}

/// The symbols of `a` and `b`, plus those of every precondition that shares a symbol with
/// them (transitively), so a counterexample satisfies the preconditions that matter.
fn relevant_symbols(a: &SymDim, b: &SymDim, preconditions: &Preconditions) -> Vec<Symbol> {
    let mut symbols: BTreeSet<Symbol> = a.symbols();
    symbols.extend(b.symbols());
    loop {
        let before = symbols.len();
        for constraint in preconditions.iter() {
            let mentioned = constraint.symbols();
            if !mentioned.is_disjoint(&symbols) {
                symbols.extend(mentioned);
            }
        }
        if symbols.len() == before {
            return symbols.into_iter().collect();
        }
    }
}

fn differs_at(
    a: &SymDim,
    b: &SymDim,
    symbols: &[Symbol],
    values: &[i64],
    preconditions: &Preconditions,
) -> Option<Counterexample> {
    let env = |name: &str| {
        let i = symbols.iter().position(|s| s.as_str() == name)?;
        Some(values[i])
    };
    // A precondition that cannot be evaluated here does not involve these symbols only;
    // it was left out of `relevant_symbols` because it shares none of them.
    if preconditions.iter().any(|c| c.holds(&env) == Some(false)) {
        return None;
    }
    let left = a.eval(&env)?;
    let right = b.eval(&env)?;
    (left != right).then(|| Counterexample {
        bindings: symbols
            .iter()
            .cloned()
            .zip(values.iter().copied())
            .collect(),
        left,
        right,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h() -> SymDim {
        SymDim::symbol("H")
    }

    #[test]
    fn floor_identities_are_proved_by_periodicity() {
        let halves = h().floor_div(2) + (h() + 1).floor_div(2);
        assert_ne!(halves, h());
        assert!(provably_equal(&halves, &h()));
        let thirds = h().floor_div(3) + (h() + 1).floor_div(3) + (h() + 2).floor_div(3);
        assert!(provably_equal(&thirds, &h()));
    }

    #[test]
    fn a_constant_difference_is_a_counterexample_without_symbols() {
        let c = compare(
            &SymDim::constant(6),
            &SymDim::constant(5),
            &Preconditions::new(),
        );
        let Comparison::Differ(found) = c else {
            panic!("expected a counterexample, got {c:?}");
        };
        assert_eq!(found.to_string(), "6 vs 5");
    }

    #[test]
    fn the_smallest_counterexample_comes_first() {
        let a = h().floor_div(2) * 2;
        let found = may_differ(&a, &h(), &Preconditions::new()).unwrap();
        assert_eq!(found.to_string(), "with H = 1: 0 vs 1");
    }

    #[test]
    fn products_are_searched_not_proved() {
        let (x, y) = (SymDim::symbol("X"), SymDim::symbol("Y"));
        let c = compare(
            &(x.clone() * y.clone()),
            &(x.clone() + y.clone() - 1),
            &Preconditions::new(),
        );
        // X*Y = X + Y - 1 exactly when X = 1 or Y = 1; (2, 2) separates them.
        assert_eq!(
            c,
            Comparison::Differ(Counterexample {
                bindings: vec![(Symbol::new("X"), 2), (Symbol::new("Y"), 2)],
                left: 4,
                right: 3,
            })
        );
    }

    #[test]
    fn unknowns_are_never_equal_to_anything_else() {
        let u = SymDim::unknown();
        assert_eq!(
            compare(&u, &h(), &Preconditions::new()),
            Comparison::Unknown
        );
        assert_eq!(
            compare(&u, &u.clone(), &Preconditions::new()),
            Comparison::Equal
        );
    }

    #[test]
    fn span_shrinks_with_many_symbols() {
        assert_eq!(search_span(1, None), 64);
        assert_eq!(search_span(3, None), 64);
        assert!(search_span(6, None) >= 2);
        assert_eq!(search_span(1, Some(100)), 200);
    }
}
