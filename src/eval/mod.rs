//! The tree-walking interpreter.
//!
//! An [`Interpreter`] keeps its top-level bindings between calls to [`Interpreter::run`],
//! so a REPL feeds it one entry after another. Statements return a [`Flow`] for
//! `break`/`continue`/`return`; errors are boxed [`RuntimeError`]s that collect the spans of
//! the calls they pass through.

pub mod call;
pub mod env;
pub mod error;
pub mod net;
pub mod ops;
pub mod tensor;
pub mod tensor_error;
pub mod value;

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::builtins;
use crate::source::Span;
use crate::syntax::ast::{
    BinOp, Expr, ExprKind, Ident, IndexItem, IndexKind, Program, Stmt, StmtKind, UnaryOp,
};

pub use call::CallArg;
pub use env::Env;
pub use error::{RuntimeError, RuntimeWarning};
pub use value::{Record, Value};

use error::closest;
use ops::{BinSpans, IndexValue};

/// What evaluation returns inside the interpreter; the error is boxed so that the `Ok`
/// path, taken on every node, stays small.
pub type EvalResult<T> = Result<T, Box<RuntimeError>>;

/// Default limit on nested `fn` calls.
pub const DEFAULT_RECURSION_LIMIT: usize = 1000;

/// How a statement finished: normally, or by a jump that an enclosing loop or call takes.
#[derive(Debug)]
pub(crate) enum Flow {
    Normal,
    Break(Span),
    Continue(Span),
    Return(Value, Span),
}

/// The top-level bindings of an [`Interpreter`] at one moment; the default is none at all.
#[derive(Clone, Copy, Debug, Default)]
pub struct SavedGlobals(env::SavedTop);

/// Runs programs, keeping global state between them.
pub struct Interpreter {
    env: Env,
    out: Box<dyn Write>,
    interrupt: Arc<AtomicBool>,
    recursion_limit: usize,
    /// The span of each call site handed to the tensor engine (site `n` is `sites[n - 1]`).
    sites: Vec<Span>,
    /// The site number of each span in `sites`.
    site_ids: HashMap<Span, u32>,
    /// Warnings not yet taken by the caller.
    warnings: Vec<RuntimeWarning>,
    /// Where a warning was raised already (each place warns once).
    warned: HashSet<Span>,
    /// The net passes in progress, innermost last (see [`net`]).
    passes: Vec<net::Pass>,
    /// Set while a net's build probes run: BatchNorm2d keeps its statistics, Dropout is
    /// the identity.
    building: bool,
    /// Layer applications recorded for [`Interpreter::trace_forward`], when tracing.
    trace: Option<Vec<net::RawTrace>>,
}

impl Interpreter {
    /// An interpreter with empty globals whose `print` writes to `out`.
    pub fn new(out: Box<dyn Write>) -> Interpreter {
        Interpreter {
            env: Env::new(),
            out,
            interrupt: Arc::new(AtomicBool::new(false)),
            recursion_limit: DEFAULT_RECURSION_LIMIT,
            sites: Vec::new(),
            site_ids: HashMap::new(),
            warnings: Vec::new(),
            warned: HashSet::new(),
            passes: Vec::new(),
            building: false,
            trace: None,
        }
    }

    /// Whether a net's build probes are running (layers then leave their state alone).
    pub fn building(&self) -> bool {
        self.building
    }

    /// Records one layer application while [`Interpreter::trace_forward`] runs.
    pub(crate) fn trace_layer(
        &mut self,
        layer: *const crate::builtins::layers::Layer,
        kind: String,
        input: &[usize],
        output: &[usize],
    ) {
        if let Some(trace) = &mut self.trace {
            trace.push(net::RawTrace {
                layer,
                kind,
                input: input.to_vec(),
                output: output.to_vec(),
            });
        }
    }

    /// Whether layer applications are being traced.
    pub(crate) fn tracing(&self) -> bool {
        self.trace.is_some()
    }

    /// A flag that stops the running program with E0506 when set (from another thread or a
    /// signal handler). The interpreter clears it when it stops.
    pub fn interrupt_handle(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.interrupt)
    }

    /// Sets the maximum depth of nested `fn` calls. Each level costs a few kilobytes of
    /// native stack; run deep programs on a thread with a large stack.
    pub fn set_recursion_limit(&mut self, limit: usize) {
        self.recursion_limit = limit;
    }

    /// Whether autograd recording is on (`with no_grad` turns it off).
    pub fn grad_enabled(&self) -> bool {
        crate::tensor::is_grad_enabled()
    }

    /// The top-level bindings, oldest first.
    pub fn globals(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.env.globals()
    }

    /// The value of the top-level name `name`.
    pub fn global(&self, name: &str) -> Option<&Value> {
        self.env.get(name)
    }

    /// The top-level bindings as they are now, to put back with
    /// [`Interpreter::restore_globals`]. Values are shared handles: a tensor changed in
    /// place afterwards stays changed.
    pub fn save_globals(&mut self) -> SavedGlobals {
        SavedGlobals(self.env.save_globals())
    }

    /// Puts back the top-level bindings saved by [`Interpreter::save_globals`] (the REPL
    /// undoes a failed entry this way).
    pub fn restore_globals(&mut self, saved: SavedGlobals) {
        self.env.restore_globals(saved.0);
    }

    /// Runs `program` in the global scope. Returns the value of the last statement when it
    /// is an expression. After an error, top-level bindings made before it stay. The error
    /// is boxed because it is large; `miette::Report::new(*err)` renders it.
    pub fn run(&mut self, program: &Program) -> EvalResult<Option<Value>> {
        let mut last = None;
        for stmt in &program.stmts {
            // Ctrl-C stops a script before its next statement (loops and calls look too).
            let result = match (self.check_interrupt(stmt.span), &stmt.node) {
                (Err(err), _) => Err(err),
                (Ok(()), StmtKind::Expr(expr)) => self.eval(expr).map(|v| {
                    last = Some(v);
                    Flow::Normal
                }),
                (Ok(()), _) => {
                    last = None;
                    self.exec_stmt(stmt)
                }
            };
            let misplaced = match result {
                Ok(Flow::Normal) => None,
                Ok(Flow::Break(span)) => Some(Self::misplaced("break", "a loop", span)),
                Ok(Flow::Continue(span)) => Some(Self::misplaced("continue", "a loop", span)),
                Ok(Flow::Return(_, span)) => Some(Self::misplaced("return", "a function", span)),
                Err(err) => Some(err),
            };
            if let Some(err) = misplaced {
                self.env.unwind_to_top();
                // The `with` guards restored grad mode on the way out; a REPL entry after
                // an error starts with it on in any case.
                std::mem::forget(crate::tensor::set_grad_enabled(true));
                return Err(err);
            }
        }
        Ok(last)
    }

    fn misplaced(statement: &'static str, place: &'static str, span: Span) -> Box<RuntimeError> {
        Box::new(RuntimeError::StatementNotAllowed {
            statement,
            place,
            span,
            calls: Vec::new(),
        })
    }

    /// Writes program output (`print`). A closed output is not the program's fault, so
    /// write errors are dropped.
    pub fn write_output(&mut self, text: &str) {
        let _ = self.out.write_all(text.as_bytes());
        let _ = self.out.flush();
    }

    /// E0506 if the interrupt flag is set, clearing it so the next entry can run.
    #[inline]
    pub fn check_interrupt(&mut self, span: Span) -> EvalResult<()> {
        if self.interrupt.load(Ordering::Relaxed) && self.interrupt.swap(false, Ordering::Relaxed) {
            return Err(Box::new(RuntimeError::Interrupted {
                span,
                calls: Vec::new(),
            }));
        }
        Ok(())
    }

    // ---- statements -------------------------------------------------------------------

    pub(crate) fn exec_stmts(&mut self, stmts: &[Stmt]) -> EvalResult<Flow> {
        for stmt in stmts {
            match self.exec_stmt(stmt)? {
                Flow::Normal => {}
                jump => return Ok(jump),
            }
        }
        Ok(Flow::Normal)
    }

    /// Runs a block in its own scope.
    fn exec_block(&mut self, stmts: &[Stmt]) -> EvalResult<Flow> {
        let mark = self.env.mark();
        self.env.push_scope();
        let flow = self.exec_stmts(stmts);
        self.env.reset_to(mark);
        flow
    }

    fn exec_stmt(&mut self, stmt: &Stmt) -> EvalResult<Flow> {
        match &stmt.node {
            StmtKind::Let {
                name,
                annotation,
                value,
            } => {
                let value_span = value.span;
                let value = self.eval(value)?;
                if let Some(shape) = annotation {
                    self.check_annotation(name, shape, &value, value_span)?;
                }
                if let Value::Layer(layer) = &value
                    && !self.passes.is_empty()
                {
                    self.name_layer(&name.name, layer);
                }
                self.env.declare(name.name.clone(), value);
            }
            StmtKind::Assign { target, op, value } => self.assign(target, *op, value)?,
            StmtKind::Expr(expr) => {
                self.eval(expr)?;
            }
            StmtKind::If {
                branches,
                otherwise,
            } => {
                for (cond, body) in branches {
                    if self.truthy(cond)? {
                        return self.exec_block(&body.node);
                    }
                }
                if let Some(body) = otherwise {
                    return self.exec_block(&body.node);
                }
            }
            StmtKind::For {
                var,
                iterable,
                body,
            } => return self.exec_for(var, iterable, &body.node),
            StmtKind::While { cond, body } => loop {
                self.check_interrupt(cond.span)?;
                if !self.truthy(cond)? {
                    break;
                }
                match self.exec_block(&body.node)? {
                    Flow::Break(_) => break,
                    Flow::Normal | Flow::Continue(_) => {}
                    ret @ Flow::Return(..) => return Ok(ret),
                }
            },
            StmtKind::Break => return Ok(Flow::Break(stmt.span)),
            StmtKind::Continue => return Ok(Flow::Continue(stmt.span)),
            StmtKind::Return(value) => {
                let value = match value {
                    Some(expr) => self.eval(expr)?,
                    None => Value::None,
                };
                return Ok(Flow::Return(value, stmt.span));
            }
            StmtKind::With { mode, body } => {
                // The guard restores the previous mode however the block ends.
                let _guard = crate::tensor::set_grad_enabled(
                    mode.node == crate::syntax::ast::GradMode::EnableGrad,
                );
                return self.exec_block(&body.node);
            }
            StmtKind::Assert { cond, message } => {
                if !self.truthy(cond)? {
                    let message = match message {
                        Some(expr) => self.eval(expr)?.to_string(),
                        None => "the condition is false".to_string(),
                    };
                    return Err(Box::new(RuntimeError::AssertionFailed {
                        message,
                        span: cond.span,
                        calls: Vec::new(),
                    }));
                }
            }
            StmtKind::Fn(def) => {
                self.env
                    .declare(def.name.name.clone(), Value::Function(def.clone()));
            }
            StmtKind::Net(def) => {
                self.env
                    .declare(def.name.name.clone(), Value::Net(def.clone()));
            }
            // A pass binds the inputs before the body runs (`net::run_pass`).
            StmtKind::Input { .. } if self.input_allowed() => {}
            StmtKind::Input { .. } => return Err(Self::misplaced("input", "a net", stmt.span)),
        }
        Ok(Flow::Normal)
    }

    fn exec_for(&mut self, var: &Ident, iterable: &Expr, body: &[Stmt]) -> EvalResult<Flow> {
        let seq = self.eval(iterable)?;
        let mark = self.env.mark();
        self.env.push_scope();
        self.env.push(var.name.clone(), Value::None);
        let result = match &seq {
            Value::Range { start, end } => {
                self.for_each(iterable.span, body, (*start..*end).map(Value::Int))
            }
            Value::List(items) => self.for_each(iterable.span, body, items.iter().cloned()),
            Value::Str(s) => self.for_each(
                iterable.span,
                body,
                s.chars().map(|c| Value::str(c.encode_utf8(&mut [0; 4]))),
            ),
            Value::Tensor(t) => match self.tensor_rows(t, iterable.span) {
                Ok(rows) => self.for_each(iterable.span, body, rows.into_iter()),
                Err(e) => Err(e),
            },
            other => Err(Box::new(RuntimeError::wrong_type(
                "the sequence of `for`",
                "a range, list, str or tensor",
                other.type_name(),
                iterable.span,
            ))),
        };
        self.env.reset_to(mark);
        result
    }

    /// Runs the body once per item, reusing one scope whose first binding is the loop
    /// variable: no allocation per pass.
    fn for_each(
        &mut self,
        span: Span,
        body: &[Stmt],
        items: impl Iterator<Item = Value>,
    ) -> EvalResult<Flow> {
        for item in items {
            self.check_interrupt(span)?;
            self.env.clear_scope_after(1);
            if let Some(slot) = self.env.scope_slot(0) {
                *slot = item;
            }
            match self.exec_stmts(body)? {
                Flow::Break(_) => break,
                Flow::Normal | Flow::Continue(_) => {}
                ret @ Flow::Return(..) => return Ok(ret),
            }
        }
        Ok(Flow::Normal)
    }

    fn assign(&mut self, target: &Expr, op: Option<BinOp>, value: &Expr) -> EvalResult<()> {
        match &target.node {
            ExprKind::Name(ident) => {
                let rhs = self.eval(value)?;
                let new = match op {
                    None => rhs,
                    Some(op) => {
                        let Some(current) = self.env.get(&ident.name) else {
                            return Err(self.undeclared(ident));
                        };
                        let spans = BinSpans {
                            whole: target.span.merge(value.span),
                            rhs: value.span,
                        };
                        // Tensors update in place (`b += 1` is seen through `a`); numbers,
                        // strings and lists are values and are rebound.
                        if let Value::Tensor(t) = current {
                            let t = t.clone();
                            return self.tensor_in_place(op, &t, &rhs, spans);
                        }
                        if let Value::Tensor(_) = rhs {
                            let current = current.clone();
                            self.tensor_binary(op, &current, &rhs, spans)?
                        } else {
                            ops::binary(op, current, &rhs, spans)?
                        }
                    }
                };
                if self.env.assign(&ident.name, new) {
                    Ok(())
                } else {
                    Err(self.undeclared(ident))
                }
            }
            ExprKind::Index { object, indices } => {
                let object_value = self.eval(object)?;
                if let Value::Tensor(t) = &object_value {
                    return self.assign_tensor_index(t, indices, op, value, target.span);
                }
                Err(Self::not_assignable(&object_value, object.span))
            }
            ExprKind::Field { object, name } => {
                let object_value = self.eval(object)?;
                let current = match (&object_value, op) {
                    (Value::Tensor(_) | Value::Layer(_), Some(_)) => {
                        Some(self.field(&object_value, name)?)
                    }
                    _ => None,
                };
                if let Some(Value::Tensor(t)) = current {
                    // `layer.weight += x` and `t.grad *= 2` write in place.
                    let rhs = self.eval(value)?;
                    let spans = BinSpans {
                        whole: target.span.merge(value.span),
                        rhs: value.span,
                    };
                    return self.tensor_in_place(op.unwrap_or(BinOp::Add), &t, &rhs, spans);
                }
                match &object_value {
                    Value::Tensor(t) if op.is_none() => {
                        let rhs = self.eval(value)?;
                        self.assign_tensor_field(t, name, rhs, value.span)
                    }
                    Value::Layer(layer) if op.is_none() => {
                        let rhs = self.eval(value)?;
                        crate::builtins::layers::assign_field(layer, name, rhs, value.span)
                    }
                    _ => Err(Self::not_assignable(&object_value, object.span)),
                }
            }
            _ => Err(Box::new(RuntimeError::wrong_type(
                "assignment target",
                "a name, index or field",
                "an expression",
                target.span,
            ))),
        }
    }

    /// E0207 for writing through an index or field of a value that has none to write.
    fn not_assignable(object_value: &Value, object_span: Span) -> Box<RuntimeError> {
        let help = match object_value {
            Value::List(_) => {
                "lists are immutable: build a new one, e.g. `l = l[:i] + [x] + l[i+1:]`"
            }
            Value::Record(_) => "records are read-only",
            _ => "only tensor elements, tensor fields and layer parameters can be assigned",
        };
        Box::new(
            RuntimeError::wrong_type(
                "assignment target",
                "a tensor or layer",
                object_value.type_name(),
                object_span,
            )
            .with_help(help),
        )
    }

    fn undeclared(&self, ident: &Ident) -> Box<RuntimeError> {
        let help = match closest(&ident.name, self.env.visible_names()) {
            Some(near) => format!(
                "did you mean `{near}`? To declare a new name, use `let {} = ...`",
                ident.name
            ),
            None => format!("declare it first: `let {} = ...`", ident.name),
        };
        Box::new(RuntimeError::AssignToUndeclared {
            name: ident.name.to_string(),
            span: ident.span,
            help,
            calls: Vec::new(),
        })
    }

    // ---- expressions ------------------------------------------------------------------

    /// Truthiness of a condition. Tensors fail here unless they hold one element.
    fn truthy(&mut self, cond: &Expr) -> EvalResult<bool> {
        let value = self.eval(cond)?;
        self.truth(&value, cond.span)
    }

    /// Evaluates an expression.
    pub fn eval(&mut self, expr: &Expr) -> EvalResult<Value> {
        match &expr.node {
            ExprKind::Int(i) => Ok(Value::Int(*i)),
            ExprKind::Float(x) => Ok(Value::Float(*x)),
            ExprKind::Bool(b) => Ok(Value::Bool(*b)),
            ExprKind::Str(s) => Ok(Value::Str(s.clone())),
            ExprKind::None => Ok(Value::None),
            ExprKind::Name(ident) => self.lookup(ident),
            ExprKind::Underscore => Err(Box::new(RuntimeError::value_with_help(
                "`_` has no value here",
                expr.span,
                "not a call argument",
                "`_` stands for a size a layer infers from its input, like `Conv2d(_, 16, 3)`",
            ))),
            ExprKind::List(items) => {
                let mut values = Vec::with_capacity(items.len());
                for item in items {
                    values.push(self.eval(item)?);
                }
                Ok(Value::list(values))
            }
            ExprKind::Unary { op, operand } => {
                let value = self.eval(operand)?;
                match (op, &value) {
                    (UnaryOp::Neg, Value::Tensor(t)) => self.tensor_negate(t, expr.span),
                    (UnaryOp::Neg, _) => ops::negate(&value, expr.span),
                    (UnaryOp::Not, _) => Ok(Value::Bool(!self.truth(&value, operand.span)?)),
                }
            }
            ExprKind::Binary { op, lhs, rhs } => self.eval_binary(op.node, lhs, rhs, expr.span),
            ExprKind::Pipe { value, func } => {
                let arg = self.eval(value)?;
                let callee = self.eval(func)?;
                self.call_value(
                    &callee,
                    vec![CallArg::positional(arg, value.span)],
                    expr.span,
                )
            }
            ExprKind::Call { callee, args } => {
                if let ExprKind::Field { object, name } = &callee.node {
                    let object = self.eval(object)?;
                    let args = self.eval_args(args)?;
                    return self.call_method(&object, name, args, expr.span);
                }
                let callee_value = self.eval(callee)?;
                let arg_values = self.eval_args(args)?;
                self.call_value(&callee_value, arg_values, expr.span)
                    .map_err(|err| refine_ragged(err, args))
            }
            ExprKind::Field { object, name } => {
                let object = self.eval(object)?;
                self.field(&object, name)
            }
            ExprKind::Index { object, indices } => {
                let value = self.eval(object)?;
                if let Value::Tensor(t) = &value {
                    return self.index_tensor(t, indices, expr.span);
                }
                if let Value::Infer = value {
                    return Err(Box::new(RuntimeError::value(
                        "`_` cannot be indexed",
                        object.span,
                        "this is `_`",
                    )));
                }
                let [item] = indices.as_slice() else {
                    return Err(Box::new(
                        RuntimeError::wrong_type(
                            "multi-dimensional index",
                            "a tensor",
                            value.type_name(),
                            object.span,
                        )
                        .with_help(format!(
                            "a {} takes one index; for nested lists index twice: `x[i][j]`",
                            value.type_name()
                        )),
                    ));
                };
                let index = self.eval_index(item)?;
                ops::index(&value, index, item, object.span)
            }
        }
    }

    fn eval_binary(&mut self, op: BinOp, lhs: &Expr, rhs: &Expr, span: Span) -> EvalResult<Value> {
        match op {
            BinOp::And => Ok(Value::Bool(self.truthy(lhs)? && self.truthy(rhs)?)),
            BinOp::Or => Ok(Value::Bool(self.truthy(lhs)? || self.truthy(rhs)?)),
            BinOp::Range => {
                let start = self.eval(lhs)?;
                let end = self.eval(rhs)?;
                match (&start, &end) {
                    (Value::Int(start), Value::Int(end)) => Ok(Value::Range {
                        start: *start,
                        end: *end,
                    }),
                    _ => {
                        let (bad, bad_span) = if matches!(start, Value::Int(_)) {
                            (&end, rhs.span)
                        } else {
                            (&start, lhs.span)
                        };
                        Err(Box::new(RuntimeError::wrong_type(
                            "a bound of `..`",
                            "int",
                            bad.type_name(),
                            bad_span,
                        )))
                    }
                }
            }
            _ => {
                let left = self.eval(lhs)?;
                let right = self.eval(rhs)?;
                // The common int cases skip the general dispatch: loops are mostly this.
                if let (Value::Int(a), Value::Int(b)) = (&left, &right) {
                    let (a, b) = (*a, *b);
                    let fast = match op {
                        BinOp::Add => a.checked_add(b).map(Value::Int),
                        BinOp::Sub => a.checked_sub(b).map(Value::Int),
                        BinOp::Mul => a.checked_mul(b).map(Value::Int),
                        BinOp::Mod if b > 0 => Some(Value::Int(a.rem_euclid(b))),
                        BinOp::Lt => Some(Value::Bool(a < b)),
                        BinOp::Le => Some(Value::Bool(a <= b)),
                        BinOp::Gt => Some(Value::Bool(a > b)),
                        BinOp::Ge => Some(Value::Bool(a >= b)),
                        BinOp::Eq => Some(Value::Bool(a == b)),
                        BinOp::Ne => Some(Value::Bool(a != b)),
                        _ => None,
                    };
                    if let Some(value) = fast {
                        return Ok(value);
                    }
                }
                if matches!(left, Value::Tensor(_)) || matches!(right, Value::Tensor(_)) {
                    let spans = BinSpans {
                        whole: span,
                        rhs: rhs.span,
                    };
                    return self.tensor_binary(op, &left, &right, spans);
                }
                ops::binary(
                    op,
                    &left,
                    &right,
                    BinSpans {
                        whole: span,
                        rhs: rhs.span,
                    },
                )
            }
        }
    }

    fn eval_index(&mut self, item: &IndexItem) -> EvalResult<IndexValue> {
        let int = |this: &mut Self, e: &Option<Expr>| -> EvalResult<Option<i64>> {
            match e {
                None => Ok(None),
                Some(e) => match this.eval(e)? {
                    Value::Int(i) => Ok(Some(i)),
                    Value::None => Ok(None),
                    other => Err(Box::new(RuntimeError::wrong_type(
                        "index",
                        "int",
                        other.type_name(),
                        e.span,
                    ))),
                },
            }
        };
        match &item.node {
            IndexKind::At(e) => match self.eval(e)? {
                Value::Int(i) => Ok(IndexValue::At(i)),
                other => Err(Box::new(RuntimeError::wrong_type(
                    "index",
                    "int or slice",
                    other.type_name(),
                    e.span,
                ))),
            },
            IndexKind::Slice { start, stop, step } => {
                let start = int(self, start)?;
                let stop = int(self, stop)?;
                let step = int(self, step)?;
                Ok(IndexValue::Slice(start, stop, step))
            }
        }
    }

    fn lookup(&self, ident: &Ident) -> EvalResult<Value> {
        if let Some(value) = self.env.get(&ident.name) {
            return Ok(value.clone());
        }
        if let Some(def) = builtins::lookup(&ident.name) {
            return Ok(Value::Builtin(def));
        }
        Err(self.undefined(ident))
    }

    /// E0201 for `ident`, kept out of line so the lookup fast path stays small.
    #[cold]
    #[inline(never)]
    fn undefined(&self, ident: &Ident) -> Box<RuntimeError> {
        let candidates = self
            .env
            .visible_names()
            .chain(builtins::BUILTINS.iter().map(|b| b.name));
        let help = match closest(&ident.name, candidates) {
            Some(near) => format!("did you mean `{near}`?"),
            None => format!("declare it before use: `let {} = ...`", ident.name),
        };
        Box::new(RuntimeError::UndefinedName {
            name: ident.name.to_string(),
            span: ident.span,
            help,
            calls: Vec::new(),
        })
    }

    /// `object.name` as a value.
    fn field(&mut self, object: &Value, name: &Ident) -> EvalResult<Value> {
        match object {
            Value::Tensor(t) => self.tensor_field(t, name),
            Value::Layer(layer) => layer.field(&name.name).ok_or_else(|| {
                self.no_member_of(
                    "layer",
                    name,
                    crate::builtins::layers::Layer::FIELDS,
                    crate::builtins::methods::LAYER_METHODS,
                )
            }),
            Value::Record(record) => record.get(&name.name).cloned().ok_or_else(|| {
                let fields = record.fields.iter().map(|(n, _)| *n);
                let help = match closest(&name.name, fields) {
                    Some(near) => format!("did you mean `{near}`?"),
                    None => {
                        let all: Vec<_> = record.fields.iter().map(|(n, _)| *n).collect();
                        format!("its fields are {}", all.join(", "))
                    }
                };
                Box::new(RuntimeError::NoSuchField {
                    type_name: format!("record `{}`", record.type_name),
                    name: name.name.to_string(),
                    span: name.span,
                    help,
                    calls: Vec::new(),
                })
            }),
            // Tensor and layer fields (`shape`, `weight`, ...) resolve here.
            other => Err(Self::no_member(other, name)),
        }
    }

    fn no_member(object: &Value, name: &Ident) -> Box<RuntimeError> {
        let help = tensor::memberless_help(object.type_name());
        Box::new(RuntimeError::NoSuchField {
            type_name: object.type_name().to_string(),
            name: name.name.to_string(),
            span: name.span,
            help,
            calls: Vec::new(),
        })
    }

    /// `object.name(args)`: a callable record field, or (later) a tensor or layer method.
    fn call_method(
        &mut self,
        object: &Value,
        name: &Ident,
        args: Vec<CallArg>,
        span: Span,
    ) -> EvalResult<Value> {
        match object {
            Value::Record(_) => {
                let callee = self.field(object, name)?;
                self.call_value(&callee, args, span)
            }
            Value::Tensor(_) => self.call_member(&tensor::TENSOR_MEMBERS, object, name, args, span),
            Value::Layer(_) => self.call_member(&tensor::LAYER_MEMBERS, object, name, args, span),
            Value::Optimizer(_) => {
                self.call_member(&tensor::OPTIMIZER_MEMBERS, object, name, args, span)
            }
            other => Err(Self::no_member(other, name)),
        }
    }
}

/// Points a ragged-literal error (E0310) at the row that differs, when the call's data
/// argument is written as a list literal: the builtin knows the path to the row, only the
/// syntax tree knows where it is.
fn refine_ragged(
    mut err: Box<RuntimeError>,
    args: &[crate::syntax::ast::Arg],
) -> Box<RuntimeError> {
    let find = |path: &[usize]| {
        let mut node = &args.first()?.value;
        for &i in path {
            match &node.node {
                ExprKind::List(items) if i < items.len() => node = &items[i],
                _ => return None,
            }
        }
        Some(node.span)
    };
    if let RuntimeError::Tensor(diag) = &mut *err
        && let Some(ragged) = diag.ragged.take()
        && let (Some(row), Some(first)) = (find(&ragged.path), find(&ragged.first_path))
    {
        diag.span = row;
        diag.related.push((first, ragged.first_label));
    }
    err
}
