//! Nets in the checker (LANGUAGE.md §8, §9): building a model infers its signature with the
//! declared symbols kept (`[N, 1, H, W] -> [N, 1, 2*H, 2*W] where H >= 9`), and calling a
//! model walks the net's body with the parameter values and the argument types, so the
//! result is exact and a mistake inside the body is reported there, labelled "called from
//! here" at the call. Walks are memoised per (net, parameter values, argument types) and a
//! net reached again while its own body is being walked gives unknown (no hang).

use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;

use super::dim::{Constraint, Preconditions, SymDim};
use super::error::{CheckError, CheckWarning};
use super::ty::{LayerTy, ModelTy, TensorTy, Ty, shape_string};
use super::walk::{Checker, TyArg};
use crate::source::Span;
use crate::syntax::ast::{Block, Expr, ExprKind, Ident, NetDef, ShapeSpec, Stmt, StmtKind};
use crate::tensor::receptive_field::AxisField;

/// Most iterations of a loop with constant bounds that a net body is walked through one by
/// one; longer loops are walked once with what they assign widened to unknown.
pub const MAX_UNROLL: i64 = 256;

/// A model's signature: its inputs as declared, symbols kept, and what it returns for them,
/// with the preconditions its layers put on the symbols.
#[derive(Clone, Debug, PartialEq)]
pub struct Signature {
    /// Each declared input, in order.
    pub inputs: Vec<Ty>,
    /// The result for those inputs.
    pub output: Ty,
    /// What the symbols must satisfy for every layer to have a non-empty output.
    pub preconditions: Preconditions,
}

impl fmt::Display for Signature {
    /// `[N, 1, H, W] -> [N, 1, 2*H, 2*W] where H >= 9, W >= 9`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let one = |t: &Ty| match t {
            Ty::Tensor(TensorTy { shape: Some(s), .. }) => shape_string(s),
            other => other.to_string(),
        };
        let inputs: Vec<String> = self.inputs.iter().map(one).collect();
        write!(f, "{} -> {}", inputs.join(", "), one(&self.output))?;
        if !self.preconditions.is_empty() {
            write!(f, " where {}", self.preconditions)?;
        }
        Ok(())
    }
}

/// One layer application seen while walking a net for a [`NetReport`](super::summary::NetReport).
#[derive(Clone, Debug)]
pub(super) struct Recorded {
    pub span: Span,
    pub kind: String,
    pub shape: Option<Vec<SymDim>>,
    pub params: Option<u64>,
    pub field: Option<[AxisField; 2]>,
    pub depth: usize,
    /// The layer, kept alive so that two applications of one layer share an identity.
    pub layer: Option<Rc<LayerTy>>,
}

/// A finished walk through a net body, remembered for the next call with the same types.
struct Walked {
    /// The net walked, kept alive so that its address (the memo's key) stays its own.
    _net: Rc<NetDef>,
    params: Vec<Ty>,
    args: Option<Vec<Ty>>,
    /// The result; its preconditions are replayed into an enclosing signature's.
    signature: Signature,
}

/// The checker's state about nets, one per [`Checker`].
#[derive(Default)]
pub(super) struct NetState {
    /// Nets visible by name inside any body: top-level `net` definitions whose name nothing
    /// else declares.
    pub globals: HashMap<Rc<str>, Rc<NetDef>>,
    /// Finished walks per net (keyed by the definition's address).
    memo: HashMap<usize, Vec<Walked>>,
    /// The nets whose body is being walked, outermost first.
    stack: Vec<Rc<NetDef>>,
    /// The types bound to the `input` declarations of the walk in progress.
    seen_inputs: Vec<Ty>,
    /// The arguments still to bind to `input` declarations of the walk in progress, with
    /// the symbols bound so far; `None` outside a model call.
    pending: Option<Pending>,
    /// What the body returned, joined over its `return`s.
    returned: Option<Ty>,
    /// Preconditions collected for the signature being inferred.
    preconditions: Option<Preconditions>,
    /// Layer applications, when a report is being made.
    pub rows: Option<Vec<Recorded>>,
    /// Where the model about to be walked was built, for its group row.
    group_span: Option<Span>,
    depth: usize,
}

struct Pending {
    args: std::collections::VecDeque<(Ty, Span)>,
    /// Each symbol bound so far, its size, and where it was bound (`dimension 2 of `a``).
    symbols: Vec<(String, SymDim, String)>,
    /// Set after an E0315: the call's result is unknown.
    failed: bool,
}

/// Which walk: a model built (signature, symbols kept) or a model called with arguments.
pub(super) enum Mode {
    Signature,
    Call(Vec<(Ty, Span)>),
}

fn key(net: &Rc<NetDef>) -> usize {
    Rc::as_ptr(net) as usize
}

/// `e` without its call stack, for telling whether two reports are about the same mistake.
pub(super) fn without_calls(e: &CheckError) -> CheckError {
    match e {
        CheckError::Shape(d) if !d.calls.is_empty() => {
            let mut d = d.clone();
            d.calls.clear();
            CheckError::Shape(d)
        }
        CheckError::MayDiffer { calls, .. } if !calls.is_empty() => {
            let mut e = e.clone();
            if let CheckError::MayDiffer { calls, .. } = &mut e {
                calls.clear();
            }
            e
        }
        other => other.clone(),
    }
}

impl NetState {
    /// Drops every remembered walk (they are walked again when next needed).
    pub(super) fn forget_walks(&mut self) {
        self.memo.clear();
    }
}

impl Checker {
    /// A net's value when a body names it: visible nets are known, other globals not.
    pub(super) fn global_net(&self, name: &str) -> Option<Ty> {
        self.nets.globals.get(name).map(|d| Ty::Net(d.clone()))
    }

    /// Builds a model of `net` with `params`: its signature is inferred with the declared
    /// symbols, and whatever its body gets wrong for every input is reported, labelled at
    /// `span` (the build).
    pub(super) fn build_model(&mut self, net: &Rc<NetDef>, params: Vec<Ty>, span: Span) -> Ty {
        // Building is not applying: a report records the model's layers where it is called.
        let rows = self.nets.rows.take();
        let signature = self.walk_net(net, &params, Mode::Signature, span);
        self.nets.rows = rows;
        Ty::Model(Rc::new(ModelTy {
            net: net.clone(),
            params,
            built_at: span,
            signature: signature.map(Rc::new),
        }))
    }

    /// `model(args)`: the body walked with the argument types.
    pub(super) fn call_model(&mut self, model: &ModelTy, args: &[TyArg], span: Span) -> Ty {
        if args.iter().any(|a| a.name.is_some()) {
            return Ty::Tensor(TensorTy::unknown());
        }
        let args = args.iter().map(|a| (a.ty.clone(), a.span)).collect();
        self.nets.group_span = Some(model.built_at);
        let out = match self.walk_net(&model.net, &model.params, Mode::Call(args), span) {
            Some(sig) => sig.output,
            None => Ty::Tensor(TensorTy::unknown()),
        };
        match out {
            Ty::Tensor(mut t) if self.no_grad => {
                t.grad = super::ty::Grad::No;
                Ty::Tensor(t)
            }
            other => other,
        }
    }

    /// Walks `net`'s body once for `mode`; `None` when it recurses into itself.
    pub(super) fn walk_net(
        &mut self,
        net: &Rc<NetDef>,
        params: &[Ty],
        mode: Mode,
        span: Span,
    ) -> Option<Signature> {
        let k = key(net);
        if self.nets.stack.iter().any(|n| key(n) == k) {
            return None;
        }
        let arg_tys: Option<Vec<Ty>> = match &mode {
            Mode::Signature => None,
            Mode::Call(args) => Some(args.iter().map(|(t, _)| t.clone()).collect()),
        };
        // A report records every layer, so it walks every call afresh.
        let recording = self.nets.rows.is_some();
        if !recording
            && let Some(done) = self.nets.memo.get(&k).and_then(|walks| {
                walks
                    .iter()
                    .find(|w| w.params == params && w.args == arg_tys)
            })
        {
            let signature = done.signature.clone();
            let constraints: Vec<Constraint> = signature.preconditions.iter().cloned().collect();
            self.replay(&constraints);
            return Some(signature);
        }
        let group_span = self.nets.group_span.take().unwrap_or(span);
        let group = self.start_group(net, group_span);
        let saved_pending = self.nets.pending.take();
        let saved_returned = self.nets.returned.take();
        let saved_pre = self.nets.preconditions.replace(Preconditions::new());
        let saved_inputs = std::mem::take(&mut self.nets.seen_inputs);
        let (errors, warnings, lets) = (
            self.problems.errors.len(),
            self.problems.warnings.len(),
            self.problems.lets.len(),
        );
        if let Mode::Call(args) = mode {
            self.nets.pending = Some(Pending {
                args: args.into(),
                symbols: Vec::new(),
                failed: false,
            });
        }
        self.nets.stack.push(net.clone());
        let bound: Vec<(Rc<str>, Ty)> = net
            .params
            .iter()
            .zip(params)
            .map(|(p, t)| (p.name.name.clone(), t.clone()))
            .collect();
        self.body(&bound, &net.body);
        self.nets.stack.pop();
        let inputs = std::mem::replace(&mut self.nets.seen_inputs, saved_inputs);

        let pending = std::mem::replace(&mut self.nets.pending, saved_pending);
        let returned = std::mem::replace(&mut self.nets.returned, saved_returned);
        let preconditions =
            std::mem::replace(&mut self.nets.preconditions, saved_pre).unwrap_or_default();
        let failed = pending.as_ref().is_some_and(|p| p.failed);
        let output = if failed {
            Ty::Tensor(TensorTy::unknown())
        } else {
            returned.unwrap_or(Ty::None)
        };
        self.adopt_problems(errors, warnings, span);
        self.problems.lets.truncate(lets);
        let constraints: Vec<Constraint> = preconditions.iter().cloned().collect();
        self.replay(&constraints);
        self.end_group(group, &output);
        let signature = Signature {
            inputs,
            output,
            preconditions,
        };
        if !recording {
            self.nets.memo.entry(k).or_default().push(Walked {
                _net: net.clone(),
                params: params.to_vec(),
                args: arg_tys,
                signature: signature.clone(),
            });
        }
        Some(signature)
    }

    /// The problems a walk found from index `errors` / `warnings` on: each one already
    /// reported (by the net's own walk at its definition, or an earlier call) is dropped,
    /// the others get "called from here" at `call`.
    fn adopt_problems(&mut self, errors: usize, warnings: usize, call: Span) {
        let found = self.take_errors_from(errors);
        for e in found {
            let (reported, key) = self.reported_without_calls(&e);
            if reported {
                continue;
            }
            let e = match e {
                CheckError::Shape(mut d) => {
                    d.calls.push(call);
                    CheckError::Shape(d)
                }
                CheckError::MayDiffer {
                    left,
                    right,
                    span,
                    what,
                    help,
                    mut calls,
                } => {
                    calls.push(call);
                    CheckError::MayDiffer {
                        left,
                        right,
                        span,
                        what,
                        help,
                        calls,
                    }
                }
                other => other,
            };
            self.push_new_error(key, e);
        }
        let found: Vec<CheckWarning> = self.problems.warnings.split_off(warnings);
        for w in found {
            if !self.problems.warnings.contains(&w) {
                self.problems.warnings.push(w);
            }
        }
    }

    fn replay(&mut self, constraints: &[Constraint]) {
        if let Some(pre) = &mut self.nets.preconditions {
            for c in constraints {
                // One that can never hold was reported as E0301/E0302 where it arose.
                let _ = pre.require(c.clone());
            }
        }
    }

    /// A spatial output dim must be at least 1: a precondition on its symbols.
    pub(super) fn require_positive(&mut self, dim: &SymDim) {
        if dim.as_const().is_some() || dim.has_unknown() {
            return;
        }
        if let Some(pre) = &mut self.nets.preconditions {
            let _ = pre.require_at_least(dim, 1);
        }
    }

    /// A `fn` or `net` body walked where it is defined (with default or unknown
    /// parameters): apart from any model call in progress, whose inputs and result it must
    /// not take.
    pub(super) fn definition_body(&mut self, params: &[(Rc<str>, Ty)], body: &Block) {
        let pending = self.nets.pending.take();
        let returned = self.nets.returned.take();
        let inputs = std::mem::take(&mut self.nets.seen_inputs);
        self.body(params, body);
        self.nets.pending = pending;
        self.nets.returned = returned;
        self.nets.seen_inputs = inputs;
    }

    /// `return value` in a body: the walk's result is the join of its returns.
    pub(super) fn note_return(&mut self, ty: Ty) {
        self.nets.returned = Some(match self.nets.returned.take() {
            None => ty,
            Some(before) => before.join(&ty),
        });
    }

    /// `input name: [dims]`: the next argument of the call in progress, checked against the
    /// declaration (E0315), or the declared dims (symbols kept) when no call binds it. The
    /// input's receptive field starts as the identity; an argument keeps its own, so a call
    /// composes with what came before.
    pub(super) fn bind_input(&mut self, name: &Ident, shape: &ShapeSpec) -> Ty {
        let ty = self.input_ty(name, shape);
        self.nets.seen_inputs.push(ty.clone());
        ty
    }

    fn input_ty(&mut self, name: &Ident, shape: &ShapeSpec) -> Ty {
        let declared: Vec<SymDim> = shape.node.iter().map(|d| self.declared_dim(d)).collect();
        let identity = |dims: Vec<SymDim>| {
            let spatial = matches!(dims.len(), 3 | 4);
            let mut t = TensorTy::of(dims, super::ty::Grad::Unknown);
            if spatial {
                t.field = Some(Rc::new([AxisField::IDENTITY; 2]));
            }
            Ty::Tensor(t)
        };
        let Some(pending) = &mut self.nets.pending else {
            return identity(declared);
        };
        let Some((arg, at)) = pending.args.pop_front() else {
            // Fewer arguments than inputs: the interpreter reports it; nothing is known.
            pending.failed = true;
            return Ty::Tensor(TensorTy::unknown());
        };
        let Ty::Tensor(t) = &arg else {
            // Unknown argument: the declared constants hold, the symbols are unknown.
            let dims = declared
                .into_iter()
                .map(|d| {
                    if d.as_const().is_some() {
                        d
                    } else {
                        SymDim::unknown()
                    }
                })
                .collect();
            return Ty::Tensor(TensorTy::of(dims, super::ty::Grad::Unknown));
        };
        let Some(actual) = &t.shape else {
            return arg.clone();
        };
        let net = self
            .nets
            .stack
            .last()
            .map_or_else(|| "the net".to_string(), |d| d.name.name.to_string());
        let input = &name.name;
        let shown = shape_string(actual);
        // (message, the declaration's span, its label, help), worded as the run-time check.
        let mut mismatch: Option<(String, Span, String, String)> = None;
        if actual.len() != declared.len() {
            let help = if declared.len() == actual.len() + 1 {
                "add the missing batch dimension with `.unsqueeze(0)`".to_string()
            } else {
                format!(
                    "pass a {}-D tensor, as declared: `input {input}: {}`",
                    declared.len(),
                    written_shape(&shape.node)
                )
            };
            mismatch = Some((
                format!(
                    "`{net}` declares input `{input}` with {} dimensions, the argument has shape {shown}",
                    declared.len()
                ),
                shape.span,
                format!("{} dimensions declared", declared.len()),
                help,
            ));
        }
        for (i, ((d, a), written)) in declared.iter().zip(actual).zip(&shape.node).enumerate() {
            if mismatch.is_some() {
                break;
            }
            if let (Some(d), Some(a)) = (d.as_const(), a.as_const())
                && d != a
            {
                mismatch = Some((
                    format!(
                        "`{net}` expects size {d} in dimension {i} of `{input}`, the argument has shape {shown}"
                    ),
                    written.span,
                    format!("declared as {d}"),
                    format!(
                        "dimension {i} must be {d}; pass an input of that size, or build the net with other parameters"
                    ),
                ));
            }
            if let Some(sym) = d.as_symbol() {
                let here = format!("dimension {i} of `{input}`");
                let known = pending.symbols.iter().find(|(n, ..)| n == sym.as_str());
                match known {
                    Some((_, before, first)) => {
                        if let (Some(x), Some(y)) = (before.as_const(), a.as_const())
                            && x != y
                        {
                            mismatch = Some((
                                format!(
                                    "`{sym}` must agree across the inputs of `{net}`: {first} is {x}, {here} is {y}"
                                ),
                                written.span,
                                format!("`{sym}` is {x} here"),
                                format!(
                                    "`{sym}` took {x} from {first}; pass inputs that agree on it"
                                ),
                            ));
                        }
                    }
                    None => pending
                        .symbols
                        .push((sym.as_str().to_string(), a.clone(), here)),
                }
            }
        }
        if let Some((message, declared_at, declared_label, help)) = mismatch {
            pending.failed = true;
            self.error(CheckError::NetInput {
                message,
                span: at,
                label: format!("`{input}` is {shown}"),
                declared_at,
                declared_label,
                help,
            });
            // The mistake is reported once: the input is unknown for the rest of the body.
            return Ty::Tensor(TensorTy::unknown());
        }
        arg.clone()
    }

    /// Opens a group of report rows for a model call (its own row, then its layers').
    fn start_group(&mut self, net: &Rc<NetDef>, span: Span) -> Option<usize> {
        let depth = self.nets.depth;
        let rows = self.nets.rows.as_mut()?;
        // The outermost walk of a report is the net itself, not a row.
        if self.nets.stack.is_empty() {
            return None;
        }
        rows.push(Recorded {
            span,
            kind: net.name.name.to_string(),
            shape: None,
            params: None,
            field: None,
            depth,
            layer: None,
        });
        self.nets.depth += 1;
        Some(rows.len() - 1)
    }

    fn end_group(&mut self, group: Option<usize>, output: &Ty) {
        let Some(i) = group else { return };
        self.nets.depth -= 1;
        let Some(rows) = self.nets.rows.as_mut() else {
            return;
        };
        let depth = rows[i].depth;
        let inner: Vec<&Recorded> = rows[i + 1..]
            .iter()
            .filter(|r| r.depth == depth + 1)
            .collect();
        let params = unique_param_total(&inner);
        let row = &mut rows[i];
        row.params = params;
        if let Ty::Tensor(t) = output {
            row.shape = t.shape.clone();
            row.field = t.field.as_deref().copied();
        }
    }

    /// Records one layer application (for a report), as row `at`: before the rows of the
    /// layers it contains (`Sequential`).
    pub(super) fn record_layer(&mut self, l: &Rc<LayerTy>, input: &Ty, output: &Ty, at: usize) {
        let depth = self.nets.depth;
        let Some(rows) = self.nets.rows.as_mut() else {
            return;
        };
        let (shape, field) = match output {
            Ty::Tensor(t) => (t.shape.clone(), t.field.as_deref().copied()),
            _ => (None, None),
        };
        let params = if l.kind == "Sequential" {
            let inner: Vec<&Recorded> =
                rows[at..].iter().filter(|r| r.depth == depth + 1).collect();
            unique_param_total(&inner)
        } else {
            parameter_count(l, input)
        };
        let row = Recorded {
            span: l.span,
            kind: l.kind.to_string(),
            shape,
            params,
            field,
            depth,
            layer: Some(l.clone()),
        };
        rows.insert(at.min(rows.len()), row);
    }

    /// While a report records, layers inside `Sequential` are one level deeper.
    pub(super) fn nest_rows(&mut self, by: isize) {
        self.nets.depth = self.nets.depth.saturating_add_signed(by);
    }
}

/// The parameter total of `rows`, each layer counted once however often it is applied;
/// `None` when one of them is unknown.
pub(super) fn unique_param_total(rows: &[&Recorded]) -> Option<u64> {
    let mut seen: Vec<*const LayerTy> = Vec::new();
    let mut total = 0u64;
    for r in rows {
        if let Some(l) = &r.layer {
            let p = Rc::as_ptr(l);
            if seen.contains(&p) {
                continue;
            }
            seen.push(p);
        }
        total = total.checked_add(r.params?)?;
    }
    Some(total)
}

/// The number of learnable parameters of a layer applied to `input` (`_` channel counts
/// come from the input), when known.
fn parameter_count(l: &LayerTy, input: &Ty) -> Option<u64> {
    let arg = |name: &str| -> Option<Ty> {
        let i = l.def.0.params.iter().position(|p| p.name == name)?;
        Some(match &l.args[i] {
            Some((t, _)) => t.clone(),
            None => super::rules::default_ty(l.def.0.params[i].default),
        })
    };
    let int = |name: &str| arg(name).and_then(|t| t.as_int());
    let bias = |_: ()| match arg("bias") {
        Some(Ty::Bool(Some(b))) => Some(b),
        _ => None,
    };
    let channels = || match input {
        Ty::Tensor(TensorTy { shape: Some(s), .. }) if s.len() >= 3 => s[s.len() - 3].as_const(),
        _ => None,
    };
    let n = match l.kind {
        "Conv2d" | "ConvTranspose2d" => {
            let cin = int("in_channels").or_else(channels)?;
            let cout = int("out_channels")?;
            let g = int("groups")?;
            let [kh, kw] = super::rules::pair(&arg("kernel_size")?)?;
            let per = if l.kind == "Conv2d" {
                cout.checked_mul(cin / g.max(1))?
            } else {
                cin.checked_mul(cout / g.max(1))?
            };
            let weights = per.checked_mul(kh)?.checked_mul(kw)?;
            weights.checked_add(if bias(())? { cout } else { 0 })?
        }
        "Linear" => {
            let fin = int("in_features").or_else(|| match input {
                Ty::Tensor(TensorTy { shape: Some(s), .. }) => s.last()?.as_const(),
                _ => None,
            })?;
            let fout = int("out_features")?;
            fin.checked_mul(fout)?
                .checked_add(if bias(())? { fout } else { 0 })?
        }
        "BatchNorm2d" => 2 * int("num_features").or_else(channels)?,
        _ => 0,
    };
    u64::try_from(n).ok()
}

/// A declaration's dims as written: `[N, 1, H, W]`.
fn written_shape(dims: &[Expr]) -> String {
    let written: Vec<String> = dims
        .iter()
        .map(|d| match &d.node {
            ExprKind::Int(v) => v.to_string(),
            ExprKind::Name(id) => id.name.to_string(),
            _ => "_".to_string(),
        })
        .collect();
    format!("[{}]", written.join(", "))
}

/// The nets a body may name: every top-level `net` whose name is declared nowhere else.
pub(super) fn visible_nets(
    stmts: &[Stmt],
    counts: &HashMap<Rc<str>, usize>,
) -> HashMap<Rc<str>, Rc<NetDef>> {
    stmts
        .iter()
        .filter_map(|s| match &s.node {
            StmtKind::Net(def) if counts.get(&def.name.name).copied() == Some(1) => {
                Some((def.name.name.clone(), def.clone()))
            }
            _ => None,
        })
        .collect()
}
