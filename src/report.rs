//! The one place that renders diagnostics: graphical for people (colour when the terminal
//! has it), plain for snapshot tests, JSON (miette's `JSONReportHandler`, one report per
//! line) for editors and the conformance runner.

use std::fmt;

use miette::{
    Diagnostic, GraphicalReportHandler, GraphicalTheme, JSONReportHandler, LabeledSpan,
    MietteHandlerOpts, ReportHandler, Severity, SourceCode,
};

use crate::source::SourceFile;

/// How diagnostics are written out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// miette's graphical renderer, coloured when the output is a terminal.
    Human,
    /// The graphical renderer without colour at a fixed width (for snapshot tests).
    Plain {
        /// Wrap width in columns.
        width: usize,
    },
    /// One JSON object per report, in miette's `JSONReportHandler` form.
    Json,
}

/// One diagnostic from any stage, together with the source its spans point into.
pub struct Problem {
    diagnostic: Box<dyn Diagnostic>,
    source: SourceFile,
}

impl Problem {
    /// Pair a stage's diagnostic with the source it was found in.
    pub fn new(diagnostic: impl Diagnostic + 'static, source: &SourceFile) -> Problem {
        Problem {
            diagnostic: Box::new(diagnostic),
            source: source.clone(),
        }
    }

    /// The stable code (`E0302`), if the diagnostic has one.
    pub fn code(&self) -> Option<String> {
        self.diagnostic.code().map(|c| c.to_string())
    }

    /// The 1-based lines of its labels, in label order (for tests and tools).
    pub fn lines(&self) -> Vec<usize> {
        self.diagnostic
            .labels()
            .into_iter()
            .flatten()
            .map(|l| self.source.line_col(l.offset() as u32).0)
            .collect()
    }

    /// Error, warning or advice; diagnostics without one are errors.
    pub fn severity(&self) -> Severity {
        self.diagnostic.severity().unwrap_or(Severity::Error)
    }

    /// Whether this is an error (as opposed to a warning or advice).
    pub fn is_error(&self) -> bool {
        self.severity() == Severity::Error
    }

    /// The one-line message.
    pub fn message(&self) -> String {
        self.diagnostic.to_string()
    }

    /// Render in `format`, without a trailing newline.
    pub fn render(&self, format: Format) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail; a renderer error would only drop the text.
        let _ = match format {
            Format::Human => {
                let handler = MietteHandlerOpts::new().build();
                fmt::write(&mut out, format_args!("{:?}", WithHandler(&handler, self)))
            }
            Format::Plain { width } => {
                GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor())
                    .with_width(width)
                    .render_report(&mut out, self)
            }
            Format::Json => {
                let mut raw = String::new();
                let done = JSONReportHandler::new().render_report(&mut raw, self);
                escape_controls(&raw, &mut out);
                done
            }
        };
        while out.ends_with('\n') {
            out.pop();
        }
        out
    }
}

/// Copy miette's JSON, escaping as `\u00XX` the control characters it leaves raw (it escapes
/// only newline, tab, carriage return, backspace and form feed), which strict JSON parsers
/// reject. Its own syntax has none, so any control character left is inside a string.
fn escape_controls(json: &str, out: &mut String) {
    for c in json.chars() {
        if c.is_ascii_control() && c != '\u{7f}' {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
}

/// Lets a `ReportHandler` (which renders through `Debug`) write into a `fmt::Write`.
struct WithHandler<'a>(&'a dyn ReportHandler, &'a Problem);

impl fmt::Debug for WithHandler<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.debug(self.1, f)
    }
}

impl fmt::Debug for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(Format::Plain { width: 80 }))
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.diagnostic, f)
    }
}

impl std::error::Error for Problem {}

// Every method but `source_code` delegates: the stage's error knows its spans, the Problem
// knows the text they point into.
impl Diagnostic for Problem {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.diagnostic.code()
    }
    fn severity(&self) -> Option<Severity> {
        self.diagnostic.severity()
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.diagnostic.help()
    }
    fn url<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.diagnostic.url()
    }
    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(self.source.source_code())
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.diagnostic.labels()
    }
    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        self.diagnostic.related()
    }
    fn diagnostic_source(&self) -> Option<&dyn Diagnostic> {
        self.diagnostic.diagnostic_source()
    }
}

/// Render every problem, one after another, in `format` (JSON: one per line).
pub fn render_all(problems: &[Problem], format: Format) -> String {
    let sep = if format == Format::Json { "\n" } else { "\n\n" };
    problems
        .iter()
        .map(|p| p.render(format))
        .collect::<Vec<_>>()
        .join(sep)
}
