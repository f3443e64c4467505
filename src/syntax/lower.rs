//! pest pairs to AST nodes.
//!
//! The grammar leaves operator precedence to this module: an `expr` pair is a flat run of
//! prefix operators, operands and infix operators, folded by one Pratt parser ([`PRATT`]).
//! Postfix calls, fields and indexing are a chain in the grammar, folded here in a loop.
//!
//! Lowering also checks what the grammar cannot express (assignment targets, parameter
//! defaults, where `input`, `return`, `break` and `continue` may appear, literal values)
//! and collects every such problem instead of stopping at the first.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::LazyLock;

use pest::iterators::Pair;
use pest::pratt_parser::{Assoc, Op, PrattParser};
use pest_derive::Parser;

use crate::source::{Span, Spanned};
use crate::syntax::ast::{
    Arg, BinOp, Block, Expr, ExprKind, FnDef, GradMode, Ident, IndexItem, IndexKind, NetDef, Param,
    Program, ShapeSpec, Stmt, StmtKind, UnaryOp,
};
use crate::syntax::error::SyntaxError;

/// The pest parser generated from `grammar/cnn.pest`.
#[derive(Parser)]
#[grammar = "../grammar/cnn.pest"]
pub struct CnnParser;

/// Operator precedence, lowest first (LANGUAGE.md §5). Postfix operators are not here: the
/// grammar already binds them tightest.
static PRATT: LazyLock<PrattParser<Rule>> = LazyLock::new(|| {
    PrattParser::new()
        .op(Op::infix(Rule::pipe, Assoc::Left))
        .op(Op::infix(Rule::or_op, Assoc::Left))
        .op(Op::infix(Rule::and_op, Assoc::Left))
        .op(Op::prefix(Rule::not_op))
        // Comparisons and `..` are non-associative: parsed as left-associative, and a
        // chain is refused in `infix`.
        .op(Op::infix(Rule::eq, Assoc::Left)
            | Op::infix(Rule::ne, Assoc::Left)
            | Op::infix(Rule::lt, Assoc::Left)
            | Op::infix(Rule::le, Assoc::Left)
            | Op::infix(Rule::gt, Assoc::Left)
            | Op::infix(Rule::ge, Assoc::Left))
        .op(Op::infix(Rule::range, Assoc::Left))
        .op(Op::infix(Rule::add, Assoc::Left) | Op::infix(Rule::sub, Assoc::Left))
        .op(Op::infix(Rule::mul, Assoc::Left)
            | Op::infix(Rule::div, Assoc::Left)
            | Op::infix(Rule::floor_div, Assoc::Left)
            | Op::infix(Rule::modulo, Assoc::Left)
            | Op::infix(Rule::matmul, Assoc::Left))
        .op(Op::prefix(Rule::neg))
        .op(Op::infix(Rule::pow, Assoc::Right))
});

/// Lower a parsed `program` pair.
pub fn lower_program(pair: Pair<'_, Rule>) -> Result<Program, Vec<SyntaxError>> {
    let lowerer = Lowerer::default();
    let stmts = lowerer.stmts(pair.into_inner(), Context::TOP);
    lowerer.finish(Program { stmts })
}

/// Lower a parsed `expr_input` pair (a lone expression).
pub fn lower_expr_input(pair: Pair<'_, Rule>) -> Result<Expr, Vec<SyntaxError>> {
    let lowerer = Lowerer::default();
    let expr = pair
        .into_inner()
        .find(|p| p.as_rule() == Rule::expr)
        .map(|p| lowerer.expr(p))
        .unwrap_or_else(|| Spanned::new(ExprKind::None, Span::default()));
    lowerer.finish(expr)
}

/// Where a statement stands, for the E0104 checks.
#[derive(Clone, Copy, Debug)]
struct Context {
    /// Inside a `fn` or `net` body: `return` is allowed.
    in_fn: bool,
    /// Inside a loop body, not counting loops outside the enclosing `fn` or `net`.
    in_loop: bool,
    /// Directly in a net body, not nested in a block: `input` is allowed.
    net_top: bool,
}

impl Context {
    const TOP: Context = Context {
        in_fn: false,
        in_loop: false,
        net_top: false,
    };

    /// A nested block (`if`, `with`, loop body) is no longer the top of a net body.
    fn nested(self) -> Context {
        Context {
            net_top: false,
            ..self
        }
    }
}

/// An operand during Pratt folding, remembering whether it was written in parentheses so
/// `(a < b) < c` is allowed where `a < b < c` is not.
struct Operand {
    expr: Expr,
    grouped: bool,
}

#[derive(Default)]
struct Lowerer {
    // A RefCell because the Pratt parser's closures all need to report errors.
    errors: RefCell<Vec<SyntaxError>>,
}

impl Lowerer {
    fn finish<T>(self, value: T) -> Result<T, Vec<SyntaxError>> {
        let mut errors = self.errors.into_inner();
        if errors.is_empty() {
            Ok(value)
        } else {
            errors.sort_by_key(|e| e.span().start);
            Err(errors)
        }
    }

    fn report(&self, error: SyntaxError) {
        self.errors.borrow_mut().push(error);
    }

    // ---------------------------------------------------------------------------------
    // Statements

    fn stmts<'i>(&self, pairs: impl Iterator<Item = Pair<'i, Rule>>, ctx: Context) -> Vec<Stmt> {
        pairs
            .filter(|p| p.as_rule() != Rule::EOI)
            .map(|p| self.stmt(p, ctx))
            .collect()
    }

    fn block(&self, pair: Pair<'_, Rule>, ctx: Context) -> Block {
        let span = span_of(&pair);
        Spanned::new(self.stmts(pair.into_inner(), ctx), span)
    }

    fn stmt(&self, pair: Pair<'_, Rule>, ctx: Context) -> Stmt {
        let span = span_of(&pair);
        let rule = pair.as_rule();
        let mut inner = pair.into_inner();
        let kind = match rule {
            Rule::let_stmt => {
                inner.next(); // `let`
                let name = ident(next(&mut inner));
                let mut part = next(&mut inner);
                let annotation = if part.as_rule() == Rule::shape {
                    let shape = self.shape(part);
                    part = next(&mut inner);
                    Some(shape)
                } else {
                    None
                };
                StmtKind::Let {
                    name,
                    annotation,
                    value: self.expr(part),
                }
            }
            Rule::input_stmt => {
                if !ctx.net_top {
                    self.report(SyntaxError::NotAllowed {
                        statement: "input".into(),
                        place: if ctx.in_fn || ctx.in_loop {
                            "nested in a block".into()
                        } else {
                            "outside a net body".into()
                        },
                        span: span.into(),
                        help: Some("declare inputs at the top level of a `net` body".into()),
                    });
                }
                inner.next(); // `input`
                StmtKind::Input {
                    name: ident(next(&mut inner)),
                    shape: self.shape(next(&mut inner)),
                }
            }
            Rule::return_stmt => {
                if !ctx.in_fn {
                    self.report(SyntaxError::NotAllowed {
                        statement: "return".into(),
                        place: "outside a fn or net".into(),
                        span: span.into(),
                        help: None,
                    });
                }
                inner.next(); // `return`
                StmtKind::Return(inner.next().map(|p| self.expr(p)))
            }
            Rule::break_stmt | Rule::continue_stmt => {
                let (keyword, kind) = if rule == Rule::break_stmt {
                    ("break", StmtKind::Break)
                } else {
                    ("continue", StmtKind::Continue)
                };
                if !ctx.in_loop {
                    self.report(SyntaxError::NotAllowed {
                        statement: keyword.into(),
                        place: "outside a loop".into(),
                        span: span.into(),
                        help: None,
                    });
                }
                kind
            }
            Rule::assert_stmt => {
                inner.next(); // `assert`
                StmtKind::Assert {
                    cond: self.expr(next(&mut inner)),
                    message: inner.next().map(|p| self.expr(p)),
                }
            }
            Rule::expr_stmt => {
                let target = self.expr(next(&mut inner));
                match inner.next() {
                    None => StmtKind::Expr(target),
                    Some(op) => {
                        self.check_place(&target);
                        StmtKind::Assign {
                            target,
                            op: assign_op(&op),
                            value: self.expr(next(&mut inner)),
                        }
                    }
                }
            }
            Rule::if_stmt => self.if_stmt(inner, ctx),
            Rule::for_stmt => {
                inner.next(); // `for`
                let var = ident(next(&mut inner));
                inner.next(); // `in`
                let iterable = self.expr(next(&mut inner));
                let body = self.block(next(&mut inner), Context::in_loop(ctx));
                StmtKind::For {
                    var,
                    iterable,
                    body,
                }
            }
            Rule::while_stmt => {
                inner.next(); // `while`
                let cond = self.expr(next(&mut inner));
                let body = self.block(next(&mut inner), Context::in_loop(ctx));
                StmtKind::While { cond, body }
            }
            Rule::with_stmt => {
                inner.next(); // `with`
                let mode_name = ident(next(&mut inner));
                let mode = match &*mode_name.name {
                    "no_grad" => GradMode::NoGrad,
                    "enable_grad" => GradMode::EnableGrad,
                    other => {
                        self.report(SyntaxError::unexpected(
                            format!("expected `no_grad` or `enable_grad`, found `{other}`"),
                            mode_name.span,
                            "not a grad mode",
                            Some(
                                "write `with no_grad { ... }` or `with enable_grad { ... }`".into(),
                            ),
                        ));
                        GradMode::NoGrad
                    }
                };
                StmtKind::With {
                    mode: Spanned::new(mode, mode_name.span),
                    body: self.block(next(&mut inner), ctx.nested()),
                }
            }
            Rule::fn_def => {
                inner.next(); // `fn`
                let name = ident(next(&mut inner));
                let params = self.params(next(&mut inner));
                let body_ctx = Context {
                    in_fn: true,
                    in_loop: false,
                    net_top: false,
                };
                let body = self.block(next(&mut inner), body_ctx);
                StmtKind::Fn(Rc::new(FnDef {
                    name,
                    params,
                    body,
                    span,
                }))
            }
            Rule::net_def => {
                inner.next(); // `net`
                let name = ident(next(&mut inner));
                let mut part = next(&mut inner);
                let params = if part.as_rule() == Rule::params {
                    let params = self.params(part);
                    part = next(&mut inner);
                    params
                } else {
                    Vec::new()
                };
                let body_ctx = Context {
                    in_fn: true,
                    in_loop: false,
                    net_top: true,
                };
                let body = self.block(part, body_ctx);
                StmtKind::Net(Rc::new(NetDef {
                    name,
                    params,
                    body,
                    span,
                }))
            }
            other => unreachable!("the grammar has no statement {other:?}"),
        };
        Spanned::new(kind, span)
    }

    fn if_stmt<'i>(
        &self,
        mut inner: impl Iterator<Item = Pair<'i, Rule>>,
        ctx: Context,
    ) -> StmtKind {
        inner.next(); // `if`
        let cond = self.expr(next(&mut inner));
        let body = self.block(next(&mut inner), ctx.nested());
        let mut branches = vec![(cond, body)];
        let mut otherwise = None;
        for clause in inner {
            let rule = clause.as_rule();
            let mut parts = clause
                .into_inner()
                .filter(|p| !matches!(p.as_rule(), Rule::kw_else | Rule::kw_if));
            if rule == Rule::else_if {
                let cond = self.expr(next(&mut parts));
                let body = self.block(next(&mut parts), ctx.nested());
                branches.push((cond, body));
            } else {
                otherwise = Some(self.block(next(&mut parts), ctx.nested()));
            }
        }
        StmtKind::If {
            branches,
            otherwise,
        }
    }

    fn params(&self, pair: Pair<'_, Rule>) -> Vec<Param> {
        let mut params = Vec::new();
        let mut first_default: Option<Ident> = None;
        for param in pair.into_inner() {
            let mut parts = param.into_inner();
            let name = ident(next(&mut parts));
            let default = parts.next().map(|p| self.expr(p));
            match (&default, &first_default) {
                (Some(_), None) => first_default = Some(name.clone()),
                (None, Some(earlier)) => self.report(SyntaxError::unexpected(
                    format!(
                        "parameter `{}` has no default but follows `{}`, which has one",
                        name.name, earlier.name
                    ),
                    name.span,
                    "needs a default value",
                    Some(format!(
                        "give `{}` a default, or move it before `{}`",
                        name.name, earlier.name
                    )),
                )),
                _ => {}
            }
            params.push(Param { name, default });
        }
        params
    }

    fn shape(&self, pair: Pair<'_, Rule>) -> ShapeSpec {
        let span = span_of(&pair);
        Spanned::new(pair.into_inner().map(|p| self.expr(p)).collect(), span)
    }

    /// Assignment targets must be places: a name, an index or a field.
    fn check_place(&self, target: &Expr) {
        if matches!(
            target.node,
            ExprKind::Name(_) | ExprKind::Index { .. } | ExprKind::Field { .. }
        ) {
            return;
        }
        let help = if matches!(target.node, ExprKind::Call { .. }) {
            "a call's result cannot be assigned to; bind it with `let`"
        } else {
            "assign to a name, an element `x[i]` or a field `layer.weight`"
        };
        self.report(SyntaxError::unexpected(
            "invalid assignment target",
            target.span,
            "cannot assign to this",
            Some(help.into()),
        ));
    }

    // ---------------------------------------------------------------------------------
    // Expressions

    fn expr(&self, pair: Pair<'_, Rule>) -> Expr {
        PRATT
            .map_primary(|primary| self.postfix_expr(primary))
            .map_prefix(|op, operand| {
                let op_span = span_of(&op);
                let op = if op.as_rule() == Rule::neg {
                    UnaryOp::Neg
                } else {
                    UnaryOp::Not
                };
                let span = op_span.merge(operand.expr.span);
                Operand {
                    expr: Spanned::new(
                        ExprKind::Unary {
                            op,
                            operand: Box::new(operand.expr),
                        },
                        span,
                    ),
                    grouped: false,
                }
            })
            .map_infix(|lhs, op, rhs| self.infix(lhs, op, rhs))
            .parse(pair.into_inner())
            .expr
    }

    fn infix(&self, lhs: Operand, op: Pair<'_, Rule>, rhs: Operand) -> Operand {
        let op_span = span_of(&op);
        let span = lhs.expr.span.merge(rhs.expr.span);
        let Some(bin_op) = bin_op(op.as_rule()) else {
            // `|>`: the only infix operator that is not a BinOp.
            return Operand {
                expr: Spanned::new(
                    ExprKind::Pipe {
                        value: Box::new(lhs.expr),
                        func: Box::new(rhs.expr),
                    },
                    span,
                ),
                grouped: false,
            };
        };
        if let ExprKind::Binary { op: first, .. } = &lhs.expr.node
            && !lhs.grouped
        {
            let chained = (is_comparison(first.node) && is_comparison(bin_op))
                || (first.node == BinOp::Range && bin_op == BinOp::Range);
            if chained {
                let help = if bin_op == BinOp::Range {
                    "a range is not a bound of another range; use parentheses if this is meant"
                        .to_string()
                } else {
                    format!(
                        "comparisons do not chain; write `a {} b and b {} c`",
                        first.node.symbol(),
                        bin_op.symbol()
                    )
                };
                self.report(SyntaxError::unexpected(
                    format!(
                        "`{}` cannot follow `{}` without parentheses",
                        bin_op.symbol(),
                        first.node.symbol()
                    ),
                    op_span,
                    "second non-associative operator",
                    Some(help),
                ));
            }
        }
        Operand {
            expr: Spanned::new(
                ExprKind::Binary {
                    op: Spanned::new(bin_op, op_span),
                    lhs: Box::new(lhs.expr),
                    rhs: Box::new(rhs.expr),
                },
                span,
            ),
            grouped: false,
        }
    }

    /// An operand and its chain of calls, fields and indexing, folded left to right.
    fn postfix_expr(&self, pair: Pair<'_, Rule>) -> Operand {
        let mut inner = pair.into_inner();
        let mut operand = self.primary(next(&mut inner));
        for postfix in inner {
            let end = span_of(&postfix);
            let object = Box::new(operand.expr);
            let span = object.span.merge(end);
            let kind = match postfix.as_rule() {
                Rule::call => ExprKind::Call {
                    callee: object,
                    args: self.args(postfix),
                },
                Rule::field => ExprKind::Field {
                    object,
                    name: ident(next(&mut postfix.into_inner())),
                },
                Rule::index => ExprKind::Index {
                    object,
                    indices: postfix.into_inner().map(|p| self.index_item(p)).collect(),
                },
                other => unreachable!("the grammar has no postfix {other:?}"),
            };
            operand = Operand {
                expr: Spanned::new(kind, span),
                grouped: false,
            };
        }
        operand
    }

    fn args(&self, call: Pair<'_, Rule>) -> Vec<Arg> {
        let mut args = Vec::new();
        let mut first_keyword: Option<Ident> = None;
        for arg in call.into_inner() {
            let span = span_of(&arg);
            let mut parts = arg.into_inner();
            let first = next(&mut parts);
            let (name, value) = if first.as_rule() == Rule::ident {
                (Some(ident(first)), self.expr(next(&mut parts)))
            } else {
                (None, self.expr(first))
            };
            match (&name, &first_keyword) {
                (Some(name), None) => first_keyword = Some(name.clone()),
                (None, Some(keyword)) => self.report(SyntaxError::unexpected(
                    "positional argument after a keyword argument",
                    span,
                    "positional argument",
                    Some(format!(
                        "move it before `{}=`, or give it a name",
                        keyword.name
                    )),
                )),
                _ => {}
            }
            args.push(Arg { name, value, span });
        }
        args
    }

    fn index_item(&self, pair: Pair<'_, Rule>) -> IndexItem {
        let span = span_of(&pair);
        let kind = match pair.as_rule() {
            Rule::index_at => IndexKind::At(self.expr(next(&mut pair.into_inner()))),
            _ => {
                let (mut start, mut stop, mut step) = (None, None, None);
                for part in pair.into_inner() {
                    let rule = part.as_rule();
                    let value = Some(self.expr(next(&mut part.into_inner())));
                    match rule {
                        Rule::slice_start => start = value,
                        Rule::slice_stop => stop = value,
                        _ => step = value,
                    }
                }
                IndexKind::Slice { start, stop, step }
            }
        };
        Spanned::new(kind, span)
    }

    fn primary(&self, pair: Pair<'_, Rule>) -> Operand {
        let span = span_of(&pair);
        let kind = match pair.as_rule() {
            Rule::paren => {
                // The parentheses belong to the expression's span, so a parent's span
                // (the merge of its children's) covers them too.
                let inner = self.expr(next(&mut pair.into_inner()));
                return Operand {
                    expr: Spanned::new(inner.node, span),
                    grouped: true,
                };
            }
            Rule::list => ExprKind::List(pair.into_inner().map(|p| self.expr(p)).collect()),
            Rule::int => self.int(pair.as_str(), span),
            Rule::float => self.float(pair.as_str(), span),
            Rule::string => self.string(pair),
            Rule::kw_true => ExprKind::Bool(true),
            Rule::kw_false => ExprKind::Bool(false),
            Rule::kw_none => ExprKind::None,
            Rule::name => {
                let name = ident(next(&mut pair.into_inner()));
                if &*name.name == "_" {
                    ExprKind::Underscore
                } else {
                    ExprKind::Name(name)
                }
            }
            other => unreachable!("the grammar has no primary {other:?}"),
        };
        Operand {
            expr: Spanned::new(kind, span),
            grouped: false,
        }
    }

    fn int(&self, text: &str, span: Span) -> ExprKind {
        match text.parse::<i64>() {
            Ok(value) => ExprKind::Int(value),
            Err(_) => {
                self.report(SyntaxError::invalid_literal(
                    "integer literal too large",
                    span,
                    "does not fit in a 64-bit int",
                    Some(format!(
                        "ints range up to {}; for a float write `{text}.0`",
                        i64::MAX
                    )),
                ));
                ExprKind::Int(0)
            }
        }
    }

    fn float(&self, text: &str, span: Span) -> ExprKind {
        match text.parse::<f64>() {
            Ok(value) if value.is_finite() => ExprKind::Float(value),
            _ => {
                self.report(SyntaxError::invalid_literal(
                    "float literal out of range",
                    span,
                    "too large for a 64-bit float",
                    None,
                ));
                ExprKind::Float(0.0)
            }
        }
    }

    fn string(&self, pair: Pair<'_, Rule>) -> ExprKind {
        let body = next(&mut pair.into_inner());
        let body_start = body.as_span().start();
        let raw = body.as_str();
        let mut value = String::with_capacity(raw.len());
        let mut chars = raw.char_indices();
        while let Some((at, c)) = chars.next() {
            if c != '\\' {
                value.push(c);
                continue;
            }
            // The grammar guarantees a character after every backslash.
            let escaped = chars.next().map_or('\\', |(_, e)| e);
            match escaped {
                'n' => value.push('\n'),
                't' => value.push('\t'),
                '\\' => value.push('\\'),
                '"' => value.push('"'),
                other => {
                    let start = body_start + at;
                    self.report(SyntaxError::invalid_literal(
                        format!("unknown escape `\\{other}` in string"),
                        Span::new(start, start + 1 + other.len_utf8()),
                        "unknown escape",
                        Some(r#"the escapes are `\n`, `\t`, `\\` and `\"`"#.into()),
                    ));
                }
            }
        }
        ExprKind::Str(value.into())
    }
}

impl Context {
    /// A loop body: `break` and `continue` are allowed until the next `fn` or `net`.
    fn in_loop(self) -> Context {
        Context {
            in_loop: true,
            net_top: false,
            ..self
        }
    }
}

fn next<'i>(pairs: &mut impl Iterator<Item = Pair<'i, Rule>>) -> Pair<'i, Rule> {
    pairs
        .next()
        .expect("the grammar guarantees this part of the construct")
}

fn span_of(pair: &Pair<'_, Rule>) -> Span {
    let span = pair.as_span();
    Span::new(span.start(), span.end())
}

fn ident(pair: Pair<'_, Rule>) -> Ident {
    Ident {
        name: pair.as_str().into(),
        span: span_of(&pair),
    }
}

fn assign_op(pair: &Pair<'_, Rule>) -> Option<BinOp> {
    let op = pair.clone().into_inner().next()?;
    match op.as_rule() {
        Rule::add_assign => Some(BinOp::Add),
        Rule::sub_assign => Some(BinOp::Sub),
        Rule::mul_assign => Some(BinOp::Mul),
        Rule::div_assign => Some(BinOp::Div),
        _ => None,
    }
}

fn bin_op(rule: Rule) -> Option<BinOp> {
    Some(match rule {
        Rule::or_op => BinOp::Or,
        Rule::and_op => BinOp::And,
        Rule::eq => BinOp::Eq,
        Rule::ne => BinOp::Ne,
        Rule::lt => BinOp::Lt,
        Rule::le => BinOp::Le,
        Rule::gt => BinOp::Gt,
        Rule::ge => BinOp::Ge,
        Rule::range => BinOp::Range,
        Rule::add => BinOp::Add,
        Rule::sub => BinOp::Sub,
        Rule::mul => BinOp::Mul,
        Rule::div => BinOp::Div,
        Rule::floor_div => BinOp::FloorDiv,
        Rule::modulo => BinOp::Mod,
        Rule::matmul => BinOp::MatMul,
        Rule::pow => BinOp::Pow,
        _ => return None,
    })
}

fn is_comparison(op: BinOp) -> bool {
    matches!(
        op,
        BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge
    )
}
