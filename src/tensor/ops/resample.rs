//! Resampling, NCHW: `interpolate` (nearest, and bilinear with PyTorch's default
//! `align_corners=false`) and `pixel_shuffle`, forward and backward.
//!
//! Source coordinates are computed in `f32` with PyTorch's formulas, so the chosen pixels and
//! weights agree with it bit for bit on the index side.

use rayon::prelude::*;

use crate::tensor::shape::{ShapeError, SpatialOp, to_i64};

/// Planes per rayon task: at least this many output elements per task.
const MIN_TASK_ELEMENTS: usize = 1 << 14;

/// An `interpolate` call whose shapes have been checked.
///
/// `scale_factor` matters beyond the output size: when the caller gave `scale_factor=` (and
/// not `size=`), PyTorch maps output to input coordinates with `1 / scale_factor`, not
/// `in / out`, and the two differ when the scaled size was rounded down.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Interpolate2dGeometry {
    input: [usize; 4],
    output: [usize; 4],
    scale_factor: Option<[f64; 2]>,
}

impl Interpolate2dGeometry {
    /// Resampling of an `[N, C, H, W]` input to `output_hw`; `scale_factor` is the user's
    /// `[scale_h, scale_w]` when given (see the type's docs), else `None`.
    pub fn new(
        input: [usize; 4],
        output_hw: [usize; 2],
        scale_factor: Option<[f64; 2]>,
    ) -> Result<Self, ShapeError> {
        let op = SpatialOp::Interpolate;
        for size in [input[2], input[3], output_hw[0], output_hw[1]] {
            if size == 0 {
                return Err(ShapeError::EmptySize { op, size: 0 });
            }
        }
        let output = [input[0], input[1], output_hw[0], output_hw[1]];
        Ok(Interpolate2dGeometry {
            input,
            output,
            scale_factor,
        })
    }

    /// Output size for `scale_factor=` as PyTorch computes it: `floor(in * scale)` per axis.
    pub fn scaled_size(input_hw: [usize; 2], scale_factor: [f64; 2]) -> [usize; 2] {
        [0, 1].map(|axis| {
            (input_hw[axis] as f64 * scale_factor[axis])
                .floor()
                .max(0.0) as usize
        })
    }

    /// `[N, C, H, W]`.
    pub fn input_shape(&self) -> [usize; 4] {
        self.input
    }

    /// `[N, C, H_out, W_out]`.
    pub fn output_shape(&self) -> [usize; 4] {
        self.output
    }

    /// PyTorch's `compute_scales_value`: output-to-input coordinate scale along `axis`.
    fn scale(&self, axis: usize) -> f32 {
        match self.scale_factor {
            Some(s) if s[axis] > 0.0 => (1.0 / s[axis]) as f32,
            _ => self.input[2 + axis] as f32 / self.output[2 + axis] as f32,
        }
    }

    /// PyTorch's `nearest_idx`: the source index of every output index along `axis`.
    fn nearest_indices(&self, axis: usize) -> Vec<usize> {
        let (in_len, out_len) = (self.input[2 + axis], self.output[2 + axis]);
        let scale = self.scale(axis);
        (0..out_len)
            .map(|o| {
                if out_len == in_len {
                    o
                } else if out_len == 2 * in_len {
                    o >> 1
                } else {
                    ((o as f32 * scale).floor() as usize).min(in_len - 1)
                }
            })
            .collect()
    }

    /// PyTorch's linear interpolation taps along `axis` with `align_corners=false`: source
    /// `scale * (o + 0.5) - 0.5`, clamped at 0, split into two neighbours and weights.
    fn linear_taps(&self, axis: usize) -> Vec<LinearTap> {
        let (in_len, out_len) = (self.input[2 + axis], self.output[2 + axis]);
        let scale = self.scale(axis);
        (0..out_len)
            .map(|o| {
                let source = (scale * (o as f32 + 0.5) - 0.5).max(0.0);
                let i0 = (source.floor() as usize).min(in_len - 1);
                let lambda = (source - i0 as f32).clamp(0.0, 1.0);
                let i1 = if i0 < in_len - 1 { i0 + 1 } else { i0 };
                LinearTap {
                    i0,
                    i1,
                    w0: 1.0 - lambda,
                    w1: lambda,
                }
            })
            .collect()
    }
}

/// One output position's two input neighbours along an axis and their weights.
#[derive(Clone, Copy, Debug)]
struct LinearTap {
    i0: usize,
    i1: usize,
    w0: f32,
    w1: f32,
}

fn planes_per_task(plane_work: usize) -> usize {
    MIN_TASK_ELEMENTS.div_ceil(plane_work.max(1))
}

fn numel(shape: [usize; 4]) -> usize {
    shape.iter().product()
}

/// Runs `f(input_plane, output_plane)` over the `N*C` planes, in parallel when large.
fn for_each_plane<A: Sync, B: Send>(
    src: &[A],
    src_plane: usize,
    dst: &mut [B],
    dst_plane: usize,
    f: impl Fn(&[A], &mut [B]) + Sync,
) {
    if src_plane == 0 || dst_plane == 0 {
        return;
    }
    let work = src_plane.max(dst_plane);
    dst.par_chunks_mut(dst_plane)
        .zip(src.par_chunks(src_plane))
        .with_min_len(planes_per_task(work))
        .for_each(|(d, s)| f(s, d));
}

/// Nearest-neighbour resampling (`mode="nearest"`).
///
/// # Panics
/// If `input` does not have `geometry`'s input shape.
pub fn interpolate_nearest(geometry: &Interpolate2dGeometry, input: &[f32]) -> Vec<f32> {
    assert_eq!(
        input.len(),
        numel(geometry.input),
        "input does not have shape {:?}",
        geometry.input
    );
    let rows = geometry.nearest_indices(0);
    let cols = geometry.nearest_indices(1);
    let [_, _, _, w] = geometry.input;
    let mut output = vec![0.0; numel(geometry.output)];
    for_each_plane(
        input,
        w * geometry.input[2],
        &mut output,
        rows.len() * cols.len(),
        |x, y| {
            for (out_row, &r) in y.chunks_exact_mut(cols.len()).zip(&rows) {
                let src = &x[r * w..][..w];
                for (o, &c) in out_row.iter_mut().zip(&cols) {
                    *o = src[c];
                }
            }
        },
    );
    output
}

/// Gradient of [`interpolate_nearest`]: each output's gradient added to its source pixel.
///
/// # Panics
/// If `grad_output` does not have `geometry`'s output shape.
pub fn interpolate_nearest_backward(
    geometry: &Interpolate2dGeometry,
    grad_output: &[f32],
) -> Vec<f32> {
    assert_eq!(
        grad_output.len(),
        numel(geometry.output),
        "grad_output does not have shape {:?}",
        geometry.output
    );
    let rows = geometry.nearest_indices(0);
    let cols = geometry.nearest_indices(1);
    let [_, _, h, w] = geometry.input;
    let mut grad_input = vec![0.0; numel(geometry.input)];
    for_each_plane(
        grad_output,
        rows.len() * cols.len(),
        &mut grad_input,
        h * w,
        |gy, gx| {
            for (g_row, &r) in gy.chunks_exact(cols.len()).zip(&rows) {
                let dst = &mut gx[r * w..][..w];
                for (g, &c) in g_row.iter().zip(&cols) {
                    dst[c] += g;
                }
            }
        },
    );
    grad_input
}

/// Bilinear resampling (`mode="bilinear"`, `align_corners=false`).
///
/// # Panics
/// If `input` does not have `geometry`'s input shape.
pub fn interpolate_bilinear(geometry: &Interpolate2dGeometry, input: &[f32]) -> Vec<f32> {
    assert_eq!(
        input.len(),
        numel(geometry.input),
        "input does not have shape {:?}",
        geometry.input
    );
    let rows = geometry.linear_taps(0);
    let cols = geometry.linear_taps(1);
    let [_, _, h, w] = geometry.input;
    let mut output = vec![0.0; numel(geometry.output)];
    for_each_plane(
        input,
        h * w,
        &mut output,
        rows.len() * cols.len(),
        |x, y| {
            for (out_row, r) in y.chunks_exact_mut(cols.len()).zip(&rows) {
                let (top, bottom) = (&x[r.i0 * w..][..w], &x[r.i1 * w..][..w]);
                for (o, c) in out_row.iter_mut().zip(&cols) {
                    *o = r.w0 * (c.w0 * top[c.i0] + c.w1 * top[c.i1])
                        + r.w1 * (c.w0 * bottom[c.i0] + c.w1 * bottom[c.i1]);
                }
            }
        },
    );
    output
}

/// Gradient of [`interpolate_bilinear`]: each output's gradient spread over its four source
/// pixels with the same weights (the forward is linear; this is its transpose).
///
/// # Panics
/// If `grad_output` does not have `geometry`'s output shape.
pub fn interpolate_bilinear_backward(
    geometry: &Interpolate2dGeometry,
    grad_output: &[f32],
) -> Vec<f32> {
    assert_eq!(
        grad_output.len(),
        numel(geometry.output),
        "grad_output does not have shape {:?}",
        geometry.output
    );
    let rows = geometry.linear_taps(0);
    let cols = geometry.linear_taps(1);
    let [_, _, h, w] = geometry.input;
    let mut grad_input = vec![0.0; numel(geometry.input)];
    for_each_plane(
        grad_output,
        rows.len() * cols.len(),
        &mut grad_input,
        h * w,
        |gy, gx| {
            for (g_row, r) in gy.chunks_exact(cols.len()).zip(&rows) {
                for (&g, c) in g_row.iter().zip(&cols) {
                    let (top, bottom) = (g * r.w0, g * r.w1);
                    gx[r.i0 * w + c.i0] += top * c.w0;
                    gx[r.i0 * w + c.i1] += top * c.w1;
                    gx[r.i1 * w + c.i0] += bottom * c.w0;
                    gx[r.i1 * w + c.i1] += bottom * c.w1;
                }
            }
        },
    );
    grad_input
}

/// A `pixel_shuffle` whose shapes have been checked: `[N, C*r*r, H, W] -> [N, C, H*r, W*r]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PixelShuffleGeometry {
    input: [usize; 4],
    upscale_factor: usize,
}

impl PixelShuffleGeometry {
    /// Checks that `upscale_factor >= 1` and its square divides the channels.
    pub fn new(input: [usize; 4], upscale_factor: usize) -> Result<Self, ShapeError> {
        let squared = upscale_factor * upscale_factor;
        if squared == 0 || !input[1].is_multiple_of(squared) {
            return Err(ShapeError::UpscaleMismatch {
                op: SpatialOp::PixelShuffle,
                channels: to_i64(input[1]),
                factor_squared: to_i64(squared),
            });
        }
        Ok(PixelShuffleGeometry {
            input,
            upscale_factor,
        })
    }

    /// `[N, C*r*r, H, W]`.
    pub fn input_shape(&self) -> [usize; 4] {
        self.input
    }

    /// `[N, C, H*r, W*r]`.
    pub fn output_shape(&self) -> [usize; 4] {
        let [n, c, h, w] = self.input;
        let r = self.upscale_factor;
        [n, c / (r * r), h * r, w * r]
    }
}

/// Pixel shuffle: `out[n, c, h*r + i, w*r + j] = in[n, c*r*r + i*r + j, h, w]`.
///
/// # Panics
/// If `input` does not have `geometry`'s input shape.
pub fn pixel_shuffle(geometry: &PixelShuffleGeometry, input: &[f32]) -> Vec<f32> {
    assert_eq!(
        input.len(),
        numel(geometry.input),
        "input does not have shape {:?}",
        geometry.input
    );
    let mut output = vec![0.0; input.len()];
    shuffle(geometry, input, &mut output, false);
    output
}

/// Gradient of [`pixel_shuffle`]: the inverse permutation (`pixel_unshuffle`) of the output's
/// gradient.
///
/// # Panics
/// If `grad_output` does not have `geometry`'s output shape.
pub fn pixel_shuffle_backward(geometry: &PixelShuffleGeometry, grad_output: &[f32]) -> Vec<f32> {
    assert_eq!(
        grad_output.len(),
        numel(geometry.output_shape()),
        "grad_output does not have shape {:?}",
        geometry.output_shape()
    );
    let mut grad_input = vec![0.0; grad_output.len()];
    shuffle(geometry, grad_output, &mut grad_input, true);
    grad_input
}

/// The permutation of pixel shuffle (or its inverse), one output channel's `r*r` input
/// planes at a time: those blocks are the same size in both layouts.
fn shuffle(geometry: &PixelShuffleGeometry, src: &[f32], dst: &mut [f32], inverse: bool) {
    let [_, _, h, w] = geometry.input;
    let r = geometry.upscale_factor;
    let block = r * r * h * w;
    for_each_plane(src, block, dst, block, |s, d| {
        for i in 0..r {
            for j in 0..r {
                let plane = (i * r + j) * h * w;
                for y in 0..h {
                    for x in 0..w {
                        let shuffled = (y * r + i) * (w * r) + x * r + j;
                        let planar = plane + y * w + x;
                        if inverse {
                            d[planar] = s[shuffled];
                        } else {
                            d[shuffled] = s[planar];
                        }
                    }
                }
            }
        }
    });
}
