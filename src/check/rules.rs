//! Shape rules, keyed by builtin, layer and method name: what a call returns, and the
//! errors that are certain before anything runs. Anything not listed here returns
//! unknown ([`RESULT_UNKNOWN`]).

use std::rc::Rc;

use super::dim::{Comparison, Preconditions, SymDim, compare};
use super::error::CheckError;
use super::ty::{Grad, TensorTy, Ty};
use super::walk::{Checker, TyArg, combined, derived};
use crate::builtins::{BuiltinDef, BuiltinParam, DefaultValue, stateless};
use crate::diagnostic::binding::{self, Argument, Callee};
use crate::eval::tensor_error::{TensorCode, TensorDiagnostic, from_tensor_error};
use crate::eval::{RuntimeError, Value};
use crate::source::Span;
use crate::syntax::ast::{Arg, ExprKind};
use crate::tensor::{TensorError, checks};

/// Builtins, layers and methods whose result the checker does not compute (it still checks
/// their arguments' names and arity).
pub const RESULT_UNKNOWN: &[&str] = &[
    "print",
    "len",
    "sum",
    "min",
    "max",
    "sorted",
    "range",
    "str",
    "round",
    "abs",
    "now",
    "timeit",
    "linspace",
    "eye",
    "randint",
    "seed",
    "shares_storage",
    "assert_close",
    "conv_matrix",
    "batch_norm",
    "stack",
    "matmul",
    "mse_loss",
    "l1_loss",
    "binary_cross_entropy_with_logits",
    "Dropout",
    "parameter_count",
    "summary",
    "receptive_field",
    "SGD",
    "Adam",
    "AdamW",
];

/// Builtins with a rule in [`Checker::builtin`].
pub const BUILTIN_RULES: &[&str] = &[
    "tensor",
    "conv2d",
    "conv_transpose2d",
    "max_pool2d",
    "avg_pool2d",
    "linear",
    "pixel_shuffle",
    "interpolate",
    "zeros",
    "ones",
    "rand",
    "randn",
    "full",
    "arange",
    "zeros_like",
    "ones_like",
    "randn_like",
    "softmax",
    "log_softmax",
    "dropout",
    "cross_entropy",
    "cat",
    "Conv2d",
    "ConvTranspose2d",
    "Linear",
    "MaxPool2d",
    "AvgPool2d",
    "Softmax",
    "Identity",
    "Flatten",
    "Sequential",
    "BatchNorm2d",
    "Upsample",
    "PixelShuffle",
    "load_npy",
    "save_npy",
];

/// Tensor methods that keep the shape.
pub const SAME_SHAPE_METHODS: &[&str] = &[
    "contiguous",
    "clone",
    "abs",
    "sqrt",
    "exp",
    "log",
    "pow",
    "clamp",
    "relu",
    "sigmoid",
    "tanh",
    "softmax",
    "log_softmax",
    "leaky_relu",
];

/// In-place tensor methods.
pub const INPLACE_METHODS: &[&str] = &[
    "zero_", "fill_", "copy_", "add_", "sub_", "mul_", "div_", "clamp_", "normal_", "uniform_",
];

/// Tensor methods with a rule in [`Checker::method`]; the others give unknown.
pub const METHOD_RULES: &[&str] = &[
    "reshape",
    "view",
    "unsqueeze",
    "squeeze",
    "transpose",
    "t",
    "detach",
    "backward",
    "item",
    "numel",
];

/// Tensor methods whose result the checker does not compute (it still checks their
/// arguments' names and arity).
pub const METHODS_RESULT_UNKNOWN: &[&str] = &[
    "flatten",
    "permute",
    "expand",
    "neg",
    "size",
    "dim",
    "tolist",
    "sum",
    "mean",
    "max",
    "min",
    "argmax",
    "argmin",
    "add",
    "sub",
    "mul",
    "div",
    "matmul",
    "retain_grad",
    "requires_grad_",
];

/// Bound arguments: one slot per parameter, and the surplus positionals.
pub(super) type Bound = binding::Bound<Ty>;

pub(super) fn slot_named<'a>(
    params: &[BuiltinParam],
    slots: &'a [Option<(Ty, Span)>],
    name: &str,
) -> Option<&'a (Ty, Span)> {
    let i = params.iter().position(|p| p.name == name)?;
    slots.get(i)?.as_ref()
}

pub(super) fn default_ty(d: DefaultValue) -> Ty {
    match d {
        DefaultValue::Required | DefaultValue::None => Ty::None,
        DefaultValue::Bool(b) => Ty::Bool(Some(b)),
        DefaultValue::Int(i) => Ty::Int(Some(i)),
        DefaultValue::Float(_) => Ty::Float,
        DefaultValue::Str(s) => Ty::Str(Some(Rc::from(s))),
    }
}

/// An int or a `[h, w]` pair of ints.
pub(super) fn pair(t: &Ty) -> Option<[i64; 2]> {
    match t {
        Ty::Int(Some(v)) => Some([*v, *v]),
        Ty::List(Some(items)) => match items.as_slice() {
            [a, b] => Some([a.as_int()?, b.as_int()?]),
            _ => None,
        },
        _ => None,
    }
}

/// A shape whose every dim is a known constant, as the engine holds it.
pub(super) fn concrete_shape(shape: &[SymDim]) -> Option<Vec<usize>> {
    shape
        .iter()
        .map(|d| d.as_const().and_then(|v| usize::try_from(v).ok()))
        .collect()
}

/// A constant int that can be a size.
fn nonneg(t: &Ty) -> Option<i64> {
    t.as_int().filter(|d| *d >= 0)
}

pub(super) fn concrete_usize(shape: &[i64]) -> Vec<usize> {
    shape
        .iter()
        .map(|&d| usize::try_from(d).unwrap_or(0))
        .collect()
}

fn from_runtime(err: RuntimeError) -> Option<CheckError> {
    match err {
        RuntimeError::Tensor(d) => Some(CheckError::Shape(d)),
        RuntimeError::IndexOutOfRange(e) => Some(CheckError::Index(e)),
        RuntimeError::Bind(p) => Some(CheckError::Bind(p)),
        _ => None,
    }
}

pub(super) fn tensor_of(t: &Ty) -> Option<&TensorTy> {
    match t {
        Ty::Tensor(t) => Some(t),
        _ => None,
    }
}

impl Checker {
    pub(super) fn tensor_error(&mut self, err: TensorError, span: Span) {
        if let Some(e) = from_runtime(*from_tensor_error(err, span, &|_| None)) {
            self.error(e);
        }
    }

    /// Binds `args` against a builtin's signature with the interpreter's routine
    /// (E0203–E0206, worded once); `None` after an error.
    pub(super) fn bind(
        &mut self,
        def: &'static BuiltinDef,
        args: &[TyArg],
        call: Span,
    ) -> Option<Bound> {
        let params = def.params;
        let signature = || def.signature();
        let callee = Callee {
            name: def.name,
            params: &params,
            variadic: def.rest.is_some(),
            signature: &signature,
        };
        let args = args.iter().map(|a| Argument {
            keyword: a.name.clone(),
            value: a.ty.clone(),
            span: a.span,
        });
        let checked = binding::bind(&callee, args, call).and_then(|bound| {
            for (param, slot) in params.iter().zip(&bound.slots) {
                if let Some((ty, at)) = slot
                    && !(param.default == DefaultValue::None && *ty == Ty::None)
                {
                    param.ty.check(ty, param.name, def.name, *at)?;
                }
            }
            Ok(bound)
        });
        match checked {
            Ok(bound) => Some(bound),
            Err(problem) => {
                self.error(CheckError::Bind(problem));
                None
            }
        }
    }

    /// `f(args)` for any callee.
    pub(super) fn apply(&mut self, f: &Ty, args: &[TyArg], span: Span, ast: Option<&[Arg]>) -> Ty {
        match f {
            Ty::Builtin(super::ty::BuiltinRef(def)) => {
                let Some(bound) = self.bind(def, args, span) else {
                    return Ty::Unknown;
                };
                self.builtin(def, &bound, span, ast)
            }
            Ty::Layer(layer) => {
                let args = args.iter().map(|a| Argument {
                    keyword: a.name.clone(),
                    value: &a.ty,
                    span: a.span,
                });
                match binding::bind_layer_input(layer.kind, args, span) {
                    Ok((ty, at)) => self.apply_layer(layer, ty, at, span),
                    Err(problem) => {
                        self.error(CheckError::Bind(problem));
                        Ty::Unknown
                    }
                }
            }
            Ty::Net(net) => {
                let mut params = vec![Ty::Unknown; net.params.len()];
                let mut ok = args.len() <= net.params.len();
                for (i, a) in args.iter().enumerate() {
                    match &a.name {
                        None => {
                            if let Some(p) = params.get_mut(i) {
                                *p = a.ty.clone();
                            }
                        }
                        Some((n, _)) => match net.params.iter().position(|p| p.name.name == *n) {
                            Some(k) => params[k] = a.ty.clone(),
                            None => ok = false,
                        },
                    }
                }
                for (i, p) in net.params.iter().enumerate() {
                    let given = args.iter().enumerate().any(|(k, a)| match &a.name {
                        None => k == i,
                        Some((n, _)) => *n == p.name.name,
                    });
                    if !given {
                        match &p.default {
                            Some(d) => params[i] = self.quiet_const(d),
                            None => ok = false,
                        }
                    }
                }
                if !ok {
                    return Ty::Unknown;
                }
                self.build_model(net, params, span)
            }
            Ty::Model(model) => self.call_model(model, args, span),
            _ => Ty::Unknown,
        }
    }

    /// A net parameter's default as a constant, without reporting anything twice.
    pub(super) fn quiet_const(&mut self, e: &crate::syntax::ast::Expr) -> Ty {
        match &e.node {
            ExprKind::Int(v) => Ty::Int(Some(*v)),
            ExprKind::Float(_) => Ty::Float,
            ExprKind::Bool(b) => Ty::Bool(Some(*b)),
            ExprKind::Str(s) => Ty::Str(Some(s.clone())),
            ExprKind::None => Ty::None,
            _ => Ty::Unknown,
        }
    }

    /// The rule of a builtin function or constructor.
    fn builtin(
        &mut self,
        def: &'static BuiltinDef,
        b: &Bound,
        span: Span,
        ast: Option<&[Arg]>,
    ) -> Ty {
        let grad_arg = |b: &Bound| match slot_named(def.params, &b.slots, "requires_grad") {
            Some((Ty::Bool(Some(true)), _)) => Grad::Leaf,
            Some((Ty::Bool(Some(false)), _)) | None => Grad::No,
            Some(_) => Grad::Unknown,
        };
        match def.name {
            "zeros" | "ones" | "rand" | "randn" => {
                let dims = match b.rest.as_slice() {
                    // A negative size is the run's error; its shape stays unknown.
                    [(Ty::List(Some(items)), _)] => items.iter().map(nonneg).collect(),
                    [(Ty::List(None), _)] => None,
                    items => items
                        .iter()
                        .map(|(t, _)| nonneg(t))
                        .collect::<Option<Vec<_>>>(),
                };
                let shape = dims.map(|d: Vec<i64>| d.into_iter().map(SymDim::constant).collect());
                Ty::Tensor(TensorTy {
                    shape,
                    grad: grad_arg(b),
                    field: None,
                })
            }
            "full" => {
                let shape = match b.get(0) {
                    Some(Ty::List(Some(items))) => items
                        .iter()
                        .map(|t| nonneg(t).map(SymDim::constant))
                        .collect(),
                    _ => None,
                };
                Ty::Tensor(TensorTy {
                    shape,
                    grad: grad_arg(b),
                    field: None,
                })
            }
            "zeros_like" | "ones_like" | "randn_like" => {
                let shape = b.get(0).and_then(tensor_of).and_then(|t| t.shape.clone());
                Ty::Tensor(TensorTy {
                    shape,
                    grad: grad_arg(b),
                    field: None,
                })
            }
            "arange" => {
                let one = Ty::Int(Some(1));
                let ints = (
                    b.get(0).and_then(Ty::as_int),
                    b.get(1),
                    b.get(2).or(Some(&one)),
                );
                let len = match ints {
                    (Some(end), Some(Ty::None) | None, Some(Ty::Int(Some(1))) | None) => Some(end),
                    (Some(start), Some(Ty::Int(Some(end))), Some(Ty::Int(Some(step))))
                        if *step != 0 =>
                    {
                        // In 128 bits: `arange(-2**63, 2**63 - 1)` spans more than 64.
                        let (n, step) = (i128::from(*end) - i128::from(start), i128::from(*step));
                        i64::try_from(if (n > 0) == (step > 0) {
                            (n + step - step.signum()) / step
                        } else {
                            0
                        })
                        .ok()
                    }
                    _ => None,
                };
                let shape = len.map(|n| vec![SymDim::constant(n.max(0))]);
                Ty::Tensor(TensorTy {
                    shape,
                    grad: grad_arg(b),
                    field: None,
                })
            }
            "tensor" => {
                let grad = grad_arg(b);
                match b.get(0) {
                    Some(Ty::Tensor(t)) => Ty::Tensor(TensorTy {
                        shape: t.shape.clone(),
                        grad,
                        field: t.field.clone(),
                    }),
                    Some(data) => {
                        let data_ast = ast.and_then(|a| a.first()).map(|a| &a.value);
                        let shape = self.literal_shape(
                            data,
                            data_ast,
                            b.slots[0].as_ref().map_or(span, |s| s.1),
                        );
                        Ty::Tensor(TensorTy {
                            shape,
                            grad,
                            field: None,
                        })
                    }
                    None => Ty::Tensor(TensorTy::unknown()),
                }
            }
            name if let Some(op) = stateless::by_function(name) => match b.get(0) {
                Some(Ty::Tensor(t)) => {
                    let size =
                        slot_named(def.params, &b.slots, "output_size").and_then(|(t, _)| pair(t));
                    self.apply_stateless(op, size, t, span)
                }
                _ => Ty::Tensor(TensorTy::unknown()),
            },
            "softmax" | "log_softmax" | "dropout" => {
                if let (Some(Ty::Tensor(t)), Some((Ty::Int(Some(dim)), _))) =
                    (b.get(0), slot_named(def.params, &b.slots, "dim"))
                    && !self.dim_in_range(def.name, *dim, t, span)
                {
                    return Ty::Unknown;
                }
                match b.get(0) {
                    Some(Ty::Tensor(t)) => Ty::Tensor(TensorTy {
                        shape: t.shape.clone(),
                        grad: derived(t.grad, self.no_grad),
                        field: t.field.clone(),
                    }),
                    _ => Ty::Tensor(TensorTy::unknown()),
                }
            }
            "cat" => self.cat(b, span),
            "cross_entropy" => self.cross_entropy(b, span),
            // A literal path to a readable file gives its shape from the header alone; any
            // other path, or a file that cannot be read, is unknown: the run reports it.
            "load_npy" => {
                let shape = match b.get(0) {
                    Some(Ty::Str(Some(path))) => crate::tensor::npy::file_header(
                        std::path::Path::new(&**path),
                    )
                    .and_then(|h| {
                        h.shape
                            .iter()
                            .map(|&d| i64::try_from(d).ok().map(SymDim::constant))
                            .collect()
                    }),
                    _ => None,
                };
                Ty::Tensor(TensorTy {
                    shape,
                    grad: Grad::No,
                    field: None,
                })
            }
            "save_npy" => Ty::None,
            "conv2d" | "conv_transpose2d" | "max_pool2d" | "avg_pool2d" | "linear"
            | "pixel_shuffle" | "interpolate" => self.functional_window(def, b, span),
            name if BUILTIN_RULES.contains(&name) || stateless::by_layer(name).is_some() => {
                self.build_layer(def, b, span)
            }
            _ => Ty::Unknown,
        }
    }

    /// The shape of a nested-list literal; E0310 when it is ragged.
    fn literal_shape(
        &mut self,
        data: &Ty,
        ast: Option<&crate::syntax::ast::Expr>,
        span: Span,
    ) -> Option<Vec<SymDim>> {
        let value = literal_value(data)?;
        match crate::builtins::args::tensor_from_value(&value) {
            Ok(t) => Some(
                t.shape()
                    .iter()
                    .map(|&d| SymDim::constant(d as i64))
                    .collect(),
            ),
            Err(crate::builtins::args::LiteralError::Ragged(rows, message)) => {
                let find = |path: &[usize]| {
                    let mut node = ast?;
                    for &i in path {
                        match &node.node {
                            ExprKind::List(items) if i < items.len() => node = &items[i],
                            _ => return None,
                        }
                    }
                    Some(node.span)
                };
                let mut d = TensorDiagnostic::new(TensorCode::RaggedLiteral, message, span, "this row's length differs")
                    .with_help("every row of a tensor literal needs the same length; pad the short rows or split the data");
                if let (Some(row), Some(first)) = (find(&rows.path), find(&rows.first_path)) {
                    d.span = row;
                    d.related.push((first, rows.first_label));
                }
                self.error(CheckError::Shape(Box::new(d)));
                None
            }
            Err(_) => None,
        }
    }

    /// Two dims that must be equal (`cat`, `+`, `@`, an annotation): `Equal` when proved,
    /// `Differ` after reporting E0312 with the counterexample (`with H = 5: 6 vs 5`), and
    /// `Unknown` when neither can be shown: the run-time check decides, nothing is said.
    pub(super) fn require_equal(
        &mut self,
        a: &SymDim,
        b: &SymDim,
        preconditions: &Preconditions,
        span: Span,
        what: impl FnOnce() -> String,
        fix: &str,
    ) -> Comparison {
        let outcome = compare(a, b, preconditions);
        if let Comparison::Differ(cx) = &outcome {
            self.error(CheckError::MayDiffer {
                left: a.to_string(),
                right: b.to_string(),
                span,
                what: what(),
                help: format!("{cx}; {fix}"),
                calls: Vec::new(),
            });
        }
        outcome
    }

    /// Whether `dim` names a dim of `t` for `op` (softmax-like ops: `-ndim..ndim`), E0309
    /// as the run-time check gives it when not; `true` when the shape is not known.
    pub(super) fn dim_in_range(&mut self, op: &str, dim: i64, t: &TensorTy, span: Span) -> bool {
        let Some(shape) = t.shape.as_deref().and_then(concrete_shape) else {
            return true;
        };
        let op = match op {
            "softmax" => "softmax",
            "log_softmax" => "log_softmax",
            _ => return true,
        };
        match checks::dim_index(op, dim, &shape, shape.len()) {
            Ok(_) => true,
            Err(err) => {
                self.tensor_error(err, span);
                false
            }
        }
    }

    /// `cross_entropy(input, target)`: a 0-dim loss; E0314 when the known shapes do not fit.
    fn cross_entropy(&mut self, b: &Bound, span: Span) -> Ty {
        let (Some(Ty::Tensor(x)), Some(Ty::Tensor(t))) = (b.get(0), b.get(1)) else {
            return Ty::Tensor(TensorTy::unknown());
        };
        let known = |t: &TensorTy| t.shape.as_deref().and_then(concrete_shape);
        if let (Some(input), Some(target)) = (known(x), known(t))
            && let Err(err) = checks::cross_entropy_target(&input, &target)
        {
            let input_at = b.slots[0].as_ref().map_or(span, |s| s.1);
            let target_at = b.slots[1].as_ref().map_or(span, |s| s.1);
            if let Some(CheckError::Shape(d)) =
                from_runtime(*from_tensor_error(err, span, &|_| None))
            {
                let d = d.on_loss_operands((input_at, &input), (target_at, &target));
                self.error(CheckError::Shape(Box::new(d)));
            }
            return Ty::Unknown;
        }
        Ty::Tensor(TensorTy {
            shape: Some(Vec::new()),
            grad: combined(x.grad, t.grad, self.no_grad),
            field: None,
        })
    }

    fn cat(&mut self, b: &Bound, span: Span) -> Ty {
        let unknown = Ty::Tensor(TensorTy::unknown());
        let (Some(Ty::List(Some(items))), Some(Ty::Int(Some(dim)))) =
            (b.get(0), b.get(1).or(Some(&Ty::Int(Some(0)))))
        else {
            return unknown;
        };
        let mut shapes = Vec::new();
        let mut grad = Grad::No;
        let mut field = None;
        for (i, item) in items.iter().enumerate() {
            match item {
                Ty::Tensor(TensorTy {
                    shape: Some(s),
                    grad: g,
                    field: f,
                }) => {
                    grad = combined(grad, *g, self.no_grad);
                    field = if i == 0 {
                        f.clone()
                    } else {
                        super::ty::merge_fields(field.as_ref(), f.as_ref())
                    };
                    shapes.push(s.clone());
                }
                _ => return unknown,
            }
        }
        let concrete: Option<Vec<Vec<usize>>> = shapes
            .iter()
            .map(|s| {
                s.iter()
                    .map(|d| d.as_const().and_then(|v| usize::try_from(v).ok()))
                    .collect()
            })
            .collect();
        let rank_of_first = shapes.first().map_or(0, Vec::len);
        if let Some(concrete) = concrete {
            let refs: Vec<&[usize]> = concrete.iter().map(Vec::as_slice).collect();
            return match crate::tensor::ops::join::cat_shape(&refs, *dim) {
                Ok((out, _)) => Ty::Tensor(TensorTy {
                    shape: Some(out.into_iter().map(|d| SymDim::from(d as i64)).collect()),
                    grad,
                    // Joining along a spatial dim places pixels side by side: positions mix.
                    field: field.filter(|_| keeps_positions(*dim, rank_of_first)),
                }),
                Err(err) => {
                    self.tensor_error(err, span);
                    Ty::Unknown
                }
            };
        }
        let Some(first) = shapes.first().cloned() else {
            return unknown;
        };
        if shapes.iter().any(|s| s.len() != first.len()) || first.is_empty() {
            return unknown;
        }
        let rank = first.len() as i64;
        let d = if *dim < 0 { dim + rank } else { *dim };
        let Ok(d) = usize::try_from(d) else {
            return unknown;
        };
        if d >= first.len() {
            return unknown;
        }
        let mut out = first.clone();
        for s in &shapes[1..] {
            for (i, (a, x)) in out.iter_mut().zip(s).enumerate() {
                if i == d {
                    *a = a.clone() + x.clone();
                    continue;
                }
                // Only symbolic dims that may differ are this check's; constants the
                // run-time check reports.
                if a.as_const().is_some() && x.as_const().is_some() {
                    if a != x {
                        return unknown;
                    }
                    continue;
                }
                match self.require_equal(
                    a,
                    x,
                    &Preconditions::new(),
                    span,
                    || format!("cat along dim {d} needs dim {i} equal"),
                    &format!("crop or pad one of them so dim {i} agrees"),
                ) {
                    Comparison::Differ(_) => return Ty::Unknown,
                    Comparison::Equal => {}
                    Comparison::Unknown => *a = SymDim::unknown(),
                }
            }
        }
        Ty::Tensor(TensorTy {
            shape: Some(out),
            grad,
            field: field.filter(|_| keeps_positions(*dim, first.len())),
        })
    }
}

/// Whether `cat` along `dim` of rank-`rank` tensors keeps pixels where they were: only a
/// join along a dim before the last two (batch, channels) does.
fn keeps_positions(dim: i64, rank: usize) -> bool {
    let rank = rank as i64;
    let d = if dim < 0 { dim + rank } else { dim };
    (0..rank - 2).contains(&d)
}

/// The nested-list literal as a value, when it holds only numbers and lists.
fn literal_value(t: &Ty) -> Option<Value> {
    match t {
        Ty::Int(Some(v)) => Some(Value::Int(*v)),
        Ty::List(Some(items)) => Some(Value::list(
            items
                .iter()
                .map(literal_value)
                .collect::<Option<Vec<_>>>()?,
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtins::BUILTINS;
    use crate::builtins::methods::TENSOR_METHODS;

    fn listed(name: &str, tables: &[&[&str]]) -> bool {
        tables.iter().any(|t| t.contains(&name))
            || stateless::by_layer(name).is_some()
            || stateless::by_function(name).is_some()
    }

    #[test]
    fn every_builtin_has_a_rule_or_is_listed_unknown() {
        let missing: Vec<&str> = BUILTINS
            .iter()
            .map(|d| d.name)
            .filter(|n| !listed(n, &[BUILTIN_RULES, RESULT_UNKNOWN]))
            .collect();
        assert!(missing.is_empty(), "builtins with no rule: {missing:?}");
    }

    #[test]
    fn every_tensor_method_has_a_rule_or_is_listed_unknown() {
        let tables: &[&[&str]] = &[
            METHOD_RULES,
            SAME_SHAPE_METHODS,
            INPLACE_METHODS,
            METHODS_RESULT_UNKNOWN,
        ];
        let missing: Vec<&str> = TENSOR_METHODS
            .iter()
            .map(|d| d.name)
            .filter(|n| !listed(n, tables))
            .collect();
        assert!(
            missing.is_empty(),
            "tensor methods with no rule: {missing:?}"
        );
    }

    #[test]
    fn rule_tables_name_only_what_exists() {
        let builtin = |n: &str| BUILTINS.iter().any(|d| d.name == n);
        let method = |n: &str| TENSOR_METHODS.iter().any(|d| d.name == n);
        let mut stray = Vec::new();
        for n in BUILTIN_RULES.iter().chain(RESULT_UNKNOWN) {
            if !builtin(n) {
                stray.push(*n);
            }
        }
        for n in METHOD_RULES
            .iter()
            .chain(SAME_SHAPE_METHODS)
            .chain(INPLACE_METHODS)
            .chain(METHODS_RESULT_UNKNOWN)
        {
            if !method(n) {
                stray.push(*n);
            }
        }
        assert!(
            stray.is_empty(),
            "rules for names that do not exist: {stray:?}"
        );
    }

    #[test]
    fn no_name_is_both_ruled_and_unknown() {
        let both: Vec<&str> = BUILTIN_RULES
            .iter()
            .filter(|n| RESULT_UNKNOWN.contains(n))
            .chain(
                METHOD_RULES
                    .iter()
                    .chain(SAME_SHAPE_METHODS)
                    .chain(INPLACE_METHODS)
                    .filter(|n| METHODS_RESULT_UNKNOWN.contains(n)),
            )
            .copied()
            .collect();
        assert!(both.is_empty(), "{both:?}");
    }
}
