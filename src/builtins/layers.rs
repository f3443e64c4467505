//! Layers (LANGUAGE.md §7): what a layer value holds, how it runs, its fields, and its
//! constructors in the builtin table.
//!
//! Parameters follow PyTorch's layouts, names and default initialisation, so weights move
//! between the two unchanged: convolutions and `Linear` draw weight and bias from
//! `U(-1/sqrt(fan_in), 1/sqrt(fan_in))` (what `kaiming_uniform_(a=sqrt(5))` reduces to),
//! `BatchNorm2d` starts at weight 1, bias 0, running mean 0 and running variance 1. A size
//! written `_` is inferred from the first input, and the parameters are drawn then.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::rc::Rc;

use super::Args;
use super::pointwise::Pointwise;
use super::spatial::{self, Padding, SpatialSpans, Window};
use crate::eval::net::Model;
use crate::eval::tensor_error::{TensorCode, TensorDiagnostic};
use crate::eval::value::format_float;
use crate::eval::{EvalResult, Interpreter, RuntimeError, Value};
use crate::source::Span;
use crate::syntax::ast::Ident;
use crate::tensor::ops::nn::{BatchNormArgs, InterpolateMode, InterpolateSize};
use crate::tensor::shape::SpatialOp;
use crate::tensor::{self, Tensor, TensorError};

/// A layer: its kind and configuration, its parameters and buffers, its mode, and where it
/// was built (for diagnostics).
pub struct Layer {
    kind: Kind,
    state: RefCell<State>,
    training: Cell<bool>,
    /// The constructor call.
    span: Span,
    /// The constructor's written arguments, by parameter name.
    arg_spans: Vec<(&'static str, Span)>,
    /// BatchNorm2d's `num_batches_tracked`: training-mode forwards so far.
    batches: Rc<Cell<i64>>,
}

/// The window of a convolution or pooling layer, for receptive fields and summaries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowGeometry {
    /// Kernel size `[kH, kW]`.
    pub kernel: [i64; 2],
    /// Stride.
    pub stride: [i64; 2],
    /// Padding on each side (for `padding="same"`, the left/top padding PyTorch uses:
    /// `d*(k-1)/2` rounded down).
    pub padding: [i64; 2],
    /// Dilation (1 for average pooling).
    pub dilation: [i64; 2],
    /// Whether it is a transposed convolution.
    pub transposed: bool,
    /// A transposed convolution's output padding (else zero).
    pub output_padding: [i64; 2],
}

/// One entry of a layer's state dict ([`Layer::state_dict`]).
#[derive(Clone, Debug)]
pub enum StateEntry {
    /// A parameter or buffer tensor (float32).
    Tensor(Tensor),
    /// BatchNorm2d's `num_batches_tracked` (an int64 scalar in PyTorch).
    BatchesTracked(Rc<Cell<i64>>),
}

/// Parameters and buffers; `None` until a `_` size is inferred (or when `bias=false`).
#[derive(Default)]
struct State {
    /// The inferred (or given) `in_channels` / `in_features` / `num_features`.
    inputs: Option<i64>,
    weight: Option<Tensor>,
    bias: Option<Tensor>,
    running_mean: Option<Tensor>,
    running_var: Option<Tensor>,
}

/// What a layer computes.
pub(super) enum Kind {
    Conv {
        transposed: bool,
        out_channels: i64,
        kernel: [i64; 2],
        stride: [i64; 2],
        padding: Padding,
        output_padding: [i64; 2],
        dilation: [i64; 2],
        groups: i64,
        bias: bool,
    },
    Linear {
        out_features: i64,
        bias: bool,
    },
    BatchNorm {
        eps: f64,
        momentum: f64,
    },
    Pool(Window),
    /// An elementwise activation and its parameters.
    Pointwise(&'static Pointwise, Vec<Value>),
    Softmax(i64),
    Identity,
    Flatten(i64, i64),
    Dropout(f64),
    Upsample(InterpolateSize, InterpolateMode),
    PixelShuffle(usize),
    Sequential(Vec<Rc<Layer>>),
    /// A model built from a `net` (`crate::eval::net`).
    Model(Rc<Model>),
}

/// A fresh parameter drawn from `U(-bound, bound)`, requiring grad.
fn uniform_parameter(shape: &[usize], bound: f64) -> Result<Tensor, TensorError> {
    let _no_grad = tensor::no_grad();
    let t = Tensor::zeros(shape)?;
    t.uniform_(-bound, bound)?;
    t.requires_grad_(true)?;
    Ok(t)
}

fn filled_parameter(shape: &[usize], value: f64, grad: bool) -> Result<Tensor, TensorError> {
    let t = Tensor::full(shape, value)?;
    if grad {
        t.requires_grad_(true)?;
    }
    Ok(t)
}

fn dims(values: &[i64]) -> Vec<usize> {
    values
        .iter()
        .map(|&v| usize::try_from(v).unwrap_or(0))
        .collect()
}

impl Layer {
    /// Field names, for `layer.name` and suggestions.
    pub const FIELDS: &'static [&'static str] = &[
        "weight",
        "bias",
        "running_mean",
        "running_var",
        "training",
        "in_channels",
        "out_channels",
        "kernel_size",
        "stride",
        "padding",
        "in_features",
        "out_features",
        "num_features",
    ];

    pub(super) fn new(kind: Kind, args: &Args, inputs: Option<i64>) -> Layer {
        let arg_spans = args
            .def
            .params
            .iter()
            .zip(&args.spans)
            .filter(|(_, s)| **s != args.call)
            .map(|(p, s)| (p.name, *s))
            .collect();
        Layer {
            kind,
            state: RefCell::new(State {
                inputs,
                ..State::default()
            }),
            training: Cell::new(true),
            span: args.call,
            arg_spans,
            batches: Rc::new(Cell::new(0)),
        }
    }

    /// The layer that a built model is: `span` is the net call.
    pub fn from_model(model: Rc<Model>, span: Span) -> Layer {
        Layer {
            kind: Kind::Model(model),
            state: RefCell::new(State::default()),
            training: Cell::new(true),
            span,
            arg_spans: Vec::new(),
            batches: Rc::new(Cell::new(0)),
        }
    }

    /// The model, when this layer is one.
    pub fn model(&self) -> Option<&Rc<Model>> {
        match &self.kind {
            Kind::Model(model) => Some(model),
            _ => None,
        }
    }

    /// A `Sequential`'s layers (empty for other layers).
    pub fn sequential_layers(&self) -> &[Rc<Layer>] {
        match &self.kind {
            Kind::Sequential(layers) => layers,
            _ => &[],
        }
    }

    /// Whether the layer is in training mode.
    pub fn training(&self) -> bool {
        self.training.get()
    }

    /// Where the layer was built (the constructor or net call).
    pub fn span(&self) -> Span {
        self.span
    }

    /// The class name: PyTorch's (`Conv2d`), or the net's name for a model (`SRCNN`).
    pub fn class_name(&self) -> String {
        match &self.kind {
            Kind::Model(model) => model.net_name().to_string(),
            _ => self.kind_name().to_string(),
        }
    }

    /// The window of a convolution or pooling layer; `None` for other layers.
    pub fn geometry(&self) -> Option<WindowGeometry> {
        match &self.kind {
            Kind::Conv {
                transposed,
                kernel,
                stride,
                padding,
                output_padding,
                dilation,
                ..
            } => {
                let padding = match padding {
                    Padding::Explicit(p) => *p,
                    Padding::Same => [
                        dilation[0] * (kernel[0] - 1) / 2,
                        dilation[1] * (kernel[1] - 1) / 2,
                    ],
                };
                Some(WindowGeometry {
                    kernel: *kernel,
                    stride: *stride,
                    padding,
                    dilation: *dilation,
                    transposed: *transposed,
                    output_padding: if *transposed { *output_padding } else { [0, 0] },
                })
            }
            Kind::Pool(Window::Pool {
                kernel,
                stride,
                padding,
                dilation,
                ..
            }) => Some(WindowGeometry {
                kernel: *kernel,
                stride: *stride,
                padding: *padding,
                dilation: *dilation,
                transposed: false,
                output_padding: [0, 0],
            }),
            _ => None,
        }
    }

    fn arg_span(&self, name: &str) -> Option<Span> {
        self.arg_spans
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, s)| *s)
    }

    /// PyTorch's class name: `Conv2d`, `Sequential`, ...
    pub fn kind_name(&self) -> &'static str {
        match &self.kind {
            Kind::Conv {
                transposed: false, ..
            } => "Conv2d",
            Kind::Conv {
                transposed: true, ..
            } => "ConvTranspose2d",
            Kind::Linear { .. } => "Linear",
            Kind::BatchNorm { .. } => "BatchNorm2d",
            Kind::Pool(Window::Pool {
                op: SpatialOp::AvgPool2d,
                ..
            }) => "AvgPool2d",
            Kind::Pool(_) => "MaxPool2d",
            Kind::Pointwise(op, _) => op.layer.name,
            Kind::Softmax(_) => "Softmax",
            Kind::Identity => "Identity",
            Kind::Flatten(..) => "Flatten",
            Kind::Dropout(_) => "Dropout",
            Kind::Upsample(..) => "Upsample",
            Kind::PixelShuffle(_) => "PixelShuffle",
            Kind::Sequential(_) => "Sequential",
            Kind::Model(_) => "Model",
        }
    }

    /// Draws the parameters for `inputs` input channels/features (at construction, or when
    /// the first input fixes a `_`).
    pub(super) fn initialise(&self, inputs: i64) -> Result<(), TensorError> {
        let mut state = self.state.borrow_mut();
        state.inputs = Some(inputs);
        match &self.kind {
            Kind::Conv {
                transposed,
                out_channels,
                kernel,
                groups,
                bias,
                ..
            } => {
                let g = (*groups).max(1);
                let shape = if *transposed {
                    dims(&[inputs, out_channels / g, kernel[0], kernel[1]])
                } else {
                    dims(&[*out_channels, inputs / g, kernel[0], kernel[1]])
                };
                // PyTorch's fan_in is dim 1 times the kernel area, for both layouts.
                let fan_in = (shape[1] as f64 * shape[2] as f64 * shape[3] as f64).max(1.0);
                let bound = 1.0 / fan_in.sqrt();
                state.weight = Some(uniform_parameter(&shape, bound)?);
                let out = if *transposed {
                    shape[1] * g as usize
                } else {
                    shape[0]
                };
                state.bias = if *bias {
                    Some(uniform_parameter(&[out], bound)?)
                } else {
                    None
                };
            }
            Kind::Linear { out_features, bias } => {
                let shape = dims(&[*out_features, inputs]);
                let bound = 1.0 / (shape[1].max(1) as f64).sqrt();
                state.weight = Some(uniform_parameter(&shape, bound)?);
                state.bias = if *bias {
                    Some(uniform_parameter(&shape[..1], bound)?)
                } else {
                    None
                };
            }
            Kind::BatchNorm { .. } => {
                let c = dims(&[inputs]);
                state.weight = Some(filled_parameter(&c, 1.0, true)?);
                state.bias = Some(filled_parameter(&c, 0.0, true)?);
                state.running_mean = Some(filled_parameter(&c, 0.0, false)?);
                state.running_var = Some(filled_parameter(&c, 1.0, false)?);
            }
            _ => {}
        }
        Ok(())
    }

    /// `layer.name`, or `None` if the layer has no such field.
    pub fn field(&self, name: &str) -> Option<Value> {
        let state = self.state.borrow();
        let tensor = |t: &Option<Tensor>| t.clone().map_or(Value::None, Value::Tensor);
        let int = |v: i64| Value::Int(v);
        let pair = |p: [i64; 2]| Value::list(vec![int(p[0]), int(p[1])]);
        let inputs = state.inputs.map_or(Value::Infer, int);
        Some(match (&self.kind, name) {
            (_, "training") => Value::Bool(self.training.get()),
            (Kind::Conv { .. } | Kind::Linear { .. } | Kind::BatchNorm { .. }, "weight") => {
                tensor(&state.weight)
            }
            (Kind::Conv { .. } | Kind::Linear { .. } | Kind::BatchNorm { .. }, "bias") => {
                tensor(&state.bias)
            }
            (Kind::BatchNorm { .. }, "running_mean") => tensor(&state.running_mean),
            (Kind::BatchNorm { .. }, "running_var") => tensor(&state.running_var),
            (Kind::BatchNorm { .. }, "num_features") => inputs,
            (Kind::Conv { .. }, "in_channels") => inputs,
            (Kind::Conv { out_channels, .. }, "out_channels") => int(*out_channels),
            (Kind::Conv { kernel, .. }, "kernel_size") => pair(*kernel),
            (Kind::Conv { stride, .. }, "stride") => pair(*stride),
            (
                Kind::Conv {
                    padding: Padding::Explicit(p),
                    ..
                },
                "padding",
            ) => pair(*p),
            (
                Kind::Conv {
                    padding: Padding::Same,
                    ..
                },
                "padding",
            ) => Value::str("same"),
            (Kind::Linear { .. }, "in_features") => inputs,
            (Kind::Linear { out_features, .. }, "out_features") => int(*out_features),
            (Kind::Model(model), name) => Value::Layer(model.layer_named(name)?),
            _ => return None,
        })
    }

    /// Switches training mode (`train()` / `eval()`) here and in every sub-layer.
    pub fn set_training(&self, training: bool) {
        self.training.set(training);
        match &self.kind {
            Kind::Sequential(layers) => {
                for layer in layers {
                    layer.set_training(training);
                }
            }
            Kind::Model(model) => {
                for (_, layer) in model.layers() {
                    layer.set_training(training);
                }
            }
            _ => {}
        }
    }

    /// How many scalar parameters the layer holds (`parameter_count(layer)`).
    pub fn parameter_count(&self) -> usize {
        self.named_parameters().iter().map(|(_, t)| t.numel()).sum()
    }

    /// The parameters with PyTorch's names (`weight`, `0.bias`), in registration order.
    pub fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        self.collect_parameters("", &mut out);
        out
    }

    fn collect_parameters(&self, prefix: &str, out: &mut Vec<(String, Tensor)>) {
        let mut state = Vec::new();
        self.collect_state(prefix, false, &mut state);
        out.extend(state.into_iter().filter_map(|(name, entry)| match entry {
            StateEntry::Tensor(t) => Some((name, t)),
            StateEntry::BatchesTracked(_) => None,
        }));
    }

    /// PyTorch's `state_dict()`: parameters and then buffers of each layer, with their
    /// dotted names (`conv2d_0.weight`, `0.running_mean`, `bn.num_batches_tracked`).
    pub fn state_dict(&self) -> Vec<(String, StateEntry)> {
        let mut out = Vec::new();
        self.collect_state("", true, &mut out);
        out
    }

    fn collect_state(&self, prefix: &str, buffers: bool, out: &mut Vec<(String, StateEntry)>) {
        match &self.kind {
            Kind::Sequential(layers) => {
                for (i, layer) in layers.iter().enumerate() {
                    layer.collect_state(&format!("{prefix}{i}."), buffers, out);
                }
                return;
            }
            Kind::Model(model) => {
                for (name, layer) in model.layers() {
                    layer.collect_state(&format!("{prefix}{name}."), buffers, out);
                }
                return;
            }
            _ => {}
        }
        let state = self.state.borrow();
        let mut entries = vec![("weight", &state.weight), ("bias", &state.bias)];
        if buffers {
            entries.push(("running_mean", &state.running_mean));
            entries.push(("running_var", &state.running_var));
        }
        for (name, t) in entries {
            if let Some(t) = t {
                out.push((format!("{prefix}{name}"), StateEntry::Tensor(t.clone())));
            }
        }
        if buffers && matches!(self.kind, Kind::BatchNorm { .. }) && state.running_mean.is_some() {
            out.push((
                format!("{prefix}num_batches_tracked"),
                StateEntry::BatchesTracked(Rc::clone(&self.batches)),
            ));
        }
    }
}

/// `layer.name = value`: replaces a parameter or buffer with a tensor of the same shape.
/// The new parameter shares the tensor's storage and is a leaf that requires grad, as
/// `nn.Parameter(t)` is.
pub fn assign_field(layer: &Layer, name: &Ident, value: Value, value_span: Span) -> EvalResult<()> {
    let mut state = layer.state.borrow_mut();
    let state = &mut *state;
    let (slot, is_parameter) = match (&layer.kind, &*name.name) {
        (Kind::Conv { .. } | Kind::Linear { .. } | Kind::BatchNorm { .. }, "weight") => {
            (&mut state.weight, true)
        }
        (Kind::Conv { .. } | Kind::Linear { .. } | Kind::BatchNorm { .. }, "bias") => {
            (&mut state.bias, true)
        }
        (Kind::BatchNorm { .. }, "running_mean") => (&mut state.running_mean, false),
        (Kind::BatchNorm { .. }, "running_var") => (&mut state.running_var, false),
        _ => {
            return Err(Box::new(
                RuntimeError::wrong_type(
                    format!("assignment to `.{}` of a {}", name.name, layer.kind_name()),
                    "a parameter or buffer of the layer",
                    "another field",
                    name.span,
                )
                .with_help("parameters (`weight`, `bias`) and BatchNorm2d's running statistics can be replaced"),
            ));
        }
    };
    let Value::Tensor(t) = value else {
        return Err(Box::new(RuntimeError::wrong_type(
            format!("new `{}`", name.name),
            "tensor",
            value.type_name(),
            value_span,
        )));
    };
    let Some(current) = slot.as_ref() else {
        return Err(Box::new(RuntimeError::value_with_help(
            format!(
                "this {} has no `{}` to replace",
                layer.kind_name(),
                name.name
            ),
            name.span,
            "none here",
            "a layer built with bias=false has no bias; a size written `_` exists after the first call",
        )));
    };
    if current.shape() != t.shape() {
        return Err(TensorDiagnostic::new(
            TensorCode::Broadcast,
            format!(
                "cannot replace `{}` of shape {:?} with a tensor of shape {:?}",
                name.name,
                current.shape(),
                t.shape()
            ),
            value_span,
            format!("this is {:?}", t.shape()),
        )
        .with_label(layer.span, "the layer was built here")
        .with_help("a parameter keeps its shape; build a new layer for another shape")
        .boxed());
    }
    let new = t.detach();
    if is_parameter {
        new.requires_grad_(true).ok();
    }
    *slot = Some(new);
    Ok(())
}

/// `layer(x)`: runs the layer on `x`, inferring a `_` size from it first. While the
/// interpreter traces, each application of a layer that is not a container is recorded.
pub fn forward(
    interp: &mut Interpreter,
    layer: &Layer,
    x: &Tensor,
    input_span: Span,
    call: Span,
) -> EvalResult<Tensor> {
    let out = forward_layer(interp, layer, x, input_span, call)?;
    if interp.tracing() && !matches!(layer.kind, Kind::Sequential(_) | Kind::Model(_)) {
        interp.trace_layer(
            layer as *const Layer,
            layer.class_name(),
            x.shape(),
            out.shape(),
        );
    }
    Ok(out)
}

fn forward_layer(
    interp: &mut Interpreter,
    layer: &Layer,
    x: &Tensor,
    input_span: Span,
    call: Span,
) -> EvalResult<Tensor> {
    if let Kind::Model(model) = &layer.kind {
        return interp.forward_model(model, x, input_span, call, layer.training.get());
    }
    let arg = |name: &str| layer.arg_span(name);
    let spans = SpatialSpans {
        call,
        input: input_span,
        layer: Some(layer.span),
        arg: &arg,
    };
    let rank_error = |expected: &str, hint: bool| {
        crate::diagnostic::layers::layer_rank(
            layer.kind_name(),
            expected,
            &format!("{:?}", x.shape()),
            x.ndim(),
            hint,
            input_span,
            layer.span,
        )
        .boxed()
    };
    let spatial_rank = crate::diagnostic::layers::SPATIAL_RANKS;
    if matches!(layer.kind, Kind::Conv { .. } | Kind::Pool(_)) && !(3..=4).contains(&x.ndim()) {
        return Err(rank_error(spatial_rank, x.ndim() == 2));
    }
    if layer.state.borrow().inputs.is_none() {
        let inferred = match &layer.kind {
            Kind::Conv { .. } => Some(x.shape()[x.ndim() - 3]),
            Kind::BatchNorm { .. } => {
                if x.ndim() != 4 {
                    return Err(rank_error("a 4-D [N, C, H, W] input", x.ndim() == 3));
                }
                Some(x.shape()[1])
            }
            Kind::Linear { .. } => x.shape().last().copied(),
            _ => None,
        };
        if let Some(n) = inferred {
            interp.at(call);
            layer
                .initialise(n as i64)
                .map_err(|e| interp.tensor_err(e, call))?;
        }
    }
    let state = layer.state.borrow();
    let (weight, bias) = (state.weight.clone(), state.bias.clone());
    let (rm, rv) = (state.running_mean.clone(), state.running_var.clone());
    drop(state);
    // Build probes leave BatchNorm2d's statistics alone and drop nothing.
    let training = layer.training.get() && !interp.building();
    let simple = |interp: &mut Interpreter, f: &dyn Fn() -> Result<Tensor, TensorError>| {
        interp.at(call);
        f().map_err(|e| interp.tensor_err(e, call))
    };
    match &layer.kind {
        Kind::Conv {
            transposed,
            stride,
            padding,
            output_padding,
            dilation,
            groups,
            ..
        } => {
            // The weight exists: it was drawn at construction or just above. Transposed
            // layers are only built with explicit padding.
            let Some(w) = weight else {
                return Ok(x.clone());
            };
            if *transposed {
                let Padding::Explicit(p) = *padding else {
                    return Ok(x.clone());
                };
                spatial::conv_transpose2d(
                    interp,
                    x,
                    &w,
                    bias.as_ref(),
                    *stride,
                    p,
                    *output_padding,
                    *groups,
                    *dilation,
                    &spans,
                )
            } else {
                spatial::conv2d(
                    interp,
                    x,
                    &w,
                    bias.as_ref(),
                    *stride,
                    *padding,
                    *dilation,
                    *groups,
                    &spans,
                )
            }
        }
        Kind::Linear { .. } => {
            // Drawn at construction or just above, as for convolutions.
            let Some(w) = weight else {
                return Ok(x.clone());
            };
            interp.at(call);
            x.linear(&w, bias.as_ref()).map_err(|e| match e {
                TensorError::MatmulMismatch { .. } => {
                    linear_mismatch(layer, x, &w, input_span, call)
                }
                other => interp.tensor_err(other, call),
            })
        }
        Kind::BatchNorm { eps, momentum } => {
            if x.ndim() != 4 {
                return Err(rank_error("a 4-D [N, C, H, W] input", x.ndim() == 3));
            }
            let channels = rm.as_ref().map_or(0, |t| t.numel());
            if x.shape()[1] != channels {
                return Err(crate::diagnostic::layers::batch_norm_channels(
                    channels as i64,
                    x.shape()[1] as i64,
                    &format!("{:?}", x.shape()),
                    call,
                    input_span,
                    layer.arg_span("num_features").unwrap_or(layer.span),
                )
                .boxed());
            }
            let args = BatchNormArgs {
                running_mean: rm.as_ref(),
                running_var: rv.as_ref(),
                weight: weight.as_ref(),
                bias: bias.as_ref(),
                training,
                momentum: *momentum,
                eps: *eps,
            };
            let out = simple(interp, &|| x.batch_norm(args))?;
            if training {
                layer.batches.set(layer.batches.get() + 1);
            }
            Ok(out)
        }
        Kind::Pool(window) => spatial::pool2d(interp, x, window, &spans),
        Kind::Pointwise(op, params) => simple(interp, &|| (op.kernel)(x, params)),
        Kind::Softmax(dim) => simple(interp, &|| x.softmax(*dim)),
        Kind::Identity => Ok(x.clone()),
        Kind::Flatten(start, end) => simple(interp, &|| x.flatten(*start, *end)),
        Kind::Dropout(p) => simple(interp, &|| x.dropout(*p, training)),
        Kind::Upsample(size, mode) => simple(interp, &|| x.interpolate(*size, *mode)),
        Kind::PixelShuffle(r) => simple(interp, &|| x.pixel_shuffle(*r)),
        Kind::Sequential(layers) => {
            let mut out = x.clone();
            for inner in layers {
                interp.check_interrupt(call)?;
                out = forward(interp, inner, &out, input_span, call)?;
            }
            Ok(out)
        }
        // Handled first.
        Kind::Model(_) => Ok(x.clone()),
    }
}

/// E0305: a `Linear` whose `in_features` is not the input's last dim, with the `Flatten()`
/// hint when the input still has its spatial dims.
fn linear_mismatch(
    layer: &Layer,
    x: &Tensor,
    w: &Tensor,
    input_span: Span,
    call: Span,
) -> Box<RuntimeError> {
    let in_features = w.shape().get(1).copied().unwrap_or(0);
    let dims: Vec<String> = x.shape().iter().map(usize::to_string).collect();
    let per_item: usize = x.shape().iter().skip(1).product();
    crate::diagnostic::layers::linear_features(
        in_features as i64,
        &dims,
        (per_item.to_string(), Some(per_item as i64)),
        call,
        input_span,
        layer.arg_span("in_features").unwrap_or(layer.span),
    )
    .boxed()
}

fn fmt_pair(p: [i64; 2]) -> String {
    format!("[{}, {}]", p[0], p[1])
}

impl fmt::Display for Layer {
    /// PyTorch's `repr`, in the language's spelling (`[3, 3]`, `false`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.kind_name();
        let inputs = self
            .state
            .borrow()
            .inputs
            .map_or("_".to_string(), |n| n.to_string());
        match &self.kind {
            Kind::Conv {
                transposed,
                out_channels,
                kernel,
                stride,
                padding,
                output_padding,
                dilation,
                groups,
                bias,
            } => {
                write!(
                    f,
                    "{name}({inputs}, {out_channels}, kernel_size={}, stride={}",
                    fmt_pair(*kernel),
                    fmt_pair(*stride)
                )?;
                match padding {
                    Padding::Same => write!(f, ", padding=\"same\"")?,
                    Padding::Explicit([0, 0]) => {}
                    Padding::Explicit(p) => write!(f, ", padding={}", fmt_pair(*p))?,
                }
                if *transposed && *output_padding != [0, 0] {
                    write!(f, ", output_padding={}", fmt_pair(*output_padding))?;
                }
                if *dilation != [1, 1] {
                    write!(f, ", dilation={}", fmt_pair(*dilation))?;
                }
                if *groups != 1 {
                    write!(f, ", groups={groups}")?;
                }
                if !bias {
                    write!(f, ", bias=false")?;
                }
                f.write_str(")")
            }
            Kind::Linear { out_features, bias } => write!(
                f,
                "Linear(in_features={inputs}, out_features={out_features}, bias={bias})"
            ),
            Kind::BatchNorm { eps, momentum } => {
                let (eps, momentum) = (format_float(*eps), format_float(*momentum));
                write!(f, "BatchNorm2d({inputs}, eps={eps}, momentum={momentum})")
            }
            Kind::Pool(Window::Pool {
                kernel,
                stride,
                padding,
                ceil_mode,
                ..
            }) => write!(
                f,
                "{name}(kernel_size={}, stride={}, padding={}, ceil_mode={ceil_mode})",
                fmt_pair(*kernel),
                fmt_pair(*stride),
                fmt_pair(*padding)
            ),
            Kind::Pointwise(op, params) => f.write_str(&super::pointwise::repr(op, params)),
            Kind::Softmax(dim) => write!(f, "Softmax(dim={dim})"),
            Kind::Flatten(s, e) => write!(f, "Flatten(start_dim={s}, end_dim={e})"),
            Kind::Dropout(p) => write!(f, "Dropout(p={})", format_float(*p)),
            Kind::PixelShuffle(r) => write!(f, "PixelShuffle(upscale_factor={r})"),
            Kind::Upsample(size, mode) => {
                let mode = if *mode == InterpolateMode::Nearest {
                    "nearest"
                } else {
                    "bilinear"
                };
                match size {
                    InterpolateSize::Size([h, w]) => {
                        write!(f, "Upsample(size=[{h}, {w}], mode=\"{mode}\")")
                    }
                    InterpolateSize::Scale([h, w]) => {
                        let (h, w) = (format_float(*h), format_float(*w));
                        write!(f, "Upsample(scale_factor=[{h}, {w}], mode=\"{mode}\")")
                    }
                }
            }
            Kind::Sequential(layers) => {
                writeln!(f, "Sequential(")?;
                for (i, layer) in layers.iter().enumerate() {
                    let inner = layer.to_string().replace('\n', "\n  ");
                    writeln!(f, "  ({i}): {inner}")?;
                }
                f.write_str(")")
            }
            Kind::Model(model) => write!(f, "{model}"),
            _ => write!(f, "{name}()"),
        }
    }
}

impl fmt::Debug for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
