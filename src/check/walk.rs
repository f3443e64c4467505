//! The walker: every statement and expression of a program, evaluated to types.
//!
//! Control flow is walked conservatively: both branches of an `if` are checked and the
//! names they assign joined; a loop body is checked once with every name it assigns
//! widened to unknown; `fn` bodies are checked once with unknown parameters. State-dependent
//! errors (E0401, E0403) are reported only in straight-line top-level code.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use super::dim::SymDim;
use super::error::{CheckError, CheckWarning};
use super::ty::{Grad, TensorTy, Ty};
use crate::builtins;
use crate::eval::error::closest;
use crate::source::Span;
use crate::syntax::ast::{
    Arg, BinOp, Block, Expr, ExprKind, GradMode, IndexKind, NetDef, Program, Stmt, StmtKind,
    UnaryOp,
};

/// Everything one check found.
#[derive(Debug, Default)]
pub struct Problems {
    /// Errors, in the order found.
    pub errors: Vec<CheckError>,
    /// Warnings.
    pub warnings: Vec<CheckWarning>,
    /// Each `let` with its inferred type: the name's span, the name, the type.
    pub lets: Vec<(Span, String, Ty)>,
}

/// One argument of a call, typed.
#[derive(Clone, Debug)]
pub struct TyArg {
    /// The keyword and its span, for `name=value`.
    pub name: Option<(Rc<str>, Span)>,
    /// The value's type.
    pub ty: Ty,
    /// The value's span.
    pub span: Span,
}

pub(super) struct Checker {
    scopes: Vec<HashMap<Rc<str>, Ty>>,
    /// The first scope of the current `fn`/`net` body; names below it are globals, whose
    /// value at call time the checker cannot know.
    frame_base: usize,
    in_body: bool,
    /// Every name declared anywhere: a body may use any of them as a global.
    declared_anywhere: HashSet<Rc<str>>,
    /// Straight-line top-level code, where every statement certainly runs in order.
    pub(super) certain: bool,
    pub(super) no_grad: bool,
    /// False when the program changes `requires_grad` in ways the checker does not follow.
    pub(super) grad_tracked: bool,
    /// Nets called somewhere with arguments: their bodies are checked with unknown params.
    nets_called_with_args: HashSet<Rc<str>>,
    pub(super) problems: Problems,
    /// Models built and called: signatures, memoised walks, report rows.
    pub(super) nets: super::net::NetState,
}

impl Checker {
    pub(super) fn new(program: &Program) -> Checker {
        let mut scan = Scan::default();
        for stmt in &program.stmts {
            scan.stmt(stmt);
        }
        Checker {
            scopes: vec![HashMap::new()],
            frame_base: 0,
            in_body: false,
            declared_anywhere: scan.declared,
            certain: true,
            no_grad: false,
            grad_tracked: !scan.changes_grad,
            nets_called_with_args: scan.called_with_args,
            problems: Problems::default(),
            nets: super::net::NetState::new(super::net::visible_nets(
                &program.stmts,
                &scan.declared_count,
            )),
        }
    }

    pub(super) fn error(&mut self, e: CheckError) {
        // A loop walked once per iteration meets the same mistake each time: one report.
        if !self.problems.errors.contains(&e) {
            self.problems.errors.push(e);
        }
    }

    fn lookup(&mut self, name: &str, span: Span) -> Ty {
        for scope in self.scopes[self.frame_base..].iter().rev() {
            if let Some(t) = scope.get(name) {
                return t.clone();
            }
        }
        if self.in_body
            && let Some(net) = self.global_net(name)
        {
            return net;
        }
        if self.in_body && self.declared_anywhere.contains(name) {
            return Ty::Unknown;
        }
        if let Some(def) = builtins::lookup(name) {
            return Ty::Builtin(super::ty::BuiltinRef(def));
        }
        let visible: Vec<Rc<str>> = self.visible_names();
        let candidates = visible
            .iter()
            .map(|s| &**s)
            .chain(builtins::BUILTINS.iter().map(|b| b.name));
        let help = match closest(name, candidates) {
            Some(near) => format!("did you mean `{near}`?"),
            None => format!("declare it before use: `let {name} = ...`"),
        };
        self.error(CheckError::UndefinedName {
            name: name.to_string(),
            span,
            help,
        });
        Ty::Unknown
    }

    fn visible_names(&self) -> Vec<Rc<str>> {
        let mut names: Vec<Rc<str>> = self.scopes[self.frame_base..]
            .iter()
            .flat_map(|s| s.keys().cloned())
            .collect();
        if self.in_body {
            names.extend(self.declared_anywhere.iter().cloned());
        }
        names.sort();
        names.dedup();
        names
    }

    fn declare(&mut self, name: &Rc<str>, ty: Ty) {
        if let Some(scope) = self.scopes.last_mut() {
            scope.insert(name.clone(), ty);
        }
    }

    /// Rebinds the nearest `name`; false if no scope of this frame has it.
    fn rebind(&mut self, name: &str, ty: Ty) -> bool {
        for scope in self.scopes[self.frame_base..].iter_mut().rev() {
            if let Some(slot) = scope.get_mut(name) {
                *slot = ty;
                return true;
            }
        }
        false
    }

    fn block(&mut self, block: &Block) {
        self.scopes.push(HashMap::new());
        for stmt in &block.node {
            self.stmt(stmt);
        }
        self.scopes.pop();
    }

    /// Widens every name assigned in `stmts` to unknown (a loop body may run many times).
    fn widen_assigned(&mut self, stmts: &[Stmt]) {
        let mut names = HashSet::new();
        assigned_names(stmts, &mut names);
        for name in names {
            let _ = self.rebind(&name, Ty::Unknown);
        }
    }

    fn with_flags<T>(&mut self, certain: bool, f: impl FnOnce(&mut Self) -> T) -> T {
        let saved = self.certain;
        self.certain = self.certain && certain;
        let out = f(self);
        self.certain = saved;
        out
    }

    pub(super) fn stmt(&mut self, stmt: &Stmt) {
        match &stmt.node {
            StmtKind::Let {
                name,
                value,
                annotation,
            } => {
                let mut ty = self.expr(value);
                if let Some(shape) = annotation {
                    ty = self.annotate(name, shape, ty, value.span);
                }
                self.problems
                    .lets
                    .push((name.span, name.name.to_string(), ty.clone()));
                self.declare(&name.name, ty);
            }
            StmtKind::Assign { target, op, value } => self.assign(target, *op, value),
            StmtKind::Expr(e) => {
                self.expr(e);
            }
            StmtKind::If {
                branches,
                otherwise,
            } => {
                let before = self.scopes.clone();
                let mut outcomes = Vec::new();
                for (i, (cond, body)) in branches.iter().enumerate() {
                    if i == 0 {
                        self.expr(cond);
                    } else {
                        self.with_flags(false, |c| c.expr(cond));
                    }
                    self.with_flags(false, |c| c.block(body));
                    outcomes.push(std::mem::replace(&mut self.scopes, before.clone()));
                }
                match otherwise {
                    Some(body) => {
                        self.with_flags(false, |c| c.block(body));
                        outcomes.push(std::mem::replace(&mut self.scopes, before.clone()));
                    }
                    None => outcomes.push(before.clone()),
                }
                self.scopes = join_scopes(&outcomes);
            }
            StmtKind::For {
                var,
                iterable,
                body,
            } => {
                let (it, bounds) = self.iterable(iterable);
                if let Some((lo, hi)) = bounds
                    && self.in_body
                    && hi.saturating_sub(lo) <= super::net::MAX_UNROLL
                    && !breaks(&body.node)
                {
                    // A net body's loop over a constant range builds its layers once per
                    // pass: walk each pass, so the shapes stay exact.
                    for i in lo..hi {
                        self.scopes.push(HashMap::new());
                        self.declare(&var.name, Ty::Int(Some(i)));
                        self.with_flags(false, |c| c.block(body));
                        self.scopes.pop();
                    }
                    return;
                }
                self.widen_assigned(&body.node);
                let var_ty = match it {
                    Ty::Range => Ty::Int(None),
                    _ => Ty::Unknown,
                };
                self.scopes.push(HashMap::new());
                self.declare(&var.name, var_ty);
                self.with_flags(false, |c| c.block(body));
                self.scopes.pop();
                self.widen_assigned(&body.node);
            }
            StmtKind::While { cond, body } => {
                self.widen_assigned(&body.node);
                self.with_flags(false, |c| {
                    c.expr(cond);
                    c.block(body);
                });
                self.widen_assigned(&body.node);
            }
            StmtKind::Break | StmtKind::Continue => {}
            StmtKind::Return(value) => {
                let ty = match value {
                    Some(v) => self.expr(v),
                    None => Ty::None,
                };
                self.note_return(ty);
                // Whatever follows may not run.
                self.certain = false;
            }
            StmtKind::With { mode, body } => {
                let saved = self.no_grad;
                self.no_grad = mode.node == GradMode::NoGrad;
                // Inside `enable_grad` nested in a `no_grad`, grad status is not followed.
                let certain = mode.node == GradMode::NoGrad || !saved;
                self.with_flags(certain, |c| c.block(body));
                self.no_grad = saved;
            }
            StmtKind::Assert { cond, message } => {
                self.expr(cond);
                if let Some(m) = message {
                    self.expr(m);
                }
            }
            StmtKind::Fn(def) => {
                self.declare(&def.name.name, Ty::Function(def.clone()));
                let params: Vec<(Rc<str>, Ty)> = def
                    .params
                    .iter()
                    .map(|p| {
                        if let Some(d) = &p.default {
                            self.expr(d);
                        }
                        (p.name.name.clone(), Ty::Unknown)
                    })
                    .collect();
                self.definition_body(&params, &def.body);
            }
            StmtKind::Net(def) => {
                self.declare(&def.name.name, Ty::Net(def.clone()));
                let use_defaults = !self.nets_called_with_args.contains(&def.name.name);
                let params: Vec<(Rc<str>, Ty)> = def
                    .params
                    .iter()
                    .map(|p| {
                        let ty = match &p.default {
                            Some(d) => {
                                let t = self.expr(d);
                                if use_defaults { t } else { Ty::Unknown }
                            }
                            None => Ty::Unknown,
                        };
                        (p.name.name.clone(), ty)
                    })
                    .collect();
                self.definition_body(&params, &def.body);
            }
            StmtKind::Input { name, shape } => {
                let ty = self.bind_input(name, shape);
                self.declare(&name.name, ty);
            }
        }
    }

    /// A dim of an `input` declaration: a constant, a parameter's value, a symbol or `_`.
    pub(super) fn declared_dim(&mut self, d: &Expr) -> SymDim {
        match &d.node {
            ExprKind::Underscore => SymDim::unknown(),
            ExprKind::Name(id) => {
                let local = self.scopes[self.frame_base..]
                    .iter()
                    .rev()
                    .find_map(|s| s.get(&id.name).cloned());
                match local {
                    Some(Ty::Int(Some(v))) => SymDim::constant(v),
                    Some(_) => SymDim::unknown(),
                    None => SymDim::symbol(&id.name),
                }
            }
            _ => match self.expr(d) {
                Ty::Int(Some(v)) => SymDim::constant(v),
                _ => SymDim::unknown(),
            },
        }
    }

    pub(super) fn body(&mut self, params: &[(Rc<str>, Ty)], body: &Block) {
        let saved = (self.frame_base, self.in_body, self.certain, self.no_grad);
        let depth = self.scopes.len();
        self.scopes.push(params.iter().cloned().collect());
        self.frame_base = depth;
        self.in_body = true;
        self.certain = false;
        self.no_grad = false;
        for stmt in &body.node {
            self.stmt(stmt);
        }
        self.scopes.truncate(depth);
        (self.frame_base, self.in_body, self.certain, self.no_grad) = saved;
    }

    fn assign(&mut self, target: &Expr, op: Option<BinOp>, value: &Expr) {
        let value_ty = self.expr(value);
        match &target.node {
            ExprKind::Name(id) => {
                let known = self.scopes[self.frame_base..]
                    .iter()
                    .rev()
                    .find_map(|s| s.get(&id.name).cloned());
                let Some(current) = known else {
                    if !(self.in_body && self.declared_anywhere.contains(&id.name)) {
                        let visible = self.visible_names();
                        let help = match closest(&id.name, visible.iter().map(|s| &**s)) {
                            Some(near) => format!(
                                "did you mean `{near}`? To declare a new name, use `let {} = ...`",
                                id.name
                            ),
                            None => format!("declare it first: `let {} = ...`", id.name),
                        };
                        self.error(CheckError::AssignToUndeclared {
                            name: id.name.to_string(),
                            span: id.span,
                            help,
                        });
                    }
                    return;
                };
                let new_ty = match op {
                    None => value_ty,
                    Some(op) => match &current {
                        Ty::Tensor(t) => {
                            self.check_inplace(t, target.span);
                            current.clone()
                        }
                        _ => self.binary_ty(op, &current, &value_ty, target.span, value.span),
                    },
                };
                self.rebind(&id.name, new_ty);
            }
            _ => {
                // `x[i] = v`, `layer.weight = v`: the object's names must exist.
                self.expr(target);
            }
        }
    }

    /// E0403 for an in-place write to `t`, when it is certainly a leaf requiring grad.
    pub(super) fn check_inplace(&mut self, t: &TensorTy, span: Span) {
        if t.grad == Grad::Leaf && self.certain && !self.no_grad && self.grad_tracked {
            use crate::eval::tensor_error::{TensorCode, TensorDiagnostic};
            let d = TensorDiagnostic::new(
                TensorCode::InPlaceOnLeaf,
                "a leaf Variable that requires grad is being used in an in-place operation",
                span,
                "in-place write to a leaf that requires grad",
            )
            .with_help("do it under `with no_grad { ... }` (as an optimizer step does), or write `x = x + ...` to make a new tensor");
            self.error(CheckError::Shape(Box::new(d)));
        }
    }

    pub(super) fn expr(&mut self, expr: &Expr) -> Ty {
        match &expr.node {
            ExprKind::Int(v) => Ty::Int(Some(*v)),
            ExprKind::Float(_) => Ty::Float,
            ExprKind::Bool(b) => Ty::Bool(Some(*b)),
            ExprKind::Str(s) => Ty::Str(Some(s.clone())),
            ExprKind::None => Ty::None,
            ExprKind::Name(id) => self.lookup(&id.name, id.span),
            ExprKind::Underscore => Ty::Unknown,
            ExprKind::List(items) => Ty::List(Some(items.iter().map(|e| self.expr(e)).collect())),
            ExprKind::Unary { op, operand } => {
                let t = self.expr(operand);
                match (op, t) {
                    (UnaryOp::Neg, Ty::Int(v)) => Ty::Int(v.and_then(i64::checked_neg)),
                    (UnaryOp::Neg, Ty::Float) => Ty::Float,
                    (UnaryOp::Neg, Ty::Tensor(t)) => Ty::Tensor(TensorTy {
                        shape: t.shape,
                        grad: derived(t.grad, self.no_grad),
                        field: t.field.clone(),
                    }),
                    (UnaryOp::Not, _) => Ty::Bool(None),
                    _ => Ty::Unknown,
                }
            }
            ExprKind::Binary { op, lhs, rhs } => {
                let l = self.expr(lhs);
                let r = self.expr(rhs);
                self.binary_ty(op.node, &l, &r, lhs.span, rhs.span)
            }
            ExprKind::Pipe { value, func } => {
                let v = self.expr(value);
                let f = self.expr(func);
                let args = vec![TyArg {
                    name: None,
                    ty: v,
                    span: value.span,
                }];
                self.apply(&f, &args, expr.span, None)
            }
            ExprKind::Call { callee, args } => {
                if let ExprKind::Field { object, name } = &callee.node {
                    let o = self.expr(object);
                    let args = self.args(args);
                    return self.method(&o, object.span, name, &args, expr.span);
                }
                let f = self.expr(callee);
                let typed = self.args(args);
                self.apply(&f, &typed, expr.span, Some(args))
            }
            ExprKind::Field { object, name } => {
                let o = self.expr(object);
                if !self.has_member(&o, name, false) {
                    return Ty::Unknown;
                }
                self.field(&o, &name.name)
            }
            ExprKind::Index { object, indices } => {
                let o = self.expr(object);
                let mut items = Vec::new();
                for item in indices {
                    match &item.node {
                        IndexKind::At(e) => items.push(Index::At(self.expr(e))),
                        IndexKind::Slice { start, stop, step } => {
                            let mut one = |e: &Option<Expr>| e.as_ref().map(|e| self.expr(e));
                            let (a, b, c) = (one(start), one(stop), one(step));
                            items.push(Index::Slice(a, b, c));
                        }
                    }
                }
                index_ty(&o, &items)
            }
        }
    }

    /// A `for` loop's iterable, and its bounds when it is a range of two constants.
    fn iterable(&mut self, iterable: &Expr) -> (Ty, Option<(i64, i64)>) {
        if let ExprKind::Binary { op, lhs, rhs } = &iterable.node
            && op.node == BinOp::Range
        {
            let l = self.expr(lhs);
            let r = self.expr(rhs);
            let bounds = l.as_int().zip(r.as_int());
            return (self.binary_ty(op.node, &l, &r, lhs.span, rhs.span), bounds);
        }
        (self.expr(iterable), None)
    }

    fn args(&mut self, args: &[Arg]) -> Vec<TyArg> {
        args.iter()
            .map(|a| TyArg {
                name: a.name.as_ref().map(|n| (n.name.clone(), n.span)),
                ty: self.expr(&a.value),
                span: if a.name.is_some() {
                    a.span
                } else {
                    a.value.span
                },
            })
            .collect()
    }

    fn field(&mut self, o: &Ty, name: &str) -> Ty {
        match o {
            Ty::Tensor(t) => match name {
                "shape" => match &t.shape {
                    Some(s) => Ty::List(Some(s.iter().map(|d| Ty::Int(d.as_const())).collect())),
                    None => Ty::List(None),
                },
                "ndim" => Ty::Int(t.shape.as_ref().map(|s| s.len() as i64)),
                "T" => match &t.shape {
                    Some(s) if s.len() == 2 => Ty::Tensor(TensorTy::of(
                        vec![s[1].clone(), s[0].clone()],
                        derived(t.grad, self.no_grad),
                    )),
                    _ => Ty::Tensor(TensorTy::unknown()),
                },
                "requires_grad" | "is_leaf" => Ty::Bool(None),
                _ => Ty::Unknown,
            },
            _ => Ty::Unknown,
        }
    }
}

/// The grad status of a result computed from one input.
pub(super) fn derived(g: Grad, no_grad: bool) -> Grad {
    if no_grad {
        return Grad::No;
    }
    match g {
        Grad::Leaf | Grad::Yes => Grad::Yes,
        other => other,
    }
}

/// The grad status of a result computed from two inputs.
pub(super) fn combined(a: Grad, b: Grad, no_grad: bool) -> Grad {
    if no_grad {
        return Grad::No;
    }
    match (a, b) {
        (Grad::No, Grad::No) => Grad::No,
        (Grad::Leaf | Grad::Yes, _) | (_, Grad::Leaf | Grad::Yes) => Grad::Yes,
        _ => Grad::Unknown,
    }
}

/// One item of an index expression, typed.
pub(super) enum Index {
    At(Ty),
    Slice(Option<Ty>, Option<Ty>, Option<Ty>),
}

fn index_ty(o: &Ty, items: &[Index]) -> Ty {
    match o {
        Ty::Tensor(t) => {
            let Some(shape) = &t.shape else {
                return Ty::Tensor(TensorTy::unknown());
            };
            if items.len() > shape.len() {
                return Ty::Tensor(TensorTy::unknown());
            }
            let mut out = Vec::new();
            for (i, dim) in shape.iter().enumerate() {
                match items.get(i) {
                    None => out.push(dim.clone()),
                    Some(Index::At(Ty::Int(_))) => {}
                    Some(Index::At(_)) => return Ty::Tensor(TensorTy::unknown()),
                    Some(Index::Slice(a, b, c)) => out.push(slice_len(dim, a, b, c)),
                }
            }
            Ty::Tensor(TensorTy {
                shape: Some(out),
                grad: match t.grad {
                    Grad::Leaf => Grad::Yes,
                    g => g,
                },
                field: None,
            })
        }
        Ty::List(Some(elems)) => match items {
            [Index::At(Ty::Int(Some(i)))] => {
                let n = elems.len() as i64;
                let k = if *i < 0 { i + n } else { *i };
                match usize::try_from(k).ok().and_then(|k| elems.get(k)) {
                    Some(t) => t.clone(),
                    None => Ty::Unknown,
                }
            }
            _ => Ty::Unknown,
        },
        _ => Ty::Unknown,
    }
}

/// The length of `start:stop:step` over a dim, when everything is a constant.
fn slice_len(dim: &SymDim, a: &Option<Ty>, b: &Option<Ty>, c: &Option<Ty>) -> SymDim {
    let Some(n) = dim.as_const().filter(|n| *n >= 0) else {
        return SymDim::unknown();
    };
    let get = |t: &Option<Ty>, default: i64| match t {
        None | Some(Ty::None) => Some(default),
        Some(Ty::Int(v)) => *v,
        _ => None,
    };
    let (Some(start), Some(stop), Some(step)) = (get(a, 0), get(b, n), get(c, 1)) else {
        return SymDim::unknown();
    };
    if step <= 0 {
        return SymDim::unknown();
    }
    let clamp = |v: i64| {
        let v = if v < 0 { v.saturating_add(n) } else { v };
        v.clamp(0, n)
    };
    let (s, e) = (clamp(start), clamp(stop));
    if e <= s {
        SymDim::constant(0)
    } else {
        // ceil((e - s) / step), without overflow for a step near i64::MAX.
        SymDim::constant((e - s - 1) / step + 1)
    }
}

fn join_scopes(outcomes: &[Vec<HashMap<Rc<str>, Ty>>]) -> Vec<HashMap<Rc<str>, Ty>> {
    let mut out = outcomes[0].clone();
    for other in &outcomes[1..] {
        for (scope, o) in out.iter_mut().zip(other) {
            for (name, ty) in scope.iter_mut() {
                *ty = match o.get(name) {
                    Some(t) => ty.join(t),
                    None => Ty::Unknown,
                };
            }
        }
    }
    out
}

/// Whether `stmts` may leave their loop early (`break` or `continue` not inside a nested
/// loop), which a pass-by-pass walk does not follow.
fn breaks(stmts: &[Stmt]) -> bool {
    stmts.iter().any(|s| match &s.node {
        StmtKind::Break | StmtKind::Continue => true,
        StmtKind::If {
            branches,
            otherwise,
        } => {
            branches.iter().any(|(_, b)| breaks(&b.node))
                || otherwise.as_ref().is_some_and(|b| breaks(&b.node))
        }
        StmtKind::With { body, .. } => breaks(&body.node),
        _ => false,
    })
}

fn assigned_names(stmts: &[Stmt], out: &mut HashSet<Rc<str>>) {
    for stmt in stmts {
        match &stmt.node {
            StmtKind::Assign { target, .. } => {
                if let ExprKind::Name(id) = &target.node {
                    out.insert(id.name.clone());
                }
            }
            StmtKind::If {
                branches,
                otherwise,
            } => {
                for (_, b) in branches {
                    assigned_names(&b.node, out);
                }
                if let Some(b) = otherwise {
                    assigned_names(&b.node, out);
                }
            }
            StmtKind::For { body, .. }
            | StmtKind::While { body, .. }
            | StmtKind::With { body, .. } => assigned_names(&body.node, out),
            _ => {}
        }
    }
}

/// A first pass over the program: the names declared anywhere, whether it changes
/// `requires_grad` by hand, and which nets are built with arguments.
#[derive(Default)]
struct Scan {
    declared: HashSet<Rc<str>>,
    /// How many declarations each name has (a net named once is visible in every body).
    declared_count: HashMap<Rc<str>, usize>,
    changes_grad: bool,
    called_with_args: HashSet<Rc<str>>,
}

impl Scan {
    fn declare(&mut self, name: &Rc<str>) {
        self.declared.insert(name.clone());
        *self.declared_count.entry(name.clone()).or_default() += 1;
    }

    fn block(&mut self, stmts: &[Stmt]) {
        for s in stmts {
            self.stmt(s);
        }
    }

    fn stmt(&mut self, stmt: &Stmt) {
        match &stmt.node {
            StmtKind::Let { name, value, .. } => {
                self.declare(&name.name);
                self.expr(value);
            }
            StmtKind::Assign { target, value, .. } => {
                if let ExprKind::Field { name, .. } = &target.node
                    && &*name.name == "requires_grad"
                {
                    self.changes_grad = true;
                }
                self.expr(target);
                self.expr(value);
            }
            StmtKind::Expr(e) | StmtKind::Return(Some(e)) => self.expr(e),
            StmtKind::If {
                branches,
                otherwise,
            } => {
                for (c, b) in branches {
                    self.expr(c);
                    self.block(&b.node);
                }
                if let Some(b) = otherwise {
                    self.block(&b.node);
                }
            }
            StmtKind::For {
                var,
                iterable,
                body,
            } => {
                self.declare(&var.name);
                self.expr(iterable);
                self.block(&body.node);
            }
            StmtKind::While { cond, body } => {
                self.expr(cond);
                self.block(&body.node);
            }
            StmtKind::With { body, .. } => self.block(&body.node),
            StmtKind::Assert { cond, message } => {
                self.expr(cond);
                if let Some(m) = message {
                    self.expr(m);
                }
            }
            StmtKind::Fn(def) => {
                self.declare(&def.name.name);
                self.params(&def.params);
                self.block(&def.body.node);
            }
            StmtKind::Net(def) => self.net(def),
            StmtKind::Input { name, .. } => {
                self.declare(&name.name);
            }
            StmtKind::Break | StmtKind::Continue | StmtKind::Return(None) => {}
        }
    }

    fn net(&mut self, def: &Rc<NetDef>) {
        self.declare(&def.name.name);
        self.params(&def.params);
        self.block(&def.body.node);
    }

    fn params(&mut self, params: &[crate::syntax::ast::Param]) {
        for p in params {
            self.declare(&p.name.name);
            if let Some(d) = &p.default {
                self.expr(d);
            }
        }
    }

    fn expr(&mut self, e: &Expr) {
        match &e.node {
            ExprKind::List(items) => items.iter().for_each(|i| self.expr(i)),
            ExprKind::Unary { operand, .. } => self.expr(operand),
            ExprKind::Binary { lhs, rhs, .. } => {
                self.expr(lhs);
                self.expr(rhs);
            }
            ExprKind::Pipe { value, func } => {
                self.expr(value);
                self.expr(func);
            }
            ExprKind::Call { callee, args } => {
                match &callee.node {
                    ExprKind::Field { name, .. } if &*name.name == "requires_grad_" => {
                        self.changes_grad = true;
                        self.expr(callee);
                    }
                    ExprKind::Name(id) => {
                        if !args.is_empty() {
                            self.called_with_args.insert(id.name.clone());
                        }
                    }
                    _ => self.expr(callee),
                }
                args.iter().for_each(|a| self.expr(&a.value));
            }
            ExprKind::Field { object, .. } => self.expr(object),
            ExprKind::Index { object, indices } => {
                self.expr(object);
                for i in indices {
                    match &i.node {
                        IndexKind::At(e) => self.expr(e),
                        IndexKind::Slice { start, stop, step } => {
                            for e in [start, stop, step].into_iter().flatten() {
                                self.expr(e);
                            }
                        }
                    }
                }
            }
            // A name used as a value (a net passed around may be built with arguments).
            ExprKind::Name(id) => {
                self.called_with_args.insert(id.name.clone());
            }
            _ => {}
        }
    }
}
