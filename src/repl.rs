//! The interactive front end: rustyline reads entries and a [`Session`] evaluates them.
//! Everything that is not terminal input and output lives in `session.rs`.
//!
//! When standard input is not a terminal, entries are read from it line by line (joined
//! while [`Session::needs_continuation`] says so), without prompts; values go to standard
//! output, diagnostics to standard error, and the exit code is 1 if any entry failed.

use std::cell::RefCell;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{Context, Editor, Helper};

use crate::cli::{EXIT_CHECK, EXIT_OK, EXIT_OUTPUT, EXIT_USAGE};
use crate::report::{Format, render_all};
use crate::session::{Reply, Session};

/// The prompt for a new entry.
pub const PROMPT: &str = "cnn> ";
/// The prompt while an entry continues (an open bracket, a trailing operator).
pub const CONTINUATION_PROMPT: &str = "...> ";
/// The environment variable that overrides where history is kept.
pub const HISTORY_ENV: &str = "CNN_HISTORY";

/// The history file: `$CNN_HISTORY`, else `$XDG_DATA_HOME/cnn/history`, else
/// `~/.local/share/cnn/history`; none when no home is known.
pub fn history_path() -> Option<PathBuf> {
    let non_empty = |var: &str| std::env::var_os(var).filter(|v| !v.is_empty());
    if let Some(path) = non_empty(HISTORY_ENV) {
        return Some(PathBuf::from(path));
    }
    let data = non_empty("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| non_empty("HOME").map(|home| PathBuf::from(home).join(".local/share")))?;
    Some(data.join("cnn").join("history"))
}

/// rustyline's view of the session: completion and signature hints. The editor asks only
/// while it reads a line, when no entry is running, so the borrow never clashes.
struct EntryHelper {
    session: Rc<RefCell<Session>>,
}

impl EntryHelper {
    fn with_session<T>(&self, f: impl FnOnce(&Session) -> T) -> Option<T> {
        self.session.try_borrow().ok().map(|s| f(&s))
    }
}

impl Completer for EntryHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let (start, found) = self
            .with_session(|s| s.complete(line, pos))
            .unwrap_or((pos, Vec::new()));
        let pairs = found
            .into_iter()
            .map(|c| Pair {
                display: c.clone(),
                replacement: c,
            })
            .collect();
        Ok((start, pairs))
    }
}

impl Hinter for EntryHelper {
    type Hint = String;

    fn hint(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> Option<String> {
        if pos != line.len() {
            return None;
        }
        let signature = self.with_session(|s| s.signature_hint(line))??;
        Some(format!("    {signature}"))
    }
}

impl Highlighter for EntryHelper {
    fn highlight_hint<'h>(&self, hint: &'h str) -> std::borrow::Cow<'h, str> {
        if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
            return std::borrow::Cow::Borrowed(hint);
        }
        // Dim, so the hint does not read as typed text.
        std::borrow::Cow::Owned(format!("\x1b[2m{hint}\x1b[0m"))
    }
}

// Continuation is decided outside the editor, so each continued line gets the `...>`
// prompt (rustyline draws no prompt on the extra lines of a multi-line buffer).
impl Validator for EntryHelper {}

impl Helper for EntryHelper {}

/// Run the REPL on the terminal (or on piped standard input); returns the exit code.
pub fn run() -> i32 {
    let session = Rc::new(RefCell::new(Session::new(Box::new(std::io::stdout()))));
    let state = Arc::new(SignalState::default());
    if std::io::stdin().is_terminal() {
        interactive(&session, &state)
    } else {
        arm_ctrl_c(&session.borrow(), &state, false);
        piped(&mut session.borrow_mut(), &state)
    }
}

/// What the REPL is doing when SIGINT arrives, for the Ctrl-C handler.
#[derive(Default)]
struct SignalState {
    /// An entry is running.
    running: AtomicBool,
    /// A line is being read in the terminal's own line mode (a dumb terminal), where
    /// Ctrl-C is a signal rather than a key rustyline reads.
    reading_cooked: AtomicBool,
    /// Ctrl-C came while such a line was read: the entry typed so far is dropped.
    dropped: AtomicBool,
}

/// The terminals rustyline does not drive (its "unsupported" list): it reads their lines
/// with the terminal's line editing, so Ctrl-C at the prompt is a SIGINT.
fn is_dumb_terminal() -> bool {
    std::env::var("TERM").is_ok_and(|term| {
        ["dumb", "cons25", "emacs"]
            .iter()
            .any(|t| t.eq_ignore_ascii_case(&term))
    })
}

/// Ctrl-C stops a running entry with E0506 and the prompt comes back; it never ends an
/// interactive session. At the prompt rustyline reads Ctrl-C as a key, except on a dumb
/// terminal, where the terminal drops the typed line and sends SIGINT: a fresh prompt
/// follows and the entry typed so far is dropped. A SIGINT from elsewhere (`kill -INT`)
/// at the prompt is ignored. With piped input, one between entries ends the program.
///
/// rustyline takes SIGINT over when its terminal opens, so this must come after.
fn arm_ctrl_c(session: &Session, state: &Arc<SignalState>, interactive: bool) {
    let interrupt = session.interrupt_handle();
    let state = Arc::clone(state);
    let installed = ctrlc::set_handler(move || {
        if state.running.load(Ordering::SeqCst) {
            interrupt.store(true, Ordering::SeqCst);
        } else if !interactive {
            std::process::exit(crate::cli::EXIT_INTERRUPTED);
        } else if state.reading_cooked.load(Ordering::SeqCst) {
            state.dropped.store(true, Ordering::SeqCst);
            // The terminal echoed `^C` and no newline.
            let mut out = std::io::stdout().lock();
            let _ = write!(out, "\n{PROMPT}");
            let _ = out.flush();
        }
    });
    if let Err(e) = installed {
        eprintln!("warning: Ctrl-C will not stop a running entry: {e}");
    }
}

/// Evaluate one entry with Ctrl-C armed, and print what it produced.
fn evaluate(session: &mut Session, state: &SignalState, entry: &str) -> Reply {
    state.running.store(true, Ordering::SeqCst);
    let reply = session.enter(entry);
    state.running.store(false, Ordering::SeqCst);
    let _ = std::io::stdout().flush();
    if !reply.output.is_empty() {
        let mut out = std::io::stdout();
        if writeln!(out, "{}", reply.output)
            .and_then(|()| out.flush())
            .is_err()
        {
            eprintln!("error: cannot write the output");
            std::process::exit(EXIT_OUTPUT);
        }
    }
    if !reply.problems.is_empty() {
        if reply
            .problems
            .iter()
            .any(|p| p.code().as_deref() == Some("E0506"))
        {
            // The terminal echoed `^C` without a newline.
            eprintln!();
        }
        eprintln!("{}", render_all(&reply.problems, Format::Human));
    }
    reply
}

fn piped(session: &mut Session, state: &SignalState) -> i32 {
    let mut pending = String::new();
    let mut code = EXIT_OK;
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let Ok(line) = line else {
            eprintln!("error: standard input is not readable text");
            return EXIT_USAGE;
        };
        pending.push_str(&line);
        if Session::needs_continuation(&pending) {
            pending.push('\n');
            continue;
        }
        let reply = evaluate(session, state, &std::mem::take(&mut pending));
        if reply.failed() {
            code = EXIT_CHECK;
        }
        if reply.quit {
            return code;
        }
    }
    if !pending.trim().is_empty() && evaluate(session, state, &pending).failed() {
        code = EXIT_CHECK;
    }
    code
}

fn interactive(session: &Rc<RefCell<Session>>, state: &Arc<SignalState>) -> i32 {
    let mut editor: Editor<EntryHelper, DefaultHistory> = match Editor::new() {
        Ok(editor) => editor,
        Err(e) => {
            eprintln!("error: cannot open the terminal: {e}");
            return EXIT_USAGE;
        }
    };
    arm_ctrl_c(&session.borrow(), state, true);
    editor.set_helper(Some(EntryHelper {
        session: Rc::clone(session),
    }));
    let history = history_path();
    if let Some(path) = &history {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        // A missing file is a first session.
        let _ = editor.load_history(path);
    }
    println!(
        "cnn {}: :help for help, Ctrl-D to leave",
        env!("CARGO_PKG_VERSION")
    );
    let dumb = is_dumb_terminal();
    while let Some(entry) = read_entry(&mut editor, state, dumb) {
        if entry.trim().is_empty() {
            continue;
        }
        let _ = editor.add_history_entry(entry.as_str());
        if let Some(path) = &history {
            // Appending only this session's new entries, under rustyline's file lock,
            // never rewrites (or loses) what other sessions saved.
            if let Err(e) = editor.append_history(path) {
                eprintln!("warning: cannot save history to {}: {e}", path.display());
            }
        }
        if evaluate(&mut session.borrow_mut(), state, &entry).quit {
            break;
        }
    }
    EXIT_OK
}

/// One entry, over as many lines as it needs; `None` at Ctrl-D. On a `dumb` terminal,
/// Ctrl-C is a signal (see [`arm_ctrl_c`]) and drops the lines read so far.
fn read_entry(
    editor: &mut Editor<EntryHelper, DefaultHistory>,
    state: &SignalState,
    dumb: bool,
) -> Option<String> {
    let mut entry = String::new();
    loop {
        let prompt = if entry.is_empty() {
            PROMPT
        } else {
            CONTINUATION_PROMPT
        };
        state.reading_cooked.store(dumb, Ordering::SeqCst);
        let read = editor.readline(prompt);
        state.reading_cooked.store(false, Ordering::SeqCst);
        if state.dropped.swap(false, Ordering::SeqCst) {
            // The terminal dropped the line typed before Ctrl-C; what was read is new.
            entry.clear();
        }
        match read {
            Ok(line) => {
                entry.push_str(&line);
                if !Session::needs_continuation(&entry) {
                    return Some(entry);
                }
                entry.push('\n');
            }
            // Ctrl-C at the prompt drops what was typed of the entry.
            Err(ReadlineError::Interrupted) => return Some(String::new()),
            Err(ReadlineError::Eof) if entry.is_empty() => return None,
            // Ctrl-D inside an unfinished entry gives it up, as Ctrl-C does.
            Err(ReadlineError::Eof) => return Some(String::new()),
            Err(e) => {
                eprintln!("error: cannot read the terminal: {e}");
                return None;
            }
        }
    }
}
