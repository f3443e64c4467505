//! Every program in `examples/` passes the checks and runs to completion; its output is
//! snapshotted so a change in what an example prints is reviewed.

use cnn::report::Format;
use cnn::source::SourceFile;

#[test]
fn examples_run() {
    insta::glob!("../examples", "*.cnn", |path| {
        let text = std::fs::read_to_string(path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let source = SourceFile::new(name.clone(), text);
        let (code, output, rendered) = cnn::on_big_stack(move || {
            let t = cnn::run_captured(&source);
            let rendered = cnn::report::render_all(&t.problems, Format::Plain { width: 80 });
            (t.exit_code, t.output, rendered)
        });
        assert_eq!(code, 0, "{name} failed:\n{rendered}");
        insta::assert_snapshot!(output);
    });
}

/// Every program in `examples/mistakes/` is a mistake shown in the documentation: the
/// checker must reject it before anything runs, with the code its file name starts with.
#[test]
fn example_mistakes_are_caught_by_the_checker() {
    insta::glob!("../examples/mistakes", "*.cnn", |path| {
        let text = std::fs::read_to_string(path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let code = name.split('_').next().unwrap().to_uppercase();
        let source = SourceFile::new(format!("examples/mistakes/{name}"), text);
        let problems = match cnn::check(&source) {
            Ok(_) => panic!("{name}: the checker accepted a mistake"),
            Err(problems) => problems,
        };
        let rendered = cnn::report::render_all(&problems, Format::Plain { width: 80 });
        assert!(
            rendered.contains(&code),
            "{name} should be reported as {code}:\n{rendered}"
        );
        insta::assert_snapshot!(rendered);
    });
}
