//! Output-size formulas for convolution, transposed convolution and pooling: the single
//! source of truth shared by the static checker and the kernels.
//!
//! The formulas are generic over a [`DimArith`] dim type, so the checker can evaluate them
//! on symbolic dims (`H` becomes `(H + 2*1 - 3)//1 + 1`, which it simplifies to `H`) while
//! the kernels evaluate them on `i64`. Only the *input* size is generic: kernel size, stride,
//! padding, dilation and output padding are layer arguments, always concrete.
//!
//! Validation helpers return [`ShapeError`], a small enum with named fields. It carries
//! numbers only: this module knows nothing of the language, its spans or its error codes;
//! the caller attaches those.

use std::fmt;
use std::ops::{Add, Mul, Sub};

/// Arithmetic a dim type needs for the output-size formulas.
///
/// Implemented for `i64` here; the checker implements it for its symbolic dims. Divisors are
/// always positive concrete integers (a stride), so `floor_div` and `ceil_div` never see a
/// symbolic or non-positive divisor.
pub trait DimArith:
    Clone + Add<i64, Output = Self> + Sub<i64, Output = Self> + Mul<i64, Output = Self>
{
    /// `floor(self / divisor)`, rounding towards negative infinity (Python's `//`), so a
    /// too-small input gives an output below 1 instead of rounding up to 1.
    /// Precondition: `divisor > 0`.
    fn floor_div(self, divisor: i64) -> Self;

    /// `ceil(self / divisor)`. Precondition: `divisor > 0`.
    fn ceil_div(self, divisor: i64) -> Self;
}

impl DimArith for i64 {
    fn floor_div(self, divisor: i64) -> Self {
        self.div_euclid(divisor)
    }

    fn ceil_div(self, divisor: i64) -> Self {
        -((-self).div_euclid(divisor))
    }
}

/// The extent a dilated kernel covers: `dilation * (kernel - 1) + 1`.
pub fn effective_kernel(kernel: i64, dilation: i64) -> i64 {
    dilation * (kernel - 1) + 1
}

/// Output size of `Conv2d` along one spatial dimension (also `MaxPool2d` without
/// `ceil_mode`, and `AvgPool2d` with `dilation = 1`):
///
/// `out = floor((in + 2*padding - dilation*(kernel - 1) - 1) / stride) + 1`
///
/// The input is padded on both sides, the dilated kernel covers
/// `dilation*(kernel - 1) + 1` positions, and it fits at every `stride`-th position.
/// A result below 1 means the kernel does not fit (see [`checked_conv_output_size`]).
pub fn conv_output_size<D: DimArith>(
    input: D,
    kernel: i64,
    stride: i64,
    padding: i64,
    dilation: i64,
) -> D {
    (input + (2 * padding - effective_kernel(kernel, dilation))).floor_div(stride) + 1
}

/// Output size of `ConvTranspose2d` along one spatial dimension:
///
/// `out = (in - 1)*stride - 2*padding + dilation*(kernel - 1) + output_padding + 1`
///
/// Every input position scatters a dilated kernel `stride` apart, so the full result spans
/// `(in - 1)*stride + dilation*(kernel - 1) + 1`; `padding` crops that much from each side
/// and `output_padding` adds rows back at the end (to pick among the input sizes a strided
/// `Conv2d` maps to the same output size).
pub fn conv_transpose_output_size<D: DimArith>(
    input: D,
    kernel: i64,
    stride: i64,
    padding: i64,
    output_padding: i64,
    dilation: i64,
) -> D {
    (input - 1) * stride + (effective_kernel(kernel, dilation) + output_padding - 2 * padding)
}

/// Output size of `MaxPool2d` / `AvgPool2d` (`dilation = 1`) along one spatial dimension.
///
/// Without `ceil_mode` this is [`conv_output_size`]. With `ceil_mode` PyTorch rounds up,
/// `out = ceil((in + 2p - d*(k-1) - 1) / s) + 1`, then drops the last window if it would
/// start at or beyond `in + p`, i.e. entirely inside the right padding (the last window must
/// start inside the input or the left padding).
///
/// Both conditions count the window starts `t*s` with
/// `t*s <= in + 2p - d*(k-1) - 1 + (s - 1)` (ceil rounding) and `t*s <= in + p - 1`
/// (start inside). Writing `e = d*(k-1) + 1 - p`, the second bound is
/// `in + 2p - d*(k-1) - 1 + (e - 1)`, so both together are one floor division:
///
/// `out = floor((in + 2p - d*(k-1) - 1 + min(s, e) - 1) / s) + 1`
///
/// which needs no conditional on the (possibly symbolic) input. It equals PyTorch's
/// decrement-once rule whenever the padding is valid (`p <= (d*(k-1) + 1) / 2`, see
/// [`check_pool_padding`]).
pub fn pool_output_size<D: DimArith>(
    input: D,
    kernel: i64,
    stride: i64,
    padding: i64,
    dilation: i64,
    ceil_mode: bool,
) -> D {
    let span = 2 * padding - effective_kernel(kernel, dilation);
    let round_up = if ceil_mode {
        let start_slack = effective_kernel(kernel, dilation) - padding;
        stride.min(start_slack) - 1
    } else {
        0
    };
    (input + (span + round_up)).floor_div(stride) + 1
}

/// Which operation a [`ShapeError`] comes from, so the caller can pick the diagnostic
/// (convolution and pooling share E0301, transposed convolution has E0302).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SpatialOp {
    /// `conv2d` / `Conv2d`.
    Conv2d,
    /// `conv_transpose2d` / `ConvTranspose2d`.
    ConvTranspose2d,
    /// `max_pool2d` / `MaxPool2d`.
    MaxPool2d,
    /// `avg_pool2d` / `AvgPool2d`.
    AvgPool2d,
    /// `interpolate` / `Upsample`.
    Interpolate,
    /// `pixel_shuffle` / `PixelShuffle`.
    PixelShuffle,
}

impl fmt::Display for SpatialOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SpatialOp::Conv2d => "conv2d",
            SpatialOp::ConvTranspose2d => "conv_transpose2d",
            SpatialOp::MaxPool2d => "max_pool2d",
            SpatialOp::AvgPool2d => "avg_pool2d",
            SpatialOp::Interpolate => "interpolate",
            SpatialOp::PixelShuffle => "pixel_shuffle",
        })
    }
}

/// A layer argument or input shape that the spatial ops reject.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    /// A kernel size below 1: `Conv2d(3, 8, 0)`.
    #[error("{op}: kernel_size must be at least 1, got {kernel}")]
    NonPositiveKernel {
        /// The operation.
        op: SpatialOp,
        /// The offending kernel size.
        kernel: i64,
    },
    /// A stride below 1: `MaxPool2d(2, stride=0)`.
    #[error("{op}: stride must be at least 1, got {stride}")]
    NonPositiveStride {
        /// The operation.
        op: SpatialOp,
        /// The offending stride.
        stride: i64,
    },
    /// A dilation below 1: `Conv2d(3, 8, 3, dilation=0)`.
    #[error("{op}: dilation must be at least 1, got {dilation}")]
    NonPositiveDilation {
        /// The operation.
        op: SpatialOp,
        /// The offending dilation.
        dilation: i64,
    },
    /// A negative padding or output padding: `Conv2d(3, 8, 3, padding=-1)`.
    #[error("{op}: padding must not be negative, got {padding}")]
    NegativePadding {
        /// The operation.
        op: SpatialOp,
        /// The offending padding.
        padding: i64,
    },
    /// The kernel does not fit: `conv2d` of a 2 x 2 input with a 3 x 3 kernel and no padding
    /// (E0301), or a transposed convolution cropping more than it produces (E0302).
    #[error("{op}: output size would be {output} for input size {input}")]
    OutputTooSmall {
        /// The operation.
        op: SpatialOp,
        /// The input size along the failing dimension.
        input: i64,
        /// The computed output size, below 1.
        output: i64,
    },
    /// `ConvTranspose2d(4, 4, 3, stride=2, output_padding=2)`: output padding must be smaller
    /// than stride or dilation.
    #[error(
        "{op}: output_padding ({output_padding}) must be smaller than stride ({stride}) or dilation ({dilation})"
    )]
    OutputPaddingTooLarge {
        /// The operation.
        op: SpatialOp,
        /// The offending output padding.
        output_padding: i64,
        /// The stride along the same dimension.
        stride: i64,
        /// The dilation along the same dimension.
        dilation: i64,
    },
    /// `Conv2d(6, 8, 3, groups=4)`: groups must be at least 1 and divide both channel counts.
    #[error(
        "{op}: groups ({groups}) must divide in_channels ({in_channels}) and out_channels ({out_channels})"
    )]
    GroupsMismatch {
        /// The operation.
        op: SpatialOp,
        /// The number of groups.
        groups: i64,
        /// Input channels.
        in_channels: i64,
        /// Output channels.
        out_channels: i64,
    },
    /// `MaxPool2d(2, padding=2)`: pooling padding must be at most half the effective kernel.
    #[error(
        "{op}: padding ({padding}) must be at most half the effective kernel size ({effective_kernel})"
    )]
    PoolPaddingTooLarge {
        /// The operation.
        op: SpatialOp,
        /// The offending padding.
        padding: i64,
        /// `dilation * (kernel - 1) + 1`.
        effective_kernel: i64,
    },
    /// The input's channel count is not what the weight expects: a `[N, 4, H, W]` input to a
    /// convolution whose weight is `[8, 3, 3, 3]`.
    #[error("{op}: expected {expected} input channels, got {actual}")]
    ChannelMismatch {
        /// The operation.
        op: SpatialOp,
        /// Channels the weight (times groups) expects.
        expected: i64,
        /// Channels the input has.
        actual: i64,
    },
    /// A bias whose length is not the number of output channels.
    #[error("{op}: bias has {actual} elements, expected {expected} (the output channels)")]
    BiasMismatch {
        /// The operation.
        op: SpatialOp,
        /// Output channels.
        expected: i64,
        /// Elements in the bias.
        actual: i64,
    },
    /// `pixel_shuffle(x, 3)` on an input whose channels are not a multiple of 9, or an
    /// upscale factor below 1.
    #[error("{op}: {channels} channels are not divisible by upscale_factor^2 = {factor_squared}")]
    UpscaleMismatch {
        /// The operation.
        op: SpatialOp,
        /// Input channels.
        channels: i64,
        /// `upscale_factor^2` (0 for an upscale factor of 0).
        factor_squared: i64,
    },
    /// An empty input or requested output: `interpolate(x, size=[0, 4])`.
    #[error("{op}: sizes must be at least 1, got {size}")]
    EmptySize {
        /// The operation.
        op: SpatialOp,
        /// The offending size.
        size: i64,
    },
    /// `adaptive_avg_pool2d(x, [0, 4])`: every output size must be at least 1.
    #[error("{op}: output_size must be at least 1 in each dimension, got {output_size:?}")]
    AdaptiveOutputSize {
        /// `"adaptive_avg_pool2d"` or `"adaptive_max_pool2d"`.
        op: &'static str,
        /// The requested `[height, width]`.
        output_size: [usize; 2],
    },
    /// Adaptive pooling of an input with an empty spatial dimension: `[1, 3, 0, 4]` has no
    /// element for any window.
    #[error("{op}: expected an input with non-empty spatial dimensions, got shape {shape:?}")]
    EmptySpatialInput {
        /// `"adaptive_avg_pool2d"` or `"adaptive_max_pool2d"`.
        op: &'static str,
        /// The input's shape.
        shape: Vec<usize>,
    },
    /// `GroupNorm(3, 8)`: the channels must split into `num_groups` equal groups.
    #[error(
        "{op}: num_groups ({num_groups}) must be at least 1 and divide the channels ({channels}) of an input of shape {shape:?}"
    )]
    GroupsNotDividingChannels {
        /// `"group_norm"`.
        op: &'static str,
        /// The number of groups asked for.
        num_groups: usize,
        /// The input's channels (dimension 1).
        channels: usize,
        /// The input's shape.
        shape: Vec<usize>,
    },
}

/// Checks the per-dimension window arguments every spatial op shares: kernel, stride and
/// dilation at least 1, padding not negative.
pub fn check_window(
    op: SpatialOp,
    kernel: i64,
    stride: i64,
    padding: i64,
    dilation: i64,
) -> Result<(), ShapeError> {
    if kernel < 1 {
        return Err(ShapeError::NonPositiveKernel { op, kernel });
    }
    if stride < 1 {
        return Err(ShapeError::NonPositiveStride { op, stride });
    }
    if dilation < 1 {
        return Err(ShapeError::NonPositiveDilation { op, dilation });
    }
    if padding < 0 {
        return Err(ShapeError::NegativePadding { op, padding });
    }
    Ok(())
}

/// Checks a transposed convolution's output padding: `0 <= output_padding < max(stride,
/// dilation)` (PyTorch's rule; a larger value would add rows no input position reaches).
pub fn check_output_padding(
    output_padding: i64,
    stride: i64,
    dilation: i64,
) -> Result<(), ShapeError> {
    let op = SpatialOp::ConvTranspose2d;
    if output_padding < 0 {
        return Err(ShapeError::NegativePadding {
            op,
            padding: output_padding,
        });
    }
    if output_padding >= stride.max(dilation) {
        return Err(ShapeError::OutputPaddingTooLarge {
            op,
            output_padding,
            stride,
            dilation,
        });
    }
    Ok(())
}

/// Checks that `groups >= 1` divides both channel counts.
pub fn check_groups(
    op: SpatialOp,
    groups: i64,
    in_channels: i64,
    out_channels: i64,
) -> Result<(), ShapeError> {
    if groups < 1 || in_channels % groups != 0 || out_channels % groups != 0 {
        return Err(ShapeError::GroupsMismatch {
            op,
            groups,
            in_channels,
            out_channels,
        });
    }
    Ok(())
}

/// Checks PyTorch's pooling rule `padding <= (dilation*(kernel - 1) + 1) / 2` (integer
/// division): every window must overlap the input, or a max pool would return `-inf`.
pub fn check_pool_padding(
    op: SpatialOp,
    kernel: i64,
    padding: i64,
    dilation: i64,
) -> Result<(), ShapeError> {
    let effective_kernel = effective_kernel(kernel, dilation);
    if padding > effective_kernel / 2 {
        return Err(ShapeError::PoolPaddingTooLarge {
            op,
            padding,
            effective_kernel,
        });
    }
    Ok(())
}

/// [`conv_output_size`] on concrete sizes, with the window arguments checked and an output
/// below 1 reported as [`ShapeError::OutputTooSmall`].
pub fn checked_conv_output_size(
    op: SpatialOp,
    input: i64,
    kernel: i64,
    stride: i64,
    padding: i64,
    dilation: i64,
) -> Result<i64, ShapeError> {
    check_window(op, kernel, stride, padding, dilation)?;
    at_least_one(
        op,
        input,
        conv_output_size(input, kernel, stride, padding, dilation),
    )
}

/// [`conv_transpose_output_size`] on concrete sizes, with the window arguments and the
/// output padding checked and an output below 1 reported.
pub fn checked_conv_transpose_output_size(
    input: i64,
    kernel: i64,
    stride: i64,
    padding: i64,
    output_padding: i64,
    dilation: i64,
) -> Result<i64, ShapeError> {
    let op = SpatialOp::ConvTranspose2d;
    check_window(op, kernel, stride, padding, dilation)?;
    check_output_padding(output_padding, stride, dilation)?;
    let output =
        conv_transpose_output_size(input, kernel, stride, padding, output_padding, dilation);
    at_least_one(op, input, output)
}

/// [`pool_output_size`] on concrete sizes, with the window arguments and the pooling padding
/// checked and an output below 1 reported.
pub fn checked_pool_output_size(
    op: SpatialOp,
    input: i64,
    kernel: i64,
    stride: i64,
    padding: i64,
    dilation: i64,
    ceil_mode: bool,
) -> Result<i64, ShapeError> {
    check_window(op, kernel, stride, padding, dilation)?;
    check_pool_padding(op, kernel, padding, dilation)?;
    let output = pool_output_size(input, kernel, stride, padding, dilation, ceil_mode);
    at_least_one(op, input, output)
}

fn at_least_one(op: SpatialOp, input: i64, output: i64) -> Result<i64, ShapeError> {
    if output < 1 {
        Err(ShapeError::OutputTooSmall { op, input, output })
    } else {
        Ok(output)
    }
}

/// Converts a kernel-side `usize` to `i64` for the formulas. Sizes of tensors that exist fit
/// in `i64`; a `usize` beyond that saturates, which the checks then reject as too large.
pub(crate) fn to_i64(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PyTorch's `pooling_output_shape`, transcribed with its conditional.
    fn pytorch_pool_output(input: i64, k: i64, s: i64, p: i64, d: i64, ceil: bool) -> i64 {
        let numerator = input + 2 * p - d * (k - 1) - 1 + if ceil { s - 1 } else { 0 };
        let mut out = numerator.div_euclid(s) + 1;
        if ceil && (out - 1) * s >= input + p {
            out -= 1;
        }
        out
    }

    #[test]
    fn pool_formula_matches_pytorch_rule_on_valid_arguments() {
        for input in 1..20 {
            for k in 1..6 {
                for s in 1..5 {
                    for d in 1..3 {
                        for p in 0..=effective_kernel(k, d) / 2 {
                            for ceil in [false, true] {
                                let ours = pool_output_size(input, k, s, p, d, ceil);
                                let theirs = pytorch_pool_output(input, k, s, p, d, ceil);
                                assert_eq!(ours, theirs, "in={input} k={k} s={s} p={p} d={d}");
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn floor_div_rounds_towards_negative_infinity() {
        assert_eq!((-1i64).floor_div(2), -1);
        assert_eq!((-4i64).floor_div(2), -2);
        assert_eq!(5i64.floor_div(2), 2);
        assert_eq!((-1i64).ceil_div(2), 0);
        assert_eq!(5i64.ceil_div(2), 3);
        assert_eq!(4i64.ceil_div(2), 2);
    }

    #[test]
    fn formulas_on_documented_examples() {
        // LANGUAGE.md §1: a 3x3 kernel on a 4x4 map gives 2; the transposed example gives -1.
        assert_eq!(conv_output_size(4i64, 3, 1, 0, 1), 2);
        assert_eq!(conv_transpose_output_size(2i64, 2, 1, 2, 0, 1), -1);
        assert_eq!(
            checked_conv_transpose_output_size(2, 2, 1, 2, 0, 1),
            Err(ShapeError::OutputTooSmall {
                op: SpatialOp::ConvTranspose2d,
                input: 2,
                output: -1
            })
        );
        // SRCNN's upsampler: kernel 4, stride 2, padding 1 doubles the size.
        assert_eq!(conv_transpose_output_size(32i64, 4, 2, 1, 0, 1), 64);
        assert_eq!(conv_output_size(2i64, 3, 1, 0, 1), 0);
    }

    #[test]
    fn validation_rejects_bad_arguments() {
        let op = SpatialOp::Conv2d;
        assert!(matches!(
            check_window(op, 3, 0, 0, 1),
            Err(ShapeError::NonPositiveStride { .. })
        ));
        assert!(matches!(
            check_window(op, 0, 1, 0, 1),
            Err(ShapeError::NonPositiveKernel { .. })
        ));
        assert!(matches!(
            check_window(op, 3, 1, 0, 0),
            Err(ShapeError::NonPositiveDilation { .. })
        ));
        assert!(matches!(
            check_window(op, 3, 1, -1, 1),
            Err(ShapeError::NegativePadding { .. })
        ));
        assert!(check_output_padding(1, 2, 1).is_ok());
        assert!(check_output_padding(1, 1, 2).is_ok());
        assert!(check_output_padding(2, 2, 1).is_err());
        assert!(check_output_padding(1, 1, 1).is_err());
        assert!(check_groups(op, 2, 4, 6).is_ok());
        assert!(check_groups(op, 4, 6, 8).is_err());
        assert!(check_groups(op, 0, 6, 8).is_err());
        let pool = SpatialOp::MaxPool2d;
        assert!(check_pool_padding(pool, 3, 1, 1).is_ok());
        assert!(check_pool_padding(pool, 2, 1, 1).is_ok());
        assert!(check_pool_padding(pool, 2, 2, 1).is_err());
        assert!(check_pool_padding(pool, 3, 2, 2).is_ok());
        assert_eq!(checked_pool_output_size(pool, 8, 3, 2, 0, 1, true), Ok(4));
    }
}
