//! A fully parenthesising printer, for testing precedence and newline handling by reading
//! the tree back as text: `1 + 2 * 3` prints as `(1 + (2 * 3))` (starlark's approach).
//!
//! Every unary, binary and pipe expression gets its own parentheses; statements print one
//! per line, blocks inline as `{ a; b }`.

use std::fmt::Write;

use crate::syntax::ast::{
    Arg, Block, Expr, ExprKind, GradMode, IndexItem, IndexKind, Param, Program, ShapeSpec, Stmt,
    StmtKind,
};

/// The program's statements, one per line.
pub fn program_to_string(program: &Program) -> String {
    program
        .stmts
        .iter()
        .map(stmt_to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// One statement on one line, nested blocks inline.
pub fn stmt_to_string(stmt: &Stmt) -> String {
    let mut out = String::new();
    write_stmt(&mut out, stmt);
    out
}

/// An expression with every operator application in parentheses.
pub fn expr_to_string(expr: &Expr) -> String {
    let mut out = String::new();
    write_expr(&mut out, expr);
    out
}

fn write_stmt(out: &mut String, stmt: &Stmt) {
    match &stmt.node {
        StmtKind::Let {
            name,
            annotation,
            value,
        } => {
            let _ = write!(out, "let {}", name.name);
            if let Some(shape) = annotation {
                out.push_str(": ");
                write_shape(out, shape);
            }
            out.push_str(" = ");
            write_expr(out, value);
        }
        StmtKind::Assign { target, op, value } => {
            write_expr(out, target);
            let _ = write!(out, " {}= ", op.map_or("", |op| op.symbol()));
            write_expr(out, value);
        }
        StmtKind::Expr(expr) => write_expr(out, expr),
        StmtKind::If {
            branches,
            otherwise,
        } => {
            for (i, (cond, body)) in branches.iter().enumerate() {
                out.push_str(if i == 0 { "if " } else { " else if " });
                write_expr(out, cond);
                out.push(' ');
                write_block(out, body);
            }
            if let Some(body) = otherwise {
                out.push_str(" else ");
                write_block(out, body);
            }
        }
        StmtKind::For {
            var,
            iterable,
            body,
        } => {
            let _ = write!(out, "for {} in ", var.name);
            write_expr(out, iterable);
            out.push(' ');
            write_block(out, body);
        }
        StmtKind::While { cond, body } => {
            out.push_str("while ");
            write_expr(out, cond);
            out.push(' ');
            write_block(out, body);
        }
        StmtKind::Break => out.push_str("break"),
        StmtKind::Continue => out.push_str("continue"),
        StmtKind::Return(value) => {
            out.push_str("return");
            if let Some(value) = value {
                out.push(' ');
                write_expr(out, value);
            }
        }
        StmtKind::With { mode, body } => {
            out.push_str(match mode.node {
                GradMode::NoGrad => "with no_grad ",
                GradMode::EnableGrad => "with enable_grad ",
            });
            write_block(out, body);
        }
        StmtKind::Assert { cond, message } => {
            out.push_str("assert ");
            write_expr(out, cond);
            if let Some(message) = message {
                out.push_str(", ");
                write_expr(out, message);
            }
        }
        StmtKind::Fn(def) => {
            let _ = write!(out, "fn {}", def.name.name);
            write_params(out, &def.params);
            out.push(' ');
            write_block(out, &def.body);
        }
        StmtKind::Net(def) => {
            let _ = write!(out, "net {}", def.name.name);
            if !def.params.is_empty() {
                write_params(out, &def.params);
            }
            out.push(' ');
            write_block(out, &def.body);
        }
        StmtKind::Input { name, shape } => {
            let _ = write!(out, "input {}: ", name.name);
            write_shape(out, shape);
        }
    }
}

fn write_block(out: &mut String, block: &Block) {
    if block.node.is_empty() {
        out.push_str("{ }");
        return;
    }
    out.push_str("{ ");
    for (i, stmt) in block.node.iter().enumerate() {
        if i > 0 {
            out.push_str("; ");
        }
        write_stmt(out, stmt);
    }
    out.push_str(" }");
}

fn write_params(out: &mut String, params: &[Param]) {
    out.push('(');
    for (i, param) in params.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&param.name.name);
        if let Some(default) = &param.default {
            out.push('=');
            write_expr(out, default);
        }
    }
    out.push(')');
}

fn write_shape(out: &mut String, shape: &ShapeSpec) {
    write_list(out, &shape.node);
}

fn write_list(out: &mut String, items: &[Expr]) {
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_expr(out, item);
    }
    out.push(']');
}

fn write_expr(out: &mut String, expr: &Expr) {
    match &expr.node {
        ExprKind::Int(value) => {
            let _ = write!(out, "{value}");
        }
        // `{:?}` keeps a decimal point (`3.0`), so a float never prints as an int.
        ExprKind::Float(value) => {
            let _ = write!(out, "{value:?}");
        }
        ExprKind::Bool(value) => {
            let _ = write!(out, "{value}");
        }
        ExprKind::Str(text) => {
            out.push('"');
            for c in text.chars() {
                match c {
                    '\n' => out.push_str("\\n"),
                    '\t' => out.push_str("\\t"),
                    '\\' => out.push_str("\\\\"),
                    '"' => out.push_str("\\\""),
                    c => out.push(c),
                }
            }
            out.push('"');
        }
        ExprKind::None => out.push_str("none"),
        ExprKind::Name(ident) => out.push_str(&ident.name),
        ExprKind::Underscore => out.push('_'),
        ExprKind::List(items) => write_list(out, items),
        ExprKind::Unary { op, operand } => {
            // `not` needs a space before its operand; `-` reads better without one.
            let _ = write!(out, "({}", op.symbol());
            if op.symbol() == "not" {
                out.push(' ');
            }
            write_expr(out, operand);
            out.push(')');
        }
        ExprKind::Binary { op, lhs, rhs } => {
            out.push('(');
            write_expr(out, lhs);
            let _ = write!(out, " {} ", op.node.symbol());
            write_expr(out, rhs);
            out.push(')');
        }
        ExprKind::Pipe { value, func } => {
            out.push('(');
            write_expr(out, value);
            out.push_str(" |> ");
            write_expr(out, func);
            out.push(')');
        }
        ExprKind::Call { callee, args } => {
            write_expr(out, callee);
            out.push('(');
            for (i, arg) in args.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_arg(out, arg);
            }
            out.push(')');
        }
        ExprKind::Field { object, name } => {
            write_expr(out, object);
            let _ = write!(out, ".{}", name.name);
        }
        ExprKind::Index { object, indices } => {
            write_expr(out, object);
            out.push('[');
            for (i, item) in indices.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_index(out, item);
            }
            out.push(']');
        }
    }
}

fn write_arg(out: &mut String, arg: &Arg) {
    if let Some(name) = &arg.name {
        let _ = write!(out, "{}=", name.name);
    }
    write_expr(out, &arg.value);
}

fn write_index(out: &mut String, item: &IndexItem) {
    match &item.node {
        IndexKind::At(expr) => write_expr(out, expr),
        IndexKind::Slice { start, stop, step } => {
            let part = |out: &mut String, expr: &Option<Expr>| {
                if let Some(expr) = expr {
                    write_expr(out, expr);
                }
            };
            part(out, start);
            out.push(':');
            part(out, stop);
            if step.is_some() {
                out.push(':');
                part(out, step);
            }
        }
    }
}
