//! The static checker: an abstract interpreter over types and shapes, never values.
//!
//! Today this holds only [`dim`], the symbolic dimensions the checker computes with
//! (`N`, `2*H`, `(H - 1)//2 + 1`): their normal form, preconditions, counterexamples and
//! the matching of a net's declared input dims.

#![warn(missing_docs)]

pub mod dim;
mod dim_arith;
