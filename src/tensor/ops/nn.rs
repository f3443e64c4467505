//! The neural-network ops with autograd: convolution, transposed convolution, pooling,
//! resampling and batch normalisation.
//!
//! The numeric work is done by the slice kernels in [`super::conv`], [`super::pool`] and
//! [`super::resample`]; this file checks shapes, runs them on the tensors' data and records a
//! custom graph node ([`BackwardFn`]) named as PyTorch names it, so `grad_fn` prints the same.
//! Each backward struct keeps the validated geometry, so backward cannot fail on shapes.

use crate::tensor::autograd::{BackwardFn, Saved, SavedTensor, record};
use crate::tensor::core::Tensor;
use crate::tensor::derivatives::Op;
use crate::tensor::error::{Result, TensorError};
use crate::tensor::memory;
use crate::tensor::ops::conv::{
    self, Conv2dGeometry, Conv2dParams, ConvGradRequest, ConvTranspose2dGeometry,
    ConvTranspose2dParams,
};
use crate::tensor::ops::pool::{self, AvgPool2dGeometry, AvgPool2dParams, MaxPool2dGeometry};
use crate::tensor::ops::resample::{self, Interpolate2dGeometry, PixelShuffleGeometry};
use crate::tensor::shape::{ShapeError, SpatialOp};
use crate::tensor::storage;

pub use crate::tensor::ops::pool::MaxPool2dParams;

/// `interpolate`'s `mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InterpolateMode {
    /// `"nearest"`: each output pixel copies its nearest source pixel.
    Nearest,
    /// `"bilinear"` with `align_corners=false`.
    Bilinear,
}

/// The size `interpolate` resamples to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum InterpolateSize {
    /// `size=[h, w]`.
    Size([usize; 2]),
    /// `scale_factor=[sh, sw]`: `floor(in * s)` per axis.
    Scale([f64; 2]),
}

/// A 4-D shape as an array, or E0304 naming `op` and what it wanted.
fn shape4(t: &Tensor, op: &'static str, expected: &'static str) -> Result<[usize; 4]> {
    <[usize; 4]>::try_from(t.shape()).map_err(|_| TensorError::Rank {
        op,
        expected,
        shape: t.shape().to_vec(),
    })
}

/// Runs `f` on a batched view of `x`: a 3-D `[C, H, W]` input is treated as a batch of one,
/// as PyTorch's convolutions and pools accept unbatched input, and the result unbatched again.
pub(crate) fn batched(
    x: &Tensor,
    op: &'static str,
    expected: &'static str,
    f: impl FnOnce(&Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    match x.ndim() {
        4 => f(x),
        3 => f(&x.unsqueeze(0)?)?.squeeze_dim(0),
        _ => Err(TensorError::Rank {
            op,
            expected,
            shape: x.shape().to_vec(),
        }),
    }
}

fn tensor_from(data: Vec<f32>, shape: [usize; 4]) -> Result<Tensor> {
    Tensor::from_vec(data, &shape)
}

fn checked_alloc(op: &'static str, shape: [usize; 4]) -> Result<()> {
    storage::checked_numel(op, &shape).map(|_| ())
}

/// Refuses `bytes` of kernel scratch for `op` that do not fit in the memory budget.
fn check_scratch(op: &'static str, bytes: u128) -> Result<()> {
    memory::check(op, bytes).map_err(|e| TensorError::TooLarge {
        op,
        shape: vec![bytes.div_ceil(4).min(usize::MAX as u128) as usize],
        bytes: e.bytes,
        available: e.left,
    })
}

/// The bias as a slice-friendly vector of `out_channels` values, or E0306.
fn bias_values(
    op: &'static str,
    bias: Option<&Tensor>,
    out_channels: usize,
) -> Result<Option<Vec<f32>>> {
    match bias {
        None => Ok(None),
        Some(b) if b.shape() == [out_channels] => Ok(Some(b.to_vec())),
        Some(b) => Err(TensorError::ShapeMismatch {
            op,
            lhs: b.shape().to_vec(),
            rhs: vec![out_channels],
            detail: " (the bias needs one value per output channel)".into(),
        }),
    }
}

// ----- convolution -------------------------------------------------------------------

/// Backward of `conv2d` and `conv_transpose2d`; saved `[input, weight]`.
struct ConvolutionBackward {
    geometry: ConvGeometry,
}

#[derive(Clone, Copy)]
enum ConvGeometry {
    Forward(Conv2dGeometry),
    Transposed(ConvTranspose2dGeometry),
}

impl BackwardFn for ConvolutionBackward {
    fn name(&self) -> &'static str {
        "ConvolutionBackward0"
    }

    // d input = the adjoint of the convolution applied to g; d weight = g correlated with
    // the input; d bias = g summed over batch and space.
    fn backward(&self, g: &Tensor, saved: &Saved, needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        let input = saved.get(0)?;
        let weight = saved.get(1)?;
        let request = ConvGradRequest {
            input: needs.first().copied().unwrap_or(false),
            weight: needs.get(1).copied().unwrap_or(false),
            bias: needs.get(2).copied().unwrap_or(false),
        };
        // The gradients and the kernels' scratch must fit before the kernels allocate them.
        let scratch = match &self.geometry {
            ConvGeometry::Forward(geo) => geo.scratch_bytes(request.weight),
            ConvGeometry::Transposed(geo) => geo.scratch_bytes(request.weight),
        };
        let grad_bytes = |wanted: bool, t: &Tensor| if wanted { t.numel() as u128 * 4 } else { 0 };
        let total = scratch + grad_bytes(request.input, input) + grad_bytes(request.weight, weight);
        check_scratch("backward", total)?;
        let grads = input.try_with_slice("backward", |x| {
            weight.try_with_slice("backward", |w| {
                g.try_with_slice("backward", |dy| match &self.geometry {
                    ConvGeometry::Forward(geo) => conv::conv2d_backward(geo, x, w, dy, request),
                    ConvGeometry::Transposed(geo) => {
                        conv::conv_transpose2d_backward(geo, x, w, dy, request)
                    }
                })
            })
        })???;
        let out_channels = g.shape()[1];
        let mut out = vec![
            grads
                .input
                .map(|d| Tensor::from_vec(d, input.shape()))
                .transpose()?,
            grads
                .weight
                .map(|d| Tensor::from_vec(d, weight.shape()))
                .transpose()?,
        ];
        if needs.len() > 2 {
            out.push(
                grads
                    .bias
                    .map(|d| Tensor::from_vec(d, &[out_channels]))
                    .transpose()?,
            );
        }
        Ok(out)
    }
}

/// Records a convolution node over `[input, weight, bias?]`.
fn record_conv(
    out: Tensor,
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    geometry: ConvGeometry,
) -> Tensor {
    let mut inputs = vec![x, w];
    inputs.extend(b);
    record(out, &inputs, || {
        (
            Op::Custom(Box::new(ConvolutionBackward { geometry })),
            vec![Some(SavedTensor::new(x)), Some(SavedTensor::new(w))],
        )
    })
}

impl Tensor {
    /// `conv2d(x, weight, bias, stride, padding, dilation, groups)`: `[N, C_in, H, W]` (or
    /// unbatched `[C_in, H, W]`) with weight `[C_out, C_in/groups, kH, kW]`.
    pub fn conv2d(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        params: Conv2dParams,
    ) -> Result<Tensor> {
        let expected = "a 3-D [C, H, W] or 4-D [N, C, H, W] input";
        batched(self, "conv2d", expected, |x| {
            let w_shape = shape4(
                weight,
                "conv2d",
                "a 4-D weight [out_channels, in_channels/groups, kH, kW]",
            )?;
            let geometry = Conv2dGeometry::new(shape4(x, "conv2d", expected)?, w_shape, params)?;
            let b = bias_values("conv2d", bias, w_shape[0])?;
            let mut out = storage::alloc_filled("conv2d", &geometry.output_shape(), 0.0)?;
            check_scratch("conv2d", geometry.scratch_bytes(false))?;
            x.try_with_slice("conv2d", |xs| {
                weight.try_with_slice("conv2d", |ws| {
                    conv::conv2d_into(&geometry, xs, ws, b.as_deref(), &mut out)
                })
            })??;
            let out = tensor_from(out, geometry.output_shape())?;
            Ok(record_conv(
                out,
                x,
                weight,
                bias,
                ConvGeometry::Forward(geometry),
            ))
        })
    }

    /// `conv_transpose2d(x, weight, bias, stride, padding, output_padding, groups,
    /// dilation)`: weight `[C_in, C_out/groups, kH, kW]`.
    pub fn conv_transpose2d(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        params: ConvTranspose2dParams,
    ) -> Result<Tensor> {
        let expected = "a 3-D [C, H, W] or 4-D [N, C, H, W] input";
        batched(self, "conv_transpose2d", expected, |x| {
            let w_shape = shape4(
                weight,
                "conv_transpose2d",
                "a 4-D weight [in_channels, out_channels/groups, kH, kW]",
            )?;
            let geometry = ConvTranspose2dGeometry::new(
                shape4(x, "conv_transpose2d", expected)?,
                w_shape,
                params,
            )?;
            let b = bias_values("conv_transpose2d", bias, geometry.output_shape()[1])?;
            let mut out = storage::alloc_filled("conv_transpose2d", &geometry.output_shape(), 0.0)?;
            check_scratch("conv_transpose2d", geometry.scratch_bytes(false))?;
            x.try_with_slice("conv_transpose2d", |xs| {
                weight.try_with_slice("conv_transpose2d", |ws| {
                    conv::conv_transpose2d_into(&geometry, xs, ws, b.as_deref(), &mut out)
                })
            })??;
            let out = tensor_from(out, geometry.output_shape())?;
            Ok(record_conv(
                out,
                x,
                weight,
                bias,
                ConvGeometry::Transposed(geometry),
            ))
        })
    }
}

// ----- pooling -----------------------------------------------------------------------

/// Backward of `max_pool2d`: each output's gradient goes to the input element that was its
/// maximum. Saved `[input]` (unused, but PyTorch saves it, so an in-place change of the
/// input is reported the same way).
struct MaxPoolBackward {
    geometry: MaxPool2dGeometry,
    indices: Vec<usize>,
}

impl BackwardFn for MaxPoolBackward {
    fn name(&self) -> &'static str {
        "MaxPool2DWithIndicesBackward0"
    }

    fn backward(&self, g: &Tensor, _: &Saved, _: &[bool]) -> Result<Vec<Option<Tensor>>> {
        let dx = g.try_with_slice("backward", |dy| {
            pool::max_pool2d_backward(&self.geometry, dy, &self.indices)
        })?;
        Ok(vec![Some(tensor_from(dx, self.geometry.input_shape())?)])
    }
}

/// Backward of `avg_pool2d`: each output's gradient spread evenly over its window (divided
/// by the same count as the forward).
struct AvgPoolBackward {
    geometry: AvgPool2dGeometry,
}

impl BackwardFn for AvgPoolBackward {
    fn name(&self) -> &'static str {
        "AvgPool2DBackward0"
    }

    fn backward(&self, g: &Tensor, _: &Saved, _: &[bool]) -> Result<Vec<Option<Tensor>>> {
        let dx = g.try_with_slice("backward", |dy| {
            pool::avg_pool2d_backward(&self.geometry, dy)
        })?;
        Ok(vec![Some(tensor_from(dx, self.geometry.input_shape())?)])
    }
}

impl Tensor {
    /// `max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode)`.
    pub fn max_pool2d(&self, params: MaxPool2dParams) -> Result<Tensor> {
        let expected = "a 3-D [C, H, W] or 4-D [N, C, H, W] input";
        batched(self, "max_pool2d", expected, |x| {
            let geometry = MaxPool2dGeometry::new(shape4(x, "max_pool2d", expected)?, params)?;
            let shape = geometry.output_shape();
            let mut out = storage::alloc_filled("max_pool2d", &shape, 0.0)?;
            let len = out.len();
            let mut indices =
                memory::try_vec("max_pool2d", len).map_err(storage::too_large(&shape))?;
            indices.resize(len, 0);
            x.try_with_slice("max_pool2d", |xs| {
                pool::max_pool2d_into(&geometry, xs, &mut out, &mut indices)
            })?;
            let out = tensor_from(out, geometry.output_shape())?;
            Ok(record(out, &[x], || {
                (
                    Op::Custom(Box::new(MaxPoolBackward { geometry, indices })),
                    vec![Some(SavedTensor::new(x))],
                )
            }))
        })
    }

    /// `avg_pool2d(x, kernel_size, stride, padding, ceil_mode, count_include_pad)`.
    pub fn avg_pool2d(&self, params: AvgPool2dParams) -> Result<Tensor> {
        let expected = "a 3-D [C, H, W] or 4-D [N, C, H, W] input";
        batched(self, "avg_pool2d", expected, |x| {
            let geometry = AvgPool2dGeometry::new(shape4(x, "avg_pool2d", expected)?, params)?;
            let mut out = storage::alloc_filled("avg_pool2d", &geometry.output_shape(), 0.0)?;
            x.try_with_slice("avg_pool2d", |xs| {
                pool::avg_pool2d_into(&geometry, xs, &mut out)
            })?;
            let out = tensor_from(out, geometry.output_shape())?;
            Ok(record(out, &[x], || {
                (
                    Op::Custom(Box::new(AvgPoolBackward { geometry })),
                    Vec::new(),
                )
            }))
        })
    }
}

// ----- resampling --------------------------------------------------------------------

/// Backward of `interpolate`: the transpose of the (linear) resampling.
struct UpsampleBackward {
    geometry: Interpolate2dGeometry,
    mode: InterpolateMode,
}

impl BackwardFn for UpsampleBackward {
    fn name(&self) -> &'static str {
        match self.mode {
            InterpolateMode::Nearest => "UpsampleNearest2DBackward0",
            InterpolateMode::Bilinear => "UpsampleBilinear2DBackward0",
        }
    }

    fn backward(&self, g: &Tensor, _: &Saved, _: &[bool]) -> Result<Vec<Option<Tensor>>> {
        let dx = g.try_with_slice("backward", |dy| match self.mode {
            InterpolateMode::Nearest => resample::interpolate_nearest_backward(&self.geometry, dy),
            InterpolateMode::Bilinear => {
                resample::interpolate_bilinear_backward(&self.geometry, dy)
            }
        })?;
        Ok(vec![Some(tensor_from(dx, self.geometry.input_shape())?)])
    }
}

/// Backward of `pixel_shuffle`: the inverse permutation.
struct PixelShuffleBackward {
    geometry: PixelShuffleGeometry,
}

impl BackwardFn for PixelShuffleBackward {
    fn name(&self) -> &'static str {
        "PixelShuffleBackward0"
    }

    fn backward(&self, g: &Tensor, _: &Saved, _: &[bool]) -> Result<Vec<Option<Tensor>>> {
        let dx = g.try_with_slice("backward", |dy| {
            resample::pixel_shuffle_backward(&self.geometry, dy)
        })?;
        Ok(vec![Some(tensor_from(dx, self.geometry.input_shape())?)])
    }
}

impl Tensor {
    /// `interpolate(x, size | scale_factor, mode)` of a 4-D `[N, C, H, W]` input.
    pub fn interpolate(&self, size: InterpolateSize, mode: InterpolateMode) -> Result<Tensor> {
        let input = shape4(self, "interpolate", "a 4-D [N, C, H, W] input")?;
        let (output_hw, scale) = match size {
            InterpolateSize::Size(hw) => (hw, None),
            InterpolateSize::Scale(s) => {
                if s.iter().any(|f| !(f.is_finite() && *f > 0.0)) {
                    return Err(TensorError::value(
                        "interpolate",
                        format!("scale_factor must be positive, got {s:?}"),
                    ));
                }
                (
                    Interpolate2dGeometry::scaled_size([input[2], input[3]], s),
                    Some(s),
                )
            }
        };
        let geometry = Interpolate2dGeometry::new(input, output_hw, scale)?;
        checked_alloc("interpolate", geometry.output_shape())?;
        let out = self.try_with_slice("interpolate", |xs| match mode {
            InterpolateMode::Nearest => resample::interpolate_nearest(&geometry, xs),
            InterpolateMode::Bilinear => resample::interpolate_bilinear(&geometry, xs),
        })?;
        let out = tensor_from(out, geometry.output_shape())?;
        Ok(record(out, &[self], || {
            (
                Op::Custom(Box::new(UpsampleBackward { geometry, mode })),
                Vec::new(),
            )
        }))
    }

    /// `pixel_shuffle(x, r)`: `[N, C*r*r, H, W]` → `[N, C, H*r, W*r]`.
    pub fn pixel_shuffle(&self, upscale_factor: usize) -> Result<Tensor> {
        let input = shape4(self, "pixel_shuffle", "a 4-D [N, C*r*r, H, W] input")?;
        if upscale_factor.checked_mul(upscale_factor).is_none() {
            return Err(TensorError::Spatial(ShapeError::UpscaleMismatch {
                op: SpatialOp::PixelShuffle,
                channels: input[1] as i64,
                factor_squared: i64::MAX,
            }));
        }
        let geometry = PixelShuffleGeometry::new(input, upscale_factor)?;
        checked_alloc("pixel_shuffle", geometry.output_shape())?;
        let out =
            self.try_with_slice("pixel_shuffle", |xs| resample::pixel_shuffle(&geometry, xs))?;
        let out = tensor_from(out, geometry.output_shape())?;
        Ok(record(out, &[self], || {
            (
                Op::Custom(Box::new(PixelShuffleBackward { geometry })),
                Vec::new(),
            )
        }))
    }
}

// ----- batch normalisation -----------------------------------------------------------

/// The statistics `batch_norm` normalised with, per channel.
struct ChannelStats {
    mean: Vec<f32>,
    /// `1 / sqrt(var + eps)`.
    invstd: Vec<f32>,
}

/// Backward of `batch_norm`; saved `[input, weight?]`.
struct BatchNormBackward {
    stats: ChannelStats,
    /// Whether the statistics came from the batch (they then depend on the input).
    training: bool,
    shape: Vec<usize>,
    /// Whether the node's inputs include a weight, then a bias, after the input.
    has_weight: bool,
    has_bias: bool,
}

/// `(N, C, S)`: batch, channels, and the elements per channel per batch item.
pub(crate) fn channel_split(shape: &[usize]) -> (usize, usize, usize) {
    let n = shape.first().copied().unwrap_or(1);
    let c = shape.get(1).copied().unwrap_or(1);
    (n, c, shape.iter().skip(2).product())
}

/// Calls `f(channel, value_index)` for every element, in storage order.
fn for_each_in_channel(shape: &[usize], mut f: impl FnMut(usize, usize)) {
    let (n, c, s) = channel_split(shape);
    for b in 0..n {
        for ch in 0..c {
            let start = (b * c + ch) * s;
            for i in start..start + s {
                f(ch, i);
            }
        }
    }
}

impl BackwardFn for BatchNormBackward {
    fn name(&self) -> &'static str {
        "NativeBatchNormBackward0"
    }

    // With x̂ = (x - mean)·invstd and y = w·x̂ + b, over the m = N·S elements of a channel:
    //   d b = Σ g,   d w = Σ g·x̂,
    //   d x = w·invstd·(g - (Σ g)/m - x̂·(Σ g·x̂)/m)   when the statistics are the batch's,
    //   d x = w·invstd·g                                when they are running statistics.
    fn backward(&self, g: &Tensor, saved: &Saved, needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        let x = saved.get(0)?.to_vec();
        let weight = if self.has_weight {
            Some(saved.get(1)?.to_vec())
        } else {
            None
        };
        let dy = g.to_vec();
        let (n, c, s) = channel_split(&self.shape);
        let m = (n * s).max(1) as f32;
        let ChannelStats { mean, invstd } = &self.stats;
        let mut sum_g = vec![0.0f64; c];
        let mut sum_gx = vec![0.0f64; c];
        for_each_in_channel(&self.shape, |ch, i| {
            let xhat = (x[i] - mean[ch]) * invstd[ch];
            sum_g[ch] += f64::from(dy[i]);
            sum_gx[ch] += f64::from(dy[i] * xhat);
        });
        let w_of = |ch: usize| weight.as_ref().map_or(1.0, |w| w[ch]);
        let dx = if needs.first().copied().unwrap_or(false) {
            let mut dx = vec![0.0f32; x.len()];
            for_each_in_channel(&self.shape, |ch, i| {
                let scale = w_of(ch) * invstd[ch];
                dx[i] = if self.training {
                    let xhat = (x[i] - mean[ch]) * invstd[ch];
                    scale * (dy[i] - sum_g[ch] as f32 / m - xhat * sum_gx[ch] as f32 / m)
                } else {
                    scale * dy[i]
                };
            });
            Some(Tensor::from_vec(dx, &self.shape)?)
        } else {
            None
        };
        let per_channel = |v: &[f64]| Tensor::from_vec(v.iter().map(|&x| x as f32).collect(), &[c]);
        let mut out = vec![dx];
        if self.has_weight {
            out.push(if needs.get(out.len()).copied().unwrap_or(false) {
                Some(per_channel(&sum_gx)?)
            } else {
                None
            });
        }
        if self.has_bias {
            out.push(if needs.get(out.len()).copied().unwrap_or(false) {
                Some(per_channel(&sum_g)?)
            } else {
                None
            });
        }
        Ok(out)
    }
}

/// `batch_norm`'s arguments besides the input.
#[derive(Clone, Copy)]
pub struct BatchNormArgs<'a> {
    /// Running mean `[C]`, updated in place in training.
    pub running_mean: Option<&'a Tensor>,
    /// Running variance `[C]` (unbiased), updated in place in training.
    pub running_var: Option<&'a Tensor>,
    /// Scale `[C]`.
    pub weight: Option<&'a Tensor>,
    /// Shift `[C]`.
    pub bias: Option<&'a Tensor>,
    /// Normalise with the batch's statistics (and update the running ones).
    pub training: bool,
    /// Weight of the new batch statistic in the running average.
    pub momentum: f64,
    /// Added to the variance before the square root.
    pub eps: f64,
}

impl Tensor {
    /// `batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps)` over
    /// dim 1 of an `[N, C, ...]` input, PyTorch's formula: the batch variance is biased for
    /// normalising and unbiased for the running average.
    pub fn batch_norm(&self, args: BatchNormArgs<'_>) -> Result<Tensor> {
        if self.ndim() < 2 {
            return Err(TensorError::Rank {
                op: "batch_norm",
                expected: "an [N, C, ...] input of at least 2 dimensions",
                shape: self.shape().to_vec(),
            });
        }
        let (n, c, s) = channel_split(self.shape());
        for t in [args.running_mean, args.running_var, args.weight, args.bias]
            .into_iter()
            .flatten()
        {
            if t.shape() != [c] {
                return Err(TensorError::ShapeMismatch {
                    op: "batch_norm",
                    lhs: t.shape().to_vec(),
                    rhs: vec![c],
                    detail: " (per-channel statistics and parameters need one value per channel)"
                        .into(),
                });
            }
        }
        let x = self.to_vec();
        let stats = if args.training {
            let count = n * s;
            if count <= 1 {
                return Err(TensorError::value(
                    "batch_norm",
                    format!(
                        "expected more than 1 value per channel when training, got input of shape {:?}",
                        self.shape()
                    ),
                ));
            }
            let mut sum = vec![0.0f64; c];
            for_each_in_channel(self.shape(), |ch, i| sum[ch] += f64::from(x[i]));
            let mean: Vec<f64> = sum.iter().map(|v| v / count as f64).collect();
            let mut sq = vec![0.0f64; c];
            for_each_in_channel(self.shape(), |ch, i| {
                let d = f64::from(x[i]) - mean[ch];
                sq[ch] += d * d;
            });
            let var: Vec<f64> = sq.iter().map(|v| v / count as f64).collect();
            let _no_grad = crate::tensor::autograd::no_grad();
            let m = args.momentum;
            if let Some(rm) = args.running_mean {
                let old = rm.to_vec();
                let new = old
                    .iter()
                    .zip(&mean)
                    .map(|(&r, &b)| ((1.0 - m) * f64::from(r) + m * b) as f32);
                rm.copy_(&Tensor::from_vec(new.collect(), &[c])?)?;
            }
            if let Some(rv) = args.running_var {
                let unbiased = count as f64 / (count - 1) as f64;
                let old = rv.to_vec();
                let new = old
                    .iter()
                    .zip(&var)
                    .map(|(&r, &v)| ((1.0 - m) * f64::from(r) + m * v * unbiased) as f32);
                rv.copy_(&Tensor::from_vec(new.collect(), &[c])?)?;
            }
            ChannelStats {
                mean: mean.iter().map(|&v| v as f32).collect(),
                invstd: var
                    .iter()
                    .map(|&v| (1.0 / (v + args.eps).sqrt()) as f32)
                    .collect(),
            }
        } else {
            let (Some(rm), Some(rv)) = (args.running_mean, args.running_var) else {
                return Err(TensorError::value(
                    "batch_norm",
                    "running_mean and running_var are needed when not training",
                ));
            };
            ChannelStats {
                mean: rm.to_vec(),
                invstd: rv
                    .to_vec()
                    .iter()
                    .map(|&v| (1.0 / (f64::from(v) + args.eps).sqrt()) as f32)
                    .collect(),
            }
        };
        let w = args.weight.map(Tensor::to_vec);
        let b = args.bias.map(Tensor::to_vec);
        let mut y = vec![0.0f32; x.len()];
        for_each_in_channel(self.shape(), |ch, i| {
            let xhat = (x[i] - stats.mean[ch]) * stats.invstd[ch];
            y[i] = xhat * w.as_ref().map_or(1.0, |w| w[ch]) + b.as_ref().map_or(0.0, |b| b[ch]);
        });
        let out = Tensor::from_vec(y, self.shape())?;
        // The node's inputs are [input, weight, bias] when affine, as PyTorch's.
        let mut inputs = vec![self];
        inputs.extend(args.weight);
        inputs.extend(args.bias);
        let (weight, has_bias) = (args.weight, args.bias.is_some());
        let shape = self.shape().to_vec();
        Ok(record(out, &inputs, || {
            let mut saved = vec![Some(SavedTensor::new(self))];
            saved.extend(weight.map(|w| Some(SavedTensor::new(w))));
            (
                Op::Custom(Box::new(BatchNormBackward {
                    stats,
                    training: args.training,
                    shape,
                    has_weight: weight.is_some(),
                    has_bias,
                })),
                saved,
            )
        }))
    }
}
