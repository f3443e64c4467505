//! The newline pre-pass, run before pest sees the text.
//!
//! pest has one global WHITESPACE, so it cannot tell a newline that ends a statement from
//! one inside brackets. As Python's tokenizer does, this pass tracks brackets and strings
//! and decides: comments become spaces, and every newline that does not end a statement
//! becomes a space. Every byte keeps its offset, so spans into the prepared text are spans
//! into the source.
//!
//! A newline is *joinable* (LANGUAGE.md §2):
//! - inside `( )` or `[ ]`, unless a `{` opened inside them is still open;
//! - after a binary operator, `,`, `=` or a compound assignment;
//! - before a line whose first token is `|>` (blank and comment-only lines in between
//!   are skipped).
//!
//! The same pass refuses input that would make the recursive-descent parser or the Pratt
//! parser recurse deeply, before pest runs: brackets nested more than [`MAX_NESTING`] deep,
//! and expressions whose operators and brackets would nest more than [`MAX_EXPR_DEPTH`]
//! levels (`- - - - x`, `not not not x`, `a ** b ** c ** ...`).

use crate::source::Span;
use crate::syntax::error::SyntaxError;

/// Brackets `( [ {` may nest at most this deep.
pub const MAX_NESTING: usize = 256;

/// An upper bound on the depth of the tree one expression becomes: operators (prefix,
/// binary, field access) and brackets counted along the way from a separator (`,`, `;`,
/// `:`, `=`, the end of a statement) to the innermost operand.
pub const MAX_EXPR_DEPTH: usize = 1000;

/// The text ready for pest, and a bracket problem pest may or may not trip over first.
#[derive(Debug)]
pub struct Prepared {
    /// The source with comments blanked and joinable newlines turned into spaces; the
    /// same length as the source, every offset unchanged.
    pub text: String,
    /// The first unclosed or mismatched bracket, if any. The caller reports it unless pest
    /// finds an earlier error.
    pub bracket_error: Option<SyntaxError>,
}

/// Prepare `source` for pest. Fails only on input that must not reach pest at all: nesting
/// beyond the limits, or a string that is never closed.
pub fn prepare(source: &str) -> Result<Prepared, SyntaxError> {
    let mut scanner = Scanner::new(source);
    scanner.run()?;
    let bracket_error = scanner
        .bracket_error
        .take()
        .or_else(|| scanner.unclosed_at_end());
    let text = String::from_utf8(scanner.out)
        .expect("only whole ASCII tokens or whole comments are replaced, so UTF-8 survives");
    Ok(Prepared {
        text,
        bracket_error,
    })
}

/// Whether `text` is an incomplete statement the REPL should continue on the next line:
/// a bracket or brace is still open, or the last token is a binary operator, `,`, `=` or
/// `|>`. Text that is wrong in a way more lines cannot fix returns `false`, so the error is
/// shown at once.
pub fn needs_continuation(text: &str) -> bool {
    let mut scanner = Scanner::new(text);
    if scanner.run().is_err() || scanner.bracket_error.is_some() {
        return false;
    }
    !scanner.stack.is_empty() || scanner.last == Last::Continuation
}

/// What kind of token came last, for the joining rules and for telling unary `-` from
/// binary `-`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Last {
    /// Start of input or after a statement separator.
    Start,
    /// A name, literal or closing bracket: a following `-` is binary.
    Operand,
    /// A binary operator, `,`, `=` or compound assignment: a newline after it is joined.
    Continuation,
    /// Anything else: a keyword, a prefix operator, `:`, `.`, an opening bracket.
    Other,
}

/// An open bracket on the stack.
#[derive(Clone, Copy, Debug)]
struct Open {
    /// `(`, `[` or `{`.
    byte: u8,
    /// Its offset.
    offset: usize,
    /// The expression depth inside it right after it opened; separators reset to this.
    base_depth: usize,
    /// The expression depth just before it opened, restored when it closes.
    outer_depth: usize,
}

struct Scanner<'a> {
    src: &'a [u8],
    out: Vec<u8>,
    pos: usize,
    stack: Vec<Open>,
    last: Last,
    /// The running expression depth (see [`MAX_EXPR_DEPTH`]).
    depth: usize,
    bracket_error: Option<SyntaxError>,
    /// The result of the last look-ahead for a `|>` line: up to which offset it holds and
    /// whether a `|>` was found. Every newline in a run of blank lines shares it, which
    /// keeps the pass linear.
    pipe_lookahead: Option<(usize, bool)>,
}

impl<'a> Scanner<'a> {
    fn new(source: &'a str) -> Scanner<'a> {
        Scanner {
            src: source.as_bytes(),
            out: source.as_bytes().to_vec(),
            pos: 0,
            stack: Vec::new(),
            last: Last::Start,
            depth: 0,
            bracket_error: None,
            pipe_lookahead: None,
        }
    }

    fn run(&mut self) -> Result<(), SyntaxError> {
        while self.pos < self.src.len() {
            let start = self.pos;
            let byte = self.src[start];
            match byte {
                b' ' | b'\t' | b'\r' => self.pos += 1,
                b'\n' => self.newline(),
                b'#' => self.comment(),
                b'"' => self.string()?,
                b'(' | b'[' | b'{' => self.open(byte)?,
                b')' | b']' | b'}' => self.close(byte),
                b'0'..=b'9' => {
                    self.number();
                    self.last = Last::Operand;
                }
                b'A'..=b'Z' | b'a'..=b'z' | b'_' => self.word()?,
                _ => self.operator()?,
            }
        }
        Ok(())
    }

    fn newline(&mut self) {
        let at = self.pos;
        self.pos += 1;
        let in_brackets = matches!(self.stack.last(), Some(open) if open.byte != b'{');
        if in_brackets || self.last == Last::Continuation || self.pipe_line_follows(at + 1) {
            self.out[at] = b' ';
        } else {
            // The statement ends here.
            self.depth = self.base_depth();
            self.last = Last::Start;
        }
    }

    /// Whether the next line holding a token starts with `|>`.
    fn pipe_line_follows(&mut self, from: usize) -> bool {
        if let Some((until, found)) = self.pipe_lookahead
            && from <= until
        {
            return found;
        }
        let mut at = from;
        while at < self.src.len() {
            match self.src[at] {
                b' ' | b'\t' | b'\r' | b'\n' => at += 1,
                b'#' => {
                    while at < self.src.len() && self.src[at] != b'\n' {
                        at += 1;
                    }
                }
                _ => break,
            }
        }
        let found = self.src[at..].starts_with(b"|>");
        self.pipe_lookahead = Some((at, found));
        found
    }

    fn comment(&mut self) {
        while self.pos < self.src.len() && self.src[self.pos] != b'\n' {
            self.out[self.pos] = b' ';
            self.pos += 1;
        }
    }

    /// Skip a string literal. Escapes are checked later, by lowering; here only the end
    /// matters, so that a `#` or a bracket inside a string is not taken for syntax.
    fn string(&mut self) -> Result<(), SyntaxError> {
        let start = self.pos;
        self.pos += 1;
        while self.pos < self.src.len() {
            match self.src[self.pos] {
                b'"' => {
                    self.pos += 1;
                    self.last = Last::Operand;
                    return Ok(());
                }
                b'\n' => break,
                b'\\' if self.src.get(self.pos + 1).is_some_and(|&b| b != b'\n') => self.pos += 2,
                _ => self.pos += 1,
            }
        }
        Err(SyntaxError::invalid_literal(
            "unterminated string",
            Span::new(start, self.pos),
            "this string is never closed",
            Some("close it with `\"` on the same line; write a newline inside it as `\\n`".into()),
        ))
    }

    fn open(&mut self, byte: u8) -> Result<(), SyntaxError> {
        let offset = self.pos;
        self.pos += 1;
        if self.stack.len() >= MAX_NESTING {
            return Err(SyntaxError::unexpected(
                format!("brackets nested more than {MAX_NESTING} deep"),
                Span::new(offset, offset + 1),
                format!("this `{}` is one too many", byte as char),
                Some("split the expression with `let` or a `fn`".into()),
            ));
        }
        let outer_depth = self.depth;
        self.deepen(offset, 1)?;
        self.stack.push(Open {
            byte,
            offset,
            base_depth: self.depth,
            outer_depth,
        });
        self.last = Last::Other;
        Ok(())
    }

    fn close(&mut self, byte: u8) {
        let offset = self.pos;
        self.pos += 1;
        self.last = Last::Operand;
        let Some(open) = self.stack.pop() else {
            // A stray closer: pest reports it as an unexpected token.
            return;
        };
        // A closed group is one more level for whatever it is an operand of; bounded by the
        // check made when it opened.
        self.depth = open.outer_depth + 1;
        let expected = closer_of(open.byte);
        if byte != expected && self.bracket_error.is_none() {
            self.bracket_error = Some(SyntaxError::Unclosed {
                opener: open.byte as char,
                open_span: Span::new(open.offset, open.offset + 1).into(),
                end_span: Span::new(offset, offset + 1).into(),
                end_label: format!(
                    "`{}` found here, expected `{}`",
                    byte as char, expected as char
                ),
                help: Some(format!("close it with `{}`", expected as char)),
            });
        }
    }

    /// The E0102 for the innermost bracket still open at the end of the input.
    fn unclosed_at_end(&self) -> Option<SyntaxError> {
        let open = self.stack.last()?;
        let text_end = self.src.trim_ascii_end().len();
        let closer = closer_of(open.byte) as char;
        Some(SyntaxError::Unclosed {
            opener: open.byte as char,
            open_span: Span::new(open.offset, open.offset + 1).into(),
            end_span: Span::new(text_end, text_end).into(),
            end_label: "the input ends here".into(),
            help: Some(format!("add `{closer}` where the expression ends")),
        })
    }

    fn number(&mut self) {
        let src = self.src;
        let digits = |mut at: usize| {
            while at < src.len() && src[at].is_ascii_digit() {
                at += 1;
            }
            at
        };
        let mut at = digits(self.pos);
        if src.get(at) == Some(&b'.') && src.get(at + 1) != Some(&b'.') {
            at = digits(at + 1);
        }
        if matches!(src.get(at), Some(b'e' | b'E')) {
            let sign = usize::from(matches!(src.get(at + 1), Some(b'+' | b'-')));
            if src.get(at + 1 + sign).is_some_and(u8::is_ascii_digit) {
                at = digits(at + 1 + sign);
            }
        }
        self.pos = at;
    }

    fn word(&mut self) -> Result<(), SyntaxError> {
        let start = self.pos;
        while self.pos < self.src.len()
            && (self.src[self.pos].is_ascii_alphanumeric() || self.src[self.pos] == b'_')
        {
            self.pos += 1;
        }
        let span = Span::new(start, self.pos);
        self.last = match &self.src[start..self.pos] {
            b"and" | b"or" => {
                self.deepen(start, span.len())?;
                Last::Continuation
            }
            b"not" => {
                self.deepen(start, span.len())?;
                Last::Other
            }
            b"true" | b"false" | b"none" => Last::Operand,
            word if is_keyword(word) => Last::Other,
            _ => Last::Operand,
        };
        Ok(())
    }

    fn operator(&mut self) -> Result<(), SyntaxError> {
        const LONG: [&[u8]; 12] = [
            b"**", b"//", b"==", b"!=", b"<=", b">=", b"..", b"|>", b"+=", b"-=", b"*=", b"/=",
        ];
        let start = self.pos;
        let rest = &self.src[start..];
        let len = if LONG.iter().any(|op| rest.starts_with(op)) {
            2
        } else {
            // One byte, or a whole UTF-8 character, so a stray `é` stays one token.
            std::str::from_utf8(&rest[..rest.len().min(4)])
                .ok()
                .or_else(|| {
                    let valid = std::str::from_utf8(rest).err()?.valid_up_to();
                    std::str::from_utf8(&rest[..valid]).ok()
                })
                .and_then(|s| s.chars().next())
                .map_or(1, char::len_utf8)
        };
        self.pos += len;
        let token = &rest[..len];
        self.last = match token {
            b"=" | b"+=" | b"-=" | b"*=" | b"/=" | b"," => {
                self.depth = self.base_depth();
                Last::Continuation
            }
            b";" => {
                self.depth = self.base_depth();
                Last::Start
            }
            b":" => {
                self.depth = self.base_depth();
                Last::Other
            }
            b"." => {
                self.deepen(start, len)?;
                Last::Other
            }
            b"**" | b"//" | b"==" | b"!=" | b"<=" | b">=" | b".." | b"|>" | b"+" | b"-" | b"*"
            | b"/" | b"%" | b"@" | b"<" | b">" => {
                self.deepen(start, len)?;
                Last::Continuation
            }
            _ => Last::Other,
        };
        Ok(())
    }

    /// The expression depth a separator at the current position resets to.
    fn base_depth(&self) -> usize {
        self.stack.last().map_or(0, |open| open.base_depth)
    }

    /// One more level of expression nesting, caused by the token at `start`.
    fn deepen(&mut self, start: usize, len: usize) -> Result<(), SyntaxError> {
        self.depth += 1;
        if self.depth <= MAX_EXPR_DEPTH {
            return Ok(());
        }
        Err(SyntaxError::unexpected(
            format!("expression nested too deeply (more than {MAX_EXPR_DEPTH} levels)"),
            Span::new(start, start + len),
            "the limit is reached here",
            Some("split the expression into several `let` statements".into()),
        ))
    }
}

fn closer_of(opener: u8) -> u8 {
    match opener {
        b'(' => b')',
        b'[' => b']',
        _ => b'}',
    }
}

/// Whether `word` is one of the keywords of LANGUAGE.md §2.
pub(crate) fn is_keyword(word: &[u8]) -> bool {
    matches!(
        word,
        b"let"
            | b"fn"
            | b"net"
            | b"input"
            | b"return"
            | b"for"
            | b"in"
            | b"while"
            | b"if"
            | b"else"
            | b"break"
            | b"continue"
            | b"with"
            | b"and"
            | b"or"
            | b"not"
            | b"true"
            | b"false"
            | b"none"
            | b"assert"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined(text: &str) -> String {
        prepare(text).expect("prepares").text
    }

    #[test]
    fn keeps_offsets_and_blanks_comments() {
        let comment = "# note é";
        let text = format!("let x = 1  {comment}\nlet y = 2");
        let out = joined(&text);
        assert_eq!(out.len(), text.len());
        let blank = " ".repeat(comment.len());
        assert_eq!(out, format!("let x = 1  {blank}\nlet y = 2"));
    }

    #[test]
    fn joins_newlines_where_statements_continue() {
        assert_eq!(joined("f(1,\n2)"), "f(1, 2)");
        assert_eq!(joined("[1\n]"), "[1 ]");
        assert_eq!(joined("x = 1 +\n2"), "x = 1 + 2");
        assert_eq!(joined("x = a and\nb"), "x = a and b");
        assert_eq!(joined("let x =\n2"), "let x = 2");
        assert_eq!(joined("x\n\n# c\n  |> f"), "x        |> f");
        assert_eq!(joined("a\nb"), "a\nb");
        // A block opened inside brackets separates statements again.
        assert_eq!(joined("f({\na\nb\n})"), "f({\na\nb\n})");
        // `#` and brackets inside a string are not syntax.
        assert_eq!(joined("\"(#\"\nx"), "\"(#\"\nx");
    }

    #[test]
    fn continuation() {
        assert!(needs_continuation("let x = f(1,"));
        assert!(needs_continuation("fn f() {"));
        assert!(needs_continuation("let x = 1 +"));
        assert!(needs_continuation("let y = x |>"));
        assert!(!needs_continuation("let x = 1"));
        assert!(!needs_continuation("let x = (1]"));
    }
}
