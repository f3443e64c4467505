//! Methods of tensors, layers and optimizers (LANGUAGE.md §6, §7, §11): tables of
//! [`BuiltinDef`]s like the functions', called with the object as [`Args::receiver`], so
//! arguments bind and type-check (E0203–E0207) as for any builtin.

use super::nn::run_op;
use super::{Args, BuiltinDef, BuiltinParam as P, DefaultValue as D, Ty};
use crate::eval::tensor::shape_value;
use crate::eval::{EvalResult, Interpreter, RuntimeError, Value};
use crate::tensor::{NestedList, Tensor};

/// The method `name` of a table.
pub fn find(table: &'static [BuiltinDef], name: &str) -> Option<&'static BuiltinDef> {
    table.iter().find(|def| def.name == name)
}

/// A method with no arguments that maps the tensor to a new one.
macro_rules! unary {
    ($name:literal, $doc:literal, $body:expr) => {
        BuiltinDef {
            name: $name,
            params: &[],
            rest: None,
            doc: $doc,
            run: |interp, args| {
                let x = args.this();
                let f: fn(&Tensor) -> crate::tensor::Result<Tensor> = $body;
                run_op(interp, args.call, || f(&x))
            },
        }
    };
}

/// An in-place method with no arguments; returns the tensor itself, as PyTorch does.
fn in_place(
    interp: &mut Interpreter,
    args: &Args,
    op: impl FnOnce(&Tensor) -> crate::tensor::Result<()>,
) -> EvalResult<Value> {
    let x = args.this();
    interp.at(args.call);
    op(&x).map_err(|e| interp.tensor_err(e, args.call))?;
    Ok(Value::Tensor(x))
}

/// `add_(other)` and friends: a tensor or a number.
macro_rules! in_place_binary {
    ($name:literal, $doc:literal, $tensor_op:ident, $scalar_op:ident) => {
        BuiltinDef {
            name: $name,
            params: &[P::required("other", Ty::Any)],
            rest: None,
            doc: $doc,
            run: |interp, args| match args.value(0) {
                Value::Int(_) | Value::Float(_) => {
                    let v = args.float(0)?;
                    in_place(interp, &args, |x| x.$scalar_op(v))
                }
                _ => {
                    let other = args.tensor_like(interp, 0)?;
                    in_place(interp, &args, |x| x.$tensor_op(&other))
                }
            },
        }
    };
}

/// An out-of-place binary method: `x.add(y)`, `x.mul(2)`.
macro_rules! binary {
    ($name:literal, $doc:literal, $tensor_op:ident, $scalar_op:ident) => {
        BuiltinDef {
            name: $name,
            params: &[P::required("other", Ty::Any)],
            rest: None,
            doc: $doc,
            run: |interp, args| {
                let x = args.this();
                match args.value(0) {
                    Value::Int(_) | Value::Float(_) => {
                        let v = args.float(0)?;
                        run_op(interp, args.call, || x.$scalar_op(v))
                    }
                    _ => {
                        let other = args.tensor_like(interp, 0)?;
                        run_op(interp, args.call, || x.$tensor_op(&other))
                    }
                }
            },
        }
    };
}

/// `dim=` as a list of dims: an int, a list of ints, or none for all.
fn dims_arg(args: &Args, i: usize) -> EvalResult<Option<Vec<i64>>> {
    match args.value(i) {
        Value::None => Ok(None),
        Value::Int(d) => Ok(Some(vec![*d])),
        Value::List(_) => args.int_list(Some(i)).map(|(d, _)| Some(d)),
        other => Err(Box::new(RuntimeError::wrong_type(
            args.describe(i),
            "an int, a list of ints or none",
            other.type_name(),
            args.span(i),
        ))),
    }
}

/// `max` / `min`: of everything (a 0-d tensor), or along `dim` (a record of `values` and
/// `indices`, as PyTorch's named tuple).
fn extreme(interp: &mut Interpreter, args: Args, is_max: bool) -> EvalResult<Value> {
    let x = args.this();
    let Some(dim) = args.opt_int(0)? else {
        return run_op(interp, args.call, || if is_max { x.max() } else { x.min() });
    };
    let keepdim = args.bool(1)?;
    interp.at(args.call);
    let result = if is_max {
        x.max_dim(dim, keepdim)
    } else {
        x.min_dim(dim, keepdim)
    };
    let (values, indices) = result.map_err(|e| interp.tensor_err(e, args.call))?;
    Ok(Value::record(
        if is_max { "max" } else { "min" },
        vec![
            ("values", Value::Tensor(values)),
            ("indices", Value::Tensor(indices)),
        ],
    ))
}

fn nested(list: NestedList) -> Value {
    match list {
        NestedList::Value(v) => Value::Float(f64::from(v)),
        NestedList::List(items) => Value::list(items.into_iter().map(nested).collect()),
    }
}

const DIM_KEEPDIM: &[P] = &[
    P::optional("dim", Ty::Any, D::None),
    P::optional("keepdim", Ty::Bool, D::Bool(false)),
];

/// The methods of a tensor.
pub static TENSOR_METHODS: &[BuiltinDef] = &[
    BuiltinDef {
        name: "reshape",
        params: &[],
        rest: Some("shape"),
        doc: "x.reshape(shape...): the same elements in a new shape (a view when possible; -1 infers a dim)",
        run: |interp, args| {
            let shape = spread_ints(&args)?;
            let x = args.this();
            run_op(interp, args.call, || x.reshape(&shape))
        },
    },
    BuiltinDef {
        name: "view",
        params: &[],
        rest: Some("shape"),
        doc: "x.view(shape...): a view in a new shape (the strides must allow it)",
        run: |interp, args| {
            let shape = spread_ints(&args)?;
            let x = args.this();
            run_op(interp, args.call, || x.view(&shape))
        },
    },
    BuiltinDef {
        name: "flatten",
        params: &[
            P::optional("start_dim", Ty::Int, D::Int(0)),
            P::optional("end_dim", Ty::Int, D::Int(-1)),
        ],
        rest: None,
        doc: "x.flatten(start_dim=0, end_dim=-1): merge the dims from start_dim to end_dim",
        run: |interp, args| {
            let (x, s, e) = (args.this(), args.int(0)?, args.int(1)?);
            run_op(interp, args.call, || x.flatten(s, e))
        },
    },
    BuiltinDef {
        name: "unsqueeze",
        params: &[P::required("dim", Ty::Int)],
        rest: None,
        doc: "x.unsqueeze(dim): a view with a new dim of size 1 at dim",
        run: |interp, args| {
            let (x, d) = (args.this(), args.int(0)?);
            run_op(interp, args.call, || x.unsqueeze(d))
        },
    },
    BuiltinDef {
        name: "squeeze",
        params: &[P::optional("dim", Ty::Int, D::None)],
        rest: None,
        doc: "x.squeeze() / x.squeeze(dim): a view without dims of size 1",
        run: |interp, args| {
            let x = args.this();
            match args.opt_int(0)? {
                None => run_op(interp, args.call, || Ok(x.squeeze())),
                Some(d) => run_op(interp, args.call, || x.squeeze_dim(d)),
            }
        },
    },
    BuiltinDef {
        name: "transpose",
        params: &[P::required("dim0", Ty::Int), P::required("dim1", Ty::Int)],
        rest: None,
        doc: "x.transpose(a, b): a view with dims a and b swapped",
        run: |interp, args| {
            let (x, a, b) = (args.this(), args.int(0)?, args.int(1)?);
            run_op(interp, args.call, || x.transpose(a, b))
        },
    },
    BuiltinDef {
        name: "permute",
        params: &[],
        rest: Some("dims"),
        doc: "x.permute(dims...): a view with the dims reordered",
        run: |interp, args| {
            let dims = spread_ints(&args)?;
            let x = args.this();
            run_op(interp, args.call, || x.permute(&dims))
        },
    },
    BuiltinDef {
        name: "expand",
        params: &[],
        rest: Some("sizes"),
        doc: "x.expand(sizes...): a view repeating dims of size 1 (-1 keeps a dim)",
        run: |interp, args| {
            let sizes = spread_ints(&args)?;
            let x = args.this();
            run_op(interp, args.call, || x.expand(&sizes))
        },
    },
    unary!("t", "x.t(): the transpose of a 2-D tensor (a view)", |x| x
        .t()),
    unary!(
        "contiguous",
        "x.contiguous(): x itself if row-major in memory, else a copy",
        |x| x.contiguous()
    ),
    unary!(
        "detach",
        "x.detach(): a view with no history that does not require grad",
        |x| Ok(x.detach())
    ),
    unary!(
        "clone",
        "x.clone(): a copy in new memory that keeps the history",
        |x| x.clone_tensor()
    ),
    unary!("abs", "x.abs()", |x| x.abs()),
    unary!("sqrt", "x.sqrt()", |x| x.sqrt()),
    unary!("exp", "x.exp()", |x| x.exp()),
    unary!("log", "x.log(): the natural logarithm", |x| x.log()),
    unary!("neg", "x.neg(): -x", |x| x.neg()),
    unary!("relu", "x.relu(): max(x, 0)", |x| x.relu()),
    unary!("sigmoid", "x.sigmoid()", |x| x.sigmoid()),
    unary!("tanh", "x.tanh()", |x| x.tanh()),
    BuiltinDef {
        name: "item",
        params: &[],
        rest: None,
        doc: "x.item(): the number in a one-element tensor",
        run: |interp, args| {
            let x = args.this();
            x.item()
                .map(|v| Value::Float(f64::from(v)))
                .map_err(|e| interp.tensor_err(e, args.call))
        },
    },
    BuiltinDef {
        name: "numel",
        params: &[],
        rest: None,
        doc: "x.numel(): the number of elements",
        run: |_, args| Ok(Value::Int(args.this().numel() as i64)),
    },
    BuiltinDef {
        name: "size",
        params: &[P::optional("dim", Ty::Int, D::None)],
        rest: None,
        doc: "x.size() / x.size(dim): the shape, or one dim's size",
        run: |interp, args| {
            let x = args.this();
            match args.opt_int(0)? {
                None => Ok(shape_value(x.shape())),
                Some(d) => {
                    let n = x.ndim() as i64;
                    let i = if d < 0 { d + n } else { d };
                    match usize::try_from(i).ok().and_then(|i| x.shape().get(i)) {
                        Some(&size) => Ok(Value::Int(size as i64)),
                        None => Err(interp.tensor_err(
                            crate::tensor::TensorError::DimOutOfRange {
                                op: "size",
                                dim: d,
                                shape: x.shape().to_vec(),
                                range: x.ndim(),
                            },
                            args.span(0),
                        )),
                    }
                }
            }
        },
    },
    BuiltinDef {
        name: "dim",
        params: &[],
        rest: None,
        doc: "x.dim(): the number of dims (as x.ndim)",
        run: |_, args| Ok(Value::Int(args.this().ndim() as i64)),
    },
    BuiltinDef {
        name: "tolist",
        params: &[],
        rest: None,
        doc: "x.tolist(): the values as nested lists of floats",
        run: |interp, args| {
            // Each element becomes a value in a vector, then in the list made from it.
            let item_bytes = 2 * std::mem::size_of::<Value>();
            let list = args.this().try_tolist(item_bytes);
            Ok(nested(list.map_err(|e| interp.tensor_err(e, args.call))?))
        },
    },
    BuiltinDef {
        name: "sum",
        params: DIM_KEEPDIM,
        rest: None,
        doc: "x.sum(dim=none, keepdim=false): the sum of all elements, or along dim(s)",
        run: |interp, args| {
            let x = args.this();
            let keepdim = args.bool(1)?;
            match dims_arg(&args, 0)? {
                None => run_op(interp, args.call, || x.sum()),
                Some(d) => run_op(interp, args.call, || x.sum_dims(&d, keepdim)),
            }
        },
    },
    BuiltinDef {
        name: "mean",
        params: DIM_KEEPDIM,
        rest: None,
        doc: "x.mean(dim=none, keepdim=false): the mean of all elements, or along dim(s)",
        run: |interp, args| {
            let x = args.this();
            let keepdim = args.bool(1)?;
            match dims_arg(&args, 0)? {
                None => run_op(interp, args.call, || x.mean()),
                Some(d) => run_op(interp, args.call, || x.mean_dims(&d, keepdim)),
            }
        },
    },
    BuiltinDef {
        name: "max",
        params: &[
            P::optional("dim", Ty::Int, D::None),
            P::optional("keepdim", Ty::Bool, D::Bool(false)),
        ],
        rest: None,
        doc: "x.max() / x.max(dim, keepdim=false): the largest element, or a record of values and indices along dim",
        run: |interp, args| extreme(interp, args, true),
    },
    BuiltinDef {
        name: "min",
        params: &[
            P::optional("dim", Ty::Int, D::None),
            P::optional("keepdim", Ty::Bool, D::Bool(false)),
        ],
        rest: None,
        doc: "x.min() / x.min(dim, keepdim=false): the smallest element, or a record of values and indices along dim",
        run: |interp, args| extreme(interp, args, false),
    },
    BuiltinDef {
        name: "argmax",
        params: &[
            P::optional("dim", Ty::Int, D::None),
            P::optional("keepdim", Ty::Bool, D::Bool(false)),
        ],
        rest: None,
        doc: "x.argmax(dim=none, keepdim=false): the index of the largest element",
        run: |interp, args| {
            let (x, d, k) = (args.this(), args.opt_int(0)?, args.bool(1)?);
            run_op(interp, args.call, || x.argmax(d, k))
        },
    },
    BuiltinDef {
        name: "argmin",
        params: &[
            P::optional("dim", Ty::Int, D::None),
            P::optional("keepdim", Ty::Bool, D::Bool(false)),
        ],
        rest: None,
        doc: "x.argmin(dim=none, keepdim=false): the index of the smallest element",
        run: |interp, args| {
            let (x, d, k) = (args.this(), args.opt_int(0)?, args.bool(1)?);
            run_op(interp, args.call, || x.argmin(d, k))
        },
    },
    binary!("pow", "x.pow(exponent): x ** exponent", pow, pow_scalar),
    binary!("add", "x.add(other): x + other", add, add_scalar),
    binary!("sub", "x.sub(other): x - other", sub, sub_scalar),
    binary!("mul", "x.mul(other): x * other", mul, mul_scalar),
    binary!("div", "x.div(other): x / other", div, div_scalar),
    BuiltinDef {
        name: "matmul",
        params: &[P::required("other", Ty::Tensor)],
        rest: None,
        doc: "x.matmul(other): x @ other",
        run: |interp, args| {
            let (x, y) = (args.this(), args.tensor(0)?);
            run_op(interp, args.call, || x.matmul(&y))
        },
    },
    BuiltinDef {
        name: "clamp",
        params: &[
            P::optional("min", Ty::Number, D::None),
            P::optional("max", Ty::Number, D::None),
        ],
        rest: None,
        doc: "x.clamp(min=none, max=none): x limited to [min, max]",
        run: |interp, args| {
            let (x, lo, hi) = (args.this(), args.opt_float(0)?, args.opt_float(1)?);
            run_op(interp, args.call, || x.clamp(lo, hi))
        },
    },
    BuiltinDef {
        name: "leaky_relu",
        params: &[P::optional("negative_slope", Ty::Number, D::Float(0.01))],
        rest: None,
        doc: "x.leaky_relu(negative_slope=0.01)",
        run: |interp, args| {
            let (x, s) = (args.this(), args.float(0)?);
            run_op(interp, args.call, || x.leaky_relu(s))
        },
    },
    BuiltinDef {
        name: "softmax",
        params: &[P::required("dim", Ty::Int)],
        rest: None,
        doc: "x.softmax(dim)",
        run: |interp, args| {
            let (x, d) = (args.this(), args.int(0)?);
            run_op(interp, args.call, || x.softmax(d))
        },
    },
    BuiltinDef {
        name: "log_softmax",
        params: &[P::required("dim", Ty::Int)],
        rest: None,
        doc: "x.log_softmax(dim)",
        run: |interp, args| {
            let (x, d) = (args.this(), args.int(0)?);
            run_op(interp, args.call, || x.log_softmax(d))
        },
    },
    BuiltinDef {
        name: "backward",
        params: &[
            P::optional("gradient", Ty::Any, D::None),
            P::optional("retain_graph", Ty::Bool, D::Bool(false)),
        ],
        rest: None,
        doc: "x.backward(gradient=none, retain_graph=false): accumulate d x / d leaf into every leaf's .grad",
        run: |interp, args| {
            let x = args.this();
            let gradient = match args.value(0) {
                Value::None => None,
                _ => Some(args.tensor_like(interp, 0)?),
            };
            let retain = args.bool(1)?;
            interp.at(args.call);
            x.backward(gradient.as_ref(), retain)
                .map_err(|e| interp.tensor_err(e, args.call))?;
            Ok(Value::None)
        },
    },
    BuiltinDef {
        name: "retain_grad",
        params: &[],
        rest: None,
        doc: "x.retain_grad(): keep .grad of this non-leaf during backward",
        run: |interp, args| {
            let x = args.this();
            x.retain_grad()
                .map_err(|e| interp.tensor_err(e, args.call))?;
            Ok(Value::None)
        },
    },
    BuiltinDef {
        name: "requires_grad_",
        params: &[P::optional("requires_grad", Ty::Bool, D::Bool(true))],
        rest: None,
        doc: "x.requires_grad_(flag=true): make a leaf require grad (or not); returns x",
        run: |interp, args| {
            let flag = args.bool(0)?;
            in_place(interp, &args, |x| x.requires_grad_(flag).map(|_| ()))
        },
    },
    BuiltinDef {
        name: "zero_",
        params: &[],
        rest: None,
        doc: "x.zero_(): set every element to 0, in place",
        run: |interp, args| in_place(interp, &args, Tensor::zero_),
    },
    BuiltinDef {
        name: "fill_",
        params: &[P::required("value", Ty::Number)],
        rest: None,
        doc: "x.fill_(v): set every element to v, in place",
        run: |interp, args| {
            let v = args.float(0)?;
            in_place(interp, &args, |x| x.fill_(v))
        },
    },
    BuiltinDef {
        name: "copy_",
        params: &[P::required("src", Ty::Any)],
        rest: None,
        doc: "x.copy_(src): write src (broadcast) into x, in place",
        run: |interp, args| {
            let src = args.tensor_like(interp, 0)?;
            in_place(interp, &args, |x| x.copy_(&src))
        },
    },
    in_place_binary!("add_", "x.add_(other): x += other", add_, add_scalar_),
    in_place_binary!("sub_", "x.sub_(other): x -= other", sub_, sub_scalar_),
    in_place_binary!("mul_", "x.mul_(other): x *= other", mul_, mul_scalar_),
    in_place_binary!("div_", "x.div_(other): x /= other", div_, div_scalar_),
    BuiltinDef {
        name: "clamp_",
        params: &[
            P::optional("min", Ty::Number, D::None),
            P::optional("max", Ty::Number, D::None),
        ],
        rest: None,
        doc: "x.clamp_(min=none, max=none): clamp in place",
        run: |interp, args| {
            let (lo, hi) = (args.opt_float(0)?, args.opt_float(1)?);
            in_place(interp, &args, |x| x.clamp_(lo, hi))
        },
    },
    BuiltinDef {
        name: "normal_",
        params: &[
            P::optional("mean", Ty::Number, D::Float(0.0)),
            P::optional("std", Ty::Number, D::Float(1.0)),
        ],
        rest: None,
        doc: "x.normal_(mean=0, std=1): fill with normal samples, in place",
        run: |interp, args| {
            let (m, s) = (args.float(0)?, args.float(1)?);
            in_place(interp, &args, |x| x.normal_(m, s))
        },
    },
    BuiltinDef {
        name: "uniform_",
        params: &[
            P::optional("a", Ty::Number, D::Float(0.0)),
            P::optional("b", Ty::Number, D::Float(1.0)),
        ],
        rest: None,
        doc: "x.uniform_(a=0, b=1): fill with uniform samples from [a, b), in place",
        run: |interp, args| {
            let (a, b) = (args.float(0)?, args.float(1)?);
            in_place(interp, &args, |x| x.uniform_(a, b))
        },
    },
];

/// `x.reshape(2, 3)` as well as `x.reshape([2, 3])`: one list argument is the whole shape.
fn spread_ints(args: &Args) -> EvalResult<Vec<i64>> {
    if let [(list @ Value::List(_), span)] = args.rest.as_slice() {
        let one = Args {
            values: vec![list.clone()],
            spans: vec![*span],
            rest: Vec::new(),
            call: args.call,
            receiver: Value::None,
            def: args.def,
        };
        return one.int_list(Some(0)).map(|(v, _)| v);
    }
    args.int_list(None).map(|(v, _)| v)
}

fn layer_of(args: &Args) -> Option<&std::rc::Rc<super::layers::Layer>> {
    match &args.receiver {
        Value::Layer(layer) => Some(layer),
        _ => None,
    }
}

/// The methods of a layer.
pub static LAYER_METHODS: &[BuiltinDef] = &[
    BuiltinDef {
        name: "parameters",
        params: &[],
        rest: None,
        doc: "model.parameters(): the parameter tensors, in PyTorch's order",
        run: |_, args| {
            let params = layer_of(&args)
                .map(|l| l.named_parameters())
                .unwrap_or_default();
            Ok(Value::list(
                params.into_iter().map(|(_, t)| Value::Tensor(t)).collect(),
            ))
        },
    },
    BuiltinDef {
        name: "named_parameters",
        params: &[],
        rest: None,
        doc: "model.named_parameters(): [name, tensor] pairs with PyTorch's names (`0.weight`)",
        run: |_, args| {
            let params = layer_of(&args)
                .map(|l| l.named_parameters())
                .unwrap_or_default();
            Ok(Value::list(
                params
                    .into_iter()
                    .map(|(n, t)| Value::list(vec![Value::str(&n), Value::Tensor(t)]))
                    .collect(),
            ))
        },
    },
    BuiltinDef {
        name: "train",
        params: &[P::optional("mode", Ty::Bool, D::Bool(true))],
        rest: None,
        doc: "model.train(mode=true): training mode (BatchNorm2d uses batch statistics, Dropout drops); returns the model",
        run: |_, args| {
            let mode = args.bool(0)?;
            if let Some(layer) = layer_of(&args) {
                layer.set_training(mode);
            }
            Ok(args.receiver.clone())
        },
    },
    BuiltinDef {
        name: "eval",
        params: &[],
        rest: None,
        doc: "model.eval(): evaluation mode (running statistics, no dropout); returns the model",
        run: |_, args| {
            if let Some(layer) = layer_of(&args) {
                layer.set_training(false);
            }
            Ok(args.receiver.clone())
        },
    },
    BuiltinDef {
        name: "save",
        params: &[P::required("path", Ty::Str)],
        rest: None,
        doc: "model.save(path): write the state dict as safetensors with PyTorch's names (atomic)",
        run: |_, args| match layer_of(&args) {
            Some(layer) => super::checkpoint::save(&args, layer),
            None => Ok(Value::None),
        },
    },
    BuiltinDef {
        name: "load",
        params: &[P::required("path", Ty::Str)],
        rest: None,
        doc: "model.load(path): copy a safetensors state dict into the parameters and buffers, in place",
        run: |interp, args| match layer_of(&args) {
            Some(layer) => super::checkpoint::load(interp, &args, &std::rc::Rc::clone(layer)),
            None => Ok(Value::None),
        },
    },
    BuiltinDef {
        name: "zero_grad",
        params: &[],
        rest: None,
        doc: "model.zero_grad(): set every parameter's .grad to none",
        run: |_, args| {
            for (_, t) in layer_of(&args)
                .map(|l| l.named_parameters())
                .unwrap_or_default()
            {
                t.set_grad(None);
            }
            Ok(Value::None)
        },
    },
];

/// The methods of an optimizer.
pub static OPTIMIZER_METHODS: &[BuiltinDef] = &[
    BuiltinDef {
        name: "step",
        params: &[],
        rest: None,
        doc: "opt.step(): update every parameter that has a .grad",
        run: |interp, args| {
            if let Value::Optimizer(opt) = &args.receiver {
                interp.at(args.call);
                let result = opt.borrow_mut().step();
                result.map_err(|e| interp.tensor_err(e, args.call))?;
            }
            Ok(Value::None)
        },
    },
    BuiltinDef {
        name: "zero_grad",
        params: &[],
        rest: None,
        doc: "opt.zero_grad(): set every parameter's .grad to none (PyTorch's set_to_none=True)",
        run: |_, args| {
            if let Value::Optimizer(opt) = &args.receiver {
                opt.borrow().zero_grad();
            }
            Ok(Value::None)
        },
    },
];
