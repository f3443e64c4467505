//! The layer constructors of LANGUAGE.md §7 in the builtin table: `Conv2d(...)` and friends
//! check their configuration (E0311 at the argument at fault) and build a [`Layer`].

use std::rc::Rc;

use super::layers::{Kind, Layer};
use super::nn::{interpolate_args, positive, written};
use super::spatial::{self, Padding, SpatialSpans, Window};
use super::{Args, BuiltinDef, BuiltinParam as P, DefaultValue as D, Ty};
use crate::eval::tensor_error::{TensorCode, TensorDiagnostic};
use crate::eval::{EvalResult, Interpreter, RuntimeError, Value};
use crate::tensor::shape::SpatialOp;

/// A size argument that may be `_`: `Some(n)` (n >= 1) or `None` to infer.
fn size_or_infer(args: &Args, i: usize) -> EvalResult<Option<i64>> {
    match args.value(i) {
        Value::Infer => Ok(None),
        Value::Int(_) => positive(args, i).map(|n| Some(n as i64)),
        other => Err(Box::new(RuntimeError::wrong_type(
            args.describe(i),
            "int or `_`",
            other.type_name(),
            args.span(i),
        ))),
    }
}

/// Builds the layer, drawing its parameters now when its input size is known.
fn build(interp: &Interpreter, kind: Kind, args: &Args, inputs: Option<i64>) -> EvalResult<Value> {
    let layer = Layer::new(kind, args, inputs);
    if let Some(n) = inputs {
        layer
            .initialise(n)
            .map_err(|e| interp.tensor_err(e, args.call))?;
    }
    Ok(Value::Layer(Rc::new(layer)))
}

/// E0311 when `groups` does not divide both channel counts (checked once `in` is known).
fn check_groups(
    args: &Args,
    op: SpatialOp,
    groups: i64,
    inputs: Option<i64>,
    outputs: i64,
) -> EvalResult<()> {
    if groups < 1 || inputs.is_some_and(|i| i % groups != 0) || outputs % groups.max(1) != 0 {
        let at = written(args, "groups").unwrap_or(args.call);
        return Err(TensorDiagnostic::new(
            TensorCode::InvalidConfig,
            format!(
                "invalid {op}: groups ({groups}) must divide in_channels ({}) and out_channels ({outputs})",
                inputs.map_or("_".to_string(), |i| i.to_string())
            ),
            at,
            "does not divide the channels",
        )
        .with_label(args.call, "in this layer")
        .with_help(super::spatial::groups_help(groups, inputs, outputs))
        .boxed());
    }
    Ok(())
}

fn conv(interp: &mut Interpreter, args: Args, transposed: bool) -> EvalResult<Value> {
    let inputs = size_or_infer(&args, 0)?;
    let out_channels = positive(&args, 1)? as i64;
    let kernel = args.pair(2)?;
    let stride = args.pair(3)?;
    let (padding, output_padding, groups, bias, dilation) = if transposed {
        (
            Padding::Explicit(args.pair(4)?),
            args.pair(5)?,
            args.int(6)?,
            args.bool(7)?,
            args.pair(8)?,
        )
    } else {
        (
            spatial::padding_arg(args.value(4), args.span(4), args.describe(4))?,
            [0, 0],
            args.int(6)?,
            args.bool(7)?,
            args.pair(5)?,
        )
    };
    let op = if transposed {
        SpatialOp::ConvTranspose2d
    } else {
        SpatialOp::Conv2d
    };
    check_groups(&args, op, groups, inputs, out_channels)?;
    let arg = |name: &str| written(&args, name);
    let spans = SpatialSpans {
        call: args.call,
        input: args.call,
        layer: None,
        arg: &arg,
    };
    let explicit = match padding {
        Padding::Explicit(p) => p,
        Padding::Same => [0, 0],
    };
    let window = if transposed {
        Window::Transposed {
            kernel,
            stride,
            padding: explicit,
            output_padding,
            dilation,
            groups,
        }
    } else {
        Window::Conv {
            kernel,
            stride,
            padding: explicit,
            dilation,
            groups,
        }
    };
    spatial::check_window(interp, &window, &spans)?;
    if padding == Padding::Same && stride != [1, 1] {
        let at = written(&args, "padding").unwrap_or(args.call);
        return Err(TensorDiagnostic::new(
            TensorCode::InvalidConfig,
            "padding=\"same\" needs stride 1",
            at,
            "not allowed with this stride",
        )
        .with_help("give the padding as numbers, or use stride=1")
        .boxed());
    }
    let kind = Kind::Conv {
        transposed,
        out_channels,
        kernel,
        stride,
        padding,
        output_padding,
        dilation,
        groups,
        bias,
    };
    build(interp, kind, &args, inputs)
}

pub(super) const CONV2D: BuiltinDef = BuiltinDef {
    name: "Conv2d",
    params: &[
        P::required("in_channels", Ty::SizeOrInfer),
        P::required("out_channels", Ty::Int),
        P::required("kernel_size", Ty::Pair),
        P::optional("stride", Ty::Pair, D::Int(1)),
        P::optional("padding", Ty::Padding, D::Int(0)),
        P::optional("dilation", Ty::Pair, D::Int(1)),
        P::optional("groups", Ty::Int, D::Int(1)),
        P::optional("bias", Ty::Bool, D::Bool(true)),
    ],
    rest: None,
    doc: "Conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=true): weight [out, in/groups, kH, kW]",
    run: |interp, args| conv(interp, args, false),
};

pub(super) const CONV_TRANSPOSE2D: BuiltinDef = BuiltinDef {
    name: "ConvTranspose2d",
    params: &[
        P::required("in_channels", Ty::SizeOrInfer),
        P::required("out_channels", Ty::Int),
        P::required("kernel_size", Ty::Pair),
        P::optional("stride", Ty::Pair, D::Int(1)),
        P::optional("padding", Ty::Pair, D::Int(0)),
        P::optional("output_padding", Ty::Pair, D::Int(0)),
        P::optional("groups", Ty::Int, D::Int(1)),
        P::optional("bias", Ty::Bool, D::Bool(true)),
        P::optional("dilation", Ty::Pair, D::Int(1)),
    ],
    rest: None,
    doc: "ConvTranspose2d(in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1, bias=true, dilation=1): weight [in, out/groups, kH, kW]",
    run: |interp, args| conv(interp, args, true),
};

pub(super) const LINEAR: BuiltinDef = BuiltinDef {
    name: "Linear",
    params: &[
        P::required("in_features", Ty::SizeOrInfer),
        P::required("out_features", Ty::Int),
        P::optional("bias", Ty::Bool, D::Bool(true)),
    ],
    rest: None,
    doc: "Linear(in_features, out_features, bias=true): y = x @ weight.T + bias, weight [out, in]",
    run: |interp, args| {
        let inputs = size_or_infer(&args, 0)?;
        let kind = Kind::Linear {
            out_features: positive(&args, 1)? as i64,
            bias: args.bool(2)?,
        };
        build(interp, kind, &args, inputs)
    },
};

fn pool(interp: &mut Interpreter, args: Args, op: SpatialOp) -> EvalResult<Value> {
    let kernel = args.pair(0)?;
    let stride = match args.value(1) {
        Value::None => kernel,
        _ => args.pair(1)?,
    };
    let padding = args.pair(2)?;
    let window = if op == SpatialOp::MaxPool2d {
        Window::Pool {
            op,
            kernel,
            stride,
            padding,
            dilation: args.pair(3)?,
            ceil_mode: args.bool(4)?,
            count_include_pad: true,
        }
    } else {
        Window::Pool {
            op,
            kernel,
            stride,
            padding,
            dilation: [1, 1],
            ceil_mode: args.bool(3)?,
            count_include_pad: args.bool(4)?,
        }
    };
    let arg = |name: &str| written(&args, name);
    let spans = SpatialSpans {
        call: args.call,
        input: args.call,
        layer: None,
        arg: &arg,
    };
    spatial::check_window(interp, &window, &spans)?;
    build(interp, Kind::Pool(window), &args, None)
}

pub(super) const MAX_POOL2D: BuiltinDef = BuiltinDef {
    name: "MaxPool2d",
    params: &[
        P::required("kernel_size", Ty::Pair),
        P::optional("stride", Ty::Pair, D::None),
        P::optional("padding", Ty::Pair, D::Int(0)),
        P::optional("dilation", Ty::Pair, D::Int(1)),
        P::optional("ceil_mode", Ty::Bool, D::Bool(false)),
    ],
    rest: None,
    doc: "MaxPool2d(kernel_size, stride=kernel_size, padding=0, dilation=1, ceil_mode=false)",
    run: |interp, args| pool(interp, args, SpatialOp::MaxPool2d),
};

pub(super) const AVG_POOL2D: BuiltinDef = BuiltinDef {
    name: "AvgPool2d",
    params: &[
        P::required("kernel_size", Ty::Pair),
        P::optional("stride", Ty::Pair, D::None),
        P::optional("padding", Ty::Pair, D::Int(0)),
        P::optional("ceil_mode", Ty::Bool, D::Bool(false)),
        P::optional("count_include_pad", Ty::Bool, D::Bool(true)),
    ],
    rest: None,
    doc: "AvgPool2d(kernel_size, stride=kernel_size, padding=0, ceil_mode=false, count_include_pad=true)",
    run: |interp, args| pool(interp, args, SpatialOp::AvgPool2d),
};

pub(super) const BATCH_NORM2D: BuiltinDef = BuiltinDef {
    name: "BatchNorm2d",
    params: &[
        P::required("num_features", Ty::SizeOrInfer),
        P::optional("eps", Ty::Number, D::Float(1e-5)),
        P::optional("momentum", Ty::Number, D::Float(0.1)),
    ],
    rest: None,
    doc: "BatchNorm2d(num_features, eps=1e-5, momentum=0.1): normalise each channel; running statistics for eval()",
    run: |interp, args| {
        let inputs = size_or_infer(&args, 0)?;
        let kind = Kind::BatchNorm {
            eps: args.float(1)?,
            momentum: args.float(2)?,
        };
        build(interp, kind, &args, inputs)
    },
};

macro_rules! plain {
    ($name:literal, $doc:literal, $kind:expr) => {
        BuiltinDef {
            name: $name,
            params: &[],
            rest: None,
            doc: $doc,
            run: |interp, args| build(interp, $kind, &args, None),
        }
    };
}

pub(super) const IDENTITY: BuiltinDef =
    plain!("Identity", "Identity(): returns its input", Kind::Identity);

pub(super) const SOFTMAX: BuiltinDef = BuiltinDef {
    name: "Softmax",
    params: &[P::required("dim", Ty::Int)],
    rest: None,
    doc: "Softmax(dim): softmax along dim",
    run: |interp, args| {
        let kind = Kind::Softmax(args.int(0)?);
        build(interp, kind, &args, None)
    },
};

pub(super) const FLATTEN: BuiltinDef = BuiltinDef {
    name: "Flatten",
    params: &[
        P::optional("start_dim", Ty::Int, D::Int(1)),
        P::optional("end_dim", Ty::Int, D::Int(-1)),
    ],
    rest: None,
    doc: "Flatten(start_dim=1, end_dim=-1): [N, C, H, W] -> [N, C*H*W]",
    run: |interp, args| {
        let kind = Kind::Flatten(args.int(0)?, args.int(1)?);
        build(interp, kind, &args, None)
    },
};

pub(super) const DROPOUT: BuiltinDef = BuiltinDef {
    name: "Dropout",
    params: &[P::optional("p", Ty::Number, D::Float(0.5))],
    rest: None,
    doc: "Dropout(p=0.5): in training, zero elements with probability p and scale the rest by 1/(1-p)",
    run: |interp, args| {
        let p = args.float(0)?;
        if !(0.0..=1.0).contains(&p) {
            return Err(Box::new(RuntimeError::value(
                format!("dropout probability has to be between 0 and 1, got {p}"),
                args.span(0),
                "out of range",
            )));
        }
        build(interp, Kind::Dropout(p), &args, None)
    },
};

pub(super) const UPSAMPLE: BuiltinDef = BuiltinDef {
    name: "Upsample",
    params: &[
        P::optional("size", Ty::Any, D::None),
        P::optional("scale_factor", Ty::Any, D::None),
        P::optional("mode", Ty::Str, D::Str("nearest")),
    ],
    rest: None,
    doc: "Upsample(size=none, scale_factor=none, mode=\"nearest\"): resample [N, C, H, W] (also \"bilinear\")",
    run: |interp, args| {
        let (size, mode) = interpolate_args(&args, 0)?;
        build(interp, Kind::Upsample(size, mode), &args, None)
    },
};

pub(super) const PIXEL_SHUFFLE: BuiltinDef = BuiltinDef {
    name: "PixelShuffle",
    params: &[P::required("upscale_factor", Ty::Int)],
    rest: None,
    doc: "PixelShuffle(upscale_factor): [N, C*r*r, H, W] -> [N, C, H*r, W*r]",
    run: |interp, args| {
        let r = positive(&args, 0)?;
        build(interp, Kind::PixelShuffle(r), &args, None)
    },
};

pub(super) const SEQUENTIAL: BuiltinDef = BuiltinDef {
    name: "Sequential",
    params: &[],
    rest: Some("layers"),
    doc: "Sequential(layer, layer, ...): the layers applied in order",
    run: |interp, args| {
        let mut layers = Vec::with_capacity(args.rest.len());
        for (value, span) in &args.rest {
            match value {
                Value::Layer(layer) => layers.push(Rc::clone(layer)),
                other => {
                    return Err(Box::new(
                        RuntimeError::wrong_type("an item of `Sequential`", "layer", other.type_name(), *span)
                            .with_help("Sequential chains layers such as `Conv2d(1, 8, 3)` or `ReLU()`; wrap a function in a layer-free pipe instead: `x |> f`"),
                    ));
                }
            }
        }
        build(interp, Kind::Sequential(layers), &args, None)
    },
};

pub(super) const PARAMETER_COUNT: BuiltinDef = BuiltinDef {
    name: "parameter_count",
    params: &[P::required("model", Ty::Any)],
    rest: None,
    doc: "parameter_count(model): the number of scalar parameters of a layer or model",
    run: |_, args| match args.value(0) {
        Value::Layer(layer) => Ok(Value::Int(layer.parameter_count() as i64)),
        Value::List(items) => {
            let tensors = super::args::tensor_list(
                &Value::List(items.clone()),
                args.span(0),
                &args.describe(0),
            )?;
            Ok(Value::Int(tensors.iter().map(|t| t.numel() as i64).sum()))
        }
        other => Err(Box::new(RuntimeError::wrong_type(
            args.describe(0),
            "a layer or a list of tensors",
            other.type_name(),
            args.span(0),
        ))),
    },
};
