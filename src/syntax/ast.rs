//! The abstract syntax tree. Every node carries the [`Span`] of the text it came from; a
//! parent's span is the merge of its children's.

use std::rc::Rc;

use crate::source::{Span, Spanned};

/// A whole script (or one REPL entry): its statements in order.
#[derive(Clone, Debug, PartialEq)]
pub struct Program {
    /// Top-level statements.
    pub stmts: Vec<Stmt>,
}

/// A name as written, with its span. Names are `Rc<str>` so the interpreter can clone them
/// cheaply into environments.
#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    /// The identifier text.
    pub name: Rc<str>,
    /// Where it was written.
    pub span: Span,
}

/// A `{ ... }` block; its span covers both braces.
pub type Block = Spanned<Vec<Stmt>>;

/// A statement.
pub type Stmt = Spanned<StmtKind>;

/// The kinds of statement (LANGUAGE.md §4).
#[derive(Clone, Debug, PartialEq)]
pub enum StmtKind {
    /// `let name = value` or `let name: [dims] = value`.
    Let {
        /// The name declared.
        name: Ident,
        /// The optional shape annotation `[N, 1, 28, 28]`.
        annotation: Option<ShapeSpec>,
        /// The initial value.
        value: Expr,
    },
    /// `target = value` (op `None`) or `target op= value` (`+= -= *= /=`). The target is a
    /// place: a [`ExprKind::Name`], [`ExprKind::Index`] or [`ExprKind::Field`].
    Assign {
        /// Where the value goes.
        target: Expr,
        /// `Some(Add)` for `+=` and so on; in place on tensors.
        op: Option<BinOp>,
        /// The right-hand side.
        value: Expr,
    },
    /// An expression evaluated for its effect (the REPL prints its value).
    Expr(Expr),
    /// `if c { } else if c { } else { }`: one branch per condition, in order.
    If {
        /// `(condition, body)` for the `if` and each `else if`.
        branches: Vec<(Expr, Block)>,
        /// The final `else` block.
        otherwise: Option<Block>,
    },
    /// `for var in iterable { body }`.
    For {
        /// The loop variable, scoped to the body.
        var: Ident,
        /// A range, a list or a tensor.
        iterable: Expr,
        /// The loop body.
        body: Block,
    },
    /// `while cond { body }`.
    While {
        /// Tested before each pass.
        cond: Expr,
        /// The loop body.
        body: Block,
    },
    /// `break`.
    Break,
    /// `continue`.
    Continue,
    /// `return` or `return value`.
    Return(Option<Expr>),
    /// `with no_grad { }` / `with enable_grad { }`.
    With {
        /// Which grad mode the block runs in.
        mode: Spanned<GradMode>,
        /// The block.
        body: Block,
    },
    /// `assert cond` or `assert cond, message`.
    Assert {
        /// Must be true.
        cond: Expr,
        /// Shown when it is not.
        message: Option<Expr>,
    },
    /// `fn name(params) { body }`.
    Fn(Rc<FnDef>),
    /// `net Name(params) { body }`.
    Net(Rc<NetDef>),
    /// `input x: [N, c, H, W]`, only inside a net body.
    Input {
        /// The input's name.
        name: Ident,
        /// Its declared shape.
        shape: ShapeSpec,
    },
}

/// The grad mode a `with` block selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GradMode {
    /// `with no_grad { }`: nothing is recorded.
    NoGrad,
    /// `with enable_grad { }`: recording is on again.
    EnableGrad,
}

/// A shape written in brackets: `[N, c, 2*H, _]`. Each dim is an expression: an int
/// literal, a net parameter, a symbol (any other name), `_`, or arithmetic of those.
pub type ShapeSpec = Spanned<Vec<Expr>>;

/// A function definition.
#[derive(Clone, Debug, PartialEq)]
pub struct FnDef {
    /// The function's name.
    pub name: Ident,
    /// Parameters in order; defaults may only follow parameters without one.
    pub params: Vec<Param>,
    /// The body.
    pub body: Block,
    /// The whole definition, `fn` to `}`.
    pub span: Span,
}

/// A net definition: a layer-graph template with typed inputs (LANGUAGE.md §8).
#[derive(Clone, Debug, PartialEq)]
pub struct NetDef {
    /// The net's name.
    pub name: Ident,
    /// Build-time parameters (`net SRCNN(c=1, scale=2)`); empty for `net Shared { }`.
    pub params: Vec<Param>,
    /// The body, including its `input` statements.
    pub body: Block,
    /// The whole definition, `net` to `}`.
    pub span: Span,
}

/// A parameter of a `fn` or `net`, with an optional default value.
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    /// The parameter's name.
    pub name: Ident,
    /// The default, evaluated at each call that omits the argument.
    pub default: Option<Expr>,
}

/// An expression.
pub type Expr = Spanned<ExprKind>;

/// The kinds of expression (LANGUAGE.md §5).
#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// `42`.
    Int(i64),
    /// `1.5`, `1e-3`, `3.`.
    Float(f64),
    /// `true`, `false`.
    Bool(bool),
    /// `"text"`, escapes already decoded.
    Str(Rc<str>),
    /// `none`.
    None,
    /// A variable reference.
    Name(Ident),
    /// `_`: "infer this from the input" (layer arguments, shape dims).
    Underscore,
    /// `[a, b, c]`.
    List(Vec<Expr>),
    /// `-x`, `not x`.
    Unary {
        /// Which operator.
        op: UnaryOp,
        /// Its operand.
        operand: Box<Expr>,
    },
    /// `lhs op rhs`, including `and`, `or`, comparisons and `..`.
    Binary {
        /// Which operator, with its span.
        op: Spanned<BinOp>,
        /// Left operand.
        lhs: Box<Expr>,
        /// Right operand.
        rhs: Box<Expr>,
    },
    /// `value |> func`: calls `func(value)`.
    Pipe {
        /// The value passed along.
        value: Box<Expr>,
        /// What it is passed into.
        func: Box<Expr>,
    },
    /// `callee(args)`; a method call is a call whose callee is a [`ExprKind::Field`].
    Call {
        /// What is called.
        callee: Box<Expr>,
        /// Positional arguments first, then keyword arguments.
        args: Vec<Arg>,
    },
    /// `object.name`.
    Field {
        /// The value whose field is read.
        object: Box<Expr>,
        /// The field's name.
        name: Ident,
    },
    /// `object[i, a:b:c, ...]`.
    Index {
        /// The indexed value.
        object: Box<Expr>,
        /// One entry per indexed dimension.
        indices: Vec<IndexItem>,
    },
}

/// One call argument: positional (`name` is `None`) or keyword (`name=value`).
#[derive(Clone, Debug, PartialEq)]
pub struct Arg {
    /// The keyword, for `name=value`.
    pub name: Option<Ident>,
    /// The value.
    pub value: Expr,
    /// The whole argument, keyword included.
    pub span: Span,
}

/// One entry of an index expression.
pub type IndexItem = Spanned<IndexKind>;

/// An integer index or a slice.
#[derive(Clone, Debug, PartialEq)]
pub enum IndexKind {
    /// `x[i]`: drops the dimension.
    At(Expr),
    /// `x[a:b:c]`, any part optional: keeps the dimension.
    Slice {
        /// First index taken (default 0).
        start: Option<Expr>,
        /// One past the last (default the size).
        stop: Option<Expr>,
        /// Step (default 1).
        step: Option<Expr>,
    },
}

/// Prefix operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryOp {
    /// `-x`.
    Neg,
    /// `not x`.
    Not,
}

/// Binary operators, including the logical ones and the range `..`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `//`
    FloorDiv,
    /// `%`
    Mod,
    /// `@`
    MatMul,
    /// `**`
    Pow,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `and`
    And,
    /// `or`
    Or,
    /// `..`
    Range,
}

impl BinOp {
    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::FloorDiv => "//",
            BinOp::Mod => "%",
            BinOp::MatMul => "@",
            BinOp::Pow => "**",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::And => "and",
            BinOp::Or => "or",
            BinOp::Range => "..",
        }
    }
}

impl UnaryOp {
    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            UnaryOp::Neg => "-",
            UnaryOp::Not => "not",
        }
    }
}

impl Program {
    /// Moves every span `by` bytes later: a REPL entry parsed on its own is placed where it
    /// sits in the session's text, so the spans of different entries never collide.
    pub fn shift_spans(&mut self, by: u32) {
        if by != 0 {
            let shift = Shift(by);
            self.stmts.iter_mut().for_each(|s| shift.stmt(s));
        }
    }
}

/// Adds its offset to every span it walks over.
struct Shift(u32);

impl Shift {
    fn span(&self, span: &mut Span) {
        span.start += self.0;
        span.end += self.0;
    }

    fn ident(&self, ident: &mut Ident) {
        self.span(&mut ident.span);
    }

    fn block(&self, block: &mut Block) {
        self.span(&mut block.span);
        block.node.iter_mut().for_each(|s| self.stmt(s));
    }

    fn params(&self, params: &mut [Param]) {
        for p in params {
            self.ident(&mut p.name);
            if let Some(d) = &mut p.default {
                self.expr(d);
            }
        }
    }

    fn shape(&self, shape: &mut ShapeSpec) {
        self.span(&mut shape.span);
        shape.node.iter_mut().for_each(|e| self.expr(e));
    }

    fn stmt(&self, stmt: &mut Stmt) {
        self.span(&mut stmt.span);
        match &mut stmt.node {
            StmtKind::Let {
                name,
                annotation,
                value,
            } => {
                self.ident(name);
                if let Some(a) = annotation {
                    self.shape(a);
                }
                self.expr(value);
            }
            StmtKind::Assign { target, value, .. } => {
                self.expr(target);
                self.expr(value);
            }
            StmtKind::Expr(e) | StmtKind::Return(Some(e)) => self.expr(e),
            StmtKind::If {
                branches,
                otherwise,
            } => {
                for (cond, body) in branches {
                    self.expr(cond);
                    self.block(body);
                }
                if let Some(b) = otherwise {
                    self.block(b);
                }
            }
            StmtKind::For {
                var,
                iterable,
                body,
            } => {
                self.ident(var);
                self.expr(iterable);
                self.block(body);
            }
            StmtKind::While { cond, body } => {
                self.expr(cond);
                self.block(body);
            }
            StmtKind::Break | StmtKind::Continue | StmtKind::Return(None) => {}
            StmtKind::With { mode, body } => {
                self.span(&mut mode.span);
                self.block(body);
            }
            StmtKind::Assert { cond, message } => {
                self.expr(cond);
                if let Some(m) = message {
                    self.expr(m);
                }
            }
            StmtKind::Fn(def) => {
                let def = Rc::make_mut(def);
                self.span(&mut def.span);
                self.ident(&mut def.name);
                self.params(&mut def.params);
                self.block(&mut def.body);
            }
            StmtKind::Net(def) => {
                let def = Rc::make_mut(def);
                self.span(&mut def.span);
                self.ident(&mut def.name);
                self.params(&mut def.params);
                self.block(&mut def.body);
            }
            StmtKind::Input { name, shape } => {
                self.ident(name);
                self.shape(shape);
            }
        }
    }

    fn expr(&self, expr: &mut Expr) {
        self.span(&mut expr.span);
        match &mut expr.node {
            ExprKind::Int(_)
            | ExprKind::Float(_)
            | ExprKind::Bool(_)
            | ExprKind::Str(_)
            | ExprKind::None
            | ExprKind::Underscore => {}
            ExprKind::Name(id) => self.ident(id),
            ExprKind::List(items) => items.iter_mut().for_each(|e| self.expr(e)),
            ExprKind::Unary { operand, .. } => self.expr(operand),
            ExprKind::Binary { op, lhs, rhs } => {
                self.span(&mut op.span);
                self.expr(lhs);
                self.expr(rhs);
            }
            ExprKind::Pipe { value, func } => {
                self.expr(value);
                self.expr(func);
            }
            ExprKind::Call { callee, args } => {
                self.expr(callee);
                for a in args {
                    self.span(&mut a.span);
                    if let Some(n) = &mut a.name {
                        self.ident(n);
                    }
                    self.expr(&mut a.value);
                }
            }
            ExprKind::Field { object, name } => {
                self.expr(object);
                self.ident(name);
            }
            ExprKind::Index { object, indices } => {
                self.expr(object);
                for item in indices {
                    self.span(&mut item.span);
                    match &mut item.node {
                        IndexKind::At(e) => self.expr(e),
                        IndexKind::Slice { start, stop, step } => {
                            for e in [start, stop, step].into_iter().flatten() {
                                self.expr(e);
                            }
                        }
                    }
                }
            }
        }
    }
}
