//! Turning pest's failures into E0101 diagnostics that name tokens the way a user thinks of
//! them (`an expression`, `)`, `a newline or ;`), never by grammar rule names.
//!
//! pest's detailed parse attempts list the literal tokens it tried at the furthest position
//! it reached; those are grouped here into a short "expected" list.

use std::collections::BTreeSet;
use std::sync::Once;

use pest::error::{Error, ErrorVariant, InputLocation};

use crate::source::Span;
use crate::syntax::error::SyntaxError;
use crate::syntax::lower::Rule;
use crate::syntax::prepass::is_keyword;

/// Ask pest to record the tokens it tried, which the messages are built from. Recording
/// slows parsing down, so it is turned on at the first syntax error and, because it is a
/// process-wide switch, left on: turning it off again would race with other threads.
pub fn enable_detail() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| pest::set_error_detail(true));
}

/// Convert a pest error on `text` (the prepared text) into an E0101.
pub fn convert(text: &str, error: Error<Rule>) -> SyntaxError {
    let location = match error.location {
        InputLocation::Pos(pos) => pos,
        InputLocation::Span((start, _)) => start,
    };
    if let ErrorVariant::CustomError { message } = &error.variant {
        // pest's own stack or call limit: the pre-pass limits should make this unreachable.
        let span = Span::new(location, location);
        return SyntaxError::unexpected(
            format!("the parser gave up: {message}"),
            span,
            "while parsing here",
            Some("simplify the nesting of this statement".into()),
        );
    }
    let (pos, expected) = match error.parse_attempts() {
        Some(attempts) => (
            attempts.max_position.max(location),
            expected_from_tokens(&attempts.expected_tokens()),
        ),
        None => (location, expected_from_rules(&error.variant)),
    };
    let (span, found) = found_at(text, pos);
    let expected = join_expected(&expected);
    let help = keyword_help(text, span, &expected);
    SyntaxError::unexpected(
        format!("expected {expected}, found {found}"),
        span,
        format!("expected {expected}"),
        help,
    )
}

/// What the user may have meant, grouped. The order of the variants is the order they are
/// listed in.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Expected {
    Expression,
    Identifier,
    Token(String),
    Operator,
    Separator,
    EndOfInput,
}

impl Expected {
    fn describe(&self) -> String {
        match self {
            Expected::Expression => "an expression".into(),
            Expected::Identifier => "an identifier".into(),
            Expected::Token(token) => format!("`{token}`"),
            Expected::Operator => "an operator".into(),
            Expected::Separator => "a newline or `;`".into(),
            Expected::EndOfInput => "the end of the input".into(),
        }
    }
}

const OPERATORS: [&str; 17] = [
    "|>", "or", "and", "==", "!=", "<", "<=", ">", ">=", "..", "+", "-", "*", "/", "//", "%", "@",
];

/// `tokens` are pest's `ParsingToken`s, which it does not export by name: only their
/// `Display` text (`"("`, `"0..9"` for a character range) is used.
fn expected_from_tokens<T: std::fmt::Display>(tokens: &[T]) -> BTreeSet<Expected> {
    let texts: Vec<String> = tokens
        .iter()
        .map(|token| {
            let text = token.to_string();
            // A range `0..9` stands for its first character.
            match text.split_once("..") {
                Some((first, _)) if first.chars().count() == 1 => first.to_string(),
                _ => text,
            }
        })
        .collect();
    let has = |t: &str| texts.iter().any(|x| x == t);
    // A digit or a `"` can only start an operand, so an expression was allowed here; then
    // `(`, `[`, `-`, `not`, names and `_` are just the ways it could start.
    let expression = has("0") || has("\"");
    // An infix operator was allowed: `(`, `[` and `.` are then postfix continuations of the
    // operand, too many to list.
    let operator = has("+") || has("|>");
    let mut expected = BTreeSet::new();
    for text in &texts {
        let item = match text.as_str() {
            " " | "\t" | "\r" | "BUILTIN_RULE" => continue,
            "\n" | ";" => Expected::Separator,
            "0" | "\"" => Expected::Expression,
            "A" | "a" | "_" if expression => continue,
            "A" | "a" | "_" => Expected::Identifier,
            "(" | "[" | "-" | "not" | "true" | "false" | "none" if expression => continue,
            "(" | "[" | "." if operator => continue,
            op if operator && OPERATORS.contains(&op) => Expected::Operator,
            "**" if operator => Expected::Operator,
            other => Expected::Token(other.to_string()),
        };
        expected.insert(item);
    }
    // A block's `}` is tried after every statement, even at the top level, where naming it
    // would mislead; a newline or `;` is the answer that always applies.
    if expected.contains(&Expected::Separator) {
        expected.remove(&Expected::Token("}".into()));
    }
    if expected.is_empty() {
        expected.insert(Expected::EndOfInput);
    }
    expected
}

/// A coarser fallback from rule names, for when pest recorded no token attempts.
fn expected_from_rules(variant: &ErrorVariant<Rule>) -> BTreeSet<Expected> {
    let mut expected = BTreeSet::new();
    if let ErrorVariant::ParsingError { positives, .. } = variant {
        for rule in positives {
            expected.insert(match rule {
                Rule::EOI => Expected::EndOfInput,
                Rule::ident => Expected::Identifier,
                Rule::block => Expected::Token("{".into()),
                Rule::params | Rule::call | Rule::paren => Expected::Token("(".into()),
                Rule::shape | Rule::index | Rule::list => Expected::Token("[".into()),
                Rule::field => Expected::Token(".".into()),
                Rule::kw_if => Expected::Token("if".into()),
                Rule::kw_in => Expected::Token("in".into()),
                rule if is_operator_rule(*rule) => Expected::Operator,
                _ => Expected::Expression,
            });
        }
    }
    if expected.is_empty() {
        expected.insert(Expected::Expression);
    }
    expected
}

fn is_operator_rule(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::pipe
            | Rule::or_op
            | Rule::and_op
            | Rule::kw_and
            | Rule::kw_or
            | Rule::eq
            | Rule::ne
            | Rule::le
            | Rule::ge
            | Rule::lt
            | Rule::gt
            | Rule::range
            | Rule::add
            | Rule::sub
            | Rule::pow
            | Rule::mul
            | Rule::floor_div
            | Rule::div
            | Rule::modulo
            | Rule::matmul
    )
}

/// "`,`, `)` or an operator".
fn join_expected(expected: &BTreeSet<Expected>) -> String {
    let items: Vec<String> = expected.iter().map(Expected::describe).collect();
    match items.as_slice() {
        [] => "something else".into(),
        [one] => one.clone(),
        // "an operator, or a newline or `;`": the comma keeps the two "or"s apart.
        [init @ .., last] if expected.last() == Some(&Expected::Separator) => {
            format!("{}, or {last}", init.join(", "))
        }
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// The token at `pos` (after spaces) and how to name it in a message.
fn found_at(text: &str, pos: usize) -> (Span, String) {
    let bytes = text.as_bytes();
    let mut start = pos.min(bytes.len());
    while start < bytes.len() && matches!(bytes[start], b' ' | b'\t' | b'\r') {
        start += 1;
    }
    if start >= bytes.len() {
        // Point just past the last token, where the user stopped typing.
        let end = text.trim_end().len();
        return (Span::new(end, end), "the end of the input".into());
    }
    if bytes[start] == b'\n' {
        return (Span::new(start, start), "a newline".into());
    }
    let len = token_len(&text[start..]);
    let token = &text[start..start + len];
    let found = if token.starts_with('"') {
        "a string".to_string()
    } else {
        format!("`{token}`")
    };
    (Span::new(start, start + len), found)
}

/// The length of the token that starts `rest`: a word, a number, a string, a two-character
/// operator or one character.
fn token_len(rest: &str) -> usize {
    let bytes = rest.as_bytes();
    let run = |pred: fn(u8) -> bool| bytes.iter().take_while(|&&b| pred(b)).count();
    match bytes[0] {
        b'A'..=b'Z' | b'a'..=b'z' | b'_' => run(|b| b.is_ascii_alphanumeric() || b == b'_'),
        b'0'..=b'9' => run(|b| b.is_ascii_alphanumeric() || b == b'.'),
        b'"' => {
            let mut at = 1;
            while at < bytes.len() && !matches!(bytes[at], b'"' | b'\n') {
                at += if bytes[at] == b'\\' { 2 } else { 1 };
            }
            (at + 1).min(bytes.len())
        }
        _ => {
            const LONG: [&str; 12] = [
                "**", "//", "==", "!=", "<=", ">=", "..", "|>", "+=", "-=", "*=", "/=",
            ];
            if LONG.iter().any(|op| rest.starts_with(op)) {
                2
            } else {
                rest.chars().next().map_or(1, char::len_utf8)
            }
        }
    }
}

/// Common slips worth a fix: a keyword where a name was expected, `=` for `==`.
fn keyword_help(text: &str, span: Span, expected: &str) -> Option<String> {
    let token = &text[span.start as usize..span.end as usize];
    if expected.contains("an identifier") && is_keyword(token.as_bytes()) {
        return Some(format!(
            "`{token}` is a keyword and cannot be used as a name"
        ));
    }
    (token == "=" && expected.contains("an operator"))
        .then(|| "to compare two values, write `==`".to_string())
}
