//! The REPL's state and logic without a terminal: what has been entered, checking an entry
//! against it, running it, the `:` commands and the completion candidates. `repl.rs` drives
//! a [`Session`] from rustyline; the tests drive it directly.
//!
//! Every entry is appended to one growing text, each at its own offset, and parsed on its own
//! with its spans moved to that offset. So spans of different entries never collide (the
//! interpreter keys call sites and autograd sites by span) and a diagnostic can point into
//! an earlier entry (a `fn` body). The checker keeps its state between entries and checks
//! each new one against it, so an entry costs the time of the entry, not of the session; an
//! entry that fails leaves the checker's state as it was (its text stays, unreferenced).

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use miette::Diagnostic;

use crate::builtins::{self, BuiltinDef, methods};
use crate::check::{self, ty::Ty};
use crate::cli::type_for_shapes;
use crate::eval::{Interpreter, RuntimeError, Value, tensor::TENSOR_FIELDS};
use crate::report::Problem;
use crate::source::{SourceFile, Span};
use crate::syntax::{
    self,
    ast::{Program, StmtKind},
};
use crate::{files, take_warnings};

/// The keywords (grammar/cnn.pest `keyword`) and the `with` modes, for completion.
pub const KEYWORDS: &[&str] = &[
    "let",
    "fn",
    "net",
    "input",
    "return",
    "for",
    "in",
    "while",
    "if",
    "else",
    "break",
    "continue",
    "with",
    "and",
    "or",
    "not",
    "true",
    "false",
    "none",
    "assert",
    "no_grad",
    "enable_grad",
];

/// The `:` commands, for `:help` and completion.
pub const COMMANDS: &[(&str, &str)] = &[
    (":help", "this text"),
    (
        ":type EXPR",
        "the type and shape the checker infers for EXPR; nothing runs",
    ),
    (":shapes", "every variable with its inferred type"),
    (":vars", "every variable with a short form of its value"),
    (
        ":load FILE",
        "check FILE against the session, then run it into it",
    ),
    (":reset", "forget every variable and definition"),
    (":quit", "leave (Ctrl-D does too)"),
];

/// Separates entries in the session text: a statement separator on its own line, so no
/// entry can join onto the one before it (a leading `|>` line would otherwise continue it)
/// and a comment on an entry's last line ends there.
const ENTRY_SEPARATOR: &str = "\n;\n";

/// The longest value `:vars` shows before cutting it short.
const SHORT_VALUE_CHARS: usize = 60;

/// What one entry produced, for the front end to show.
#[derive(Default)]
pub struct Reply {
    /// Text to print on standard output: an expression's value, a command's answer.
    pub output: String,
    /// Warnings and errors, rendered against the session text.
    pub problems: Vec<Problem>,
    /// `:quit` was entered.
    pub quit: bool,
}

impl Reply {
    fn text(output: impl Into<String>) -> Reply {
        Reply {
            output: output.into(),
            ..Reply::default()
        }
    }

    fn problems(problems: Vec<Problem>) -> Reply {
        Reply {
            problems,
            ..Reply::default()
        }
    }

    /// Whether any of the problems is an error (the entry changed nothing).
    pub fn failed(&self) -> bool {
        self.problems.iter().any(Problem::is_error)
    }
}

/// The state of a REPL: the interpreter with its globals, the checker's state and the text
/// of every entry.
pub struct Session {
    interpreter: Interpreter,
    /// Every entry, separated by [`ENTRY_SEPARATOR`], each a part rendered under its own
    /// name; the text ends where the last entry does, so "the input ends here" points
    /// into the entry.
    source: SourceFile,
    /// What the checker knows after the accepted entries (a `RefCell` because `:type`
    /// and completion check against it, then undo, from `&self`).
    checker: RefCell<check::Incremental>,
    /// The type the checker inferred for each top-level `let` of the accepted entries,
    /// by name (the last one wins), for `:shapes`.
    let_types: HashMap<String, Ty>,
    /// How many entries were evaluated, to name them `<repl:N>`.
    entered: usize,
}

impl Session {
    /// An empty session whose `print` writes to `out`.
    pub fn new(out: Box<dyn Write>) -> Session {
        Session {
            interpreter: Interpreter::new(out),
            source: SourceFile::with_parts("<repl>", "", Vec::new()),
            checker: RefCell::default(),
            let_types: HashMap::new(),
            entered: 0,
        }
    }

    /// The flag that stops a running entry with E0506 (set it from a SIGINT handler).
    pub fn interrupt_handle(&self) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
        self.interpreter.interrupt_handle()
    }

    /// The value of the variable `name`.
    pub fn value(&self, name: &str) -> Option<&Value> {
        self.interpreter.global(name)
    }

    /// Whether `text` is an unfinished entry that should continue on the next line.
    pub fn needs_continuation(text: &str) -> bool {
        !text.trim_start().starts_with(':') && syntax::needs_continuation(text)
    }

    /// Evaluate one entry: a `:` command or code. Code is checked against the session
    /// first; on any error the session stays exactly as it was (but a tensor the entry
    /// changed in place before failing at run time stays changed). An entry stopped by an
    /// interrupt (E0506) keeps what it did before it was stopped.
    pub fn enter(&mut self, input: &str) -> Reply {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Reply::default();
        }
        if let Some(command) = trimmed.strip_prefix(':') {
            return self.command(command);
        }
        self.entered += 1;
        let name = format!("<repl:{}>", self.entered);
        self.run_code(input.trim_end(), &name)
    }

    /// Parses `entry` on its own, placed at `offset` of `source`, and checks it against
    /// the session: the program, its warnings, and the checker's `let` types; or every
    /// problem. The checker's state then holds the entry until a commit or rollback.
    #[allow(clippy::type_complexity)]
    fn check_entry(
        &self,
        source: &SourceFile,
        offset: u32,
    ) -> Result<(Program, Vec<Problem>, Vec<(Span, String, Ty)>), Vec<Problem>> {
        let text = &source.text()[offset as usize..];
        let mut program = syntax::parse_text(text).map_err(|errors| {
            errors
                .into_iter()
                .map(|e| Problem::new(e.shifted(offset as usize), source))
                .collect::<Vec<_>>()
        })?;
        program.shift_spans(offset);
        let found = self.checker.borrow_mut().check(&program);
        // Warnings found while walking an earlier entry's body were shown with that entry.
        let new = |d: &dyn Diagnostic| {
            d.labels()
                .into_iter()
                .flatten()
                .any(|l| l.offset() >= offset as usize)
        };
        let warnings = found.warnings.into_iter().filter(|w| new(w)).collect();
        let warnings = crate::check_outcome(found.errors, warnings, source)?;
        Ok((program, warnings, found.lets))
    }

    /// Check `entry` against the session, run it, and keep it if both succeed.
    fn run_code(&mut self, entry: &str, name: &str) -> Reply {
        let offset = self.source.push_part(ENTRY_SEPARATOR, "", name, entry);
        let source = self.source.clone();
        let (program, warnings, lets) = match self.check_entry(&source, offset) {
            Ok(checked) => checked,
            Err(problems) => {
                self.checker.get_mut().rollback();
                return Reply::problems(problems);
            }
        };
        let saved = self.interpreter.save_globals();
        // A Ctrl-C that arrived while nothing ran must not stop this entry.
        self.interrupt_handle()
            .store(false, std::sync::atomic::Ordering::Relaxed);
        let outcome = self.interpreter.run(&program);
        let mut reply = Reply::problems(warnings);
        reply
            .problems
            .extend(take_warnings(&source, &mut self.interpreter));
        // An interrupt is not an error: what the entry did before Ctrl-C stays, as after
        // Python's KeyboardInterrupt, and later entries are checked against it.
        let interrupted =
            matches!(&outcome, Err(e) if matches!(**e, RuntimeError::Interrupted { .. }));
        if outcome.is_ok() || interrupted {
            self.checker.get_mut().commit();
            self.keep_let_types(&program, lets);
        } else {
            self.checker.get_mut().rollback();
        }
        match outcome {
            Ok(value) => {
                if let Some(value) = value.filter(|v| !matches!(v, Value::None)) {
                    reply.output = value.repr().to_string();
                }
            }
            Err(error) => {
                if !interrupted {
                    self.interpreter.restore_globals(saved);
                }
                reply.problems.push(Problem::new(*error, &source));
            }
        }
        reply
    }

    /// Remembers the checker's type of each top-level `let` of an accepted entry.
    fn keep_let_types(&mut self, program: &Program, lets: Vec<(Span, String, Ty)>) {
        let top_level: std::collections::HashSet<Span> = program
            .stmts
            .iter()
            .filter_map(|s| match &s.node {
                StmtKind::Let { name, .. } => Some(name.span),
                _ => None,
            })
            .collect();
        for (span, name, ty) in lets {
            if top_level.contains(&span) {
                self.let_types.insert(name, ty);
            }
        }
    }

    fn command(&mut self, command: &str) -> Reply {
        let (name, argument) = match command.split_once(char::is_whitespace) {
            Some((name, rest)) => (name, rest.trim()),
            None => (command, ""),
        };
        match (name, argument) {
            ("help" | "h", "") => Reply::text(help_text()),
            ("type" | "t", expr) if !expr.is_empty() => self.type_of(expr),
            ("shapes", "") => Reply::text(self.shapes()),
            ("vars", "") => Reply::text(self.vars()),
            ("load", path) if !path.is_empty() => self.load(Path::new(path)),
            ("reset", "") => {
                self.interpreter
                    .restore_globals(crate::eval::SavedGlobals::default());
                self.source = SourceFile::with_parts("<repl>", "", Vec::new());
                *self.checker.get_mut() = check::Incremental::new();
                self.let_types.clear();
                Reply::text("the session is empty")
            }
            ("quit" | "q" | "exit", "") => Reply {
                quit: true,
                ..Reply::default()
            },
            _ => Reply::text(format!(
                "unknown command `:{command}`; the commands are {} (`:help` explains them)",
                COMMANDS
                    .iter()
                    .map(|(c, _)| c.split(' ').next().unwrap_or(c))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    /// `:type EXPR`: check `let it = EXPR` against the session and show the type of `it`.
    fn type_of(&self, expr: &str) -> Reply {
        match self.infer(expr) {
            Ok((ty, warnings)) => Reply {
                output: type_for_shapes(&ty),
                problems: warnings,
                quit: false,
            },
            Err(problems) => Reply::problems(problems),
        }
    }

    /// The type the checker infers for `expr` against the session, and its warnings;
    /// nothing runs.
    fn infer(&self, expr: &str) -> Result<(Ty, Vec<Problem>), Vec<Problem>> {
        if let Err(errors) = syntax::parse_expr(expr) {
            let source = SourceFile::new("<type>", expr);
            return Err(errors
                .into_iter()
                .map(|e| Problem::new(e, &source))
                .collect());
        }
        // Checked against the session and undone: `expr` is not kept in its text either.
        let mut source = self.source.clone();
        let offset = source.push_part(ENTRY_SEPARATOR, "let it = ", "<type>", expr);
        let checked = self.check_entry(&source, offset);
        self.checker.borrow_mut().rollback();
        let (_, warnings, lets) = checked?;
        let ty = lets
            .into_iter()
            .rev()
            .find(|(span, _, _)| span.start >= offset)
            .map_or(Ty::Unknown, |(_, _, ty)| ty);
        Ok((ty, warnings))
    }

    /// `:shapes`: every variable with the type the checker infers for it.
    fn shapes(&self) -> String {
        let lines: Vec<String> = self
            .interpreter
            .globals()
            .map(|(name, value)| {
                let ty = match value {
                    Value::Function(def) => fn_signature(def),
                    _ => self
                        .let_types
                        .get(name)
                        .map_or_else(|| value.type_name().to_string(), type_for_shapes),
                };
                format!("{name} : {ty}")
            })
            .collect();
        if lines.is_empty() {
            "no variables yet".to_string()
        } else {
            lines.join("\n")
        }
    }

    /// `:vars`: every variable with a short form of its value.
    fn vars(&self) -> String {
        let lines: Vec<String> = self
            .interpreter
            .globals()
            .map(|(name, value)| format!("{name} = {}", short_value(value)))
            .collect();
        if lines.is_empty() {
            "no variables yet".to_string()
        } else {
            lines.join("\n")
        }
    }

    /// `:load FILE`: the file is checked against the session and run as one entry.
    fn load(&mut self, path: &Path) -> Reply {
        match files::read_text(path) {
            Ok(text) => {
                let mut reply = self.run_code(&text, &path.to_string_lossy());
                if !reply.failed() && reply.output.is_empty() {
                    reply.output = format!("loaded {}", path.display());
                }
                reply
            }
            Err(e) => {
                let source = SourceFile::new(path.to_string_lossy(), "");
                Reply::problems(vec![Problem::new(e, &source)])
            }
        }
    }

    /// Completion candidates for the word ending at `pos` in `line`: where the word
    /// starts, and the candidates in order (the best first).
    pub fn complete(&self, line: &str, pos: usize) -> (usize, Vec<String>) {
        let pos = pos.min(line.len());
        let before = &line[..pos];
        let start = before
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1);
        let word = &before[start..];
        if before.trim_start().starts_with(':') && !before.contains(char::is_whitespace) {
            let start = before.find(':').unwrap_or(0);
            let typed = &before[start..];
            let found = COMMANDS
                .iter()
                .filter_map(|(c, _)| c.split(' ').next())
                .filter(|c| c.starts_with(typed))
                .map(str::to_string)
                .collect();
            return (start, found);
        }
        let mut found: Vec<String> = Vec::new();
        if before[..start].ends_with('.') {
            let object = &before[..start - 1];
            for name in self.members(object) {
                push_unique(&mut found, name, word);
            }
            return (start, found);
        }
        if let Some(params) = self.open_call_params(&before[..start]) {
            for param in params {
                push_unique(&mut found, format!("{param}="), word);
            }
        }
        let mut names: Vec<String> = KEYWORDS.iter().map(|k| k.to_string()).collect();
        names.extend(self.interpreter.globals().map(|(n, _)| n.to_string()));
        names.extend(builtins::BUILTINS.iter().map(|b| b.name.to_string()));
        names.sort();
        for name in names {
            push_unique(&mut found, name, word);
        }
        (start, found)
    }

    /// The value a chain of names such as `model.conv1` stands for, without running
    /// anything.
    fn resolve(&self, chain: &str) -> Option<Value> {
        let mut parts = chain.split('.');
        let mut value = self.interpreter.global(parts.next()?.trim())?.clone();
        for part in parts {
            value = match &value {
                Value::Layer(layer) => layer.field(part)?,
                Value::Record(record) => record.get(part)?.clone(),
                _ => return None,
            };
        }
        Some(value)
    }

    /// The field and method names of the object written just before a `.`: from its value
    /// when it is a variable or a chain of fields, else from the type the checker infers
    /// for the expression (which runs nothing).
    fn members(&self, object: &str) -> Vec<String> {
        let names = |fields: &mut dyn Iterator<Item = &str>, table: &[BuiltinDef]| {
            fields
                .map(str::to_string)
                .chain(table.iter().map(|m| m.name.to_string()))
                .collect::<Vec<_>>()
        };
        let chain_start = object
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
            .map_or(0, |i| i + 1);
        let Some(value) = self.resolve(&object[chain_start..]) else {
            let expr = object[expression_start(object)..].trim();
            return match self.infer(expr).map(|(ty, _)| ty) {
                Ok(Ty::Tensor(_)) => {
                    names(&mut TENSOR_FIELDS.iter().copied(), methods::TENSOR_METHODS)
                }
                Ok(Ty::Layer(_)) => names(
                    &mut crate::builtins::layers::Layer::FIELDS.iter().copied(),
                    methods::LAYER_METHODS,
                ),
                Ok(Ty::Optimizer) => names(&mut std::iter::empty(), methods::OPTIMIZER_METHODS),
                _ => Vec::new(),
            };
        };
        match &value {
            Value::Tensor(_) => names(&mut TENSOR_FIELDS.iter().copied(), methods::TENSOR_METHODS),
            Value::Layer(layer) => names(
                &mut crate::builtins::layers::Layer::FIELDS
                    .iter()
                    .copied()
                    .filter(|f| layer.field(f).is_some()),
                methods::LAYER_METHODS,
            ),
            Value::Record(record) => record.fields.iter().map(|(n, _)| n.to_string()).collect(),
            Value::Optimizer(_) => names(&mut std::iter::empty(), methods::OPTIMIZER_METHODS),
            _ => Vec::new(),
        }
    }

    /// The parameter names of the call left open in `before` (`Conv2d(3, 8, `), minus the
    /// ones already given by name.
    fn open_call_params(&self, before: &str) -> Option<Vec<String>> {
        let open = innermost_open_paren(before)?;
        let callee_text = before[..open].trim_end();
        let callee_start = callee_text
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
            .map_or(0, |i| i + 1);
        let callee = &callee_text[callee_start..];
        let params: Vec<String> = if let Some((object, method)) = callee.rsplit_once('.') {
            let table = match self.resolve(object)? {
                Value::Tensor(_) => methods::TENSOR_METHODS,
                Value::Layer(_) => methods::LAYER_METHODS,
                Value::Optimizer(_) => methods::OPTIMIZER_METHODS,
                _ => return None,
            };
            let def = methods::find(table, method)?;
            def.params.iter().map(|p| p.name.to_string()).collect()
        } else if let Some(Value::Function(def)) = self.interpreter.global(callee) {
            def.params.iter().map(|p| p.name.name.to_string()).collect()
        } else {
            let def = builtins::lookup(callee)?;
            def.params.iter().map(|p| p.name.to_string()).collect()
        };
        let args = &before[open + 1..];
        Some(
            params
                .into_iter()
                .filter(|p| !args.contains(&format!("{p}=")))
                .collect(),
        )
    }

    /// The signature of the builtin or `fn` whose call is open at the end of `line`, for a
    /// hint while typing.
    pub fn signature_hint(&self, line: &str) -> Option<String> {
        let open = innermost_open_paren(line)?;
        let callee_text = line[..open].trim_end();
        let callee_start = callee_text
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1);
        let callee = &callee_text[callee_start..];
        if callee_text[..callee_start].ends_with('.') {
            return None;
        }
        match self.interpreter.global(callee) {
            Some(Value::Function(def)) => Some(fn_signature(def)),
            Some(_) => None,
            None => builtins::lookup(callee).map(BuiltinDef::signature),
        }
    }
}

/// Adds `candidate` if it starts with `word` and is not there yet.
fn push_unique(found: &mut Vec<String>, candidate: String, word: &str) {
    if candidate.starts_with(word) && !found.contains(&candidate) {
        found.push(candidate);
    }
}

/// The offset of the innermost `(` still open at the end of `text`, outside strings.
fn innermost_open_paren(text: &str) -> Option<usize> {
    let mut stack: Vec<(usize, u8)> = Vec::new();
    let mut in_string = false;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
        } else {
            match b {
                b'"' => in_string = true,
                b'#' => {
                    // A comment runs to the end of the line.
                    while i < bytes.len() && bytes[i] != b'\n' {
                        i += 1;
                    }
                }
                b'(' | b'[' | b'{' => stack.push((i, b)),
                b')' | b']' | b'}' => {
                    stack.pop();
                }
                _ => {}
            }
        }
        i += 1;
    }
    match stack.last() {
        Some(&(at, b'(')) => Some(at),
        _ => None,
    }
}

/// Where the operand that ends `text` starts: back over names, `.`, and bracketed groups
/// (`randn(2, 3).T` in `let y = randn(2, 3).T`).
fn expression_start(text: &str) -> usize {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = bytes.len();
    while i > 0 {
        let b = bytes[i - 1];
        match b {
            b')' | b']' => depth += 1,
            b'(' | b'[' if depth > 0 => depth -= 1,
            _ if depth > 0 => {}
            b'.' | b'_' => {}
            _ if b.is_ascii_alphanumeric() => {}
            _ => break,
        }
        i -= 1;
    }
    i
}

/// `name(a, b=...)` for a user `fn`.
fn fn_signature(def: &crate::syntax::ast::FnDef) -> String {
    let params: Vec<&str> = def.params.iter().map(|p| &*p.name.name).collect();
    format!("fn {}({})", def.name.name, params.join(", "))
}

/// A value on one short line: a tensor as its shape, anything else cut at
/// [`SHORT_VALUE_CHARS`].
fn short_value(value: &Value) -> String {
    if let Value::Tensor(t) = value {
        let dims: Vec<String> = t.shape().iter().map(|d| d.to_string()).collect();
        let grad = if t.requires_grad() {
            ", requires_grad=true"
        } else {
            ""
        };
        return format!("tensor of shape [{}]{grad}", dims.join(", "));
    }
    let text = value.repr().to_string();
    let line = text.lines().next().unwrap_or("");
    if line.chars().count() > SHORT_VALUE_CHARS || line.len() < text.len() {
        let cut: String = line.chars().take(SHORT_VALUE_CHARS).collect();
        format!("{cut}...")
    } else {
        line.to_string()
    }
}

/// The `:help` text.
pub fn help_text() -> String {
    let mut text = String::from(
        "Enter statements and expressions; an expression's value is printed. Each entry is\n\
         checked against the session before it runs, and an entry with an error changes no\n\
         variable (a tensor it changed in place before failing stays changed). An entry\n\
         continues on the next line (`...>`) while a bracket is open or a line ends in an\n\
         operator. Tab completes names, methods after `.` and argument names in a call.\n\
         Ctrl-C stops a running entry and keeps what it did so far (an interrupt is not an\n\
         error: nothing is rolled back), or clears the line; Ctrl-D leaves.\n\n",
    );
    for (command, what) in COMMANDS {
        text.push_str(&format!("  {command:<12} {what}\n"));
    }
    text.truncate(text.trim_end().len());
    text
}
