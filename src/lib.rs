//! `cnn`: define convolutional networks as layer graphs, check their shapes before anything
//! runs, and execute them with reverse-mode autograd.
//!
//! The pipeline is source → [`syntax`] → [`eval`]; the CLI, the REPL and the tests all go
//! through the functions here, so each sees the same diagnostics.

pub mod builtins;
pub mod check;
pub mod cli;
pub mod diagnostic;
pub mod eval;
pub mod explain;
pub mod files;
pub mod repl;
pub mod report;
pub mod session;
pub mod source;
pub mod syntax;
pub mod tensor;

use eval::{Interpreter, Value};
use report::Problem;
use source::SourceFile;
use syntax::ast::Program;

/// A program that passed every check, with the warnings found on the way.
pub struct Checked {
    /// The parsed program, ready to run.
    pub program: Program,
    /// Warnings (they do not stop the run).
    pub warnings: Vec<Problem>,
}

/// Parse and check a whole source; on failure, every problem found.
pub fn check(source: &SourceFile) -> Result<Checked, Vec<Problem>> {
    check_with_types(source).1
}

/// [`check`], also returning each `let` the checker saw with its inferred type (the
/// name's span, the name, the type), in source order; none when the source does not parse.
#[allow(clippy::type_complexity)]
pub fn check_with_types(
    source: &SourceFile,
) -> (
    Vec<(source::Span, String, check::ty::Ty)>,
    Result<Checked, Vec<Problem>>,
) {
    let program = match parse(source) {
        Ok(program) => program,
        Err(problems) => return (Vec::new(), Err(problems)),
    };
    let found = check::check_program(&program);
    match check_outcome(found.errors, found.warnings, source) {
        Ok(warnings) => (found.lets, Ok(Checked { program, warnings })),
        Err(problems) => (found.lets, Err(problems)),
    }
}

/// The checker's findings as problems: the warnings when there is no error, else every error
/// followed by the warnings.
pub(crate) fn check_outcome(
    errors: Vec<check::CheckError>,
    warnings: Vec<check::CheckWarning>,
    source: &SourceFile,
) -> Result<Vec<Problem>, Vec<Problem>> {
    let warnings: Vec<Problem> = warnings
        .into_iter()
        .map(|w| Problem::new(w, source))
        .collect();
    if errors.is_empty() {
        return Ok(warnings);
    }
    let mut problems: Vec<Problem> = errors
        .into_iter()
        .map(|e| Problem::new(e, source))
        .collect();
    problems.extend(warnings);
    Err(problems)
}

/// Parse a whole source without the static checker (`cnn run --no-check`): shape and
/// gradient errors are then found only when the failing statement runs.
pub fn parse(source: &SourceFile) -> Result<Program, Vec<Problem>> {
    syntax::parse(source).map_err(|errors| {
        errors
            .into_iter()
            .map(|e| Problem::new(e, source))
            .collect::<Vec<_>>()
    })
}

/// Why a run stopped early.
pub enum RunError {
    /// The program did not pass the checks; nothing ran.
    Check(Vec<Problem>),
    /// The program failed while running.
    Runtime(Problem),
}

/// A run that finished.
pub struct Ran {
    /// The value of a final expression statement, if any.
    pub value: Option<Value>,
    /// The checker's warnings (W0301, ...), found before the run started.
    pub warnings: Vec<Problem>,
}

/// Check `source`, then run it in `interpreter` (whose state it extends, as a REPL entry
/// does). Warnings raised while running wait in the interpreter: see [`take_warnings`].
pub fn run(source: &SourceFile, interpreter: &mut Interpreter) -> Result<Ran, RunError> {
    let checked = check(source).map_err(RunError::Check)?;
    let value = execute(source, interpreter, &checked.program)?;
    Ok(Ran {
        value,
        warnings: checked.warnings,
    })
}

/// Run an already checked (or, for `--no-check`, only parsed) program of `source` in
/// `interpreter`, turning a run-time error into a problem against `source`.
pub fn execute(
    source: &SourceFile,
    interpreter: &mut Interpreter,
    program: &Program,
) -> Result<Option<Value>, RunError> {
    interpreter
        .run(program)
        .map_err(|e| RunError::Runtime(Problem::new(*e, source)))
}

/// The warnings `interpreter` raised while running `source` (W0406, ...), as problems to
/// report; taking them clears them.
pub fn take_warnings(source: &SourceFile, interpreter: &mut Interpreter) -> Vec<Problem> {
    interpreter
        .take_warnings()
        .into_iter()
        .map(|w| Problem::new(w, source))
        .collect()
}

/// Stack size for the thread that parses and runs scripts. Deeply nested but legal programs
/// (long operator chains, deep recursion up to the interpreter's limit) recurse in the
/// parser and the evaluator; the limits there keep the depth bounded, and this stack keeps
/// the bound generous. Only the pages touched are ever committed.
pub const PIPELINE_STACK_BYTES: usize = 512 << 20;

/// Run `f` on a thread with [`PIPELINE_STACK_BYTES`] of stack and return its result.
pub fn on_big_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let handle = std::thread::Builder::new()
        .name("cnn".into())
        .stack_size(PIPELINE_STACK_BYTES)
        .spawn(f);
    match handle {
        Ok(h) => match h.join() {
            Ok(v) => v,
            Err(panic) => std::panic::resume_unwind(panic),
        },
        // Only when the system refuses a new thread at all; nothing sensible can go on.
        Err(e) => panic!("cannot start the interpreter thread: {e}"),
    }
}

/// What a whole run printed and reported, for tests and examples.
pub struct Transcript {
    /// Everything the program printed.
    pub output: String,
    /// Warnings and errors, in the order found.
    pub problems: Vec<Problem>,
    /// The exit code `cnn run` would give.
    pub exit_code: i32,
}

/// Check and run `source` in a fresh interpreter, capturing its output.
pub fn run_captured(source: &SourceFile) -> Transcript {
    let buffer = SharedBuffer::default();
    let mut interpreter = Interpreter::new(Box::new(buffer.clone()));
    let outcome = run(source, &mut interpreter);
    let mut problems = take_warnings(source, &mut interpreter);
    let exit_code = match outcome {
        Ok(ran) => {
            problems.splice(0..0, ran.warnings);
            cli::EXIT_OK
        }
        Err(RunError::Check(found)) => {
            problems.extend(found);
            cli::EXIT_CHECK
        }
        Err(RunError::Runtime(problem)) => {
            problems.push(problem);
            cli::EXIT_RUNTIME
        }
    };
    drop(interpreter);
    let output = String::from_utf8_lossy(&buffer.0.borrow()).into_owned();
    Transcript {
        output,
        problems,
        exit_code,
    }
}

/// An in-memory writer whose contents stay readable after the interpreter is dropped.
#[derive(Clone, Default)]
struct SharedBuffer(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);

impl std::io::Write for SharedBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
