//! The static checker: an abstract interpreter over types and shapes, never values
//! (LANGUAGE.md §9). [`check_program`] walks a parsed program once and collects every
//! error it is certain of; whatever it cannot know is unknown and reported by nobody, so
//! the same checks run at run time with the same diagnostics.

#![warn(missing_docs)]

mod annotate;
pub mod dim;
mod dim_arith;
pub mod error;
mod functional;
mod layers;
mod members;
pub mod net;
mod ops;
pub mod rules;
pub mod summary;
pub mod ty;
mod walk;

pub use error::{CheckError, CheckWarning};
pub use summary::{LayerRow, NetReport, ParamValue, net_report};
pub use walk::Problems;

use crate::syntax::ast::Program;

/// Checks a whole program: every error found, the warnings, and each `let`'s type.
pub fn check_program(program: &Program) -> Problems {
    let mut checker = walk::Checker::new(program);
    for stmt in &program.stmts {
        checker.stmt(stmt);
    }
    checker.problems
}
