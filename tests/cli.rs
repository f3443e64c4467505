//! The `cnn` binary end to end: subcommands, exit codes, JSON diagnostics, `explain`.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn cnn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cnn"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("the cnn binary runs")
}

/// A script in a fresh temporary folder.
fn script(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cnn-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.cnn"));
    std::fs::write(&path, text).unwrap();
    path
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every JSON report the command printed, one per line.
fn json_reports(o: &Output) -> Vec<serde_json::Value> {
    stderr(o)
        .lines()
        .chain(stdout(o).lines())
        .filter(|l| l.trim_start().starts_with('{'))
        .map(|l| serde_json::from_str(l).expect("each report is one line of JSON"))
        .collect()
}

#[test]
fn run_prints_and_exits_zero() {
    let p = script("hello", "let n = 6\nprint(\"n is\", n * 7)\n");
    let o = cnn(&["run", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "n is 42\n");
}

#[test]
fn syntax_error_exits_one_and_runs_nothing() {
    let p = script("syntax", "print(\"before\")\nlet x = (1 + 2\n");
    for cmd in ["run", "check"] {
        let o = cnn(&[cmd, p.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1), "{cmd}");
        assert_eq!(
            stdout(&o),
            "",
            "{cmd}: nothing runs before the check passes"
        );
        assert!(stderr(&o).contains("E0102"), "{}", stderr(&o));
    }
}

#[test]
fn runtime_error_exits_two_after_earlier_output() {
    // Division by zero depends on values: the checker cannot know it, the run finds it.
    let p = script("runtime", "print(\"before\")\nlet z = 0\nprint(1 // z)\n");
    let o = cnn(&["run", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(stdout(&o), "before\n");
    assert!(stderr(&o).contains("E0505"));
}

#[test]
fn json_format_gives_one_report_per_line_with_byte_spans() {
    let text = "let rate = 1\nprint(rat)\n";
    let p = script("json", text);
    let o = cnn(&["run", "--format", "json", p.to_str().unwrap()]);
    // The checker finds the undefined name before anything runs.
    assert_eq!(o.status.code(), Some(1));
    let reports = json_reports(&o);
    assert_eq!(reports.len(), 1);
    let r = &reports[0];
    assert_eq!(r["code"], "E0201");
    assert_eq!(r["severity"], "error");
    let span = &r["labels"][0]["span"];
    let offset = span["offset"].as_u64().unwrap() as usize;
    let length = span["length"].as_u64().unwrap() as usize;
    assert_eq!(&text[offset..offset + length], "rat");
    assert!(r["help"].as_str().unwrap().contains("rate"));
}

#[test]
fn check_reports_success_and_json_is_silent() {
    let p = script("fine", "let a = 1\n");
    let o = cnn(&["check", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    let o = cnn(&["check", "--format", "json", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    assert!(json_reports(&o).is_empty());
}

#[test]
fn missing_file_is_a_usage_error_with_e0501() {
    let o = cnn(&["run", "/no/such/script.cnn"]);
    assert_eq!(o.status.code(), Some(64));
    assert!(stderr(&o).contains("E0501"));
}

#[test]
fn bad_command_lines_exit_64() {
    assert_eq!(cnn(&["frobnicate"]).status.code(), Some(64));
    assert_eq!(cnn(&["run"]).status.code(), Some(64));
    assert_eq!(
        cnn(&["check", "x.cnn", "--format", "xml"]).status.code(),
        Some(64)
    );
    assert_eq!(cnn(&["--help"]).status.code(), Some(0));
}

#[test]
fn explain_prints_every_code_and_rejects_unknown_ones() {
    for code in cnn::explain::codes() {
        let o = cnn(&["explain", code]);
        assert_eq!(o.status.code(), Some(0), "{code}");
        assert!(stdout(&o).starts_with(code), "{code}");
    }
    let o = cnn(&["explain", "e0302"]);
    assert_eq!(o.status.code(), Some(0));
    let o = cnn(&["explain", "E9999"]);
    assert_eq!(o.status.code(), Some(64));
}

#[test]
fn deep_nesting_is_a_diagnostic_not_a_crash() {
    let deep = "(".repeat(100_000);
    let p = script("deep", &format!("let x = {deep}1\n"));
    let o = cnn(&["check", "--format", "json", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(!json_reports(&o).is_empty());
}

#[test]
fn deep_recursion_is_a_diagnostic_not_a_crash() {
    let p = script("recurse", "fn down(n) { return down(n + 1) }\ndown(0)\n");
    let o = cnn(&["run", "--format", "json", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(!json_reports(&o).is_empty());
}

/// `cnn ARGS`, killed if it has not finished within `limit`: a hang fails the test instead
/// of stalling the suite. `None` when it had to be killed.
fn cnn_within(args: &[&str], limit: Duration) -> Option<Output> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cnn"))
        .args(args)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the cnn binary runs");
    let start = Instant::now();
    while child.try_wait().expect("wait for cnn").is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(child.wait_with_output().expect("the output of cnn"))
}

#[test]
fn a_recursive_net_is_a_diagnostic_not_a_hang() {
    let direct = "net A() {\n    input x: [N, 3]\n    let b = A()\n    return b(x)\n}\nprint(\"before\")\nlet m = A()\n";
    let mutual = "net A() {\n    input x: [N, 3]\n    let b = B()\n    return b(x)\n}\nnet B() {\n    input x: [N, 3]\n    let a = A()\n    return a(x)\n}\nprint(\"before\")\nlet m = A()\n";
    for (name, text) in [("recursive_net", direct), ("mutual_nets", mutual)] {
        let p = script(name, text);
        let path = p.to_str().unwrap();
        // Generous: the run takes a fraction of a second; a hang takes forever.
        let limit = Duration::from_secs(120);
        let o =
            cnn_within(&["check", path], limit).unwrap_or_else(|| panic!("{name}: check hangs"));
        assert!(
            matches!(o.status.code(), Some(0 | 1)),
            "{name}: {}",
            stderr(&o)
        );
        let o = cnn_within(&["run", "--format", "json", path], limit)
            .unwrap_or_else(|| panic!("{name}: run hangs"));
        assert_eq!(o.status.code(), Some(2), "{name}: {}", stderr(&o));
        assert_eq!(stdout(&o), "before\n");
        let reports = json_reports(&o);
        assert_eq!(reports.len(), 1, "{name}: {}", stderr(&o));
        assert_eq!(reports[0]["code"], "E0505");
        let message = reports[0]["message"].as_str().unwrap();
        assert!(message.contains("maximum recursion depth"), "{message}");
    }
}

/// `cnn run` on a script that prints `started` first, once it has printed it: the process
/// and what it printed after.
fn run_until_started(name: &str, text: &str) -> (Child, BufReader<ChildStdout>) {
    let p = script(name, text);
    let mut child = Command::new(env!("CARGO_BIN_EXE_cnn"))
        .args(["run", p.to_str().unwrap()])
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the cnn binary runs");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "started\n");
    (child, out)
}

/// SIGINT to `child`, as Ctrl-C in its terminal would send.
fn interrupt(child: &Child) {
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("the kill command runs");
    assert!(sent.success());
}

/// The exit status of `child`, sending SIGINT every `every` until it exits (at most
/// `limit`), and how many it took.
fn interrupt_until_exit(child: &mut Child, every: Duration, limit: Duration) -> (Option<i32>, u32) {
    let start = Instant::now();
    let mut sent = 0;
    let mut last: Option<Instant> = None;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status.code(), sent);
        }
        assert!(
            start.elapsed() < limit,
            "cnn did not exit after {sent} SIGINTs"
        );
        if last.is_none_or(|t| t.elapsed() >= every) {
            interrupt(child);
            sent += 1;
            last = Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn rest(mut child: Child, mut out: BufReader<ChildStdout>) -> (String, String) {
    let mut stdout = String::new();
    out.read_to_string(&mut stdout).unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (stdout, stderr)
}

#[test]
fn ctrl_c_stops_a_run_at_the_next_statement_with_e0506_and_exit_130() {
    let (mut child, out) = run_until_started(
        "interrupted",
        "print(\"started\")\nlet n = 0\nwhile true {\n    n += 1\n}\n",
    );
    // One SIGINT is enough: a loop looks at the flag on every pass. Any later one (on a
    // slow machine) would only exit the same way.
    let (code, sent) = interrupt_until_exit(
        &mut child,
        Duration::from_secs(30),
        Duration::from_secs(120),
    );
    assert_eq!(code, Some(130));
    assert_eq!(sent, 1);
    let (stdout, stderr) = rest(child, out);
    assert_eq!(stdout, "");
    assert!(
        stderr.contains("E0506") && stderr.contains("interrupted"),
        "{stderr}"
    );
    assert!(stderr.contains("stopped here"), "{stderr}");
}

/// The CPU time `pid` has used, in clock ticks (Linux `/proc/PID/stat`: utime + stime).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc is readable");
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn a_second_ctrl_c_ends_a_run_that_does_not_reach_a_statement() {
    // `max` over a huge range is one builtin call that never looks at the interrupt flag,
    // so a SIGINT while it runs only raises the flag and the next must end the process.
    let (mut child, out) = run_until_started(
        "stuck",
        "print(\"started\")\nlet m = max(0..2**62)\nprint(\"never\")\n",
    );
    // Once the process has spent a quarter second of CPU after printing, it is in `max`
    // (measured in CPU time, so a loaded machine only makes the wait longer).
    let start = Instant::now();
    let printed = cpu_ticks(child.id());
    while cpu_ticks(child.id()) < printed + 25 {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "cnn is not running"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (code, sent) = interrupt_until_exit(
        &mut child,
        Duration::from_millis(200),
        Duration::from_secs(120),
    );
    let (stdout, stderr) = rest(child, out);
    assert_eq!(code, Some(130), "{stderr}");
    assert!(sent >= 2, "{sent}: {stderr}");
    assert_eq!(stdout, "");
    assert!(!stderr.contains("E0506"), "{stderr}");
}

#[test]
fn check_shapes_prints_each_let_with_its_type() {
    let p = script(
        "shapes",
        "let n = 3\nlet x = randn(2, 1, 28, 28)\nlet sizes = [1, 2]\nlet conv = Conv2d(1, 8, 3, padding=1)\nlet h = conv(x)\nnet Enc {\n    input x: [N, 3, H, W]\n    let f = x |> Conv2d(3, 64, 3, padding=1)\n    return f\n}\n",
    );
    let o = cnn(&["check", "--shapes", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "1:5  n : int = 3\n2:5  x : tensor [2, 1, 28, 28]\n3:5  sizes : list of 2\n4:5  conv : layer Conv2d\n5:5  h : tensor [2, 8, 28, 28]\n8:9  f : tensor [N, 64, H, W]\n"
    );
    assert!(stderr(&o).contains("no errors"), "{}", stderr(&o));
}

#[test]
fn check_shapes_still_reports_errors() {
    let p = script("shapes_err", "let a = randn(2, 3)\nlet b = a + randn(4)\n");
    let o = cnn(&["check", "--shapes", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "1:5  a : tensor [2, 3]\n2:5  b : unknown\n");
    assert!(stderr(&o).contains("E0306"), "{}", stderr(&o));
}

#[test]
fn run_no_check_skips_the_checker() {
    let p = script(
        "nocheck",
        "let a = randn(2, 3)\nprint(\"before\")\nlet b = a.reshape(4, 2)\n",
    );
    // Checked: nothing runs, exit 1.
    let o = cnn(&["run", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "");
    // Unchecked: runs up to the failing statement, which reports the same code, exit 2.
    let o = cnn(&["run", "--no-check", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(stdout(&o), "before\n");
    assert!(stderr(&o).contains("E0308"), "{}", stderr(&o));
    // Syntax errors still stop it before anything runs.
    let p = script("nocheck_syntax", "print(\"x\")\nlet y = (1 +\n");
    let o = cnn(&["run", "--no-check", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "");
}

#[test]
fn checker_warnings_come_before_the_output_and_do_not_fail_the_run() {
    let p = script(
        "warn",
        "let y = Conv2d(1, 1, 3, stride=2)(randn(1, 1, 8, 8))\nprint(y.shape)\n",
    );
    let o = cnn(&["run", "--format", "json", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "[1, 1, 3, 3]\n");
    let reports = json_reports(&o);
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0]["code"], "W0301");
    assert_eq!(reports[0]["severity"], "warning");
    let o = cnn(&["check", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("drops the last 1 row and 1 column"));
}

#[test]
fn check_shapes_prints_a_model_with_its_signature() {
    let p = script(
        "shapes_model",
        "net SRCNN(c=1, scale=2) {\n    input x: [N, c, H, W]\n    let f = x |> Conv2d(_, 64, 9) |> ReLU()\n    return f |> ConvTranspose2d(_, c, 2*scale, stride=scale, padding=scale//2)\n}\nlet model = SRCNN(scale=2)\nlet y = model(randn(4, 1, 32, 32))\n",
    );
    let o = cnn(&["check", "--shapes", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "3:9  f : tensor [N, 64, H - 8, W - 8]\n6:5  model : model SRCNN [N, 1, H, W] -> [N, 1, 2*H - 16, 2*W - 16] where H >= 9, W >= 9\n7:5  y : tensor [4, 1, 48, 48]\n"
    );
}

#[test]
fn run_seed_seeds_the_generator_as_seed_does() {
    let draw = script("seeded", "print(randn(3).tolist())\n");
    let inline = script("seeded_inline", "seed(7)\nprint(randn(3).tolist())\n");
    let path = draw.to_str().unwrap();
    let a = cnn(&["run", path, "--seed", "7"]);
    let b = cnn(&["run", path, "--seed", "7"]);
    let c = cnn(&["run", path, "--seed", "8"]);
    let d = cnn(&["run", inline.to_str().unwrap()]);
    assert_eq!(a.status.code(), Some(0), "{}", stderr(&a));
    assert_eq!(stdout(&a), stdout(&b));
    assert_ne!(stdout(&a), stdout(&c));
    assert_eq!(stdout(&a), stdout(&d));
    // Negative seeds are as good as any, as for `seed(-1)`.
    let e = cnn(&["run", path, "--seed", "-1"]);
    assert_eq!(e.status.code(), Some(0), "{}", stderr(&e));
    let o = cnn(&["run", path, "--seed", "many"]);
    assert_eq!(o.status.code(), Some(64));
}

/// `cnn` (or `cnn repl`) with `input` piped to it.
fn repl_piped(args: &[&str], input: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cnn"))
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the cnn binary runs");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn cnn_alone_reads_repl_entries_from_piped_stdin_without_prompts() {
    let input =
        "let x = 2\nfn f(a,\n      b) {\n    return a * b\n}\nf(x, 21)\n:type randn(2, 3).T\n";
    for args in [&[][..], &["repl"][..]] {
        let o = repl_piped(args, input);
        assert_eq!(stdout(&o), "42\ntensor [3, 2]\n", "{}", stderr(&o));
        assert_eq!(stderr(&o), "");
        assert_eq!(o.status.code(), Some(0));
    }
}

#[test]
fn piped_repl_keeps_going_after_an_error_and_exits_one() {
    let o = repl_piped(&[], "let x = 1\nx = x @ x\nx + 1\n");
    assert_eq!(stdout(&o), "2\n");
    assert!(stderr(&o).starts_with("E0207"), "{}", stderr(&o));
    assert_eq!(o.status.code(), Some(1));
    // `cnn` with nothing to read is an empty session, not a usage error.
    assert_eq!(cnn(&[]).status.code(), Some(0));
}

#[test]
fn summary_prints_a_nets_table_built_with_its_defaults() {
    let p = script(
        "summary",
        "net Small(width=4) {\n    input x: [N, 1, H, W]\n    return x |> Conv2d(1, width, 3, padding=1) |> ReLU() |> MaxPool2d(2)\n}\nprint(\"the script's own statements do not run\")\n",
    );
    let path = p.to_str().unwrap();
    let o = cnn(&["summary", path, "Small"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.starts_with("Small(width=4): [N, 1, H, W] -> [N, 4, H//2, W//2]\n"),
        "{out}"
    );
    assert!(out.contains("conv2d_0 (Conv2d)"), "{out}");
    assert!(out.contains("Total params: 40\n"), "{out}");
    assert!(!out.contains("do not run"), "{out}");
    let o = cnn(&["summary", path, "Small", "--input", "2,1,8,8"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("[2, 4, 4, 4]"), "{out}");
    assert!(out.contains("Total MACs: 4,608\n"), "{out}");
    // A net that is not there, and a bad shape, are usage errors.
    let o = cnn(&["summary", path, "Big"]);
    assert_eq!(o.status.code(), Some(64));
    assert!(stderr(&o).contains("its nets: Small"), "{}", stderr(&o));
    let o = cnn(&["summary", path, "Small", "--input", "2,x"]);
    assert_eq!(o.status.code(), Some(64));
    // An input the net cannot take is the run-time diagnostic.
    let o = cnn(&["summary", path, "Small", "--input", "1,3,8,8"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("E0315"), "{}", stderr(&o));
}

/// Runs `script` with a 64 MiB memory budget and expects it refused with E0503 naming
/// `op`, as a clean run-time error (exit 2, no signal), before `unreachable` prints.
fn refused_under_64m(name: &str, text: &str, op: &str) {
    let p = script(name, text);
    let o = cnn(&["run", "--max-memory", "64M", p.to_str().unwrap()]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{name}: {:?}\n{err}", o.status);
    assert!(err.contains("E0503"), "{name}: {err}");
    assert!(err.contains(op), "{name} should name {op}: {err}");
    assert!(!stdout(&o).contains("unreachable"), "{name}");
}

#[test]
fn max_memory_refuses_each_growing_allocation_with_e0503() {
    let cases = [
        (
            "mem_add",
            "let a = ones(4000000)\nlet b = a + 1\nlet c = a + 2\nlet d = a + 3\nlet e = a + 4\nprint(\"unreachable\")\n",
            "add:",
        ),
        (
            "mem_clone",
            "let a = ones(6000000)\nlet b = a.clone()\nlet c = a.clone()\nprint(\"unreachable\")\n",
            "clone:",
        ),
        (
            "mem_conv",
            "let x = ones(1, 1, 3000, 3000)\nlet y = conv2d(x, ones(8, 1, 3, 3))\nprint(\"unreachable\")\n",
            "conv2d:",
        ),
        (
            "mem_linspace",
            "let t = linspace(0, 1, 2**31)\nprint(\"unreachable\")\n",
            "linspace:",
        ),
        (
            "mem_tolist",
            "let l = ones(1, 1).expand(3000, 3000).tolist()\nprint(\"unreachable\")\n",
            "tolist:",
        ),
        (
            "mem_list",
            "let l = [0]\nwhile true { l = l + l }\nprint(\"unreachable\")\n",
            "a list of",
        ),
        (
            "mem_string",
            "let s = \"ab\"\nwhile true { s = s + s }\nprint(\"unreachable\")\n",
            "a string of",
        ),
    ];
    for (name, text, op) in cases {
        refused_under_64m(name, text, op);
    }
    // The audit's case as written: the expanded view (3.6 GB once copied) fits an 8 GiB
    // budget, its 900 million list items do not, and nothing is allocated before the refusal.
    let p = script(
        "mem_tolist_big",
        "let l = ones(1, 1).expand(30000, 30000).tolist()\nprint(\"unreachable\")\n",
    );
    let o = cnn(&["run", "--max-memory", "8G", p.to_str().unwrap()]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{:?}\n{err}", o.status);
    assert!(err.contains("E0503") && err.contains("tolist:"), "{err}");
}

#[test]
fn max_memory_counts_live_tensors_and_frees_dropped_ones() {
    // 40 MB each: five in turn fit in 64 MiB because each is freed when `total` returns;
    // two alive at once do not.
    let p = script(
        "mem_live",
        "fn total() {\n    let t = zeros(10000000)\n    return t.sum().item()\n}\nfor i in 0..5 { print(total()) }\nlet kept = zeros(10000000)\nlet more = zeros(10000000)\nprint(\"unreachable\")\n",
    );
    let o = cnn(&["run", "--max-memory", "64M", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(stdout(&o), "0.0\n".repeat(5));
    let err = stderr(&o);
    assert!(err.contains("E0503") && err.contains(":7:12]"), "{err}");
}

#[test]
fn max_memory_is_documented_and_checked() {
    let help = stdout(&cnn(&["run", "--help"]));
    assert!(help.contains("--max-memory <SIZE>"), "{help}");
    let p = script("mem_ok", "print(zeros(1000).sum().item())\n");
    for bad in ["0", "64X", "5Q", "1.5G"] {
        let o = cnn(&["run", "--max-memory", bad, p.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(64), "--max-memory {bad}");
        assert!(stderr(&o).contains("--max-memory"), "{}", stderr(&o));
    }
    let o = cnn(&["--max-memory", "1G", "run", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "0.0\n");
}

/// Under an address-space limit smaller than the request but with the default budget (the
/// machine's available memory), the request is still refused, not an abort: it goes
/// through `try_reserve`.
#[cfg(unix)]
#[test]
fn an_allocation_the_system_refuses_is_e0503_not_an_abort() {
    let p = script(
        "mem_ulimit",
        "let t = linspace(0, 1, 2**31)\nprint(\"unreachable\")\n",
    );
    let o = Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 2000000 && exec \"$0\" run \"$1\"")
        .arg(env!("CARGO_BIN_EXE_cnn"))
        .arg(&p)
        .env("NO_COLOR", "1")
        .output()
        .expect("sh runs");
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{:?}\n{err}", o.status);
    assert!(err.contains("E0503") && err.contains("linspace"), "{err}");
}

/// Every control character, in a script's file name and in a string literal that ends up
/// in a message, gives JSON reports a strict parser reads; a raw NUL in a path is E0501.
#[test]
fn json_reports_escape_every_control_character() {
    let dir = std::env::temp_dir().join(format!("cnn-cli-{}-controls", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for byte in 0u8..32 {
        let c = char::from(byte);
        // A file name cannot hold NUL or a newline would end the literal: those go only
        // through one of the two routes.
        let name = if byte == 0 {
            "nul.cnn".to_string()
        } else {
            format!("s{c}t.cnn")
        };
        let literal = if byte == b'\n' {
            "a".to_string()
        } else {
            format!("a{c}b")
        };
        let path = dir.join(&name);
        std::fs::write(
            &path,
            format!("print(q)\nlet x = load_npy(\"{literal}.npy\")\n"),
        )
        .unwrap();
        let p = path.to_str().unwrap();
        let check = cnn(&["check", "--format", "json", p]);
        let run = cnn(&["run", "--no-check", "--format", "json", p]);
        for (o, code) in [(&check, "E0201"), (&run, "E0201")] {
            let reports = json_reports(o);
            assert_eq!(reports.len(), 1, "byte {byte}: {}", stderr(o));
            assert_eq!(reports[0]["code"], code, "byte {byte}");
            assert_eq!(reports[0]["filename"], p, "byte {byte}");
        }
        std::fs::write(&path, format!("let x = load_npy(\"{literal}.npy\")\n")).unwrap();
        let run = cnn(&["run", "--format", "json", p]);
        let reports = json_reports(&run);
        assert_eq!(reports.len(), 1, "byte {byte}: {}", stderr(&run));
        assert_eq!(reports[0]["code"], "E0501", "byte {byte}");
        let message = reports[0]["message"].as_str().unwrap();
        assert!(message.contains(&format!("`{literal}.npy`")), "{message:?}");
    }
}

/// Output that cannot be written (`/dev/full`) is exit 74 with a message, never a panic
/// nor a silent success.
#[cfg(target_os = "linux")]
#[test]
fn output_that_cannot_be_written_exits_74() {
    let p = script("full", "let x = 1\nprint(x)\n");
    let net = script(
        "full_net",
        "net N {\n    input x: [N, 1, 4, 4]\n    return x |> Conv2d(1, 2, 3)\n}\n",
    );
    let p = p.to_str().unwrap();
    let net = net.to_str().unwrap();
    let commands: [&[&str]; 5] = [
        &["explain", "E0302"],
        &["run", p],
        &["check", "--shapes", p],
        &["summary", net, "N"],
        &["repl"],
    ];
    for args in commands {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_cnn"))
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(full)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            let _ = stdin.write_all(b"1 + 1\n");
        }
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(74), "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("cannot write the output"),
            "{args:?}: {}",
            stderr(&o)
        );
    }
}
