//! The commands behind `cnn run`, `cnn check`, `cnn summary` and `cnn explain`: each reads its input,
//! goes through the pipeline in `lib.rs`, writes what it found, and returns the exit code.

use std::cell::RefCell;
use std::io::{self, Write};
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::check::ty::Ty;
use crate::eval::Interpreter;
use crate::report::{Format, Problem, render_all};
use crate::source::SourceFile;
use crate::{RunError, check, check_with_types, execute, files, parse, take_warnings};

/// Exit code: success.
pub const EXIT_OK: i32 = 0;
/// Exit code: the program did not pass the checks.
pub const EXIT_CHECK: i32 = 1;
/// Exit code: the program failed while running.
pub const EXIT_RUNTIME: i32 = 2;
/// Exit code: the command line was wrong (bad arguments, unreadable script).
pub const EXIT_USAGE: i32 = 64;
/// Exit code: stopped by Ctrl-C (SIGINT), as a shell reports a process it interrupted.
pub const EXIT_INTERRUPTED: i32 = 130;

/// Exit code: the output could not be written (a full disk, a closed pipe).
pub const EXIT_OUTPUT: i32 = 74;

/// Standard output that remembers its first failed write, so that output lost to a full
/// disk or a closed pipe ends the command with [`EXIT_OUTPUT`] rather than passing
/// unnoticed (the program itself goes on: what it saves to files is not lost with it).
#[derive(Clone, Default)]
pub struct Stdout {
    failed: Rc<RefCell<Option<io::Error>>>,
}

impl Stdout {
    fn record<T>(&self, result: io::Result<T>) -> io::Result<T> {
        if let Err(e) = &result {
            self.failed
                .borrow_mut()
                .get_or_insert_with(|| io::Error::new(e.kind(), e.to_string()));
        }
        result
    }

    /// Flush, then `code`, or [`EXIT_OUTPUT`] (said on stderr) if any write failed.
    pub fn finish(&self, code: i32) -> i32 {
        let _ = self.record(io::stdout().flush());
        match self.failed.borrow_mut().take() {
            None => code,
            Some(e) => {
                eprintln!("error: cannot write the output: {e}");
                EXIT_OUTPUT
            }
        }
    }
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.record(io::stdout().write(buf))
    }
    fn flush(&mut self) -> io::Result<()> {
        self.record(io::stdout().flush())
    }
}

fn emit(problems: &[Problem], format: Format) {
    if problems.is_empty() {
        return;
    }
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{}", render_all(problems, format));
}

fn load(path: &Path, format: Format) -> Result<SourceFile, i32> {
    match files::read_text(path) {
        Ok(text) => Ok(SourceFile::new(path.to_string_lossy(), text)),
        Err(e) => {
            let source = SourceFile::new(path.to_string_lossy(), "");
            emit(&[Problem::new(e, &source)], format);
            Err(EXIT_USAGE)
        }
    }
}

/// A type as `cnn check --shapes` prints it: `tensor [N, 64, H, W]`, `int = 3`, `list of 2`.
pub fn type_for_shapes(ty: &Ty) -> String {
    match ty {
        Ty::List(Some(items)) => format!("list of {}", items.len()),
        other => other.to_string(),
    }
}

/// `cnn check FILE`: report every problem; exit 1 if there are errors. With `shapes`, first
/// print each `let` with its inferred type, `LINE:COL  name : type`, one per line.
pub fn check_file(path: &Path, format: Format, shapes: bool) -> i32 {
    let source = match load(path, format) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let (lets, outcome) = check_with_types(&source);
    if shapes {
        let mut lets: Vec<_> = lets.iter().collect();
        lets.sort_by_key(|(span, _, _)| span.start);
        let mut out = Stdout::default();
        for (span, name, ty) in lets {
            let (line, col) = source.line_col(span.start);
            if writeln!(out, "{line}:{col}  {name} : {}", type_for_shapes(ty)).is_err() {
                break;
            }
        }
        if out.finish(EXIT_OK) == EXIT_OUTPUT {
            return EXIT_OUTPUT;
        }
    }
    match outcome {
        Ok(checked) => {
            emit(&checked.warnings, format);
            if format != Format::Json {
                eprintln!("{}: no errors", source.name());
            }
            EXIT_OK
        }
        Err(problems) => {
            emit(&problems, format);
            EXIT_CHECK
        }
    }
}

/// `cnn run FILE`: check, then run; exit 1 on check errors, 2 on a run-time error, 130 when
/// Ctrl-C stopped it. With `no_check`, only parse before running (syntax errors still exit
/// 1). `seed` seeds the generator first, as `seed(n)` at the top of the script would (same
/// bits for negatives).
pub fn run_file(path: &Path, format: Format, no_check: bool, seed: Option<i64>) -> i32 {
    let source = match load(path, format) {
        Ok(s) => s,
        Err(code) => return code,
    };
    if let Some(n) = seed {
        crate::tensor::seed(n as u64);
    }
    let stdout = Stdout::default();
    let mut interpreter = Interpreter::new(Box::new(stdout.clone()));
    stop_on_ctrl_c(interpreter.interrupt_handle());
    // The checker's warnings come before anything the program prints.
    let program = if no_check {
        parse(&source).map_err(RunError::Check)
    } else {
        check(&source).map_err(RunError::Check).map(|checked| {
            emit(&checked.warnings, format);
            checked.program
        })
    };
    let outcome = program.and_then(|program| execute(&source, &mut interpreter, &program));
    let _ = io::stdout().flush();
    emit(&take_warnings(&source, &mut interpreter), format);
    stdout.finish(exit_code(outcome.map(|_| ()), format))
}

/// `cnn summary FILE NET [--input 1,3,32,32]`: check the file, run its `net` and `fn`
/// definitions (nothing else), build `NET` with its default parameters and print its summary
/// table (LANGUAGE.md §11), for the given input shape when there is one.
pub fn summary_file(path: &Path, net: &str, input: Option<&[usize]>, format: Format) -> i32 {
    let source = match load(path, format) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let program = match check(&source) {
        Ok(checked) => checked.program,
        Err(problems) => {
            emit(&problems, format);
            return EXIT_CHECK;
        }
    };
    let defs: Vec<&crate::syntax::ast::NetDef> = program
        .stmts
        .iter()
        .filter_map(|s| match &s.node {
            crate::syntax::ast::StmtKind::Net(def) => Some(&**def),
            _ => None,
        })
        .collect();
    let nets: Vec<&str> = defs.iter().map(|d| &*d.name.name).collect();
    if let Some(def) = defs.iter().find(|d| &*d.name.name == net) {
        let required: Vec<&str> = def
            .params
            .iter()
            .filter(|p| p.default.is_none())
            .map(|p| &*p.name.name)
            .collect();
        if !required.is_empty() {
            eprintln!(
                "error: `{net}` has parameters without a default ({}); `cnn summary` builds a net with its defaults, `summary({net}(...))` in a script takes any",
                required.join(", ")
            );
            return EXIT_USAGE;
        }
    } else {
        let defined = if nets.is_empty() {
            "it defines no net".to_string()
        } else {
            format!("its nets: {}", nets.join(", "))
        };
        eprintln!("error: no net `{net}` in {}; {defined}", path.display());
        return EXIT_USAGE;
    }
    // The call goes at the end of the text, so a mistake in it (a parameter without a
    // default) is reported with a span like any other.
    let input = input.map_or(String::new(), |dims| format!(", {dims:?}"));
    let text = format!(
        "{}
summary({net}(){input})
",
        source.text()
    );
    let source = SourceFile::new(source.name(), text);
    let mut program = match parse(&source) {
        Ok(p) => p,
        Err(problems) => {
            emit(&problems, format);
            return EXIT_CHECK;
        }
    };
    let last = program.stmts.pop();
    program.stmts.retain(|s| {
        matches!(
            s.node,
            crate::syntax::ast::StmtKind::Net(_) | crate::syntax::ast::StmtKind::Fn(_)
        )
    });
    program.stmts.extend(last);
    let stdout = Stdout::default();
    let mut interpreter = Interpreter::new(Box::new(stdout.clone()));
    let outcome = execute(&source, &mut interpreter, &program);
    stdout.finish(exit_code(outcome.map(|_| ()), format))
}

/// Ctrl-C while a script runs: the first raises `interrupt`, so the program stops at its
/// next statement or loop iteration with E0506 (and what it printed is flushed); a second
/// exits at once, for a builtin or kernel that runs long without looking at the flag.
fn stop_on_ctrl_c(interrupt: Arc<AtomicBool>) {
    let pressed = AtomicBool::new(false);
    let installed = ctrlc::set_handler(move || {
        if pressed.swap(true, Ordering::SeqCst) {
            // `exit` flushes standard output; the program's own writes are flushed each time.
            std::process::exit(EXIT_INTERRUPTED);
        }
        interrupt.store(true, Ordering::SeqCst);
    });
    if let Err(e) = installed {
        eprintln!("warning: Ctrl-C will not stop the program cleanly: {e}");
    }
}

/// Prints what stopped a run and gives the exit code for it.
fn exit_code(outcome: Result<(), RunError>, format: Format) -> i32 {
    match outcome {
        Ok(()) => EXIT_OK,
        Err(RunError::Check(problems)) => {
            emit(&problems, format);
            EXIT_CHECK
        }
        Err(RunError::Runtime(problem)) => {
            let interrupted = problem.code().as_deref() == Some("E0506");
            emit(&[problem], format);
            if interrupted {
                EXIT_INTERRUPTED
            } else {
                EXIT_RUNTIME
            }
        }
    }
}

/// `cnn explain CODE`: print the long explanation of a diagnostic code.
pub fn explain(code: &str) -> i32 {
    match crate::explain::explain(code) {
        Some(text) => {
            let mut out = Stdout::default();
            let _ = writeln!(out, "{}", text.trim_end());
            out.finish(EXIT_OK)
        }
        None => {
            let known: Vec<&str> = crate::explain::codes().collect();
            eprintln!(
                "error: no diagnostic code `{code}`; the codes are {}",
                known.join(", ")
            );
            EXIT_USAGE
        }
    }
}
