//! Matching a net's declared input dims (`[N, c, 2*H, _]`) against the dims of an actual
//! argument, binding the symbols as it goes (E0315). The actual dims may be concrete (a
//! call with a tensor) or symbolic (a net called inside another net).

use super::{Comparison, Counterexample, Preconditions, SYMBOL_MIN, SymDim, Symbol, compare};
use std::collections::BTreeMap;
use std::fmt;

/// One declared input dim: `_` accepts any size; anything else is a dim whose symbols get
/// bound (`N`, `2*H`) or a fixed size (`3`, or a net parameter already substituted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DimPattern {
    /// `_`: any size, binds nothing.
    Any,
    /// A size to match, binding its symbols.
    Dim(SymDim),
}

impl From<SymDim> for DimPattern {
    fn from(dim: SymDim) -> Self {
        DimPattern::Dim(dim)
    }
}

impl fmt::Display for DimPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DimPattern::Any => f.write_str("_"),
            DimPattern::Dim(dim) => write!(f, "{dim}"),
        }
    }
}

/// Why one declared dim does not match the actual one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UnifyError {
    /// The declared dim, with the symbols bound so far substituted (`expected`), is not
    /// the actual one: `3` vs `1`, or `H` already bound to 4 vs `5`. The counterexample is
    /// `None` when they could not be shown to differ, only not shown equal.
    Mismatch {
        /// The declared dim with known bindings substituted.
        expected: SymDim,
        /// The actual dim.
        actual: SymDim,
        /// Values for which they differ, when found.
        counterexample: Option<Counterexample>,
    },
    /// No size of `symbol` makes the declared dim equal the actual one: `2*H` vs `11`.
    NoSolution {
        /// The symbol that cannot be bound.
        symbol: Symbol,
        /// The declared dim with known bindings substituted.
        expected: SymDim,
        /// The actual dim.
        actual: SymDim,
    },
    /// The declared dim does not determine its symbols: `H*W` vs `64`, or `H + W`.
    Undetermined {
        /// The declared dim with known bindings substituted.
        expected: SymDim,
        /// The actual dim.
        actual: SymDim,
    },
}

/// Why a whole shape does not match its declaration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShapeMismatch {
    /// Different numbers of dims (E0304 territory, but reported against the declaration).
    Rank {
        /// Dims declared.
        expected: usize,
        /// Dims given.
        actual: usize,
    },
    /// Dim `index` does not match.
    Dim {
        /// Position of the dim, from 0.
        index: usize,
        /// What went wrong there.
        error: UnifyError,
    },
}

/// Symbol bindings accumulated over the dims (and inputs) of one call, so the same
/// symbol must agree everywhere.
#[derive(Clone, Debug, Default)]
pub struct Unifier {
    bindings: BTreeMap<Symbol, SymDim>,
}

impl Unifier {
    /// No symbol bound yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Match one declared dim against an actual one, binding the declared dim's single
    /// unbound symbol if it has one and appears linearly (`2*H` vs `10` binds `H = 5`).
    /// On error nothing is bound.
    pub fn unify(&mut self, pattern: &DimPattern, actual: &SymDim) -> Result<(), UnifyError> {
        let DimPattern::Dim(declared) = pattern else {
            return Ok(());
        };
        let unbound: Vec<Symbol> = declared
            .symbols()
            .into_iter()
            .filter(|s| !self.bindings.contains_key(s))
            .collect();
        match unbound.as_slice() {
            [] => {
                let expected = self.apply(declared);
                match compare(&expected, actual, &Preconditions::new()) {
                    Comparison::Equal => Ok(()),
                    Comparison::Differ(found) => Err(UnifyError::Mismatch {
                        expected,
                        actual: actual.clone(),
                        counterexample: Some(found),
                    }),
                    Comparison::Unknown => Err(UnifyError::Mismatch {
                        expected,
                        actual: actual.clone(),
                        counterexample: None,
                    }),
                }
            }
            [symbol] => {
                // Split before substituting: the actual dim may use the same names (a net
                // called inside a net), and those must not be mistaken for the declared ones.
                let Some((coefficient, rest)) = declared.linear_in(symbol) else {
                    return Err(self.undetermined(declared, actual));
                };
                let remainder = actual.clone() - self.apply(&rest);
                let value = remainder
                    .exact_div(coefficient)
                    .filter(|v| v.as_const().is_none_or(|c| c >= SYMBOL_MIN));
                match value {
                    Some(value) => {
                        self.bindings.insert(symbol.clone(), value);
                        Ok(())
                    }
                    None => Err(UnifyError::NoSolution {
                        symbol: symbol.clone(),
                        expected: self.apply(declared),
                        actual: actual.clone(),
                    }),
                }
            }
            _ => Err(self.undetermined(declared, actual)),
        }
    }

    fn undetermined(&self, declared: &SymDim, actual: &SymDim) -> UnifyError {
        UnifyError::Undetermined {
            expected: self.apply(declared),
            actual: actual.clone(),
        }
    }

    /// Match a whole declared shape. Dims that do not yet determine their symbols
    /// (`H + W` before `H` is bound) are retried after the others.
    pub fn unify_shape(
        &mut self,
        patterns: &[DimPattern],
        actuals: &[SymDim],
    ) -> Result<(), ShapeMismatch> {
        if patterns.len() != actuals.len() {
            return Err(ShapeMismatch::Rank {
                expected: patterns.len(),
                actual: actuals.len(),
            });
        }
        let mut pending: Vec<usize> = (0..patterns.len()).collect();
        loop {
            let mut deferred = Vec::new();
            for &index in &pending {
                match self.unify(&patterns[index], &actuals[index]) {
                    Ok(()) => {}
                    Err(error @ UnifyError::Undetermined { .. }) => deferred.push((index, error)),
                    Err(error) => return Err(ShapeMismatch::Dim { index, error }),
                }
            }
            let progress = deferred.len() < pending.len();
            pending = deferred.iter().map(|(index, _)| *index).collect();
            match deferred.into_iter().next() {
                None => return Ok(()),
                // No dim made progress: the first one still undetermined is the report.
                Some((index, error)) if !progress => {
                    return Err(ShapeMismatch::Dim { index, error });
                }
                Some(_) => {}
            }
        }
    }

    /// The dim bound to `symbol`, if any.
    pub fn binding(&self, symbol: &Symbol) -> Option<&SymDim> {
        self.bindings.get(symbol)
    }

    /// Every binding, in symbol order.
    pub fn bindings(&self) -> &BTreeMap<Symbol, SymDim> {
        &self.bindings
    }

    /// The concrete value bound to the symbol `name`; usable as an `eval` environment:
    /// `dim.eval(&|s| unifier.value(s))`.
    pub fn value(&self, name: &str) -> Option<i64> {
        self.bindings.get(name)?.as_const()
    }

    /// `dim` with every bound symbol replaced by its binding (a net's output shape, or a
    /// precondition, in the caller's terms).
    pub fn apply(&self, dim: &SymDim) -> SymDim {
        dim.substitute(&|s| self.bindings.get(s).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(dim: SymDim) -> DimPattern {
        DimPattern::Dim(dim)
    }

    #[test]
    fn symbols_bind_and_must_agree() {
        let h = SymDim::symbol("H");
        let mut u = Unifier::new();
        u.unify(&pattern(h.clone()), &SymDim::constant(32)).unwrap();
        assert_eq!(u.value("H"), Some(32));
        assert_eq!(u.unify(&pattern(h.clone()), &SymDim::constant(32)), Ok(()));
        let err = u.unify(&pattern(h), &SymDim::constant(31)).unwrap_err();
        let UnifyError::Mismatch {
            counterexample: Some(c),
            ..
        } = err
        else {
            panic!("expected a mismatch, got {err:?}");
        };
        assert_eq!(c.to_string(), "32 vs 31");
    }

    #[test]
    fn linear_patterns_are_solved() {
        let h = SymDim::symbol("H");
        let mut u = Unifier::new();
        u.unify(&pattern(h.clone() * 2), &SymDim::constant(10))
            .unwrap();
        assert_eq!(u.value("H"), Some(5));
        let mut u = Unifier::new();
        assert!(matches!(
            u.unify(&pattern(h.clone() * 2), &SymDim::constant(11)),
            Err(UnifyError::NoSolution { .. })
        ));
        assert!(u.bindings().is_empty());
        assert!(matches!(
            u.unify(&pattern(h + 4), &SymDim::constant(4)),
            Err(UnifyError::NoSolution { .. })
        ));
    }

    #[test]
    fn symbolic_actuals_with_the_same_names_do_not_clash() {
        // The callee's H bound to the caller's `H + 1`; then `2*H` must be `2*H + 2`.
        let h = SymDim::symbol("H");
        let mut u = Unifier::new();
        u.unify(&pattern(h.clone()), &(h.clone() + 1)).unwrap();
        assert_eq!(
            u.unify(&pattern(h.clone() * 2), &(h.clone() * 2 + 2)),
            Ok(())
        );
        // And solving with the caller's H on the actual side: W + H vs H + 5 gives W = 4... in
        // the caller's terms W := (H + 5) - (H + 1) = 4.
        let w = SymDim::symbol("W");
        u.unify(&pattern(w + h.clone()), &(h + 5)).unwrap();
        assert_eq!(u.value("W"), Some(4));
    }

    #[test]
    fn deferred_dims_are_retried() {
        let (h, w) = (SymDim::symbol("H"), SymDim::symbol("W"));
        let mut u = Unifier::new();
        let declared = [pattern(h.clone() + w.clone()), DimPattern::Any, pattern(h)];
        let actual = [
            SymDim::constant(10),
            SymDim::constant(99),
            SymDim::constant(3),
        ];
        u.unify_shape(&declared, &actual).unwrap();
        assert_eq!(u.value("W"), Some(7));
    }

    #[test]
    fn undetermined_and_rank_errors() {
        let (h, w) = (SymDim::symbol("H"), SymDim::symbol("W"));
        let mut u = Unifier::new();
        let err = u
            .unify_shape(&[pattern(h * w)], &[SymDim::constant(64)])
            .unwrap_err();
        assert!(matches!(
            err,
            ShapeMismatch::Dim {
                index: 0,
                error: UnifyError::Undetermined { .. }
            }
        ));
        let err = u.unify_shape(&[DimPattern::Any], &[]).unwrap_err();
        assert_eq!(
            err,
            ShapeMismatch::Rank {
                expected: 1,
                actual: 0
            }
        );
    }
}
