//! The `cnn` binary end to end: subcommands, exit codes, JSON diagnostics, `explain`.

use std::path::PathBuf;
use std::process::{Command, Output};

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
