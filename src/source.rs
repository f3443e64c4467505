//! Source files and byte spans.
//!
//! Every AST node carries a [`Span`] of `u32` byte offsets into its [`SourceFile`]; spans
//! become miette's `SourceSpan` only at the diagnostic boundary (`report.rs`).

use std::sync::{Arc, OnceLock};

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
///
/// Cloning is cheap (the text is shared). The start of every line is indexed the first
/// time a diagnostic or a line number needs it, so rendering one diagnostic reads only the
/// lines around its span, however large the file.
#[derive(Clone, Debug)]
pub struct SourceFile {
    name: Arc<str>,
    text: Arc<String>,
    /// For a REPL session's text: the entries it is made of, each rendered under its own
    /// name with its own line numbers. Empty for a plain file.
    parts: Arc<Vec<SourcePart>>,
    /// Built on first use; replaced whenever the text grows.
    lines: Arc<OnceLock<LineIndex>>,
}

/// One entry of a REPL session's text (see [`SourceFile::with_parts`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourcePart {
    /// The name a diagnostic shows for it: `<repl:3>`, a loaded file's path.
    pub name: String,
    /// Its byte range in the whole text.
    pub span: Span,
}

/// Where lines start in a text, two ways: after each `\n` (the line numbers of
/// [`SourceFile::line_col`]), and after each `\r\n`, `\r` or `\n` (the lines miette counts
/// when it renders a snippet).
#[derive(Debug)]
struct LineIndex {
    /// Offsets of the lines' first bytes, counting only `\n` as a break; starts with 0.
    newline: Vec<usize>,
    /// The same counting `\r` too; `None` when the text has no `\r` (then it equals
    /// `newline`).
    any_break: Option<Vec<usize>>,
}

impl LineIndex {
    fn new(text: &str) -> LineIndex {
        let bytes = text.as_bytes();
        let mut newline = vec![0];
        newline.extend(memchr_all(bytes, b'\n').map(|i| i + 1));
        let any_break = bytes.contains(&b'\r').then(|| {
            let mut starts = vec![0];
            let mut i = 0;
            while i < bytes.len() {
                match bytes[i] {
                    b'\r' if bytes.get(i + 1) == Some(&b'\n') => {
                        i += 1;
                        starts.push(i + 1);
                    }
                    b'\r' | b'\n' => starts.push(i + 1),
                    _ => {}
                }
                i += 1;
            }
            starts
        });
        LineIndex { newline, any_break }
    }

    fn any_break(&self) -> &[usize] {
        self.any_break.as_deref().unwrap_or(&self.newline)
    }
}

/// Every position of `byte` in `bytes`.
fn memchr_all(bytes: &[u8], byte: u8) -> impl Iterator<Item = usize> + '_ {
    bytes
        .iter()
        .enumerate()
        .filter(move |(_, b)| **b == byte)
        .map(|(i, _)| i)
}

/// The 0-based line holding `offset`, given the lines' start offsets.
fn line_of(starts: &[usize], offset: usize) -> usize {
    starts.partition_point(|&s| s <= offset).saturating_sub(1)
}

impl SourceFile {
    /// A source named `name` (a path, or `<repl>`) holding `text`.
    pub fn new(name: impl AsRef<str>, text: impl Into<String>) -> SourceFile {
        SourceFile {
            name: name.as_ref().into(),
            text: Arc::new(text.into()),
            parts: Arc::default(),
            lines: Arc::default(),
        }
    }

    /// A source made of several entries (a REPL session): a diagnostic shows the entry
    /// its span falls in, under the entry's name and with line numbers counted from the
    /// entry's first line, as if each entry were its own file. Spans outside every part
    /// render against the whole text. `parts` are in text order.
    pub fn with_parts(
        name: impl AsRef<str>,
        text: impl Into<String>,
        parts: Vec<SourcePart>,
    ) -> SourceFile {
        SourceFile {
            parts: Arc::new(parts),
            ..SourceFile::new(name, text)
        }
    }

    /// Appends `separator` (when the text is not empty), then `hidden` and `text`, as a new
    /// part named `name` showing only `text`; returns the offset where `hidden` starts. The
    /// text is copied only when a clone of this source is still alive elsewhere.
    pub fn push_part(&mut self, separator: &str, hidden: &str, name: &str, text: &str) -> u32 {
        let whole = Arc::make_mut(&mut self.text);
        if !whole.is_empty() {
            whole.push_str(separator);
        }
        let start = whole.len();
        whole.push_str(hidden);
        let shown = whole.len();
        whole.push_str(text);
        let span = Span::new(shown, whole.len());
        Arc::make_mut(&mut self.parts).push(SourcePart {
            name: name.to_string(),
            span,
        });
        self.lines = Arc::default();
        start as u32
    }

    /// The entries of a session's text, in order (empty for a plain file).
    pub fn parts(&self) -> &[SourcePart] {
        &self.parts
    }

    /// The file's name as given.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The whole text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The text a span covers.
    pub fn slice(&self, span: Span) -> &str {
        &self.text()[span.start as usize..span.end as usize]
    }

    fn line_index(&self) -> &LineIndex {
        self.lines.get_or_init(|| LineIndex::new(&self.text))
    }

    /// 1-based line and column (in bytes) of a byte offset.
    pub fn line_col(&self, offset: u32) -> (usize, usize) {
        let offset = (offset as usize).min(self.text().len());
        let starts = &self.line_index().newline;
        let line = line_of(starts, offset);
        (line + 1, offset - starts[line] + 1)
    }

    /// The source a report renders against: the whole text, or the entry a span falls in.
    pub fn source_code(&self) -> &dyn miette::SourceCode {
        self
    }

    /// What miette's own reader gives for `span` over the whole text, computed on the few
    /// lines around the span only: the reader walks its input from the start, so handing
    /// it the whole text would make each diagnostic cost the size of the file.
    fn read_window<'a>(
        &'a self,
        span: &miette::SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'a> + 'a>, miette::MietteError> {
        use miette::SourceCode;
        let text = self.text();
        let starts = self.line_index().any_break();
        let span_line = line_of(starts, span.offset().min(text.len()));
        let end = span.offset().saturating_add(span.len()).min(text.len());
        // The window starts on a line boundary a line before the context lines (the reader
        // may stop on the byte just before an empty span), and ends a line past the
        // context after the span, where the reader stops.
        let first = span_line.saturating_sub(context_lines_before.saturating_add(1));
        let last = line_of(starts, end)
            .saturating_add(context_lines_after)
            .saturating_add(2);
        let window_start = starts[first];
        let window_end = starts.get(last).copied().unwrap_or(text.len());
        let local = miette::SourceSpan::new((span.offset() - window_start).into(), span.len());
        let window = &text.as_bytes()[window_start..window_end];
        let contents = window.read_span(&local, context_lines_before, context_lines_after)?;
        let data: &'a [u8] = contents.data();
        Ok(Box::new(
            miette::MietteSpanContents::new_named(
                self.name().to_string(),
                data,
                miette::SourceSpan::new(
                    (contents.span().offset() + window_start).into(),
                    contents.span().len(),
                ),
                contents.line() + first,
                contents.column(),
                contents.line_count() + first,
            )
            .with_language("cnn"),
        ))
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
        let starting = self
            .parts
            .partition_point(|p| p.span.start as usize <= span.offset());
        let Some(part) = starting.checked_sub(1).map(|i| &self.parts[i]) else {
            return self.read_window(span, context_lines_before, context_lines_after);
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

#[cfg(test)]
mod tests {
    use super::*;
    use miette::{SourceCode, SpanContents};

    fn summary(c: &dyn SpanContents<'_>) -> (Vec<u8>, usize, usize, usize, usize, usize) {
        (
            c.data().to_vec(),
            c.span().offset(),
            c.span().len(),
            c.line(),
            c.column(),
            c.line_count(),
        )
    }

    #[test]
    fn the_window_reads_what_the_whole_text_reads() {
        let text = "let a = 1\n\nlet b = a +\r\n  2\rlet c = [1,\n 2]\n# end\nlet d = 4";
        let source = SourceFile::new("t.cnn", text);
        let whole = text.as_bytes();
        for offset in 0..=text.len() {
            for len in 0..=(text.len() + 1 - offset).min(14) {
                for context in 0..3 {
                    let span = miette::SourceSpan::new(offset.into(), len);
                    let expected = whole.read_span(&span, context, context);
                    let got = source.read_span(&span, context, context);
                    match (expected, got) {
                        (Ok(e), Ok(g)) => {
                            assert_eq!(summary(&*e), summary(&*g), "{offset}+{len}, {context}");
                            assert_eq!(g.name(), Some("t.cnn"));
                        }
                        (Err(_), Err(_)) => {}
                        (e, g) => panic!("{offset}+{len}: {:?} vs {:?}", e.is_ok(), g.is_ok()),
                    }
                }
            }
        }
    }

    #[test]
    fn line_and_column_count_newlines_only() {
        let source = SourceFile::new("t.cnn", "ab\ncd\r\nef\rg");
        assert_eq!(source.line_col(0), (1, 1));
        assert_eq!(source.line_col(2), (1, 3));
        assert_eq!(source.line_col(3), (2, 1));
        assert_eq!(source.line_col(9), (3, 3));
        assert_eq!(source.line_col(10), (3, 4));
        assert_eq!(source.line_col(99), (3, 5));
    }

    #[test]
    fn a_part_pushed_onto_a_shared_source_leaves_the_clone_as_it_was() {
        let mut source = SourceFile::with_parts("<repl>", "", Vec::new());
        assert_eq!(source.push_part("\n;\n", "", "<repl:1>", "let a = 1"), 0);
        let kept = source.clone();
        assert_eq!(source.line_col(8), (1, 9));
        assert_eq!(source.push_part("\n;\n", "", "<repl:2>", "a"), 12);
        assert_eq!(source.text(), "let a = 1\n;\na");
        assert_eq!(source.line_col(12), (3, 1));
        assert_eq!(kept.text(), "let a = 1");
        assert_eq!(kept.parts().len(), 1);
        assert_eq!(source.parts()[1].span, Span::new(12, 13));
    }
}
