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

/// A checker that keeps what it learned between programs: a REPL checks each entry as the
/// continuation of the entries accepted before it, in time proportional to the entry.
pub struct Incremental(walk::Checker);

impl Default for Incremental {
    fn default() -> Incremental {
        Incremental(walk::Checker::empty())
    }
}

impl Incremental {
    /// A checker that has seen nothing yet.
    pub fn new() -> Incremental {
        Incremental::default()
    }

    /// Checks `program` after everything committed so far, as [`check_program`] would
    /// check their concatenation, reporting only what `program` gets wrong. Its changes to
    /// the state wait for [`Incremental::commit`] or [`Incremental::rollback`]; checking
    /// another program first rolls them back.
    pub fn check(&mut self, program: &Program) -> Problems {
        self.0.begin(program);
        for stmt in &program.stmts {
            self.0.stmt(stmt);
        }
        std::mem::take(&mut self.0.problems)
    }

    /// Keeps the state the last checked program left.
    pub fn commit(&mut self) {
        self.0.commit();
    }

    /// Puts the state back as it was before the last checked program.
    pub fn rollback(&mut self) {
        self.0.rollback();
    }
}
