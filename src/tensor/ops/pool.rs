//! 2-D max and average pooling, forward and backward, NCHW.
//!
//! Both follow PyTorch's CPU kernels exactly where it shows: window bounds, the `-inf`
//! padding of max pooling (windows are clamped to the input, padding never wins), NaN
//! propagation, the index of the first maximum, and the average's divisor, which with
//! `ceil_mode` truncates edge windows at the padded border even when `count_include_pad`.

use rayon::prelude::*;

use crate::tensor::shape::{ShapeError, SpatialOp, checked_pool_output_size, to_i64};

/// Planes per rayon task are chosen so a task has at least this many output elements:
/// pooling is a few operations per element, and small tasks would be all overhead.
const MIN_TASK_ELEMENTS: usize = 1 << 14;

/// Arguments of `max_pool2d` / `MaxPool2d`, per spatial dimension `[height, width]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxPool2dParams {
    /// Window size.
    pub kernel: [usize; 2],
    /// Distance between windows (PyTorch's default is the kernel size; the caller applies it).
    pub stride: [usize; 2],
    /// Implicit `-inf` on each side.
    pub padding: [usize; 2],
    /// Distance between window taps.
    pub dilation: [usize; 2],
    /// Round the output size up, keeping a last partial window that starts inside the input
    /// or left padding.
    pub ceil_mode: bool,
}

/// Arguments of `avg_pool2d` / `AvgPool2d`, per spatial dimension `[height, width]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AvgPool2dParams {
    /// Window size.
    pub kernel: [usize; 2],
    /// Distance between windows (PyTorch's default is the kernel size; the caller applies it).
    pub stride: [usize; 2],
    /// Implicit zeros on each side.
    pub padding: [usize; 2],
    /// Round the output size up (see [`MaxPool2dParams::ceil_mode`]).
    pub ceil_mode: bool,
    /// Divide by the window size including padding (true) or by the input elements only.
    pub count_include_pad: bool,
}

/// A `max_pool2d` whose shapes have been checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxPool2dGeometry {
    input: [usize; 4],
    output: [usize; 4],
    params: MaxPool2dParams,
}

impl MaxPool2dGeometry {
    /// Checks max pooling of an `[N, C, H, W]` input and computes the output shape.
    pub fn new(input: [usize; 4], params: MaxPool2dParams) -> Result<Self, ShapeError> {
        let p = params;
        let output = pooled_shape(
            SpatialOp::MaxPool2d,
            input,
            p.kernel,
            p.stride,
            p.padding,
            p.dilation,
            p.ceil_mode,
        )?;
        Ok(MaxPool2dGeometry {
            input,
            output,
            params,
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

    /// The arguments.
    pub fn params(&self) -> MaxPool2dParams {
        self.params
    }
}

/// An `avg_pool2d` whose shapes have been checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AvgPool2dGeometry {
    input: [usize; 4],
    output: [usize; 4],
    params: AvgPool2dParams,
}

impl AvgPool2dGeometry {
    /// Checks average pooling of an `[N, C, H, W]` input and computes the output shape.
    pub fn new(input: [usize; 4], params: AvgPool2dParams) -> Result<Self, ShapeError> {
        let p = params;
        let output = pooled_shape(
            SpatialOp::AvgPool2d,
            input,
            p.kernel,
            p.stride,
            p.padding,
            [1, 1],
            p.ceil_mode,
        )?;
        Ok(AvgPool2dGeometry {
            input,
            output,
            params,
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

    /// The arguments.
    pub fn params(&self) -> AvgPool2dParams {
        self.params
    }
}

fn pooled_shape(
    op: SpatialOp,
    input: [usize; 4],
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
    ceil_mode: bool,
) -> Result<[usize; 4], ShapeError> {
    let mut output = input;
    for axis in 0..2 {
        let size = input[2 + axis];
        if size == 0 {
            return Err(ShapeError::EmptySize { op, size: 0 });
        }
        output[2 + axis] = checked_pool_output_size(
            op,
            to_i64(size),
            to_i64(kernel[axis]),
            to_i64(stride[axis]),
            to_i64(padding[axis]),
            to_i64(dilation[axis]),
            ceil_mode,
        )? as usize;
    }
    Ok(output)
}

/// One window along one axis: taps `start, start + step, ... < end` inside the input, and
/// for average pooling the window's extent clipped to the padded input (`padded_len`).
#[derive(Clone, Copy, Debug)]
struct Window {
    start: usize,
    end: usize,
    padded_len: usize,
}

/// The windows of every output position along one axis.
fn windows(
    out_len: usize,
    in_len: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    dilation: usize,
) -> Vec<Window> {
    let (in_len, padding, dilation) = (in_len as isize, padding as isize, dilation as isize);
    (0..out_len)
        .map(|o| {
            let lo = (o * stride) as isize - padding;
            let hi = lo + (kernel as isize - 1) * dilation + 1;
            // PyTorch's average pool clips at the padded border before counting.
            let padded_len = (hi.min(in_len + padding) - lo) as usize;
            // Step to the first tap inside the input, as PyTorch's `while (ih0 < 0)`.
            let mut start = lo;
            if start < 0 {
                start += (-start + dilation - 1) / dilation * dilation;
            }
            let end = hi.min(in_len).max(start);
            Window {
                start: start as usize,
                end: end as usize,
                padded_len,
            }
        })
        .collect()
}

/// Splits `n` planes into rayon tasks of at least [`MIN_TASK_ELEMENTS`] work each.
fn planes_per_task(plane_work: usize) -> usize {
    MIN_TASK_ELEMENTS.div_ceil(plane_work.max(1))
}

/// Max pooling. Returns the output and, for the backward pass, the index of each output's
/// maximum within its input plane (`h * W + w`, as PyTorch's `return_indices`).
///
/// # Panics
/// If `input` does not have `geometry`'s input shape.
pub fn max_pool2d(geometry: &MaxPool2dGeometry, input: &[f32]) -> (Vec<f32>, Vec<usize>) {
    let len = geometry.output.iter().product();
    let mut output = vec![0.0; len];
    let mut indices = vec![0; len];
    max_pool2d_into(geometry, input, &mut output, &mut indices);
    (output, indices)
}

/// [`max_pool2d`] into preallocated buffers, which it overwrites.
///
/// # Panics
/// If a slice's length does not match `geometry`.
pub fn max_pool2d_into(
    geometry: &MaxPool2dGeometry,
    input: &[f32],
    output: &mut [f32],
    indices: &mut [usize],
) {
    let [_, _, h, w] = geometry.input;
    let [_, _, oh, ow] = geometry.output;
    let p = &geometry.params;
    assert_eq!(
        input.len(),
        geometry.input.iter().product::<usize>(),
        "input does not have shape {:?}",
        geometry.input
    );
    assert_eq!(
        output.len(),
        geometry.output.iter().product::<usize>(),
        "output does not have shape {:?}",
        geometry.output
    );
    assert_eq!(
        indices.len(),
        output.len(),
        "indices must have one entry per output"
    );
    if output.is_empty() {
        return;
    }
    let rows = windows(oh, h, p.kernel[0], p.stride[0], p.padding[0], p.dilation[0]);
    let cols = windows(ow, w, p.kernel[1], p.stride[1], p.padding[1], p.dilation[1]);
    let [dh, dw] = p.dilation;
    let pool_plane = |x: &[f32], out: &mut [f32], idx: &mut [usize]| {
        for (r, row) in rows.iter().enumerate() {
            for (c, col) in cols.iter().enumerate() {
                let mut best = f32::NEG_INFINITY;
                // PyTorch reports the first tap for an all -inf window. A window with no tap
                // inside the input (only a 1-wide input with a dilated kernel reaches one)
                // gets an index outside the plane, which the backward pass skips.
                let mut best_index = if row.start < row.end && col.start < col.end {
                    row.start * w + col.start
                } else {
                    usize::MAX
                };
                for ih in (row.start..row.end).step_by(dh) {
                    for iw in (col.start..col.end).step_by(dw) {
                        let v = x[ih * w + iw];
                        // NaN wins and propagates, as in PyTorch.
                        if v > best || v.is_nan() {
                            best = v;
                            best_index = ih * w + iw;
                        }
                    }
                }
                out[r * ow + c] = best;
                idx[r * ow + c] = best_index;
            }
        }
    };
    let (in_plane, out_plane) = (h * w, oh * ow);
    let work = out_plane * p.kernel[0] * p.kernel[1];
    output
        .par_chunks_mut(out_plane)
        .zip(indices.par_chunks_mut(out_plane))
        .zip(input.par_chunks(in_plane))
        .with_min_len(planes_per_task(work))
        .for_each(|((out, idx), x)| pool_plane(x, out, idx));
}

/// Gradient of [`max_pool2d`] with respect to its input: each output's gradient goes to the
/// input element that was its maximum.
///
/// # Panics
/// If a slice's length does not match `geometry`.
pub fn max_pool2d_backward(
    geometry: &MaxPool2dGeometry,
    grad_output: &[f32],
    indices: &[usize],
) -> Vec<f32> {
    let mut grad_input = vec![0.0; geometry.input.iter().product()];
    max_pool2d_backward_into(geometry, grad_output, indices, &mut grad_input);
    grad_input
}

/// [`max_pool2d_backward`], adding into `grad_input`.
///
/// Indices outside the plane (windows with no input tap) are skipped.
///
/// # Panics
/// If a slice's length does not match `geometry`.
pub fn max_pool2d_backward_into(
    geometry: &MaxPool2dGeometry,
    grad_output: &[f32],
    indices: &[usize],
    grad_input: &mut [f32],
) {
    let [_, _, h, w] = geometry.input;
    let [_, _, oh, ow] = geometry.output;
    assert_eq!(
        grad_output.len(),
        geometry.output.iter().product::<usize>(),
        "grad_output does not have shape {:?}",
        geometry.output
    );
    assert_eq!(
        indices.len(),
        grad_output.len(),
        "indices must have one entry per output"
    );
    assert_eq!(
        grad_input.len(),
        geometry.input.iter().product::<usize>(),
        "grad_input does not have shape {:?}",
        geometry.input
    );
    let (in_plane, out_plane) = (h * w, oh * ow);
    if grad_output.is_empty() {
        return;
    }
    grad_input
        .par_chunks_mut(in_plane)
        .zip(grad_output.par_chunks(out_plane))
        .zip(indices.par_chunks(out_plane))
        .with_min_len(planes_per_task(out_plane))
        .for_each(|((gx, gy), idx)| {
            // Overlapping windows may share a maximum: their gradients add up.
            for (g, &i) in gy.iter().zip(idx) {
                if let Some(x) = gx.get_mut(i) {
                    *x += g;
                }
            }
        });
}

/// Average pooling.
///
/// # Panics
/// If `input` does not have `geometry`'s input shape.
pub fn avg_pool2d(geometry: &AvgPool2dGeometry, input: &[f32]) -> Vec<f32> {
    let mut output = vec![0.0; geometry.output.iter().product()];
    avg_pool2d_into(geometry, input, &mut output);
    output
}

/// PyTorch's divisor for one window: the window clipped to the padded input when
/// `count_include_pad`, else the input elements it covers.
fn avg_divisor(params: &AvgPool2dParams, row: &Window, col: &Window) -> f32 {
    if params.count_include_pad {
        (row.padded_len * col.padded_len) as f32
    } else {
        ((row.end - row.start) * (col.end - col.start)) as f32
    }
}

/// [`avg_pool2d`] into a preallocated `output`, which it overwrites.
///
/// # Panics
/// If a slice's length does not match `geometry`.
pub fn avg_pool2d_into(geometry: &AvgPool2dGeometry, input: &[f32], output: &mut [f32]) {
    let [_, _, h, w] = geometry.input;
    let [_, _, oh, ow] = geometry.output;
    let p = &geometry.params;
    assert_eq!(
        input.len(),
        geometry.input.iter().product::<usize>(),
        "input does not have shape {:?}",
        geometry.input
    );
    assert_eq!(
        output.len(),
        geometry.output.iter().product::<usize>(),
        "output does not have shape {:?}",
        geometry.output
    );
    if output.is_empty() {
        return;
    }
    let rows = windows(oh, h, p.kernel[0], p.stride[0], p.padding[0], 1);
    let cols = windows(ow, w, p.kernel[1], p.stride[1], p.padding[1], 1);
    let pool_plane = |x: &[f32], out: &mut [f32]| {
        for (r, row) in rows.iter().enumerate() {
            for (c, col) in cols.iter().enumerate() {
                let mut sum = 0.0;
                for ih in row.start..row.end {
                    sum += x[ih * w..][col.start..col.end].iter().sum::<f32>();
                }
                // A window entirely in the padding (impossible with valid padding) averages
                // nothing; PyTorch writes 0 rather than 0/0.
                let divisor = avg_divisor(p, row, col);
                out[r * ow + c] = if row.start < row.end && col.start < col.end {
                    sum / divisor
                } else {
                    0.0
                };
            }
        }
    };
    let (in_plane, out_plane) = (h * w, oh * ow);
    let work = out_plane * p.kernel[0] * p.kernel[1];
    output
        .par_chunks_mut(out_plane)
        .zip(input.par_chunks(in_plane))
        .with_min_len(planes_per_task(work))
        .for_each(|(out, x)| pool_plane(x, out));
}

/// Gradient of [`avg_pool2d`] with respect to its input: each output's gradient, divided by
/// its window's divisor, spread over the window's input elements.
///
/// # Panics
/// If `grad_output` does not have `geometry`'s output shape.
pub fn avg_pool2d_backward(geometry: &AvgPool2dGeometry, grad_output: &[f32]) -> Vec<f32> {
    let mut grad_input = vec![0.0; geometry.input.iter().product()];
    avg_pool2d_backward_into(geometry, grad_output, &mut grad_input);
    grad_input
}

/// [`avg_pool2d_backward`], adding into `grad_input`.
///
/// # Panics
/// If a slice's length does not match `geometry`.
pub fn avg_pool2d_backward_into(
    geometry: &AvgPool2dGeometry,
    grad_output: &[f32],
    grad_input: &mut [f32],
) {
    let [_, _, h, w] = geometry.input;
    let [_, _, oh, ow] = geometry.output;
    let p = &geometry.params;
    assert_eq!(
        grad_output.len(),
        geometry.output.iter().product::<usize>(),
        "grad_output does not have shape {:?}",
        geometry.output
    );
    assert_eq!(
        grad_input.len(),
        geometry.input.iter().product::<usize>(),
        "grad_input does not have shape {:?}",
        geometry.input
    );
    if grad_output.is_empty() {
        return;
    }
    let rows = windows(oh, h, p.kernel[0], p.stride[0], p.padding[0], 1);
    let cols = windows(ow, w, p.kernel[1], p.stride[1], p.padding[1], 1);
    let unpool_plane = |gy: &[f32], gx: &mut [f32]| {
        for (r, row) in rows.iter().enumerate() {
            for (c, col) in cols.iter().enumerate() {
                if row.start >= row.end || col.start >= col.end {
                    continue;
                }
                // d out / d x = 1 / divisor for every x in the window.
                let share = gy[r * ow + c] / avg_divisor(p, row, col);
                for ih in row.start..row.end {
                    gx[ih * w..][col.start..col.end]
                        .iter_mut()
                        .for_each(|g| *g += share);
                }
            }
        }
    };
    let (in_plane, out_plane) = (h * w, oh * ow);
    let work = out_plane * p.kernel[0] * p.kernel[1];
    grad_input
        .par_chunks_mut(in_plane)
        .zip(grad_output.par_chunks(out_plane))
        .with_min_len(planes_per_task(work))
        .for_each(|(gx, gy)| unpool_plane(gy, gx));
}
