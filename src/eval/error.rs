//! Run-time errors of the interpreter.
//!
//! Every variant carries the span of the expression that failed and `calls`, the spans of
//! the `fn` calls that led there (innermost first), rendered as extra "called from here"
//! labels. Errors hold no source text and no [`Value`](super::Value)s (those are not
//! `Send`); the report layer attaches the source.

use miette::Diagnostic;
use thiserror::Error;

use super::tensor_error::TensorDiagnostic;
use crate::diagnostic::IndexOutOfRange;
use crate::diagnostic::binding::BindProblem;
use crate::source::Span;

/// An error raised while running a program.
#[derive(Debug, Error, Diagnostic, Clone, PartialEq)]
pub enum RuntimeError {
    /// A name that no `let`, `fn`, parameter or builtin declares: `print(totl)`.
    #[error("undefined name `{name}`")]
    #[diagnostic(code(E0201))]
    UndefinedName {
        /// The name as written.
        name: String,
        /// Where it was used.
        #[label("not defined here")]
        span: Span,
        /// The fix, naming the closest visible name when there is one.
        #[help]
        help: String,
        /// The calls that led here.
        #[label(collection, "called from here")]
        calls: Vec<Span>,
    },

    /// A field or method the value does not have: `timeit(f).mean`.
    #[error("{type_name} has no field or method `{name}`")]
    #[diagnostic(code(E0202))]
    NoSuchField {
        /// The type of the value (`record timeit`, `int`).
        type_name: String,
        /// The field asked for.
        name: String,
        /// The field's name in the source.
        #[label("no `{name}` here")]
        span: Span,
        /// The closest field, or the list of fields.
        #[help]
        help: String,
        /// The calls that led here.
        #[label(collection, "called from here")]
        calls: Vec<Span>,
    },

    /// Arguments that do not fit the callee's parameters (E0203–E0206).
    #[error(transparent)]
    #[diagnostic(transparent)]
    Bind(Box<BindProblem>),

    /// Plain assignment to a name no `let` declared: `totl = 1`.
    #[error("assignment to undeclared name `{name}`")]
    #[diagnostic(code(E0208))]
    AssignToUndeclared {
        /// The name assigned.
        name: String,
        /// The assignment target.
        #[label("not declared")]
        span: Span,
        /// `let`, or the closest declared name.
        #[help]
        help: String,
        /// The calls that led here.
        #[label(collection, "called from here")]
        calls: Vec<Span>,
    },

    /// `break`, `continue` or `return` where no loop or function catches it.
    #[error("`{statement}` outside of {place}")]
    #[diagnostic(code(E0104))]
    StatementNotAllowed {
        /// `break`, `continue` or `return`.
        statement: &'static str,
        /// "a loop" or "a function".
        place: &'static str,
        /// The statement.
        #[label("not allowed here")]
        span: Span,
        /// The calls that led here.
        #[label(collection, "called from here")]
        calls: Vec<Span>,
    },

    /// An index past the end of a list or a tensor dimension (E0313).
    #[error(transparent)]
    #[diagnostic(transparent)]
    IndexOutOfRange(Box<IndexOutOfRange>),

    /// `assert cond, message` with a false `cond`.
    #[error("assertion failed: {message}")]
    #[diagnostic(code(E0504))]
    AssertionFailed {
        /// The assert's message, or the condition's text when it has none.
        message: String,
        /// The condition.
        #[label("this is false")]
        span: Span,
        /// The calls that led here.
        #[label(collection, "called from here")]
        calls: Vec<Span>,
    },

    /// A value the operation cannot take: `1 // 0`, `2 ** 64`, `range(0, 5, 0)`, runaway
    /// recursion.
    #[error("{message}")]
    #[diagnostic(code(E0505))]
    ValueError {
        /// What went wrong, with the values involved.
        message: String,
        /// The failing expression.
        #[label("{label}")]
        span: Span,
        /// Short label text at the span.
        label: String,
        /// A fix, when one exists.
        #[help]
        help: Option<String>,
        /// The calls that led here.
        #[label(collection, "called from here")]
        calls: Vec<Span>,
    },

    /// A model called with a tensor that does not fit its `input` declaration:
    /// `RGB()(randn(1, 1, 8, 8))` for `input x: [N, 3, H, W]`.
    #[error("{message}")]
    #[diagnostic(code(E0315))]
    NetInputMismatch {
        /// What differs, with both shapes.
        message: String,
        /// The model call.
        #[label("{label}")]
        span: Span,
        /// Short label text at the call.
        label: String,
        /// The declaration (the dim at fault, or the whole shape).
        #[label("{declared_label}")]
        declared: Span,
        /// Label text at the declaration.
        declared_label: String,
        /// How the expected size was found, or the fix.
        #[help]
        help: String,
        /// The calls that led here.
        #[label(collection, "called from here")]
        calls: Vec<Span>,
    },

    /// A later call of a model reached other layer constructors than the call that built
    /// it: `if x.mean().item() > 0 { x |> Conv2d(4, 4, 3) } else { x |> Conv2d(4, 4, 1) }`.
    #[error("{message}")]
    #[diagnostic(code(E0507))]
    LayerStructureChanged {
        /// Which layer differs and how.
        message: String,
        /// The constructor (or the call) where the difference shows.
        #[label("{label}")]
        span: Span,
        /// Short label text there.
        label: String,
        /// Where the model's layer at this position was built, when there is one.
        #[label("the model's layer was built here")]
        first: Option<Span>,
        /// The fix.
        #[help]
        help: String,
        /// The calls that led here.
        #[label(collection, "called from here")]
        calls: Vec<Span>,
    },

    /// A file that cannot be opened, read or written: `model.load("missing.safetensors")`.
    #[error("{message}")]
    #[diagnostic(code(E0501))]
    FileAccess {
        /// The path and what the operating system said.
        message: String,
        /// The call.
        #[label("{label}")]
        span: Span,
        /// Short label text: `this read failed`.
        label: String,
        /// The fix.
        #[help]
        help: Option<String>,
        /// The calls that led here.
        #[label(collection, "called from here")]
        calls: Vec<Span>,
    },

    /// A file whose contents are not what the call reads: not safetensors, or a checkpoint
    /// whose names or shapes do not fit the model.
    #[error("{message}")]
    #[diagnostic(code(E0502))]
    InvalidFile {
        /// What is wrong, naming the tensors at fault.
        message: String,
        /// The call.
        #[label("{label}")]
        span: Span,
        /// Short label text.
        label: String,
        /// The fix.
        #[help]
        help: Option<String>,
        /// The calls that led here.
        #[label(collection, "called from here")]
        calls: Vec<Span>,
    },

    /// A tensor operation failed (E0301–E0311, E0314, E0401–E0405, E0503): see
    /// [`TensorDiagnostic`] and its codes.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Tensor(Box<TensorDiagnostic>),

    /// The interrupt flag was raised (Ctrl-C in the REPL).
    #[error("interrupted")]
    #[diagnostic(code(E0506))]
    Interrupted {
        /// The loop or call that noticed.
        #[label("stopped here")]
        span: Span,
        /// The calls that led here.
        #[label(collection, "called from here")]
        calls: Vec<Span>,
    },
}

/// How the message of [`RuntimeError::too_deep`] starts.
const TOO_DEEP: &str = "maximum recursion depth";

impl RuntimeError {
    /// A value error (E0505) at `span`.
    pub fn value(message: impl Into<String>, span: Span, label: impl Into<String>) -> Self {
        RuntimeError::ValueError {
            message: message.into(),
            span,
            label: label.into(),
            help: None,
            calls: Vec::new(),
        }
    }

    /// A value error (E0505) with a fix.
    pub fn value_with_help(
        message: impl Into<String>,
        span: Span,
        label: impl Into<String>,
        help: impl Into<String>,
    ) -> Self {
        RuntimeError::ValueError {
            message: message.into(),
            span,
            label: label.into(),
            help: Some(help.into()),
            calls: Vec::new(),
        }
    }

    /// Runaway recursion (E0505): the call at `span` to `callee` (a `fn` or a net) would
    /// nest deeper than `limit` calls.
    pub fn too_deep(limit: usize, span: Span, callee: &str, help: impl Into<String>) -> Self {
        RuntimeError::value_with_help(
            format!("{TOO_DEEP} ({limit}) exceeded"),
            span,
            format!("call to `{callee}` too deep"),
            help,
        )
    }

    /// Whether this is [`RuntimeError::too_deep`]: a net build stops on it rather than
    /// leaving the model for its first call to build, which would recurse as deep again.
    pub fn is_too_deep(&self) -> bool {
        matches!(self, RuntimeError::ValueError { message, .. } if message.starts_with(TOO_DEEP))
    }

    /// A wrong-type error (E0207) at `span`.
    pub fn wrong_type(
        what: impl Into<String>,
        expected: impl Into<String>,
        got: impl Into<String>,
        span: Span,
    ) -> Self {
        RuntimeError::Bind(Box::new(BindProblem::WrongType {
            what: what.into(),
            expected: expected.into(),
            got: got.into(),
            span,
            help: None,
            calls: Vec::new(),
        }))
    }

    /// Adds a fix to a wrong-type error; other variants are returned unchanged.
    pub fn with_help(mut self, text: impl Into<String>) -> Self {
        match &mut self {
            RuntimeError::ValueError { help, .. } => *help = Some(text.into()),
            RuntimeError::Bind(problem) => {
                if let BindProblem::WrongType { help, .. } = problem.as_mut() {
                    *help = Some(text.into());
                }
            }
            _ => {}
        }
        self
    }

    /// The span of the expression that failed.
    pub fn span(&self) -> Span {
        match self {
            RuntimeError::UndefinedName { span, .. }
            | RuntimeError::NoSuchField { span, .. }
            | RuntimeError::AssignToUndeclared { span, .. }
            | RuntimeError::StatementNotAllowed { span, .. }
            | RuntimeError::AssertionFailed { span, .. }
            | RuntimeError::ValueError { span, .. }
            | RuntimeError::NetInputMismatch { span, .. }
            | RuntimeError::LayerStructureChanged { span, .. }
            | RuntimeError::FileAccess { span, .. }
            | RuntimeError::InvalidFile { span, .. }
            | RuntimeError::Interrupted { span, .. } => *span,
            RuntimeError::Tensor(t) => t.span,
            RuntimeError::Bind(b) => b.span(),
            RuntimeError::IndexOutOfRange(e) => e.span,
        }
    }

    /// The spans of the calls that led to the error, innermost first.
    pub fn calls(&self) -> &[Span] {
        match self {
            RuntimeError::UndefinedName { calls, .. }
            | RuntimeError::NoSuchField { calls, .. }
            | RuntimeError::AssignToUndeclared { calls, .. }
            | RuntimeError::StatementNotAllowed { calls, .. }
            | RuntimeError::AssertionFailed { calls, .. }
            | RuntimeError::ValueError { calls, .. }
            | RuntimeError::NetInputMismatch { calls, .. }
            | RuntimeError::LayerStructureChanged { calls, .. }
            | RuntimeError::FileAccess { calls, .. }
            | RuntimeError::InvalidFile { calls, .. }
            | RuntimeError::Interrupted { calls, .. } => calls,
            RuntimeError::Tensor(t) => &t.calls,
            RuntimeError::Bind(b) => b.calls(),
            RuntimeError::IndexOutOfRange(e) => &e.calls,
        }
    }

    /// Records that the error passed out of the call at `span`. A call site is labelled
    /// once, however often (mutual) recursion passed through it.
    pub(crate) fn push_call(&mut self, span: Span) {
        if self.calls().contains(&span) {
            return;
        }
        match self {
            RuntimeError::UndefinedName { calls, .. }
            | RuntimeError::NoSuchField { calls, .. }
            | RuntimeError::AssignToUndeclared { calls, .. }
            | RuntimeError::StatementNotAllowed { calls, .. }
            | RuntimeError::AssertionFailed { calls, .. }
            | RuntimeError::ValueError { calls, .. }
            | RuntimeError::NetInputMismatch { calls, .. }
            | RuntimeError::LayerStructureChanged { calls, .. }
            | RuntimeError::FileAccess { calls, .. }
            | RuntimeError::InvalidFile { calls, .. }
            | RuntimeError::Interrupted { calls, .. } => calls.push(span),
            RuntimeError::Tensor(t) => t.calls.push(span),
            RuntimeError::Bind(b) => b.push_call(span),
            RuntimeError::IndexOutOfRange(e) => e.calls.push(span),
        }
    }
}

/// A warning raised while running: the program goes on, and the report layer shows it.
#[derive(Debug, Error, Diagnostic, Clone, PartialEq)]
pub enum RuntimeWarning {
    /// Reading `.grad` of a tensor that is not a leaf, which backward leaves none:
    /// `let y = x * 2; y.sum().backward(); print(y.grad)`.
    #[error("`.grad` of a non-leaf tensor is none: backward fills it only for leaves")]
    #[diagnostic(
        code(W0406),
        severity(Warning),
        help(
            "call `.retain_grad()` on it before backward to keep its gradient, or read `.grad` of the leaf it came from"
        )
    )]
    GradOfNonLeaf {
        /// The `.grad` read.
        #[label("this is none")]
        span: Span,
    },
}

pub use crate::diagnostic::closest;

#[cfg(test)]
mod tests {
    use super::*;
    use miette::Diagnostic;
    use std::collections::HashSet;

    /// One instance of every variant, so the code uniqueness test sees them all.
    fn one_of_each() -> Vec<RuntimeError> {
        let s = Span::new(0, 1);
        let t = String::new;
        vec![
            RuntimeError::UndefinedName {
                name: t(),
                span: s,
                help: t(),
                calls: vec![],
            },
            RuntimeError::NoSuchField {
                type_name: t(),
                name: t(),
                span: s,
                help: t(),
                calls: vec![],
            },
            RuntimeError::Bind(Box::new(BindProblem::TooManyArguments {
                callee: t(),
                max: 0,
                given: 1,
                span: s,
                help: t(),
                calls: vec![],
            })),
            RuntimeError::wrong_type("x", "int", "str", s),
            RuntimeError::AssignToUndeclared {
                name: t(),
                span: s,
                help: t(),
                calls: vec![],
            },
            RuntimeError::StatementNotAllowed {
                statement: "break",
                place: "a loop",
                span: s,
                calls: vec![],
            },
            RuntimeError::IndexOutOfRange(Box::new(IndexOutOfRange {
                index: 0,
                len: 0,
                what: t(),
                span: s,
                calls: vec![],
            })),
            RuntimeError::AssertionFailed {
                message: t(),
                span: s,
                calls: vec![],
            },
            RuntimeError::value("x", s, "x"),
            RuntimeError::Interrupted {
                span: s,
                calls: vec![],
            },
            RuntimeError::NetInputMismatch {
                message: t(),
                span: s,
                label: t(),
                declared: s,
                declared_label: t(),
                help: t(),
                calls: vec![],
            },
            RuntimeError::LayerStructureChanged {
                message: t(),
                span: s,
                label: t(),
                first: None,
                help: t(),
                calls: vec![],
            },
            RuntimeError::FileAccess {
                message: t(),
                span: s,
                label: t(),
                help: None,
                calls: vec![],
            },
            RuntimeError::InvalidFile {
                message: t(),
                span: s,
                label: t(),
                help: None,
                calls: vec![],
            },
        ]
    }

    #[test]
    fn no_two_variants_share_a_code() {
        let mut seen = HashSet::new();
        let tensor_errors = crate::eval::tensor_error::TensorCode::ALL
            .map(|code| TensorDiagnostic::new(code, "x", Span::new(0, 1), "x").boxed());
        let warning = RuntimeWarning::GradOfNonLeaf {
            span: Span::new(0, 1),
        };
        let mut codes: Vec<String> = one_of_each()
            .into_iter()
            .chain(tensor_errors.into_iter().map(|e| *e))
            .map(|err| err.code().map(|c| c.to_string()).unwrap_or_default())
            .collect();
        codes.extend(warning.code().map(|c| c.to_string()));
        for code in codes {
            assert!(
                code.starts_with('E') || code.starts_with('W'),
                "a variant has no code"
            );
            assert!(seen.insert(code.clone()), "{code} is used twice");
        }
    }

    #[test]
    fn call_stack_renders_as_labels() {
        let mut err = RuntimeError::value("boom", Span::new(5, 6), "here");
        err.push_call(Span::new(10, 14));
        let labels: Vec<_> = err.labels().into_iter().flatten().collect();
        assert_eq!(labels.len(), 2);
        assert_eq!(labels[1].label(), Some("called from here"));
        assert_eq!(labels[1].offset(), 10);
    }
}
