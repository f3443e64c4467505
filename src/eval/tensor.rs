//! The tensor half of the interpreter: operators, fields, methods, indexing, in-place
//! assignment, iteration and truthiness of tensors, layers and optimizers, plus the call-site
//! table and the warning channel the tensor engine needs.
//!
//! The engine knows nothing of source code. Before each operation the interpreter sets the
//! engine's current [`Site`], an interned number for the span of the expression; the graph
//! remembers sites, and [`Interpreter::tensor_err`] maps them back to spans, so E0404 can
//! point at the op that saved a tensor and the one that changed it.

use std::rc::Rc;

use super::call::CallArg;
use super::error::{RuntimeError, RuntimeWarning, closest};
use super::ops::BinSpans;
use super::tensor_error::{TensorCode, TensorDiagnostic, from_tensor_error};
use super::{EvalResult, Interpreter, Value};
use crate::builtins::methods;
use crate::builtins::{Args, BuiltinDef};
use crate::source::Span;
use crate::syntax::ast::{BinOp, Expr, ExprKind, Ident, IndexItem, IndexKind, ShapeSpec};
use crate::tensor::{self, Comparison, Site, Tensor, TensorError};

/// The fields a tensor has, for `x.name` and suggestions.
pub const TENSOR_FIELDS: &[&str] = &[
    "shape",
    "ndim",
    "grad",
    "requires_grad",
    "is_leaf",
    "grad_fn",
    "T",
];

/// The fields and methods of a kind of object, for `x.name(...)` and suggestions.
pub struct Members {
    /// How messages name the type.
    pub type_name: &'static str,
    /// Its fields.
    pub fields: &'static [&'static str],
    /// Its methods.
    pub methods: &'static [BuiltinDef],
}

/// A tensor's members.
pub const TENSOR_MEMBERS: Members = Members {
    type_name: "tensor",
    fields: TENSOR_FIELDS,
    methods: methods::TENSOR_METHODS,
};

/// A layer's members.
pub const LAYER_MEMBERS: Members = Members {
    type_name: "layer",
    fields: crate::builtins::layers::Layer::FIELDS,
    methods: methods::LAYER_METHODS,
};

/// An optimizer's members.
pub const OPTIMIZER_MEMBERS: Members = Members {
    type_name: "optimizer",
    fields: &[],
    methods: methods::OPTIMIZER_METHODS,
};

/// The help of E0202 for `name` on a value with these fields and methods: the closest
/// member, or all of them. The checker reports the same words before the run.
pub fn member_help(
    type_name: &str,
    name: &str,
    fields: &[&'static str],
    methods: &'static [BuiltinDef],
) -> String {
    let candidates = fields.iter().copied().chain(methods.iter().map(|m| m.name));
    match closest(name, candidates) {
        Some(near) => format!("did you mean `{near}`?"),
        None => {
            let mut all: Vec<&str> = fields.to_vec();
            all.extend(methods.iter().map(|m| m.name));
            format!("a {type_name} has {}", all.join(", "))
        }
    }
}

/// The help of E0202 for a type with no fields or methods at all (`int`, `list`, ...).
pub fn memberless_help(type_name: &str) -> String {
    match type_name {
        "list" | "str" | "range" => {
            "lists, strings and ranges have no methods; use builtins such as `len(x)`".to_string()
        }
        _ => format!("a {type_name} has no fields or methods"),
    }
}

/// A number operand of a tensor operator (`t * 2`, `1 - t`).
fn scalar_of(value: &Value) -> Option<f64> {
    match value {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    }
}

fn comparison(op: BinOp) -> Option<Comparison> {
    Some(match op {
        BinOp::Eq => Comparison::Eq,
        BinOp::Ne => Comparison::Ne,
        BinOp::Lt => Comparison::Lt,
        BinOp::Le => Comparison::Le,
        BinOp::Gt => Comparison::Gt,
        BinOp::Ge => Comparison::Ge,
        _ => return None,
    })
}

/// `a op b` with the operands swapped: `2 < t` is `t > 2`.
fn flipped(cmp: Comparison) -> Comparison {
    match cmp {
        Comparison::Lt => Comparison::Gt,
        Comparison::Le => Comparison::Ge,
        Comparison::Gt => Comparison::Lt,
        Comparison::Ge => Comparison::Le,
        other => other,
    }
}

/// Why a tensor operator could not run: a type the operator does not take, or an engine
/// error.
enum OpFailure {
    Type,
    Tensor(TensorError),
}

impl From<TensorError> for OpFailure {
    fn from(e: TensorError) -> Self {
        OpFailure::Tensor(e)
    }
}

/// `lhs op rhs` where at least one side is a tensor.
fn tensor_binary(op: BinOp, lhs: &Value, rhs: &Value) -> Result<Value, OpFailure> {
    // `x == none` is a question about identity with none, never an error (LANGUAGE.md §5).
    if matches!(op, BinOp::Eq | BinOp::Ne)
        && (matches!(lhs, Value::None) || matches!(rhs, Value::None))
    {
        return Ok(Value::Bool(op == BinOp::Ne));
    }
    let out = match (lhs, rhs) {
        (Value::Tensor(a), Value::Tensor(b)) => match op {
            BinOp::Add => a.add(b)?,
            BinOp::Sub => a.sub(b)?,
            BinOp::Mul => a.mul(b)?,
            BinOp::Div => a.div(b)?,
            BinOp::Pow => a.pow(b)?,
            BinOp::MatMul => a.matmul(b)?,
            _ => match comparison(op) {
                Some(cmp) => a.compare(b, cmp)?,
                None => return Err(OpFailure::Type),
            },
        },
        (Value::Tensor(a), other) => {
            let x = scalar_of(other).ok_or(OpFailure::Type)?;
            match op {
                BinOp::Add => a.add_scalar(x)?,
                BinOp::Sub => a.sub_scalar(x)?,
                BinOp::Mul => a.mul_scalar(x)?,
                BinOp::Div => a.div_scalar(x)?,
                BinOp::Pow => a.pow_scalar(x)?,
                _ => match comparison(op) {
                    Some(cmp) => a.compare_scalar(x, cmp)?,
                    None => return Err(OpFailure::Type),
                },
            }
        }
        (other, Value::Tensor(b)) => {
            let x = scalar_of(other).ok_or(OpFailure::Type)?;
            match op {
                BinOp::Add => b.add_scalar(x)?,
                BinOp::Sub => b.rsub_scalar(x)?,
                BinOp::Mul => b.mul_scalar(x)?,
                BinOp::Div => b.rdiv_scalar(x)?,
                BinOp::Pow => b.scalar_pow(x)?,
                _ => match comparison(op) {
                    Some(cmp) => b.compare_scalar(x, flipped(cmp))?,
                    None => return Err(OpFailure::Type),
                },
            }
        }
        _ => return Err(OpFailure::Type),
    };
    Ok(Value::Tensor(out))
}

/// `lhs op rhs` when either operand is a tensor, for callers without an interpreter
/// (`ops::binary`, the `sum` builtin). A forward op never needs a site to report its error.
pub fn binary_values(op: BinOp, lhs: &Value, rhs: &Value, spans: BinSpans) -> EvalResult<Value> {
    tensor_binary(op, lhs, rhs).map_err(|failure| match failure {
        OpFailure::Tensor(e) => from_tensor_error(e, spans.whole, &|_| None),
        OpFailure::Type => {
            let help = match op {
                BinOp::FloorDiv | BinOp::Mod => {
                    "tensors support + - * / ** @ and comparisons, not // or %"
                }
                _ => "a tensor combines with a tensor or a number",
            };
            Box::new(
                RuntimeError::wrong_type(
                    format!("operands of `{}`", op.symbol()),
                    "tensors or numbers",
                    format!("{} and {}", lhs.type_name(), rhs.type_name()),
                    spans.whole,
                )
                .with_help(help),
            )
        }
    })
}

impl Interpreter {
    // ---- sites and errors -------------------------------------------------------------

    /// The site number of `span`, interned so a loop reuses one number per expression.
    pub fn site_of(&mut self, span: Span) -> Site {
        if let Some(&id) = self.site_ids.get(&span) {
            return Site(id);
        }
        self.sites.push(span);
        // Site 0 is "unknown", so numbers start at 1.
        let id = u32::try_from(self.sites.len()).unwrap_or(u32::MAX);
        self.site_ids.insert(span, id);
        Site(id)
    }

    /// Makes `span` the site of the tensor operations that run next.
    pub fn at(&mut self, span: Span) {
        let site = self.site_of(span);
        tensor::set_current_site(site);
    }

    /// The span a site stands for.
    pub fn site_span(&self, site: Site) -> Option<Span> {
        let index = usize::try_from(site.0).ok()?.checked_sub(1)?;
        self.sites.get(index).copied()
    }

    /// A tensor error as a run-time error at `span`.
    pub fn tensor_err(&self, err: TensorError, span: Span) -> Box<RuntimeError> {
        from_tensor_error(err, span, &|site| self.site_span(site))
    }

    /// Records a warning once per place it is raised (a loop would repeat it).
    pub fn warn(&mut self, warning: RuntimeWarning) {
        let RuntimeWarning::GradOfNonLeaf { span } = &warning;
        if self.warned.insert(*span) {
            self.warnings.push(warning);
        }
    }

    /// The warnings raised since the last call, oldest first.
    pub fn take_warnings(&mut self) -> Vec<RuntimeWarning> {
        std::mem::take(&mut self.warnings)
    }

    // ---- operators ----------------------------------------------------------------------

    /// `lhs op rhs` when either operand is a tensor, at the expression's site.
    pub(super) fn tensor_binary(
        &mut self,
        op: BinOp,
        lhs: &Value,
        rhs: &Value,
        spans: BinSpans,
    ) -> EvalResult<Value> {
        self.at(spans.whole);
        binary_values(op, lhs, rhs, spans)
    }

    /// `-t`.
    pub(super) fn tensor_negate(&mut self, t: &Tensor, span: Span) -> EvalResult<Value> {
        self.at(span);
        t.neg()
            .map(Value::Tensor)
            .map_err(|e| self.tensor_err(e, span))
    }

    /// `x op= rhs` on a tensor: in place, so every name for `x` sees it (LANGUAGE.md §4).
    pub(super) fn tensor_in_place(
        &mut self,
        op: BinOp,
        target: &Tensor,
        rhs: &Value,
        spans: BinSpans,
    ) -> EvalResult<()> {
        self.at(spans.whole);
        let result = match (rhs, scalar_of(rhs)) {
            (Value::Tensor(r), _) => match op {
                BinOp::Add => target.add_(r),
                BinOp::Sub => target.sub_(r),
                BinOp::Mul => target.mul_(r),
                BinOp::Div => target.div_(r),
                _ => return Err(self.in_place_type(op, rhs, spans)),
            },
            (_, Some(x)) => match op {
                BinOp::Add => target.add_scalar_(x),
                BinOp::Sub => target.sub_scalar_(x),
                BinOp::Mul => target.mul_scalar_(x),
                BinOp::Div => target.div_scalar_(x),
                _ => return Err(self.in_place_type(op, rhs, spans)),
            },
            _ => return Err(self.in_place_type(op, rhs, spans)),
        };
        result.map_err(|e| self.tensor_err(e, spans.whole))
    }

    fn in_place_type(&self, op: BinOp, rhs: &Value, spans: BinSpans) -> Box<RuntimeError> {
        Box::new(RuntimeError::wrong_type(
            format!("right side of `{}=` on a tensor", op.symbol()),
            "a tensor or a number",
            rhs.type_name(),
            spans.rhs,
        ))
    }

    // ---- truthiness, iteration ----------------------------------------------------------

    /// Truthiness for `if`, `while`, `assert`, `and`, `or`, `not`: a tensor only when it
    /// holds one element (E0505 otherwise, as PyTorch's "ambiguous" error).
    pub(super) fn truth(&self, value: &Value, span: Span) -> EvalResult<bool> {
        match value {
            Value::Tensor(t) if t.numel() != 1 => Err(Box::new(RuntimeError::value_with_help(
                format!(
                    "the truth value of a tensor with {} elements is ambiguous",
                    t.numel()
                ),
                span,
                format!("this is a tensor of shape {:?}", t.shape()),
                "compare one element (`x[0] > 0`), or reduce first: `x.sum().item() > 0`, `(x > 0).min().item() == 1`",
            ))),
            other => Ok(other.truthy()),
        }
    }

    /// The items `for` walks in a tensor: views along its first dimension.
    pub(super) fn tensor_rows(&self, t: &Tensor, span: Span) -> EvalResult<Vec<Value>> {
        if t.ndim() == 0 {
            return Err(Box::new(RuntimeError::value(
                "cannot iterate over a 0-d tensor",
                span,
                "this has no dimensions",
            )));
        }
        (0..t.shape()[0])
            .map(|i| {
                t.select(0, i as i64)
                    .map(Value::Tensor)
                    .map_err(|e| self.tensor_err(e, span))
            })
            .collect()
    }

    // ---- fields -----------------------------------------------------------------------

    /// `t.name` for a tensor.
    pub(super) fn tensor_field(&mut self, t: &Tensor, name: &Ident) -> EvalResult<Value> {
        Ok(match &*name.name {
            "shape" => shape_value(t.shape()),
            "ndim" => Value::Int(t.ndim() as i64),
            "requires_grad" => Value::Bool(t.requires_grad()),
            "is_leaf" => Value::Bool(t.is_leaf()),
            "grad_fn" => t.grad_fn_name().map_or(Value::None, Value::str),
            "grad" => {
                if !t.is_leaf() && !t.retains_grad() {
                    self.warn(RuntimeWarning::GradOfNonLeaf { span: name.span });
                }
                t.grad().map_or(Value::None, Value::Tensor)
            }
            "T" => {
                self.at(name.span);
                Value::Tensor(t.numpy_t().map_err(|e| self.tensor_err(e, name.span))?)
            }
            _ => {
                return Err(self.no_member_of(
                    "tensor",
                    name,
                    TENSOR_FIELDS,
                    methods::TENSOR_METHODS,
                ));
            }
        })
    }

    /// E0202 for `object.name`, suggesting the closest field or method.
    pub(super) fn no_member_of(
        &self,
        type_name: &str,
        name: &Ident,
        fields: &[&'static str],
        methods: &'static [BuiltinDef],
    ) -> Box<RuntimeError> {
        let help = member_help(type_name, &name.name, fields, methods);
        Box::new(RuntimeError::NoSuchField {
            type_name: type_name.to_string(),
            name: name.name.to_string(),
            span: name.span,
            help,
            calls: Vec::new(),
        })
    }

    /// Calls the method `name` of `members` on `receiver`.
    pub(super) fn call_member(
        &mut self,
        members: &Members,
        receiver: &Value,
        name: &Ident,
        args: Vec<CallArg>,
        span: Span,
    ) -> EvalResult<Value> {
        let Some(def) = methods::find(members.methods, &name.name) else {
            return Err(self.no_member_of(
                members.type_name,
                name,
                members.fields,
                members.methods,
            ));
        };
        self.at(span);
        self.call_builtin_on(def, receiver.clone(), args, span)
    }

    // ---- indexing ---------------------------------------------------------------------

    /// The index items of `x[...]` evaluated for a tensor.
    pub(super) fn tensor_index_items(
        &mut self,
        items: &[IndexItem],
    ) -> EvalResult<Vec<tensor::IndexItem>> {
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            out.push(match &item.node {
                IndexKind::At(e) => match self.eval(e)? {
                    Value::Int(i) => tensor::IndexItem::Int(i),
                    other => {
                        return Err(Box::new(RuntimeError::wrong_type(
                            "tensor index",
                            "int or slice",
                            other.type_name(),
                            e.span,
                        )));
                    }
                },
                IndexKind::Slice { start, stop, step } => {
                    let start = self.slice_bound(start.as_ref())?;
                    let end = self.slice_bound(stop.as_ref())?;
                    let step = self.slice_bound(step.as_ref())?.unwrap_or(1);
                    if step <= 0 {
                        let at = step_span(item);
                        return Err(Box::new(RuntimeError::value_with_help(
                            format!("tensor slices need a positive step, got {step}"),
                            at,
                            "not positive",
                            "PyTorch has no negative steps; reverse with an index list is not supported either",
                        )));
                    }
                    tensor::IndexItem::Slice { start, end, step }
                }
            });
        }
        Ok(out)
    }

    fn slice_bound(&mut self, e: Option<&Expr>) -> EvalResult<Option<i64>> {
        let Some(e) = e else { return Ok(None) };
        match self.eval(e)? {
            Value::Int(i) => Ok(Some(i)),
            Value::None => Ok(None),
            other => Err(Box::new(RuntimeError::wrong_type(
                "slice bound",
                "int",
                other.type_name(),
                e.span,
            ))),
        }
    }

    /// `t[items]`: a view.
    pub(super) fn index_tensor(
        &mut self,
        t: &Tensor,
        items: &[IndexItem],
        span: Span,
    ) -> EvalResult<Value> {
        let values = self.tensor_index_items(items)?;
        self.at(span);
        t.index(&values)
            .map(Value::Tensor)
            .map_err(|e| self.index_err(e, items, span))
    }

    /// An indexing error, at the index item at fault when it is one item's.
    fn index_err(&self, err: TensorError, items: &[IndexItem], span: Span) -> Box<RuntimeError> {
        let at = match &err {
            TensorError::IndexOutOfRange { dim, .. } => items.get(*dim).map_or(span, |i| i.span),
            _ => span,
        };
        self.tensor_err(err, at)
    }

    // ---- assignment -------------------------------------------------------------------

    /// `t[items] = value` and `t[items] op= value`: a write through the indexed view.
    pub(super) fn assign_tensor_index(
        &mut self,
        t: &Tensor,
        items: &[IndexItem],
        op: Option<BinOp>,
        value: &Expr,
        target_span: Span,
    ) -> EvalResult<()> {
        let values = self.tensor_index_items(items)?;
        let rhs = self.eval(value)?;
        let whole = target_span.merge(value.span);
        self.at(whole);
        let view = t
            .index(&values)
            .map_err(|e| self.index_err(e, items, target_span))?;
        if let Some(op) = op {
            let spans = BinSpans {
                whole,
                rhs: value.span,
            };
            return self.tensor_in_place(op, &view, &rhs, spans);
        }
        let result = match &rhs {
            Value::Tensor(src) => view.copy_(src),
            other => match scalar_of(other) {
                Some(x) => view.fill_(x),
                None => {
                    let src = crate::builtins::args::tensor_from_value(other).map_err(|_| {
                        Box::new(RuntimeError::wrong_type(
                            "value assigned into a tensor",
                            "a tensor, a number or a list of numbers",
                            other.type_name(),
                            value.span,
                        ))
                    })?;
                    view.copy_(&src)
                }
            },
        };
        result.map_err(|e| self.tensor_err(e, whole))
    }

    /// `t.grad = ...` and `t.requires_grad = ...`.
    pub(super) fn assign_tensor_field(
        &mut self,
        t: &Tensor,
        name: &Ident,
        value: Value,
        value_span: Span,
    ) -> EvalResult<()> {
        match (&*name.name, value) {
            ("grad", Value::None) => t.set_grad(None),
            ("grad", Value::Tensor(g)) => {
                if g.shape() != t.shape() {
                    return Err(TensorDiagnostic::new(
                        TensorCode::Broadcast,
                        format!(
                            "assigned grad has shape {:?}, the tensor has shape {:?}",
                            g.shape(),
                            t.shape()
                        ),
                        value_span,
                        "wrong shape",
                    )
                    .boxed());
                }
                t.set_grad(Some(g));
            }
            ("requires_grad", Value::Bool(flag)) => {
                t.requires_grad_(flag)
                    .map_err(|e| self.tensor_err(e, name.span.merge(value_span)))?;
            }
            ("grad" | "requires_grad", other) => {
                let expected = if &*name.name == "grad" {
                    "a tensor or none"
                } else {
                    "bool"
                };
                return Err(Box::new(RuntimeError::wrong_type(
                    format!("value of `.{}`", name.name),
                    expected,
                    other.type_name(),
                    value_span,
                )));
            }
            _ => {
                return Err(Box::new(
                    RuntimeError::wrong_type(
                        format!("assignment to `.{}`", name.name),
                        "a writable field (`grad`, `requires_grad`)",
                        "a read-only field",
                        name.span,
                    )
                    .with_help("a tensor's shape and history change only through its methods"),
                ));
            }
        }
        Ok(())
    }

    /// `let name: [dims] = value`: the value must be a tensor of that shape. A dim is an int,
    /// `_` (any size), or a name: bound to an int it must equal it, otherwise it is a symbol
    /// that must agree wherever it repeats within the annotation.
    pub(super) fn check_annotation(
        &mut self,
        name: &Ident,
        shape: &ShapeSpec,
        value: &Value,
        value_span: Span,
    ) -> EvalResult<()> {
        let Value::Tensor(t) = value else {
            return Err(Box::new(RuntimeError::wrong_type(
                format!("`{}` with a shape annotation", name.name),
                "tensor",
                value.type_name(),
                value_span,
            )));
        };
        let dims = &shape.node;
        if dims.len() != t.ndim() {
            return Err(TensorDiagnostic::new(
                TensorCode::WrongRank,
                format!(
                    "`{}` is declared with {} dimensions, the value has shape {:?}",
                    name.name,
                    dims.len(),
                    t.shape()
                ),
                value_span,
                format!("this is {}-D", t.ndim()),
            )
            .with_label(shape.span, format!("{} dimensions declared", dims.len()))
            .boxed());
        }
        let mut symbols: Vec<(Rc<str>, usize)> = Vec::new();
        for (i, (dim, &actual)) in dims.iter().zip(t.shape()).enumerate() {
            let expected = match &dim.node {
                ExprKind::Underscore => continue,
                ExprKind::Name(ident) if self.env.get(&ident.name).is_none() => {
                    match symbols.iter().find(|(n, _)| *n == ident.name) {
                        Some((_, size)) => *size,
                        None => {
                            symbols.push((ident.name.clone(), actual));
                            continue;
                        }
                    }
                }
                _ => match self.eval(dim)? {
                    Value::Int(n) => usize::try_from(n).unwrap_or(usize::MAX),
                    other => {
                        return Err(Box::new(RuntimeError::wrong_type(
                            "dimension of a shape annotation",
                            "int, name or `_`",
                            other.type_name(),
                            dim.span,
                        )));
                    }
                },
            };
            if expected != actual {
                return Err(TensorDiagnostic::new(
                    TensorCode::DeclaredSize,
                    format!(
                        "`{}` is declared with size {expected} in dimension {i}, the value has shape {:?}",
                        name.name,
                        t.shape()
                    ),
                    value_span,
                    format!("dimension {i} is {actual}"),
                )
                .with_label(dim.span, format!("declared {expected}"))
                .boxed());
            }
        }
        Ok(())
    }

    /// Calls a builtin (function or method) with `receiver` as [`Args::receiver`].
    pub(crate) fn call_builtin_on(
        &mut self,
        def: &'static BuiltinDef,
        receiver: Value,
        args: Vec<CallArg>,
        span: Span,
    ) -> EvalResult<Value> {
        let bound = self.bind_builtin(def, args, span)?;
        (def.run)(self, Args { receiver, ..bound })
    }
}

fn step_span(item: &IndexItem) -> Span {
    match &item.node {
        IndexKind::Slice { step: Some(s), .. } => s.span,
        _ => item.span,
    }
}

/// A shape as the language shows it: a list of ints.
pub fn shape_value(shape: &[usize]) -> Value {
    Value::list(shape.iter().map(|&d| Value::Int(d as i64)).collect())
}

impl Interpreter {
    /// `layer(x)`: one positional tensor argument.
    pub(super) fn call_layer(
        &mut self,
        layer: &Rc<crate::builtins::layers::Layer>,
        args: Vec<CallArg>,
        span: Span,
    ) -> EvalResult<Value> {
        let name = layer.kind_name();
        let (value, at) = crate::diagnostic::binding::bind_layer_input(name, args, span)
            .map_err(|p| Box::new(RuntimeError::Bind(p)))?;
        let Value::Tensor(x) = &value else {
            return Err(Box::new(RuntimeError::wrong_type(
                format!("input of `{name}`"),
                "tensor",
                value.type_name(),
                at,
            )));
        };
        crate::builtins::layers::forward(self, layer, x, at, span).map(Value::Tensor)
    }
}
