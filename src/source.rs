//! Source files and byte spans.
//!
//! Every AST node carries a [`Span`] of `u32` byte offsets into its [`SourceFile`]; spans
//! become miette's `SourceSpan` only at the diagnostic boundary (`report.rs`).

use std::sync::Arc;

/// A half-open byte range `start..end` in one source file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Span {
    /// Offset of the first byte.
    pub start: u32,
    /// Offset one past the last byte.
    pub end: u32,
}

impl Span {
    /// The span `start..end`.
    pub fn new(start: usize, end: usize) -> Span {
        Span {
            start: start as u32,
            end: end as u32,
        }
    }

    /// The smallest span covering both `self` and `other`: a parent's span is the merge of
    /// its children's.
    pub fn merge(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }

    /// Length in bytes.
    pub fn len(self) -> usize {
        (self.end - self.start) as usize
    }

    /// Whether the span covers no bytes.
    pub fn is_empty(self) -> bool {
        self.start == self.end
    }
}

impl From<Span> for miette::SourceSpan {
    fn from(span: Span) -> miette::SourceSpan {
        (span.start as usize, span.len()).into()
    }
}

/// A value with the span of source text it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Spanned<T> {
    /// The value.
    pub node: T,
    /// Where it was written.
    pub span: Span,
}

impl<T> Spanned<T> {
    /// Attach `span` to `node`.
    pub fn new(node: T, span: Span) -> Spanned<T> {
        Spanned { node, span }
    }
}

/// A named piece of source text: a script file, a REPL entry.
#[derive(Clone, Debug)]
pub struct SourceFile {
    inner: Arc<miette::NamedSource<String>>,
}

impl SourceFile {
    /// A source named `name` (a path, or `<repl>`) holding `text`.
    pub fn new(name: impl AsRef<str>, text: impl Into<String>) -> SourceFile {
        SourceFile {
            inner: Arc::new(miette::NamedSource::new(name, text.into()).with_language("cnn")),
        }
    }

    /// The file's name as given.
    pub fn name(&self) -> &str {
        self.inner.name()
    }

    /// The whole text.
    pub fn text(&self) -> &str {
        self.inner.inner()
    }

    /// The text a span covers.
    pub fn slice(&self, span: Span) -> &str {
        &self.text()[span.start as usize..span.end as usize]
    }

    /// 1-based line and column of a byte offset.
    pub fn line_col(&self, offset: u32) -> (usize, usize) {
        let before = &self.text()[..(offset as usize).min(self.text().len())];
        let line = before.matches('\n').count() + 1;
        let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        (line, col)
    }

    /// The miette source, for attaching to a report.
    pub fn named_source_ref(&self) -> &miette::NamedSource<String> {
        &self.inner
    }
}
