//! Printing dims in the language's own syntax, so a printed dim can be pasted back into a
//! script and reads as PyTorch users write sizes: `H`, `2*H`, `H + 1`, `(H - 1)//2 + 1`,
//! `2*(H//2)`, `C*H*W`.

use super::{Atom, Monomial, Poly, SymDim};
use std::fmt;

impl fmt::Display for SymDim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_poly(&self.terms, f)
    }
}

fn fmt_poly(p: &Poly, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    if p.is_empty() {
        return f.write_str("0");
    }
    for (i, (mono, &coef)) in p.iter().enumerate() {
        let negative = coef < 0;
        match (i, negative) {
            (0, true) => f.write_str("-")?,
            (0, false) => {}
            (_, true) => f.write_str(" - ")?,
            (_, false) => f.write_str(" + ")?,
        }
        // A leading minus binds tighter than `//`: `-H//2` would mean `(-H)//2`.
        fmt_term(mono, coef.unsigned_abs(), i == 0 && negative, f)?;
    }
    Ok(())
}

fn fmt_term(
    mono: &Monomial,
    magnitude: u64,
    after_unary_minus: bool,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    if mono.is_constant() {
        return write!(f, "{magnitude}");
    }
    let alone = magnitude == 1 && mono.degree() == 1;
    if magnitude != 1 {
        write!(f, "{magnitude}*")?;
    }
    for (i, atom) in mono.0.iter().enumerate() {
        if i > 0 {
            f.write_str("*")?;
        }
        // `2*H//2` would read as `(2*H)//2`, so a floor term inside a product (or after a
        // unary minus) is parenthesised; alone it is not: `(H - 1)//2 + 1`.
        let parenthesise = matches!(atom, Atom::Floor(_)) && (!alone || after_unary_minus);
        if parenthesise {
            f.write_str("(")?;
        }
        fmt_atom(atom, f)?;
        if parenthesise {
            f.write_str(")")?;
        }
    }
    Ok(())
}

fn fmt_atom(atom: &Atom, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match atom {
        Atom::Symbol(s) => write!(f, "{s}"),
        Atom::Unknown(_) => f.write_str("_"),
        Atom::Floor(floor) => {
            let bare = floor.inner.len() == 1
                && matches!(floor.inner.iter().next(), Some((m, 1)) if matches!(m.single(), Some(Atom::Symbol(_) | Atom::Unknown(_))));
            if bare {
                fmt_poly(&floor.inner, f)?;
            } else {
                f.write_str("(")?;
                fmt_poly(&floor.inner, f)?;
                f.write_str(")")?;
            }
            write!(f, "//{}", floor.divisor)
        }
    }
}
