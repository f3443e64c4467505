//! Diagnostics as users see them: every `tests/ui/*.cnn` is checked and, if it passes,
//! run; its output and rendered diagnostics (no colour, width 80) are snapshotted.
//! Review changes with `cargo insta review`.

use cnn::report::Format;
use cnn::source::SourceFile;

fn transcript(path: &std::path::Path) -> String {
    let text = std::fs::read_to_string(path).expect("ui case is readable");
    let name = path.file_name().unwrap().to_string_lossy();
    let source = SourceFile::new(format!("ui/{name}"), text);
    let outcome = cnn::on_big_stack(move || {
        let t = cnn::run_captured(&source);
        let rendered = cnn::report::render_all(&t.problems, Format::Plain { width: 80 });
        (t.exit_code, t.output, rendered)
    });
    let (code, output, rendered) = outcome;
    format!("exit code: {code}\n--- output\n{output}--- diagnostics\n{rendered}\n")
}

#[test]
fn ui_cases() {
    insta::glob!("ui/*.cnn", |path| {
        insta::assert_snapshot!(transcript(path));
    });
}

#[test]
fn every_ui_case_reports_the_code_in_its_name() {
    for entry in std::fs::read_dir("tests/ui").unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "cnn") {
            continue;
        }
        let stem = path.file_stem().unwrap().to_string_lossy().to_string();
        let code = stem.split('_').next().unwrap().to_uppercase();
        let text = std::fs::read_to_string(&path).unwrap();
        let source = SourceFile::new(stem.clone(), text);
        let codes = cnn::on_big_stack(move || {
            cnn::run_captured(&source)
                .problems
                .iter()
                .filter_map(|p| p.code())
                .collect::<Vec<_>>()
        });
        assert_eq!(codes, vec![code], "{stem}");
    }
}

/// Codes whose `cnn explain` examples run in the language as it is today: the erroneous
/// example must report exactly that code, and the fixed one must run with no diagnostic at
/// all. The list grows as features land, until it is every code of LANGUAGE.md §10.
const REPORTED_CODES: &[&str] = &[
    "E0101", "E0102", "E0103", "E0104", "E0201", "E0202", "E0203", "E0204", "E0205", "E0206",
    "E0207", "E0208", "E0301", "E0302", "E0303", "E0304", "E0305", "E0306", "E0307", "E0308",
    "E0309", "E0310", "E0311", "E0313", "E0314", "E0401", "E0402", "E0403", "E0404", "E0405",
    "W0406", "E0315", "E0501", "E0502", "E0503", "E0504", "E0505", "E0507",
];

/// The codes a script reports when checked and run.
fn reported(name: String, text: &'static str) -> (Vec<String>, String) {
    let source = SourceFile::new(name, text);
    cnn::on_big_stack(move || {
        let t = cnn::run_captured(&source);
        let codes: Vec<String> = t.problems.iter().filter_map(|p| p.code()).collect();
        let rendered = cnn::report::render_all(&t.problems, Format::Plain { width: 80 });
        (codes, rendered)
    })
}

#[test]
fn explain_examples_report_their_code() {
    for &code in REPORTED_CODES {
        let examples = cnn::explain::examples(code).expect("every code has examples");
        let (codes, rendered) = reported(format!("{code}.cnn"), examples.erroneous);
        assert_eq!(codes, [code], "{}\n{rendered}", examples.erroneous);
        let (codes, rendered) = reported(format!("{code}-fixed.cnn"), examples.fixed);
        assert!(codes.is_empty(), "{}\n{rendered}", examples.fixed);
    }
}

/// E0506 cannot come from a script alone: a Ctrl-C sets the interpreter's interrupt flag
/// (the REPL's handler does), and the statement running stops where it checks it.
#[test]
fn an_interrupted_run_renders_e0506() {
    let source = SourceFile::new(
        "ui/e0506_interrupted.cnn",
        "let steps = 0\nwhile true {\n    steps += 1\n}\n",
    );
    let mut interpreter = cnn::eval::Interpreter::new(Box::new(std::io::sink()));
    let flag = interpreter.interrupt_handle();
    let setter = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(50));
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    let outcome = cnn::run(&source, &mut interpreter);
    setter.join().unwrap();
    let Err(cnn::RunError::Runtime(problem)) = outcome else {
        panic!("the loop should have been interrupted");
    };
    assert_eq!(problem.code().as_deref(), Some("E0506"));
    insta::assert_snapshot!(cnn::report::render_all(
        &[problem],
        Format::Plain { width: 80 }
    ));
}

/// The first error of a script as each stage finds it: the checker's, and the run's with
/// the checker skipped (`cnn run --no-check`), rendered.
fn first_errors(path: &std::path::Path) -> (Option<String>, Option<String>) {
    let text = std::fs::read_to_string(path).expect("ui case is readable");
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    cnn::on_big_stack(move || {
        let source = SourceFile::new(format!("ui/{name}"), text);
        let render = |p: &cnn::report::Problem| {
            cnn::report::render_all(std::slice::from_ref(p), Format::Plain { width: 80 })
        };
        let checked = match cnn::check(&source) {
            Ok(_) => None,
            Err(problems) => problems.iter().find(|p| p.is_error()).map(render),
        };
        let ran = match cnn::parse(&source) {
            Err(problems) => problems.first().map(render),
            Ok(program) => {
                let mut interpreter = cnn::eval::Interpreter::new(Box::new(std::io::sink()));
                match cnn::execute(&source, &mut interpreter, &program) {
                    Err(cnn::RunError::Runtime(problem)) => Some(render(&problem)),
                    _ => None,
                }
            }
        };
        (checked, ran)
    })
}

/// Mistakes only the checker can state: a dim that may differ for some input size
/// (E0312) or a net input that breaks its declaration for some size (E0315) is reported
/// before the run for every size, while a run only sees the sizes it is given.
const CHECK_ONLY: &[&str] = &[
    "e0312_broadcast_may_differ.cnn",
    "e0312_inside_a_model_built_with_parameters.cnn",
    "e0312_skip_connection.cnn",
];

#[test]
fn check_and_run_word_every_decided_mistake_alike() {
    let mut differ = Vec::new();
    for entry in std::fs::read_dir("tests/ui").unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if path.extension().is_none_or(|e| e != "cnn") || CHECK_ONLY.contains(&name.as_str()) {
            continue;
        }
        let (checked, ran) = first_errors(&path);
        if let Some(checked) = checked
            && Some(&checked) != ran.as_ref()
        {
            differ.push(format!(
                "{name}\n--- cnn check\n{checked}\n--- cnn run --no-check\n{}",
                ran.unwrap_or_else(|| "(no error)".into())
            ));
        }
    }
    assert!(differ.is_empty(), "{}", differ.join("\n"));
}
