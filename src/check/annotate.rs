//! `let x: [N, 3, H, W] = expr`: the declared shape against the inferred one. Symbols bind
//! to the inferred dims; a rank that differs is E0304 and a size that differs E0312, in the
//! words the run-time check uses; whatever the checker cannot infer takes the annotation
//! (gradual typing: the run-time check guards it).

use super::dim::{Comparison, Preconditions, SymDim};
use super::error::CheckError;
use super::ty::{Grad, TensorTy, Ty, shape_string};
use super::walk::Checker;
use crate::diagnostic::{TensorCode, TensorDiagnostic};
use crate::source::Span;
use crate::syntax::ast::{ExprKind, Ident, ShapeSpec};

impl Checker {
    /// The type `name` gets from `value` (of type `ty`, at `value_span`) under the
    /// annotation `shape`; errors are reported here.
    pub(super) fn annotate(
        &mut self,
        name: &Ident,
        shape: &ShapeSpec,
        ty: Ty,
        value_span: Span,
    ) -> Ty {
        let declared: Vec<SymDim> = shape.node.iter().map(|d| self.declared_dim(d)).collect();
        let inferred = match &ty {
            Ty::Unknown => None,
            Ty::Tensor(t) => t.shape.clone(),
            // Not a tensor: the run-time check reports the type (E0207).
            _ => return ty,
        };
        let grad = match &ty {
            Ty::Tensor(t) => t.grad,
            _ => Grad::Unknown,
        };
        let Some(inferred) = inferred else {
            return Ty::Tensor(TensorTy::of(declared, grad));
        };
        let shown = shape_string(&inferred);
        if declared.len() != inferred.len() {
            let d = TensorDiagnostic::new(
                TensorCode::WrongRank,
                format!(
                    "`{}` is declared with {} dimensions, the value has shape {shown}",
                    name.name,
                    declared.len()
                ),
                value_span,
                format!("this is {}-D", inferred.len()),
            )
            .with_label(
                shape.span,
                format!("{} dimensions declared", declared.len()),
            );
            self.error(CheckError::Shape(Box::new(d)));
            return Ty::Unknown;
        }
        // A symbol stands for the size it first meets; a second use must match it.
        let mut bound: Vec<(String, SymDim)> = Vec::new();
        let mut out = Vec::with_capacity(inferred.len());
        for (i, ((written, decl), actual)) in
            shape.node.iter().zip(&declared).zip(&inferred).enumerate()
        {
            let expected = match (&written.node, decl.as_symbol()) {
                (ExprKind::Underscore, _) => {
                    out.push(actual.clone());
                    continue;
                }
                (ExprKind::Name(id), Some(_)) => {
                    match bound.iter().find(|(n, _)| **n == *id.name) {
                        Some((_, d)) => d.clone(),
                        None => {
                            let d = if actual.has_unknown() {
                                decl.clone()
                            } else {
                                actual.clone()
                            };
                            bound.push((id.name.to_string(), d.clone()));
                            out.push(d);
                            continue;
                        }
                    }
                }
                _ => decl.clone(),
            };
            if let (Some(e), Some(a)) = (expected.as_const(), actual.as_const())
                && e != a
            {
                let d = TensorDiagnostic::new(
                    TensorCode::DeclaredSize,
                    format!(
                        "`{}` is declared with size {e} in dimension {i}, the value has shape {shown}",
                        name.name
                    ),
                    value_span,
                    format!("dimension {i} is {a}"),
                )
                .with_label(written.span, format!("declared {e}"));
                self.error(CheckError::Shape(Box::new(d)));
                return Ty::Unknown;
            }
            let what = || {
                format!(
                    "`{}` is declared with dimension {i} as {expected}",
                    name.name
                )
            };
            let fix = "change the annotation, or the computation of the value";
            match self.require_equal(
                &expected,
                actual,
                &Preconditions::new(),
                value_span,
                what,
                fix,
            ) {
                Comparison::Differ(_) => return Ty::Unknown,
                Comparison::Equal => out.push(actual.clone()),
                // The run-time check guards what the checker cannot show.
                Comparison::Unknown => out.push(if expected.has_unknown() {
                    actual.clone()
                } else {
                    expected
                }),
            }
        }
        Ty::Tensor(TensorTy::of(out, grad))
    }
}
