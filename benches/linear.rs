//! Checking and running grow linearly with the input: each group runs one workload at 1x, 2x
//! and 4x its base size, so the times should double from one size to the next.
//!
//! - `check_errors`: `cnn check` of a script with an error on every line, every report
//!   rendered (undefined names, shape mismatches, unknown keywords, undeclared assignments).
//! - `fn_definitions`: checking, then running, a script of many `fn` definitions.
//! - `repl_session`: a REPL session of many entries through the [`Session`] API, as piped
//!   input drives it.
//!
//! Run with `cargo bench --bench linear`.

use cnn::report::{Format, render_all};
use cnn::session::Session;
use cnn::source::SourceFile;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

/// `lines` lines, each with one error of four kinds in turn.
fn script_with_errors(lines: usize) -> String {
    (0..lines)
        .map(|i| match i % 4 {
            0 => format!("let v{i} = undefined_name_{i} + 1\n"),
            1 => format!("let s{i} = randn(2, 3) @ randn(4, 5)\n"),
            2 => format!("let c{i} = Conv2d(3, 8, kernal_size=3)\n"),
            _ => format!("x{i} = 5\n"),
        })
        .collect()
}

/// `count` one-line `fn` definitions, then a loop calling the first and the last.
fn script_with_fns(count: usize) -> String {
    let mut text: String = (0..count)
        .map(|i| format!("fn f{i}(x) {{ return x + {i} }}\n"))
        .collect();
    let last = count - 1;
    text.push_str(&format!(
        "let total = 0\nfor i in 0..100 {{ total += f0(i) + f{last}(i) }}\ntotal\n"
    ));
    text
}

/// `count` REPL entries: tensors, `fn`s, calls of both, an expression to print, ints.
fn session_entries(count: usize) -> Vec<String> {
    (0..count)
        .map(|i| match i % 5 {
            0 => format!("let x{i} = randn(2, 3)"),
            1 => format!("fn f{i}(a) {{ return a * 2 }}"),
            2 => format!("let y{i} = f{}(x{}) @ randn(3, 4)", i - 1, i - 2),
            3 => format!("y{}.shape", i - 1),
            _ => format!("let s{i} = {i} + 1"),
        })
        .collect()
}

const SCALES: [usize; 3] = [1, 2, 4];

fn check_errors(c: &mut Criterion) {
    let mut group = c.benchmark_group("check_errors");
    group.sample_size(10);
    for scale in SCALES {
        let lines = 10_000 * scale;
        let source = SourceFile::new("errors.cnn", script_with_errors(lines));
        let problems = cnn::check(&source).err().unwrap_or_default();
        assert!(problems.len() >= lines, "an error on every line");
        group.bench_with_input(BenchmarkId::from_parameter(lines), &source, |b, source| {
            b.iter(|| {
                let problems = cnn::check(source).err().unwrap_or_default();
                render_all(&problems, Format::Plain { width: 100 }).len()
            })
        });
    }
    group.finish();
}

fn fn_definitions(c: &mut Criterion) {
    let mut group = c.benchmark_group("fn_definitions");
    group.sample_size(10);
    for scale in SCALES {
        let count = 25_000 * scale;
        let source = SourceFile::new("fns.cnn", script_with_fns(count));
        let transcript = cnn::run_captured(&source);
        assert_eq!(transcript.exit_code, 0, "{:?}", transcript.problems);
        group.bench_with_input(BenchmarkId::from_parameter(count), &source, |b, source| {
            b.iter(|| cnn::run_captured(source).exit_code)
        });
    }
    group.finish();
}

fn repl_session(c: &mut Criterion) {
    let mut group = c.benchmark_group("repl_session");
    group.sample_size(10);
    for scale in SCALES {
        let count = 1_000 * scale;
        let entries = session_entries(count);
        group.bench_with_input(
            BenchmarkId::from_parameter(count),
            &entries,
            |b, entries| {
                b.iter(|| {
                    let mut session = Session::new(Box::new(std::io::sink()));
                    for entry in entries {
                        let reply = session.enter(entry);
                        assert!(!reply.failed(), "{entry}: {:?}", reply.problems);
                    }
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, check_errors, fn_definitions, repl_session);
criterion_main!(benches);
