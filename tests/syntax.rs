//! The parser, end to end: precedence (read back through the fully parenthesising printer),
//! the newline rules, every statement form, spans, each syntax error code with the span it
//! points at, and robustness against hostile input.

use cnn::source::{SourceFile, Span};
use cnn::syntax::ast::{ExprKind, Program, StmtKind};
use cnn::syntax::printer::{expr_to_string, program_to_string};
use cnn::syntax::{SyntaxError, needs_continuation, parse, parse_expr, parse_text};
use proptest::prelude::*;

/// `src` as one fully parenthesised expression.
fn expr(src: &str) -> String {
    match parse_expr(src) {
        Ok(e) => expr_to_string(&e),
        Err(errors) => panic!("{src:?} should parse: {errors:?}"),
    }
}

fn program(src: &str) -> Program {
    parse_text(src).unwrap_or_else(|errors| panic!("{src:?} should parse: {errors:?}"))
}

/// `src` printed back, one statement per line.
fn stmts(src: &str) -> String {
    program_to_string(&program(src))
}

/// The errors `src` gives, which it must give.
fn errors(src: &str) -> Vec<SyntaxError> {
    match parse_text(src) {
        Ok(p) => panic!("{src:?} should fail, parsed as {}", program_to_string(&p)),
        Err(errors) => {
            assert!(!errors.is_empty(), "{src:?}: an Err with no errors");
            errors
        }
    }
}

/// The single error `src` gives: its code and the text its primary span covers.
fn one_error(src: &str) -> (&'static str, String, SyntaxError) {
    let errors = errors(src);
    assert_eq!(errors.len(), 1, "{src:?}: {errors:?}");
    let error = errors.into_iter().next().unwrap();
    let span = error.span();
    let text = src[span.start as usize..span.end as usize].to_string();
    (error.code_str(), text, error)
}

fn code_of(src: &str) -> &'static str {
    one_error(src).0
}

// ---------------------------------------------------------------------------------------
// Precedence and associativity, one level at a time, lowest first.

#[test]
fn pipe_is_lowest_and_left_associative() {
    assert_eq!(expr("x |> f"), "(x |> f)");
    assert_eq!(expr("x |> f |> g"), "((x |> f) |> g)");
    assert_eq!(expr("a or b |> f"), "((a or b) |> f)");
    assert_eq!(expr("x |> f(a, k=1)"), "(x |> f(a, k=1))");
    assert_eq!(expr("x |> Conv2d(_, 8, 3)"), "(x |> Conv2d(_, 8, 3))");
    let e = parse_expr("x |> f(a)").unwrap();
    let ExprKind::Pipe { value, func } = e.node else {
        panic!("not a pipe")
    };
    assert!(matches!(value.node, ExprKind::Name(_)));
    assert!(matches!(func.node, ExprKind::Call { .. }));
}

#[test]
fn or_and_are_left_associative_and_ordered() {
    assert_eq!(expr("a or b or c"), "((a or b) or c)");
    assert_eq!(expr("a and b and c"), "((a and b) and c)");
    assert_eq!(expr("a and b or c and d"), "((a and b) or (c and d))");
    assert_eq!(expr("a or b and c"), "(a or (b and c))");
}

#[test]
fn not_sits_between_and_and_comparisons() {
    assert_eq!(expr("not a and b"), "((not a) and b)");
    assert_eq!(expr("not a == b"), "(not (a == b))");
    assert_eq!(expr("not not a"), "(not (not a))");
    assert_eq!(expr("a and not b or c"), "((a and (not b)) or c)");
    assert_eq!(expr("not a + 1 < b"), "(not ((a + 1) < b))");
}

#[test]
fn comparisons_bind_below_range_and_arithmetic() {
    for op in ["==", "!=", "<", "<=", ">", ">="] {
        assert_eq!(
            expr(&format!("a + 1 {op} b * 2")),
            format!("((a + 1) {op} (b * 2))")
        );
    }
    assert_eq!(expr("a < 0..5"), "(a < (0 .. 5))");
    assert_eq!(expr("(a < b) < c"), "((a < b) < c)");
    assert_eq!(expr("a < (b < c)"), "(a < (b < c))");
    assert_eq!(expr("a == b and c != d"), "((a == b) and (c != d))");
}

#[test]
fn comparisons_are_non_associative() {
    for src in ["a < b < c", "a == b != c", "1 <= x >= 0", "a > b == c"] {
        let (code, text, _) = one_error(src);
        assert_eq!(code, "E0101", "{src}");
        // The label is on the second comparison.
        let second = src.rfind(text.as_str()).unwrap();
        assert!(second > 2, "{src}: label on {text:?}");
    }
    let (_, text, error) = one_error("1 < x < 3");
    assert_eq!(text, "<");
    assert!(
        error.to_string().contains("`<` cannot follow `<`"),
        "{error}"
    );
}

#[test]
fn range_is_non_associative_and_below_additive() {
    assert_eq!(expr("0..n + 1"), "(0 .. (n + 1))");
    assert_eq!(expr("a - 1..b * 2"), "((a - 1) .. (b * 2))");
    assert_eq!(expr("0..5 == r"), "((0 .. 5) == r)");
    assert_eq!(expr("(0..2)..3"), "((0 .. 2) .. 3)");
    assert_eq!(code_of("0..2..3"), "E0101");
    assert_eq!(one_error("0..2..3").1, "..");
}

#[test]
fn additive_and_multiplicative_are_left_associative() {
    assert_eq!(expr("1 + 2 * 3"), "(1 + (2 * 3))");
    assert_eq!(expr("a - b - c"), "((a - b) - c)");
    assert_eq!(expr("a + b - c + d"), "(((a + b) - c) + d)");
    assert_eq!(
        expr("a * b / c // d % e @ f"),
        "(((((a * b) / c) // d) % e) @ f)"
    );
    assert_eq!(expr("a @ b + c"), "((a @ b) + c)");
    assert_eq!(expr("(1 + 2) * 3"), "((1 + 2) * 3)");
}

#[test]
fn unary_minus_binds_below_pow_and_above_multiplicative() {
    assert_eq!(expr("-a * b"), "((-a) * b)");
    assert_eq!(expr("- - a"), "(-(-a))");
    assert_eq!(expr("-2 ** 2"), "(-(2 ** 2))");
    assert_eq!(expr("2 ** -1"), "(2 ** (-1))");
    assert_eq!(expr("2 ** -x ** 2"), "(2 ** (-(x ** 2)))");
    assert_eq!(expr("a - -b"), "(a - (-b))");
    assert_eq!(expr("-7 // 2"), "((-7) // 2)");
}

#[test]
fn pow_is_right_associative() {
    assert_eq!(expr("a ** b ** c"), "(a ** (b ** c))");
    assert_eq!(expr("a * b ** c"), "(a * (b ** c))");
    assert_eq!(expr("(a ** b) ** c"), "((a ** b) ** c)");
}

#[test]
fn postfix_binds_tightest_and_chains_left() {
    assert_eq!(expr("f(x)(y)"), "f(x)(y)");
    assert_eq!(expr("-x[0]"), "(-x[0])");
    assert_eq!(expr("-a.b"), "(-a.b)");
    assert_eq!(expr("x ** y.z"), "(x ** y.z)");
    assert_eq!(expr("a.b(1, k=2)[0].c"), "a.b(1, k=2)[0].c");
    assert_eq!(expr("not x.is_leaf"), "(not x.is_leaf)");
    assert_eq!(expr("(a + b).sum()"), "(a + b).sum()");
    let e = parse_expr("m.f(1)").unwrap();
    let ExprKind::Call { callee, .. } = e.node else {
        panic!("a method call is a call")
    };
    assert!(matches!(callee.node, ExprKind::Field { .. }));
}

#[test]
fn literals() {
    assert_eq!(expr("42"), "42");
    assert_eq!(expr("1.5"), "1.5");
    assert_eq!(expr("1e-3"), "0.001");
    assert_eq!(expr("2.5e4"), "25000.0");
    assert_eq!(expr("3."), "3.0");
    assert_eq!(expr("3.5E+2"), "350.0");
    assert_eq!(expr("true"), "true");
    assert_eq!(expr("none"), "none");
    assert_eq!(expr(r#""a\n\t\\\"b""#), r#""a\n\t\\\"b""#);
    assert_eq!(expr("9223372036854775807"), "9223372036854775807");
    assert_eq!(expr("\"\""), "\"\"");
    assert_eq!(expr("\"# not a comment (\""), "\"# not a comment (\"");
    assert_eq!(expr("_"), "_");
    assert!(matches!(
        parse_expr("_").unwrap().node,
        ExprKind::Underscore
    ));
    assert!(matches!(parse_expr("_x").unwrap().node, ExprKind::Name(_)));
    assert_eq!(expr("[]"), "[]");
    assert_eq!(expr("[1, [2, 3],]"), "[1, [2, 3]]");
    assert_eq!(expr("0..5"), "(0 .. 5)");
    // Keywords are not names, but names may start with one.
    assert_eq!(
        expr("letter + iffy + nothing"),
        "((letter + iffy) + nothing)"
    );
    let ExprKind::Str(text) = parse_expr(r#""a\nb""#).unwrap().node else {
        panic!("a string")
    };
    assert_eq!(&*text, "a\nb");
}

#[test]
fn calls_index_and_slices() {
    assert_eq!(expr("f()"), "f()");
    assert_eq!(expr("f(1, 2,)"), "f(1, 2)");
    assert_eq!(expr("f(a, b=2, c=x == y,)"), "f(a, b=2, c=(x == y))");
    assert_eq!(expr("x[1:3, ::2, -1, :]"), "x[1:3, ::2, (-1), :]");
    assert_eq!(expr("x[0, :, 1:]"), "x[0, :, 1:]");
    assert_eq!(expr("x[:-1, a:b:c, ::]"), "x[:(-1), a:b:c, :]");
    assert_eq!(expr("x[i,]"), "x[i]");
    assert_eq!(code_of("x[]"), "E0101");
    let (code, text, _) = one_error("f(a=1, 2)");
    assert_eq!((code, text.as_str()), ("E0101", "2"));
}

// ---------------------------------------------------------------------------------------
// Newlines and separators

#[test]
fn newlines_inside_brackets_are_joined() {
    assert_eq!(stmts("let y = f(1,\n   2\n)"), "let y = f(1, 2)");
    assert_eq!(stmts("let l = [\n 1,\n 2,\n]\nl"), "let l = [1, 2]\nl");
    assert_eq!(stmts("x[1\n, 2]"), "x[1, 2]");
    assert_eq!(stmts("let a = (1\n+ 2)"), "let a = (1 + 2)");
}

#[test]
fn newline_after_an_operator_comma_or_assignment_is_joined() {
    assert_eq!(stmts("let x = 1 +\n2"), "let x = (1 + 2)");
    assert_eq!(stmts("let x = a and\n  b"), "let x = (a and b)");
    assert_eq!(stmts("let x = a **\n\n# c\n  b"), "let x = (a ** b)");
    assert_eq!(stmts("let x =\n  5"), "let x = 5");
    assert_eq!(stmts("x +=\n 1"), "x += 1");
    assert_eq!(stmts("assert ok,\n \"why\""), "assert ok, \"why\"");
    assert_eq!(stmts("let r = 0..\n5"), "let r = (0 .. 5)");
}

#[test]
fn newline_before_a_pipe_line_is_joined() {
    let src = "let f = x |> Conv2d(_, 64, 9, padding=4) |> ReLU()\n         |> Conv2d(_, 32, 1)\nf";
    assert_eq!(
        stmts(src),
        "let f = (((x |> Conv2d(_, 64, 9, padding=4)) |> ReLU()) |> Conv2d(_, 32, 1))\nf"
    );
    // Blank and comment-only lines may come between.
    assert_eq!(
        stmts("let y = x\n\n   # then\n\n  |> f\nprint(y)"),
        "let y = (x |> f)\nprint(y)"
    );
}

#[test]
fn statements_end_at_newline_or_semicolon() {
    assert_eq!(stmts("let a = 1\n-2"), "let a = 1\n(-2)");
    assert_eq!(stmts("let a = 1; let b = 2;"), "let a = 1\nlet b = 2");
    assert_eq!(stmts(";;\n\nx\n\n;"), "x");
    assert_eq!(stmts("x # comment\ny"), "x\ny");
    assert_eq!(stmts(""), "");
    assert_eq!(stmts("  \n# only a comment\n"), "");
    let (code, text, error) = one_error("let a = 1 let b = 2");
    assert_eq!((code, text.as_str()), ("E0101", "let"));
    assert!(error.to_string().contains("a newline or `;`"), "{error}");
}

#[test]
fn no_separator_is_needed_after_a_block() {
    assert_eq!(
        stmts("fn fact(n) { if n <= 1 { return 1 } return n * fact(n - 1) }"),
        "fn fact(n) { if (n <= 1) { return 1 }; return (n * fact((n - 1))) }"
    );
    assert_eq!(
        stmts("for i in 0..3 { x += i } print(x)"),
        "for i in (0 .. 3) { x += i }\nprint(x)"
    );
    assert_eq!(stmts("while c { } x"), "while c { }\nx");
}

// ---------------------------------------------------------------------------------------
// Every statement form

#[test]
fn every_statement_form() {
    let src = r#"
let x = 1
let img: [N, 1, 28, 28] = load()
x = 2
x[i, 0:2] = y
layer.weight = w
x += 1; x -= 1; x *= 2; x /= 2
x[0] += 1
m.bias *= 0
f(x)
if a { b } else if c { d } else { e }
if a {
    b
}
else {
    c
}
for v in xs { continue }
while true { break }
with no_grad { p.zero_() }
with enable_grad { q }
assert c
assert c, "message"
fn f(a, b=2,) { return }
fn g() { return a + b }
net Name(p=1) {
    input x: [N, p, 2*H, _,]
    return x
}
net Shared {
    input a: [N, 4, H, W]
    input b: [N, 4, H, W]
    return a + b
}
"#;
    let expected = [
        "let x = 1",
        "let img: [N, 1, 28, 28] = load()",
        "x = 2",
        "x[i, 0:2] = y",
        "layer.weight = w",
        "x += 1",
        "x -= 1",
        "x *= 2",
        "x /= 2",
        "x[0] += 1",
        "m.bias *= 0",
        "f(x)",
        "if a { b } else if c { d } else { e }",
        "if a { b } else { c }",
        "for v in xs { continue }",
        "while true { break }",
        "with no_grad { p.zero_() }",
        "with enable_grad { q }",
        "assert c",
        "assert c, \"message\"",
        "fn f(a, b=2) { return }",
        "fn g() { return (a + b) }",
        "net Name(p=1) { input x: [N, p, (2 * H), _]; return x }",
        "net Shared { input a: [N, 4, H, W]; input b: [N, 4, H, W]; return (a + b) }",
    ];
    assert_eq!(stmts(src), expected.join("\n"));
}

#[test]
fn statement_nodes() {
    let p = program("net N { input x: [N, 3, H, W] }\nlet y: [2] = z\nwith no_grad { }");
    let StmtKind::Net(net) = &p.stmts[0].node else {
        panic!("a net")
    };
    assert!(net.params.is_empty());
    assert!(matches!(net.body.node[0].node, StmtKind::Input { .. }));
    let StmtKind::Let { annotation, .. } = &p.stmts[1].node else {
        panic!("a let")
    };
    assert_eq!(annotation.as_ref().unwrap().node.len(), 1);
    let p = program("fn f(a, b=2) { }");
    let StmtKind::Fn(def) = &p.stmts[0].node else {
        panic!("a fn")
    };
    assert!(def.params[0].default.is_none());
    assert!(def.params[1].default.is_some());
}

// ---------------------------------------------------------------------------------------
// Spans

fn slice(src: &str, span: Span) -> &str {
    &src[span.start as usize..span.end as usize]
}

#[test]
fn spans_cover_their_text_and_parents_merge_children() {
    let src = "a  +  bc * 2";
    let e = parse_expr(src).unwrap();
    assert_eq!(slice(src, e.span), src);
    let ExprKind::Binary { op, lhs, rhs } = &e.node else {
        panic!("binary")
    };
    assert_eq!(slice(src, op.span), "+");
    assert_eq!(slice(src, lhs.span), "a");
    assert_eq!(slice(src, rhs.span), "bc * 2");
    assert_eq!(e.span, lhs.span.merge(rhs.span));

    let src = "(1 + 2) * f(x, k=3)[0]";
    let e = parse_expr(src).unwrap();
    let ExprKind::Binary { lhs, rhs, .. } = &e.node else {
        panic!("binary")
    };
    assert_eq!(slice(src, lhs.span), "(1 + 2)");
    assert_eq!(slice(src, rhs.span), "f(x, k=3)[0]");
    let ExprKind::Index { object, indices } = &rhs.node else {
        panic!("index")
    };
    assert_eq!(slice(src, indices[0].span), "0");
    let ExprKind::Call { callee, args } = &object.node else {
        panic!("call")
    };
    assert_eq!(slice(src, callee.span), "f");
    assert_eq!(slice(src, args[1].span), "k=3");
    assert_eq!(slice(src, args[1].value.span), "3");
    assert_eq!(slice(src, args[1].name.as_ref().unwrap().span), "k");

    let src = "-x ** 2";
    let e = parse_expr(src).unwrap();
    assert_eq!(slice(src, e.span), src);

    let src = "x\n\nlet y = f(1,\n 2)\nfn g() {\n  return 1\n}";
    let p = program(src);
    assert_eq!(slice(src, p.stmts[0].span), "x");
    assert_eq!(slice(src, p.stmts[1].span), "let y = f(1,\n 2)");
    assert_eq!(slice(src, p.stmts[2].span), "fn g() {\n  return 1\n}");
    let StmtKind::Fn(def) = &p.stmts[2].node else {
        panic!("fn")
    };
    assert_eq!(slice(src, def.body.span), "{\n  return 1\n}");
    assert_eq!(slice(src, def.name.span), "g");
}

// ---------------------------------------------------------------------------------------
// Errors, one code at a time, with the span each points at.

#[test]
fn e0101_unexpected_token() {
    let (code, text, error) = one_error("let y = )");
    assert_eq!((code, text.as_str()), ("E0101", ")"));
    assert_eq!(error.to_string(), "expected an expression, found `)`");

    let (code, text, error) = one_error("let y = foo(1, ))");
    assert_eq!((code, text.as_str()), ("E0101", ")"));
    assert!(error.to_string().ends_with("found `)`"), "{error}");

    let (_, text, error) = one_error("fn f(a b) { }");
    assert_eq!(text, "b");
    assert_eq!(error.to_string(), "expected `)`, `,` or `=`, found `b`");

    let (_, text, error) = one_error("let in = 3");
    assert_eq!(text, "in");
    assert_eq!(error.to_string(), "expected an identifier, found `in`");
    let help = miette::Diagnostic::help(&error).unwrap().to_string();
    assert!(help.contains("keyword"), "{help}");

    let (_, _, error) = one_error("if x = 1 { }");
    let help = miette::Diagnostic::help(&error).unwrap().to_string();
    assert!(help.contains("=="), "{help}");

    let (_, text, error) = one_error("let x = 1 +");
    assert_eq!(text, "");
    assert_eq!(error.span(), Span::new(11, 11));
    assert!(
        error.to_string().contains("the end of the input"),
        "{error}"
    );

    assert_eq!(code_of("if x { } else y"), "E0101");
    assert_eq!(code_of("with grad { }"), "E0101");
    assert_eq!(code_of("x + é"), "E0101");
    assert_eq!(code_of("let x: 3 = 1"), "E0101");
    assert_eq!(code_of("x.1"), "E0101");
    let (code, text, error) = one_error("print(f(1)))\nx");
    assert_eq!((code, text.as_str()), ("E0101", ")"));
    assert_eq!(error.span(), Span::new(11, 12));
    assert_eq!(
        error.to_string(),
        "expected `=`, an operator, or a newline or `;`, found `)`"
    );
    let help = miette::Diagnostic::help(&error).unwrap().to_string();
    assert_eq!(
        help,
        "no `(` is open here; remove this `)` or open one before it"
    );
    let (_, text, _) = one_error("x = 1 }");
    assert_eq!(text, "}");
    let (_, text, error) = one_error("if x { } else { } +");
    assert_eq!(text, "+");
    assert_eq!(
        error.to_string(),
        "expected a statement, or a newline or `;`, found `+`"
    );
    let (_, text, error) = one_error("a ! b");
    assert_eq!(text, "!");
    assert_eq!(
        error.to_string(),
        "expected `=`, an operator, or a newline or `;`, found `!`"
    );
    // No rule name ever leaks into a message.
    for src in [
        "let = 1",
        "f(,)",
        "x[:",
        "net { }",
        "for in x { }",
        "1 +* 2",
        "x..",
    ] {
        let message = errors(src)[0].to_string();
        let rules = [
            "expr",
            "postfix_expr",
            "primary",
            "ident",
            "expr_stmt",
            "kw_in",
            "EOI",
            "not_op",
            "params",
            "paren",
            "block",
            "shape",
            "index_item",
            "slice",
            "arg",
            "call",
        ];
        for word in message.split(|c: char| !c.is_alphanumeric() && c != '_') {
            assert!(!rules.contains(&word), "{src:?}: {message}");
        }
    }
}

#[test]
fn e0101_invalid_assignment_target_and_parameter_order() {
    let (code, text, _) = one_error("f(x) = 3");
    assert_eq!((code, text.as_str()), ("E0101", "f(x)"));
    let (code, text, _) = one_error("a + b += 1");
    assert_eq!((code, text.as_str()), ("E0101", "a + b"));
    let (code, text, _) = one_error("1 = x");
    assert_eq!((code, text.as_str()), ("E0101", "1"));
    let (code, text, _) = one_error("fn f(a=1, b) { }");
    assert_eq!((code, text.as_str()), ("E0101", "b"));
    let (code, text, _) = one_error("net N(a, b=1, c) { }");
    assert_eq!((code, text.as_str()), ("E0101", "c"));
}

#[test]
fn e0102_unclosed_bracket_labels_the_opener() {
    let src = "let y = Conv2d(1, 8, 3\nlet z = 1\n";
    let (code, text, error) = one_error(src);
    assert_eq!((code, text.as_str()), ("E0102", "("));
    assert_eq!(error.span().start as usize, src.find('(').unwrap());
    let SyntaxError::Unclosed { end_span, .. } = &error else {
        panic!("{error:?}")
    };
    // The second label sits where the text ends, on the last line with text.
    assert_eq!(end_span.offset(), src.trim_end().len());

    let src = "let z = [1, 2)";
    let (code, text, error) = one_error(src);
    assert_eq!((code, text.as_str()), ("E0102", "["));
    let SyntaxError::Unclosed { end_span, .. } = &error else {
        panic!("{error:?}")
    };
    assert_eq!(end_span.offset(), src.find(')').unwrap());

    let (code, text, _) = one_error("fn f() {\n  return 1\n");
    assert_eq!((code, text.as_str()), ("E0102", "{"));
    // The innermost unclosed bracket is reported.
    let src = "f(g[1, 2)";
    assert_eq!(one_error(src).1, "[");
    // An earlier, unrelated mistake wins over an unclosed bracket after it.
    let (code, text, _) = one_error("let = 1\nf(");
    assert_eq!((code, text.as_str()), ("E0101", "="));
}

#[test]
fn e0103_invalid_literals() {
    let (code, text, _) = one_error("let n = 99999999999999999999");
    assert_eq!((code, text.as_str()), ("E0103", "99999999999999999999"));
    let (code, text, _) = one_error(r#"print("a\qb")"#);
    assert_eq!((code, text.as_str()), ("E0103", r"\q"));
    let (code, text, _) = one_error("let s = \"no end\nlet t = 1");
    assert_eq!((code, text.as_str()), ("E0103", "\"no end"));
    let (code, _, _) = one_error("let f = 1e999");
    assert_eq!(code, "E0103");
}

#[test]
fn e0104_statement_not_allowed_here() {
    let (code, text, _) = one_error("input x: [N, 3, H, W]");
    assert_eq!((code, text.as_str()), ("E0104", "input x: [N, 3, H, W]"));
    let (code, text, _) = one_error("net N { if true { input x: [1] } }");
    assert_eq!((code, text.as_str()), ("E0104", "input x: [1]"));
    let (code, text, _) = one_error("net N { fn f() { input x: [1] } }");
    assert_eq!((code, text.as_str()), ("E0104", "input x: [1]"));
    let (code, text, _) = one_error("let a = 1\nreturn a");
    assert_eq!((code, text.as_str()), ("E0104", "return a"));
    let (code, text, _) = one_error("if c { break }");
    assert_eq!((code, text.as_str()), ("E0104", "break"));
    let (code, text, _) = one_error("continue");
    assert_eq!((code, text.as_str()), ("E0104", "continue"));
    // A fn body inside a loop is not inside the loop.
    let (code, text, _) = one_error("while c { fn f() { break } }");
    assert_eq!((code, text.as_str()), ("E0104", "break"));
    // ...but anything nested in a loop, or in a fn, is.
    program("for i in xs { if c { while d { break } continue } }");
    program("fn f() { for i in xs { if c { return i } } }");
    program("net N { input x: [1]\n with no_grad { return x } }");
}

#[test]
fn lowering_errors_are_all_reported() {
    let errors = errors("break\nf() = 1\ncontinue\nlet s = \"\\q\"");
    let codes: Vec<_> = errors.iter().map(SyntaxError::code_str).collect();
    assert_eq!(codes, ["E0104", "E0101", "E0104", "E0103"]);
}

#[test]
fn errors_render_with_miette() {
    let source = SourceFile::new("t.cnn", "let y = foo(1, ))\n");
    let errors = parse(&source).unwrap_err();
    let out = cnn::report::Problem::new(errors[0].clone(), &source)
        .render(cnn::report::Format::Plain { width: 80 });
    assert!(out.contains("E0101"), "{out}");
    assert!(out.contains("t.cnn:1:17"), "{out}");
}

// ---------------------------------------------------------------------------------------
// The REPL's continuation test

#[test]
fn continuation_for_the_repl() {
    assert!(needs_continuation("let x = f(1,"));
    assert!(needs_continuation("net N {\n input x: [1]"));
    assert!(needs_continuation("let y = x |>"));
    assert!(needs_continuation("let y = a and"));
    assert!(needs_continuation("let y = a,"));
    assert!(!needs_continuation("let y = a"));
    assert!(!needs_continuation("if a { b }"));
    assert!(!needs_continuation("let y = (a]"));
    assert!(!needs_continuation("let y = \"(\""));
}

// ---------------------------------------------------------------------------------------
// Robustness: never panic, never overflow the stack.

/// Run `f` on a thread with a generous stack, as the real pipeline does.
fn on_big_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

#[test]
fn absurd_nesting_is_refused_with_a_diagnostic() {
    const N: usize = 100_000;
    let cases = [
        "(".repeat(N) + "1" + &")".repeat(N),
        "[".repeat(N) + &"]".repeat(N),
        "{".repeat(N) + &"}".repeat(N),
        "if x { ".repeat(N) + &"}".repeat(N),
        "let x = ".to_string() + &"-".repeat(N) + "1",
        "let x = ".to_string() + &"not ".repeat(N) + "a",
        "let x = 2".to_string() + &" ** 2".repeat(N),
        "let x = 1".to_string() + &" + 1".repeat(N),
        "x".to_string() + &".f()".repeat(N),
        "(".repeat(N),
    ];
    for src in cases {
        let head: String = src.chars().take(12).collect();
        let errors = on_big_stack(move || parse_text(&src).unwrap_err());
        assert_eq!(errors.len(), 1, "{head}");
        assert!(
            ["E0101", "E0102"].contains(&errors[0].code_str()),
            "{head}: {:?}",
            errors[0]
        );
    }
    // The bracket limit's label is on the opener that crossed it.
    let (_, text, error) = one_error(&"(".repeat(300));
    assert_eq!(text, "(");
    assert_eq!(error.span().start, 256);
}

#[test]
fn nesting_within_the_limits_parses_on_an_ordinary_stack() {
    // The limits exist so that the deepest accepted input fits a main thread's 8 MiB.
    let run = |src: String| {
        std::thread::Builder::new()
            .stack_size(8 << 20)
            .spawn(move || parse_text(&src).map(|_| ()))
            .unwrap()
            .join()
            .expect("no stack overflow")
    };
    let deep = 250;
    run("(".repeat(deep) + "1" + &")".repeat(deep)).unwrap();
    run("[".repeat(deep) + &"]".repeat(deep)).unwrap();
    run("x = ".to_string() + &"f(".repeat(deep) + &")".repeat(deep)).unwrap();
    run("if x { ".repeat(deep) + &" }".repeat(deep)).unwrap();
    run("let x = ".to_string() + &"-".repeat(900) + "1").unwrap();
    run("let x = ".to_string() + &"not ".repeat(900) + "a").unwrap();
    run("let x = 2".to_string() + &" ** 2".repeat(900)).unwrap();
    run("let x = 1".to_string() + &" + 1".repeat(900)).unwrap();
    // Deep brackets and long operator runs together stay bounded too.
    let mixed = "(- ".repeat(200) + &"-".repeat(700) + "1" + &")".repeat(200);
    assert!(run(mixed).is_err());
}

const SOUP: &[&str] = &[
    "let",
    "fn",
    "net",
    "input",
    "return",
    "for",
    "in",
    "while",
    "if",
    "else",
    "break",
    "continue",
    "with",
    "and",
    "or",
    "not",
    "true",
    "false",
    "none",
    "assert",
    "x",
    "_",
    "f",
    "no_grad",
    "1",
    "2.5",
    "3.",
    "1e-3",
    "99999999999999999999",
    "0",
    "-1",
    "2147483648",
    "4611686018427387904",
    "9223372036854775807",
    "9223372036854775808",
    "\"\u{0}\u{1}\u{1f}\"",
    "\u{0}",
    "\u{1}",
    "\u{1b}",
    "\"s\"",
    "\"\\q\"",
    "\"",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    ":",
    ";",
    "\n",
    "\n",
    "=",
    "+=",
    "-=",
    "*=",
    "/=",
    "+",
    "-",
    "*",
    "/",
    "//",
    "%",
    "@",
    "**",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "..",
    "|>",
    ".",
    "#c\n",
    " ",
    "é",
    "\\",
    "\t",
    "\r",
];

/// 2000 cases per run by default; a long fuzzing run sets `FUZZ_CASES` (for example
/// `FUZZ_CASES=500000 cargo test --release --test syntax never_panic`).
fn fuzz_cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(fuzz_cases()))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let _ = parse_expr(&text);
        check_soup(&text);
    }

    #[test]
    fn token_soup_never_panics(tokens in proptest::collection::vec(0..SOUP.len(), 0..80)) {
        let text: String = tokens.iter().map(|&i| SOUP[i]).collect::<Vec<_>>().join(" ");
        check_soup(&text);
        let glued: String = tokens.iter().map(|&i| SOUP[i]).collect();
        check_soup(&glued);
    }
}

/// Parse `text`; any error's spans must lie inside the text, on character boundaries.
/// What `cnn check` does with any text: parse and check it, and render whatever it
/// reports in every format. None of it may panic, and every span must lie in the text.
fn check_soup(text: &str) {
    let _ = needs_continuation(text);
    if let Err(errors) = parse_text(text) {
        for error in errors {
            let span = error.span();
            assert!(span.end as usize <= text.len(), "{text:?}: {error:?}");
            assert!(text.is_char_boundary(span.start as usize), "{text:?}");
            assert!(text.is_char_boundary(span.end as usize), "{text:?}");
        }
    }
    let source = SourceFile::new("fuzz.cnn", text);
    if let Err(problems) = cnn::check(&source) {
        assert!(!problems.is_empty());
        assert_renders(&problems, text);
    }
}

/// Every problem renders for people and as JSON, one report per line that a strict JSON
/// parser reads.
fn assert_renders(problems: &[cnn::report::Problem], text: &str) {
    let plain = cnn::report::render_all(problems, cnn::report::Format::Plain { width: 80 });
    assert!(!plain.is_empty());
    let json = cnn::report::render_all(problems, cnn::report::Format::Json);
    assert_eq!(json.lines().count(), problems.len(), "{text:?}\n{json}");
    for line in json.lines() {
        if let Err(e) = serde_json::from_str::<serde_json::Value>(line) {
            panic!("invalid JSON ({e}) for {text:?}:\n{line}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Programs at the edges: extreme integers in every integer position, negative and huge
// sizes, control characters in strings and paths, through the checker, the interpreter
// without the checker, and both renderers.

/// Ints at the edges of 64 bits and around 0 and 1, as a program writes them (`i64::MIN`
/// has no literal; `2**63` and `9223372036854775808` overflow).
const EDGE_INTS: &[&str] = &[
    "0",
    "1",
    "-1",
    "2",
    "-2",
    "3",
    "2147483648",
    "-2147483648",
    "2147483647",
    "-2147483649",
    "2**31",
    "-2**31",
    "4611686018427387904",
    "-4611686018427387904",
    "2**62",
    "-2**62",
    "9223372036854775807",
    "-9223372036854775807",
    "(-9223372036854775807 - 1)",
    "9223372036854775808",
    "2**63",
    "-2**63",
];

fn edge_int() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(EDGE_INTS).prop_map(str::to_string),
        2 => (-3i64..8).prop_map(|v| v.to_string()),
        1 => any::<i64>().prop_map(|v| v.to_string()),
    ]
}

/// A string literal holding control characters (raw: a raw newline ends the literal, an
/// E0103), quotes and backslashes (escaped), and path-like text.
fn edge_string() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        (0u8..32).prop_map(|b| char::from(b).to_string()),
        proptest::sample::select(
            &[
                "a", "/", ".", "é", "\\\"", "\\\\", "\\n", "x.npy", "/tmp/", "\u{7f}"
            ][..]
        )
        .prop_map(str::to_string),
    ];
    proptest::collection::vec(piece, 0..6).prop_map(|p| format!("\"{}\"", p.concat()))
}

/// Statements with holes: `I` an int, `S` a string. `x` is a [2, 3, 4, 4] tensor and `v`
/// a [5] one. Nothing here writes a file or loops over a range of the holes.
const EDGE_TEMPLATES: &[&str] = &[
    "print(ones(I))",
    "print(zeros(I, I).shape)",
    "print(randn(I, I, I).shape)",
    "print(rand([I, I]).shape)",
    "print(full([I, I], 1.5).shape)",
    "print(arange(I, I).shape)",
    "print(arange(I, I, I).shape)",
    "print(linspace(0, 1, I).shape)",
    "print(eye(I).shape)",
    "print(randint(I, I, [I]).shape)",
    "print(I + I, I - I, I * I)",
    "print(I // I, I % I)",
    "print(I / I, I ** I, -I)",
    "print(I < I, I == I)",
    "print(round(1.5, I), abs(I), str(I))",
    "print(len(I .. I), len(range(I)))",
    "print((I .. I)[I])",
    "print(v[I])",
    "print(v[I:I].shape)",
    "print(v[I:I:I].shape)",
    "print(v[::I] + ones(2))",
    "print(x[I, I:I].shape)",
    "print(x[:, I, ::I].shape)",
    "print([1, 2, 3][I], [1, 2, 3][I:I:I])",
    "print(\"abcd\"[I], \"abcd\"[I:I:I])",
    "print(v.reshape(I, I).shape)",
    "print(x.view(I, -1).shape)",
    "print(v.unsqueeze(I).shape)",
    "print(x.squeeze(I).shape)",
    "print(x.transpose(I, I).shape)",
    "print(x.permute(I, I, I, I).shape)",
    "print(x.flatten(I, I).shape)",
    "print(v.expand(I, I).shape)",
    "print(ones(1).expand(I).sum())",
    "print(x.sum(I).shape, x.mean(dim=I).shape)",
    "print(x.max(I), x.argmax(I))",
    "print(x.softmax(I).shape, x.log_softmax(I).shape)",
    "print(x.size(I), v.numel())",
    "print(x.clamp(I, I).sum())",
    "print(cat([x, x], I).shape, stack([v, v], I).shape)",
    "print(x.normal_(I, I).shape)",
    "print(v.tolist())",
    "print((x |> Conv2d(3, I, I)).shape)",
    "print((x |> Conv2d(I, 2, 3, stride=I, padding=I, dilation=I, groups=I)).shape)",
    "print((x |> Conv2d(3, 3, [I, I], padding=[I, I])).shape)",
    "print((x |> ConvTranspose2d(3, 2, I, stride=I, padding=I, output_padding=I)).shape)",
    "print((x |> ConvTranspose2d(3, I, 3, dilation=I, groups=I)).shape)",
    "print((x |> MaxPool2d(I, stride=I, padding=I)).shape)",
    "print((x |> AvgPool2d(I, stride=I)).shape)",
    "print((x |> BatchNorm2d(I)).shape)",
    "print((v |> Linear(I, I)).shape)",
    "print((v |> Linear(5, I)).shape)",
    "print((x |> Flatten(I, I)).shape)",
    "print((x |> PixelShuffle(I)).shape)",
    "print((x |> Upsample(scale_factor=I)).shape)",
    "print((x |> Dropout(I)).shape)",
    "print((x |> Softmax(I)).shape)",
    "print(interpolate(x, size=[I, I]).shape)",
    "print(conv2d(x, randn(2, 3, 3, 3), stride=I, padding=I).shape)",
    "print(max_pool2d(x, I).shape, avg_pool2d(x, I, padding=I).shape)",
    "print(pixel_shuffle(x, I).shape)",
    "print(conv_matrix(randn(1, 1, 3, 3), [I, I]).shape)",
    "print(conv_matrix(randn(1, 1, 3, 3), [3, 3], stride=I, padding=I, dilation=I).shape)",
    "print(receptive_field(Sequential(Conv2d(3, 2, I, stride=I), MaxPool2d(I))))",
    "print(parameter_count(Conv2d(3, I, I)))",
    "summary(Sequential(Conv2d(3, 2, I)), [I, 3, 4, 4])",
    "let y: [I, 3, 4, 4] = x",
    "let y: [N, I, H, W] = x |> Conv2d(3, I, 1)",
    "net N(k=I) {\n    input y: [B, 3, H, W]\n    return y |> Conv2d(3, 2, k, padding=I)\n}\nprint(N()(x).shape)",
    "net M {\n    input y: [I, I, 4, 4]\n    return y |> MaxPool2d(I)\n}\nlet m = M()\nprint(m(x).shape)",
    "fn f(a, b=I) { return a * b }\nprint(f(I))",
    "seed(I)",
    "print(load_npy(S).shape)",
    "print(load_npy(S + S))",
    "Linear(1, 1).load(S)",
    "print(S, len(S), S + \"x\")",
    "print(S + I)",
    "print(S[I])",
    "assert I == I, S",
];

/// One program: a prelude, then up to five statements with their holes filled.
fn edge_program() -> impl Strategy<Value = String> {
    (
        proptest::collection::vec(0..EDGE_TEMPLATES.len(), 1..=5),
        proptest::collection::vec(edge_int(), 16),
        proptest::collection::vec(edge_string(), 4),
    )
        .prop_map(|(picks, ints, strings)| {
            let mut text = String::from("let x = randn(2, 3, 4, 4)\nlet v = ones(5)\n");
            let (mut i, mut s) = (ints.iter().cycle(), strings.iter().cycle());
            for pick in picks {
                for c in EDGE_TEMPLATES[pick].chars() {
                    match c {
                        'I' => text.push_str(i.next().unwrap()),
                        'S' => text.push_str(s.next().unwrap()),
                        c => text.push(c),
                    }
                }
                text.push('\n');
            }
            text
        })
}

/// Whether a run of `text` may allocate gigabytes: a size of 2**31 (8 GiB of float32) is
/// refused only when the machine has less memory, and `arange(-2**31, 2**31)` has 2**32
/// elements, so an int of that magnitude (either sign) leaves the program to the checker.
/// Sizes from 2**40 up are always refused.
fn too_heavy_to_run(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at].is_ascii_digit() && (at == 0 || !bytes[at - 1].is_ascii_digit()) {
            let end = bytes[at..]
                .iter()
                .position(|b| !b.is_ascii_digit())
                .map_or(bytes.len(), |k| at + k);
            let power = bytes.get(end..end + 2) == Some(b"**");
            if !power
                && let Ok(n) = text[at..end].parse::<u64>()
                && (1 << 24..1 << 40).contains(&n)
            {
                return true;
            }
            at = end;
        } else {
            at += 1;
        }
    }
    text.contains("2**31")
}

/// `cnn check` and `cnn run --no-check` on `text`: no panic, every report renders, JSON
/// lines parse.
fn check_and_run(text: String) {
    cnn::on_big_stack(move || {
        check_soup(&text);
        let source = SourceFile::new("edge\u{1}.cnn", text.as_str());
        let Ok(program) = cnn::parse(&source) else {
            return;
        };
        if too_heavy_to_run(&text) {
            return;
        }
        let mut interpreter = cnn::eval::Interpreter::new(Box::new(std::io::sink()));
        let mut problems = match cnn::execute(&source, &mut interpreter, &program) {
            Err(cnn::RunError::Runtime(p)) => vec![p],
            Err(cnn::RunError::Check(found)) => found,
            Ok(_) => Vec::new(),
        };
        problems.extend(cnn::take_warnings(&source, &mut interpreter));
        if !problems.is_empty() {
            assert_renders(&problems, &text);
        }
    });
}

/// 100 programs per run by default (a few seconds in a debug build); `FUZZ_CASES` raises
/// it, as for the fuzzers above. A long run keeps overflow checks on in release:
/// `CARGO_PROFILE_RELEASE_OVERFLOW_CHECKS=true FUZZ_CASES=1000000 cargo test --release
/// --test syntax edge_programs`.
fn edge_cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(edge_cases()))]

    #[test]
    fn edge_programs_never_panic(text in edge_program()) {
        check_and_run(text);
    }
}

#[test]
fn the_edge_fuzzer_skips_runs_only_of_gigabyte_ints() {
    assert!(too_heavy_to_run("ones(2147483648)"));
    assert!(too_heavy_to_run("ones(2**31)"));
    assert!(too_heavy_to_run("arange(-2147483648, 3)"));
    assert!(!too_heavy_to_run("ones(-9223372036854775807, 2**62, 3)"));
    assert!(!too_heavy_to_run("ones(4611686018427387904, -2**62, 3)"));
}

#[test]
fn well_formed_programs_print_back_to_a_fixed_point() {
    // Printing and reparsing must give the same text: the printer's parentheses agree with
    // the parser's precedence.
    for src in [
        "let x = -a ** -b * c |> f(k=1) or not d < e",
        "x[1:-1, ::2] = a @ b // c % d",
        "net N(c=1) { input x: [N, c, 2*H, _]; return x |> Conv2d(_, c, 3) }",
    ] {
        let once = stmts(src);
        assert_eq!(stmts(&once), once);
    }
}

// ---------------------------------------------------------------------------------------
// The shared conformance scripts, when they are present on this machine.

#[test]
fn conformance_scripts_parse() {
    // The suite sits beside the repository (`../shared`), on developers' machines and CI's.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance");
    if !root.exists() {
        return;
    }
    for dir in ["semantics", "ops", "errors"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "cnn") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let source = SourceFile::new(path.display().to_string(), text);
            let result = parse(&source);
            let name = path.file_name().unwrap().to_string_lossy();
            if name.starts_with("e20") {
                let errors = result.expect_err("e20 must not parse");
                assert_eq!(errors.len(), 1, "{errors:?}");
                assert!(["E0101", "E0102"].contains(&errors[0].code_str()));
                let (line, _) = source.line_col(errors[0].span().start);
                assert!([2, 3].contains(&line), "{name}: line {line}");
            } else if let Err(errors) = result {
                panic!("{}: {errors:?}", path.display());
            }
        }
    }
}
