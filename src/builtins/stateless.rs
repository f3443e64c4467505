//! Layers without parameters, each declared once: the layer (`LeakyReLU(0.2)`), its
//! functional form (`leaky_relu(x, 0.2)`), their signatures and docs, the kernel, the
//! `repr`, and the shape rule the checker, summaries and receptive fields read
//! ([`ShapeRule`]). Adding such a layer is one [`stateless!`] entry here plus its kernel
//! in `tensor/`.

use std::rc::Rc;

use super::layers::{Kind, Layer};
use super::nn::run_op;
use super::{Args, BuiltinDef, BuiltinParam as P, DefaultValue as D, Ty};
use crate::eval::value::format_float;
use crate::eval::{EvalResult, Interpreter, Value};
use crate::tensor::{GeluApproximate, Tensor, TensorError};

/// What a layer without parameters does to its input's shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShapeRule {
    /// Keeps the shape and every position (activations, channel dropout): the receptive
    /// field passes through unchanged.
    Same,
    /// Keeps the shape and every position, on a 3-D or 4-D input only (channel dropout).
    SameChannels,
    /// Adaptive pooling of `[N, C, H, W]` (or `[C, H, W]`) to the `output_size` parameter:
    /// the spatial dims become it, and each output mixes a window that depends on the
    /// input's size.
    AdaptivePool,
}

/// One layer without parameters: its two builtins, its kernel and its shape rule.
pub struct Stateless {
    /// The layer constructor, named as PyTorch's class (`GELU`).
    pub layer: BuiltinDef,
    /// The functional form, named as PyTorch's `torch.nn.functional` function (`gelu`): the
    /// input first, then the layer's parameters.
    pub function: BuiltinDef,
    /// The kernel, given the input, the layer's parameters (defaults filled in, kinds
    /// checked when the arguments were bound) and whether it runs in training mode.
    pub kernel: fn(&Tensor, &[Value], bool) -> Result<Tensor, TensorError>,
    /// What it does to the shape.
    pub shape: ShapeRule,
}

/// Declares a [`Stateless`] from the layer's name, the function's name, the parameters
/// they share, one doc line each, and the kernel.
macro_rules! stateless {
    ($const:ident, $layer:literal, $function:literal, [$($param:expr),* $(,)?],
     $layer_doc:literal, $function_doc:literal, $kernel:expr) => {
        stateless!($const, $layer, $function, [$($param),*], [], $layer_doc, $function_doc,
            ShapeRule::Same, $kernel);
    };
    ($const:ident, $layer:literal, $function:literal, [$($param:expr),* $(,)?],
     [$($extra:expr),* $(,)?], $layer_doc:literal, $function_doc:literal, $shape:expr,
     $kernel:expr) => {
        pub const $const: Stateless = Stateless {
            layer: BuiltinDef {
                name: $layer,
                params: &[$($param),*],
                rest: None,
                doc: $layer_doc,
                run: |interp, args| build(interp, &$const, args),
            },
            // The functional form may take more than the layer: `training=` where the layer
            // has its mode.
            function: BuiltinDef {
                name: $function,
                params: &[P::required("input", Ty::Tensor), $($param,)* $($extra),*],
                rest: None,
                doc: $function_doc,
                run: |interp, args| apply(interp, &$const, args),
            },
            kernel: $kernel,
            shape: $shape,
        };
    };
}

stateless!(
    RELU,
    "ReLU",
    "relu",
    [],
    "ReLU(): max(x, 0)",
    "relu(x): max(x, 0)",
    |x, _, _| x.relu()
);

stateless!(
    LEAKY_RELU,
    "LeakyReLU",
    "leaky_relu",
    [P::optional("negative_slope", Ty::Number, D::Float(0.01))],
    "LeakyReLU(negative_slope=0.01)",
    "leaky_relu(x, negative_slope=0.01): x where positive, negative_slope*x elsewhere",
    |x, p, _| x.leaky_relu(number(&p[0]))
);

stateless!(
    SIGMOID,
    "Sigmoid",
    "sigmoid",
    [],
    "Sigmoid(): 1 / (1 + exp(-x))",
    "sigmoid(x): 1 / (1 + exp(-x))",
    |x, _, _| x.sigmoid()
);

stateless!(
    TANH,
    "Tanh",
    "tanh",
    [],
    "Tanh(): the hyperbolic tangent",
    "tanh(x): the hyperbolic tangent",
    |x, _, _| x.tanh()
);

stateless!(
    RELU6,
    "ReLU6",
    "relu6",
    [],
    "ReLU6(): min(max(x, 0), 6)",
    "relu6(x): min(max(x, 0), 6)",
    |x, _, _| x.relu6()
);

stateless!(
    ELU,
    "ELU",
    "elu",
    [P::optional("alpha", Ty::Number, D::Float(1.0))],
    "ELU(alpha=1.0): x where positive, alpha*(exp(x) - 1) elsewhere",
    "elu(x, alpha=1.0): x where positive, alpha*(exp(x) - 1) elsewhere",
    |x, p, _| x.elu(number(&p[0]))
);

stateless!(
    GELU,
    "GELU",
    "gelu",
    [P::optional("approximate", Ty::Str, D::Str("none"))],
    "GELU(approximate=\"none\"): x*Φ(x), Φ the normal CDF (\"tanh\" approximates it)",
    "gelu(x, approximate=\"none\"): x*Φ(x), Φ the normal CDF (\"tanh\" approximates it)",
    |x, p, _| {
        let name = match &p[0] {
            Value::Str(s) => s.to_string(),
            other => other.to_string(),
        };
        match GeluApproximate::from_name(&name) {
            Some(approximate) => x.gelu(approximate),
            None => Err(TensorError::value(
                "gelu",
                format!("approximate must be \"none\" or \"tanh\", got \"{name}\""),
            )),
        }
    }
);

stateless!(
    SILU,
    "SiLU",
    "silu",
    [],
    "SiLU(): x * sigmoid(x)",
    "silu(x): x * sigmoid(x)",
    |x, _, _| x.silu()
);

stateless!(
    HARDSWISH,
    "Hardswish",
    "hardswish",
    [],
    "Hardswish(): x * relu6(x + 3) / 6",
    "hardswish(x): x * relu6(x + 3) / 6",
    |x, _, _| x.hardswish()
);

stateless!(
    HARDSIGMOID,
    "Hardsigmoid",
    "hardsigmoid",
    [],
    "Hardsigmoid(): relu6(x + 3) / 6",
    "hardsigmoid(x): relu6(x + 3) / 6",
    |x, _, _| x.hardsigmoid()
);

stateless!(
    ADAPTIVE_AVG_POOL2D,
    "AdaptiveAvgPool2d",
    "adaptive_avg_pool2d",
    [P::required("output_size", Ty::Pair)],
    [],
    "AdaptiveAvgPool2d(output_size): average over windows that tile the input into output_size [h, w]",
    "adaptive_avg_pool2d(x, output_size): average over windows that tile the input into output_size [h, w]",
    ShapeRule::AdaptivePool,
    |x, p, _| x.adaptive_avg_pool2d(output_size(&p[0]))
);

stateless!(
    ADAPTIVE_MAX_POOL2D,
    "AdaptiveMaxPool2d",
    "adaptive_max_pool2d",
    [P::required("output_size", Ty::Pair)],
    [],
    "AdaptiveMaxPool2d(output_size): maximum over windows that tile the input into output_size [h, w]",
    "adaptive_max_pool2d(x, output_size): maximum over windows that tile the input into output_size [h, w]",
    ShapeRule::AdaptivePool,
    |x, p, _| x.adaptive_max_pool2d(output_size(&p[0]))
);

stateless!(
    DROPOUT2D,
    "Dropout2d",
    "dropout2d",
    [P::optional("p", Ty::Number, D::Float(0.5))],
    [P::optional("training", Ty::Bool, D::Bool(true))],
    "Dropout2d(p=0.5): in training, zero whole channels with probability p and scale the rest by 1/(1-p)",
    "dropout2d(x, p=0.5, training=true): zero whole channels with probability p and scale the rest by 1/(1-p)",
    ShapeRule::SameChannels,
    |x, p, training| x.dropout2d(number(&p[0]), training)
);

/// Every layer without parameters, in the order `:help` lists them.
pub const ALL: &[&Stateless] = &[
    &RELU,
    &LEAKY_RELU,
    &SIGMOID,
    &TANH,
    &RELU6,
    &ELU,
    &GELU,
    &SILU,
    &HARDSWISH,
    &HARDSIGMOID,
    &ADAPTIVE_AVG_POOL2D,
    &ADAPTIVE_MAX_POOL2D,
    &DROPOUT2D,
];

/// The activation whose layer is called `name` (`GELU`).
pub fn by_layer(name: &str) -> Option<&'static Stateless> {
    ALL.iter().copied().find(|p| p.layer.name == name)
}

/// The activation whose functional form is called `name` (`gelu`).
pub fn by_function(name: &str) -> Option<&'static Stateless> {
    ALL.iter().copied().find(|p| p.function.name == name)
}

/// A number parameter (ints are accepted where PyTorch takes a float).
fn number(value: &Value) -> f64 {
    value.as_f64().unwrap_or_default()
}

/// An `output_size` argument (kind-checked as an int or `[h, w]` when bound).
fn output_size(value: &Value) -> [usize; 2] {
    let size = |v: &Value| match v {
        Value::Int(n) => usize::try_from(*n).unwrap_or(0),
        _ => 0,
    };
    match value {
        Value::List(items) if items.len() == 2 => [size(&items[0]), size(&items[1])],
        other => [size(other); 2],
    }
}

/// The layer constructor: the configuration is kept for the kernel (as in PyTorch, a value
/// the kernel refuses is reported when the layer runs).
fn build(_: &mut Interpreter, op: &'static Stateless, args: Args) -> EvalResult<Value> {
    let kind = Kind::Stateless(op, args.values.clone());
    Ok(Value::Layer(Rc::new(Layer::new(kind, &args, None))))
}

/// The functional form: the kernel on the input (in training mode unless a `training=`
/// argument says otherwise).
fn apply(interp: &mut Interpreter, op: &'static Stateless, args: Args) -> EvalResult<Value> {
    let x = args.tensor(0)?;
    let shared = op.layer.params.len();
    let params = args.values[1..=shared].to_vec();
    let training = !matches!(args.values.get(shared + 1), Some(Value::Bool(false)));
    run_op(interp, args.call, || (op.kernel)(&x, &params, training))
}

/// PyTorch's `repr` of the layer: every parameter by name (`ELU(alpha=1.0)`).
pub fn repr(op: &Stateless, params: &[Value]) -> String {
    let parts: Vec<String> = op
        .layer
        .params
        .iter()
        .zip(params)
        .map(|(p, v)| {
            let shown = match v {
                Value::Float(x) => format_float(*x),
                Value::Str(s) => format!("\"{s}\""),
                other => other.to_string(),
            };
            format!("{}={shown}", p.name)
        })
        .collect();
    format!("{}({})", op.layer.name, parts.join(", "))
}
