//! The interpreter over parsed programs: semantics, builtins and run-time diagnostics.

use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;
use std::sync::atomic::Ordering;

use cnn::eval::{Interpreter, RuntimeError, Value};
use cnn::syntax::parse_text;
use miette::Diagnostic;

/// A `Write` that keeps what was printed, readable after the interpreter is done with it.
#[derive(Clone, Default)]
struct Captured(Rc<RefCell<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.borrow()).into_owned()
    }
}

/// An interpreter and what it printed.
struct Session {
    interp: Interpreter,
    out: Captured,
}

impl Session {
    fn new() -> Session {
        let out = Captured::default();
        Session {
            interp: Interpreter::new(Box::new(out.clone())),
            out,
        }
    }

    fn run(&mut self, src: &str) -> Result<Option<Value>, Box<RuntimeError>> {
        let program = parse_text(src).unwrap_or_else(|e| panic!("parse error in {src:?}: {e:?}"));
        self.interp.run(&program)
    }
}

/// Runs `src`, which must succeed; returns what it printed.
fn ok(src: &str) -> String {
    let mut s = Session::new();
    if let Err(err) = s.run(src) {
        panic!("{src}\nfailed: {err:?}");
    }
    s.out.text()
}

/// The value of the expression `src`.
fn value(src: &str) -> String {
    let mut s = Session::new();
    match s.run(src) {
        Ok(Some(v)) => v.repr().to_string(),
        other => panic!("{src}: {other:?}"),
    }
}

/// Runs `src`, which must fail with `code` at a span covering `text`; returns the error.
fn fails(src: &str, code: &str, text: &str) -> RuntimeError {
    let mut s = Session::new();
    let err = match s.run(src) {
        Err(err) => *err,
        Ok(v) => panic!("{src}: expected {code}, got {v:?}"),
    };
    assert_eq!(
        err.code().map(|c| c.to_string()).as_deref(),
        Some(code),
        "{src}: {err:?}"
    );
    let span = err.span();
    assert_eq!(
        &src[span.start as usize..span.end as usize],
        text,
        "{src}: {err:?}"
    );
    err
}

fn help(err: &RuntimeError) -> String {
    err.help().map(|h| h.to_string()).unwrap_or_default()
}

#[test]
fn language_basics() {
    ok(r#"
assert 7 // 2 == 3
assert -7 // 2 == -4
assert -7 % 3 == 2
assert 7 / 2 == 3.5
assert 2 ** 10 == 1024
assert 1 + 2 * 3 == 7
assert (1 + 2) * 3 == 9
assert not (1 > 2) and (2 >= 2 or false)
assert "con" + "v" == "conv"
let l = [1, 2, 3] + [4]
assert len(l) == 4 and l[-1] == 4
fn relu_count(xs, limit=0) {
    let n = 0
    for v in xs {
        if v > limit { n += 1 } else if v == limit { continue } else { break }
    }
    return n
}
assert relu_count([3, 0, 5, -1, 9]) == 2
assert relu_count([5, 4, 3], limit=4) == 1
let i = 0
while true {
    i += 1
    if i >= 10 { break }
}
assert i == 10
let total = 0
for k in 0..5 { total += k }
assert total == 10
let outer = 1
if true {
    let outer = 100
    outer += 1
}
assert outer == 1
if true { outer = 5 }
assert outer == 5
let r = [3, 1, 2]
assert sorted(r) == [1, 2, 3] and sum(r) == 6 and max(r) == 3 and min(r) == 1
assert range(3) == [0, 1, 2]
assert str(12) + "px" == "12px"
assert round(2.71828, 2) == 2.72
fn fact(n) { if n <= 1 { return 1 } return n * fact(n - 1) }
assert fact(10) == 3628800
fn area(h, w=2) { return h * w }
assert area(3) == 6 and area(3, 4) == 12 and area(w=5, h=2) == 10
assert (1.5 + 1) * 2 == 5.0
assert 1e-3 * 1000 == 1
let t0 = now()
assert now() >= t0
"#);
}

#[test]
fn arithmetic_follows_python() {
    let cases = [
        ("-7 // 2", "-4"),
        ("7 // -2", "-4"),
        ("-7 % 3", "2"),
        ("7 % -3", "-2"),
        ("7 / 2", "3.5"),
        ("6 / 3", "2.0"),
        ("2 ** 10", "1024"),
        ("2 ** -1", "0.5"),
        ("2.0 ** 3", "8.0"),
        ("-7.5 // 2", "-4.0"),
        ("-7.5 % 2", "0.5"),
        ("1 + 2.5", "3.5"),
        ("0.1 + 0.2", "0.30000000000000004"),
        ("-2 ** 2", "-4"),
        ("2 ** 3 ** 2", "512"),
        ("4 == 4.0", "true"),
        ("[1, 2.0] == [1.0, 2]", "true"),
        ("1 == \"1\"", "false"),
        ("none == none", "true"),
        ("0 == none", "false"),
        ("\"a\" < \"b\"", "true"),
        ("1 < 1.5", "true"),
        ("not 0", "true"),
        ("not [1]", "false"),
        ("1 and 0", "false"),
        ("0 or \"x\"", "true"),
        ("[1, 2] + [3]", "[1, 2, 3]"),
    ];
    for (src, want) in cases {
        assert_eq!(value(src), want, "{src}");
    }
    // `and`/`or` short-circuit: the undefined name on the right is never evaluated.
    assert_eq!(value("false and nothing"), "false");
    assert_eq!(value("true or nothing"), "true");
}

#[test]
fn arithmetic_errors_are_value_errors() {
    let err = fails("1 // 0", "E0505", "0");
    assert!(err.to_string().contains("division by zero"));
    fails("5 % 0", "E0505", "0");
    fails("1.0 / 0.0", "E0505", "0.0");
    let err = fails(
        "9223372036854775807 + 1",
        "E0505",
        "9223372036854775807 + 1",
    );
    assert!(err.to_string().contains("overflow"), "{err}");
    fails("2 ** 64", "E0505", "2 ** 64");
    fails("0.0 ** -1", "E0505", "0.0 ** -1");
    let err = fails("1 + \"a\"", "E0207", "1 + \"a\"");
    assert!(err.to_string().contains("int and str"), "{err}");
    fails("-\"a\"", "E0207", "-\"a\"");
    fails("1.5..3", "E0207", "1.5");
}

#[test]
fn values_print_as_the_language_writes_them() {
    let out = ok(r#"
print(3.5, 1.0, 1e-5, 1e16, 0.1, 2.5e-7, -0.0)
print(1, true, false, none, "text")
print([1, 2, "a", [none, 1.5]], 0..3)
print()
print(str(2.0) + "|" + str([1]))
"#);
    assert_eq!(
        out,
        "3.5 1.0 1e-05 1e+16 0.1 2.5e-07 -0.0\n1 true false none text\n\
         [1, 2, \"a\", [none, 1.5]] 0..3\n\n2.0|[1]\n"
    );
}

#[test]
fn indexing_and_slicing() {
    let cases = [
        ("[10, 20, 30][0]", "10"),
        ("[10, 20, 30][-1]", "30"),
        ("[10, 20, 30, 40][1:3]", "[20, 30]"),
        ("[10, 20, 30, 40][::2]", "[10, 30]"),
        ("[10, 20, 30, 40][::-1]", "[40, 30, 20, 10]"),
        ("[10, 20, 30][5:]", "[]"),
        ("\"hello\"[1]", "\"e\""),
        ("\"hello\"[::-1]", "\"olleh\""),
        ("(2..6)[1]", "3"),
        ("len(2..6)", "4"),
    ];
    for (src, want) in cases {
        assert_eq!(value(src), want, "{src}");
    }
    let err = fails("let l = [1, 2]\nl[2]", "E0313", "2");
    assert!(err.to_string().contains("length 2"), "{err}");
    fails("\"ab\"[-3]", "E0313", "-3");
    fails("[1, 2][::0]", "E0505", "0");
    fails("[1, 2][\"a\"]", "E0207", "\"a\"");
    fails("5[0]", "E0207", "5");
    fails("let l = [1, 2]\nl[0] = 3", "E0207", "l");
}

#[test]
fn scopes() {
    ok(r#"
let x = 1
if true { let x = 2; assert x == 2 }
assert x == 1
for i in 0..3 { let y = i }
let y = 10
fn reads_global() { return y }
assert reads_global() == 10
y = 11
assert reads_global() == 11          # looked up at call time
fn later() { return defined_after }
let defined_after = 7
assert later() == 7
fn shadow(y) { let y = y * 2; return y }
assert shadow(4) == 8 and y == 11
fn sets_global() { y = 99 }
sets_global()
assert y == 99                       # plain assignment rebinds the nearest name
let d = 1
fn default_now(a=d) { return a }
d = 5
assert default_now() == 5            # defaults are evaluated at each call
fn chained(a, b=a * 2) { return b }
assert chained(3) == 6
"#);
    // A fn does not see its caller's locals.
    let err = fails(
        "fn inner() { return secret }\nfn outer() { let secret = 1; return inner() }\nouter()",
        "E0201",
        "secret",
    );
    assert_eq!(err.calls().len(), 2, "{err:?}");
    // Block-scoped lets are gone after the block.
    fails("if true { let z = 1 }\nz", "E0201", "z");
    let err = fails("let total = 0\ntotl = 1", "E0208", "totl");
    assert!(help(&err).contains("did you mean `total`?"), "{err:?}");
    fails("fn f() { q = 1 }\nf()", "E0208", "q");
}

#[test]
fn undefined_names_suggest_the_closest() {
    let err = fails("let counter = 1\nprint(countr)", "E0201", "countr");
    assert_eq!(help(&err), "did you mean `counter`?");
    let err = fails("lenn([1])", "E0201", "lenn");
    assert_eq!(help(&err), "did you mean `len`?");
    let err = fails("zzzzzz", "E0201", "zzzzzz");
    assert!(help(&err).contains("let zzzzzz"), "{err:?}");
}

#[test]
fn argument_binding() {
    let def = "fn area(h, width=2) { return h * width }\n";
    let err = fails(&format!("{def}area(1, 2, 3)"), "E0203", "3");
    assert!(err.to_string().contains("at most 2"), "{err}");
    let err = fails(&format!("{def}area(1, widht=3)"), "E0204", "widht");
    assert_eq!(help(&err), "did you mean `width`?");
    let err = fails(&format!("{def}area(width=3)"), "E0205", "area(width=3)");
    assert!(err.to_string().contains("`h`"), "{err}");
    let err = fails(&format!("{def}area(3, h=4)"), "E0206", "h=4");
    let labels: Vec<_> = err.labels().into_iter().flatten().collect();
    assert!(
        labels.iter().any(|l| l.offset() == def.len() + 5),
        "{labels:?}"
    );
    // Builtins bind through the same routine.
    let err = fails("round(2.5, digts=1)", "E0204", "digts");
    assert_eq!(help(&err), "did you mean `digits`?");
    fails("len()", "E0205", "len()");
    fails("len([1], [2])", "E0203", "[2]");
    fails("round(1.5, x=2.5)", "E0206", "x=2.5");
    let err = fails("range(\"3\")", "E0207", "\"3\"");
    assert!(err.to_string().contains("expected int, got str"), "{err}");
    fails("timeit(3)", "E0207", "3");
    fails("5(1)", "E0207", "5(1)");
}

#[test]
fn builtins() {
    let cases = [
        ("len([1, 2, 3])", "3"),
        ("len(\"héllo\")", "5"),
        ("len(0..0)", "0"),
        ("sum([1, 2, 3])", "6"),
        ("sum([1, 2.5])", "3.5"),
        ("sum(0..5)", "10"),
        ("sum([])", "0"),
        ("sum([[1], [2]], start=[])", "[1, 2]"),
        ("min([3, 1, 2])", "1"),
        ("max([3, 1, 2])", "3"),
        ("min(4, 2, 8)", "2"),
        ("max(4, 2.5)", "4"),
        ("max(0..4)", "3"),
        ("min([\"b\", \"a\"])", "\"a\""),
        ("sorted([3, 1, 2])", "[1, 2, 3]"),
        ("sorted([3, 1, 2], reverse=true)", "[3, 2, 1]"),
        ("sorted([\"b\", \"c\", \"a\"])", "[\"a\", \"b\", \"c\"]"),
        ("sorted(3..0)", "[]"),
        ("range(3)", "[0, 1, 2]"),
        ("range(2, 5)", "[2, 3, 4]"),
        ("range(5, 0, -2)", "[5, 3, 1]"),
        ("range(0, 5, 10)", "[0]"),
        ("str(12)", "\"12\""),
        ("str(\"x\")", "\"x\""),
        ("str([1, \"a\"])", "\"[1, \\\"a\\\"]\""),
        ("str(none)", "\"none\""),
        ("round(2.5)", "2"),
        ("round(3.5)", "4"),
        ("round(-2.5)", "-2"),
        ("round(2.71828, 2)", "2.72"),
        ("round(0.125, 2)", "0.12"),
        ("round(1250, -2)", "1200"),
        ("round(7)", "7"),
        ("round(1234.5, -2)", "1200.0"),
        ("abs(-3)", "3"),
        ("abs(-2.5)", "2.5"),
        ("now() >= 0", "true"),
    ];
    for (src, want) in cases {
        assert_eq!(value(src), want, "{src}");
    }
    fails("min([])", "E0505", "[]");
    fails("max(5)", "E0207", "5");
    fails("sorted([1, \"a\"])", "E0207", "[1, \"a\"]");
    fails("range(0, 5, 0)", "E0505", "0");
    fails("range(10000000000)", "E0505", "range(10000000000)");
    fails("round(1e300 * 1e10)", "E0505", "1e300 * 1e10");
    fails(
        "abs(-9223372036854775807 - 1)",
        "E0505",
        "-9223372036854775807 - 1",
    );
    fails("len(5)", "E0207", "5");
    fails("sum([1, \"a\"])", "E0207", "[1, \"a\"]");
}

#[test]
fn timeit_returns_a_record() {
    let out = ok(r#"
let calls = [0]
fn work() { let s = 0; for i in 0..100 { s += i } return s }
let r = timeit(work, iters=3, warmup=1)
assert r.min <= r.median and r.median <= r.max
assert r.min >= 0
print(r.median > -1)
"#);
    assert_eq!(out, "true\n");
    let err = fails(
        "fn f() { }\nlet r = timeit(f, iters=1)\nr.medain",
        "E0202",
        "medain",
    );
    assert_eq!(help(&err), "did you mean `median`?");
    fails("fn f() { }\ntimeit(f, iters=0)", "E0505", "iters=0");
    // An error inside the timed fn carries the timeit call as "called from here".
    let src = "fn f() { return 1 // 0 }\ntimeit(f)";
    let err = fails(src, "E0505", "0");
    let call = err.calls()[0];
    assert_eq!(&src[call.start as usize..call.end as usize], "timeit(f)");
}

#[test]
fn fields_and_methods() {
    fails("let x = 3\nx.shape", "E0202", "shape");
    let err = fails("[1, 2].append(3)", "E0202", "append");
    assert!(help(&err).contains("no methods"), "{err:?}");
    fails("let x = 3\nx.weight = 1", "E0207", "x");
}

#[test]
fn pipes_call_the_right_side() {
    assert_eq!(value("3 |> str"), "\"3\"");
    // `x |> f(a)` is `f(a)(x)`: the call on the right runs first and must give a callable.
    assert_eq!(
        value("fn formatter(kind) { return str }\n3 |> formatter(1)"),
        "\"3\""
    );
    fails(
        "fn add(a, b) { return a + b }\n1 |> add(b=2)",
        "E0205",
        "add(b=2)",
    );
    assert_eq!(
        value("fn twice(x) { return 2 * x }\n[1, 2] |> len |> twice"),
        "4"
    );
}

#[test]
fn control_flow() {
    ok(r#"
fn first_over(xs, limit) {
    for x in xs { if x > limit { return x } }
    return none
}
assert first_over([1, 5, 9], 4) == 5
assert first_over([1], 4) == none
let seen = []
for i in 0..10 {
    if i % 2 == 0 { continue }
    if i > 6 { break }
    seen = seen + [i]
}
assert seen == [1, 3, 5]
let n = 0
while n < 3 { n += 1 }
assert n == 3
let s = ""
for c in "abc" { s = c + s }
assert s == "cba"
fn nothing() { }
assert nothing() == none
with no_grad { let inside = 1 }
"#);
}

#[test]
fn assertion_failures_carry_the_message() {
    let err = fails(
        "let x = 2\nassert x == 3, \"x is \" + str(x)",
        "E0504",
        "x == 3",
    );
    assert_eq!(err.to_string(), "assertion failed: x is 2");
    fails("assert []", "E0504", "[]");
}

#[test]
fn errors_in_calls_list_the_call_stack() {
    let src = "fn inner(x) { return x // 0 }\nfn outer() { return inner(1) }\nouter()";
    let err = fails(src, "E0505", "0");
    let calls: Vec<&str> = err
        .calls()
        .iter()
        .map(|s| &src[s.start as usize..s.end as usize])
        .collect();
    assert_eq!(calls, ["inner(1)", "outer()"]);
    let labels: Vec<_> = err.labels().into_iter().flatten().collect();
    assert_eq!(labels.len(), 3);
    assert!(
        labels[1..]
            .iter()
            .all(|l| l.label() == Some("called from here"))
    );
    assert!(err.related().is_none());
}

#[test]
fn runaway_recursion_is_an_error_not_a_crash() {
    // Deep recursion needs more native stack than a test thread's default.
    let handle = std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(|| {
            let src = "fn down(n) { return down(n + 1) }\ndown(0)";
            let err = fails(src, "E0505", "down(n + 1)");
            assert!(
                err.to_string().contains("maximum recursion depth (1000)"),
                "{err}"
            );
            // One label per call site, not one per level.
            assert_eq!(err.calls().len(), 2);

            let mut s = Session::new();
            s.interp.set_recursion_limit(20);
            s.run("fn depth(n) { if n == 0 { return 0 } return 1 + depth(n - 1) }")
                .ok();
            assert!(s.run("depth(15)").is_ok());
            assert!(s.run("depth(25)").is_err());
        })
        .expect("spawn");
    handle.join().expect("recursion test thread");
}

#[test]
fn a_net_that_builds_itself_is_a_recursion_error() {
    // Deep recursion needs more native stack than a test thread's default.
    let handle = std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(|| {
            let direct = "net A() {\n    input x: [N, 3]\n    let b = A()\n    return b(x)\n}\nlet m = A()";
            let err = fails(direct, "E0505", "A()");
            assert!(err.to_string().contains("maximum recursion depth (1000)"), "{err}");
            assert!(help(&err).contains("if depth > 0"), "{err:?}");
            // The call in the body is the error's own label; the top-level call is the other.
            assert_eq!(err.calls().len(), 1, "{err:?}");

            let mutual = "net A() {\n    input x: [N, 3]\n    let b = B()\n    return b(x)\n}\nnet B() {\n    input x: [N, 3]\n    return x |> Sequential(A())\n}\nlet m = A()";
            let err = fails(mutual, "E0505", "A()");
            // One label per call site, not one per level.
            assert_eq!(err.calls().len(), 2, "{err:?}");

            // Through a parameter default, before any pass runs.
            let default = "net A(inner=A()) {\n    input x: [N, 3]\n    return x\n}\nlet m = A()";
            let err = fails(default, "E0505", "A()");
            assert_eq!(err.calls().len(), 1, "{err:?}");

            // Recursion that ends builds, and the limit still bounds it.
            let deep = "net Deep(depth=3) {\n    input x: [N, 4]\n    if depth == 0 { return x |> Linear(4, 4) }\n    let inner = Deep(depth - 1)\n    return inner(x)\n}\n";
            let mut s = Session::new();
            s.interp.set_recursion_limit(20);
            s.run(deep).expect("define");
            assert!(matches!(
                s.run("parameter_count(Deep(depth=4))"),
                Ok(Some(Value::Int(20)))
            ));
            assert!(s.run("Deep(depth=25)").is_err());
        })
        .expect("spawn");
    handle.join().expect("recursion test thread");
}

#[test]
fn mutual_fn_recursion_labels_each_call_site_once() {
    let handle = std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(|| {
            let src = "fn f(n) { return g(n + 1) }\nfn g(n) { return f(n + 1) }\nf(0)";
            let err = fails(src, "E0505", "f(n + 1)");
            assert_eq!(err.calls().len(), 3, "{err:?}");
        })
        .expect("spawn");
    handle.join().expect("recursion test thread");
}

#[test]
fn interrupt_flag_stops_a_script_before_its_next_statement() {
    let mut s = Session::new();
    s.interp.interrupt_handle().store(true, Ordering::Relaxed);
    // No loop and no call: only the statement boundary looks at the flag.
    let err = s.run("let a = 1\nlet b = a + 1").expect_err("interrupted");
    assert_eq!(err.code().map(|c| c.to_string()).as_deref(), Some("E0506"));
    assert_eq!((err.span().start, err.span().end), (0, 9));
    assert!(s.interp.global("a").is_none());
    assert!(s.run("let c = 3\nc").is_ok());
}

#[test]
fn interrupt_flag_stops_loops() {
    let mut s = Session::new();
    let flag = s.interp.interrupt_handle();
    s.run("let n = 0").expect("define");
    flag.store(true, Ordering::Relaxed);
    let err = s.run("while true { n += 1 }").expect_err("interrupted");
    assert_eq!(err.code().map(|c| c.to_string()).as_deref(), Some("E0506"));
    assert!(
        !flag.load(Ordering::Relaxed),
        "the flag is cleared for the next entry"
    );
    // From another thread, while running.
    let flag2 = flag.clone();
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(50));
        flag2.store(true, Ordering::Relaxed);
    });
    let err = s
        .run("fn spin() { for i in 0..1000000000000 { } }\nspin()")
        .expect_err("interrupted");
    assert_eq!(err.code().map(|c| c.to_string()).as_deref(), Some("E0506"));
    stopper.join().expect("stopper");
    assert!(s.run("n >= 0").is_ok());
}

#[test]
fn state_persists_between_runs() {
    let mut s = Session::new();
    s.run("let x = 1\nfn inc(v) { return v + 1 }")
        .expect("define");
    assert!(matches!(s.run("inc(x)"), Ok(Some(Value::Int(2)))));
    // An error mid-entry keeps what came before it, and drops the half-run block.
    assert!(s.run("let y = 5\nif true { let tmp = 1; 1 // 0 }").is_err());
    assert!(matches!(s.run("y"), Ok(Some(Value::Int(5)))));
    assert!(s.run("tmp").is_err());
    assert!(matches!(s.run("let z = 1"), Ok(None)));
    let names: Vec<&str> = s.interp.globals().map(|(n, _)| n).collect();
    assert_eq!(names, ["x", "inc", "y", "z"]);
}
