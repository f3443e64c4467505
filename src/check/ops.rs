//! Operators and tensor methods: broadcasting (E0306), matmul (E0307), views and reshapes
//! (E0308, E0309), backward (E0401) and in-place writes (E0403).

use super::dim::{Comparison, Preconditions, SymDim};
use super::rules::{concrete_shape, concrete_usize, slot_named};
use super::ty::{Grad, TensorTy, Ty, shape_string};
use super::walk::{Checker, TyArg, combined, derived};
use crate::builtins::methods;
use crate::diagnostic::{TensorCode, TensorDiagnostic};
use crate::source::Span;
use crate::syntax::ast::{BinOp, Ident};
use crate::tensor::ops::matmul::matmul_shape;
use crate::tensor::{TensorError, checks};

use super::error::CheckError;

fn int_op(op: BinOp, a: i64, b: i64) -> Option<i64> {
    match op {
        BinOp::Add => a.checked_add(b),
        BinOp::Sub => a.checked_sub(b),
        BinOp::Mul => a.checked_mul(b),
        // As the interpreter: `i64::MIN // -1` overflows (left unknown, the run reports
        // it), `i64::MIN % -1` is 0.
        BinOp::FloorDiv if b != 0 => {
            let q = a.checked_div(b)?;
            Some(if a % b != 0 && ((a % b < 0) != (b < 0)) {
                q - 1
            } else {
                q
            })
        }
        BinOp::Mod if b != 0 => {
            let r = a.checked_rem(b).unwrap_or(0);
            Some(if r != 0 && ((r < 0) != (b < 0)) {
                r + b
            } else {
                r
            })
        }
        _ => None,
    }
}

impl Checker {
    pub(super) fn binary_ty(&mut self, op: BinOp, l: &Ty, r: &Ty, _ls: Span, rs: Span) -> Ty {
        let span = _ls.merge(rs);
        match (l, r) {
            (Ty::Tensor(a), Ty::Tensor(b)) => {
                let grad = combined(a.grad, b.grad, self.no_grad);
                if op == BinOp::MatMul {
                    return self.matmul(a, b, span, grad);
                }
                if matches!(op, BinOp::And | BinOp::Or | BinOp::Range) {
                    return Ty::Unknown;
                }
                let grad = if matches!(
                    op,
                    BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge
                ) {
                    Grad::No
                } else {
                    grad
                };
                let shape = match (&a.shape, &b.shape) {
                    (Some(x), Some(y)) => self.broadcast(op, x, y, span),
                    _ => None,
                };
                match shape {
                    Some(Err(())) => Ty::Unknown,
                    Some(Ok(s)) => Ty::Tensor(TensorTy {
                        shape: Some(s),
                        grad,
                        field: super::ty::merge_fields(a.field.as_ref(), b.field.as_ref()),
                    }),
                    None => Ty::Tensor(TensorTy {
                        shape: None,
                        grad,
                        field: None,
                    }),
                }
            }
            (Ty::Tensor(t), Ty::Int(_) | Ty::Float | Ty::Bool(_))
            | (Ty::Int(_) | Ty::Float | Ty::Bool(_), Ty::Tensor(t)) => {
                if matches!(op, BinOp::MatMul | BinOp::And | BinOp::Or | BinOp::Range) {
                    return Ty::Unknown;
                }
                Ty::Tensor(TensorTy {
                    shape: t.shape.clone(),
                    grad: derived(t.grad, self.no_grad),
                    field: t.field.clone(),
                })
            }
            (Ty::Int(a), Ty::Int(b)) => match op {
                BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::FloorDiv | BinOp::Mod => {
                    Ty::Int(a.zip(*b).and_then(|(a, b)| int_op(op, a, b)))
                }
                BinOp::Div => Ty::Float,
                BinOp::Pow => Ty::Unknown,
                BinOp::Range => Ty::Range,
                BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                    Ty::Bool(None)
                }
                _ => Ty::Unknown,
            },
            (Ty::List(Some(a)), Ty::List(Some(b))) if op == BinOp::Add => {
                Ty::List(Some(a.iter().chain(b).cloned().collect()))
            }
            (_, _) if matches!(op, BinOp::Range) => Ty::Range,
            _ => Ty::Unknown,
        }
    }

    /// Broadcasts two shapes: E0306 when two constant dims differ and neither is 1, E0312
    /// when two symbolic dims may differ (with a counterexample in which neither is 1).
    fn broadcast(
        &mut self,
        op: BinOp,
        x: &[SymDim],
        y: &[SymDim],
        span: Span,
    ) -> Option<Result<Vec<SymDim>, ()>> {
        let name = match op {
            BinOp::Add => "add",
            BinOp::Sub => "sub",
            BinOp::Mul => "mul",
            BinOp::Div => "div",
            BinOp::Pow => "pow",
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => "compare",
            // `//` and `%` do not take tensors (E0207 at run time).
            _ => return None,
        };
        let n = x.len().max(y.len());
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let a = (i + x.len()).checked_sub(n).map(|k| &x[k]);
            let b = (i + y.len()).checked_sub(n).map(|k| &y[k]);
            let d = match (a, b) {
                (Some(a), None) => a.clone(),
                (None, Some(b)) => b.clone(),
                (Some(a), Some(b)) => {
                    let what = format!(
                        "`{}` needs dim -{} equal on both sides, or 1",
                        op.symbol(),
                        n - i
                    );
                    let shapes = || (x.to_vec(), y.to_vec());
                    match self.broadcast_dim(a, b, span, shapes, name, &what) {
                        Ok(d) => d,
                        Err(()) => return Some(Err(())),
                    }
                }
                (None, None) => SymDim::unknown(),
            };
            out.push(d);
        }
        Some(Ok(out))
    }

    /// One dim of a broadcast (`what` says which, for the label): `Err` after
    /// reporting E0306 (different constants, neither 1) or E0312 (symbolic dims that may
    /// differ, neither being 1 in the counterexample).
    fn broadcast_dim(
        &mut self,
        a: &SymDim,
        b: &SymDim,
        span: Span,
        shapes: impl FnOnce() -> (Vec<SymDim>, Vec<SymDim>),
        op: &'static str,
        what: &str,
    ) -> Result<SymDim, ()> {
        match (a.as_const(), b.as_const()) {
            (Some(1), _) => return Ok(b.clone()),
            (_, Some(1)) => return Ok(a.clone()),
            (Some(p), Some(q)) if p != q => {
                let (x, y) = shapes();
                match (concrete(&x), concrete(&y)) {
                    (Some(xs), Some(ys)) => self.tensor_error(
                        TensorError::Broadcast {
                            op,
                            lhs: concrete_usize(&xs),
                            rhs: concrete_usize(&ys),
                        },
                        span,
                    ),
                    _ => {
                        // The engine's words, with the shapes as the checker knows them.
                        let (xs, ys) = (shape_string(&x), shape_string(&y));
                        let d = TensorDiagnostic::new(
                            TensorCode::Broadcast,
                            format!("{op}: shapes {xs} and {ys} cannot broadcast"),
                            span,
                            "shapes do not broadcast",
                        )
                        .with_help(format!(
                            "dims are compared from the right and must be equal or 1: {xs} vs {ys}"
                        ));
                        self.error(CheckError::Shape(Box::new(d)));
                    }
                }
                return Err(());
            }
            _ if a == b => return Ok(a.clone()),
            _ => {}
        }
        // A 1 broadcasts: the counterexample must keep both sides above 1.
        let mut pre = Preconditions::new();
        for d in [a, b] {
            if d.as_const().is_none() {
                let _ = pre.require_at_least(d, 2);
            }
        }
        let fix = "make them equal, or 1 to broadcast";
        match self.require_equal(a, b, &pre, span, || what.to_string(), fix) {
            Comparison::Differ(_) => Err(()),
            Comparison::Equal => Ok(a.clone()),
            Comparison::Unknown => Ok(SymDim::unknown()),
        }
    }

    /// `a @ b` with PyTorch's rules (1-D operands, batched with broadcast batch dims):
    /// concrete shapes go through the engine's own [`matmul_shape`]; symbolic ones give
    /// E0307 for contracted dims that are different constants, E0312 for ones that may
    /// differ, E0306 for batch dims that cannot broadcast.
    fn matmul(&mut self, a: &TensorTy, b: &TensorTy, span: Span, grad: Grad) -> Ty {
        let unknown = Ty::Tensor(TensorTy {
            shape: None,
            grad,
            field: None,
        });
        let (Some(x), Some(y)) = (&a.shape, &b.shape) else {
            return unknown;
        };
        if let (Some(xs), Some(ys)) = (concrete(x), concrete(y)) {
            return match matmul_shape(&concrete_usize(&xs), &concrete_usize(&ys)) {
                Ok(out) => Ty::Tensor(TensorTy::of(
                    out.into_iter()
                        .map(|d| SymDim::constant(d as i64))
                        .collect(),
                    grad,
                )),
                Err(err) => {
                    self.tensor_error(err, span);
                    Ty::Unknown
                }
            };
        }
        let (l, r) = (x.len(), y.len());
        if l == 0 || r == 0 {
            return unknown;
        }
        let (x_batch, rows, inner) = if l == 1 {
            (&[][..], None, &x[0])
        } else {
            (&x[..l - 2], Some(&x[l - 2]), &x[l - 1])
        };
        let (y_batch, contracted, cols) = if r == 1 {
            (&[][..], &y[0], None)
        } else {
            (&y[..r - 2], &y[r - 2], Some(&y[r - 1]))
        };
        if let (Some(p), Some(q)) = (inner.as_const(), contracted.as_const())
            && p != q
        {
            let message = format!(
                "matmul: inner dimensions differ: {} @ {} ({p} vs {q})",
                shape_string(x),
                shape_string(y)
            );
            let d = TensorDiagnostic::new(TensorCode::MatmulMismatch, message, span, "inner dimensions differ")
                .with_help(format!("the left operand's last dim ({p}) must equal the right operand's contracted dim ({q}); transpose one with `.T` or `.t()`?"));
            self.error(CheckError::Shape(Box::new(d)));
            return Ty::Unknown;
        }
        let what = || "matmul contracts the left operand's last dim with this one".to_string();
        let fix = "make the contracted dims equal (transpose one with `.T`?)";
        // Sizes are positive: a counterexample reads as two real shapes.
        let mut pre = Preconditions::new();
        for d in [inner, contracted] {
            if d.as_const().is_none() {
                let _ = pre.require_at_least(d, 1);
            }
        }
        match self.require_equal(inner, contracted, &pre, span, what, fix) {
            Comparison::Differ(_) => return Ty::Unknown,
            Comparison::Equal | Comparison::Unknown => {}
        }
        let n = x_batch.len().max(y_batch.len());
        let mut out = Vec::with_capacity(n + 2);
        for i in 0..n {
            let p = (i + x_batch.len()).checked_sub(n).map(|k| &x_batch[k]);
            let q = (i + y_batch.len()).checked_sub(n).map(|k| &y_batch[k]);
            let d = match (p, q) {
                (Some(p), Some(q)) => {
                    let what = format!("matmul broadcasts batch dim {i}: equal, or 1");
                    let shapes = || (x.to_vec(), y.to_vec());
                    match self.broadcast_dim(p, q, span, shapes, "matmul", &what) {
                        Ok(d) => d,
                        Err(()) => return Ty::Unknown,
                    }
                }
                (Some(d), None) | (None, Some(d)) => d.clone(),
                (None, None) => SymDim::unknown(),
            };
            out.push(d);
        }
        out.extend(rows.cloned());
        out.extend(cols.cloned());
        Ty::Tensor(TensorTy::of(out, grad))
    }

    /// `object.name(args)`.
    pub(super) fn method(
        &mut self,
        o: &Ty,
        _ospan: Span,
        name: &Ident,
        args: &[TyArg],
        span: Span,
    ) -> Ty {
        if !self.has_member(o, name, true) {
            return Ty::Unknown;
        }
        let Ty::Tensor(t) = o else {
            return Ty::Unknown;
        };
        let Some(def) = methods::find(methods::TENSOR_METHODS, &name.name) else {
            return Ty::Unknown;
        };
        let Some(b) = self.bind(def, args, span) else {
            return Ty::Unknown;
        };
        let grad = derived(t.grad, self.no_grad);
        let unknown = Ty::Tensor(TensorTy {
            shape: None,
            grad,
            field: None,
        });
        let m: &str = &name.name;
        if super::rules::INPLACE_METHODS.contains(&m) {
            self.check_inplace(t, def.name, span);
            return Ty::Tensor(t.clone());
        }
        // Results that are not always tensors: `max(dim)` is a record of values and
        // indices, `size()` a list or an int, `tolist()` a list.
        if matches!(
            m,
            "max" | "min" | "size" | "dim" | "tolist" | "retain_grad" | "requires_grad_"
        ) {
            return Ty::Unknown;
        }
        if m == "backward" {
            if self.certain && self.grad_tracked {
                let no_gradient = slot_named(def.params, &b.slots, "gradient")
                    .is_none_or(|(g, _)| *g == Ty::None);
                let shape = t.shape.as_deref().and_then(concrete_shape);
                let problem = match (t.grad, shape) {
                    (Grad::No, _) => Some(TensorError::BackwardWithoutGrad),
                    (Grad::Leaf | Grad::LeafView | Grad::Yes, Some(shape)) if no_gradient => {
                        checks::implicit_seed(&shape).err()
                    }
                    _ => None,
                };
                if let Some(err) = problem {
                    self.tensor_error(err, span);
                }
            }
            return Ty::None;
        }
        if matches!(m, "softmax" | "log_softmax")
            && let Some((Ty::Int(Some(dim)), _)) = slot_named(def.params, &b.slots, "dim")
            && !self.dim_in_range(m, *dim, t, span)
        {
            return Ty::Unknown;
        }
        if super::rules::SAME_SHAPE_METHODS.contains(&m) {
            return Ty::Tensor(TensorTy {
                shape: t.shape.clone(),
                grad,
                field: t.field.clone(),
            });
        }
        let Some(shape) = &t.shape else {
            return match m {
                "item" => Ty::Float,
                "numel" => Ty::Int(None),
                "detach" => Ty::Tensor(TensorTy {
                    shape: None,
                    grad: Grad::No,
                    field: None,
                }),
                _ => {
                    if def.name.ends_with('_') {
                        Ty::Unknown
                    } else {
                        unknown
                    }
                }
            };
        };
        let n = shape.len() as i64;
        let ints = |b: &super::rules::Bound| -> Option<Vec<i64>> {
            match b.rest.as_slice() {
                [(Ty::List(Some(items)), _)] => items.iter().map(Ty::as_int).collect(),
                items => items.iter().map(|(t, _)| t.as_int()).collect(),
            }
        };
        match m {
            "detach" => Ty::Tensor(TensorTy {
                shape: t.shape.clone(),
                grad: Grad::No,
                field: t.field.clone(),
            }),
            "item" => Ty::Float,
            "numel" => Ty::Int(
                concrete(shape).and_then(|s| s.iter().try_fold(1i64, |a, &d| a.checked_mul(d))),
            ),
            "unsqueeze" | "squeeze" | "transpose" | "t"
                if m != "squeeze" || b.slots.first().is_some_and(|s| s.is_some()) =>
            {
                let dims: Vec<i64> = match m {
                    "t" => {
                        return if n == 2 {
                            Ty::Tensor(TensorTy::of(vec![shape[1].clone(), shape[0].clone()], grad))
                        } else {
                            unknown
                        };
                    }
                    _ => match b
                        .slots
                        .iter()
                        .flatten()
                        .map(|(t, _)| t.as_int())
                        .collect::<Option<Vec<_>>>()
                    {
                        Some(d) => d,
                        None => return unknown,
                    },
                };
                let range = if m == "unsqueeze" { n + 1 } else { n.max(1) };
                for (&d, (_, at)) in dims.iter().zip(b.slots.iter().flatten()) {
                    if d < -range || d >= range {
                        if let Some(s) = concrete(shape) {
                            let op = match m {
                                "unsqueeze" => "unsqueeze",
                                "squeeze" => "squeeze",
                                _ => "transpose",
                            };
                            let err = TensorError::DimOutOfRange {
                                op,
                                dim: d,
                                shape: concrete_usize(&s),
                                range: range as usize,
                            };
                            self.tensor_error(err, *at);
                            return Ty::Unknown;
                        }
                        return unknown;
                    }
                }
                let norm = |d: i64| (if d < 0 { d + range } else { d }) as usize;
                let mut out = shape.clone();
                match m {
                    "unsqueeze" => out.insert(norm(dims[0]), SymDim::constant(1)),
                    "squeeze" => {
                        if n == 0 {
                            return unknown;
                        }
                        let k = norm(dims[0]);
                        match out[k].as_const() {
                            Some(1) => {
                                out.remove(k);
                            }
                            Some(_) => {}
                            None => return unknown,
                        }
                    }
                    _ => {
                        if dims.len() != 2 || n == 0 {
                            return unknown;
                        }
                        out.swap(norm(dims[0]), norm(dims[1]));
                    }
                }
                Ty::Tensor(TensorTy::of(out, grad))
            }
            "reshape" | "view" => {
                let Some(req) = ints(&b) else { return unknown };
                let Some(s) = concrete(shape) else {
                    return unknown;
                };
                if req.iter().any(|&d| d < -1) {
                    return unknown;
                }
                // A product beyond 64 bits cannot be the element count: the run says so.
                let product = |dims: &[i64]| {
                    dims.iter()
                        .filter(|&&d| d != -1)
                        .try_fold(1i64, |acc, &d| acc.checked_mul(d))
                };
                let (Some(numel), Some(known)) = (product(&s), product(&req)) else {
                    return unknown;
                };
                let infer = req.iter().filter(|&&d| d == -1).count();
                let ok = match infer {
                    0 => known == numel,
                    1 => known > 0 && numel % known == 0,
                    _ => return unknown,
                };
                if !ok {
                    let op = if m == "view" { "view" } else { "reshape" };
                    self.tensor_error(
                        TensorError::ReshapeNumel {
                            op,
                            input: concrete_usize(&s),
                            requested: req,
                            numel: numel as usize,
                        },
                        span,
                    );
                    return Ty::Unknown;
                }
                let out = req
                    .iter()
                    .map(|&d| SymDim::constant(if d == -1 { numel / known.max(1) } else { d }))
                    .collect();
                // A leaf made by a constructor is contiguous, so its reshape is a view of
                // it; past that, contiguity is not tracked and only `view` is surely one.
                let grad = match t.grad {
                    Grad::Leaf if !self.no_grad => Grad::LeafView,
                    Grad::LeafView if m == "view" && !self.no_grad => Grad::LeafView,
                    Grad::LeafView => Grad::Unknown,
                    _ => grad,
                };
                Ty::Tensor(TensorTy::of(out, grad))
            }
            _ => unknown,
        }
    }
}

fn concrete(s: &[SymDim]) -> Option<Vec<i64>> {
    s.iter().map(SymDim::as_const).collect()
}
