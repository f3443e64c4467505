//! Symbolic dimensions: integer expressions over named symbols (`N`, `H`) built with
//! `+`, `-`, `*` and floor division by a constant, kept in a normal form so that equal
//! expressions usually compare equal (`(H + 2*1 - 3)//1 + 1` is `H`) and *never* compare
//! equal unless they are equal for every value of the symbols.
//!
//! # The normal form
//!
//! A [`SymDim`] is a polynomial with `i64` coefficients over *atoms*:
//!
//! - a symbol, `H`;
//! - a floor term `inner // k` with `k > 1`, whose `inner` is itself a normal-form
//!   polynomial, reduced so that every non-constant coefficient of `inner` lies in
//!   `1..k`, its constant lies in `-(k-1)..=0`, the coefficients and `k` share no common
//!   factor, and `inner` is not `Y//a + Z` with integer `Z` (that is merged into
//!   `(Y + a*Z)//(a*k)`);
//! - an unknown, `_`: a size the checker cannot know (overflow, data-dependent sizes).
//!   Each unknown is distinct, so two unknowns never compare equal, but `u - u` is `0`.
//!
//! Terms are kept sorted (higher degree first, then symbols before floor terms, then by
//! name) with no zero coefficients. Every rewrite used is an identity over *all* integers
//! (not just positive sizes), so the normal form is sound without side conditions:
//! structurally equal means equal. It is not complete (`H//2 + (H + 1)//2` is `H` but has
//! another normal form); [`compare`] decides most such cases by a periodicity argument,
//! finds a counterexample, or answers [`Comparison::Unknown`].
//!
//! The rounding of the inner constant into `-(k-1)..=0` is what makes a convolution print
//! the way PyTorch users write it: `conv(H, k=3, s=2, p=1)` is `(H - 1)//2 + 1`, never
//! `(H + 1)//2`.
//!
//! Products of two non-constant dims are exact: they expand into monomials
//! (`(H + 1)*W` is `H*W + W`), so `C*H*W` flattens and compares like any other dim.
//! Arithmetic that would overflow `i64`, or grow an expression past [`MAX_TERMS`] terms or
//! degree [`MAX_DEGREE`], gives a fresh unknown instead of a wrong answer.
//!
//! Symbols range over sizes, `>=` [`SYMBOL_MIN`]; the checker's preconditions
//! ([`Constraint`], [`Preconditions`]) narrow that.

mod compare;
mod constraint;
mod display;
mod unify;

pub use compare::{Comparison, Counterexample, compare, may_differ, provably_equal};
pub use constraint::{Constraint, Preconditions, Truth, Violation};
pub use unify::{DimPattern, ShapeMismatch, Unifier, UnifyError};

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::{Add, Mul, Neg, Sub};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The smallest value a symbol can take: symbols stand for sizes of at least one element.
pub const SYMBOL_MIN: i64 = 1;

/// Most terms one dim may have before it gives up to unknown (products of sums grow fast).
pub const MAX_TERMS: usize = 64;

/// Highest degree of a monomial before a dim gives up to unknown.
pub const MAX_DEGREE: usize = 8;

/// A named size variable (`N`, `H`, `W`). Cheap to clone: the name is shared.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Symbol(Arc<str>);

impl Symbol {
    /// The symbol called `name`.
    pub fn new(name: &str) -> Self {
        Symbol(Arc::from(name))
    }

    /// Its name, as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

// Lets maps keyed by symbol be searched by name; consistent with the derived `Ord`, `Eq`
// and `Hash`, which all go through the `str`.
impl std::borrow::Borrow<str> for Symbol {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One factor of a monomial.
///
/// The derived order (symbols, then floor terms, then unknowns) is the display order.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Atom {
    Symbol(Symbol),
    Floor(Box<FloorTerm>),
    /// A size nobody can know; the id keeps distinct unknowns apart.
    Unknown(u64),
}

/// `inner // divisor`, with `inner` and `divisor > 1` reduced as the module doc says.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct FloorTerm {
    inner: Poly,
    divisor: i64,
}

/// A product of atoms, sorted, with repetition for powers (`H*H`). Empty is the constant 1.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Monomial(Vec<Atom>);

impl Monomial {
    fn one() -> Self {
        Monomial(Vec::new())
    }

    fn atom(atom: Atom) -> Self {
        Monomial(vec![atom])
    }

    fn is_constant(&self) -> bool {
        self.0.is_empty()
    }

    fn degree(&self) -> usize {
        self.0.len()
    }

    /// The single atom of a degree-1 monomial.
    fn single(&self) -> Option<&Atom> {
        match self.0.as_slice() {
            [atom] => Some(atom),
            _ => None,
        }
    }

    fn times(&self, other: &Monomial) -> Monomial {
        let mut atoms = Vec::with_capacity(self.0.len() + other.0.len());
        atoms.extend(self.0.iter().cloned());
        atoms.extend(other.0.iter().cloned());
        atoms.sort();
        Monomial(atoms)
    }
}

impl Ord for Monomial {
    // Higher degree first, so the constant (degree 0) prints last: `H*W + H + 1`.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other
            .degree()
            .cmp(&self.degree())
            .then_with(|| self.0.cmp(&other.0))
    }
}

impl PartialOrd for Monomial {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Monomial → coefficient, never storing a zero coefficient.
type Poly = BTreeMap<Monomial, i64>;

/// A dimension size that may involve symbols: `32`, `N`, `2*H`, `(H - 1)//2 + 1`.
///
/// Always in the normal form of the module doc, so `==` is structural equality of normal
/// forms: `a == b` implies they are equal for every value of the symbols (the converse
/// does not hold; use [`compare`] for that). Arithmetic never panics: overflow gives
/// [`SymDim::unknown`].
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SymDim {
    terms: Poly,
}

/// Source of fresh ids for unknowns. Global so unknowns made anywhere never collide.
static NEXT_UNKNOWN: AtomicU64 = AtomicU64::new(0);

impl SymDim {
    /// The constant `value`.
    pub fn constant(value: i64) -> Self {
        let mut terms = Poly::new();
        add_term(&mut terms, Monomial::one(), value);
        SymDim { terms }
    }

    /// The symbol called `name`.
    pub fn symbol(name: &str) -> Self {
        Self::from_symbol(Symbol::new(name))
    }

    /// The symbol `symbol` as a dim.
    pub fn from_symbol(symbol: Symbol) -> Self {
        Self::from_atom(Atom::Symbol(symbol))
    }

    /// A fresh unknown size (`_`), different from every other unknown.
    pub fn unknown() -> Self {
        Self::from_atom(Atom::Unknown(NEXT_UNKNOWN.fetch_add(1, Ordering::Relaxed)))
    }

    fn from_atom(atom: Atom) -> Self {
        let mut terms = Poly::new();
        terms.insert(Monomial::atom(atom), 1);
        SymDim { terms }
    }

    /// Wrap the result of a checked operation: `None` (overflow, too big) becomes unknown.
    fn from_checked(terms: Option<Poly>) -> Self {
        match terms {
            Some(terms) => SymDim { terms },
            None => Self::unknown(),
        }
    }

    /// The value, if it involves no symbol and no unknown.
    pub fn as_const(&self) -> Option<i64> {
        match self.terms.iter().next() {
            None => Some(0),
            Some((m, &c)) if m.is_constant() => Some(c),
            Some(_) => None,
        }
    }

    /// The symbol, if this dim is exactly one symbol (`H`, not `2*H` or `H + 1`).
    pub fn as_symbol(&self) -> Option<&Symbol> {
        match self.terms.iter().next() {
            Some((m, 1)) if self.terms.len() == 1 => match m.single() {
                Some(Atom::Symbol(s)) => Some(s),
                _ => None,
            },
            _ => None,
        }
    }

    /// Every symbol this dim mentions, floor terms included, in name order.
    pub fn symbols(&self) -> BTreeSet<Symbol> {
        let mut out = BTreeSet::new();
        collect_symbols(&self.terms, &mut out);
        out
    }

    /// Whether some part of this dim is unknown (`_`), so it can never be evaluated.
    pub fn has_unknown(&self) -> bool {
        poly_has_unknown(&self.terms)
    }

    /// `floor(self / divisor)` with Python's `//` rounding (towards negative infinity).
    ///
    /// Normalises as the module doc says: `x // 1` is `x`, `(2*H + 1)//2` is `H`,
    /// `(H//2)//3` is `H//6`, `2*(H//2)` stays as it is. A zero divisor has no answer and
    /// gives an unknown; a negative one is handled as `(-self) // (-divisor)`.
    pub fn floor_div(self, divisor: i64) -> Self {
        Self::from_checked(floor_div_poly(&self.terms, divisor))
    }

    /// `ceil(self / divisor)`, as `(self + divisor - 1) // divisor`, which is exact for a
    /// positive divisor and keeps one normal form for both roundings.
    pub fn ceil_div(self, divisor: i64) -> Self {
        if divisor <= 0 {
            // ceil(x / d) = -floor(-x / d) holds for any non-zero d.
            return -((-self).floor_div(divisor));
        }
        match divisor.checked_sub(1) {
            Some(slack) => (self + slack).floor_div(divisor),
            None => Self::unknown(),
        }
    }

    /// `self mod divisor` with Python's `%` (the sign of the divisor):
    /// `self - divisor * (self // divisor)`. Zero exactly when `divisor` divides `self`.
    pub fn modulo(self, divisor: i64) -> Self {
        let quotient = self.clone().floor_div(divisor);
        self - quotient * divisor
    }

    /// The value for concrete symbol values; `None` when a symbol is unbound, the dim has
    /// an unknown part, or the arithmetic would overflow.
    pub fn eval(&self, env: &impl Fn(&str) -> Option<i64>) -> Option<i64> {
        eval_poly(&self.terms, env)
    }

    /// Replace symbols by dims (`H` := `2*M`), renormalising. Symbols for which `map`
    /// answers `None` stay as they are.
    pub fn substitute(&self, map: &impl Fn(&Symbol) -> Option<SymDim>) -> SymDim {
        let mut total = SymDim::constant(0);
        for (mono, &coef) in &self.terms {
            let mut term = SymDim::constant(coef);
            for atom in &mono.0 {
                let factor = match atom {
                    Atom::Symbol(s) => map(s).unwrap_or_else(|| SymDim::from_symbol(s.clone())),
                    Atom::Floor(floor) => SymDim {
                        terms: floor.inner.clone(),
                    }
                    .substitute(map)
                    .floor_div(floor.divisor),
                    Atom::Unknown(_) => SymDim::from_atom(atom.clone()),
                };
                term = term * factor;
            }
            total = total + term;
        }
        total
    }

    /// `self / divisor` when `divisor` divides every coefficient, so the quotient is exact
    /// for every value of the symbols (`(4*H + 2) / 2` is `2*H + 1`); `None` otherwise.
    pub fn exact_div(&self, divisor: i64) -> Option<SymDim> {
        if divisor == 0 {
            return None;
        }
        let mut terms = Poly::new();
        for (mono, &coef) in &self.terms {
            if coef.checked_rem(divisor)? != 0 {
                return None;
            }
            terms.insert(mono.clone(), coef.checked_div(divisor)?);
        }
        Some(SymDim { terms })
    }

    /// Split off the part linear in `symbol`: `Some((a, rest))` with
    /// `self == a*symbol + rest` and `rest` free of `symbol`; `None` if `symbol` appears in
    /// a product or a floor term. `a` is 0 when `symbol` does not appear.
    fn linear_in(&self, symbol: &Symbol) -> Option<(i64, SymDim)> {
        let mut coefficient = 0;
        let mut rest = Poly::new();
        for (mono, &coef) in &self.terms {
            match mono.single() {
                Some(Atom::Symbol(s)) if s == symbol => coefficient = coef,
                _ => {
                    let mut inside = BTreeSet::new();
                    collect_symbols_monomial(mono, &mut inside);
                    if inside.contains(symbol) {
                        return None;
                    }
                    rest.insert(mono.clone(), coef);
                }
            }
        }
        Some((coefficient, SymDim { terms: rest }))
    }

    /// The single non-constant term as `(coefficient, atom, constant)` when this dim is
    /// `a*T + b` with `T` one atom; what the precondition solver needs.
    fn as_single_atom_affine(&self) -> Option<(i64, &Atom, i64)> {
        let mut atom_term = None;
        let mut constant = 0;
        for (mono, &coef) in &self.terms {
            if mono.is_constant() {
                constant = coef;
            } else if atom_term.is_some() {
                return None;
            } else {
                atom_term = Some((coef, mono.single()?));
            }
        }
        atom_term.map(|(coef, atom)| (coef, atom, constant))
    }
}

impl From<i64> for SymDim {
    fn from(value: i64) -> Self {
        SymDim::constant(value)
    }
}

// ---------------------------------------------------------------------------------------
// Arithmetic on the polynomial form. Every function returns `None` on overflow or when the
// result would exceed the size limits; the public operators turn that into an unknown.

fn add_term(poly: &mut Poly, mono: Monomial, coef: i64) -> Option<()> {
    if coef == 0 {
        return Some(());
    }
    match poly.entry(mono) {
        std::collections::btree_map::Entry::Vacant(slot) => {
            slot.insert(coef);
        }
        std::collections::btree_map::Entry::Occupied(mut slot) => {
            let sum = slot.get().checked_add(coef)?;
            if sum == 0 {
                slot.remove();
            } else {
                *slot.get_mut() = sum;
            }
        }
    }
    Some(())
}

fn within_limits(poly: Poly) -> Option<Poly> {
    let small = poly.len() <= MAX_TERMS && poly.keys().all(|m| m.degree() <= MAX_DEGREE);
    small.then_some(poly)
}

fn add_poly(a: &Poly, b: &Poly) -> Option<Poly> {
    let mut out = a.clone();
    for (mono, &coef) in b {
        add_term(&mut out, mono.clone(), coef)?;
    }
    within_limits(out)
}

fn scale_poly(a: &Poly, factor: i64) -> Option<Poly> {
    let mut out = Poly::new();
    if factor == 0 {
        return Some(out);
    }
    for (mono, &coef) in a {
        out.insert(mono.clone(), coef.checked_mul(factor)?);
    }
    Some(out)
}

fn mul_poly(a: &Poly, b: &Poly) -> Option<Poly> {
    // Refuse early rather than build a huge intermediate result.
    if a.len().saturating_mul(b.len()) > MAX_TERMS * MAX_TERMS {
        return None;
    }
    let mut out = Poly::new();
    for (ma, &ca) in a {
        for (mb, &cb) in b {
            let mono = ma.times(mb);
            if mono.degree() > MAX_DEGREE {
                return None;
            }
            add_term(&mut out, mono, ca.checked_mul(cb)?)?;
        }
    }
    within_limits(out)
}

/// `ceil(a / b)` for `b > 0`, without overflow.
fn ceil_div_i64(a: i64, b: i64) -> Option<i64> {
    a.checked_neg()?.checked_div_euclid(b)?.checked_neg()
}

fn gcd(mut a: i64, mut b: i64) -> i64 {
    // Only called with non-negative values below i64::MAX, so no overflow.
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// `floor(p / divisor)` in normal form (see the module doc for each rule).
fn floor_div_poly(p: &Poly, divisor: i64) -> Option<Poly> {
    if divisor == 0 {
        return None;
    }
    if divisor < 0 {
        // floor(x / d) = floor(-x / -d).
        return floor_div_poly(&scale_poly(p, -1)?, divisor.checked_neg()?);
    }
    if divisor == 1 {
        return Some(p.clone());
    }
    let k = divisor;
    // Split every coefficient c = k*q + r and move the k*q parts outside the floor:
    // floor((k*A + R) / k) = A + floor(R / k) for integer A. Non-constant remainders go to
    // 1..k; the constant one to -(k-1)..=0, so `(H + 2 - 3)//2` keeps its `- 1`.
    let mut outer = Poly::new();
    let mut inner = Poly::new();
    let mut constant = 0;
    for (mono, &coef) in p {
        let (q, r) = if mono.is_constant() {
            let q = ceil_div_i64(coef, k)?;
            let r = coef.checked_sub(q.checked_mul(k)?)?;
            constant = r;
            (q, r)
        } else {
            (coef.checked_div_euclid(k)?, coef.checked_rem_euclid(k)?)
        };
        add_term(&mut outer, mono.clone(), q)?;
        add_term(&mut inner, mono.clone(), r)?;
    }
    let varying: Vec<(&Monomial, i64)> = inner
        .iter()
        .filter(|(m, _)| !m.is_constant())
        .map(|(m, &c)| (m, c))
        .collect();
    if varying.is_empty() {
        // Only the constant is left, in -(k-1)..=0: its floor is -1 unless it is 0.
        if constant < 0 {
            add_term(&mut outer, Monomial::one(), -1)?;
        }
        return within_limits(outer);
    }
    // A common factor g of k and every varying coefficient divides out:
    // floor((g*A + r) / (g*m)) = floor((A + floor(r / g)) / m).
    let common = varying.iter().fold(k, |g, &(_, c)| gcd(g, c));
    if common > 1 {
        let mut reduced = Poly::new();
        for &(mono, coef) in &varying {
            reduced.insert(mono.clone(), coef / common);
        }
        add_term(&mut reduced, Monomial::one(), constant.div_euclid(common))?;
        return add_poly(&outer, &floor_div_poly(&reduced, k / common)?);
    }
    // Nested floors merge: floor((floor(Y / a) + Z) / k) = floor((Y + a*Z) / (a*k)) for
    // integer Z (which may hold other floor terms). Applied when exactly one term is a
    // floor term alone with coefficient 1, so the choice is unambiguous; with two such
    // terms either merge is valid and neither is preferred, so none is done. Each merge
    // removes one floor term, so the recursion ends.
    let mut candidates = varying
        .iter()
        .filter_map(|&(mono, coef)| match mono.single() {
            Some(Atom::Floor(nested)) if coef == 1 => Some((mono, nested)),
            _ => None,
        });
    if let (Some((mono, nested)), None) = (candidates.next(), candidates.next()) {
        let mut rest = inner.clone();
        rest.remove(mono);
        let merged = add_poly(&nested.inner, &scale_poly(&rest, nested.divisor)?)?;
        let combined = floor_div_poly(&merged, nested.divisor.checked_mul(k)?)?;
        return add_poly(&outer, &combined);
    }
    let floor = Atom::Floor(Box::new(FloorTerm { inner, divisor: k }));
    add_term(&mut outer, Monomial::atom(floor), 1)?;
    within_limits(outer)
}

fn eval_poly(p: &Poly, env: &impl Fn(&str) -> Option<i64>) -> Option<i64> {
    let mut total: i64 = 0;
    for (mono, &coef) in p {
        let mut term = coef;
        for atom in &mono.0 {
            term = term.checked_mul(eval_atom(atom, env)?)?;
        }
        total = total.checked_add(term)?;
    }
    Some(total)
}

fn eval_atom(atom: &Atom, env: &impl Fn(&str) -> Option<i64>) -> Option<i64> {
    match atom {
        Atom::Symbol(s) => env(s.as_str()),
        Atom::Floor(floor) => eval_poly(&floor.inner, env)?.checked_div_euclid(floor.divisor),
        Atom::Unknown(_) => None,
    }
}

fn collect_symbols(p: &Poly, out: &mut BTreeSet<Symbol>) {
    for mono in p.keys() {
        collect_symbols_monomial(mono, out);
    }
}

fn collect_symbols_monomial(mono: &Monomial, out: &mut BTreeSet<Symbol>) {
    for atom in &mono.0 {
        match atom {
            Atom::Symbol(s) => {
                out.insert(s.clone());
            }
            Atom::Floor(floor) => collect_symbols(&floor.inner, out),
            Atom::Unknown(_) => {}
        }
    }
}

fn poly_has_unknown(p: &Poly) -> bool {
    p.keys().any(|m| {
        m.0.iter().any(|a| match a {
            Atom::Unknown(_) => true,
            Atom::Floor(floor) => poly_has_unknown(&floor.inner),
            Atom::Symbol(_) => false,
        })
    })
}

// ---------------------------------------------------------------------------------------
// Operators. All by value, as `DimArith` wants; clones are cheap next to normalisation.

impl Add for SymDim {
    type Output = SymDim;
    fn add(self, rhs: SymDim) -> SymDim {
        SymDim::from_checked(add_poly(&self.terms, &rhs.terms))
    }
}

impl Sub for SymDim {
    type Output = SymDim;
    fn sub(self, rhs: SymDim) -> SymDim {
        self + (-rhs)
    }
}

impl Mul for SymDim {
    type Output = SymDim;
    fn mul(self, rhs: SymDim) -> SymDim {
        SymDim::from_checked(mul_poly(&self.terms, &rhs.terms))
    }
}

impl Neg for SymDim {
    type Output = SymDim;
    fn neg(self) -> SymDim {
        SymDim::from_checked(scale_poly(&self.terms, -1))
    }
}

impl Add<i64> for SymDim {
    type Output = SymDim;
    fn add(self, rhs: i64) -> SymDim {
        self + SymDim::constant(rhs)
    }
}

impl Sub<i64> for SymDim {
    type Output = SymDim;
    fn sub(self, rhs: i64) -> SymDim {
        // Through `Sub<SymDim>`, whose negation is checked: `- i64::MIN` gives unknown.
        self - SymDim::constant(rhs)
    }
}

impl Mul<i64> for SymDim {
    type Output = SymDim;
    fn mul(self, rhs: i64) -> SymDim {
        SymDim::from_checked(scale_poly(&self.terms, rhs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h() -> SymDim {
        SymDim::symbol("H")
    }

    fn w() -> SymDim {
        SymDim::symbol("W")
    }

    #[test]
    fn constants_fold_and_zero_terms_vanish() {
        assert_eq!((SymDim::constant(3) + 4) * 2, SymDim::constant(14));
        assert_eq!(h() - h(), SymDim::constant(0));
        assert_eq!((h() + 1 - 1).to_string(), "H");
        assert_eq!(SymDim::constant(0).to_string(), "0");
        assert_eq!(SymDim::constant(-7).as_const(), Some(-7));
    }

    #[test]
    fn floor_by_one_is_identity() {
        assert_eq!(h().floor_div(1), h());
    }

    #[test]
    fn divisible_parts_leave_the_floor() {
        // (2*H + 4)//2 = H + 2; (3*H + 1)//2 = H + (H + 1)//2 = H + (H - 1)//2 + 1.
        assert_eq!((h() * 2 + 4).floor_div(2).to_string(), "H + 2");
        assert_eq!((h() * 3 + 1).floor_div(2).to_string(), "H + (H - 1)//2 + 1");
        assert_eq!((h() * 2 + 1).floor_div(2), h());
    }

    #[test]
    fn inner_constant_is_rounded_up_to_a_non_positive_remainder() {
        assert_eq!((h() + 1).floor_div(2).to_string(), "(H - 1)//2 + 1");
        assert_eq!((h() - 3).floor_div(2).to_string(), "(H - 1)//2 - 1");
        assert_eq!((h() - 2).floor_div(2).to_string(), "H//2 - 1");
    }

    #[test]
    fn common_factors_cancel() {
        assert_eq!((h() * 2).floor_div(4), h().floor_div(2));
        assert_eq!((h() * 2 + 1).floor_div(4), h().floor_div(2));
        assert_eq!((h() * 2 - 1).floor_div(4), (h() - 1).floor_div(2));
    }

    #[test]
    fn nested_floors_merge() {
        assert_eq!(h().floor_div(2).floor_div(3), h().floor_div(6));
        assert_eq!((h().floor_div(2) + 1).floor_div(2), (h() + 2).floor_div(4));
        assert_eq!(
            (h().floor_div(2) + w()).floor_div(3),
            (h() + w() * 2).floor_div(6)
        );
    }

    #[test]
    fn multiples_of_a_floor_stay() {
        let d = h().floor_div(2) * 2;
        assert_eq!(d.to_string(), "2*(H//2)");
        assert_ne!(d, h());
    }

    #[test]
    fn negative_and_zero_divisors() {
        assert!(h().floor_div(0).has_unknown());
        // floor(H / -2) = floor(-H / 2); not `div_euclid(-2)`, which rounds the other way.
        let d = h().floor_div(-2);
        for v in -9..=9 {
            assert_eq!(d.eval(&|_| Some(v)), Some((-v).div_euclid(2)));
        }
    }

    #[test]
    fn ceil_is_floor_of_shifted() {
        assert_eq!(h().ceil_div(2).to_string(), "(H - 1)//2 + 1");
        for v in -9..=9 {
            assert_eq!(
                h().ceil_div(3).eval(&|_| Some(v)),
                Some(-((-v).div_euclid(3)))
            );
        }
    }

    #[test]
    fn products_expand() {
        let d = (h() + 1) * w();
        assert_eq!(d.to_string(), "H*W + W");
        assert_eq!((h() * h()).to_string(), "H*H");
        assert_eq!((h().floor_div(2) * w()).to_string(), "W*(H//2)");
    }

    #[test]
    fn overflow_gives_unknown_not_a_wrapped_value() {
        let big = SymDim::constant(i64::MAX);
        assert!((big.clone() + 1).has_unknown());
        assert!((h() * i64::MAX * 2).has_unknown());
        assert!((SymDim::constant(i64::MIN) - 1).has_unknown());
        assert!((h() - i64::MIN).has_unknown());
        assert!(SymDim::constant(i64::MIN).floor_div(-1).has_unknown());
        assert_eq!(big.eval(&|_| None), Some(i64::MAX));
    }

    #[test]
    fn unknowns_are_distinct_but_cancel_themselves() {
        let u = SymDim::unknown();
        assert_ne!(u, SymDim::unknown());
        assert_eq!(u.clone() - u.clone(), SymDim::constant(0));
        assert_eq!(u.to_string(), "_");
        assert_eq!(u.eval(&|_| Some(1)), None);
    }

    #[test]
    fn size_limits_give_unknown() {
        let mut d = SymDim::constant(1);
        for i in 0..=MAX_DEGREE {
            d = d * SymDim::symbol(&format!("S{i}"));
        }
        assert!(d.has_unknown());
    }

    #[test]
    fn leading_negative_floor_is_parenthesised() {
        assert_eq!((-h().floor_div(2)).to_string(), "-(H//2)");
        assert_eq!((h() - h().floor_div(2)).to_string(), "H - H//2");
        assert_eq!((SymDim::constant(3) - h()).to_string(), "-H + 3");
    }

    #[test]
    fn substitution_renormalises() {
        let d = (h() - 1).floor_div(2) + 1;
        let m = SymDim::symbol("M");
        let twice = d.substitute(&|s| (s.as_str() == "H").then(|| m.clone() * 2 + 1));
        assert_eq!(twice, m + 1);
    }

    #[test]
    fn exact_division_and_linear_split() {
        assert_eq!((h() * 4 + 2).exact_div(2), Some(h() * 2 + 1));
        assert_eq!((h() * 4 + 1).exact_div(2), None);
        let (a, rest) = (h() * 3 + w() + 2).linear_in(&Symbol::new("H")).unwrap();
        assert_eq!((a, rest), (3, w() + 2));
        assert!(h().floor_div(2).linear_in(&Symbol::new("H")).is_none());
    }

    #[test]
    fn modulo_is_python_modulo() {
        let r = h().modulo(3);
        for v in -7..=7 {
            assert_eq!(r.eval(&|_| Some(v)), Some(v.rem_euclid(3)));
        }
    }
}
