//! The workloads of the shared benchmark folder, end to end through the interpreter: the
//! same scripts as `shared/bench/*.cnn`, with criterion timing one `step()` call where the
//! scripts use `timeit`. Compare the medians with `torch_reference.py` (PyTorch at 2
//! threads on this machine: conv_fwd ~27 ms, conv_fwd_bwd ~63 ms, convT_fwd_bwd ~23 ms).
//!
//! Run with `cargo bench --bench workloads -- --warm-up-time 1 --measurement-time 5`.

use cnn::eval::Interpreter;
use cnn::source::SourceFile;
use criterion::{Criterion, criterion_group, criterion_main};

/// `(name, setup)`: each setup defines `step()` as in the shared workload.
const WORKLOADS: &[(&str, &str)] = &[
    (
        "conv_fwd",
        "seed(0)
let x = randn(16, 32, 64, 64)
let w = randn(64, 32, 3, 3)
fn step() { with no_grad { conv2d(x, w, padding=1) } }",
    ),
    (
        "conv_fwd_bwd",
        "seed(0)
let x = randn(16, 32, 64, 64, requires_grad=true)
let w = randn(64, 32, 3, 3, requires_grad=true)
fn step() { conv2d(x, w, padding=1).sum().backward() }",
    ),
    (
        "convT_fwd_bwd",
        "seed(0)
let x = randn(16, 64, 32, 32, requires_grad=true)
let w = randn(64, 32, 4, 4, requires_grad=true)
fn step() { conv_transpose2d(x, w, stride=2, padding=1).sum().backward() }",
    ),
    (
        "srcnn_train",
        "seed(0)
let model = Sequential(Conv2d(1, 64, 9, padding=4), ReLU(), Conv2d(64, 32, 1), ReLU(),
                       ConvTranspose2d(32, 1, 4, stride=2, padding=1))
let opt = Adam(model.parameters(), lr=0.001)
let x = randn(16, 1, 32, 32)
let t = randn(16, 1, 64, 64)
fn step() {
    opt.zero_grad()
    mse_loss(model(x), t).backward()
    opt.step()
}",
    ),
    (
        "lenet_train",
        "seed(0)
let model = Sequential(Conv2d(1, 6, 5, padding=2), ReLU(), MaxPool2d(2), Conv2d(6, 16, 5), ReLU(),
                       MaxPool2d(2), Flatten(), Linear(16 * 5 * 5, 120), ReLU(), Linear(120, 84),
                       ReLU(), Linear(84, 10))
let opt = SGD(model.parameters(), lr=0.01, momentum=0.9)
let x = randn(64, 1, 28, 28)
let t = randint(0, 10, [64])
fn step() {
    opt.zero_grad()
    cross_entropy(model(x), t).backward()
    opt.step()
}",
    ),
    (
        "scalar_loop",
        "fn step() {
    let s = 0
    for i in 0..1000000 { s = s + i % 7 }
    return s
}",
    ),
];

fn workloads(c: &mut Criterion) {
    for &(name, setup) in WORKLOADS {
        let mut interpreter = Interpreter::new(Box::new(std::io::sink()));
        let setup = SourceFile::new(name, setup);
        if let Err(e) = cnn::run(&setup, &mut interpreter) {
            panic!(
                "{name}: the setup fails; run it with `cnn run` to see why ({})",
                match e {
                    cnn::RunError::Check(p) =>
                        p.iter().map(|p| p.message()).collect::<Vec<_>>().join("; "),
                    cnn::RunError::Runtime(p) => p.message(),
                }
            );
        }
        let step = cnn::syntax::parse(&SourceFile::new("step", "step()"))
            .unwrap_or_else(|_| panic!("`step()` parses"));
        c.bench_function(name, |b| {
            b.iter(|| {
                if interpreter.run(&step).is_err() {
                    panic!("{name}: step() failed");
                }
            })
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = workloads
}
criterion_main!(benches);
