//! The checker's diagnostics. Shape errors reuse the interpreter's [`TensorDiagnostic`], so
//! a mistake found before the run reads exactly as the same mistake found while running.

use miette::Diagnostic;
use thiserror::Error;

use crate::diagnostic::binding::BindProblem;
use crate::diagnostic::{IndexOutOfRange, TensorDiagnostic};
use crate::source::Span;

/// An error found by `cnn check`.
#[derive(Debug, Error, Diagnostic, Clone, PartialEq)]
pub enum CheckError {
    /// A name that nothing declares: `let y = x @ weigth` after `let weight = ...`.
    #[error("undefined name `{name}`")]
    #[diagnostic(code(E0201))]
    UndefinedName {
        /// The name as written.
        name: String,
        /// Where it was used.
        #[label("not defined here")]
        span: Span,
        /// The closest visible name, or how to declare it.
        #[help]
        help: String,
    },

    /// A field or method the value certainly does not have: `randn(2, 3).shap`.
    #[error("{type_name} has no field or method `{name}`")]
    #[diagnostic(code(E0202))]
    NoSuchField {
        /// The type of the value (`tensor`, `int`).
        type_name: String,
        /// The name asked for.
        name: String,
        /// The name in the source.
        #[label("no `{name}` here")]
        span: Span,
        /// The closest field or method, or the list of them.
        #[help]
        help: String,
    },

    /// Arguments that do not fit the callee's parameters (E0203–E0206), worded as the
    /// run-time check words them.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Bind(Box<BindProblem>),

    /// Plain assignment to a name no `let` declared: `totl = 1`.
    #[error("assignment to undeclared name `{name}`")]
    #[diagnostic(code(E0208))]
    AssignToUndeclared {
        /// The name assigned.
        name: String,
        /// The target.
        #[label("not declared")]
        span: Span,
        /// `let`, or the closest declared name.
        #[help]
        help: String,
    },

    /// Two dims that must be equal and may differ:
    /// `cat([x, x |> Conv2d(8, 8, 3, stride=2, padding=1) |> ConvTranspose2d(8, 8, 2, stride=2)], 1)`
    /// on `[N, 8, H, W]` (odd `H`).
    #[error("dims must be equal and may differ: {left} vs {right}")]
    #[diagnostic(code(E0312))]
    MayDiffer {
        /// The first dim.
        left: String,
        /// The second dim.
        right: String,
        /// The operation that needs them equal.
        #[label("{what}")]
        span: Span,
        /// What needs them equal.
        what: String,
        /// The counterexample.
        #[help]
        help: String,
        /// The model calls that led here, when found by walking a net's body for a call.
        #[label(collection, "called from here")]
        calls: Vec<Span>,
    },

    /// An argument that does not fit a net's declared input: `RGB()(randn(1, 1, 8, 8))`
    /// for `input x: [N, 3, H, W]`.
    #[error("{message}")]
    #[diagnostic(code(E0315))]
    NetInput {
        /// What differs, in the run-time check's words.
        message: String,
        /// The argument.
        #[label("{label}")]
        span: Span,
        /// Label text at the argument: `` `x` is [2, 3, 16, 16] ``.
        label: String,
        /// The declaration (the dim at fault, or the whole shape).
        #[label("{declared_label}")]
        declared_at: Span,
        /// Label text at the declaration.
        declared_label: String,
        /// The fix.
        #[help]
        help: String,
    },

    /// An index past a known size (E0313), reported as the interpreter reports it.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Index(Box<IndexOutOfRange>),

    /// A shape error, reported exactly as the interpreter reports it.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Shape(Box<TensorDiagnostic>),
}

/// A warning found by `cnn check`; it does not stop the run.
#[derive(Debug, Error, Diagnostic, Clone, PartialEq)]
pub enum CheckWarning {
    /// A strided window that leaves rows or columns of its input unused:
    /// `Conv2d(1, 1, 3, stride=2)(randn(1, 1, 8, 8))`.
    #[error("{op} drops the last {what} of its input")]
    #[diagnostic(code(W0301), severity(Warning))]
    DropsRows {
        /// The op.
        op: String,
        /// What is never covered: "1 row", "2 rows and 1 column".
        what: String,
        /// The formula per dimension that drops something: `(8 + 2*0 - 1*(3-1) - 1) % 2 = 1`.
        detail: String,
        /// The call.
        #[label("{detail}")]
        span: Span,
        /// The fix.
        #[help]
        help: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::TensorCode;

    #[test]
    fn no_two_variants_share_a_code() {
        let s = Span::new(0, 0);
        let all = [
            CheckError::UndefinedName {
                name: String::new(),
                span: s,
                help: String::new(),
            },
            CheckError::NoSuchField {
                type_name: String::new(),
                name: String::new(),
                span: s,
                help: String::new(),
            },
            CheckError::Bind(Box::new(BindProblem::TooManyArguments {
                callee: String::new(),
                max: 0,
                given: 0,
                span: s,
                help: String::new(),
                calls: Vec::new(),
            })),
            CheckError::AssignToUndeclared {
                name: String::new(),
                span: s,
                help: String::new(),
            },
            CheckError::MayDiffer {
                left: String::new(),
                right: String::new(),
                span: s,
                what: String::new(),
                help: String::new(),
                calls: Vec::new(),
            },
            CheckError::NetInput {
                message: String::new(),
                span: s,
                label: String::new(),
                declared_at: s,
                declared_label: String::new(),
                help: String::new(),
            },
            CheckError::Shape(Box::new(TensorDiagnostic::new(
                TensorCode::Broadcast,
                "",
                s,
                "",
            ))),
        ];
        let mut codes: Vec<String> = all.iter().map(|e| e.code().unwrap().to_string()).collect();
        codes.sort();
        let n = codes.len();
        codes.dedup();
        assert_eq!(codes.len(), n);
    }
}
