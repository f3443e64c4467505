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
use crate::diagnostic::{IndexOutOfRange, closest};
use crate::source::Span;
use crate::syntax::ast::{
    Arg, BinOp, Block, Expr, ExprKind, GradMode, IndexKind, NetDef, Program, Stmt, StmtKind,
    UnaryOp,
};
use crate::tensor::TensorError;

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

/// The most names a "did you mean" hint compares against; past that a file has too many
/// names for a guess to be useful, and comparing with each would make every undefined
/// name cost the size of the file.
const MAX_HINT_CANDIDATES: usize = 1000;

/// Where an error's labels point, its call stack left out: equal errors have equal keys.
pub(super) type ErrorKey = Vec<(usize, usize)>;

fn error_key(e: &CheckError) -> ErrorKey {
    use miette::Diagnostic;
    super::net::without_calls(e)
        .labels()
        .into_iter()
        .flatten()
        .map(|l| (l.offset(), l.len()))
        .collect()
}

/// The errors reported so far, by [`ErrorKey`]: indices into the error list.
#[derive(Default)]
pub(super) struct ErrorIndex(HashMap<ErrorKey, Vec<usize>>);

impl ErrorIndex {
    fn get(&self, key: &ErrorKey) -> impl Iterator<Item = usize> + '_ {
        self.0.get(key).into_iter().flatten().copied()
    }

    fn insert(&mut self, key: ErrorKey, at: usize) {
        self.0.entry(key).or_default().push(at);
    }

    fn remove(&mut self, key: &ErrorKey, at: usize) {
        if let Some(list) = self.0.get_mut(key) {
            list.retain(|&i| i != at);
            if list.is_empty() {
                self.0.remove(key);
            }
        }
    }
}

/// What a program checked against a kept state changed, to undo it (see
/// [`Checker::rollback`]).
struct Journal {
    /// Top-level names it declared or rebound, with their type before it (none: new).
    globals: HashMap<Rc<str>, Option<Ty>>,
    /// Names it added to `declared_anywhere`.
    declared: Vec<Rc<str>>,
    /// What it added to `declared_count`.
    counted: Vec<(Rc<str>, usize)>,
    /// Names it added to `nets_called_with_args`.
    called: Vec<Rc<str>>,
    /// Changes to the visible nets, in order, with what each name held before.
    net_globals: Vec<(Rc<str>, Option<Rc<NetDef>>)>,
    grad_tracked: bool,
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
    /// How many declarations each name has (a net named once is visible in every body).
    declared_count: HashMap<Rc<str>, usize>,
    /// While a program is checked against a kept state (a REPL entry): how to undo it.
    journal: Option<Journal>,
    pub(super) problems: Problems,
    /// Where the errors reported so far point, to find a repeat without scanning them all.
    reported: ErrorIndex,
    /// Models built and called: signatures, memoised walks, report rows.
    pub(super) nets: super::net::NetState,
}

impl Checker {
    pub(super) fn new(program: &Program) -> Checker {
        let mut checker = Checker::empty();
        checker.learn(program);
        checker
    }

    /// A checker that has seen nothing yet.
    pub(super) fn empty() -> Checker {
        Checker {
            scopes: vec![HashMap::new()],
            frame_base: 0,
            in_body: false,
            declared_anywhere: HashSet::new(),
            certain: true,
            no_grad: false,
            grad_tracked: true,
            nets_called_with_args: HashSet::new(),
            declared_count: HashMap::new(),
            journal: None,
            problems: Problems::default(),
            reported: ErrorIndex::default(),
            nets: super::net::NetState::default(),
        }
    }

    /// Takes in what a first pass over `program` finds (the names it declares, whether it
    /// changes `requires_grad`, the nets it builds with arguments), as if it had been part
    /// of every program checked before; noted in the journal when there is one.
    fn learn(&mut self, program: &Program) {
        let mut scan = Scan::default();
        for stmt in &program.stmts {
            scan.stmt(stmt);
        }
        let mut journal = self.journal.take();
        // A walk remembered from before may have resolved a name differently.
        let mut stale = false;
        for name in scan.declared {
            stale |= builtins::lookup(&name).is_some();
            if self.declared_anywhere.insert(name.clone())
                && let Some(j) = &mut journal
            {
                j.declared.push(name);
            }
        }
        for (name, n) in scan.declared_count {
            let count = self.declared_count.entry(name.clone()).or_default();
            *count += n;
            if *count != 1
                && let Some(old) = self.nets.globals.remove(&name)
            {
                stale = true;
                if let Some(j) = &mut journal {
                    j.net_globals.push((name.clone(), Some(old)));
                }
            }
            if let Some(j) = &mut journal {
                j.counted.push((name, n));
            }
        }
        for (name, def) in super::net::visible_nets(&program.stmts, &self.declared_count) {
            let old = self.nets.globals.insert(name.clone(), def);
            stale |= old.is_some();
            if let Some(j) = &mut journal {
                j.net_globals.push((name, old));
            }
        }
        if scan.changes_grad {
            self.grad_tracked = false;
        }
        for name in scan.called_with_args {
            if self.nets_called_with_args.insert(name.clone())
                && let Some(j) = &mut journal
            {
                j.called.push(name);
            }
        }
        if stale {
            self.nets.forget_walks();
        }
        self.journal = journal;
    }

    /// Starts checking `program` as the continuation of everything kept so far: each
    /// change is journaled until [`Checker::commit`] or [`Checker::rollback`].
    pub(super) fn begin(&mut self, program: &Program) {
        self.rollback();
        self.problems = Problems::default();
        self.reported = ErrorIndex::default();
        self.certain = true;
        self.no_grad = false;
        self.journal = Some(Journal {
            globals: HashMap::new(),
            declared: Vec::new(),
            counted: Vec::new(),
            called: Vec::new(),
            net_globals: Vec::new(),
            grad_tracked: self.grad_tracked,
        });
        self.learn(program);
    }

    /// Keeps what the program begun last changed.
    pub(super) fn commit(&mut self) {
        self.journal = None;
    }

    /// Undoes what the program begun last changed, as if it had never been checked.
    pub(super) fn rollback(&mut self) {
        let Some(j) = self.journal.take() else {
            return;
        };
        self.scopes.truncate(1);
        (self.frame_base, self.in_body) = (0, false);
        for (name, old) in j.globals {
            match old {
                Some(ty) => self.scopes[0].insert(name, ty),
                None => self.scopes[0].remove(&name),
            };
        }
        for name in j.declared {
            self.declared_anywhere.remove(&name);
        }
        for (name, n) in j.counted {
            if let Some(count) = self.declared_count.get_mut(&name) {
                *count -= n;
                if *count == 0 {
                    self.declared_count.remove(&name);
                }
            }
        }
        for name in j.called {
            self.nets_called_with_args.remove(&name);
        }
        for (name, old) in j.net_globals.into_iter().rev() {
            match old {
                Some(def) => self.nets.globals.insert(name, def),
                None => self.nets.globals.remove(&name),
            };
        }
        self.grad_tracked = j.grad_tracked;
        // Walks remembered while checking it may rest on what was just undone.
        self.nets.forget_walks();
    }

    /// Notes the type a top-level `name` had before the program being checked changed it.
    fn note_global(&mut self, name: &Rc<str>) {
        if let Some(j) = &mut self.journal
            && !j.globals.contains_key(name)
        {
            j.globals
                .insert(name.clone(), self.scopes[0].get(name).cloned());
        }
    }

    pub(super) fn error(&mut self, e: CheckError) {
        // A loop walked once per iteration meets the same mistake each time: one report.
        let key = error_key(&e);
        let errors = &self.problems.errors;
        if !self.reported.get(&key).any(|i| errors[i] == e) {
            self.push_error(key, e);
        }
    }

    fn push_error(&mut self, key: ErrorKey, e: CheckError) {
        self.reported.insert(key, self.problems.errors.len());
        self.problems.errors.push(e);
    }

    /// Whether an error that reads as `e` apart from its call stack was reported already.
    pub(super) fn reported_without_calls(&self, e: &CheckError) -> (bool, ErrorKey) {
        let bare = super::net::without_calls(e);
        let key = error_key(&bare);
        let errors = &self.problems.errors;
        let found = self
            .reported
            .get(&key)
            .any(|i| super::net::without_calls(&errors[i]) == bare);
        (found, key)
    }

    /// Adds `e`, found to be new by [`Checker::reported_without_calls`] under `key`.
    pub(super) fn push_new_error(&mut self, key: ErrorKey, e: CheckError) {
        self.push_error(key, e);
    }

    /// Removes and returns the errors reported from index `from` on.
    pub(super) fn take_errors_from(&mut self, from: usize) -> Vec<CheckError> {
        let taken = self.problems.errors.split_off(from);
        for (i, e) in taken.iter().enumerate() {
            self.reported.remove(&error_key(e), from + i);
        }
        taken
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

    /// The names a "did you mean" hint may offer: none when there are more than
    /// [`MAX_HINT_CANDIDATES`], so that a hint costs the same in a file of any size.
    fn visible_names(&self) -> Vec<Rc<str>> {
        let mut count: usize = self.scopes[self.frame_base..]
            .iter()
            .map(HashMap::len)
            .sum();
        if self.in_body {
            count += self.declared_anywhere.len();
        }
        if count > MAX_HINT_CANDIDATES {
            return Vec::new();
        }
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
        if self.scopes.len() == 1 {
            self.note_global(name);
        }
        if let Some(scope) = self.scopes.last_mut() {
            scope.insert(name.clone(), ty);
        }
    }

    /// Rebinds the nearest `name`; false if no scope of this frame has it.
    fn rebind(&mut self, name: &str, ty: Ty) -> bool {
        match self.slot(name) {
            Some((at, key)) => {
                self.set_slot(at, &key, ty);
                true
            }
            None => false,
        }
    }

    /// The scope `name` resolves to in this frame, and the name as that scope holds it.
    fn slot(&self, name: &str) -> Option<(usize, Rc<str>)> {
        (self.frame_base..self.scopes.len())
            .rev()
            .find_map(|i| Some((i, self.scopes[i].get_key_value(name)?.0.clone())))
    }

    /// Sets `name` in scope `at`, journaled for the top level.
    fn set_slot(&mut self, at: usize, name: &Rc<str>, ty: Ty) {
        if at == 0 {
            self.note_global(name);
        }
        self.scopes[at].insert(name.clone(), ty);
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
            StmtKind::Assign { target, op, value } => self.assign(target, *op, value, stmt.span),
            StmtKind::Expr(e) => {
                self.expr(e);
            }
            StmtKind::If {
                branches,
                otherwise,
            } => {
                // Only the names the branches assign can differ after them: each is
                // put back before the next branch, then joined over the branches.
                let mut assigned = HashSet::new();
                for (_, body) in branches {
                    assigned_names(&body.node, &mut assigned);
                }
                if let Some(body) = otherwise {
                    assigned_names(&body.node, &mut assigned);
                }
                let mut slots: Vec<(usize, Rc<str>)> =
                    assigned.iter().filter_map(|n| self.slot(n)).collect();
                slots.sort();
                let types = |c: &Self| -> Vec<Ty> {
                    slots
                        .iter()
                        .map(|(at, n)| c.scopes[*at].get(n).cloned().unwrap_or(Ty::Unknown))
                        .collect()
                };
                let before = types(self);
                let mut outcomes = Vec::new();
                // While every condition so far was known false, the next one is certainly
                // evaluated, and a known-true one is certainly the branch taken: only it is
                // walked, as only it runs (a net built with `down=false` has no pooling).
                let mut decided = true;
                for (cond, body) in branches {
                    let taken = if decided {
                        known_truth(&self.expr(cond))
                    } else {
                        self.with_flags(false, |c| c.expr(cond));
                        None
                    };
                    match taken {
                        Some(true) => {
                            self.block(body);
                            return;
                        }
                        Some(false) => continue,
                        None => decided = false,
                    }
                    self.with_flags(false, |c| c.block(body));
                    outcomes.push(types(self));
                    for ((at, n), ty) in slots.iter().zip(&before) {
                        self.set_slot(*at, n, ty.clone());
                    }
                }
                match otherwise {
                    Some(body) if decided => {
                        self.block(body);
                        return;
                    }
                    Some(body) => {
                        self.with_flags(false, |c| c.block(body));
                        outcomes.push(types(self));
                    }
                    None if decided => return,
                    None => outcomes.push(before),
                }
                for (k, (at, n)) in slots.iter().enumerate() {
                    let joined = outcomes[1..]
                        .iter()
                        .fold(outcomes[0][k].clone(), |ty, o| ty.join(&o[k]));
                    self.set_slot(*at, n, joined);
                }
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

    fn assign(&mut self, target: &Expr, op: Option<BinOp>, value: &Expr, statement: Span) {
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
                            if let Some(name) = inplace_name(op) {
                                self.check_inplace(t, name, statement);
                            }
                            current.clone()
                        }
                        _ => self.binary_ty(op, &current, &value_ty, target.span, value.span),
                    },
                };
                self.rebind(&id.name, new_ty);
            }
            _ => {
                // `x[i] = v`, `layer.weight = v`: the object's names must exist.
                let written = self.expr(target);
                // A write into `x[i]` is an in-place op on a view of `x`.
                if let (ExprKind::Index { .. }, Ty::Tensor(t)) = (&target.node, &written) {
                    let name = match (op, &value_ty) {
                        (Some(op), _) => inplace_name(op),
                        (None, Ty::Tensor(_)) => Some("copy_"),
                        (None, Ty::Int(_) | Ty::Float | Ty::Bool(_)) => Some("fill_"),
                        _ => None,
                    };
                    if let Some(name) = name {
                        self.check_inplace(t, name, statement);
                    }
                }
            }
        }
    }

    /// E0403 for the in-place op `op` on a leaf that requires grad, or a view of one, as
    /// the run-time check reports it.
    pub(super) fn check_inplace(&mut self, t: &TensorTy, op: &'static str, span: Span) {
        if !(self.certain && !self.no_grad && self.grad_tracked) {
            return;
        }
        let through_view = match t.grad {
            Grad::Leaf => false,
            Grad::LeafView => true,
            _ => return,
        };
        self.tensor_error(TensorError::InPlaceOnLeaf { op, through_view }, span);
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
                if let Some(e) = index_out_of_range(&o, &items, indices) {
                    self.error(CheckError::Index(Box::new(e)));
                    return Ty::Unknown;
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
        Grad::Leaf | Grad::LeafView | Grad::Yes => Grad::Yes,
        other => other,
    }
}

/// The in-place op an augmented assignment to a tensor runs (`x += y` is `x.add_(y)`); the
/// other operators are not in-place on tensors.
fn inplace_name(op: BinOp) -> Option<&'static str> {
    match op {
        BinOp::Add => Some("add_"),
        BinOp::Sub => Some("sub_"),
        BinOp::Mul => Some("mul_"),
        BinOp::Div => Some("div_"),
        _ => None,
    }
}

/// Whether a condition of this type is known to be true or false (Python truthiness of a
/// constant bool or int).
fn known_truth(t: &Ty) -> Option<bool> {
    match t {
        Ty::Bool(Some(b)) => Some(*b),
        Ty::Int(Some(i)) => Some(*i != 0),
        _ => None,
    }
}

/// The grad status of a result computed from two inputs.
pub(super) fn combined(a: Grad, b: Grad, no_grad: bool) -> Grad {
    if no_grad {
        return Grad::No;
    }
    match (a, b) {
        (Grad::No, Grad::No) => Grad::No,
        (Grad::Leaf | Grad::LeafView | Grad::Yes, _)
        | (_, Grad::Leaf | Grad::LeafView | Grad::Yes) => Grad::Yes,
        _ => Grad::Unknown,
    }
}

/// One item of an index expression, typed.
pub(super) enum Index {
    At(Ty),
    Slice(Option<Ty>, Option<Ty>, Option<Ty>),
}

/// E0313 for a constant index past a size the checker knows, as the run-time check
/// reports it (a tensor dimension, or a list whose items are known).
fn index_out_of_range(
    o: &Ty,
    items: &[Index],
    indices: &[crate::syntax::ast::IndexItem],
) -> Option<IndexOutOfRange> {
    let out_of_range = |index: i64, len: usize| {
        let n = i64::try_from(len).ok()?;
        let wrapped = if index < 0 {
            index.checked_add(n)?
        } else {
            index
        };
        (!(0..n).contains(&wrapped)).then_some(())
    };
    let (dims, what): (Vec<Option<usize>>, &dyn Fn(usize, usize) -> String) = match o {
        Ty::Tensor(TensorTy {
            shape: Some(shape), ..
        }) if items.len() <= shape.len() => (
            shape
                .iter()
                .map(|d| d.as_const().and_then(|v| usize::try_from(v).ok()))
                .collect(),
            &|dim, size| format!("dimension {dim} of size {size}"),
        ),
        Ty::List(Some(elems)) if items.len() == 1 => (vec![Some(elems.len())], &|_, len| {
            format!("list of length {len}")
        }),
        _ => return None,
    };
    for (dim, (item, written)) in items.iter().zip(indices).enumerate() {
        if let (Index::At(Ty::Int(Some(index))), Some(Some(len))) = (item, dims.get(dim))
            && out_of_range(*index, *len).is_some()
        {
            return Some(IndexOutOfRange {
                index: *index,
                len: *len,
                what: what(dim, *len),
                span: written.span,
                calls: Vec::new(),
            });
        }
    }
    None
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
                    Grad::Leaf | Grad::LeafView => Grad::LeafView,
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
