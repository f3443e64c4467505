//! The convolution workloads of `shared/bench/` on the kernels alone (no interpreter, no
//! autograd), to compare with `torch_reference.py` at the same shapes:
//!
//! - `conv_fwd`: `[16, 32, 64, 64] * [64, 32, 3, 3]`, padding 1, forward only;
//! - `conv_fwd_bwd`: the same forward, then the gradients of `y.sum()` for input and weight;
//! - `convT_fwd_bwd`: `[16, 64, 32, 32]` through a `[64, 32, 4, 4]` transposed convolution,
//!   stride 2, padding 1 (to `[16, 32, 64, 64]`), forward and both gradients of `y.sum()`.
//!
//! `sum().backward()` hands the convolution a gradient of ones; it is built once, outside the
//! timed loop, as autograd would hand it over. The backward is the fused `*_backward` call
//! autograd makes, computing the input and weight gradients in one pass.
//!
//! Run with `cargo bench --bench conv -- --warm-up-time 1 --measurement-time 5`;
//! `RAYON_NUM_THREADS` picks the thread count (default: one per core).

use std::hint::black_box;

use cnn::tensor::ops::conv::{
    Conv2dGeometry, Conv2dParams, ConvGradRequest, ConvTranspose2dGeometry, ConvTranspose2dParams,
    conv_transpose2d, conv_transpose2d_backward, conv2d, conv2d_backward,
};
use criterion::{Criterion, criterion_group, criterion_main};

/// What autograd asks for in the workloads: both tensors require grad, there is no bias.
const INPUT_AND_WEIGHT: ConvGradRequest = ConvGradRequest {
    input: true,
    weight: true,
    bias: false,
};

/// Deterministic values in [-1, 1): the data does not affect the timing, only its size.
fn data(len: usize, seed: u32) -> Vec<f32> {
    let mut state = seed.wrapping_mul(2_654_435_761).max(1);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state >> 8) as f32 / (1u32 << 23) as f32 - 1.0
        })
        .collect()
}

fn conv_workloads(c: &mut Criterion) {
    let conv = Conv2dGeometry::new(
        [16, 32, 64, 64],
        [64, 32, 3, 3],
        Conv2dParams {
            padding: [1, 1],
            ..Conv2dParams::default()
        },
    )
    .expect("valid convolution");
    let x = data(16 * 32 * 64 * 64, 1);
    let w = data(64 * 32 * 3 * 3, 2);
    let ones = vec![1.0; conv.output_shape().iter().product()];

    c.bench_function("conv_fwd", |b| {
        b.iter(|| conv2d(&conv, black_box(&x), &w, None))
    });
    c.bench_function("conv_fwd_bwd", |b| {
        b.iter(|| {
            let y = conv2d(&conv, black_box(&x), &w, None);
            (y, conv2d_backward(&conv, &x, &w, &ones, INPUT_AND_WEIGHT))
        })
    });

    let transpose = ConvTranspose2dGeometry::new(
        [16, 64, 32, 32],
        [64, 32, 4, 4],
        ConvTranspose2dParams {
            stride: [2, 2],
            padding: [1, 1],
            ..Default::default()
        },
    )
    .expect("valid transposed convolution");
    let xt = data(16 * 64 * 32 * 32, 3);
    let wt = data(64 * 32 * 4 * 4, 4);
    let ones_t = vec![1.0; transpose.output_shape().iter().product()];
    c.bench_function("convT_fwd_bwd", |b| {
        b.iter(|| {
            let y = conv_transpose2d(&transpose, black_box(&xt), &wt, None);
            (
                y,
                conv_transpose2d_backward(&transpose, &xt, &wt, &ones_t, INPUT_AND_WEIGHT),
            )
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = conv_workloads
}
criterion_main!(benches);
