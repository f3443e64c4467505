//! Convolution, transposed convolution and pooling as the language runs them, shared by the
//! functional forms (`conv2d(x, w)`) and the layers (`Conv2d(1, 8, 3)(x)`): argument
//! conversion, `padding="same"`, and the diagnostics for shapes that do not fit, with the
//! formula that failed, the numbers substituted, and the largest or smallest value that
//! would work (LANGUAGE.md §1, §7, §10).

use crate::eval::tensor_error::{TensorCode, TensorDiagnostic};
use crate::eval::{EvalResult, Interpreter, RuntimeError, Value};
use crate::source::Span;
use crate::tensor::ops::conv::{Conv2dParams, ConvTranspose2dParams};
use crate::tensor::ops::nn::MaxPool2dParams;
use crate::tensor::ops::pool::AvgPool2dParams;
use crate::tensor::shape::{self, ShapeError, SpatialOp};
use crate::tensor::{Tensor, TensorError};

/// Where a spatial op was written, for labels.
pub struct SpatialSpans<'a> {
    /// The failing call (`conv(x)` or `conv2d(x, w)`).
    pub call: Span,
    /// The input argument.
    pub input: Span,
    /// Where the layer was built, for a layer.
    pub layer: Option<Span>,
    /// The span of a named configuration argument (`padding=2`), if it was written.
    pub arg: &'a dyn Fn(&str) -> Option<Span>,
}

/// A window op's configuration, per axis `[h, w]`, as written (not yet validated).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Window {
    /// `Conv2d` / `conv2d`.
    Conv {
        /// Kernel size (from the weight).
        kernel: [i64; 2],
        /// Stride.
        stride: [i64; 2],
        /// Padding (both sides).
        padding: [i64; 2],
        /// Dilation.
        dilation: [i64; 2],
        /// Groups.
        groups: i64,
    },
    /// `ConvTranspose2d` / `conv_transpose2d`.
    Transposed {
        /// Kernel size (from the weight).
        kernel: [i64; 2],
        /// Stride.
        stride: [i64; 2],
        /// Padding cropped from each side.
        padding: [i64; 2],
        /// Output padding added at the end.
        output_padding: [i64; 2],
        /// Dilation.
        dilation: [i64; 2],
        /// Groups.
        groups: i64,
    },
    /// `MaxPool2d` / `AvgPool2d` (dilation 1 for average pooling).
    Pool {
        /// Which pool.
        op: SpatialOp,
        /// Window size.
        kernel: [i64; 2],
        /// Stride.
        stride: [i64; 2],
        /// Padding.
        padding: [i64; 2],
        /// Dilation.
        dilation: [i64; 2],
        /// Round the output size up.
        ceil_mode: bool,
        /// Average pooling's divisor rule.
        count_include_pad: bool,
    },
}

/// The largest kernel size, stride, padding, dilation or group count accepted: far beyond
/// any real layer, and small enough that the size formulas cannot overflow.
pub(crate) const LARGEST_ARGUMENT: i64 = 1 << 30;

/// `padding="same"` / `"valid"` or numbers, for convolutions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Padding {
    /// Explicit `[h, w]`.
    Explicit([i64; 2]),
    /// Output size equal to the input's (stride 1 only).
    Same,
}

/// A `padding` argument: an int, a pair, `"same"` or `"valid"`.
pub fn padding_arg(value: &Value, span: Span, what: String) -> EvalResult<Padding> {
    match value {
        Value::Str(s) if &**s == "same" => Ok(Padding::Same),
        Value::Str(s) if &**s == "valid" => Ok(Padding::Explicit([0, 0])),
        Value::Int(n) => Ok(Padding::Explicit([*n, *n])),
        Value::List(items) => match items.as_ref() {
            [Value::Int(h), Value::Int(w)] => Ok(Padding::Explicit([*h, *w])),
            _ => Err(bad_padding(value, span, what)),
        },
        _ => Err(bad_padding(value, span, what)),
    }
}

fn bad_padding(value: &Value, span: Span, what: String) -> Box<RuntimeError> {
    Box::new(
        RuntimeError::wrong_type(
            what,
            "an int, a list [h, w], \"same\" or \"valid\"",
            value.type_name(),
            span,
        )
        .with_help("padding=\"same\" keeps the size (stride 1), \"valid\" is no padding"),
    )
}

fn usize_pair(values: [i64; 2]) -> [usize; 2] {
    values.map(|v| usize::try_from(v).unwrap_or(0))
}

fn axis_name(axis: usize) -> &'static str {
    if axis == 0 { "H" } else { "W" }
}

fn x_by(values: [i64; 2]) -> String {
    format!("{} x {}", values[0], values[1])
}

impl Window {
    fn op(&self) -> SpatialOp {
        match self {
            Window::Conv { .. } => SpatialOp::Conv2d,
            Window::Transposed { .. } => SpatialOp::ConvTranspose2d,
            Window::Pool { op, .. } => *op,
        }
    }

    /// Every numeric argument with its name, for the range check.
    fn arguments(&self) -> Vec<(&'static str, i64)> {
        let mut out = Vec::new();
        let mut pair = |name: &'static str, p: [i64; 2]| out.extend(p.map(|v| (name, v)));
        match *self {
            Window::Conv {
                kernel,
                stride,
                padding,
                dilation,
                groups,
            } => {
                pair("kernel_size", kernel);
                pair("stride", stride);
                pair("padding", padding);
                pair("dilation", dilation);
                pair("groups", [groups, groups]);
            }
            Window::Transposed {
                kernel,
                stride,
                padding,
                output_padding,
                dilation,
                groups,
            } => {
                pair("kernel_size", kernel);
                pair("stride", stride);
                pair("padding", padding);
                pair("output_padding", output_padding);
                pair("dilation", dilation);
                pair("groups", [groups, groups]);
            }
            Window::Pool {
                kernel,
                stride,
                padding,
                dilation,
                ..
            } => {
                pair("kernel_size", kernel);
                pair("stride", stride);
                pair("padding", padding);
                pair("dilation", dilation);
            }
        }
        out
    }

    /// Checks what must hold before the sizes are converted for the kernels (strides,
    /// dilations and kernels at least 1, paddings not negative), so a bad value is reported
    /// as the configuration error it is.
    fn validate(&self) -> Result<(), ShapeError> {
        let op = self.op();
        let (kernel, stride, padding, dilation) = match *self {
            Window::Conv {
                kernel,
                stride,
                padding,
                dilation,
                ..
            }
            | Window::Transposed {
                kernel,
                stride,
                padding,
                dilation,
                ..
            }
            | Window::Pool {
                kernel,
                stride,
                padding,
                dilation,
                ..
            } => (kernel, stride, padding, dilation),
        };
        for axis in 0..2 {
            shape::check_window(
                op,
                kernel[axis],
                stride[axis],
                padding[axis],
                dilation[axis],
            )?;
            if let Window::Transposed { output_padding, .. } = self {
                shape::check_output_padding(output_padding[axis], stride[axis], dilation[axis])?;
            }
            if let Window::Pool { .. } = self {
                shape::check_pool_padding(op, kernel[axis], padding[axis], dilation[axis])?;
            }
        }
        Ok(())
    }

    /// The output size along `axis` for input size `input`, unchecked (may be below 1).
    fn output_size(&self, axis: usize, input: i64) -> i64 {
        match *self {
            Window::Conv {
                kernel,
                stride,
                padding,
                dilation,
                ..
            } => shape::conv_output_size(
                input,
                kernel[axis],
                stride[axis],
                padding[axis],
                dilation[axis],
            ),
            Window::Transposed {
                kernel,
                stride,
                padding,
                output_padding,
                dilation,
                ..
            } => shape::conv_transpose_output_size(
                input,
                kernel[axis],
                stride[axis],
                padding[axis],
                output_padding[axis],
                dilation[axis],
            ),
            Window::Pool {
                kernel,
                stride,
                padding,
                dilation,
                ceil_mode,
                ..
            } => shape::pool_output_size(
                input,
                kernel[axis],
                stride[axis],
                padding[axis],
                dilation[axis],
                ceil_mode,
            ),
        }
    }

    /// The formula for `axis` and the same with `input` substituted, two lines.
    fn formula(&self, axis: usize, input: i64) -> String {
        let a = axis_name(axis);
        let out = self.output_size(axis, input);
        match *self {
            Window::Conv {
                kernel: k,
                stride: s,
                padding: p,
                dilation: d,
                ..
            } => format!(
                "{a}_out = floor(({a}_in + 2*padding - dilation*(kernel_size - 1) - 1) / stride) + 1\n      = floor(({input} + 2*{} - {}*({} - 1) - 1) / {}) + 1 = {out}",
                p[axis], d[axis], k[axis], s[axis]
            ),
            Window::Transposed {
                kernel: k,
                stride: s,
                padding: p,
                output_padding: o,
                dilation: d,
                ..
            } => format!(
                "{a}_out = ({a}_in - 1)*stride - 2*padding + dilation*(kernel_size - 1) + output_padding + 1\n      = ({input} - 1)*{} - 2*{} + {}*({} - 1) + {} + 1 = {out}",
                s[axis], p[axis], d[axis], k[axis], o[axis]
            ),
            Window::Pool {
                kernel: k,
                stride: s,
                padding: p,
                dilation: d,
                ceil_mode,
                ..
            } => {
                let round = if ceil_mode { "ceil" } else { "floor" };
                format!(
                    "{a}_out = {round}(({a}_in + 2*padding - dilation*(kernel_size - 1) - 1) / stride) + 1\n      = {round}(({input} + 2*{} - {}*({} - 1) - 1) / {}) + 1 = {out}",
                    p[axis], d[axis], k[axis], s[axis]
                )
            }
        }
    }
}

/// E0301/E0302/E0303/E0311 for a spatial op, or the generic report for anything else.
fn spatial_diagnostic(
    interp: &Interpreter,
    err: TensorError,
    window: &Window,
    input_shape: &[usize],
    spans: &SpatialSpans<'_>,
) -> Box<RuntimeError> {
    let TensorError::Spatial(shape_error) = &err else {
        let mut report = interp.tensor_err(err, spans.call);
        if let (RuntimeError::Tensor(diag), Some(layer)) = (&mut *report, spans.layer) {
            diag.related
                .push((layer, "the layer was built here".into()));
        }
        return report;
    };
    let arg = |name: &str| (spans.arg)(name);
    let input_label = format!("input is {input_shape:?}");
    let spatial: Vec<i64> = input_shape
        .iter()
        .rev()
        .take(2)
        .rev()
        .map(|&d| i64::try_from(d).unwrap_or(i64::MAX))
        .collect();
    let hw = [
        spatial.first().copied().unwrap_or(0),
        spatial.get(1).copied().unwrap_or(0),
    ];
    let op_words = match window {
        Window::Conv { .. } => "convolution",
        Window::Transposed { .. } => "transposed convolution",
        Window::Pool {
            op: SpatialOp::MaxPool2d,
            ..
        } => "max pooling",
        Window::Pool { .. } => "average pooling",
    };
    let with_layer = |d: TensorDiagnostic| match spans.layer {
        Some(layer) => d.with_label(layer, "the layer was built here"),
        None => d,
    };
    let diag = match shape_error {
        ShapeError::OutputTooSmall { .. } => {
            let outs = [window.output_size(0, hw[0]), window.output_size(1, hw[1])];
            let axis = if outs[0] < 1 { 0 } else { 1 };
            let (code, fault, fault_label, fix) = match *window {
                Window::Transposed {
                    kernel: k,
                    stride: s,
                    padding: p,
                    output_padding: o,
                    dilation: d,
                    ..
                } => {
                    let full = |axis: usize| {
                        (hw[axis] - 1) * s[axis] + d[axis] * (k[axis] - 1) + 1 + o[axis]
                    };
                    let largest = (full(axis) - 1) / 2;
                    (
                        TensorCode::TransposedOutputEmpty,
                        "padding",
                        format!(
                            "padding {} crops {} rows from each side of a {} x {} result",
                            p[axis],
                            p[axis],
                            full(0),
                            full(1)
                        ),
                        format!("padding can be at most {largest} here"),
                    )
                }
                Window::Conv {
                    kernel: k,
                    padding: p,
                    dilation: d,
                    ..
                } => {
                    let extent = d[axis] * (k[axis] - 1) + 1;
                    let smallest = (extent - hw[axis] + 1) / 2;
                    (
                        TensorCode::ConvOutputEmpty,
                        "kernel_size",
                        format!(
                            "kernel {} spans {extent} {} but the padded input has {}",
                            x_by(k),
                            if axis == 0 { "rows" } else { "columns" },
                            hw[axis] + 2 * p[axis]
                        ),
                        format!(
                            "use padding of at least {smallest}, a smaller kernel, or a larger input"
                        ),
                    )
                }
                Window::Pool {
                    kernel: k,
                    padding: p,
                    dilation: d,
                    ..
                } => {
                    let extent = d[axis] * (k[axis] - 1) + 1;
                    (
                        TensorCode::ConvOutputEmpty,
                        "kernel_size",
                        format!(
                            "window {} spans {extent} but the padded input has {}",
                            x_by(k),
                            hw[axis] + 2 * p[axis]
                        ),
                        format!(
                            "use a window of at most {} here, or a larger input",
                            hw[axis] + 2 * p[axis]
                        ),
                    )
                }
            };
            // The argument at fault carries the main label; without one, the call does.
            let message = format!("{op_words} output would be {} x {}", outs[0], outs[1]);
            let d = match arg(fault) {
                Some(at) => TensorDiagnostic::new(code, message, at, fault_label),
                None => with_layer(TensorDiagnostic::new(
                    code,
                    message,
                    spans.call,
                    "the output would be empty",
                )),
            };
            d.with_label(spans.input, input_label)
                .with_help(format!("{}\n{fix}", window.formula(axis, hw[axis])))
        }
        ShapeError::ChannelMismatch {
            expected, actual, ..
        } => {
            let channels = |n: i64| format!("{n} channel{}", if n == 1 { "" } else { "s" });
            let mut d = TensorDiagnostic::new(
                TensorCode::ChannelMismatch,
                format!(
                    "channel mismatch: the {op_words} expects {}, the input has {actual}",
                    channels(*expected)
                ),
                spans.input,
                // The channel dim is the third from the end: 1 of [N, C, H, W], 0 of [C, H, W].
                format!(
                    "{input_label}: {} in dim {}",
                    channels(*actual),
                    input_shape.len().saturating_sub(3)
                ),
            );
            match arg("in_channels") {
                Some(at) => d = d.with_label(at, format!("in_channels is {expected}")),
                None if spans.layer.is_none() => {
                    if let Some(at) = arg("weight") {
                        d = d
                            .with_label(at, format!("this weight expects {}", channels(*expected)));
                    }
                }
                None => {}
            }
            let help = if spans.layer.is_some() {
                crate::diagnostic::layers::conv_in_channels_help(*actual)
            } else {
                "the weight's in_channels (times groups) must equal the input's channels (dim 1)"
                    .to_string()
            };
            with_layer(d).with_help(help)
        }
        ShapeError::UpscaleMismatch {
            channels,
            factor_squared,
            ..
        } => TensorDiagnostic::new(
            TensorCode::ChannelMismatch,
            shape_error.to_string(),
            spans.call,
            format!("{channels} channels"),
        )
        .with_label(spans.input, input_label)
        .with_help(format!(
            "the channels must be a multiple of {factor_squared}"
        )),
        other => {
            let (fault, label_text, help) = invalid_config_parts(other);
            let label = arg(fault).unwrap_or(spans.layer.unwrap_or(spans.call));
            // The engine's text starts with its op name; the message names the op in words.
            let text = other.to_string();
            let text = text
                .split_once(": ")
                .map_or(text.as_str(), |(_, rest)| rest);
            let mut d = TensorDiagnostic::new(
                TensorCode::InvalidConfig,
                format!("invalid {op_words}: {text}"),
                label,
                label_text,
            );
            if label != spans.call {
                d = d.with_label(spans.call, "used here");
            }
            if !help.is_empty() {
                d = d.with_help(help);
            }
            d
        }
    };
    diag.boxed()
}

/// E0311 for an invalid window before it reaches the engine.
pub fn check_window(
    interp: &Interpreter,
    window: &Window,
    spans: &SpatialSpans<'_>,
) -> EvalResult<()> {
    // The size formulas multiply these; bounding them keeps every product in range.
    for (name, value) in window.arguments() {
        if value > LARGEST_ARGUMENT {
            let at = (spans.arg)(name).unwrap_or(spans.call);
            return Err(TensorDiagnostic::new(
                TensorCode::InvalidConfig,
                format!("{name} {value} is too large (at most {LARGEST_ARGUMENT})"),
                at,
                "too large",
            )
            .boxed());
        }
    }
    window
        .validate()
        .map_err(|e| spatial_diagnostic(interp, TensorError::Spatial(e), window, &[], spans))
}

/// Pads `x` with zeros: `[top, bottom]` rows and `[left, right]` columns (for asymmetric
/// `padding="same"`). Differentiable: it is a `cat` with zero blocks.
fn zero_pad(x: &Tensor, rows: [usize; 2], cols: [usize; 2]) -> Result<Tensor, TensorError> {
    let mut out = x.clone();
    for (dim, [before, after]) in [(x.ndim() - 2, rows), (x.ndim() - 1, cols)] {
        let mut parts = Vec::new();
        let mut shape = out.shape().to_vec();
        if before > 0 {
            shape[dim] = before;
            parts.push(Tensor::zeros(&shape)?);
        }
        parts.push(out.clone());
        if after > 0 {
            shape[dim] = after;
            parts.push(Tensor::zeros(&shape)?);
        }
        if parts.len() > 1 {
            out = Tensor::cat(&parts, dim as i64)?;
        }
    }
    Ok(out)
}

/// A convolution of `x` with `weight` (and `bias`): `padding` may be `"same"`.
#[allow(clippy::too_many_arguments)]
pub fn conv2d(
    interp: &mut Interpreter,
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    stride: [i64; 2],
    padding: Padding,
    dilation: [i64; 2],
    groups: i64,
    spans: &SpatialSpans<'_>,
) -> EvalResult<Tensor> {
    let kernel = weight_kernel(weight);
    let (input, pad) = match padding {
        Padding::Explicit(p) => (x.clone(), p),
        Padding::Same => {
            if stride != [1, 1] {
                let at = (spans.arg)("padding").unwrap_or(spans.call);
                return Err(TensorDiagnostic::new(
                    TensorCode::InvalidConfig,
                    "padding=\"same\" needs stride 1",
                    at,
                    "not allowed with this stride",
                )
                .with_help("give the padding as numbers, or use stride=1")
                .boxed());
            }
            // PyTorch pads `total // 2` before and the rest after.
            let total = [0, 1].map(|a| dilation[a].max(0) * (kernel[a] - 1).max(0));
            let before = total.map(|t| t / 2);
            if total.iter().zip(&before).any(|(t, b)| t - b != *b) && x.ndim() >= 2 {
                let after = [total[0] - before[0], total[1] - before[1]];
                let rows = [0, after[0] - before[0]].map(|v| v as usize);
                let cols = [0, after[1] - before[1]].map(|v| v as usize);
                interp.at(spans.call);
                let padded =
                    zero_pad(x, rows, cols).map_err(|e| interp.tensor_err(e, spans.call))?;
                (padded, before)
            } else {
                (x.clone(), before)
            }
        }
    };
    let window = Window::Conv {
        kernel,
        stride,
        padding: pad,
        dilation,
        groups,
    };
    check_window(interp, &window, spans)?;
    let params = Conv2dParams {
        stride: usize_pair(stride),
        padding: usize_pair(pad),
        dilation: usize_pair(dilation),
        groups: usize::try_from(groups).unwrap_or(0),
    };
    interp.at(spans.call);
    input
        .conv2d(weight, bias, params)
        .map_err(|e| spatial_diagnostic(interp, e, &window, input.shape(), spans))
}

fn weight_kernel(weight: &Tensor) -> [i64; 2] {
    let shape = weight.shape();
    let n = shape.len();
    if n >= 2 {
        [shape[n - 2] as i64, shape[n - 1] as i64]
    } else {
        [1, 1]
    }
}

/// A transposed convolution.
#[allow(clippy::too_many_arguments)]
pub fn conv_transpose2d(
    interp: &mut Interpreter,
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    stride: [i64; 2],
    padding: [i64; 2],
    output_padding: [i64; 2],
    groups: i64,
    dilation: [i64; 2],
    spans: &SpatialSpans<'_>,
) -> EvalResult<Tensor> {
    let kernel = weight_kernel(weight);
    let window = Window::Transposed {
        kernel,
        stride,
        padding,
        output_padding,
        dilation,
        groups,
    };
    check_window(interp, &window, spans)?;
    let params = ConvTranspose2dParams {
        stride: usize_pair(stride),
        padding: usize_pair(padding),
        output_padding: usize_pair(output_padding),
        dilation: usize_pair(dilation),
        groups: usize::try_from(groups).unwrap_or(0),
    };
    interp.at(spans.call);
    x.conv_transpose2d(weight, bias, params)
        .map_err(|e| spatial_diagnostic(interp, e, &window, x.shape(), spans))
}

/// Max or average pooling as described by `window` (a [`Window::Pool`]).
pub fn pool2d(
    interp: &mut Interpreter,
    x: &Tensor,
    window: &Window,
    spans: &SpatialSpans<'_>,
) -> EvalResult<Tensor> {
    check_window(interp, window, spans)?;
    let Window::Pool {
        op,
        kernel,
        stride,
        padding,
        dilation,
        ceil_mode,
        count_include_pad,
    } = *window
    else {
        return Ok(x.clone());
    };
    interp.at(spans.call);
    let result = if op == SpatialOp::MaxPool2d {
        x.max_pool2d(MaxPool2dParams {
            kernel: usize_pair(kernel),
            stride: usize_pair(stride),
            padding: usize_pair(padding),
            dilation: usize_pair(dilation),
            ceil_mode,
        })
    } else {
        x.avg_pool2d(AvgPool2dParams {
            kernel: usize_pair(kernel),
            stride: usize_pair(stride),
            padding: usize_pair(padding),
            ceil_mode,
            count_include_pad,
        })
    };
    result.map_err(|e| spatial_diagnostic(interp, e, window, x.shape(), spans))
}

/// The argument at fault, the label text and the help of an invalid window or channel
/// configuration (E0311): one wording for the run-time diagnostic and the checker's.
pub fn invalid_config_parts(other: &ShapeError) -> (&'static str, String, String) {
    let (fault, help) = match other {
        ShapeError::GroupsMismatch {
            groups,
            in_channels,
            out_channels,
            ..
        } => (
            "groups",
            groups_help(*groups, Some(*in_channels), *out_channels),
        ),
        ShapeError::OutputPaddingTooLarge {
            stride, dilation, ..
        } => (
            "output_padding",
            format!(
                "output_padding can be at most {} here (it must be smaller than stride or dilation)",
                (*stride).max(*dilation) - 1
            ),
        ),
        ShapeError::PoolPaddingTooLarge {
            effective_kernel, ..
        } => (
            "padding",
            format!(
                "padding can be at most {} here (half the window)",
                effective_kernel / 2
            ),
        ),
        ShapeError::NonPositiveStride { .. } => ("stride", "stride must be at least 1".into()),
        ShapeError::NonPositiveKernel { .. } => {
            ("kernel_size", "kernel_size must be at least 1".into())
        }
        ShapeError::NonPositiveDilation { .. } => {
            ("dilation", "dilation must be at least 1".into())
        }
        ShapeError::NegativePadding { .. } => ("padding", "padding must be 0 or more".into()),
        _ => ("", String::new()),
    };
    let label_text = match other {
        ShapeError::OutputPaddingTooLarge {
            output_padding,
            stride,
            dilation,
            ..
        } => format!(
            "output_padding {output_padding} is not below stride {stride} or dilation {dilation}"
        ),
        ShapeError::PoolPaddingTooLarge {
            padding,
            effective_kernel,
            ..
        } => {
            format!("padding {padding} is more than half the window of {effective_kernel}")
        }
        ShapeError::NonPositiveStride { stride: v, .. }
        | ShapeError::NonPositiveKernel { kernel: v, .. }
        | ShapeError::NonPositiveDilation { dilation: v, .. } => {
            format!("{v} is not allowed")
        }
        ShapeError::NegativePadding { padding, .. } => format!("{padding} is negative"),
        ShapeError::GroupsMismatch { .. } => "does not divide the channels".to_string(),
        _ => "not allowed here".to_string(),
    };
    (fault, label_text, help)
}

/// An op in words, as the E0311 messages name it: `invalid max pooling: ...`.
pub fn op_words(op: SpatialOp) -> &'static str {
    match op {
        SpatialOp::Conv2d => "convolution",
        SpatialOp::ConvTranspose2d => "transposed convolution",
        SpatialOp::MaxPool2d => "max pooling",
        SpatialOp::AvgPool2d => "average pooling",
        SpatialOp::Interpolate => "interpolation",
        SpatialOp::PixelShuffle => "pixel shuffle",
    }
}

/// What to do about `groups` that do not divide both channel counts: the groups values
/// that would.
pub fn groups_help(groups: i64, in_channels: Option<i64>, out_channels: i64) -> String {
    // The divisors of both counts are those of their gcd, found in pairs up to its square
    // root (bounded, so a count near 2**62 takes no time; beyond 2**32 the list may miss
    // some large divisors, which no real layer has).
    let gcd = |mut a: u64, mut b: u64| {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    };
    let out = out_channels.max(1).unsigned_abs();
    let common = in_channels.map_or(out, |i| gcd(i.unsigned_abs(), out));
    let (mut small, mut large) = (Vec::new(), Vec::new());
    let mut d: u64 = 1;
    while d <= 1 << 16 && d * d <= common {
        if common.is_multiple_of(d) {
            small.push(d);
            if d * d != common {
                large.push(common / d);
            }
        }
        d += 1;
    }
    let fits: Vec<String> = small
        .into_iter()
        .chain(large.into_iter().rev())
        .map(|g| g.to_string())
        .collect();
    let here = match in_channels {
        Some(i) => format!(
            "; here {i} % {groups} = {} and {out_channels} % {groups} = {}",
            i % groups.max(1),
            out_channels % groups.max(1)
        ),
        None => String::new(),
    };
    let choices = match fits.as_slice() {
        [one] => format!("groups can only be {one} here"),
        [init @ .., last] => format!("groups can be {} or {last} here", init.join(", ")),
        [] => String::new(),
    };
    format!("groups must divide both channel counts{here}\n{choices}")
}
