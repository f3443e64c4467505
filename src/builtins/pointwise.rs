//! Elementwise activations, each declared once: the layer (`LeakyReLU(0.2)`), its
//! functional form (`leaky_relu(x, 0.2)`), their signatures and docs, the kernel, the
//! `repr`, and what the checker, summaries and receptive fields need to know (the shape
//! and every position are kept: the receptive field passes through unchanged). Adding an
//! activation is one [`pointwise!`] entry here plus its kernel in `tensor/`.

use std::rc::Rc;

use super::layers::{Kind, Layer};
use super::nn::run_op;
use super::{Args, BuiltinDef, BuiltinParam as P, DefaultValue as D, Ty};
use crate::eval::value::format_float;
use crate::eval::{EvalResult, Interpreter, Value};
use crate::tensor::{Tensor, TensorError};

/// One activation: its two builtins and its kernel.
pub struct Pointwise {
    /// The layer constructor, named as PyTorch's class (`GELU`).
    pub layer: BuiltinDef,
    /// The functional form, named as PyTorch's `torch.nn.functional` function (`gelu`): the
    /// input first, then the layer's parameters.
    pub function: BuiltinDef,
    /// The kernel, given the input and the layer's parameters (defaults filled in, kinds
    /// checked when the arguments were bound).
    pub kernel: fn(&Tensor, &[Value]) -> Result<Tensor, TensorError>,
}

/// Declares a [`Pointwise`] from the layer's name, the function's name, the parameters
/// they share, one doc line each, and the kernel.
macro_rules! pointwise {
    ($const:ident, $layer:literal, $function:literal, [$($param:expr),* $(,)?],
     $layer_doc:literal, $function_doc:literal, $kernel:expr) => {
        pub const $const: Pointwise = Pointwise {
            layer: BuiltinDef {
                name: $layer,
                params: &[$($param),*],
                rest: None,
                doc: $layer_doc,
                run: |interp, args| build(interp, &$const, args),
            },
            function: BuiltinDef {
                name: $function,
                params: &[P::required("input", Ty::Tensor), $($param),*],
                rest: None,
                doc: $function_doc,
                run: |interp, args| apply(interp, &$const, args),
            },
            kernel: $kernel,
        };
    };
}

pointwise!(
    RELU,
    "ReLU",
    "relu",
    [],
    "ReLU(): max(x, 0)",
    "relu(x): max(x, 0)",
    |x, _| x.relu()
);

pointwise!(
    LEAKY_RELU,
    "LeakyReLU",
    "leaky_relu",
    [P::optional("negative_slope", Ty::Number, D::Float(0.01))],
    "LeakyReLU(negative_slope=0.01)",
    "leaky_relu(x, negative_slope=0.01): x where positive, negative_slope*x elsewhere",
    |x, p| x.leaky_relu(number(&p[0]))
);

pointwise!(
    SIGMOID,
    "Sigmoid",
    "sigmoid",
    [],
    "Sigmoid(): 1 / (1 + exp(-x))",
    "sigmoid(x): 1 / (1 + exp(-x))",
    |x, _| x.sigmoid()
);

pointwise!(
    TANH,
    "Tanh",
    "tanh",
    [],
    "Tanh(): the hyperbolic tangent",
    "tanh(x): the hyperbolic tangent",
    |x, _| x.tanh()
);

/// Every activation, in the order `:help` lists them.
pub const ALL: &[&Pointwise] = &[&RELU, &LEAKY_RELU, &SIGMOID, &TANH];

/// The activation whose layer is called `name` (`GELU`).
pub fn by_layer(name: &str) -> Option<&'static Pointwise> {
    ALL.iter().copied().find(|p| p.layer.name == name)
}

/// The activation whose functional form is called `name` (`gelu`).
pub fn by_function(name: &str) -> Option<&'static Pointwise> {
    ALL.iter().copied().find(|p| p.function.name == name)
}

/// A number parameter (ints are accepted where PyTorch takes a float).
fn number(value: &Value) -> f64 {
    value.as_f64().unwrap_or_default()
}

/// The layer constructor: the configuration is kept for the kernel (as in PyTorch, a value
/// the kernel refuses is reported when the layer runs).
fn build(_: &mut Interpreter, op: &'static Pointwise, args: Args) -> EvalResult<Value> {
    let kind = Kind::Pointwise(op, args.values.clone());
    Ok(Value::Layer(Rc::new(Layer::new(kind, &args, None))))
}

/// The functional form: the kernel on the input.
fn apply(interp: &mut Interpreter, op: &'static Pointwise, args: Args) -> EvalResult<Value> {
    let x = args.tensor(0)?;
    let params = args.values[1..].to_vec();
    run_op(interp, args.call, || (op.kernel)(&x, &params))
}

/// PyTorch's `repr` of the layer: every parameter by name (`ELU(alpha=1.0)`).
pub fn repr(op: &Pointwise, params: &[Value]) -> String {
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
