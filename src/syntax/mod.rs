//! Source text to AST: a newline pre-pass, the pest grammar in `grammar/cnn.pest`, and the
//! lowering of pest pairs into [`ast`] nodes with a Pratt parser.
//!
//! [`parse`] is the entry point; [`parse_expr`] parses a lone expression (tests, the REPL's
//! `:type`), and [`needs_continuation`] tells the REPL when to show its `...>` prompt.

pub mod ast;
pub mod error;
pub mod lower;
pub mod pest_error;
pub mod prepass;
pub mod printer;

use pest::Parser;

use crate::source::SourceFile;
use crate::syntax::ast::{Expr, Program};
use crate::syntax::lower::{CnnParser, Rule};

pub use crate::syntax::error::SyntaxError;
pub use crate::syntax::prepass::needs_continuation;

/// Parse a whole script (or one REPL entry) into a [`Program`].
///
/// Bad input never panics: it gives at least one [`SyntaxError`]. Lowering problems
/// (assignment targets, misplaced statements, literals) are all reported together; a
/// grammar error stops the parse, so it comes alone.
pub fn parse(source: &SourceFile) -> Result<Program, Vec<SyntaxError>> {
    parse_text(source.text())
}

/// [`parse`] on bare text; spans are byte offsets into `text`.
pub fn parse_text(text: &str) -> Result<Program, Vec<SyntaxError>> {
    run(text, Rule::program, lower::lower_program)
}

/// Parse `text` as one expression, surrounded by nothing but whitespace and comments.
pub fn parse_expr(text: &str) -> Result<Expr, Vec<SyntaxError>> {
    run(text, Rule::expr_input, lower::lower_expr_input)
}

fn run<T>(
    text: &str,
    rule: Rule,
    lower: impl FnOnce(pest::iterators::Pair<'_, Rule>) -> Result<T, Vec<SyntaxError>>,
) -> Result<T, Vec<SyntaxError>> {
    let prepared = prepass::prepare(text).map_err(|e| vec![e])?;
    match CnnParser::parse(rule, &prepared.text) {
        Ok(mut pairs) => {
            if let Some(bracket_error) = prepared.bracket_error {
                return Err(vec![bracket_error]);
            }
            let pair = pairs
                .next()
                .expect("a successful parse yields its start rule");
            lower(pair)
        }
        Err(error) => {
            // Parse again with pest recording the tokens it tried, for the message.
            pest_error::enable_detail();
            let error = CnnParser::parse(rule, &prepared.text)
                .err()
                .unwrap_or(error);
            let error = pest_error::convert(&prepared.text, error);
            // An unclosed bracket usually explains whatever pest tripped over after it;
            // an error before the bracket was opened is a separate, earlier mistake.
            Err(vec![match prepared.bracket_error {
                Some(bracket) if bracket.span().start <= error.span().start => bracket,
                _ => error,
            }])
        }
    }
}
