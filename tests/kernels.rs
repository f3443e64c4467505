//! The numeric kernels of `tensor::ops` against
//! - naive direct-loop references in `f64` (forward and backward, every element), on fixed
//!   configurations naming each argument axis and on random ones (proptest);
//! - central finite differences of the `f64` reference forward, for every backward kernel;
//! - PyTorch's own numbers, transcribed from the conformance scripts (`kernels/pytorch_cases.rs`).

#[path = "kernels/pytorch_cases.rs"]
mod pytorch_cases;

use cnn::tensor::ops::adaptive_pool::{
    AdaptivePool2dGeometry, adaptive_avg_pool2d, adaptive_avg_pool2d_backward, adaptive_max_pool2d,
    adaptive_max_pool2d_backward,
};
use cnn::tensor::ops::conv::{
    Conv2dGeometry, Conv2dParams, ConvGradRequest, ConvTranspose2dGeometry, ConvTranspose2dParams,
    conv_backward_bias, conv_transpose2d, conv_transpose2d_backward,
    conv_transpose2d_backward_input, conv_transpose2d_backward_weight, conv2d, conv2d_backward,
    conv2d_backward_input, conv2d_backward_input_into, conv2d_backward_weight,
    conv2d_backward_weight_into,
};
use cnn::tensor::ops::pool::{
    AvgPool2dGeometry, AvgPool2dParams, MaxPool2dGeometry, MaxPool2dParams, avg_pool2d,
    avg_pool2d_backward, max_pool2d, max_pool2d_backward,
};
use cnn::tensor::ops::resample::{
    Interpolate2dGeometry, PixelShuffleGeometry, interpolate_bilinear,
    interpolate_bilinear_backward, interpolate_nearest, interpolate_nearest_backward,
    pixel_shuffle, pixel_shuffle_backward,
};
use cnn::tensor::shape::ShapeError;
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------
// Helpers

/// SplitMix64: small, deterministic, good enough for test data.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    fn value(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    fn vec(&mut self, len: usize) -> Vec<f32> {
        (0..len).map(|_| self.value()).collect()
    }

    /// Up to `count` distinct indices below `len` (all of them when `len <= count`).
    fn sample(&mut self, len: usize, count: usize) -> Vec<usize> {
        if len <= count {
            return (0..len).collect();
        }
        (0..count)
            .map(|_| (self.next_u64() % len as u64) as usize)
            .collect()
    }
}

fn numel(shape: [usize; 4]) -> usize {
    shape.iter().product()
}

fn to_f64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(a, b)| a * b).sum()
}

/// `|actual - expected| <= tol * (1 + |expected|)` elementwise.
#[track_caller]
fn assert_close(actual: &[f32], expected: &[f64], tol: f64, what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}: length");
    for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        assert!(
            (a as f64 - e).abs() <= tol * (1.0 + e.abs()),
            "{what}[{i}]: got {a}, expected {e}"
        );
    }
}

/// Central finite difference of `loss` at `x` along coordinate `i`.
fn finite_difference(loss: impl Fn(&[f64]) -> f64, x: &[f64], i: usize, eps: f64) -> f64 {
    let mut probe = x.to_vec();
    probe[i] = x[i] + eps;
    let plus = loss(&probe);
    probe[i] = x[i] - eps;
    let minus = loss(&probe);
    (plus - minus) / (2.0 * eps)
}

/// Checks `grad` (from a backward kernel) against finite differences of `loss` on up to 16
/// sampled coordinates.
#[track_caller]
fn check_gradient(
    loss: impl Fn(&[f64]) -> f64,
    x: &[f64],
    grad: &[f32],
    rng: &mut Rng,
    eps: f64,
    what: &str,
) {
    for i in rng.sample(x.len(), 16) {
        let numeric = finite_difference(&loss, x, i, eps);
        assert!(
            (grad[i] as f64 - numeric).abs() <= 1e-3 * (1.0 + numeric.abs()),
            "{what}[{i}]: backward {} vs finite difference {numeric}",
            grad[i]
        );
    }
}

fn run_with_threads<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

// ---------------------------------------------------------------------------------------
// Adaptive pooling against a reference that computes PyTorch's window bounds in floating
// point (`floor(i·L/O)`, `ceil((i+1)·L/O)`), independently of the kernel's integer ones.

/// The adaptive windows of a plane, `(y0, y1, x0, x1)` per output cell in row-major order.
fn reference_adaptive_windows(
    hw: [usize; 2],
    out: [usize; 2],
) -> Vec<(usize, usize, usize, usize)> {
    let bounds = |i: usize, len: usize, out: usize| {
        let start = (i as f64 * len as f64 / out as f64).floor() as usize;
        let end = ((i + 1) as f64 * len as f64 / out as f64).ceil() as usize;
        (start, end)
    };
    let mut windows = Vec::new();
    for oy in 0..out[0] {
        for ox in 0..out[1] {
            let (y0, y1) = bounds(oy, hw[0], out[0]);
            let (x0, x1) = bounds(ox, hw[1], out[1]);
            windows.push((y0, y1, x0, x1));
        }
    }
    windows
}

/// Reference adaptive pooling: the output and, for max, each output's first argmax.
fn reference_adaptive_pool(
    x: &[f64],
    shape: [usize; 4],
    out: [usize; 2],
    max: bool,
) -> (Vec<f64>, Vec<usize>) {
    let [n, c, h, w] = shape;
    let (mut y, mut arg) = (Vec::new(), Vec::new());
    for plane in 0..n * c {
        let xs = &x[plane * h * w..][..h * w];
        for (y0, y1, x0, x1) in reference_adaptive_windows([h, w], out) {
            let taps = (y0..y1).flat_map(|i| (x0..x1).map(move |j| i * w + j));
            if max {
                let mut best = y0 * w + x0;
                for t in taps {
                    if xs[t] > xs[best] {
                        best = t;
                    }
                }
                y.push(xs[best]);
                arg.push(best);
            } else {
                let count = ((y1 - y0) * (x1 - x0)) as f64;
                y.push(taps.map(|t| xs[t]).sum::<f64>() / count);
            }
        }
    }
    (y, arg)
}

#[test]
fn adaptive_pooling_matches_reference() {
    let cases: [([usize; 4], [usize; 2]); 7] = [
        ([2, 3, 5, 7], [3, 4]),
        ([1, 2, 7, 5], [7, 5]),
        ([1, 1, 4, 4], [6, 6]),
        ([1, 2, 9, 1], [4, 1]),
        ([2, 1, 10, 10], [3, 3]),
        ([1, 1, 1, 1], [2, 3]),
        // Large enough for several rayon tasks.
        ([4, 16, 33, 29], [5, 7]),
    ];
    for (seed, (shape, out)) in cases.into_iter().enumerate() {
        let geometry = AdaptivePool2dGeometry::new("adaptive_avg_pool2d", shape, out).unwrap();
        let y_shape = geometry.output_shape();
        assert_eq!(y_shape, [shape[0], shape[1], out[0], out[1]]);
        let mut rng = Rng(seed as u64 + 100);
        let x = rng.vec(numel(shape));
        let g = rng.vec(numel(y_shape));
        let (x64, g64) = (to_f64(&x), to_f64(&g));
        let what = format!("{shape:?} to {out:?}");

        let y = adaptive_avg_pool2d(&geometry, &x);
        let (y_ref, _) = reference_adaptive_pool(&x64, shape, out, false);
        assert_close(&y, &y_ref, 1e-5, &format!("adaptive_avg_pool2d {what}"));
        let dx = adaptive_avg_pool2d_backward(&geometry, &g);
        let loss = |x: &[f64]| dot(&reference_adaptive_pool(x, shape, out, false).0, &g64);
        check_gradient(loss, &x64, &dx, &mut rng, 1e-3, "adaptive_avg_pool2d dx");

        let (y, indices) = adaptive_max_pool2d(&geometry, &x);
        let (y_ref, indices_ref) = reference_adaptive_pool(&x64, shape, out, true);
        assert_close(&y, &y_ref, 0.0, &format!("adaptive_max_pool2d {what}"));
        assert_eq!(indices, indices_ref, "adaptive_max_pool2d indices {what}");
        let dx = adaptive_max_pool2d_backward(&geometry, &g, &indices);
        let loss = |x: &[f64]| dot(&reference_adaptive_pool(x, shape, out, true).0, &g64);
        check_gradient(loss, &x64, &dx, &mut rng, 1e-9, "adaptive_max_pool2d dx");

        // One thread or two: the same numbers.
        let single = run_with_threads(1, || adaptive_avg_pool2d(&geometry, &x));
        assert_eq!(single, adaptive_avg_pool2d(&geometry, &x), "{what}");
    }
    // Ties go to the first maximum, NaN wins.
    let geometry =
        AdaptivePool2dGeometry::new("adaptive_max_pool2d", [1, 1, 2, 2], [1, 1]).unwrap();
    assert_eq!(adaptive_max_pool2d(&geometry, &[1.0, 3.0, 3.0, 2.0]).1, [1]);
    let (y, idx) = adaptive_max_pool2d(&geometry, &[1.0, f32::NAN, 3.0, 2.0]);
    assert!(y[0].is_nan());
    assert_eq!(idx, [1]);
    assert_eq!(
        AdaptivePool2dGeometry::new("adaptive_avg_pool2d", [1, 1, 2, 2], [2, 0]),
        Err(ShapeError::AdaptiveOutputSize {
            op: "adaptive_avg_pool2d",
            output_size: [2, 0],
        })
    );
}

// ---------------------------------------------------------------------------------------
// Convolution references: one enumeration of (output, input, weight) index triples serves
// the forward (y += x*w) and both gradients (dx += dy*w, dw += dy*x).

#[derive(Clone, Copy, Debug)]
struct ConvConfig {
    /// `[N, C_in, H, W]`.
    x: [usize; 4],
    /// conv2d: `[C_out, C_in/groups, kH, kW]`; conv_transpose2d: `[C_in, C_out/groups, kH, kW]`.
    w: [usize; 4],
    stride: [usize; 2],
    padding: [usize; 2],
    output_padding: [usize; 2],
    dilation: [usize; 2],
    groups: usize,
}

impl ConvConfig {
    fn conv_params(&self) -> Conv2dParams {
        Conv2dParams {
            stride: self.stride,
            padding: self.padding,
            dilation: self.dilation,
            groups: self.groups,
        }
    }

    fn transpose_params(&self) -> ConvTranspose2dParams {
        ConvTranspose2dParams {
            stride: self.stride,
            padding: self.padding,
            output_padding: self.output_padding,
            dilation: self.dilation,
            groups: self.groups,
        }
    }

    /// conv2d's output shape, written out independently of `shape.rs`.
    fn conv_output(&self) -> [usize; 4] {
        let size = |axis: usize| {
            let span = (self.x[2 + axis] + 2 * self.padding[axis]) as isize
                - (self.dilation[axis] * (self.w[2 + axis] - 1) + 1) as isize;
            (span.div_euclid(self.stride[axis] as isize) + 1) as usize
        };
        [self.x[0], self.w[0], size(0), size(1)]
    }

    fn transpose_output(&self) -> [usize; 4] {
        let size = |axis: usize| {
            (self.x[2 + axis] - 1) * self.stride[axis]
                + self.dilation[axis] * (self.w[2 + axis] - 1)
                + self.output_padding[axis]
                + 1
                - 2 * self.padding[axis]
        };
        [self.x[0], self.w[1] * self.groups, size(0), size(1)]
    }

    /// Calls `visit(y_index, x_index, w_index)` for every product in conv2d's sum.
    fn conv_taps(&self, mut visit: impl FnMut(usize, usize, usize)) {
        let [n, c_in, h, w] = self.x;
        let [c_out, c_in_g, kh, kw] = self.w;
        let [_, _, oh, ow] = self.conv_output();
        let c_out_g = c_out / self.groups;
        for b in 0..n {
            for co in 0..c_out {
                let g = co / c_out_g;
                for oy in 0..oh {
                    for ox in 0..ow {
                        let y_index = ((b * c_out + co) * oh + oy) * ow + ox;
                        for ci in 0..c_in_g {
                            for ky in 0..kh {
                                for kx in 0..kw {
                                    let iy = (oy * self.stride[0] + ky * self.dilation[0]) as isize
                                        - self.padding[0] as isize;
                                    let ix = (ox * self.stride[1] + kx * self.dilation[1]) as isize
                                        - self.padding[1] as isize;
                                    if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                        continue;
                                    }
                                    let channel = g * c_in_g + ci;
                                    let x_index =
                                        ((b * c_in + channel) * h + iy as usize) * w + ix as usize;
                                    let w_index = ((co * c_in_g + ci) * kh + ky) * kw + kx;
                                    visit(y_index, x_index, w_index);
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Calls `visit(y_index, x_index, w_index)` for every product of conv_transpose2d, from
    /// its definition: each input value scatters a copy of the kernel into the output.
    fn transpose_taps(&self, mut visit: impl FnMut(usize, usize, usize)) {
        let [n, c_in, h, w] = self.x;
        let [_, c_out_g, kh, kw] = self.w;
        let [_, c_out, oh, ow] = self.transpose_output();
        let c_in_g = c_in / self.groups;
        for b in 0..n {
            for ci in 0..c_in {
                let g = ci / c_in_g;
                for iy in 0..h {
                    for ix in 0..w {
                        let x_index = ((b * c_in + ci) * h + iy) * w + ix;
                        for co in 0..c_out_g {
                            for ky in 0..kh {
                                for kx in 0..kw {
                                    let oy = (iy * self.stride[0] + ky * self.dilation[0]) as isize
                                        - self.padding[0] as isize;
                                    let ox = (ix * self.stride[1] + kx * self.dilation[1]) as isize
                                        - self.padding[1] as isize;
                                    if oy < 0 || ox < 0 || oy >= oh as isize || ox >= ow as isize {
                                        continue;
                                    }
                                    let channel = g * c_out_g + co;
                                    let y_index = ((b * c_out + channel) * oh + oy as usize) * ow
                                        + ox as usize;
                                    let w_index = ((ci * c_out_g + co) * kh + ky) * kw + kx;
                                    visit(y_index, x_index, w_index);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Enumerates `(y_index, x_index, w_index)` product triples (see [`ConvConfig::conv_taps`]).
type Taps<'a> = &'a dyn Fn(&mut dyn FnMut(usize, usize, usize));

/// Reference forward: `y = bias + sum of x*w` over `taps`.
fn reference_forward(
    taps: Taps<'_>,
    y_shape: [usize; 4],
    x: &[f64],
    w: &[f64],
    bias: Option<&[f64]>,
) -> Vec<f64> {
    let [_, channels, h, wd] = y_shape;
    let mut y: Vec<f64> = (0..numel(y_shape))
        .map(|i| bias.map_or(0.0, |b| b[(i / (h * wd)) % channels]))
        .collect();
    taps(&mut |yi, xi, wi| y[yi] += x[xi] * w[wi]);
    y
}

/// Reference gradients `(dx, dw)` of `sum(y * g)`.
fn reference_backward(taps: Taps<'_>, x: &[f64], w: &[f64], g: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let mut dx = vec![0.0; x.len()];
    let mut dw = vec![0.0; w.len()];
    taps(&mut |yi, xi, wi| {
        dx[xi] += g[yi] * w[wi];
        dw[wi] += g[yi] * x[xi];
    });
    (dx, dw)
}

fn reference_bias_grad(g: &[f64], y_shape: [usize; 4]) -> Vec<f64> {
    let [_, channels, h, w] = y_shape;
    let mut db = vec![0.0; channels];
    for (i, v) in g.iter().enumerate() {
        db[(i / (h * w)) % channels] += v;
    }
    db
}

/// Runs conv2d forward and backward against the reference; finite differences too when
/// `finite_differences` (small shapes only: each probe is a full reference forward).
fn check_conv2d(config: &ConvConfig, seed: u64, finite_differences: bool) {
    let geometry = Conv2dGeometry::new(config.x, config.w, config.conv_params())
        .unwrap_or_else(|e| panic!("{config:?}: {e}"));
    let y_shape = geometry.output_shape();
    assert_eq!(y_shape, config.conv_output(), "{config:?}");
    let mut rng = Rng(seed);
    let (x, w, b, g) = (
        rng.vec(numel(config.x)),
        rng.vec(numel(config.w)),
        rng.vec(config.w[0]),
        rng.vec(numel(y_shape)),
    );
    let (x64, w64, b64, g64) = (to_f64(&x), to_f64(&w), to_f64(&b), to_f64(&g));
    let taps = |visit: &mut dyn FnMut(usize, usize, usize)| config.conv_taps(visit);

    let y = conv2d(&geometry, &x, &w, Some(&b));
    let y_ref = reference_forward(&taps, y_shape, &x64, &w64, Some(&b64));
    assert_close(&y, &y_ref, 1e-4, &format!("conv2d {config:?} y"));
    let y_no_bias = conv2d(&geometry, &x, &w, None);
    let y_ref_no_bias = reference_forward(&taps, y_shape, &x64, &w64, None);
    assert_close(&y_no_bias, &y_ref_no_bias, 1e-4, "conv2d without bias");

    let dx = conv2d_backward_input(&geometry, &g, &w);
    let dw = conv2d_backward_weight(&geometry, &x, &g);
    let db = conv_backward_bias(&g, y_shape);
    let (dx_ref, dw_ref) = reference_backward(&taps, &x64, &w64, &g64);
    assert_close(&dx, &dx_ref, 1e-4, &format!("conv2d {config:?} dx"));
    assert_close(&dw, &dw_ref, 1e-4, &format!("conv2d {config:?} dw"));
    assert_close(&db, &reference_bias_grad(&g64, y_shape), 1e-4, "conv2d db");
    check_fused(
        |request| conv2d_backward(&geometry, &x, &w, &g, request),
        (&dx, &dw, &db),
        "conv2d_backward",
    );

    if finite_differences {
        let loss_x = |x: &[f64]| {
            dot(
                &reference_forward(&taps, y_shape, x, &w64, Some(&b64)),
                &g64,
            )
        };
        let loss_w = |w: &[f64]| {
            dot(
                &reference_forward(&taps, y_shape, &x64, w, Some(&b64)),
                &g64,
            )
        };
        let loss_b = |b: &[f64]| {
            dot(
                &reference_forward(&taps, y_shape, &x64, &w64, Some(b)),
                &g64,
            )
        };
        check_gradient(loss_x, &x64, &dx, &mut rng, 1e-3, "conv2d dx");
        check_gradient(loss_w, &w64, &dw, &mut rng, 1e-3, "conv2d dw");
        check_gradient(loss_b, &b64, &db, &mut rng, 1e-3, "conv2d db");
    }
}

fn check_conv_transpose2d(config: &ConvConfig, seed: u64, finite_differences: bool) {
    let geometry = ConvTranspose2dGeometry::new(config.x, config.w, config.transpose_params())
        .unwrap_or_else(|e| panic!("{config:?}: {e}"));
    let y_shape = geometry.output_shape();
    assert_eq!(y_shape, config.transpose_output(), "{config:?}");
    let mut rng = Rng(seed);
    let (x, w, b, g) = (
        rng.vec(numel(config.x)),
        rng.vec(numel(config.w)),
        rng.vec(y_shape[1]),
        rng.vec(numel(y_shape)),
    );
    let (x64, w64, b64, g64) = (to_f64(&x), to_f64(&w), to_f64(&b), to_f64(&g));
    let taps = |visit: &mut dyn FnMut(usize, usize, usize)| config.transpose_taps(visit);

    let y = conv_transpose2d(&geometry, &x, &w, Some(&b));
    let y_ref = reference_forward(&taps, y_shape, &x64, &w64, Some(&b64));
    assert_close(&y, &y_ref, 1e-4, &format!("conv_transpose2d {config:?} y"));

    let dx = conv_transpose2d_backward_input(&geometry, &g, &w);
    let dw = conv_transpose2d_backward_weight(&geometry, &x, &g);
    let db = conv_backward_bias(&g, y_shape);
    let (dx_ref, dw_ref) = reference_backward(&taps, &x64, &w64, &g64);
    assert_close(
        &dx,
        &dx_ref,
        1e-4,
        &format!("conv_transpose2d {config:?} dx"),
    );
    assert_close(
        &dw,
        &dw_ref,
        1e-4,
        &format!("conv_transpose2d {config:?} dw"),
    );
    assert_close(
        &db,
        &reference_bias_grad(&g64, y_shape),
        1e-4,
        "conv_transpose2d db",
    );
    check_fused(
        |request| conv_transpose2d_backward(&geometry, &x, &w, &g, request),
        (&dx, &dw, &db),
        "conv_transpose2d_backward",
    );

    if finite_differences {
        let loss_x = |x: &[f64]| {
            dot(
                &reference_forward(&taps, y_shape, x, &w64, Some(&b64)),
                &g64,
            )
        };
        let loss_w = |w: &[f64]| {
            dot(
                &reference_forward(&taps, y_shape, &x64, w, Some(&b64)),
                &g64,
            )
        };
        let loss_b = |b: &[f64]| {
            dot(
                &reference_forward(&taps, y_shape, &x64, &w64, Some(b)),
                &g64,
            )
        };
        check_gradient(loss_x, &x64, &dx, &mut rng, 1e-3, "conv_transpose2d dx");
        check_gradient(loss_w, &w64, &dw, &mut rng, 1e-3, "conv_transpose2d dw");
        check_gradient(loss_b, &b64, &db, &mut rng, 1e-3, "conv_transpose2d db");
    }
}

/// The fused backward agrees with the separate kernels for every subset of gradients.
fn check_fused(
    backward: impl Fn(ConvGradRequest) -> cnn::tensor::ops::conv::ConvGrads,
    (dx, dw, db): (&[f32], &[f32], &[f32]),
    what: &str,
) {
    for mask in 0..8 {
        let request = ConvGradRequest {
            input: mask & 1 != 0,
            weight: mask & 2 != 0,
            bias: mask & 4 != 0,
        };
        let grads = backward(request);
        for (got, expected, wanted, name) in [
            (&grads.input, dx, request.input, "input"),
            (&grads.weight, dw, request.weight, "weight"),
            (&grads.bias, db, request.bias, "bias"),
        ] {
            assert_eq!(got.is_some(), wanted, "{what} {name}: requested {wanted}");
            if let Some(got) = got {
                assert_close(got, &to_f64(expected), 1e-5, &format!("{what} {name}"));
            }
        }
    }
}

fn config(x: [usize; 4], w: [usize; 4]) -> ConvConfig {
    ConvConfig {
        x,
        w,
        stride: [1, 1],
        padding: [0, 0],
        output_padding: [0, 0],
        dilation: [1, 1],
        groups: 1,
    }
}

/// One configuration per axis (and a few combinations), each named by what it exercises.
fn conv_axis_configs() -> Vec<(&'static str, ConvConfig)> {
    vec![
        ("plain 3x3", config([1, 2, 5, 6], [3, 2, 3, 3])),
        ("batch 3", config([3, 2, 5, 5], [2, 2, 3, 3])),
        (
            "stride 2",
            ConvConfig {
                stride: [2, 2],
                ..config([2, 2, 7, 8], [3, 2, 3, 3])
            },
        ),
        (
            "stride (2, 3)",
            ConvConfig {
                stride: [2, 3],
                ..config([1, 2, 7, 9], [2, 2, 2, 2])
            },
        ),
        (
            "padding 1",
            ConvConfig {
                padding: [1, 1],
                ..config([2, 3, 5, 5], [2, 3, 3, 3])
            },
        ),
        (
            "padding (2, 0)",
            ConvConfig {
                padding: [2, 0],
                ..config([1, 2, 4, 6], [2, 2, 3, 3])
            },
        ),
        (
            "dilation 2",
            ConvConfig {
                dilation: [2, 2],
                ..config([1, 2, 7, 7], [2, 2, 3, 3])
            },
        ),
        (
            "dilation (1, 3)",
            ConvConfig {
                dilation: [1, 3],
                padding: [1, 2],
                ..config([2, 1, 5, 8], [2, 1, 2, 3])
            },
        ),
        (
            "groups 2",
            ConvConfig {
                groups: 2,
                ..config([2, 4, 5, 5], [6, 2, 3, 3])
            },
        ),
        (
            "depthwise",
            ConvConfig {
                groups: 3,
                padding: [1, 1],
                ..config([1, 3, 6, 6], [3, 1, 3, 3])
            },
        ),
        (
            "non-square kernel",
            ConvConfig {
                padding: [1, 0],
                ..config([2, 2, 6, 7], [3, 2, 3, 1])
            },
        ),
        ("1x1 pointwise", config([2, 4, 5, 6], [3, 4, 1, 1])),
        (
            "1x1 strided",
            ConvConfig {
                stride: [2, 2],
                ..config([1, 3, 5, 5], [2, 3, 1, 1])
            },
        ),
        (
            "1x1 padded",
            ConvConfig {
                padding: [1, 1],
                ..config([1, 3, 3, 4], [2, 3, 1, 1])
            },
        ),
        (
            "kernel as large as input",
            config([2, 2, 3, 4], [2, 2, 3, 4]),
        ),
        (
            "everything",
            ConvConfig {
                stride: [2, 1],
                padding: [1, 2],
                dilation: [2, 1],
                groups: 2,
                ..config([2, 4, 8, 7], [4, 2, 2, 3])
            },
        ),
    ]
}

#[test]
fn conv2d_matches_reference_on_every_axis() {
    for (i, (name, config)) in conv_axis_configs().into_iter().enumerate() {
        println!("conv2d: {name}");
        check_conv2d(&config, 1000 + i as u64, true);
    }
}

#[test]
fn conv_transpose2d_matches_reference_on_every_axis() {
    let mut configs: Vec<(&str, ConvConfig)> = conv_axis_configs()
        .into_iter()
        .filter(|(_, c)| c.groups == 1 || c.w[0] % c.groups == 0)
        .map(|(name, c)| {
            // Reuse the conv configurations with the weight read as [C_in, C_out/groups, ..].
            let w = [c.x[1], c.w[0] / c.groups, c.w[2], c.w[3]];
            (name, ConvConfig { w, ..c })
        })
        .collect();
    configs.extend([
        (
            "output_padding 1 with stride 2",
            ConvConfig {
                stride: [2, 2],
                output_padding: [1, 1],
                ..config([2, 3, 3, 4], [3, 2, 3, 3])
            },
        ),
        (
            "output_padding via dilation",
            ConvConfig {
                dilation: [3, 2],
                output_padding: [2, 1],
                ..config([1, 2, 3, 3], [2, 2, 2, 2])
            },
        ),
        (
            "srcnn upsampler",
            ConvConfig {
                stride: [2, 2],
                padding: [1, 1],
                ..config([2, 3, 4, 5], [3, 1, 4, 4])
            },
        ),
    ]);
    for (i, (name, config)) in configs.into_iter().enumerate() {
        println!("conv_transpose2d: {name}");
        let valid = ConvTranspose2dGeometry::new(config.x, config.w, config.transpose_params());
        if valid.is_err() {
            // The strided conv configurations crop more than a transposed conv produces.
            continue;
        }
        check_conv_transpose2d(&config, 2000 + i as u64, true);
    }
}

/// Shapes big enough for several im2col tiles per image, under each threading plan: serial
/// (one thread, or a batch of 1) and batch-parallel (balanced, and 3 elements on 2 threads),
/// where the weight gradient is summed from per-task partials.
#[test]
fn conv_large_shapes_under_every_threading_plan() {
    let big = |batch| ConvConfig {
        padding: [1, 1],
        ..config([batch, 64, 10, 64], [8, 64, 3, 3])
    };
    let strided_groups = |batch| ConvConfig {
        stride: [2, 2],
        padding: [1, 1],
        groups: 2,
        ..config([batch, 32, 12, 40], [8, 16, 3, 3])
    };
    for threads in [1, 2] {
        for batch in [1, 2, 3] {
            run_with_threads(threads, || {
                check_conv2d(&big(batch), 7, false);
                check_conv2d(&strided_groups(batch), 8, false);
                let transposed = ConvConfig {
                    w: [64, 8, 3, 3],
                    ..big(batch)
                };
                check_conv_transpose2d(&transposed, 9, false);
            });
        }
    }
}

#[test]
fn conv_gradients_accumulate_into_existing_buffers() {
    let config = ConvConfig {
        padding: [1, 1],
        ..config([2, 2, 4, 4], [3, 2, 3, 3])
    };
    let geometry = Conv2dGeometry::new(config.x, config.w, config.conv_params()).unwrap();
    let mut rng = Rng(5);
    let (x, w, g) = (rng.vec(32 * 2), rng.vec(54), rng.vec(2 * 3 * 16));
    let fresh_dx = conv2d_backward_input(&geometry, &g, &w);
    let fresh_dw = conv2d_backward_weight(&geometry, &x, &g);
    let mut dx = vec![1.0; x.len()];
    let mut dw = vec![-1.0; w.len()];
    conv2d_backward_input_into(&geometry, &g, &w, &mut dx);
    conv2d_backward_weight_into(&geometry, &x, &g, &mut dw);
    let expected_dx: Vec<f64> = fresh_dx.iter().map(|&v| v as f64 + 1.0).collect();
    let expected_dw: Vec<f64> = fresh_dw.iter().map(|&v| v as f64 - 1.0).collect();
    assert_close(&dx, &expected_dx, 1e-6, "accumulated dx");
    assert_close(&dw, &expected_dw, 1e-6, "accumulated dw");
}

#[test]
fn conv_geometry_rejects_invalid_shapes() {
    let params = Conv2dParams::default();
    assert!(matches!(
        Conv2dGeometry::new([1, 4, 5, 5], [2, 3, 3, 3], params),
        Err(ShapeError::ChannelMismatch {
            expected: 3,
            actual: 4,
            ..
        })
    ));
    assert!(matches!(
        Conv2dGeometry::new([1, 3, 2, 5], [2, 3, 3, 3], params),
        Err(ShapeError::OutputTooSmall {
            input: 2,
            output: 0,
            ..
        })
    ));
    assert!(matches!(
        Conv2dGeometry::new(
            [1, 6, 5, 5],
            [4, 2, 3, 3],
            Conv2dParams {
                groups: 3,
                ..params
            }
        ),
        Err(ShapeError::GroupsMismatch { groups: 3, .. })
    ));
    assert!(matches!(
        Conv2dGeometry::new(
            [1, 3, 5, 5],
            [2, 3, 3, 3],
            Conv2dParams {
                stride: [0, 1],
                ..params
            }
        ),
        Err(ShapeError::NonPositiveStride { stride: 0, .. })
    ));
    let transpose = ConvTranspose2dParams {
        padding: [2, 2],
        ..Default::default()
    };
    assert!(matches!(
        ConvTranspose2dGeometry::new([1, 1, 2, 2], [1, 1, 2, 2], transpose),
        Err(ShapeError::OutputTooSmall { output: -1, .. })
    ));
    let transpose = ConvTranspose2dParams {
        stride: [2, 2],
        output_padding: [2, 0],
        ..Default::default()
    };
    assert!(matches!(
        ConvTranspose2dGeometry::new([1, 1, 2, 2], [1, 1, 2, 2], transpose),
        Err(ShapeError::OutputPaddingTooLarge {
            output_padding: 2,
            ..
        })
    ));
}

fn conv_strategy(transpose: bool) -> impl Strategy<Value = (ConvConfig, u64)> {
    (
        (1..=2usize, 1..=3usize, 1..=3usize, 1..=3usize),
        (
            (1..=3usize, 1..=3usize),
            (1..=3usize, 1..=3usize),
            (0..=2usize, 0..=2usize),
        ),
        (
            (1..=2usize, 1..=3usize),
            (0..=2usize, 0..=2usize),
            (1..=7usize, 1..=7usize),
        ),
        any::<u64>(),
    )
        .prop_map(
            move |((n, groups, c_in_g, c_out_g), (k, s, p), (d, op, hw), seed)| {
                let w = if transpose {
                    [c_in_g * groups, c_out_g, k.0, k.1]
                } else {
                    [c_out_g * groups, c_in_g, k.0, k.1]
                };
                let config = ConvConfig {
                    x: [n, c_in_g * groups, hw.0, hw.1],
                    w,
                    stride: [s.0, s.1],
                    padding: [p.0, p.1],
                    output_padding: if transpose { [op.0, op.1] } else { [0, 0] },
                    dilation: [d.0, d.1],
                    groups,
                };
                (config, seed)
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn conv2d_random_configurations((config, seed) in conv_strategy(false)) {
        prop_assume!(Conv2dGeometry::new(config.x, config.w, config.conv_params()).is_ok());
        check_conv2d(&config, seed, true);
    }

    #[test]
    fn conv_transpose2d_random_configurations((config, seed) in conv_strategy(true)) {
        prop_assume!(
            ConvTranspose2dGeometry::new(config.x, config.w, config.transpose_params()).is_ok()
        );
        check_conv_transpose2d(&config, seed, true);
    }
}

// ---------------------------------------------------------------------------------------
// Pooling references, from the definitions.

#[derive(Clone, Copy, Debug)]
struct PoolConfig {
    x: [usize; 4],
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
    ceil_mode: bool,
    count_include_pad: bool,
}

impl PoolConfig {
    fn max_params(&self) -> MaxPool2dParams {
        MaxPool2dParams {
            kernel: self.kernel,
            stride: self.stride,
            padding: self.padding,
            dilation: self.dilation,
            ceil_mode: self.ceil_mode,
        }
    }

    fn avg_params(&self) -> AvgPool2dParams {
        AvgPool2dParams {
            kernel: self.kernel,
            stride: self.stride,
            padding: self.padding,
            ceil_mode: self.ceil_mode,
            count_include_pad: self.count_include_pad,
        }
    }

    /// Window taps of output `(oy, ox)`: `(iy, ix)` in padded coordinates (may be outside).
    fn taps(&self, oy: usize, ox: usize) -> impl Iterator<Item = (isize, isize)> + '_ {
        (0..self.kernel[0]).flat_map(move |ky| {
            (0..self.kernel[1]).map(move |kx| {
                (
                    (oy * self.stride[0] + ky * self.dilation[0]) as isize
                        - self.padding[0] as isize,
                    (ox * self.stride[1] + kx * self.dilation[1]) as isize
                        - self.padding[1] as isize,
                )
            })
        })
    }

    fn inside(&self, (iy, ix): (isize, isize)) -> bool {
        iy >= 0 && ix >= 0 && iy < self.x[2] as isize && ix < self.x[3] as isize
    }
}

/// Reference max pool: maximum over the window's taps inside the input, and its flat index.
fn reference_max_pool(c: &PoolConfig, y_shape: [usize; 4], x: &[f64]) -> (Vec<f64>, Vec<usize>) {
    let [n, ch, oh, ow] = y_shape;
    let (h, w) = (c.x[2], c.x[3]);
    let mut y = Vec::new();
    let mut idx = Vec::new();
    for plane in 0..n * ch {
        for oy in 0..oh {
            for ox in 0..ow {
                let best = c
                    .taps(oy, ox)
                    .filter(|&t| c.inside(t))
                    .map(|(iy, ix)| iy as usize * w + ix as usize)
                    .max_by(|&a, &b| x[plane * h * w + a].total_cmp(&x[plane * h * w + b]))
                    .unwrap();
                y.push(x[plane * h * w + best]);
                idx.push(best);
            }
        }
    }
    (y, idx)
}

/// Reference average pool. The divisor is the number of taps inside the padded input
/// (`count_include_pad`) or inside the input; with `ceil_mode` a window may reach past the
/// right padding, and those taps count for neither (PyTorch's rule).
fn reference_avg_pool(c: &PoolConfig, y_shape: [usize; 4], x: &[f64]) -> Vec<f64> {
    let [n, ch, oh, ow] = y_shape;
    let (h, w) = (c.x[2], c.x[3]);
    let in_padded = |(iy, ix): (isize, isize)| {
        iy < (h + c.padding[0]) as isize && ix < (w + c.padding[1]) as isize
    };
    let mut y = Vec::new();
    for plane in 0..n * ch {
        for oy in 0..oh {
            for ox in 0..ow {
                let sum: f64 = c
                    .taps(oy, ox)
                    .filter(|&t| c.inside(t))
                    .map(|(iy, ix)| x[plane * h * w + iy as usize * w + ix as usize])
                    .sum();
                let divisor = if c.count_include_pad {
                    c.taps(oy, ox).filter(|&t| in_padded(t)).count()
                } else {
                    c.taps(oy, ox).filter(|&t| c.inside(t)).count()
                };
                y.push(sum / divisor as f64);
            }
        }
    }
    y
}

fn check_max_pool(c: &PoolConfig, seed: u64) {
    let geometry =
        MaxPool2dGeometry::new(c.x, c.max_params()).unwrap_or_else(|e| panic!("{c:?}: {e}"));
    let y_shape = geometry.output_shape();
    let mut rng = Rng(seed);
    let x = rng.vec(numel(c.x));
    let g = rng.vec(numel(y_shape));
    let (x64, g64) = (to_f64(&x), to_f64(&g));
    let (y, indices) = max_pool2d(&geometry, &x);
    let (y_ref, indices_ref) = reference_max_pool(c, y_shape, &x64);
    assert_close(&y, &y_ref, 0.0, &format!("max_pool2d {c:?}"));
    assert_eq!(indices, indices_ref, "max_pool2d indices {c:?}");
    let dx = max_pool2d_backward(&geometry, &g, &indices);
    let loss = |x: &[f64]| dot(&reference_max_pool(c, y_shape, x).0, &g64);
    // Random values are at least ~1e-7 apart; a smaller step never changes a window's winner.
    check_gradient(loss, &x64, &dx, &mut rng, 1e-9, "max_pool2d dx");
}

fn check_avg_pool(c: &PoolConfig, seed: u64) {
    let geometry =
        AvgPool2dGeometry::new(c.x, c.avg_params()).unwrap_or_else(|e| panic!("{c:?}: {e}"));
    let y_shape = geometry.output_shape();
    let mut rng = Rng(seed);
    let x = rng.vec(numel(c.x));
    let g = rng.vec(numel(y_shape));
    let (x64, g64) = (to_f64(&x), to_f64(&g));
    let y = avg_pool2d(&geometry, &x);
    assert_close(
        &y,
        &reference_avg_pool(c, y_shape, &x64),
        1e-5,
        &format!("avg_pool2d {c:?}"),
    );
    let dx = avg_pool2d_backward(&geometry, &g);
    let loss = |x: &[f64]| dot(&reference_avg_pool(c, y_shape, x), &g64);
    check_gradient(loss, &x64, &dx, &mut rng, 1e-3, "avg_pool2d dx");
}

fn pool_strategy() -> impl Strategy<Value = (PoolConfig, u64)> {
    (
        (1..=2usize, 1..=3usize, 1..=9usize, 1..=9usize),
        (
            (1..=4usize, 1..=4usize),
            (1..=3usize, 1..=3usize),
            (0..=2usize, 0..=2usize),
        ),
        ((1..=2usize, 1..=2usize), any::<bool>(), any::<bool>()),
        any::<u64>(),
    )
        .prop_map(
            |((n, c, h, w), (k, s, p), (d, ceil_mode, count_include_pad), seed)| {
                let config = PoolConfig {
                    x: [n, c, h, w],
                    kernel: [k.0, k.1],
                    stride: [s.0, s.1],
                    padding: [p.0, p.1],
                    dilation: [d.0, d.1],
                    ceil_mode,
                    count_include_pad,
                };
                (config, seed)
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn max_pool2d_random_configurations((config, seed) in pool_strategy()) {
        prop_assume!(MaxPool2dGeometry::new(config.x, config.max_params()).is_ok());
        // A window with no tap inside the input (a 1-wide input and a dilated kernel) is
        // PyTorch's -inf corner, not a pooling anyone runs.
        let geometry = MaxPool2dGeometry::new(config.x, config.max_params()).unwrap();
        let [_, _, oh, ow] = geometry.output_shape();
        prop_assume!((0..oh).all(|oy| (0..ow).all(|ox| config.taps(oy, ox).any(|t| config.inside(t)))));
        check_max_pool(&config, seed);
    }

    #[test]
    fn avg_pool2d_random_configurations((config, seed) in pool_strategy()) {
        let config = PoolConfig { dilation: [1, 1], ..config };
        prop_assume!(AvgPool2dGeometry::new(config.x, config.avg_params()).is_ok());
        check_avg_pool(&config, seed);
    }
}

#[test]
fn pooling_on_every_axis() {
    let base = PoolConfig {
        x: [2, 2, 7, 8],
        kernel: [3, 3],
        stride: [2, 2],
        padding: [0, 0],
        dilation: [1, 1],
        ceil_mode: false,
        count_include_pad: true,
    };
    let configs = [
        base,
        PoolConfig {
            ceil_mode: true,
            ..base
        },
        PoolConfig {
            padding: [1, 1],
            ..base
        },
        PoolConfig {
            padding: [1, 1],
            ceil_mode: true,
            ..base
        },
        PoolConfig {
            padding: [1, 1],
            count_include_pad: false,
            ..base
        },
        PoolConfig {
            padding: [1, 0],
            ceil_mode: true,
            count_include_pad: false,
            ..base
        },
        PoolConfig {
            kernel: [2, 3],
            stride: [1, 2],
            ..base
        },
        PoolConfig {
            kernel: [2, 2],
            stride: [3, 3],
            ceil_mode: true,
            ..base
        },
        PoolConfig {
            dilation: [2, 1],
            padding: [2, 1],
            ..base
        },
    ];
    for (i, config) in configs.iter().enumerate() {
        check_max_pool(config, 300 + i as u64);
        if config.dilation == [1, 1] {
            check_avg_pool(config, 400 + i as u64);
        }
    }
    // Large enough to split planes across threads.
    let big = PoolConfig {
        x: [4, 16, 32, 32],
        padding: [1, 1],
        ceil_mode: true,
        ..base
    };
    run_with_threads(2, || {
        check_max_pool(&big, 11);
        check_avg_pool(&big, 12);
    });
}

#[test]
fn max_pool_propagates_nan_like_pytorch() {
    let params = MaxPool2dParams {
        kernel: [2, 2],
        stride: [2, 2],
        padding: [0, 0],
        dilation: [1, 1],
        ceil_mode: false,
    };
    let geometry = MaxPool2dGeometry::new([1, 1, 2, 2], params).unwrap();
    let (y, idx) = max_pool2d(&geometry, &[1.0, f32::NAN, 3.0, 2.0]);
    assert!(y[0].is_nan());
    assert_eq!(idx, [1]);
}

#[test]
fn pool_geometry_rejects_invalid_shapes() {
    let params = MaxPool2dParams {
        kernel: [2, 2],
        stride: [2, 2],
        padding: [2, 0],
        dilation: [1, 1],
        ceil_mode: false,
    };
    assert!(matches!(
        MaxPool2dGeometry::new([1, 1, 8, 8], params),
        Err(ShapeError::PoolPaddingTooLarge {
            padding: 2,
            effective_kernel: 2,
            ..
        })
    ));
    let params = AvgPool2dParams {
        kernel: [3, 3],
        stride: [1, 1],
        padding: [0, 0],
        ceil_mode: true,
        count_include_pad: true,
    };
    assert!(matches!(
        AvgPool2dGeometry::new([1, 1, 2, 8], params),
        Err(ShapeError::OutputTooSmall {
            input: 2,
            output: 0,
            ..
        })
    ));
}

// ---------------------------------------------------------------------------------------
// Resampling references.

/// PyTorch's nearest source index, in `f32` as PyTorch computes it (a floor of a product,
/// so `f64` would pick a different pixel when the product lands just below an integer).
fn reference_nearest_index(o: usize, in_len: usize, out_len: usize) -> usize {
    let scale = in_len as f32 / out_len as f32;
    ((o as f32 * scale).floor() as usize).min(in_len - 1)
}

/// Bilinear with `align_corners=false`, from the definition: sample at
/// `(o + 0.5) * in/out - 0.5`, clamped to `[0, in - 1]`, interpolating linearly.
fn reference_linear_weights(o: usize, in_len: usize, out_len: usize) -> Vec<(usize, f64)> {
    let source =
        ((o as f64 + 0.5) * in_len as f64 / out_len as f64 - 0.5).clamp(0.0, (in_len - 1) as f64);
    let i0 = source.floor() as usize;
    let frac = source - i0 as f64;
    let i1 = (i0 + 1).min(in_len - 1);
    vec![(i0, 1.0 - frac), (i1, frac)]
}

fn reference_interpolate(
    x: &[f64],
    x_shape: [usize; 4],
    out_hw: [usize; 2],
    bilinear: bool,
) -> Vec<f64> {
    let [n, c, h, w] = x_shape;
    let mut y = Vec::new();
    for plane in 0..n * c {
        for oy in 0..out_hw[0] {
            for ox in 0..out_hw[1] {
                if bilinear {
                    let mut v = 0.0;
                    for (iy, wy) in reference_linear_weights(oy, h, out_hw[0]) {
                        for (ix, wx) in reference_linear_weights(ox, w, out_hw[1]) {
                            v += wy * wx * x[plane * h * w + iy * w + ix];
                        }
                    }
                    y.push(v);
                } else {
                    let iy = reference_nearest_index(oy, h, out_hw[0]);
                    let ix = reference_nearest_index(ox, w, out_hw[1]);
                    y.push(x[plane * h * w + iy * w + ix]);
                }
            }
        }
    }
    y
}

fn check_interpolate(x_shape: [usize; 4], out_hw: [usize; 2], bilinear: bool, seed: u64) {
    let geometry = Interpolate2dGeometry::new(x_shape, out_hw, None).unwrap();
    let mut rng = Rng(seed);
    let x = rng.vec(numel(x_shape));
    let g = rng.vec(numel(geometry.output_shape()));
    let (x64, g64) = (to_f64(&x), to_f64(&g));
    let (y, dx) = if bilinear {
        (
            interpolate_bilinear(&geometry, &x),
            interpolate_bilinear_backward(&geometry, &g),
        )
    } else {
        (
            interpolate_nearest(&geometry, &x),
            interpolate_nearest_backward(&geometry, &g),
        )
    };
    let what = format!("interpolate bilinear={bilinear} {x_shape:?} -> {out_hw:?}");
    assert_close(
        &y,
        &reference_interpolate(&x64, x_shape, out_hw, bilinear),
        1e-5,
        &what,
    );
    let loss = |x: &[f64]| dot(&reference_interpolate(x, x_shape, out_hw, bilinear), &g64);
    check_gradient(loss, &x64, &dx, &mut rng, 1e-3, &what);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100))]

    #[test]
    fn interpolate_random_sizes(
        (n, c, h, w) in (1..=2usize, 1..=3usize, 1..=7usize, 1..=7usize),
        (oh, ow) in (1..=15usize, 1..=15usize),
        bilinear in any::<bool>(),
        seed in any::<u64>(),
    ) {
        check_interpolate([n, c, h, w], [oh, ow], bilinear, seed);
    }

    #[test]
    fn pixel_shuffle_random_sizes(
        (n, c, h, w, r) in (1..=2usize, 1..=3usize, 1..=5usize, 1..=5usize, 1..=3usize),
        seed in any::<u64>(),
    ) {
        let x_shape = [n, c * r * r, h, w];
        let geometry = PixelShuffleGeometry::new(x_shape, r).unwrap();
        let mut rng = Rng(seed);
        let x = rng.vec(numel(x_shape));
        let y = pixel_shuffle(&geometry, &x);
        // From the definition: out[n, c, h*r + i, w*r + j] = in[n, c*r*r + i*r + j, h, w].
        let [_, _, oh, ow] = geometry.output_shape();
        for b in 0..n {
            for ch in 0..c {
                for yy in 0..h {
                    for xx in 0..w {
                        for i in 0..r {
                            for j in 0..r {
                                let src = ((b * c * r * r + ch * r * r + i * r + j) * h + yy) * w + xx;
                                let dst = ((b * c + ch) * oh + yy * r + i) * ow + xx * r + j;
                                prop_assert_eq!(y[dst], x[src]);
                            }
                        }
                    }
                }
            }
        }
        // A permutation's gradient is the inverse permutation.
        prop_assert_eq!(pixel_shuffle_backward(&geometry, &y), x);
    }
}

#[test]
fn resample_geometry_rejects_invalid_shapes() {
    assert!(matches!(
        PixelShuffleGeometry::new([1, 6, 2, 2], 2),
        Err(ShapeError::UpscaleMismatch {
            channels: 6,
            factor_squared: 4,
            ..
        })
    ));
    assert!(PixelShuffleGeometry::new([1, 8, 2, 2], 0).is_err());
    assert!(Interpolate2dGeometry::new([1, 1, 2, 2], [0, 4], None).is_err());
    assert_eq!(
        Interpolate2dGeometry::scaled_size([5, 3], [1.5, 2.0]),
        [7, 6]
    );
}

#[test]
fn interpolate_with_scale_factor_uses_its_inverse_like_pytorch() {
    // 5 -> floor(5 * 1.5) = 7: PyTorch maps output to input coordinates with 1/1.5, not
    // 5/7. Nearest happens to pick the same pixels here; bilinear shows the difference.
    let geometry = Interpolate2dGeometry::new([1, 1, 1, 5], [1, 7], Some([1.0, 1.5])).unwrap();
    let x = [0.0, 1.0, 2.0, 3.0, 4.0];
    let y = interpolate_bilinear(&geometry, &x);
    // Source of output 3: (3 + 0.5) / 1.5 - 0.5 = 1.8333.
    assert!((y[3] - 1.833_333).abs() < 1e-5, "{y:?}");
    let nearest = interpolate_nearest(&geometry, &x);
    assert_eq!(nearest, [0.0, 0.0, 1.0, 2.0, 2.0, 3.0, 4.0]);
}

// ---------------------------------------------------------------------------------------
// PyTorch's numbers.

/// A `conv2d` or `conv_transpose2d` case from the conformance scripts: inputs, PyTorch's
/// output and the gradients of `(y * g).sum()`.
pub struct ConvCase {
    name: &'static str,
    x: &'static [f32],
    x_shape: [usize; 4],
    w: &'static [f32],
    w_shape: [usize; 4],
    b: Option<&'static [f32]>,
    stride: [usize; 2],
    padding: [usize; 2],
    output_padding: [usize; 2],
    dilation: [usize; 2],
    groups: usize,
    y: &'static [f32],
    y_shape: [usize; 4],
    g: &'static [f32],
    x_grad: &'static [f32],
    w_grad: &'static [f32],
    b_grad: Option<&'static [f32]>,
}

/// A pooling case from the conformance scripts.
pub struct PoolCase {
    name: &'static str,
    x: &'static [f32],
    x_shape: [usize; 4],
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    ceil_mode: bool,
    count_include_pad: bool,
    y: &'static [f32],
    y_shape: [usize; 4],
    g: &'static [f32],
    x_grad: &'static [f32],
}

/// An `interpolate(x, scale_factor=s, mode=...)` case from the conformance scripts.
pub struct InterpCase {
    name: &'static str,
    x: &'static [f32],
    x_shape: [usize; 4],
    scale_factor: f64,
    bilinear: bool,
    y: &'static [f32],
    y_shape: [usize; 4],
    g: &'static [f32],
    x_grad: &'static [f32],
}

/// A `pixel_shuffle` case from the conformance scripts.
pub struct PixelShuffleCase {
    name: &'static str,
    x: &'static [f32],
    x_shape: [usize; 4],
    upscale_factor: usize,
    y: &'static [f32],
    y_shape: [usize; 4],
    g: &'static [f32],
    x_grad: &'static [f32],
}

/// The scripts' own tolerance: `assert_close(..., rtol=1e-4, atol=1e-4)`.
#[track_caller]
fn assert_pytorch(actual: &[f32], expected: &[f32], what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}: length");
    for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        assert!(
            (a - e).abs() <= 1e-4 + 1e-4 * e.abs(),
            "{what}[{i}]: got {a}, PyTorch {e}"
        );
    }
}

#[test]
fn conv2d_matches_pytorch() {
    use pytorch_cases::*;
    for case in [CONV2D_01, CONV2D_06, CONV2D_07, CONV2D_12] {
        let params = Conv2dParams {
            stride: case.stride,
            padding: case.padding,
            dilation: case.dilation,
            groups: case.groups,
        };
        let geometry = Conv2dGeometry::new(case.x_shape, case.w_shape, params).unwrap();
        assert_eq!(geometry.output_shape(), case.y_shape, "{}", case.name);
        let y = conv2d(&geometry, case.x, case.w, case.b);
        assert_pytorch(&y, case.y, case.name);
        assert_pytorch(
            &conv2d_backward_input(&geometry, case.g, case.w),
            case.x_grad,
            case.name,
        );
        assert_pytorch(
            &conv2d_backward_weight(&geometry, case.x, case.g),
            case.w_grad,
            case.name,
        );
        if let Some(b_grad) = case.b_grad {
            assert_pytorch(&conv_backward_bias(case.g, case.y_shape), b_grad, case.name);
        }
    }
}

#[test]
fn conv_transpose2d_matches_pytorch() {
    use pytorch_cases::*;
    for case in [
        CONV_TRANSPOSE2D_03,
        CONV_TRANSPOSE2D_06,
        CONV_TRANSPOSE2D_07,
        CONV_TRANSPOSE2D_08,
    ] {
        let params = ConvTranspose2dParams {
            stride: case.stride,
            padding: case.padding,
            output_padding: case.output_padding,
            dilation: case.dilation,
            groups: case.groups,
        };
        let geometry = ConvTranspose2dGeometry::new(case.x_shape, case.w_shape, params).unwrap();
        assert_eq!(geometry.output_shape(), case.y_shape, "{}", case.name);
        let y = conv_transpose2d(&geometry, case.x, case.w, case.b);
        assert_pytorch(&y, case.y, case.name);
        let dx = conv_transpose2d_backward_input(&geometry, case.g, case.w);
        assert_pytorch(&dx, case.x_grad, case.name);
        let dw = conv_transpose2d_backward_weight(&geometry, case.x, case.g);
        assert_pytorch(&dw, case.w_grad, case.name);
        if let Some(b_grad) = case.b_grad {
            assert_pytorch(&conv_backward_bias(case.g, case.y_shape), b_grad, case.name);
        }
    }
}

#[test]
fn pooling_matches_pytorch() {
    use pytorch_cases::*;
    for case in [MAX_POOL2D_02, MAX_POOL2D_04] {
        let params = MaxPool2dParams {
            kernel: case.kernel,
            stride: case.stride,
            padding: case.padding,
            dilation: [1, 1],
            ceil_mode: case.ceil_mode,
        };
        let geometry = MaxPool2dGeometry::new(case.x_shape, params).unwrap();
        assert_eq!(geometry.output_shape(), case.y_shape, "{}", case.name);
        let (y, indices) = max_pool2d(&geometry, case.x);
        assert_pytorch(&y, case.y, case.name);
        assert_pytorch(
            &max_pool2d_backward(&geometry, case.g, &indices),
            case.x_grad,
            case.name,
        );
    }
    for case in [AVG_POOL2D_01, AVG_POOL2D_03, AVG_POOL2D_05] {
        let params = AvgPool2dParams {
            kernel: case.kernel,
            stride: case.stride,
            padding: case.padding,
            ceil_mode: case.ceil_mode,
            count_include_pad: case.count_include_pad,
        };
        let geometry = AvgPool2dGeometry::new(case.x_shape, params).unwrap();
        assert_eq!(geometry.output_shape(), case.y_shape, "{}", case.name);
        assert_pytorch(&avg_pool2d(&geometry, case.x), case.y, case.name);
        assert_pytorch(
            &avg_pool2d_backward(&geometry, case.g),
            case.x_grad,
            case.name,
        );
    }
}

#[test]
fn resampling_matches_pytorch() {
    use pytorch_cases::*;
    for case in [INTERPOLATE_NEAREST, INTERPOLATE_BILINEAR] {
        let scale = [case.scale_factor; 2];
        let [_, _, h, w] = case.x_shape;
        let out_hw = Interpolate2dGeometry::scaled_size([h, w], scale);
        let geometry = Interpolate2dGeometry::new(case.x_shape, out_hw, Some(scale)).unwrap();
        assert_eq!(geometry.output_shape(), case.y_shape, "{}", case.name);
        let (y, dx) = if case.bilinear {
            (
                interpolate_bilinear(&geometry, case.x),
                interpolate_bilinear_backward(&geometry, case.g),
            )
        } else {
            (
                interpolate_nearest(&geometry, case.x),
                interpolate_nearest_backward(&geometry, case.g),
            )
        };
        assert_pytorch(&y, case.y, case.name);
        assert_pytorch(&dx, case.x_grad, case.name);
    }
    let case = PIXEL_SHUFFLE;
    let geometry = PixelShuffleGeometry::new(case.x_shape, case.upscale_factor).unwrap();
    assert_eq!(geometry.output_shape(), case.y_shape, "{}", case.name);
    assert_pytorch(&pixel_shuffle(&geometry, case.x), case.y, case.name);
    assert_pytorch(
        &pixel_shuffle_backward(&geometry, case.g),
        case.x_grad,
        case.name,
    );
}
