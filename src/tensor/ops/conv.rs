//! 2-D convolution and transposed convolution, forward and backward, NCHW, by im2col + GEMM.
//!
//! Both ops are one computation seen from two sides. A convolution reads an *image*
//! (`[C_img, H_img, W_img]` per batch element) through windows and writes *columns*
//! (`[C_col, H_col, W_col]`, one value per window position and output channel):
//!
//! - conv2d forward:               columns = W * im2col(image)        (image = input)
//! - conv2d grad input:            image  += col2im(W^T * columns)    (columns = grad output)
//! - conv2d grad weight:           dW     += columns * im2col(image)^T
//! - conv_transpose2d forward:     the conv2d grad-input computation, image = output
//! - conv_transpose2d grad input:  a conv2d forward of the grad output
//! - conv_transpose2d grad weight: a conv2d grad weight with image and columns played by
//!   grad output and input
//!
//! PyTorch's weight layouts make this work without copies: conv2d's `[C_out, C_in/groups,
//! kH, kW]` and conv_transpose2d's `[C_in, C_out/groups, kH, kW]` are both
//! `[C_col, C_img/groups, kH, kW]`, i.e. per group a row-major `C_col/groups x K` matrix with
//! `K = C_img/groups * kH * kW`. The engine doing the work is the private `ops::im2col`; this module
//! is the validated, PyTorch-named surface over it.
//!
//! [`conv2d_backward`] and [`conv_transpose2d_backward`] compute any subset of the gradients
//! in one pass over the batch, which is what autograd wants: conv_transpose2d's input and
//! weight gradients then share one im2col of the output's gradient.

use rayon::prelude::*;

use super::im2col::{ConvGeom, Forward, col2im_products, im2col_products};
use super::sum_f32;
use crate::tensor::shape::{
    ShapeError, SpatialOp, check_groups, checked_conv_output_size,
    checked_conv_transpose_output_size, to_i64,
};

/// Arguments of `conv2d` / `Conv2d`, per spatial dimension `[height, width]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dParams {
    /// Distance between window positions.
    pub stride: [usize; 2],
    /// Zeros added on each side of the input.
    pub padding: [usize; 2],
    /// Distance between kernel taps.
    pub dilation: [usize; 2],
    /// Channel groups: input and output channels split into `groups` independent convolutions.
    pub groups: usize,
}

impl Default for Conv2dParams {
    fn default() -> Self {
        Conv2dParams {
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
        }
    }
}

/// Arguments of `conv_transpose2d` / `ConvTranspose2d`, per spatial dimension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvTranspose2dParams {
    /// Distance between the scattered copies of the kernel in the output.
    pub stride: [usize; 2],
    /// Rows and columns cropped from each side of the full result.
    pub padding: [usize; 2],
    /// Rows and columns added back at the end (bottom and right).
    pub output_padding: [usize; 2],
    /// Distance between kernel taps.
    pub dilation: [usize; 2],
    /// Channel groups.
    pub groups: usize,
}

impl Default for ConvTranspose2dParams {
    fn default() -> Self {
        ConvTranspose2dParams {
            stride: [1, 1],
            padding: [0, 0],
            output_padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
        }
    }
}

/// A `conv2d` whose shapes have been checked: constructing one is the validation, so the
/// kernels taking it cannot fail on its parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dGeometry {
    input: [usize; 4],
    weight: [usize; 4],
    output: [usize; 4],
    params: Conv2dParams,
}

impl Conv2dGeometry {
    /// Checks a convolution of an `[N, C_in, H, W]` input with an
    /// `[C_out, C_in/groups, kH, kW]` weight and computes the output shape.
    pub fn new(
        input: [usize; 4],
        weight: [usize; 4],
        params: Conv2dParams,
    ) -> Result<Self, ShapeError> {
        let op = SpatialOp::Conv2d;
        let [_, in_channels, h, w] = input;
        let [out_channels, weight_in, kh, kw] = weight;
        check_nonempty(op, [in_channels, h, w])?;
        check_groups(
            op,
            to_i64(params.groups),
            to_i64(in_channels),
            to_i64(out_channels),
        )?;
        if weight_in * params.groups != in_channels {
            return Err(ShapeError::ChannelMismatch {
                op,
                expected: to_i64(weight_in * params.groups),
                actual: to_i64(in_channels),
            });
        }
        let mut out_hw = [0; 2];
        for (axis, (size, kernel)) in [(h, kh), (w, kw)].into_iter().enumerate() {
            out_hw[axis] = checked_conv_output_size(
                op,
                to_i64(size),
                to_i64(kernel),
                to_i64(params.stride[axis]),
                to_i64(params.padding[axis]),
                to_i64(params.dilation[axis]),
            )? as usize;
        }
        let output = [input[0], out_channels, out_hw[0], out_hw[1]];
        Ok(Conv2dGeometry {
            input,
            weight,
            output,
            params,
        })
    }

    /// `[N, C_in, H, W]`.
    pub fn input_shape(&self) -> [usize; 4] {
        self.input
    }

    /// `[C_out, C_in/groups, kH, kW]`.
    pub fn weight_shape(&self) -> [usize; 4] {
        self.weight
    }

    /// `[N, C_out, H_out, W_out]`.
    pub fn output_shape(&self) -> [usize; 4] {
        self.output
    }

    /// The arguments.
    pub fn params(&self) -> Conv2dParams {
        self.params
    }

    /// Bytes of scratch (im2col tiles, per-thread weight-gradient sums) the kernels of this
    /// convolution hold at once; `weight_grad` for the backward that computes it.
    pub fn scratch_bytes(&self, weight_grad: bool) -> u128 {
        let weight_len = if weight_grad { numel(self.weight) } else { 0 };
        self.core().scratch_bytes(weight_len)
    }

    fn core(&self) -> ConvGeom {
        ConvGeom {
            batch: self.input[0],
            groups: self.params.groups,
            img: [self.input[1], self.input[2], self.input[3]],
            col: [self.output[1], self.output[2], self.output[3]],
            kernel: [self.weight[2], self.weight[3]],
            stride: self.params.stride,
            padding: self.params.padding,
            dilation: self.params.dilation,
        }
    }
}

/// A `conv_transpose2d` whose shapes have been checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvTranspose2dGeometry {
    input: [usize; 4],
    weight: [usize; 4],
    output: [usize; 4],
    params: ConvTranspose2dParams,
}

impl ConvTranspose2dGeometry {
    /// Checks a transposed convolution of an `[N, C_in, H, W]` input with an
    /// `[C_in, C_out/groups, kH, kW]` weight and computes the output shape.
    pub fn new(
        input: [usize; 4],
        weight: [usize; 4],
        params: ConvTranspose2dParams,
    ) -> Result<Self, ShapeError> {
        let op = SpatialOp::ConvTranspose2d;
        let [_, in_channels, h, w] = input;
        let [weight_in, out_per_group, kh, kw] = weight;
        check_nonempty(op, [in_channels, h, w])?;
        let out_channels = out_per_group * params.groups;
        check_groups(
            op,
            to_i64(params.groups),
            to_i64(in_channels),
            to_i64(out_channels),
        )?;
        if weight_in != in_channels {
            return Err(ShapeError::ChannelMismatch {
                op,
                expected: to_i64(weight_in),
                actual: to_i64(in_channels),
            });
        }
        let mut out_hw = [0; 2];
        for (axis, (size, kernel)) in [(h, kh), (w, kw)].into_iter().enumerate() {
            out_hw[axis] = checked_conv_transpose_output_size(
                to_i64(size),
                to_i64(kernel),
                to_i64(params.stride[axis]),
                to_i64(params.padding[axis]),
                to_i64(params.output_padding[axis]),
                to_i64(params.dilation[axis]),
            )? as usize;
        }
        let output = [input[0], out_channels, out_hw[0], out_hw[1]];
        Ok(ConvTranspose2dGeometry {
            input,
            weight,
            output,
            params,
        })
    }

    /// `[N, C_in, H, W]`.
    pub fn input_shape(&self) -> [usize; 4] {
        self.input
    }

    /// `[C_in, C_out/groups, kH, kW]`.
    pub fn weight_shape(&self) -> [usize; 4] {
        self.weight
    }

    /// `[N, C_out, H_out, W_out]`.
    pub fn output_shape(&self) -> [usize; 4] {
        self.output
    }

    /// The arguments.
    pub fn params(&self) -> ConvTranspose2dParams {
        self.params
    }

    /// Bytes of scratch (im2col tiles, per-thread weight-gradient sums) the kernels of this
    /// convolution hold at once; `weight_grad` for the backward that computes it.
    pub fn scratch_bytes(&self, weight_grad: bool) -> u128 {
        let weight_len = if weight_grad { numel(self.weight) } else { 0 };
        self.core().scratch_bytes(weight_len)
    }

    fn core(&self) -> ConvGeom {
        // The output is the image side; output_padding only makes it larger, leaving rows
        // that no window reaches (they get the bias alone).
        ConvGeom {
            batch: self.input[0],
            groups: self.params.groups,
            img: [self.output[1], self.output[2], self.output[3]],
            col: [self.input[1], self.input[2], self.input[3]],
            kernel: [self.weight[2], self.weight[3]],
            stride: self.params.stride,
            padding: self.params.padding,
            dilation: self.params.dilation,
        }
    }
}

fn check_nonempty(op: SpatialOp, sizes: [usize; 3]) -> Result<(), ShapeError> {
    match sizes.into_iter().find(|&s| s == 0) {
        Some(size) => Err(ShapeError::EmptySize {
            op,
            size: to_i64(size),
        }),
        None => Ok(()),
    }
}

/// Convolution `output = conv2d(input, weight) + bias`.
///
/// # Panics
/// If a slice's length does not match `geometry` (the bias has `C_out` elements).
pub fn conv2d(
    geometry: &Conv2dGeometry,
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
) -> Vec<f32> {
    let mut output = vec![0.0; numel(geometry.output)];
    conv2d_into(geometry, input, weight, bias, &mut output);
    output
}

/// [`conv2d`] into a preallocated `output`, which it overwrites.
///
/// # Panics
/// If a slice's length does not match `geometry`.
pub fn conv2d_into(
    geometry: &Conv2dGeometry,
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    output: &mut [f32],
) {
    check_len("input", input, geometry.input);
    check_len("weight", weight, geometry.weight);
    check_len("output", output, geometry.output);
    let accumulate = match bias {
        Some(bias) => {
            fill_bias(output, bias, geometry.output);
            true
        }
        None => false,
    };
    let forward = Forward {
        weight,
        out: output,
        accumulate,
    };
    im2col_products(&geometry.core(), input, Some(forward), None);
}

/// Gradient of [`conv2d`] with respect to its input, given the output's gradient.
///
/// # Panics
/// If a slice's length does not match `geometry`.
pub fn conv2d_backward_input(
    geometry: &Conv2dGeometry,
    grad_output: &[f32],
    weight: &[f32],
) -> Vec<f32> {
    let mut grad_input = vec![0.0; numel(geometry.input)];
    conv2d_backward_input_into(geometry, grad_output, weight, &mut grad_input);
    grad_input
}

/// [`conv2d_backward_input`], adding into `grad_input` (gradients accumulate).
///
/// # Panics
/// If a slice's length does not match `geometry`.
pub fn conv2d_backward_input_into(
    geometry: &Conv2dGeometry,
    grad_output: &[f32],
    weight: &[f32],
    grad_input: &mut [f32],
) {
    check_len("grad_output", grad_output, geometry.output);
    check_len("weight", weight, geometry.weight);
    check_len("grad_input", grad_input, geometry.input);
    col2im_products(
        &geometry.core(),
        grad_output,
        weight,
        Some(grad_input),
        None,
    );
}

/// Gradient of [`conv2d`] with respect to its weight.
///
/// # Panics
/// If a slice's length does not match `geometry`.
pub fn conv2d_backward_weight(
    geometry: &Conv2dGeometry,
    input: &[f32],
    grad_output: &[f32],
) -> Vec<f32> {
    let mut grad_weight = vec![0.0; numel(geometry.weight)];
    conv2d_backward_weight_into(geometry, input, grad_output, &mut grad_weight);
    grad_weight
}

/// [`conv2d_backward_weight`], adding into `grad_weight`.
///
/// # Panics
/// If a slice's length does not match `geometry`.
pub fn conv2d_backward_weight_into(
    geometry: &Conv2dGeometry,
    input: &[f32],
    grad_output: &[f32],
    grad_weight: &mut [f32],
) {
    check_len("input", input, geometry.input);
    check_len("grad_output", grad_output, geometry.output);
    check_len("grad_weight", grad_weight, geometry.weight);
    im2col_products(
        &geometry.core(),
        input,
        None,
        Some((grad_output, grad_weight)),
    );
}

/// Gradient with respect to the bias of a convolution or transposed convolution whose output
/// has shape `output_shape`: the sum of the output's gradient over batch, height and width.
///
/// # Panics
/// If `grad_output` does not have `output_shape`'s element count.
pub fn conv_backward_bias(grad_output: &[f32], output_shape: [usize; 4]) -> Vec<f32> {
    check_len("grad_output", grad_output, output_shape);
    let [batch, channels, h, w] = output_shape;
    let plane = h * w;
    let channel_sum = |c: usize| -> f32 {
        (0..batch)
            .map(|n| sum_f32(&grad_output[(n * channels + c) * plane..][..plane]))
            .sum()
    };
    if grad_output.len() >= 1 << 16 {
        (0..channels).into_par_iter().map(channel_sum).collect()
    } else {
        (0..channels).map(channel_sum).collect()
    }
}

/// Transposed convolution `output = conv_transpose2d(input, weight) + bias`.
///
/// # Panics
/// If a slice's length does not match `geometry` (the bias has `C_out` elements).
pub fn conv_transpose2d(
    geometry: &ConvTranspose2dGeometry,
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
) -> Vec<f32> {
    let mut output = vec![0.0; numel(geometry.output)];
    conv_transpose2d_into(geometry, input, weight, bias, &mut output);
    output
}

/// [`conv_transpose2d`] into a preallocated `output`, which it overwrites.
///
/// # Panics
/// If a slice's length does not match `geometry`.
pub fn conv_transpose2d_into(
    geometry: &ConvTranspose2dGeometry,
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    output: &mut [f32],
) {
    check_len("input", input, geometry.input);
    check_len("weight", weight, geometry.weight);
    check_len("output", output, geometry.output);
    // col2im adds, so start from the bias (or zeros).
    match bias {
        Some(bias) => fill_bias(output, bias, geometry.output),
        None => output.fill(0.0),
    }
    col2im_products(&geometry.core(), input, weight, Some(output), None);
}

/// Gradient of [`conv_transpose2d`] with respect to its input: a convolution of the output's
/// gradient with the same weight.
///
/// # Panics
/// If a slice's length does not match `geometry`.
pub fn conv_transpose2d_backward_input(
    geometry: &ConvTranspose2dGeometry,
    grad_output: &[f32],
    weight: &[f32],
) -> Vec<f32> {
    let mut grad_input = vec![0.0; numel(geometry.input)];
    conv_transpose2d_backward_input_into(geometry, grad_output, weight, &mut grad_input);
    grad_input
}

/// [`conv_transpose2d_backward_input`], adding into `grad_input`.
///
/// # Panics
/// If a slice's length does not match `geometry`.
pub fn conv_transpose2d_backward_input_into(
    geometry: &ConvTranspose2dGeometry,
    grad_output: &[f32],
    weight: &[f32],
    grad_input: &mut [f32],
) {
    check_len("grad_output", grad_output, geometry.output);
    check_len("weight", weight, geometry.weight);
    check_len("grad_input", grad_input, geometry.input);
    let forward = Forward {
        weight,
        out: grad_input,
        accumulate: true,
    };
    im2col_products(&geometry.core(), grad_output, Some(forward), None);
}

/// Gradient of [`conv_transpose2d`] with respect to its weight.
///
/// # Panics
/// If a slice's length does not match `geometry`.
pub fn conv_transpose2d_backward_weight(
    geometry: &ConvTranspose2dGeometry,
    input: &[f32],
    grad_output: &[f32],
) -> Vec<f32> {
    let mut grad_weight = vec![0.0; numel(geometry.weight)];
    conv_transpose2d_backward_weight_into(geometry, input, grad_output, &mut grad_weight);
    grad_weight
}

/// [`conv_transpose2d_backward_weight`], adding into `grad_weight`.
///
/// # Panics
/// If a slice's length does not match `geometry`.
pub fn conv_transpose2d_backward_weight_into(
    geometry: &ConvTranspose2dGeometry,
    input: &[f32],
    grad_output: &[f32],
    grad_weight: &mut [f32],
) {
    check_len("input", input, geometry.input);
    check_len("grad_output", grad_output, geometry.output);
    check_len("grad_weight", grad_weight, geometry.weight);
    // The image side is the output: dW += input_columns * im2col(grad_output)^T.
    im2col_products(
        &geometry.core(),
        grad_output,
        None,
        Some((input, grad_weight)),
    );
}

/// Which gradients a backward pass computes: those of the arguments that require grad.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConvGradRequest {
    /// The input's gradient.
    pub input: bool,
    /// The weight's gradient.
    pub weight: bool,
    /// The bias's gradient.
    pub bias: bool,
}

/// Gradients of a convolution's arguments; `None` where not requested.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConvGrads {
    /// Gradient of the input, shaped like it.
    pub input: Option<Vec<f32>>,
    /// Gradient of the weight, shaped like it.
    pub weight: Option<Vec<f32>>,
    /// Gradient of the bias, `[C_out]`.
    pub bias: Option<Vec<f32>>,
}

/// The requested gradients of [`conv2d`] in one pass over the batch (each batch element's
/// output gradient is read once, while in cache, for both products).
///
/// # Panics
/// If a slice's length does not match `geometry`.
pub fn conv2d_backward(
    geometry: &Conv2dGeometry,
    input: &[f32],
    weight: &[f32],
    grad_output: &[f32],
    request: ConvGradRequest,
) -> ConvGrads {
    check_len("input", input, geometry.input);
    check_len("weight", weight, geometry.weight);
    check_len("grad_output", grad_output, geometry.output);
    let mut grad_input = request.input.then(|| vec![0.0; numel(geometry.input)]);
    let mut grad_weight = request.weight.then(|| vec![0.0; numel(geometry.weight)]);
    // dx += col2im(W^T * dy); dW += dy * im2col(x)^T.
    let weight_grad = grad_weight.as_deref_mut().map(|g| (input, g));
    col2im_products(
        &geometry.core(),
        grad_output,
        weight,
        grad_input.as_deref_mut(),
        weight_grad,
    );
    ConvGrads {
        input: grad_input,
        weight: grad_weight,
        bias: request
            .bias
            .then(|| conv_backward_bias(grad_output, geometry.output)),
    }
}

/// The requested gradients of [`conv_transpose2d`] in one pass over the batch: the input
/// and weight gradients share one im2col of the output's gradient.
///
/// # Panics
/// If a slice's length does not match `geometry`.
pub fn conv_transpose2d_backward(
    geometry: &ConvTranspose2dGeometry,
    input: &[f32],
    weight: &[f32],
    grad_output: &[f32],
    request: ConvGradRequest,
) -> ConvGrads {
    check_len("input", input, geometry.input);
    check_len("weight", weight, geometry.weight);
    check_len("grad_output", grad_output, geometry.output);
    let mut grad_input = request.input.then(|| vec![0.0; numel(geometry.input)]);
    let mut grad_weight = request.weight.then(|| vec![0.0; numel(geometry.weight)]);
    // dx = W * im2col(dy) (a conv2d forward); dW += x * im2col(dy)^T.
    let forward = grad_input.as_deref_mut().map(|out| Forward {
        weight,
        out,
        accumulate: false,
    });
    let weight_grad = grad_weight.as_deref_mut().map(|g| (input, g));
    im2col_products(&geometry.core(), grad_output, forward, weight_grad);
    ConvGrads {
        input: grad_input,
        weight: grad_weight,
        bias: request
            .bias
            .then(|| conv_backward_bias(grad_output, geometry.output)),
    }
}

fn numel(shape: [usize; 4]) -> usize {
    shape.iter().product()
}

fn check_len(what: &str, data: &[f32], shape: [usize; 4]) {
    assert_eq!(
        data.len(),
        numel(shape),
        "{what} does not have shape {shape:?}"
    );
}

/// Writes `bias[c]` into every element of channel `c`.
fn fill_bias(output: &mut [f32], bias: &[f32], shape: [usize; 4]) {
    let [_, channels, h, w] = shape;
    assert_eq!(
        bias.len(),
        channels,
        "bias must have one element per output channel"
    );
    if h * w == 0 {
        return;
    }
    for (i, plane) in output.chunks_exact_mut(h * w).enumerate() {
        plane.fill(bias[i % channels]);
    }
}
