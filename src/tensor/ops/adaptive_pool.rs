//! 2-D adaptive average and max pooling, forward and backward, NCHW: the output size is
//! given and each output cell pools its own window of the input.
//!
//! The windows are PyTorch's: along an axis of input length `L` pooled to `O` cells, cell
//! `i` covers `floor(i·L/O) .. ceil((i+1)·L/O)`, so neighbouring windows overlap by one when
//! `O` does not divide `L`. Max pooling keeps the first maximum of a window (ties go to the
//! earliest element in row-major order) and lets NaN win, as PyTorch's CPU kernel.
//!
//! The slice kernels know nothing of tensors; [`Tensor::adaptive_avg_pool2d`] and
//! [`Tensor::adaptive_max_pool2d`] check shapes, run them and record the backward node.

use rayon::prelude::*;

use crate::tensor::autograd::{BackwardFn, Saved, SavedTensor, record};
use crate::tensor::core::Tensor;
use crate::tensor::derivatives::Op;
use crate::tensor::error::{Result, TensorError};
use crate::tensor::ops::nn::batched;
use crate::tensor::shape::ShapeError;
use crate::tensor::storage;

/// Planes per rayon task are chosen so a task has at least this many input elements.
const MIN_TASK_ELEMENTS: usize = 1 << 14;

/// An adaptive pooling whose shapes have been checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdaptivePool2dGeometry {
    input: [usize; 4],
    output: [usize; 4],
}

impl AdaptivePool2dGeometry {
    /// Checks adaptive pooling of an `[N, C, H, W]` input to `output_size` (`[oh, ow]`):
    /// both output sizes and both input spatial sizes must be at least 1. `op` names the
    /// pooling in the error.
    pub fn new(
        op: &'static str,
        input: [usize; 4],
        output_size: [usize; 2],
    ) -> Result<Self, ShapeError> {
        if output_size.contains(&0) {
            return Err(ShapeError::AdaptiveOutputSize { op, output_size });
        }
        if input[2] == 0 || input[3] == 0 {
            return Err(ShapeError::EmptySpatialInput {
                op,
                shape: input.to_vec(),
            });
        }
        Ok(AdaptivePool2dGeometry {
            input,
            output: [input[0], input[1], output_size[0], output_size[1]],
        })
    }

    /// `[N, C, H, W]`.
    pub fn input_shape(&self) -> [usize; 4] {
        self.input
    }

    /// `[N, C, oh, ow]`.
    pub fn output_shape(&self) -> [usize; 4] {
        self.output
    }

    /// The windows of every output row and every output column.
    fn windows(&self) -> (Vec<Window>, Vec<Window>) {
        let [_, _, h, w] = self.input;
        let [_, _, oh, ow] = self.output;
        (windows(h, oh), windows(w, ow))
    }

    fn planes(&self) -> (usize, usize) {
        let [_, _, h, w] = self.input;
        let [_, _, oh, ow] = self.output;
        (h * w, oh * ow)
    }

    fn planes_per_task(&self) -> usize {
        MIN_TASK_ELEMENTS.div_ceil(self.planes().0.max(1))
    }
}

/// The input range `start..end` one output cell pools along one axis.
#[derive(Clone, Copy, Debug)]
struct Window {
    start: usize,
    end: usize,
}

/// PyTorch's `start_index` and `end_index` for every cell of an axis of `out_len` cells over
/// `in_len` inputs (`floor(i·in/out)` and `ceil((i+1)·in/out)`, in integers).
fn windows(in_len: usize, out_len: usize) -> Vec<Window> {
    (0..out_len)
        .map(|i| Window {
            start: (i * in_len) / out_len,
            end: 1 + ((i + 1) * in_len - 1) / out_len,
        })
        .collect()
}

#[track_caller]
fn assert_len(what: &str, slice: &[f32], shape: [usize; 4]) {
    assert_eq!(
        slice.len(),
        shape.iter().product::<usize>(),
        "{what} does not have shape {shape:?}"
    );
}

/// Adaptive average pooling: each output is the mean of its window.
///
/// # Panics
/// If `input` does not have `geometry`'s input shape.
pub fn adaptive_avg_pool2d(geometry: &AdaptivePool2dGeometry, input: &[f32]) -> Vec<f32> {
    assert_len("input", input, geometry.input);
    let mut output = vec![0.0; geometry.output.iter().product()];
    if output.is_empty() {
        return output;
    }
    let w = geometry.input[3];
    let (rows, cols) = geometry.windows();
    let (in_plane, out_plane) = geometry.planes();
    output
        .par_chunks_mut(out_plane)
        .zip(input.par_chunks(in_plane))
        .with_min_len(geometry.planes_per_task())
        .for_each(|(out, x)| {
            for (r, row) in rows.iter().enumerate() {
                for (c, col) in cols.iter().enumerate() {
                    let mut sum = 0.0f32;
                    for ih in row.start..row.end {
                        sum += x[ih * w..][col.start..col.end].iter().sum::<f32>();
                    }
                    let count = (row.end - row.start) * (col.end - col.start);
                    out[r * cols.len() + c] = sum / count as f32;
                }
            }
        });
    output
}

/// Gradient of [`adaptive_avg_pool2d`] with respect to its input: each output's gradient,
/// divided by its window's size, added to every element of the window.
///
/// # Panics
/// If `grad_output` does not have `geometry`'s output shape.
pub fn adaptive_avg_pool2d_backward(
    geometry: &AdaptivePool2dGeometry,
    grad_output: &[f32],
) -> Vec<f32> {
    assert_len("grad_output", grad_output, geometry.output);
    let mut grad_input = vec![0.0; geometry.input.iter().product()];
    if grad_output.is_empty() {
        return grad_input;
    }
    let w = geometry.input[3];
    let (rows, cols) = geometry.windows();
    let (in_plane, out_plane) = geometry.planes();
    grad_input
        .par_chunks_mut(in_plane)
        .zip(grad_output.par_chunks(out_plane))
        .with_min_len(geometry.planes_per_task())
        .for_each(|(gx, gy)| {
            for (r, row) in rows.iter().enumerate() {
                for (c, col) in cols.iter().enumerate() {
                    let count = (row.end - row.start) * (col.end - col.start);
                    let share = gy[r * cols.len() + c] / count as f32;
                    for ih in row.start..row.end {
                        gx[ih * w..][col.start..col.end]
                            .iter_mut()
                            .for_each(|g| *g += share);
                    }
                }
            }
        });
    grad_input
}

/// Adaptive max pooling. Returns the output and, for the backward pass, the index of each
/// output's maximum within its input plane (`h * W + w`, as PyTorch's `return_indices`).
///
/// # Panics
/// If `input` does not have `geometry`'s input shape.
pub fn adaptive_max_pool2d(
    geometry: &AdaptivePool2dGeometry,
    input: &[f32],
) -> (Vec<f32>, Vec<usize>) {
    assert_len("input", input, geometry.input);
    let len = geometry.output.iter().product();
    let (mut output, mut indices) = (vec![0.0; len], vec![0; len]);
    if len == 0 {
        return (output, indices);
    }
    let w = geometry.input[3];
    let (rows, cols) = geometry.windows();
    let (in_plane, out_plane) = geometry.planes();
    output
        .par_chunks_mut(out_plane)
        .zip(indices.par_chunks_mut(out_plane))
        .zip(input.par_chunks(in_plane))
        .with_min_len(geometry.planes_per_task())
        .for_each(|((out, idx), x)| {
            for (r, row) in rows.iter().enumerate() {
                for (c, col) in cols.iter().enumerate() {
                    let mut best = f32::NEG_INFINITY;
                    let mut best_index = row.start * w + col.start;
                    for ih in row.start..row.end {
                        for iw in col.start..col.end {
                            let v = x[ih * w + iw];
                            // Strictly greater keeps the first maximum; NaN wins, as in PyTorch.
                            if v > best || v.is_nan() {
                                best = v;
                                best_index = ih * w + iw;
                            }
                        }
                    }
                    out[r * cols.len() + c] = best;
                    idx[r * cols.len() + c] = best_index;
                }
            }
        });
    (output, indices)
}

/// Gradient of [`adaptive_max_pool2d`] with respect to its input: each output's gradient
/// goes to the input element that was its maximum (overlapping windows add up).
///
/// # Panics
/// If a slice's length does not match `geometry`.
pub fn adaptive_max_pool2d_backward(
    geometry: &AdaptivePool2dGeometry,
    grad_output: &[f32],
    indices: &[usize],
) -> Vec<f32> {
    assert_len("grad_output", grad_output, geometry.output);
    assert_eq!(indices.len(), grad_output.len(), "one index per output");
    let mut grad_input = vec![0.0; geometry.input.iter().product()];
    if grad_output.is_empty() {
        return grad_input;
    }
    let (in_plane, out_plane) = geometry.planes();
    grad_input
        .par_chunks_mut(in_plane)
        .zip(grad_output.par_chunks(out_plane))
        .zip(indices.par_chunks(out_plane))
        .with_min_len(geometry.planes_per_task())
        .for_each(|((gx, gy), idx)| {
            for (g, &i) in gy.iter().zip(idx) {
                gx[i] += g;
            }
        });
    grad_input
}

/// Backward of `adaptive_avg_pool2d`.
struct AdaptiveAvgPoolBackward {
    geometry: AdaptivePool2dGeometry,
}

impl BackwardFn for AdaptiveAvgPoolBackward {
    fn name(&self) -> &'static str {
        "AdaptiveAvgPool2DBackward0"
    }

    fn backward(&self, g: &Tensor, _: &Saved, _: &[bool]) -> Result<Vec<Option<Tensor>>> {
        let dx = g.with_slice(|dy| adaptive_avg_pool2d_backward(&self.geometry, dy));
        Ok(vec![Some(Tensor::from_vec(
            dx,
            &self.geometry.input_shape(),
        )?)])
    }
}

/// Backward of `adaptive_max_pool2d`; saved `[input]` (unused, but PyTorch saves it, so an
/// in-place change of the input is reported the same way).
struct AdaptiveMaxPoolBackward {
    geometry: AdaptivePool2dGeometry,
    indices: Vec<usize>,
}

impl BackwardFn for AdaptiveMaxPoolBackward {
    fn name(&self) -> &'static str {
        "AdaptiveMaxPool2DBackward0"
    }

    fn backward(&self, g: &Tensor, _: &Saved, _: &[bool]) -> Result<Vec<Option<Tensor>>> {
        let dx = g.with_slice(|dy| adaptive_max_pool2d_backward(&self.geometry, dy, &self.indices));
        Ok(vec![Some(Tensor::from_vec(
            dx,
            &self.geometry.input_shape(),
        )?)])
    }
}

const EXPECTED: &str = "a 3-D [C, H, W] or 4-D [N, C, H, W] input";

/// The output shape of `op` (`"adaptive_avg_pool2d"` or `"adaptive_max_pool2d"`) for an
/// input of shape `input` pooled to `output_size`, or the error the op gives: E0304 unless
/// 3-D or 4-D, E0311 for an output size of 0 or an empty spatial input dimension. A
/// function of the shapes alone, so a checker that knows them reports what the run would.
pub fn adaptive_pool2d_shape(
    op: &'static str,
    input: &[usize],
    output_size: [usize; 2],
) -> Result<Vec<usize>> {
    let batched: [usize; 4] = match *input {
        [c, h, w] => [1, c, h, w],
        [n, c, h, w] => [n, c, h, w],
        _ => {
            return Err(TensorError::Rank {
                op,
                expected: EXPECTED,
                shape: input.to_vec(),
            });
        }
    };
    AdaptivePool2dGeometry::new(op, batched, output_size).map_err(|e| match e {
        // Name the shape as given, not its batched form.
        ShapeError::EmptySpatialInput { op, .. } => ShapeError::EmptySpatialInput {
            op,
            shape: input.to_vec(),
        },
        other => other,
    })?;
    let mut output = input.to_vec();
    let spatial = output.len() - 2;
    output[spatial..].copy_from_slice(&output_size);
    Ok(output)
}

/// The checked geometry of an adaptive pooling of the 4-D `x`.
fn geometry_of(
    op: &'static str,
    x: &Tensor,
    output_size: [usize; 2],
) -> Result<AdaptivePool2dGeometry> {
    let input = <[usize; 4]>::try_from(x.shape()).map_err(|_| TensorError::Rank {
        op,
        expected: EXPECTED,
        shape: x.shape().to_vec(),
    })?;
    let geometry = AdaptivePool2dGeometry::new(op, input, output_size)?;
    storage::checked_numel(op, &geometry.output_shape())?;
    Ok(geometry)
}

impl Tensor {
    /// `adaptive_avg_pool2d(x, [oh, ow])` of an `[N, C, H, W]` or `[C, H, W]` input: output
    /// `[N, C, oh, ow]` (or `[C, oh, ow]`), each cell the mean of its window. To `[1, 1]` it
    /// is `mean` over the two spatial dims, as PyTorch computes (and names) it.
    pub fn adaptive_avg_pool2d(&self, output_size: [usize; 2]) -> Result<Tensor> {
        let op = "adaptive_avg_pool2d";
        adaptive_pool2d_shape(op, self.shape(), output_size)?;
        batched(self, op, EXPECTED, |x| {
            let geometry = geometry_of(op, x, output_size)?;
            if output_size == [1, 1] {
                return x.mean_dims(&[-2, -1], true);
            }
            let out = x.with_slice(|xs| adaptive_avg_pool2d(&geometry, xs));
            let out = Tensor::from_vec(out, &geometry.output_shape())?;
            Ok(record(out, &[x], || {
                (
                    Op::Custom(Box::new(AdaptiveAvgPoolBackward { geometry })),
                    Vec::new(),
                )
            }))
        })
    }

    /// `adaptive_max_pool2d(x, [oh, ow])` of an `[N, C, H, W]` or `[C, H, W]` input: each
    /// cell the maximum of its window; the gradient goes to the (first) maximum.
    pub fn adaptive_max_pool2d(&self, output_size: [usize; 2]) -> Result<Tensor> {
        let op = "adaptive_max_pool2d";
        adaptive_pool2d_shape(op, self.shape(), output_size)?;
        batched(self, op, EXPECTED, |x| {
            let geometry = geometry_of(op, x, output_size)?;
            let (out, indices) = x.with_slice(|xs| adaptive_max_pool2d(&geometry, xs));
            let out = Tensor::from_vec(out, &geometry.output_shape())?;
            Ok(record(out, &[x], || {
                (
                    Op::Custom(Box::new(AdaptiveMaxPoolBackward { geometry, indices })),
                    vec![Some(SavedTensor::new(x))],
                )
            }))
        })
    }
}
