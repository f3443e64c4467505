//! Optimizer constructors (LANGUAGE.md §11): `SGD`, `Adam`, `AdamW`. The update rules are in
//! [`crate::tensor::optim`]; `step()` and `zero_grad()` are in [`super::methods`].

use std::cell::RefCell;
use std::rc::Rc;

use super::args::tensor_list;
use super::{Args, BuiltinDef, BuiltinParam as P, DefaultValue as D, Ty};
use crate::eval::{EvalResult, Interpreter, RuntimeError, Value};
use crate::tensor::Tensor;
use crate::tensor::optim::{AdamConfig, Optimizer, SgdConfig};

/// The `params` argument: a list of tensors (`model.parameters()`, `[w, b]`) or a layer.
fn params(args: &Args) -> EvalResult<Vec<Tensor>> {
    let params = match args.value(0) {
        Value::Layer(layer) => layer
            .named_parameters()
            .into_iter()
            .map(|(_, t)| t)
            .collect(),
        other => tensor_list(other, args.span(0), &args.describe(0))?,
    };
    if let Some(frozen) = params.iter().position(|p| !p.is_leaf()) {
        return Err(Box::new(RuntimeError::value_with_help(
            format!("optimizer parameter {frozen} is not a leaf tensor: it was computed by an op"),
            args.span(0),
            "cannot optimize a computed tensor",
            "optimize the leaves (`requires_grad=true` tensors, or `model.parameters()`), or `.detach().requires_grad_()` a copy",
        )));
    }
    Ok(params)
}

fn wrap(
    interp: &Interpreter,
    args: &Args,
    made: Result<Optimizer, crate::tensor::TensorError>,
) -> EvalResult<Value> {
    made.map(|o| Value::Optimizer(Rc::new(RefCell::new(o))))
        .map_err(|e| interp.tensor_err(e, args.call))
}

pub(super) const SGD: BuiltinDef = BuiltinDef {
    name: "SGD",
    params: &[
        P::required("params", Ty::Any),
        P::required("lr", Ty::Number),
        P::optional("momentum", Ty::Number, D::Float(0.0)),
        P::optional("weight_decay", Ty::Number, D::Float(0.0)),
        P::optional("nesterov", Ty::Bool, D::Bool(false)),
    ],
    rest: None,
    doc: "SGD(params, lr, momentum=0, weight_decay=0, nesterov=false): stochastic gradient descent",
    run: |interp, args| {
        let config = SgdConfig {
            lr: args.float(1)?,
            momentum: args.float(2)?,
            weight_decay: args.float(3)?,
            nesterov: args.bool(4)?,
        };
        let made = Optimizer::sgd(params(&args)?, config);
        wrap(interp, &args, made)
    },
};

fn adam(interp: &mut Interpreter, args: Args, decoupled: bool) -> EvalResult<Value> {
    let config = AdamConfig {
        lr: args.float(1)?,
        betas: args.float_pair(2)?,
        eps: args.float(3)?,
        weight_decay: args.float(4)?,
        decoupled,
    };
    let made = Optimizer::adam(params(&args)?, config);
    wrap(interp, &args, made)
}

pub(super) const ADAM: BuiltinDef = BuiltinDef {
    name: "Adam",
    params: &[
        P::required("params", Ty::Any),
        P::optional("lr", Ty::Number, D::Float(0.001)),
        P::optional("betas", Ty::Any, D::None),
        P::optional("eps", Ty::Number, D::Float(1e-8)),
        P::optional("weight_decay", Ty::Number, D::Float(0.0)),
    ],
    rest: None,
    doc: "Adam(params, lr=0.001, betas=[0.9, 0.999], eps=1e-8, weight_decay=0)",
    run: |interp, args| adam(interp, with_default_betas(args), false),
};

pub(super) const ADAMW: BuiltinDef = BuiltinDef {
    name: "AdamW",
    params: &[
        P::required("params", Ty::Any),
        P::optional("lr", Ty::Number, D::Float(0.001)),
        P::optional("betas", Ty::Any, D::None),
        P::optional("eps", Ty::Number, D::Float(1e-8)),
        P::optional("weight_decay", Ty::Number, D::Float(0.01)),
    ],
    rest: None,
    doc: "AdamW(params, lr=0.001, betas=[0.9, 0.999], eps=1e-8, weight_decay=0.01): Adam with decoupled weight decay",
    run: |interp, args| adam(interp, with_default_betas(args), true),
};

/// `betas` defaults to `[0.9, 0.999]` (a list cannot be a constant default).
fn with_default_betas(mut args: Args) -> Args {
    if let Some(v @ Value::None) = args.values.get_mut(2) {
        *v = Value::list(vec![Value::Float(0.9), Value::Float(0.999)]);
    }
    args
}
