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
