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
    /// For a REPL session's text: the entries it is made of, each rendered under its own
    /// name with its own line numbers. Empty for a plain file.
    parts: Arc<[SourcePart]>,
}

/// One entry of a REPL session's text (see [`SourceFile::with_parts`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourcePart {
    /// The name a diagnostic shows for it: `<repl:3>`, a loaded file's path.
    pub name: String,
    /// Its byte range in the whole text.
    pub span: Span,
}

impl SourceFile {
    /// A source named `name` (a path, or `<repl>`) holding `text`.
    pub fn new(name: impl AsRef<str>, text: impl Into<String>) -> SourceFile {
        SourceFile {
            inner: Arc::new(miette::NamedSource::new(name, text.into()).with_language("cnn")),
            parts: Arc::new([]),
        }
    }

    /// A source made of several entries (a REPL session): a diagnostic shows the entry
    /// its span falls in, under the entry's name and with line numbers counted from the
    /// entry's first line, as if each entry were its own file. Spans outside every part
    /// render against the whole text.
    pub fn with_parts(
        name: impl AsRef<str>,
        text: impl Into<String>,
        parts: Vec<SourcePart>,
    ) -> SourceFile {
        SourceFile {
            parts: parts.into(),
            ..SourceFile::new(name, text)
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

    /// The source a report renders against: the whole text, or the entry a span falls in.
    pub fn source_code(&self) -> &dyn miette::SourceCode {
        if self.parts.is_empty() {
            &*self.inner
        } else {
            self
        }
    }
}

impl miette::SourceCode for SourceFile {
    fn read_span<'a>(
        &'a self,
        span: &miette::SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'a> + 'a>, miette::MietteError> {
        let text = self.text();
        // The entry the span starts in; a span just past an entry's end (the end of the
        // input, in the separator after it) is shown at that end.
        let Some(part) = self
            .parts
            .iter()
            .rev()
            .find(|p| p.span.start as usize <= span.offset())
        else {
            return self
                .inner
                .read_span(span, context_lines_before, context_lines_after);
        };
        let (offset, span) = if span.offset() > part.span.end as usize {
            (part.span.end as usize, (part.span.end as usize, 0).into())
        } else {
            (span.offset(), *span)
        };
        let (start, end) = (part.span.start as usize, part.span.end as usize);
        let span_end = offset + span.len();
        if span_end > end + 1 {
            // A span across entries has no one entry to show; miette then renders each
            // label under its own entry instead of merging them.
            return Err(miette::MietteError::OutOfBounds);
        }
        // The lines around the span, never past the entry's edges, so no other entry shows.
        let line_start = |at: usize| text[start..at].rfind('\n').map_or(start, |i| start + i + 1);
        let line_end = |at: usize| text[at..end].find('\n').map_or(end, |i| at + i);
        let mut first = line_start(offset);
        for _ in 0..context_lines_before {
            if first == start {
                break;
            }
            first = line_start(first - 1);
        }
        let mut last = line_end(span_end.saturating_sub(1).clamp(offset, end));
        for _ in 0..context_lines_after {
            if last >= end {
                break;
            }
            last = line_end(last + 1);
        }
        let data = &text[first..last];
        Ok(Box::new(
            miette::MietteSpanContents::new_named(
                part.name.clone(),
                data.as_bytes(),
                (first, last - first).into(),
                text[start..first].matches('\n').count(),
                offset - line_start(offset),
                data.matches('\n').count() + 1,
            )
            .with_language("cnn"),
        ))
    }
}
