//! Every program in `examples/` passes the checks and runs to completion; its output is
//! snapshotted so a change in what an example prints is reviewed.
//!
//! The snapshots hold only what every machine prints alike: text, shapes, codes, counts and
//! figures that float32 computes exactly. A figure whose last digits depend on the order in
//! which the kernels add (the SIMD width of the machine, the blocking of the matrix product)
//! is listed in `MACHINE_DEPENDENT_FIGURES` instead: the snapshot shows its bounds in its place,
//! and the test checks the printed figure lies within them. A figure computed without
//! training differs between machines only in its last float32 digit, so its bounds are one
//! unit of its last printed digit either side; a training run carries such a difference
//! forward into a different trajectory, so a trained figure gets bounds that hold when the
//! same script is trained from other seeds (48 were tried), which moves it much further.

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
        insta::assert_snapshot!(redact_machine_dependent_figures(&name, &output));
    });
}

/// The lines of an example's output that hold figures which differ between machines: the
/// example, the line with `{}` for each figure, and the bounds of each figure, in order.
type FigureLine = (&'static str, &'static str, &'static [(f64, f64)]);

// 3.14 below is a PSNR bound, not an approximation of pi.
#[allow(clippy::approx_constant)]
const MACHINE_DEPENDENT_FIGURES: &[FigureLine] = &[
    (
        "bars.cnn",
        "loss went from {} to {}",
        &[(0.675, 0.677), (0.0, 0.1)],
    ),
    (
        "conv_as_matrix.cnn",
        "shape back: [1, 1, 4, 4]  largest difference from x: {}",
        &[(5.495, 5.497)],
    ),
    ("lenet.cnn", "epoch 0 loss {}", &[(1.097, 1.099)]),
    ("lenet.cnn", "epoch 5 loss {}", &[(0.6, 1.1)]),
    ("lenet.cnn", "epoch 10 loss {}", &[(0.1, 0.7)]),
    ("lenet.cnn", "epoch 15 loss {}", &[(0.0, 0.4)]),
    ("lenet.cnn", "epoch 20 loss {}", &[(0.0, 0.2)]),
    ("lenet.cnn", "accuracy on new images: {}", &[(0.9, 1.0)]),
    ("srcnn.cnn", "nearest upsampling: {} dB", &[(33.08, 33.10)]),
    ("srcnn.cnn", "step 0 PSNR {} dB", &[(2.0, 16.0)]),
    ("srcnn.cnn", "step 100 PSNR {} dB", &[(20.0, 37.0)]),
    ("srcnn.cnn", "step 200 PSNR {} dB", &[(26.0, 40.0)]),
    ("srcnn.cnn", "step 300 PSNR {} dB", &[(20.0, 42.0)]),
    ("srcnn.cnn", "step 400 PSNR {} dB", &[(32.0, 43.0)]),
    (
        "srcnn.cnn",
        "PSNR went from {} to {} dB",
        &[(3.14, 3.16), (33.6, 43.0)],
    ),
];

/// `output` with each machine-dependent figure replaced by its bounds, `{low..high}`, after
/// checking that it lies within them. Panics when a figure is out of bounds or when a line
/// listed for this example is missing, so the list cannot go stale.
fn redact_machine_dependent_figures(example: &str, output: &str) -> String {
    let listed: Vec<&FigureLine> = MACHINE_DEPENDENT_FIGURES
        .iter()
        .filter(|(name, _, _)| *name == example)
        .collect();
    let mut seen = vec![false; listed.len()];
    let mut redacted = String::new();
    for line in output.lines() {
        let mut shown = line.to_string();
        for (k, (_, pattern, bounds)) in listed.iter().enumerate() {
            let Some(figures) = figures_in(pattern, line) else {
                continue;
            };
            seen[k] = true;
            assert_eq!(
                figures.len(),
                bounds.len(),
                "{example}: `{pattern}` needs one bound per figure"
            );
            shown = pattern.to_string();
            for (figure, (low, high)) in figures.iter().zip(bounds.iter()) {
                assert!(
                    (low..=high).contains(&figure),
                    "{example}: {figure} is outside {low}..{high} in `{line}`"
                );
                shown = shown.replacen("{}", &format!("{{{low}..{high}}}"), 1);
            }
        }
        redacted.push_str(&shown);
        redacted.push('\n');
    }
    for ((_, pattern, _), seen) in listed.iter().zip(seen) {
        assert!(seen, "{example} printed no line like `{pattern}`");
    }
    redacted
}

/// The numbers standing where `pattern` has `{}`, if `line` is `pattern` with numbers there.
fn figures_in(pattern: &str, line: &str) -> Option<Vec<f64>> {
    let mut pieces = pattern.split("{}");
    let mut rest = line.strip_prefix(pieces.next()?)?;
    let mut figures = Vec::new();
    for piece in pieces {
        let end = if piece.is_empty() {
            rest.len()
        } else {
            rest.find(piece)?
        };
        figures.push(rest[..end].parse().ok()?);
        rest = &rest[end + piece.len()..];
    }
    rest.is_empty().then_some(figures)
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

/// A ```` ```cnn ```` block of the documentation in `docs/`: where it is, its source, the
/// code it must be reported with (```` ```cnn E0302 ````, an example of a mistake, or
/// ```` ```cnn W0301 ```` for a warning) and what it must print (the ```` ```output ````
/// block right after it), when the page shows those.
struct DocBlock {
    place: String,
    source: String,
    expected_code: Option<String>,
    expected_output: Option<String>,
}

/// Every ```` ```cnn ```` block of a Markdown page, in order.
fn cnn_blocks(page: &str, text: &str) -> Vec<DocBlock> {
    let mut blocks: Vec<DocBlock> = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((number, line)) = lines.next() {
        let Some(info) = line.trim_start().strip_prefix("```") else {
            continue;
        };
        let mut body = String::new();
        for (_, line) in lines.by_ref() {
            if line.trim_start().starts_with("```") {
                break;
            }
            body.push_str(line);
            body.push('\n');
        }
        let mut words = info.split_whitespace();
        match words.next() {
            Some("cnn") => blocks.push(DocBlock {
                place: format!("{page}:{}", number + 1),
                source: body,
                expected_code: words.next().map(str::to_string),
                expected_output: None,
            }),
            Some("output") => {
                let block = blocks.last_mut().filter(|b| b.expected_output.is_none());
                let block = block.unwrap_or_else(|| {
                    panic!(
                        "{page}:{}: an output block must follow a cnn block",
                        number + 1
                    )
                });
                block.expected_output = Some(body);
            }
            _ => {}
        }
    }
    blocks
}

/// Every ```` ```cnn ```` example in `docs/` passes the checks and runs, printing what the
/// page shows after it, unless it is marked as a mistake with the code it must be rejected
/// with.
#[test]
fn documentation_examples_run() {
    let mut pages: Vec<_> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/docs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .collect();
    pages.sort();
    let mut count = 0;
    for path in pages {
        let page = format!("docs/{}", path.file_name().unwrap().to_string_lossy());
        let text = std::fs::read_to_string(&path).unwrap();
        for block in cnn_blocks(&page, &text) {
            count += 1;
            let source = SourceFile::new(block.place.clone(), block.source.clone());
            let (code, output, rendered) = cnn::on_big_stack(move || {
                let t = cnn::run_captured(&source);
                let rendered = cnn::report::render_all(&t.problems, Format::Plain { width: 80 });
                (t.exit_code, t.output, rendered)
            });
            let place = &block.place;
            match &block.expected_code {
                None => assert_eq!(code, 0, "{place} failed:\n{rendered}"),
                Some(expected) => {
                    // A warning (W0301) is reported and the program still runs.
                    if !expected.starts_with('W') {
                        assert_ne!(code, 0, "{place} should be rejected with {expected}");
                    }
                    assert!(
                        rendered.contains(expected.as_str()),
                        "{place} should be rejected with {expected}:\n{rendered}"
                    );
                }
            }
            if let Some(expected) = &block.expected_output {
                assert_eq!(&output, expected, "{place} printed something else");
            }
        }
    }
    assert!(count > 0, "no ```cnn blocks found in docs/");
}
