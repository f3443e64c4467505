//! Syntax diagnostics: codes E0101–E0104 of LANGUAGE.md §10.
//!
//! One variant per code, so no two variants share a code; the message, labels and help
//! carry the specifics. Errors hold spans, never source text: the report layer attaches
//! the [`SourceFile`](crate::source::SourceFile).

use miette::{Diagnostic, SourceSpan};
use thiserror::Error;

use crate::source::Span;

/// A problem found while turning source text into an AST.
#[derive(Clone, Debug, Error, Diagnostic, PartialEq, Eq)]
pub enum SyntaxError {
    /// E0101: a token where it cannot go, or a construct the grammar cannot accept.
    ///
    /// ```text
    /// let y = foo(1, )) + 2     # expected an expression or `)`, found `)`
    /// 1 < x < 3                 # comparisons do not chain
    /// f(x) = 3                  # a call is not a place to assign to
    /// fn f(a=1, b) { }          # a parameter without default after one with
    /// ```
    #[error("{message}")]
    #[diagnostic(code(E0101))]
    Unexpected {
        /// The headline, e.g. "expected an expression, found `)`".
        message: String,
        /// The offending token or construct.
        #[label("{label}")]
        span: SourceSpan,
        /// What the label says.
        label: String,
        /// A concrete fix, when there is one.
        #[help]
        help: Option<String>,
    },

    /// E0102: a bracket that is never closed, or closed by the wrong kind.
    ///
    /// ```text
    /// let y = Conv2d(1, 8, 3    # `(` never closed
    /// let z = [1, 2)            # `[` closed by `)`
    /// ```
    #[error("unclosed `{opener}`")]
    #[diagnostic(code(E0102))]
    Unclosed {
        /// The bracket left open: `(`, `[` or `{`.
        opener: char,
        /// Where it was opened.
        #[label(primary, "this `{opener}` is never closed")]
        open_span: SourceSpan,
        /// Where the input ended, or where a mismatched closer was found.
        #[label("{end_label}")]
        end_span: SourceSpan,
        /// What the second label says.
        end_label: String,
        /// How to close it.
        #[help]
        help: Option<String>,
    },

    /// E0103: a literal that does not denote a value.
    ///
    /// ```text
    /// let n = 99999999999999999999    # does not fit in 64 bits
    /// print("a\qb")                   # `\q` is not an escape
    /// print("no end                   # the string is never closed
    /// ```
    #[error("{message}")]
    #[diagnostic(code(E0103))]
    InvalidLiteral {
        /// The headline, e.g. "integer literal too large".
        message: String,
        /// The literal, or the bad escape inside it.
        #[label("{label}")]
        span: SourceSpan,
        /// What the label says.
        label: String,
        /// A concrete fix, when there is one.
        #[help]
        help: Option<String>,
    },

    /// E0104: a statement in a place where it has no meaning.
    ///
    /// ```text
    /// input x: [N, 3, H, W]     # at top level: `input` belongs in a net body
    /// return 1                  # outside any fn or net
    /// break                     # outside any loop
    /// ```
    #[error("`{statement}` is not allowed {place}")]
    #[diagnostic(code(E0104))]
    NotAllowed {
        /// The statement's keyword: `input`, `return`, `break`, `continue`.
        statement: String,
        /// Where it was found, e.g. "outside a loop".
        place: String,
        /// The statement.
        #[label("`{statement}` here")]
        span: SourceSpan,
        /// Where it may go instead.
        #[help]
        help: Option<String>,
    },
}

impl SyntaxError {
    /// An E0101 at `span`.
    pub(crate) fn unexpected(
        message: impl Into<String>,
        span: Span,
        label: impl Into<String>,
        help: Option<String>,
    ) -> SyntaxError {
        SyntaxError::Unexpected {
            message: message.into(),
            span: span.into(),
            label: label.into(),
            help,
        }
    }

    /// An E0103 at `span`.
    pub(crate) fn invalid_literal(
        message: impl Into<String>,
        span: Span,
        label: impl Into<String>,
        help: Option<String>,
    ) -> SyntaxError {
        SyntaxError::InvalidLiteral {
            message: message.into(),
            span: span.into(),
            label: label.into(),
            help,
        }
    }

    /// The same error with `help` in place of its own, where it has a help slot.
    pub(crate) fn with_help(mut self, new_help: Option<String>) -> SyntaxError {
        match &mut self {
            SyntaxError::Unexpected { help, .. }
            | SyntaxError::Unclosed { help, .. }
            | SyntaxError::InvalidLiteral { help, .. }
            | SyntaxError::NotAllowed { help, .. } => *help = new_help,
        }
        self
    }

    /// The diagnostic code, `"E0101"` to `"E0104"`.
    pub fn code_str(&self) -> &'static str {
        match self {
            SyntaxError::Unexpected { .. } => "E0101",
            SyntaxError::Unclosed { .. } => "E0102",
            SyntaxError::InvalidLiteral { .. } => "E0103",
            SyntaxError::NotAllowed { .. } => "E0104",
        }
    }

    /// The same error with its spans moved `by` bytes later (see
    /// [`Program::shift_spans`](crate::syntax::ast::Program::shift_spans)).
    pub fn shifted(mut self, by: usize) -> SyntaxError {
        let shift = |s: &mut SourceSpan| *s = SourceSpan::new((s.offset() + by).into(), s.len());
        match &mut self {
            SyntaxError::Unexpected { span, .. }
            | SyntaxError::InvalidLiteral { span, .. }
            | SyntaxError::NotAllowed { span, .. } => shift(span),
            SyntaxError::Unclosed {
                open_span,
                end_span,
                ..
            } => {
                shift(open_span);
                shift(end_span);
            }
        }
        self
    }

    /// The primary span: the token, opener or statement at fault.
    pub fn span(&self) -> Span {
        let span = match self {
            SyntaxError::Unexpected { span, .. }
            | SyntaxError::InvalidLiteral { span, .. }
            | SyntaxError::NotAllowed { span, .. } => *span,
            SyntaxError::Unclosed { open_span, .. } => *open_span,
        };
        Span::new(span.offset(), span.offset() + span.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every variant has its own code (STYLE.md habit 2).
    #[test]
    fn codes_are_distinct() {
        let span = Span::new(0, 1);
        let all = [
            SyntaxError::unexpected("m", span, "l", None),
            SyntaxError::Unclosed {
                opener: '(',
                open_span: span.into(),
                end_span: span.into(),
                end_label: String::new(),
                help: None,
            },
            SyntaxError::invalid_literal("m", span, "l", None),
            SyntaxError::NotAllowed {
                statement: "break".into(),
                place: "here".into(),
                span: span.into(),
                help: None,
            },
        ];
        let mut codes: Vec<String> = all
            .iter()
            .map(|e| e.code().expect("every variant has a code").to_string())
            .collect();
        for (error, code) in all.iter().zip(&codes) {
            assert_eq!(error.code_str(), code);
        }
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
    }
}
