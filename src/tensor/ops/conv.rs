//! 2-D convolution and transposed convolution, forward and backward, NCHW, by im2col + GEMM.
//!
//! Both ops are one computation seen from two sides. A convolution reads an *image*
//! (`[C_img, H_img, W_img]` per batch element) through windows and writes *columns*
//! (`[C_col, H_col, W_col]`, one value per window position and output channel):
//!
//! - conv2d forward:            columns = W * im2col(image)        (image = input)
//! - conv2d grad input:         image  += col2im(W^T * columns)    (columns = grad output)
//! - conv2d grad weight:        dW     += columns * im2col(image)^T
//! - conv_transpose2d forward:  the conv2d grad-input computation, image = output
//! - conv_transpose2d grad input: a conv2d forward of the grad output
//! - conv_transpose2d grad weight: a conv2d grad weight with the roles of image and columns
//!   taken by grad output and input
//!
//! PyTorch's weight layouts make this work without copies: conv2d's `[C_out, C_in/groups,
//! kH, kW]` and conv_transpose2d's `[C_in, C_out/groups, kH, kW]` are both
//! `[C_col, C_img/groups, kH, kW]`, i.e. per group a row-major `C_col/groups x K` matrix with
//! `K = C_img/groups * kH * kW`.
//!
//! The im2col matrix of a whole image is often larger than L2 (4.5 MiB for a
//! `[32, 64, 64]` image and a 3x3 kernel), so it is built in tiles of whole column rows
//! sized to about [`TILE_BYTES`], each consumed by the GEMM while still in cache.

use rayon::prelude::*;

use super::gemm::{MatMut, MatRef, Parallelism, matmul};
use super::sum_f32;
use crate::tensor::shape::{
    ShapeError, SpatialOp, check_groups, checked_conv_output_size,
    checked_conv_transpose_output_size, to_i64,
};

/// Target size of one im2col tile: well under the 2 MiB L2 of the machines we target, so the
/// tile, the packed weight block and the output band all stay resident while the GEMM runs.
const TILE_BYTES: usize = 512 * 1024;

/// Below this many flops per batch element, threading one GEMM costs more than it saves.
const GEMM_THREADING_FLOPS: usize = 4 << 20;

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
    run_forward(&geometry.core(), input, weight, output, accumulate);
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
    run_backward_image(&geometry.core(), grad_output, weight, grad_input);
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
    run_backward_weight(&geometry.core(), input, grad_output, grad_weight);
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
    run_backward_image(&geometry.core(), input, weight, output);
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
    run_forward(&geometry.core(), grad_output, weight, grad_input, true);
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
    run_backward_weight(&geometry.core(), grad_output, input, grad_weight);
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

/// The convolution seen from the image side and the column side (see the module docs).
#[derive(Clone, Copy, Debug)]
struct ConvGeom {
    batch: usize,
    groups: usize,
    /// `[C, H, W]` of the image side.
    img: [usize; 3],
    /// `[C, H, W]` of the column side.
    col: [usize; 3],
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
}

impl ConvGeom {
    fn img_plane(&self) -> usize {
        self.img[1] * self.img[2]
    }

    fn col_plane(&self) -> usize {
        self.col[1] * self.col[2]
    }

    /// Elements of one batch element on the image side.
    fn img_len(&self) -> usize {
        self.img[0] * self.img_plane()
    }

    /// Elements of one batch element on the column side.
    fn col_len(&self) -> usize {
        self.col[0] * self.col_plane()
    }

    fn img_channels_per_group(&self) -> usize {
        self.img[0] / self.groups
    }

    fn col_channels_per_group(&self) -> usize {
        self.col[0] / self.groups
    }

    /// Rows of the im2col matrix: one per (image channel in the group, kernel tap).
    fn k(&self) -> usize {
        self.img_channels_per_group() * self.kernel[0] * self.kernel[1]
    }

    /// A 1x1 kernel with unit stride and no padding reads the image as it is: the im2col
    /// matrix would be a copy of the image, so the GEMMs use the image directly.
    fn is_pointwise(&self) -> bool {
        self.kernel == [1, 1]
            && self.stride == [1, 1]
            && self.padding == [0, 0]
            && self.img[1] == self.col[1]
            && self.img[2] == self.col[2]
    }

    /// Column rows per im2col tile, so a tile is about [`TILE_BYTES`].
    fn tile_rows(&self) -> usize {
        let row_bytes = self.k() * self.col[2] * size_of::<f32>();
        (TILE_BYTES / row_bytes.max(1)).clamp(1, self.col[1].max(1))
    }

    /// Elements of the scratch buffer one batch element needs.
    fn scratch_len(&self) -> usize {
        if self.is_pointwise() {
            0
        } else {
            self.k() * self.tile_rows() * self.col[2]
        }
    }

    /// Whether to run batch elements in parallel (each GEMM single-threaded) or one at a time
    /// with the GEMM threaded. Never both: the gemm crate would split work that rayon already
    /// split, and only add synchronisation.
    ///
    /// Batch parallelism wins when there are enough batch elements to keep every thread busy:
    /// it threads im2col/col2im as well (a third of the time for small channel counts), each
    /// thread reuses its own scratch tile, and there is one fork-join per call instead of one
    /// per GEMM tile. With fewer elements than threads, or a count that leaves one thread with
    /// a whole extra element (3 images on 2 threads: 1.5x the ideal time), threading inside
    /// the GEMM balances better, provided each product is big enough to pay for it.
    fn plan(&self) -> Plan {
        let threads = rayon::current_num_threads();
        if threads <= 1 || self.batch == 0 {
            return Plan::Serial(Parallelism::None);
        }
        let balanced = self.batch.is_multiple_of(threads) || self.batch >= 4 * threads;
        let flops = 2 * self.col[0] * self.k() * self.col_plane();
        if self.batch >= threads && balanced {
            Plan::Batch
        } else if flops >= GEMM_THREADING_FLOPS {
            Plan::Serial(Parallelism::Rayon(threads))
        } else if self.batch > 1 {
            Plan::Batch
        } else {
            Plan::Serial(Parallelism::None)
        }
    }

    /// Valid output positions along one axis for a kernel tap at `offset` (= tap index *
    /// dilation): those `o` in `0..out_len` with `0 <= o*stride + offset - padding < in_len`,
    /// as a range `lo..hi` (possibly empty).
    fn valid_range(
        out_len: usize,
        in_len: usize,
        stride: usize,
        offset: usize,
        padding: usize,
    ) -> (usize, usize) {
        let lo = if offset >= padding {
            0
        } else {
            (padding - offset).div_ceil(stride)
        };
        let hi = if in_len + padding > offset {
            ((in_len + padding - offset - 1) / stride + 1).min(out_len)
        } else {
            0
        };
        (lo.min(hi), hi)
    }

    /// Fills `cols` (`K x (rows.len() * W_col)`, row-major) with the im2col matrix of one
    /// group's image channels for column rows `rows`: row `(c*kH + i)*kW + j`, column
    /// `(oh - rows.start)*W_col + ow` holds `image[c, oh*sH + i*dH - pH, ow*sW + j*dW - pW]`,
    /// or 0 in the padding.
    fn im2col(&self, image: &[f32], rows: std::ops::Range<usize>, cols: &mut [f32]) {
        let [_, img_h, img_w] = self.img;
        let [_, col_h, col_w] = self.col;
        let [kh, kw] = self.kernel;
        let [sh, sw] = self.stride;
        let tile = rows.len() * col_w;
        let mut row_index = 0;
        for plane in image
            .chunks_exact(self.img_plane())
            .take(self.img_channels_per_group())
        {
            for i in 0..kh {
                let (oh_lo, oh_hi) =
                    Self::valid_range(col_h, img_h, sh, i * self.dilation[0], self.padding[0]);
                for j in 0..kw {
                    let offset = j * self.dilation[1];
                    let (lo, hi) = Self::valid_range(col_w, img_w, sw, offset, self.padding[1]);
                    let dst_row = &mut cols[row_index * tile..][..tile];
                    row_index += 1;
                    for (t, oh) in rows.clone().enumerate() {
                        let dst = &mut dst_row[t * col_w..][..col_w];
                        if oh < oh_lo || oh >= oh_hi || lo == hi {
                            dst.fill(0.0);
                            continue;
                        }
                        let ih = oh * sh + i * self.dilation[0] - self.padding[0];
                        let src = &plane[ih * img_w..][..img_w];
                        let iw0 = lo * sw + offset - self.padding[1];
                        dst[..lo].fill(0.0);
                        dst[hi..].fill(0.0);
                        if sw == 1 {
                            dst[lo..hi].copy_from_slice(&src[iw0..iw0 + (hi - lo)]);
                        } else {
                            // `chunks(sw)` rather than `step_by(sw)`: step_by's `nth` keeps
                            // the loop scalar, chunks gives a plain strided loop (5x faster
                            // for stride 2).
                            for (d, s) in dst[lo..hi].iter_mut().zip(src[iw0..].chunks(sw)) {
                                *d = s[0];
                            }
                        }
                    }
                }
            }
        }
    }

    /// The adjoint of [`Self::im2col`]: adds every entry of `cols` into the image position
    /// it was read from (entries that came from padding are dropped).
    fn col2im(&self, cols: &[f32], rows: std::ops::Range<usize>, image: &mut [f32]) {
        let [_, img_h, img_w] = self.img;
        let [_, col_h, col_w] = self.col;
        let [kh, kw] = self.kernel;
        let [sh, sw] = self.stride;
        let tile = rows.len() * col_w;
        let img_plane = self.img_plane();
        let mut row_index = 0;
        for plane in image
            .chunks_exact_mut(img_plane)
            .take(self.img_channels_per_group())
        {
            for i in 0..kh {
                let (oh_lo, oh_hi) =
                    Self::valid_range(col_h, img_h, sh, i * self.dilation[0], self.padding[0]);
                for j in 0..kw {
                    let offset = j * self.dilation[1];
                    let (lo, hi) = Self::valid_range(col_w, img_w, sw, offset, self.padding[1]);
                    let src_row = &cols[row_index * tile..][..tile];
                    row_index += 1;
                    if lo == hi {
                        continue;
                    }
                    let iw0 = lo * sw + offset - self.padding[1];
                    for (t, oh) in rows.clone().enumerate() {
                        if oh < oh_lo || oh >= oh_hi {
                            continue;
                        }
                        let src = &src_row[t * col_w..][lo..hi];
                        let ih = oh * sh + i * self.dilation[0] - self.padding[0];
                        let dst = &mut plane[ih * img_w..][..img_w];
                        if sw == 1 {
                            for (d, s) in dst[iw0..iw0 + (hi - lo)].iter_mut().zip(src) {
                                *d += *s;
                            }
                        } else {
                            for (d, s) in dst[iw0..].chunks_mut(sw).zip(src) {
                                d[0] += *s;
                            }
                        }
                    }
                }
            }
        }
    }

    /// Column rows in tiles of [`Self::tile_rows`].
    fn tiles(&self) -> impl Iterator<Item = std::ops::Range<usize>> + use<> {
        let (step, end) = (self.tile_rows(), self.col[1]);
        (0..end)
            .step_by(step)
            .map(move |start| start..(start + step).min(end))
    }

    /// One batch element: `columns = W * im2col(image)` per group (`+=` when `accumulate`).
    fn forward_one(
        &self,
        image: &[f32],
        weight: &[f32],
        columns: &mut [f32],
        accumulate: bool,
        par: Parallelism,
        scratch: &mut [f32],
    ) {
        let (k, m, col_plane) = (self.k(), self.col_channels_per_group(), self.col_plane());
        let img_group = self.img_channels_per_group() * self.img_plane();
        for g in 0..self.groups {
            let image_g = &image[g * img_group..][..img_group];
            let weight_g = MatRef::row_major(&weight[g * m * k..], m, k);
            let out_g = &mut columns[g * m * col_plane..][..m * col_plane];
            if self.is_pointwise() {
                let rhs = MatRef::row_major(image_g, k, col_plane);
                matmul(
                    MatMut::row_major(out_g, m, col_plane),
                    weight_g,
                    rhs,
                    accumulate,
                    par,
                );
                continue;
            }
            for rows in self.tiles() {
                let width = rows.len() * self.col[2];
                let offset = rows.start * self.col[2];
                let cols = &mut scratch[..k * width];
                self.im2col(image_g, rows, cols);
                let dst = MatMut::with_row_stride(&mut out_g[offset..], m, width, col_plane);
                matmul(
                    dst,
                    weight_g,
                    MatRef::row_major(cols, k, width),
                    accumulate,
                    par,
                );
            }
        }
    }

    /// One batch element: `image += col2im(W^T * columns)` per group.
    fn backward_image_one(
        &self,
        columns: &[f32],
        weight: &[f32],
        image: &mut [f32],
        par: Parallelism,
        scratch: &mut [f32],
    ) {
        let (k, m, col_plane) = (self.k(), self.col_channels_per_group(), self.col_plane());
        let img_group = self.img_channels_per_group() * self.img_plane();
        for g in 0..self.groups {
            let image_g = &mut image[g * img_group..][..img_group];
            let weight_t = MatRef::row_major(&weight[g * m * k..], m, k).t();
            let cols_g = &columns[g * m * col_plane..][..m * col_plane];
            if self.is_pointwise() {
                let rhs = MatRef::row_major(cols_g, m, col_plane);
                matmul(
                    MatMut::row_major(image_g, k, col_plane),
                    weight_t,
                    rhs,
                    true,
                    par,
                );
                continue;
            }
            for rows in self.tiles() {
                let width = rows.len() * self.col[2];
                let offset = rows.start * self.col[2];
                let cols = &mut scratch[..k * width];
                let rhs = MatRef::new(&cols_g[offset..], m, width, col_plane, 1);
                matmul(MatMut::row_major(cols, k, width), weight_t, rhs, false, par);
                self.col2im(cols, rows, image_g);
            }
        }
    }

    /// One batch element: `grad_weight += columns * im2col(image)^T` per group.
    fn backward_weight_one(
        &self,
        image: &[f32],
        columns: &[f32],
        grad_weight: &mut [f32],
        par: Parallelism,
        scratch: &mut [f32],
    ) {
        let (k, m, col_plane) = (self.k(), self.col_channels_per_group(), self.col_plane());
        let img_group = self.img_channels_per_group() * self.img_plane();
        for g in 0..self.groups {
            let image_g = &image[g * img_group..][..img_group];
            let cols_g = &columns[g * m * col_plane..][..m * col_plane];
            let grad_g = &mut grad_weight[g * m * k..][..m * k];
            if self.is_pointwise() {
                let lhs = MatRef::row_major(cols_g, m, col_plane);
                let rhs = MatRef::row_major(image_g, k, col_plane).t();
                matmul(MatMut::row_major(grad_g, m, k), lhs, rhs, true, par);
                continue;
            }
            for rows in self.tiles() {
                let width = rows.len() * self.col[2];
                let offset = rows.start * self.col[2];
                let cols = &mut scratch[..k * width];
                self.im2col(image_g, rows, cols);
                let lhs = MatRef::new(&cols_g[offset..], m, width, col_plane, 1);
                let rhs = MatRef::row_major(cols, k, width).t();
                matmul(MatMut::row_major(grad_g, m, k), lhs, rhs, true, par);
            }
        }
    }
}

/// How a batched convolution uses the threads (see [`ConvGeom::plan`]).
#[derive(Clone, Copy, Debug)]
enum Plan {
    /// Batch elements in parallel, each GEMM single-threaded.
    Batch,
    /// Batch elements one after another, with this GEMM parallelism.
    Serial(Parallelism),
}

fn new_scratch(geo: &ConvGeom) -> Vec<f32> {
    vec![0.0; geo.scratch_len()]
}

fn run_forward(geo: &ConvGeom, image: &[f32], weight: &[f32], columns: &mut [f32], acc: bool) {
    if columns.is_empty() || image.is_empty() {
        if !acc {
            columns.fill(0.0);
        }
        return;
    }
    let (img_len, col_len) = (geo.img_len(), geo.col_len());
    match geo.plan() {
        Plan::Batch => columns
            .par_chunks_mut(col_len)
            .zip(image.par_chunks(img_len))
            .for_each_init(
                || new_scratch(geo),
                |scratch, (out, x)| {
                    geo.forward_one(x, weight, out, acc, Parallelism::None, scratch)
                },
            ),
        Plan::Serial(par) => {
            let mut scratch = new_scratch(geo);
            for (out, x) in columns
                .chunks_exact_mut(col_len)
                .zip(image.chunks_exact(img_len))
            {
                geo.forward_one(x, weight, out, acc, par, &mut scratch);
            }
        }
    }
}

fn run_backward_image(geo: &ConvGeom, columns: &[f32], weight: &[f32], image: &mut [f32]) {
    if columns.is_empty() || image.is_empty() {
        return;
    }
    let (img_len, col_len) = (geo.img_len(), geo.col_len());
    match geo.plan() {
        Plan::Batch => image
            .par_chunks_mut(img_len)
            .zip(columns.par_chunks(col_len))
            .for_each_init(
                || new_scratch(geo),
                |scratch, (x, cols)| {
                    geo.backward_image_one(cols, weight, x, Parallelism::None, scratch)
                },
            ),
        Plan::Serial(par) => {
            let mut scratch = new_scratch(geo);
            for (x, cols) in image
                .chunks_exact_mut(img_len)
                .zip(columns.chunks_exact(col_len))
            {
                geo.backward_image_one(cols, weight, x, par, &mut scratch);
            }
        }
    }
}

fn run_backward_weight(geo: &ConvGeom, image: &[f32], columns: &[f32], grad_weight: &mut [f32]) {
    if columns.is_empty() || image.is_empty() || grad_weight.is_empty() {
        return;
    }
    let (img_len, col_len) = (geo.img_len(), geo.col_len());
    match geo.plan() {
        Plan::Batch => {
            // One partial weight gradient per thread, summed at the end: the weight is small
            // next to the images, and the threads never contend for it.
            let threads = rayon::current_num_threads().min(geo.batch);
            let per_chunk = geo.batch.div_ceil(threads);
            let partial = image
                .par_chunks(per_chunk * img_len)
                .zip(columns.par_chunks(per_chunk * col_len))
                .map(|(xs, cs)| {
                    let mut acc = vec![0.0; grad_weight.len()];
                    let mut scratch = new_scratch(geo);
                    for (x, cols) in xs.chunks_exact(img_len).zip(cs.chunks_exact(col_len)) {
                        geo.backward_weight_one(x, cols, &mut acc, Parallelism::None, &mut scratch);
                    }
                    acc
                })
                .reduce_with(|mut a, b| {
                    a.iter_mut().zip(&b).for_each(|(a, b)| *a += b);
                    a
                });
            if let Some(partial) = partial {
                grad_weight
                    .iter_mut()
                    .zip(&partial)
                    .for_each(|(g, p)| *g += p);
            }
        }
        Plan::Serial(par) => {
            let mut scratch = new_scratch(geo);
            for (x, cols) in image
                .chunks_exact(img_len)
                .zip(columns.chunks_exact(col_len))
            {
                geo.backward_weight_one(x, cols, grad_weight, par, &mut scratch);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_range_matches_brute_force() {
        for out_len in 1..6 {
            for in_len in 1..6 {
                for stride in 1..4 {
                    for offset in 0..5 {
                        for padding in 0..4 {
                            let (lo, hi) =
                                ConvGeom::valid_range(out_len, in_len, stride, offset, padding);
                            let valid: Vec<usize> = (0..out_len)
                                .filter(|&o| {
                                    let pos = (o * stride + offset) as isize - padding as isize;
                                    pos >= 0 && pos < in_len as isize
                                })
                                .collect();
                            assert_eq!((lo..hi).collect::<Vec<_>>(), valid);
                        }
                    }
                }
            }
        }
    }
}
