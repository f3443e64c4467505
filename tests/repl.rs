//! The REPL: the [`Session`] logic without a terminal, then the real binary driven through
//! a pseudo-terminal (prompts, continuation, completion, Ctrl-C, history).

use std::cell::RefCell;
use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::rc::Rc;
use std::time::Duration;

use cnn::eval::Value;
use cnn::report::{Format, render_all};
use cnn::session::{Reply, Session};
use expectrl::{ControlCode, Eof, Expect};

/// What `print` wrote, readable while the session lives.
#[derive(Clone, Default)]
struct Printed(Rc<RefCell<Vec<u8>>>);

impl Write for Printed {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn session() -> (Session, Printed) {
    let printed = Printed::default();
    (Session::new(Box::new(printed.clone())), printed)
}

fn rendered(reply: &Reply) -> String {
    render_all(&reply.problems, Format::Plain { width: 80 })
}

fn codes(reply: &Reply) -> Vec<String> {
    reply.problems.iter().filter_map(|p| p.code()).collect()
}

/// Enter `text`, asserting it succeeds, and return what it printed as its value.
fn ok(session: &mut Session, text: &str) -> String {
    let reply = session.enter(text);
    assert!(!reply.failed(), "{text:?} failed:\n{}", rendered(&reply));
    reply.output
}

fn int(session: &Session, name: &str) -> Option<i64> {
    match session.value(name) {
        Some(Value::Int(i)) => Some(*i),
        _ => None,
    }
}

// ---- Session without a terminal -----------------------------------------------------

#[test]
fn state_is_kept_across_entries_and_expressions_print_their_value() {
    let (mut s, printed) = session();
    assert_eq!(ok(&mut s, "let x = 2"), "");
    assert_eq!(ok(&mut s, "x * 21"), "42");
    assert_eq!(ok(&mut s, "\"a\" + \"b\""), "\"ab\"");
    ok(&mut s, "fn twice(v) {\n    return 2 * v\n}");
    assert_eq!(ok(&mut s, "twice(x)"), "4");
    assert_eq!(ok(&mut s, "print(\"hi\")"), "");
    assert_eq!(String::from_utf8_lossy(&printed.0.borrow()), "hi\n");
    let tensor = ok(&mut s, "zeros(2, 2)");
    assert!(tensor.starts_with("tensor("), "{tensor}");
}

#[test]
fn a_check_error_leaves_the_state_exactly_as_it_was() {
    let (mut s, _) = session();
    ok(&mut s, "let x = 1\nlet t = randn(2, 3)");
    // The first statement would rebind `x`, but the second fails the checker: nothing runs.
    let reply = s.enter("x = 5\nlet bad = t @ t");
    assert_eq!(codes(&reply), ["E0307"]);
    assert_eq!(int(&s, "x"), Some(1));
    assert!(s.value("bad").is_none());
    // The diagnostic shows the entry under its own name, counting lines from its start.
    let text = rendered(&reply);
    assert!(text.contains("[<repl:2>:2:11]"), "{text}");
    assert!(!text.contains("let x = 1"), "{text}");
    assert_eq!(ok(&mut s, "x"), "1");
}

#[test]
fn a_runtime_error_restores_the_bindings_made_before_it() {
    let (mut s, _) = session();
    ok(&mut s, "let x = 1");
    let reply = s.enter("x = 2\nlet y = 3\nassert x == 1, \"boom\"");
    assert!(reply.failed());
    assert_eq!(int(&s, "x"), Some(1));
    assert!(s.value("y").is_none());
    // A failed entry is not part of the session: the next entry checks without it.
    assert_eq!(codes(&s.enter("y")), ["E0201"]);
}

#[test]
fn a_later_entry_that_misuses_an_earlier_name_is_refused_before_it_runs() {
    let (mut s, printed) = session();
    ok(&mut s, "let w = randn(2, 3)");
    ok(&mut s, "fn twice(v) {\n    return 2 * v\n}");
    assert_eq!(ok(&mut s, "twice(w).shape"), "[2, 3]");
    let reply = s.enter("print(\"ran\")\nlet bad = w @ w");
    assert_eq!(codes(&reply), ["E0307"]);
    assert!(printed.0.borrow().is_empty(), "nothing ran");
    let text = rendered(&reply);
    assert!(text.contains("[<repl:4>:2:11]"), "{text}");
    assert_eq!(codes(&s.enter("let u = undefined_thing")), ["E0201"]);
}

#[test]
fn a_refused_entry_leaves_the_checker_as_it_was() {
    let (mut s, _) = session();
    ok(&mut s, "let x = randn(2, 3)");
    // The checker saw `x` as a 5x5 tensor and `y` declared before the assert failed at
    // run time: neither may stay, or the next entries would be checked against them.
    let reply = s.enter("let x = randn(5, 5)\nlet y = 1\nassert false");
    assert!(reply.failed());
    assert_eq!(ok(&mut s, "(x @ randn(3, 1)).shape"), "[2, 1]");
    assert_eq!(codes(&s.enter("y + 1")), ["E0201"]);
    // The same after a check error, for a net and the name it shadows.
    let reply = s.enter("net x() {\n    input a: [N, 3]\n    return a\n}\nlet z = 1 @ 2");
    assert!(reply.failed());
    assert_eq!(ok(&mut s, "x.shape"), "[2, 3]");
    // `:type` checks against the session and keeps nothing.
    assert_eq!(ok(&mut s, ":type x @ randn(3, 4)"), "tensor [2, 4]");
    assert_eq!(codes(&s.enter("it")), ["E0201"]);
}

#[test]
fn branches_join_the_names_they_assign_across_entries() {
    let (mut s, _) = session();
    // True when it runs; the checker cannot know.
    ok(
        &mut s,
        "let a = randn(2, 3)\nlet b = randn(2, 3)\nlet flag = randn(1).item() < 100",
    );
    ok(
        &mut s,
        "if flag {\n    a = randn(4, 4)\n} else {\n    b = randn(2, 3)\n}",
    );
    // `a` may be either shape now, so a use that fits only one is left to run time; `b`
    // is the same shape on both branches and still checked.
    assert_eq!(codes(&s.enter("b @ b")), ["E0307"]);
    assert_eq!(ok(&mut s, "(a @ randn(4, 2)).shape"), "[4, 2]");
}

#[test]
fn errors_inside_an_earlier_entry_point_into_it() {
    let (mut s, _) = session();
    ok(&mut s, "fn f(a, b) {\n    return a @ b\n}");
    ok(&mut s, "let t = randn(2, 3)");
    let reply = s.enter("f(t, t)");
    let text = rendered(&reply);
    assert!(text.contains("[<repl:1>:2:12]"), "{text}");
    assert!(text.contains("[<repl:3>:1:1]"), "{text}");
    assert!(text.contains("called from here"), "{text}");
}

#[test]
fn warnings_are_shown_once_for_the_entry_that_raised_them() {
    let (mut s, _) = session();
    let first = s.enter("let y = Conv2d(1, 1, 3, stride=2)(randn(1, 1, 8, 8))");
    assert_eq!(codes(&first), ["W0301"]);
    assert!(!first.failed());
    assert!(codes(&s.enter("let z = 1")).is_empty());
}

#[test]
fn a_net_defined_over_several_lines_builds_and_runs_in_later_entries() {
    let (mut s, _) = session();
    let text = "net Tiny {\n    input x: [N, 3, H, W]\n    let f = x |> Conv2d(3, 8, 3, padding=1)\n    return f\n}";
    let reply = s.enter(text);
    assert!(!reply.failed(), "{}", rendered(&reply));
    ok(&mut s, "let model = Tiny()");
    assert_eq!(ok(&mut s, "parameter_count(model)"), "224");
    assert_eq!(ok(&mut s, "model(randn(2, 3, 5, 5)).shape"), "[2, 8, 5, 5]");
}

#[test]
fn the_interrupt_flag_stops_a_running_entry_and_keeps_the_state() {
    let (mut s, _) = session();
    ok(&mut s, "let kept = 1");
    let flag = s.interrupt_handle();
    // Set before the entry: a stale Ctrl-C must not stop the next entry.
    flag.store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(ok(&mut s, "kept + 1"), "2");
    // The entry clears a flag raised before it starts, so keep raising it until it stops.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let setter = {
        let done = std::sync::Arc::clone(&done);
        std::thread::spawn(move || {
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(50));
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        })
    };
    let reply = s.enter(
        "kept = 5\nlet after = 2\nfor i in 0..1000000000 {\n    let m = randn(64, 64) @ randn(64, 64)\n}",
    );
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    setter.join().unwrap();
    assert_eq!(codes(&reply), ["E0506"]);
    // An interrupt is not an error: what the entry did before it stays, and later entries
    // are checked knowing its names.
    assert_eq!(int(&s, "kept"), Some(5));
    assert_eq!(ok(&mut s, "kept + after"), "7");
    // An error still puts every name back.
    let reply = s.enter("kept = 9\nlet z = 1 // (kept - 9)");
    assert_eq!(codes(&reply), ["E0505"]);
    assert_eq!(int(&s, "kept"), Some(5));
}

#[test]
fn type_shows_the_inferred_shape_and_runs_nothing() {
    let (mut s, printed) = session();
    ok(
        &mut s,
        "let x = randn(4, 3, 8, 8)\nlet conv = Conv2d(3, 16, 3, padding=1)",
    );
    assert_eq!(ok(&mut s, ":type conv(x)"), "tensor [4, 16, 8, 8]");
    assert_eq!(ok(&mut s, ":type x.shape[0] + 1"), "int = 5");
    ok(&mut s, ":type print(\"side effect\")");
    assert!(printed.0.borrow().is_empty());
    assert!(s.value("it").is_none());
    assert_eq!(
        codes(&s.enter(":type randn(2, 3) @ randn(2, 3)")),
        ["E0307"]
    );
    assert_eq!(codes(&s.enter(":type let a = 1")), ["E0101"]);
    // A mistake is shown in the expression as typed, not in the `let` that checks it.
    let text = rendered(&s.enter(":type x @ randn(3, 2)"));
    assert!(text.contains("[<type>:1:1]"), "{text}");
    assert!(text.contains(" 1 │ x @ randn(3, 2)\n"), "{text}");
    assert!(!text.contains("let it"), "{text}");
}

#[test]
fn shapes_and_vars_list_every_variable() {
    let (mut s, _) = session();
    assert_eq!(ok(&mut s, ":vars"), "no variables yet");
    ok(
        &mut s,
        "let n = 3\nlet x = randn(2, 5, requires_grad=true)\nfn f(a, b=1) {\n    return a\n}",
    );
    assert_eq!(
        ok(&mut s, ":shapes"),
        "n : int = 3\nx : tensor [2, 5]\nf : fn f(a, b)"
    );
    assert_eq!(
        ok(&mut s, ":vars"),
        "n = 3\nx = tensor of shape [2, 5], requires_grad=true\nf = <fn f>"
    );
}

#[test]
fn load_checks_and_runs_a_file_into_the_session_and_reset_empties_it() {
    let dir = temp_dir("load");
    let good = dir.join("good.cnn");
    std::fs::write(
        &good,
        "let loaded = 7\nfn add(a, b) {\n    return a + b\n}\n",
    )
    .unwrap();
    let bad = dir.join("bad.cnn");
    std::fs::write(&bad, "let fine = 1\nlet oops = undefined_name\n").unwrap();
    let (mut s, _) = session();
    let reply = s.enter(&format!(":load {}", good.display()));
    assert!(!reply.failed(), "{}", rendered(&reply));
    assert_eq!(ok(&mut s, "add(loaded, 1)"), "8");
    let reply = s.enter(&format!(":load {}", bad.display()));
    assert_eq!(codes(&reply), ["E0201"]);
    assert!(
        rendered(&reply).contains("bad.cnn:2:12"),
        "{}",
        rendered(&reply)
    );
    assert!(s.value("fine").is_none());
    assert_eq!(codes(&s.enter(":load /no/such/file.cnn")), ["E0501"]);
    ok(&mut s, ":reset");
    assert!(s.value("loaded").is_none());
    assert_eq!(codes(&s.enter("add(1, 2)")), ["E0201"]);
}

#[test]
fn commands_help_quit_and_unknown_ones() {
    let (mut s, _) = session();
    let help = ok(&mut s, ":help");
    for command in [":type", ":shapes", ":vars", ":load", ":reset", ":quit"] {
        assert!(help.contains(command), "{help}");
    }
    assert!(s.enter(":quit").quit);
    assert!(!s.enter(":vars").quit);
    assert!(ok(&mut s, ":frobnicate").contains("unknown command `:frobnicate`"));
}

#[test]
fn continuation_follows_open_brackets_and_trailing_operators() {
    assert!(Session::needs_continuation("fn f(a) {"));
    assert!(Session::needs_continuation("let x = [1,"));
    assert!(Session::needs_continuation("let y = 1 +"));
    assert!(Session::needs_continuation("let z = x |>"));
    assert!(!Session::needs_continuation("let x = [1, 2]"));
    assert!(!Session::needs_continuation(":type (1 +"));
    // A closing bracket too many cannot be fixed by more lines: shown at once.
    assert!(!Session::needs_continuation("let x = 1)"));
}

#[test]
fn completion_offers_names_members_and_argument_names() {
    let (mut s, _) = session();
    ok(
        &mut s,
        "let tensor_x = randn(2, 3)\nlet conv = Conv2d(3, 8, 3)",
    );
    let complete = |s: &Session, line: &str| s.complete(line, line.len());
    // Names: keywords, builtins, variables.
    let (start, found) = complete(&s, "let a = tens");
    assert_eq!(start, 8);
    assert!(found.contains(&"tensor_x".to_string()), "{found:?}");
    assert!(complete(&s, "whi").1.contains(&"while".to_string()));
    assert!(complete(&s, "Conv").1.contains(&"Conv2d".to_string()));
    // After `.`: a tensor's fields and methods, a layer's fields and methods.
    let (start, found) = complete(&s, "tensor_x.sh");
    assert_eq!((start, found), (9, vec!["shape".to_string()]));
    let found = complete(&s, "tensor_x.").1;
    assert!(found.contains(&"sum".to_string()) && found.contains(&"backward".to_string()));
    let found = complete(&s, "conv.").1;
    assert!(found.contains(&"weight".to_string()), "{found:?}");
    assert!(found.contains(&"parameters".to_string()), "{found:?}");
    assert!(!found.contains(&"running_mean".to_string()), "{found:?}");
    assert!(complete(&s, "conv.weight.").1.contains(&"grad".to_string()));
    // An expression that is not a variable: its members come from the checker's type, and
    // nothing runs to find them.
    ok(&mut s, "let w = zeros(2)");
    let found = complete(
        &s,
        "let y = (w.fill_(5.0) + conv(randn(1, 3, 4, 4)).sum()).resh",
    )
    .1;
    assert_eq!(found, ["reshape"]);
    assert_eq!(ok(&mut s, "w.sum().item()"), "0.0");
    assert!(complete(&s, "[1, 2].").1.is_empty());
    // Argument names inside a call, minus those already given.
    assert_eq!(
        complete(&s, "Conv2d(3, 8, ker")
            .1
            .first()
            .map(String::as_str),
        Some("kernel_size=")
    );
    assert!(
        !complete(&s, "Conv2d(3, 8, stride=2, str")
            .1
            .contains(&"stride=".to_string())
    );
    assert!(
        complete(&s, "tensor_x.sum(di")
            .1
            .contains(&"dim=".to_string())
    );
    // Commands.
    assert_eq!(complete(&s, ":sh").1, [":shapes"]);
}

#[test]
fn completion_of_user_functions_and_signature_hints() {
    let (mut s, _) = session();
    ok(
        &mut s,
        "fn scale(value, factor=2) {\n    return value * factor\n}",
    );
    let line = "scale(1, fac";
    assert_eq!(
        s.complete(line, line.len()).1.first().map(String::as_str),
        Some("factor=")
    );
    assert_eq!(
        s.signature_hint("scale(").as_deref(),
        Some("fn scale(value, factor)")
    );
    assert_eq!(
        s.signature_hint("let r = round(3.14159, ").as_deref(),
        Some("round(x, digits=none)")
    );
    assert_eq!(s.signature_hint("round(1)"), None);
}

// ---- the binary on a pseudo-terminal ------------------------------------------------

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cnn-repl-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// rustyline switches bracketed paste on at the start of every `readline`: the one sure
/// sign that the REPL is waiting for a line (the prompt itself is redrawn at each key).
const READY: &str = "\x1b[?2004h";

/// The REPL in a pseudo-terminal, keeping history in `history`.
fn spawn(history: &std::path::Path) -> Pty {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cnn"));
    command
        .env("CNN_HISTORY", history)
        .env("NO_COLOR", "1")
        .env("TERM", "xterm");
    let mut p = expectrl::Session::spawn(command).expect("the REPL starts on a pty");
    p.set_expect_timeout(Some(Duration::from_secs(20)));
    let mut p = Pty(p);
    assert!(p.wait().ends_with("cnn> "));
    p
}

struct Pty(expectrl::session::OsSession);

impl Pty {
    /// Send `keys`, wait until the REPL reads its next line, and return everything it
    /// wrote meanwhile (the echo, the output, the next prompt's start).
    fn keys(&mut self, keys: &str) -> String {
        self.0.send(keys).unwrap();
        self.wait()
    }

    /// A line and Enter; see [`Pty::keys`].
    fn line(&mut self, line: &str) -> String {
        self.keys(&format!("{line}\r"))
    }

    /// Wait for the next `readline`, returning what was written before it and its prompt.
    fn wait(&mut self) -> String {
        let found = self.0.expect(READY).expect("the REPL asks for a line");
        let mut text = String::from_utf8_lossy(found.before()).into_owned();
        let prompt = self
            .0
            .expect(expectrl::Regex(r"(cnn|\.\.\.)> "))
            .expect("a prompt");
        text.push_str(&String::from_utf8_lossy(prompt.get(0).unwrap_or_default()));
        text
    }
}

/// Run `entry` (a loop that never ends), and once it runs press Ctrl-C; returns what the
/// REPL wrote until its next prompt. The entry prints a marker first: Ctrl-C must come
/// after the line was read, when the terminal turns it into SIGINT again.
fn interrupt_loop(p: &mut Pty, entry: &str) -> String {
    // Split, so the echo of the typed line does not contain the marker.
    p.0.send(format!("print(\"run\" + \"ning\"); {entry}\r"))
        .unwrap();
    p.0.expect("running").expect("the entry runs");
    p.keys("\x03")
}

#[test]
fn the_terminal_repl_end_to_end() {
    let dir = temp_dir("pty");
    let history = dir.join("history");
    let mut p = spawn(&history);

    // A multi-line `fn` definition and a multi-line call, with the continuation prompt.
    assert!(p.line("fn add(a,").ends_with("...> "));
    assert!(p.line("    b) {").ends_with("...> "));
    assert!(p.line("    return a + b").ends_with("...> "));
    assert!(p.line("}").ends_with("cnn> "));
    assert!(p.line("add(40,").ends_with("...> "));
    let out = p.line("    2)");
    assert!(out.contains("\r\n42\r\n"), "{out:?}");

    // A multi-line net that is only defined: read as one entry, accepted by the checker.
    assert!(p.line("net Tiny {").ends_with("...> "));
    assert!(p.line("    input x: [N, 3, H, W]").ends_with("...> "));
    assert!(
        p.line("    return x |> Conv2d(3, 8, 3, padding=1)")
            .ends_with("...> ")
    );
    let out = p.line("}");
    assert!(out.ends_with("cnn> ") && !out.contains("E03"), "{out:?}");

    // An error leaves the state intact.
    p.line("let x = randn(2, 3)");
    let out = p.line("let x = x @ x");
    assert!(out.contains("E0307"), "{out:?}");
    let out = p.line("x.shape");
    assert!(out.contains("[2, 3]"), "{out:?}");

    // :type on a tensor expression.
    let out = p.line(":type x.T @ x");
    assert!(out.contains("tensor [3, 3]"), "{out:?}");

    // Completion after `.`: `x.nd` + Tab becomes `x.ndim`, which runs.
    p.0.send("x.nd\t").unwrap();
    p.0.expect("ndim").unwrap();
    let out = p.keys("\r");
    assert!(out.contains("\r\n2\r\n"), "{out:?}");

    // Ctrl-C out of an infinite loop keeps the state, and what the loop did.
    p.line("let kept = 7");
    p.line("let n = 0");
    let out = interrupt_loop(&mut p, "while true { n += 1 }");
    assert!(
        out.contains("E0506") && out.contains("interrupted"),
        "{out:?}"
    );
    let out = p.line("kept + 1");
    assert!(out.contains("\r\n8\r\n"), "{out:?}");
    let out = p.line("n > 0");
    assert!(out.contains("\r\ntrue\r\n"), "{out:?}");

    // Ctrl-C at the prompt clears the line; Ctrl-D leaves.
    p.0.send("let lost = 1").unwrap();
    p.keys("\x03");
    let out = p.line(":vars");
    assert!(out.contains("kept = 7") && !out.contains("lost"), "{out:?}");
    p.0.send(ControlCode::EndOfTransmission).unwrap();
    p.0.expect(Eof).unwrap();

    let saved = std::fs::read_to_string(&history).expect("history was saved");
    assert!(saved.contains("let kept = 7"), "{saved}");
    assert!(!saved.contains("let lost"), "{saved}");

    // A second session sees the first one's history: Up recalls the last entry.
    let mut p = spawn(&history);
    p.0.send("\x1b[A").unwrap();
    p.0.expect(":vars").unwrap();
    p.keys("\x03");
    p.0.send(":quit\r").unwrap();
    p.0.expect(Eof).unwrap();
    let saved = std::fs::read_to_string(&history).unwrap();
    assert_eq!(saved.matches("let kept = 7").count(), 1, "{saved}");
}

#[test]
fn sigint_from_kill_at_the_prompt_keeps_the_session() {
    let dir = temp_dir("kill");
    let mut p = spawn(&dir.join("history"));
    p.line("let kept = 7");
    let pid = p.0.get_process().pid().to_string();
    for _ in 0..2 {
        let sent = Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .expect("the kill command runs");
        assert!(sent.success());
    }
    // Nothing shows that an ignored signal was handled; waiting lets a REPL that would
    // die of it do so before the next line, so the check below sees it.
    std::thread::sleep(Duration::from_millis(500));
    let out = p.line("kept + 1");
    assert!(out.contains("\r\n8\r\n"), "{out:?}");
    // Still able to stop an entry.
    let out = interrupt_loop(&mut p, "while true { kept += 1 }");
    assert!(out.contains("E0506"), "{out:?}");
    let out = p.line("kept > 7");
    assert!(out.contains("\r\ntrue\r\n"), "{out:?}");
    p.0.send(ControlCode::EndOfTransmission).unwrap();
    p.0.expect(Eof).unwrap();
}

/// Enter `line` on a dumb terminal; the lines written before the next prompt, but for the
/// line's echo (the pseudo-terminal may or may not echo).
fn dumb_line(p: &mut expectrl::session::OsSession, line: &str) -> Vec<String> {
    p.send(format!("{line}\r")).unwrap();
    let found = p.expect("cnn> ").unwrap();
    String::from_utf8_lossy(found.before())
        .lines()
        .map(|l| l.trim_end().to_string())
        .filter(|l| l != line)
        .collect()
}

#[test]
fn ctrl_c_at_the_prompt_of_a_dumb_terminal_keeps_the_session() {
    // rustyline reads a dumb terminal's lines in its line mode: no key handling, no
    // bracketed paste, and Ctrl-C reaches the REPL as SIGINT.
    let dir = temp_dir("dumb");
    let mut command = Command::new(env!("CARGO_BIN_EXE_cnn"));
    command
        .env("CNN_HISTORY", dir.join("history"))
        .env("NO_COLOR", "1")
        .env("TERM", "dumb");
    let mut p = expectrl::Session::spawn(command).expect("the REPL starts on a pty");
    p.set_expect_timeout(Some(Duration::from_secs(20)));
    p.expect("cnn> ").unwrap();
    p.send("let kept = 3\r").unwrap();
    p.expect("cnn> ").unwrap();
    // At the prompt: a fresh prompt, the session kept.
    p.send("\x03").unwrap();
    p.expect("cnn> ").unwrap();
    assert_eq!(dumb_line(&mut p, "kept + 1"), ["4"]);
    // In a continued entry: the entry is dropped, the next line starts a new one.
    p.send("let more = (1 +\r").unwrap();
    p.expect("...> ").unwrap();
    p.send("\x03").unwrap();
    p.expect("cnn> ").unwrap();
    assert_eq!(dumb_line(&mut p, "kept * 2"), ["6"]);
    // And a running entry still stops, keeping what it did.
    p.send("let n = 0\r").unwrap();
    p.expect("cnn> ").unwrap();
    p.send("print(\"run\" + \"ning\"); while true { n += 1 }\r")
        .unwrap();
    p.expect("running").unwrap();
    p.send("\x03").unwrap();
    let found = p.expect("cnn> ").unwrap();
    let out = String::from_utf8_lossy(found.before()).into_owned();
    assert!(out.contains("E0506"), "{out:?}");
    assert_eq!(dumb_line(&mut p, "n > 0"), ["true"]);
    p.send(":quit\r").unwrap();
    p.expect(Eof).unwrap();
}
