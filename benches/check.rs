//! How long `cnn check` takes on a large script: 5 000 generated lines of layer
//! definitions, shape arithmetic, fns and loops (the budget is 0.5 s).
//!
//! Run with `cargo bench --bench check`.

use cnn::source::SourceFile;
use criterion::{Criterion, criterion_group, criterion_main};

/// A script of about `lines` lines: blocks of conv stacks on concrete inputs, views,
/// broadcasting, a fn and a loop, each block with its own names.
fn generated_script(lines: usize) -> String {
    let mut out = String::new();
    let mut block = 0;
    while out.lines().count() < lines {
        let b = block;
        out.push_str(&format!(
            "let x{b} = randn(8, 3, 32, 32)
let conv{b} = Conv2d(3, 16, 3, padding=1)
let pool{b} = MaxPool2d(2)
let h{b} = pool{b}(relu(conv{b}(x{b})))
let up{b} = ConvTranspose2d(16, 8, 4, stride=2, padding=1)
let u{b} = up{b}(h{b})
let flat{b} = u{b}.flatten(1)
let head{b} = Linear(8 * 32 * 32, 10)
let logits{b} = head{b}(flat{b})
let bias{b} = zeros(1, 10)
let out{b} = logits{b} + bias{b}
let m{b} = randn(10, 4) @ randn(4, 6)
fn size{b}(n, k=3, s=1, p=0) {{ return (n + 2 * p - k) // s + 1 }}
let total{b} = 0
for i in 0..4 {{ total{b} += size{b}(32, s=2, p=1) * i }}
assert total{b} >= 0, \"sizes are positive\"
"
        ));
        block += 1;
    }
    out
}

fn check_large_script(c: &mut Criterion) {
    let text = generated_script(5000);
    let lines = text.lines().count();
    let source = SourceFile::new("generated.cnn", text);
    // The script is valid: the benchmark measures a clean check, not error rendering.
    assert!(
        cnn::check(&source).is_ok(),
        "the generated script checks clean"
    );
    c.bench_function(&format!("check_{lines}_lines"), |b| {
        b.iter(|| cnn::check(&source).is_ok())
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = check_large_script
}
criterion_main!(benches);
