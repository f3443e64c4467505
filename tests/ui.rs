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

/// Codes whose `cnn explain` example runs in the language as it is today: each must report
/// exactly that code. (Most examples, and every fixed example, use tensors and layers; as
/// those land, their codes join this list, and each fixed example must run clean.) The
/// list grows until it is every code of LANGUAGE.md §10.
const REPORTED_CODES: &[&str] = &["E0101", "E0102", "E0103", "E0104", "E0201", "E0203"];

#[test]
fn explain_examples_report_their_code() {
    for &code in REPORTED_CODES {
        let examples = cnn::explain::examples(code).expect("every code has examples");
        let source = SourceFile::new(format!("{code}.cnn"), examples.erroneous);
        let (codes, rendered) = cnn::on_big_stack(move || {
            let t = cnn::run_captured(&source);
            let codes: Vec<String> = t.problems.iter().filter_map(|p| p.code()).collect();
            let rendered = cnn::report::render_all(&t.problems, Format::Plain { width: 80 });
            (codes, rendered)
        });
        assert_eq!(codes, [code], "{}\n{rendered}", examples.erroneous);
    }
}
