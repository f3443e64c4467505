//! The functional forms of LANGUAGE.md §7 (`torch.nn.functional`): `conv2d(x, w, ...)`,
//! pooling, activations, resampling, `batch_norm`, `cat`, `stack`, `matmul` and the losses.

use super::spatial::{self, SpatialSpans, Window};
use super::{Args, BuiltinDef, BuiltinParam as P, DefaultValue as D, Ty};
use crate::builtins::args::tensor_list;
use crate::eval::{EvalResult, Interpreter, RuntimeError, Value};
use crate::source::Span;
use crate::tensor::ops::nn::{BatchNormArgs, InterpolateMode, InterpolateSize};
use crate::tensor::shape::SpatialOp;
use crate::tensor::{Tensor, TensorError};

/// The span of the argument called `name` when the call wrote it (not defaulted).
pub(super) fn written(args: &Args, name: &str) -> Option<Span> {
    let i = args.def.params.iter().position(|p| p.name == name)?;
    let span = args.span(i);
    (span != args.call).then_some(span)
}

/// Runs a tensor op at the call's site and reports its error there.
pub(super) fn run_op(
    interp: &mut Interpreter,
    span: Span,
    op: impl FnOnce() -> Result<Tensor, TensorError>,
) -> EvalResult<Value> {
    interp.at(span);
    op().map(Value::Tensor)
        .map_err(|e| interp.tensor_err(e, span))
}

pub(super) const CONV2D: BuiltinDef = BuiltinDef {
    name: "conv2d",
    params: &[
        P::required("input", Ty::Tensor),
        P::required("weight", Ty::Tensor),
        P::optional("bias", Ty::Tensor, D::None),
        P::optional("stride", Ty::Pair, D::Int(1)),
        P::optional("padding", Ty::Padding, D::Int(0)),
        P::optional("dilation", Ty::Pair, D::Int(1)),
        P::optional("groups", Ty::Int, D::Int(1)),
    ],
    rest: None,
    doc: "conv2d(input, weight, bias=none, stride=1, padding=0, dilation=1, groups=1): 2-D convolution",
    run: |interp, args| {
        let arg = |name: &str| {
            written(
                &args,
                if name == "kernel_size" {
                    "weight"
                } else {
                    name
                },
            )
        };
        let spans = SpatialSpans {
            call: args.call,
            input: args.span(0),
            layer: None,
            arg: &arg,
        };
        let padding = spatial::padding_arg(args.value(4), args.span(4), args.describe(4))?;
        let out = spatial::conv2d(
            interp,
            &args.tensor(0)?,
            &args.tensor(1)?,
            args.opt_tensor(2)?.as_ref(),
            args.pair(3)?,
            padding,
            args.pair(5)?,
            args.int(6)?,
            &spans,
        )?;
        Ok(Value::Tensor(out))
    },
};

pub(super) const CONV_TRANSPOSE2D: BuiltinDef = BuiltinDef {
    name: "conv_transpose2d",
    params: &[
        P::required("input", Ty::Tensor),
        P::required("weight", Ty::Tensor),
        P::optional("bias", Ty::Tensor, D::None),
        P::optional("stride", Ty::Pair, D::Int(1)),
        P::optional("padding", Ty::Pair, D::Int(0)),
        P::optional("output_padding", Ty::Pair, D::Int(0)),
        P::optional("groups", Ty::Int, D::Int(1)),
        P::optional("dilation", Ty::Pair, D::Int(1)),
    ],
    rest: None,
    doc: "conv_transpose2d(input, weight, bias=none, stride=1, padding=0, output_padding=0, groups=1, dilation=1)",
    run: |interp, args| {
        let arg = |name: &str| {
            written(
                &args,
                if name == "kernel_size" {
                    "weight"
                } else {
                    name
                },
            )
        };
        let spans = SpatialSpans {
            call: args.call,
            input: args.span(0),
            layer: None,
            arg: &arg,
        };
        let out = spatial::conv_transpose2d(
            interp,
            &args.tensor(0)?,
            &args.tensor(1)?,
            args.opt_tensor(2)?.as_ref(),
            args.pair(3)?,
            args.pair(4)?,
            args.pair(5)?,
            args.int(6)?,
            args.pair(7)?,
            &spans,
        )?;
        Ok(Value::Tensor(out))
    },
};

pub(super) const LINEAR: BuiltinDef = BuiltinDef {
    name: "linear",
    params: &[
        P::required("input", Ty::Tensor),
        P::required("weight", Ty::Tensor),
        P::optional("bias", Ty::Tensor, D::None),
    ],
    rest: None,
    doc: "linear(input, weight, bias=none): input @ weight.T + bias",
    run: |interp, args| {
        let (x, w, b) = (args.tensor(0)?, args.tensor(1)?, args.opt_tensor(2)?);
        run_op(interp, args.call, || x.linear(&w, b.as_ref()))
    },
};

/// The window of `max_pool2d(...)` / `avg_pool2d(...)` from its arguments; `stride` none
/// means the kernel size, as in PyTorch.
fn pool_window(args: &Args, op: SpatialOp) -> EvalResult<Window> {
    let kernel = args.pair(1)?;
    let stride = match args.value(2) {
        Value::None => kernel,
        _ => args.pair(2)?,
    };
    let padding = args.pair(3)?;
    Ok(if op == SpatialOp::MaxPool2d {
        Window::Pool {
            op,
            kernel,
            stride,
            padding,
            dilation: args.pair(4)?,
            ceil_mode: args.bool(5)?,
            count_include_pad: true,
        }
    } else {
        Window::Pool {
            op,
            kernel,
            stride,
            padding,
            dilation: [1, 1],
            ceil_mode: args.bool(4)?,
            count_include_pad: args.bool(5)?,
        }
    })
}

fn pool(interp: &mut Interpreter, args: Args, op: SpatialOp) -> EvalResult<Value> {
    let window = pool_window(&args, op)?;
    let arg = |name: &str| written(&args, name);
    let spans = SpatialSpans {
        call: args.call,
        input: args.span(0),
        layer: None,
        arg: &arg,
    };
    spatial::pool2d(interp, &args.tensor(0)?, &window, &spans).map(Value::Tensor)
}

pub(super) const MAX_POOL2D: BuiltinDef = BuiltinDef {
    name: "max_pool2d",
    params: &[
        P::required("input", Ty::Tensor),
        P::required("kernel_size", Ty::Pair),
        P::optional("stride", Ty::Pair, D::None),
        P::optional("padding", Ty::Pair, D::Int(0)),
        P::optional("dilation", Ty::Pair, D::Int(1)),
        P::optional("ceil_mode", Ty::Bool, D::Bool(false)),
    ],
    rest: None,
    doc: "max_pool2d(input, kernel_size, stride=kernel_size, padding=0, dilation=1, ceil_mode=false)",
    run: |interp, args| pool(interp, args, SpatialOp::MaxPool2d),
};

pub(super) const AVG_POOL2D: BuiltinDef = BuiltinDef {
    name: "avg_pool2d",
    params: &[
        P::required("input", Ty::Tensor),
        P::required("kernel_size", Ty::Pair),
        P::optional("stride", Ty::Pair, D::None),
        P::optional("padding", Ty::Pair, D::Int(0)),
        P::optional("ceil_mode", Ty::Bool, D::Bool(false)),
        P::optional("count_include_pad", Ty::Bool, D::Bool(true)),
    ],
    rest: None,
    doc: "avg_pool2d(input, kernel_size, stride=kernel_size, padding=0, ceil_mode=false, count_include_pad=true)",
    run: |interp, args| pool(interp, args, SpatialOp::AvgPool2d),
};

pub(super) const SOFTMAX: BuiltinDef = BuiltinDef {
    name: "softmax",
    params: &[
        P::required("input", Ty::Tensor),
        P::required("dim", Ty::Int),
    ],
    rest: None,
    doc: "softmax(x, dim): exp(x) normalised to sum to 1 along dim",
    run: |interp, args| {
        let (x, dim) = (args.tensor(0)?, args.int(1)?);
        run_op(interp, args.call, || x.softmax(dim))
    },
};

pub(super) const LOG_SOFTMAX: BuiltinDef = BuiltinDef {
    name: "log_softmax",
    params: &[
        P::required("input", Ty::Tensor),
        P::required("dim", Ty::Int),
    ],
    rest: None,
    doc: "log_softmax(x, dim): log(softmax(x, dim)), computed stably",
    run: |interp, args| {
        let (x, dim) = (args.tensor(0)?, args.int(1)?);
        run_op(interp, args.call, || x.log_softmax(dim))
    },
};

pub(super) const DROPOUT: BuiltinDef = BuiltinDef {
    name: "dropout",
    params: &[
        P::required("input", Ty::Tensor),
        P::optional("p", Ty::Number, D::Float(0.5)),
        P::optional("training", Ty::Bool, D::Bool(true)),
    ],
    rest: None,
    doc: "dropout(x, p=0.5, training=true): zero elements with probability p, scale the rest by 1/(1-p)",
    run: |interp, args| {
        let (x, p, training) = (args.tensor(0)?, args.float(1)?, args.bool(2)?);
        run_op(interp, args.call, || x.dropout(p, training))
    },
};

pub(super) const BATCH_NORM: BuiltinDef = BuiltinDef {
    name: "batch_norm",
    params: &[
        P::required("input", Ty::Tensor),
        P::required("running_mean", Ty::Tensor),
        P::required("running_var", Ty::Tensor),
        P::optional("weight", Ty::Tensor, D::None),
        P::optional("bias", Ty::Tensor, D::None),
        P::optional("training", Ty::Bool, D::Bool(false)),
        P::optional("momentum", Ty::Number, D::Float(0.1)),
        P::optional("eps", Ty::Number, D::Float(1e-5)),
    ],
    rest: None,
    doc: "batch_norm(input, running_mean, running_var, weight=none, bias=none, training=false, momentum=0.1, eps=1e-5)",
    run: |interp, args| {
        let x = args.tensor(0)?;
        let (rm, rv) = (args.opt_tensor(1)?, args.opt_tensor(2)?);
        let (w, b) = (args.opt_tensor(3)?, args.opt_tensor(4)?);
        let (training, momentum, eps) = (args.bool(5)?, args.float(6)?, args.float(7)?);
        run_op(interp, args.call, || {
            x.batch_norm(BatchNormArgs {
                running_mean: rm.as_ref(),
                running_var: rv.as_ref(),
                weight: w.as_ref(),
                bias: b.as_ref(),
                training,
                momentum,
                eps,
            })
        })
    },
};

pub(super) const PIXEL_SHUFFLE: BuiltinDef = BuiltinDef {
    name: "pixel_shuffle",
    params: &[
        P::required("input", Ty::Tensor),
        P::required("upscale_factor", Ty::Int),
    ],
    rest: None,
    doc: "pixel_shuffle(x, r): [N, C*r*r, H, W] -> [N, C, H*r, W*r]",
    run: |interp, args| {
        let x = args.tensor(0)?;
        let r = positive(&args, 1)?;
        run_op(interp, args.call, || x.pixel_shuffle(r))
    },
};

/// Argument `i` as a size of at least 1.
pub(super) fn positive(args: &Args, i: usize) -> EvalResult<usize> {
    let n = args.int(i)?;
    usize::try_from(n).ok().filter(|&n| n >= 1).ok_or_else(|| {
        crate::eval::tensor_error::TensorDiagnostic::new(
            crate::eval::tensor_error::TensorCode::InvalidConfig,
            format!("{} must be at least 1, got {n}", args.describe(i)),
            args.span(i),
            "not positive",
        )
        .boxed()
    })
}

/// `size=` / `scale_factor=` / `mode=` of `interpolate` and `Upsample`, from values.
pub(super) fn interpolate_args(
    args: &Args,
    size_at: usize,
) -> EvalResult<(InterpolateSize, InterpolateMode)> {
    let size = match (args.value(size_at), args.value(size_at + 1)) {
        (Value::None, Value::None) => {
            return Err(Box::new(RuntimeError::value_with_help(
                format!("`{}` needs `size` or `scale_factor`", args.def.name),
                args.call,
                "neither given",
                "e.g. scale_factor=2, or size=[64, 64]",
            )));
        }
        (Value::None, _) => InterpolateSize::Scale(args.float_pair(size_at + 1)?),
        (_, Value::None) => {
            let [h, w] = args.pair(size_at)?;
            let to_size = |v: i64| {
                usize::try_from(v).map_err(|_| {
                    Box::new(RuntimeError::value(
                        "sizes cannot be negative",
                        args.span(size_at),
                        "negative",
                    ))
                })
            };
            InterpolateSize::Size([to_size(h)?, to_size(w)?])
        }
        _ => {
            return Err(Box::new(RuntimeError::value(
                format!(
                    "`{}` takes `size` or `scale_factor`, not both",
                    args.def.name
                ),
                args.span(size_at + 1),
                "given with size",
            )));
        }
    };
    let mode = match args.value(size_at + 2) {
        Value::Str(s) if &**s == "nearest" => InterpolateMode::Nearest,
        Value::Str(s) if &**s == "bilinear" => InterpolateMode::Bilinear,
        other => {
            return Err(Box::new(
                RuntimeError::value(
                    format!("unsupported interpolation mode {}", other.repr()),
                    args.span(size_at + 2),
                    "unknown mode",
                )
                .with_help("mode is \"nearest\" or \"bilinear\""),
            ));
        }
    };
    Ok((size, mode))
}

pub(super) const INTERPOLATE: BuiltinDef = BuiltinDef {
    name: "interpolate",
    params: &[
        P::required("input", Ty::Tensor),
        P::optional("size", Ty::Any, D::None),
        P::optional("scale_factor", Ty::Any, D::None),
        P::optional("mode", Ty::Str, D::Str("nearest")),
    ],
    rest: None,
    doc: "interpolate(x, size=none, scale_factor=none, mode=\"nearest\"): resample [N, C, H, W] (also \"bilinear\")",
    run: |interp, args| {
        let x = args.tensor(0)?;
        let (size, mode) = interpolate_args(&args, 1)?;
        run_op(interp, args.call, || x.interpolate(size, mode))
    },
};

pub(super) const CAT: BuiltinDef = BuiltinDef {
    name: "cat",
    params: &[
        P::required("tensors", Ty::Any),
        P::optional("dim", Ty::Int, D::Int(0)),
    ],
    rest: None,
    doc: "cat(tensors, dim=0): join tensors along an existing dim",
    run: |interp, args| {
        let list = tensor_list(args.value(0), args.span(0), &args.describe(0))?;
        let dim = args.int(1)?;
        run_op(interp, args.call, || Tensor::cat(&list, dim))
    },
};

pub(super) const STACK: BuiltinDef = BuiltinDef {
    name: "stack",
    params: &[
        P::required("tensors", Ty::Any),
        P::optional("dim", Ty::Int, D::Int(0)),
    ],
    rest: None,
    doc: "stack(tensors, dim=0): join equal-shaped tensors along a new dim",
    run: |interp, args| {
        let list = tensor_list(args.value(0), args.span(0), &args.describe(0))?;
        let dim = args.int(1)?;
        run_op(interp, args.call, || Tensor::stack(&list, dim))
    },
};

pub(super) const MATMUL: BuiltinDef = BuiltinDef {
    name: "matmul",
    params: &[
        P::required("input", Ty::Tensor),
        P::required("other", Ty::Tensor),
    ],
    rest: None,
    doc: "matmul(a, b): matrix product with batching and broadcasting (a @ b)",
    run: |interp, args| {
        let (a, b) = (args.tensor(0)?, args.tensor(1)?);
        run_op(interp, args.call, || a.matmul(&b))
    },
};

macro_rules! loss {
    ($name:literal, $doc:literal, $method:ident) => {
        BuiltinDef {
            name: $name,
            params: &[
                P::required("input", Ty::Tensor),
                P::required("target", Ty::Tensor),
            ],
            rest: None,
            doc: $doc,
            run: |interp, args| {
                let (x, t) = (args.tensor(0)?, args.tensor(1)?);
                let result = run_op(interp, args.call, || x.$method(&t));
                result.map_err(|mut e| {
                    // Shapes that do not fit are the arguments' fault: label both.
                    if let crate::eval::RuntimeError::Tensor(d) = &mut *e {
                        **d = d
                            .as_ref()
                            .clone()
                            .on_loss_operands((args.span(0), x.shape()), (args.span(1), t.shape()));
                    }
                    e
                })
            },
        }
    };
}

pub(super) const MSE_LOSS: BuiltinDef = loss!(
    "mse_loss",
    "mse_loss(input, target): mean of (input - target)^2",
    mse_loss
);
pub(super) const L1_LOSS: BuiltinDef = loss!(
    "l1_loss",
    "l1_loss(input, target): mean of |input - target|",
    l1_loss
);
pub(super) const CROSS_ENTROPY: BuiltinDef = loss!(
    "cross_entropy",
    "cross_entropy(logits, target): mean negative log-likelihood of class indices [N] under softmax(logits [N, C])",
    cross_entropy
);
pub(super) const BCE_WITH_LOGITS: BuiltinDef = loss!(
    "binary_cross_entropy_with_logits",
    "binary_cross_entropy_with_logits(input, target): mean binary cross-entropy of sigmoid(input)",
    binary_cross_entropy_with_logits
);

pub(super) const CONV_MATRIX: BuiltinDef = BuiltinDef {
    name: "conv_matrix",
    params: &[
        P::required("weight", Ty::Tensor),
        P::required("size", Ty::Pair),
        P::optional("stride", Ty::Pair, D::Int(1)),
        P::optional("padding", Ty::Padding, D::Int(0)),
        P::optional("dilation", Ty::Pair, D::Int(1)),
        P::optional("groups", Ty::Int, D::Int(1)),
    ],
    rest: None,
    doc: "conv_matrix(weight, [H, W], stride=1, padding=0, dilation=1, groups=1): the matrix C with conv2d(x, w).flatten() == C @ x.flatten()",
    run: conv_matrix,
};

/// The convolution's matrix, column by column: the convolution of each one-hot input
/// (one batch of `C_in*H*W` basis images) is one column, so `C` is exactly what `conv2d`
/// computes, and differentiable in the weight.
fn conv_matrix(interp: &mut Interpreter, args: Args) -> EvalResult<Value> {
    let w = args.tensor(0)?;
    let [h, wd] = args.pair(1)?;
    let groups = args.int(5)?;
    let in_channels = w.shape().get(1).copied().unwrap_or(0) as u128 * groups.max(1) as u128;
    let (Ok(h), Ok(wd), Ok(c)) = (
        usize::try_from(h),
        usize::try_from(wd),
        usize::try_from(in_channels),
    ) else {
        return Err(Box::new(RuntimeError::value(
            "conv_matrix: sizes cannot be negative",
            args.span(1),
            "negative size",
        )));
    };
    interp.at(args.call);
    let n = crate::tensor::storage::checked_numel("conv_matrix", &[c, h, wd])
        .map_err(|e| interp.tensor_err(e, args.call))?;
    let basis = Tensor::eye(n, n)
        .and_then(|e| e.reshape(&[n as i64, c as i64, h as i64, wd as i64]))
        .map_err(|e| interp.tensor_err(e, args.call))?;
    let arg = |name: &str| {
        written(
            &args,
            if name == "kernel_size" {
                "weight"
            } else {
                name
            },
        )
    };
    let spans = SpatialSpans {
        call: args.call,
        input: args.span(1),
        layer: None,
        arg: &arg,
    };
    let padding = spatial::padding_arg(args.value(3), args.span(3), args.describe(3))?;
    let columns = spatial::conv2d(
        interp,
        &basis,
        &w,
        None,
        args.pair(2)?,
        padding,
        args.pair(4)?,
        groups,
        &spans,
    )?;
    run_op(interp, args.call, || {
        columns.reshape(&[n as i64, -1])?.t()?.contiguous()
    })
}
