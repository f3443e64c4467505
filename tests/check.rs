//! The static checker against the engine: no false positives on valid programs, the
//! conformance mistakes caught with their code and line, and a differential property test
//! (whatever the checker accepts runs, with the shape it predicted; whatever the engine
//! rejects, the checker rejects with the same code).

use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;

use cnn::check::ty::Ty;
use cnn::eval::Interpreter;
use cnn::report::{Format, Problem};
use cnn::source::SourceFile;
use proptest::prelude::*;

/// Errors the checker reports, as (code, lines of its labels).
fn check_errors(name: &str, text: &str) -> Vec<(String, Vec<usize>)> {
    let source = SourceFile::new(name, text);
    match cnn::check(&source) {
        Ok(_) => Vec::new(),
        Err(problems) => problems
            .iter()
            .filter(|p| p.is_error())
            .map(|p| (p.code().unwrap_or_default(), p.lines()))
            .collect(),
    }
}

fn render(problems: &[Problem]) -> String {
    cnn::report::render_all(problems, Format::Plain { width: 100 })
}

/// Asserts that `text` checks with no error and runs with exit code 0.
fn assert_valid(name: &str, text: &str) {
    let source = SourceFile::new(name, text);
    if let Err(problems) = cnn::check(&source) {
        let errors: Vec<Problem> = problems.into_iter().filter(|p| p.is_error()).collect();
        assert!(
            errors.is_empty(),
            "{name}: false positive\n{text}\n{}",
            render(&errors)
        );
    }
    let t = cnn::run_captured(&source);
    assert_eq!(
        t.exit_code,
        0,
        "{name}: did not run clean\n{text}\n{}",
        render(&t.problems)
    );
}

#[test]
fn examples_check_and_run_clean() {
    let mut n = 0;
    for entry in std::fs::read_dir("examples").unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "cnn") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.to_string_lossy().to_string();
        cnn::on_big_stack(move || assert_valid(&name, &text));
        n += 1;
    }
    assert!(n >= 4);
}

/// Valid programs; the checker must report nothing about any of them.
const VALID: &[(&str, &str)] = &[
    (
        "literal",
        "let t = tensor([[1, 2], [3, 4]])\nassert t.shape == [2, 2]\n",
    ),
    (
        "constructors",
        "let a = zeros(2, 3)\nlet b = ones([2, 3])\nlet c = full([2, 3], 7.0)\nlet d = rand(2, 3) + randn(2, 3)\nassert (a + b + c + d).shape == [2, 3]\n",
    ),
    (
        "arange",
        "let a = arange(6)\nlet b = arange(1, 7, 2)\nassert a.shape == [6]\nassert b.shape == [3]\n",
    ),
    (
        "like",
        "let a = randn(3, 4)\nlet b = zeros_like(a) + ones_like(a) + randn_like(a)\nassert b.shape == [3, 4]\n",
    ),
    (
        "reshape_infer",
        "let a = arange(24)\nlet b = a.reshape(2, -1, 4)\nassert b.shape == [2, 3, 4]\nlet c = a.view(4, 6)\nassert c.shape == [4, 6]\n",
    ),
    (
        "views",
        "let a = randn(2, 3, 4)\nlet b = a.transpose(0, 2)\nlet c = a.permute(2, 0, 1)\nlet d = a.unsqueeze(0).squeeze(0)\nlet e = a.flatten()\nassert b.shape == [4, 3, 2]\nassert c.shape == [4, 2, 3]\nassert d.shape == [2, 3, 4]\nassert e.shape == [24]\n",
    ),
    (
        "view_shares",
        "let a = zeros(4)\nlet b = a.view(2, 2)\nb[0, 0] = 5\nassert a[0].item() == 5\nassert shares_storage(a, b)\n",
    ),
    (
        "broadcast",
        "let a = randn(4, 1, 3)\nlet b = randn(5, 1)\nlet c = a + b\nassert c.shape == [4, 5, 3]\nlet d = a * 2 - 1\nassert d.shape == [4, 1, 3]\n",
    ),
    (
        "broadcast_scalar_tensor",
        "let a = randn(3, 2)\nlet s = tensor(2.0)\nassert (a / s).shape == [3, 2]\n",
    ),
    (
        "matmul",
        "let a = randn(2, 3)\nlet b = randn(3, 5)\nassert (a @ b).shape == [2, 5]\nlet v = randn(3)\nassert (a @ v).shape == [2]\nlet bt = randn(7, 2, 3) @ randn(3, 4)\nassert bt.shape == [7, 2, 4]\n",
    ),
    (
        "transpose_t",
        "let a = randn(2, 3)\nassert a.T.shape == [3, 2]\nassert a.t().shape == [3, 2]\nassert (a @ a.T).shape == [2, 2]\n",
    ),
    (
        "expand",
        "let a = randn(3, 1)\nlet b = a.expand(3, 4)\nassert b.shape == [3, 4]\n",
    ),
    (
        "reductions",
        "let a = randn(2, 3)\nassert a.sum().shape == []\nassert a.sum(dim=1).shape == [2]\nassert a.mean(dim=0, keepdim=true).shape == [1, 3]\nassert a.argmax(dim=1).shape == [2]\n",
    ),
    (
        "indexing",
        "let a = randn(4, 5)\nassert a[0].shape == [5]\nassert a[:, 1].shape == [4]\nassert a[1:3].shape == [2, 5]\n",
    ),
    (
        "cat",
        "let a = randn(2, 3)\nlet b = randn(4, 3)\nassert cat([a, b], 0).shape == [6, 3]\nassert cat([a, a], 1).shape == [2, 6]\n",
    ),
    (
        "stack",
        "let a = randn(2, 3)\nassert stack([a, a, a], 0).shape == [3, 2, 3]\n",
    ),
    (
        "conv2d",
        "let x = randn(2, 3, 16, 16)\nlet y = Conv2d(3, 8, 3, stride=2, padding=1)(x)\nassert y.shape == [2, 8, 8, 8]\n",
    ),
    (
        "conv2d_unbatched",
        "let x = randn(3, 9, 9)\nlet y = Conv2d(3, 4, 3)(x)\nassert y.shape == [4, 7, 7]\n",
    ),
    (
        "conv2d_same",
        "let x = randn(1, 2, 10, 7)\nlet y = Conv2d(2, 4, [3, 5], padding=\"same\")(x)\nassert y.shape == [1, 4, 10, 7]\nlet z = Conv2d(2, 4, 3, padding=\"valid\")(x)\nassert z.shape == [1, 4, 8, 5]\n",
    ),
    (
        "conv2d_groups_dilation",
        "let x = randn(1, 4, 12, 12)\nlet y = Conv2d(4, 8, 3, dilation=2, groups=2)(x)\nassert y.shape == [1, 8, 8, 8]\n",
    ),
    (
        "conv_transpose",
        "let x = randn(1, 4, 5, 5)\nlet y = ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1)(x)\nassert y.shape == [1, 2, 10, 10]\n",
    ),
    (
        "pools",
        "let x = randn(1, 2, 9, 9)\nassert MaxPool2d(2)(x).shape == [1, 2, 4, 4]\nassert MaxPool2d(2, ceil_mode=true)(x).shape == [1, 2, 5, 5]\nassert AvgPool2d(3, stride=2, padding=1)(x).shape == [1, 2, 5, 5]\n",
    ),
    (
        "linear",
        "let x = randn(5, 7)\nlet y = Linear(7, 3)(x)\nassert y.shape == [5, 3]\nlet z = Linear(3, 2, bias=false)(randn(2, 4, 3))\nassert z.shape == [2, 4, 2]\n",
    ),
    (
        "batchnorm",
        "let x = randn(4, 3, 5, 5)\nlet y = BatchNorm2d(3)(x)\nassert y.shape == [4, 3, 5, 5]\n",
    ),
    (
        "activations",
        "let x = randn(2, 6)\nlet y = Softmax(1)(LeakyReLU(0.2)(Tanh()(Sigmoid()(ReLU()(Identity()(x))))))\nassert y.shape == [2, 6]\n",
    ),
    (
        "flatten_dropout",
        "let x = randn(2, 3, 4, 4)\nlet y = Dropout(0.5)(Flatten()(x))\nassert y.shape == [2, 48]\n",
    ),
    (
        "upsample_pixelshuffle",
        "let x = randn(1, 8, 3, 3)\nassert Upsample(scale_factor=2)(x).shape == [1, 8, 6, 6]\nassert PixelShuffle(2)(x).shape == [1, 2, 6, 6]\n",
    ),
    (
        "functional",
        "let x = randn(1, 2, 6, 6)\nlet w = randn(3, 2, 3, 3)\nassert conv2d(x, w, padding=1).shape == [1, 3, 6, 6]\nassert max_pool2d(x, 2).shape == [1, 2, 3, 3]\nassert relu(x).shape == [1, 2, 6, 6]\nassert softmax(x, 1).shape == [1, 2, 6, 6]\n",
    ),
    (
        "sequential",
        "let m = Sequential(Conv2d(1, 4, 3, padding=1), ReLU(), MaxPool2d(2), Flatten(), Linear(64, 10))\nassert m(randn(2, 1, 8, 8)).shape == [2, 10]\n",
    ),
    (
        "infer_underscore",
        "let m = Sequential(Conv2d(3, 8, 3), ReLU(), Conv2d(_, 4, 1), Flatten(), Linear(_, 2))\nlet y = m(randn(1, 3, 6, 6))\nassert y.shape == [1, 2]\n",
    ),
    (
        "pipe",
        "let x = randn(1, 1, 8, 8)\nlet y = x |> Conv2d(1, 2, 3) |> ReLU() |> Flatten()\nassert y.shape == [1, 72]\n",
    ),
    (
        "loop_rebind",
        "let x = randn(1, 3, 32, 32)\nfor i in 0..3 {\n    x = MaxPool2d(2)(x)\n}\nassert x.shape == [1, 3, 4, 4]\n",
    ),
    (
        "loop_rebind_channels",
        "let h = randn(1, 1, 8, 8)\nlet c = 1\nfor i in 0..3 {\n    h = Conv2d(c, c * 2, 3, padding=1)(h)\n    c = c * 2\n}\nassert h.shape == [1, 8, 8, 8]\n",
    ),
    (
        "branch_rebind",
        "let flag = randn(1).item() > 0\nlet x = randn(2, 3)\nif flag { x = x.reshape(3, 2) } else { x = x.T }\nassert x.shape == [3, 2]\n",
    ),
    (
        "branch_different_shapes",
        "let x = randn(4)\nif randn(1).item() > 10 { x = randn(2, 2) }\nlet y = x.reshape(-1)\nassert y.numel() == 4\n",
    ),
    (
        "while_loop",
        "let x = randn(1, 1, 64, 64)\nwhile x.shape[2] > 4 { x = AvgPool2d(2)(x) }\nassert x.shape == [1, 1, 4, 4]\n",
    ),
    (
        "fn_shapes",
        "fn block(x, c) { return x |> Conv2d(_, c, 3, padding=1) |> ReLU() }\nlet y = block(randn(1, 2, 5, 5), 6)\nassert y.shape == [1, 6, 5, 5]\n",
    ),
    (
        "fn_recursive",
        "fn down(x, n) { if n == 0 { return x } return down(MaxPool2d(2)(x), n - 1) }\nassert down(randn(1, 1, 16, 16), 2).shape == [1, 1, 4, 4]\n",
    ),
    (
        "autograd",
        "let w = randn(3, requires_grad=true)\nlet loss = (w * w).sum()\nloss.backward()\nassert w.grad.shape == [3]\n",
    ),
    (
        "sgd_training",
        "let m = Linear(2, 1)\nlet opt = SGD(m.parameters(), lr=0.1)\nlet x = randn(8, 2)\nlet t = randn(8, 1)\nfor i in 0..3 {\n    opt.zero_grad()\n    let loss = mse_loss(m(x), t)\n    loss.backward()\n    opt.step()\n}\n",
    ),
    (
        "adam_training",
        "let m = Sequential(Conv2d(1, 2, 3), Flatten(), Linear(_, 2))\nlet x = randn(4, 1, 5, 5)\nm(x)\nlet opt = AdamW(m.parameters(), lr=0.01)\nlet loss = cross_entropy(m(x), tensor([0, 1, 0, 1]))\nloss.backward()\nopt.step()\n",
    ),
    (
        "no_grad_inplace",
        "let w = randn(3, requires_grad=true)\nwith no_grad {\n    w.add_(1)\n    w -= 0.5\n    w.mul_(2)\n}\nassert w.requires_grad\n",
    ),
    (
        "inplace_plain",
        "let a = zeros(2, 2)\na.fill_(3)\na += 1\na.clamp_(0, 2)\nassert a.sum().item() == 8\n",
    ),
    (
        "inplace_copy",
        "let a = zeros(2, 3)\na.copy_(ones(2, 3))\na.zero_()\na.normal_()\na.uniform_(0, 1)\nassert a.shape == [2, 3]\n",
    ),
    (
        "detach",
        "let w = randn(3, requires_grad=true)\nlet d = (w * 2).detach()\nd.add_(1)\nassert not d.requires_grad\n",
    ),
    (
        "retain_grad",
        "let x = randn(3, requires_grad=true)\nlet y = x * 2\ny.retain_grad()\ny.sum().backward()\nassert y.grad.shape == [3]\n",
    ),
    (
        "backward_retain",
        "let x = ones(2, requires_grad=true)\nlet y = (x * x).sum()\ny.backward(retain_graph=true)\ny.backward()\nassert x.grad[0].item() == 4\n",
    ),
    (
        "layer_fields",
        "let c = Conv2d(2, 4, 3)\nassert c.weight.shape == [4, 2, 3, 3]\nassert c.bias.shape == [4]\nlet l = Linear(5, 6)\nassert l.weight.shape == [6, 5]\n",
    ),
    (
        "losses",
        "let a = randn(4, 3)\nlet b = randn(4, 3)\nassert mse_loss(a, b).shape == []\nassert l1_loss(a, b).shape == []\nassert binary_cross_entropy_with_logits(a, b).shape == []\n",
    ),
    (
        "lists_ints",
        "let sizes = [1, 2, 3]\nsizes = sizes + [4]\nassert len(sizes) == 4\nlet s = 0\nfor v in sizes { s += v }\nassert s == 10\n",
    ),
    (
        "shape_from_tensor",
        "let x = randn(2, 3)\nlet n = x.shape[0]\nlet y = zeros(n, 5)\nassert y.shape == [2, 5]\n",
    ),
    (
        "squeeze_dim",
        "let a = randn(1, 3, 1)\nassert a.squeeze().shape == [3]\nassert a.squeeze(2).shape == [1, 3]\nassert a.unsqueeze(-1).shape == [1, 3, 1, 1]\n",
    ),
];

/// Valid programs about fields, methods and files; appended to [`VALID`] by its test.
const VALID_MEMBERS_AND_FILES: &[(&str, &str)] = &[
    (
        "members_that_exist",
        "let x = randn(2, 3, requires_grad=true)\nlet l = Linear(3, 4)\nlet o = SGD(l.parameters(), lr=0.1)\nassert x.ndim == 2 and x.T.shape == [3, 2]\nlet y = l(x).sum()\ny.backward()\no.step()\no.zero_grad()\nassert l.weight.shape == [4, 3] and x.grad.shape == [2, 3]\n",
    ),
    (
        "npy_round_trip",
        "let t = randn(2, 3)\nsave_npy(\"/tmp/cnn_check_valid_round_trip.npy\", t)\nlet back = load_npy(\"/tmp/cnn_check_valid_round_trip.npy\")\nassert_close(back, t)\nassert back.shape == [2, 3]\n",
    ),
    (
        "broadcast_symbolic_ok",
        "fn f(x) { return x + x * 2 }\nassert f(randn(2, 3)).shape == [2, 3]\nlet v = randn(4)\nassert (randn(3, 4) @ v).shape == [3]\nassert (v @ randn(2, 4, 5)).shape == [2, 5]\nassert (randn(2, 1, 3, 4) @ randn(5, 4, 6)).shape == [2, 5, 3, 6]\n",
    ),
];

#[test]
fn valid_member_and_file_programs_check_and_run_clean() {
    for &(name, text) in VALID_MEMBERS_AND_FILES {
        cnn::on_big_stack(move || assert_valid(name, text));
    }
}

/// A literal path to an existing `.npy` gives the checker its shape, read from the header.
#[test]
fn load_npy_of_a_literal_path_has_the_file_shape() {
    let path = std::env::temp_dir().join("cnn_check_header_shape.npy");
    let t = cnn::tensor::Tensor::from_vec(vec![0.0; 24], &[2, 3, 4]).unwrap();
    std::fs::write(&path, cnn::tensor::npy::encode(&t)).unwrap();
    let text = format!(
        "let x = load_npy(\"{}\")\nlet y = load_npy(\"/no/such/file.npy\")\n",
        path.display()
    );
    let source = SourceFile::new("npy.cnn", text);
    let program = cnn::syntax::parse(&source).unwrap();
    let found = cnn::check::check_program(&program);
    assert!(found.errors.is_empty(), "{:?}", found.errors);
    let shapes: Vec<String> = found.lets.iter().map(|(_, _, t)| t.to_string()).collect();
    assert_eq!(shapes, ["tensor [2, 3, 4]", "tensor"]);
}

/// An npy file with the header text `dict` (padded as numpy pads it) and `data` bytes.
fn npy_file(dict: &str, data: &[u8]) -> Vec<u8> {
    let mut header = dict.to_string();
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(data);
    bytes
}

/// The checker reads a shape only from a regular file whose header the run would accept and
/// whose size fits it: never from a FIFO (which would block), never a shape no array has.
#[test]
fn load_npy_shapes_come_only_from_files_the_run_would_load() {
    let dir = std::env::temp_dir().join(format!("cnn-check-npy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dict =
        |shape: &str| format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    let many = format!("({})", vec!["1"; 65].join(", "));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("good.npy", npy_file(&dict("(2, 1)"), &[0; 8])),
        ("many_dims.npy", npy_file(&dict(&many), &[0; 4])),
        (
            "huge_dim.npy",
            npy_file(&dict("(9223372036854775808, 0)"), &[]),
        ),
        ("short.npy", npy_file(&dict("(2, 1)"), &[0; 4])),
    ];
    let mut text = String::new();
    for (name, bytes) in &cases {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        text.push_str(&format!("let x = load_npy(\"{}\")\n", path.display()));
    }
    let fifo = dir.join("fifo.npy");
    let _ = std::fs::remove_file(&fifo);
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo {}", fifo.display());
    text.push_str(&format!("let x = load_npy(\"{}\")\n", fifo.display()));
    let source = SourceFile::new("npy.cnn", text.clone());
    let program = cnn::syntax::parse(&source).unwrap();
    let found = cnn::check::check_program(&program);
    assert!(found.errors.is_empty(), "{:?}", found.errors);
    let shapes: Vec<String> = found.lets.iter().map(|(_, _, t)| t.to_string()).collect();
    let expected = ["tensor [2, 1]", "tensor", "tensor", "tensor", "tensor"];
    assert_eq!(shapes, expected, "{text}");
    // The run refuses the same headers (E0502).
    for (name, _) in &cases[1..3] {
        let text = format!("let x = load_npy(\"{}\")\n", dir.join(name).display());
        let t = cnn::run_captured(&SourceFile::new("npy.cnn", text.clone()));
        let codes: Vec<String> = t.problems.iter().filter_map(|p| p.code()).collect();
        assert_eq!(codes, ["E0502"], "{text}");
    }
}

/// A field or method that does not exist is reported by the checker, with the run-time
/// words; one that exists is not.
#[test]
fn missing_members_are_reported_before_running() {
    let cases = [
        (
            "let x = randn(2, 3)\nprint(x.shap)\n",
            "tensor has no field or method `shap`",
            "did you mean `shape`?",
        ),
        (
            "let x = randn(2, 3)\nlet y = x.resize(3, 2)\n",
            "tensor has no field or method `resize`",
            "",
        ),
        (
            "let l = Linear(2, 3)\nprint(l.weights)\n",
            "layer has no field or method `weights`",
            "did you mean `weight`?",
        ),
        (
            "let n = 3\nprint(n.shape)\n",
            "int has no field or method `shape`",
            "a int has no fields or methods",
        ),
        (
            "let l = [1, 2]\nprint(l.append(3))\n",
            "list has no field or method `append`",
            "lists, strings and ranges",
        ),
    ];
    for (text, message, help) in cases {
        let source = SourceFile::new("m.cnn", text);
        let Err(checked) = cnn::check(&source) else {
            panic!("nothing reported:\n{text}");
        };
        let run = cnn::on_big_stack({
            let source = source.clone();
            move || engine_view(&source)
        });
        assert_eq!(run, Err("E0202".to_string()), "{text}");
        let rendered = render(&checked);
        assert_eq!(checked.len(), 1, "{rendered}");
        assert_eq!(checked[0].code().as_deref(), Some("E0202"), "{rendered}");
        assert!(
            rendered.contains(message) && rendered.contains(help),
            "{rendered}"
        );
    }
}

/// Valid programs with nets. The engine cannot run nets yet (it reports E0505 "needs tensor
/// support"), so these must check with no error, and the run may fail only that way.
const VALID_NETS: &[(&str, &str)] = &[
    (
        "net_symbolic",
        "net Enc(c=1) {\n    input x: [N, c, H, W]\n    return x |> Conv2d(c, 8, 3, padding=1) |> ReLU() |> MaxPool2d(2)\n}\nlet e = Enc(c=3)\nassert e(randn(2, 3, 16, 16)).shape == [2, 8, 8, 8]\nassert e(randn(1, 3, 10, 6)).shape == [1, 8, 5, 3]\n",
    ),
    (
        "net_skip",
        "net Res {\n    input x: [N, 4, H, W]\n    let h = x |> Conv2d(4, 4, 3, padding=1) |> ReLU()\n    return x + h\n}\nassert Res()(randn(2, 4, 7, 7)).shape == [2, 4, 7, 7]\n",
    ),
    (
        "net_cat_unet",
        "net DownUp {\n    input x: [N, 8, H, W]\n    let d = x |> Conv2d(8, 8, 3, stride=2, padding=1)\n    let u = d |> ConvTranspose2d(8, 8, 2, stride=2)\n    return u\n}\nassert DownUp()(randn(1, 8, 6, 6)).shape == [1, 8, 6, 6]\n",
    ),
    (
        "net_calls_net",
        "net A { input x: [N, 2, H, W]\n return x |> Conv2d(2, 4, 1) }\nnet B { input x: [N, 2, H, W]\n let a = A()\n return a(x) |> ReLU() }\nassert B()(randn(3, 2, 4, 4)).shape == [3, 4, 4, 4]\n",
    ),
    (
        "net_linear_head",
        "net Clf {\n    input x: [N, 1, 28, 28]\n    let h = x |> Conv2d(1, 8, 3) |> ReLU() |> MaxPool2d(2)\n    return h |> Flatten() |> Linear(8 * 13 * 13, 10)\n}\nassert Clf()(randn(2, 1, 28, 28)).shape == [2, 10]\n",
    ),
];

#[test]
fn valid_nets_check_clean() {
    for &(name, text) in VALID_NETS {
        cnn::on_big_stack(move || {
            let errors = check_errors(name, text);
            assert!(
                errors.is_empty(),
                "{name}: false positive {errors:?}\n{text}"
            );
            let t = cnn::run_captured(&SourceFile::new(name, text));
            if t.exit_code != 0 {
                let messages: Vec<String> = t.problems.iter().map(|p| p.message()).collect();
                assert!(
                    messages
                        .iter()
                        .all(|m| m.contains("running `net` definitions is not supported yet")),
                    "{name}: {}",
                    render(&t.problems)
                );
            }
        });
    }
}

#[test]
fn valid_programs_check_and_run_clean() {
    assert!(VALID.len() + VALID_NETS.len() >= 40);
    let mut failed = Vec::new();
    for &(name, text) in VALID {
        let outcome =
            std::panic::catch_unwind(|| cnn::on_big_stack(move || assert_valid(name, text)));
        if outcome.is_err() {
            failed.push(name);
        }
    }
    assert!(failed.is_empty(), "failed: {failed:?}");
}

/// The conformance mistakes, rewritten: (name, program, code, line of its first label).
const MISTAKES: &[(&str, &str, &str, usize)] = &[
    (
        "transposed_overcrop",
        "let m = tensor([[5, 6, 7], [8, 9, 1], [2, 3, 4]]).reshape(1, 1, 3, 3)\nlet up = ConvTranspose2d(1, 1, 1, padding=2)(m)\n",
        "E0302",
        2,
    ),
    (
        "kernel_too_big",
        "let tiny = ones(2, 1, 4, 4)\n\nlet out = Conv2d(1, 2, 7)(tiny)\n",
        "E0301",
        3,
    ),
    (
        "channels",
        "let photo = randn(2, 4, 16, 16)\nlet layer = Conv2d(1, 6, 5)\nlet out = layer(photo)\n",
        "E0303",
        3,
    ),
    (
        "linear_features",
        "net Head {\n    input x: [N, 2, 10, 10]\n    let h = x |> Conv2d(2, 4, 5) |> Flatten()\n    return h |> Linear(50, 3)\n}\n",
        "E0305",
        4,
    ),
    (
        "rank",
        "let v = arange(9).reshape(3, 3)\nlet out = MaxPool2d(2)(v.reshape(9))\n",
        "E0304",
        2,
    ),
    (
        "reshape_count",
        "let a = randn(5, 2)\nlet b = a.view(3, 3)\n",
        "E0308",
        2,
    ),
    (
        "broadcast",
        "let p = randn(3, 5)\nlet q = randn(3, 4)\n\nlet r = p * q\n",
        "E0306",
        4,
    ),
    (
        "undefined",
        "let bias = zeros(4)\nlet out = randn(4) + biass\n",
        "E0201",
        2,
    ),
    (
        "keyword",
        "let pool = MaxPool2d(2, strides=2)\n",
        "E0204",
        1,
    ),
    (
        "ragged",
        "let m = tensor([\n    [1, 2],\n    [3],\n])\n",
        "E0310",
        3,
    ),
    ("groups", "let c = Conv2d(6, 9, 1, groups=4)\n", "E0311", 1),
    (
        "output_padding",
        "let up = ConvTranspose2d(2, 2, 3, stride=3, output_padding=3)\n",
        "E0311",
        1,
    ),
    (
        "symbolic_skip",
        "net Pyramid {\n    input x: [N, 4, H, W]\n    let d = x |> MaxPool2d(2)\n    let u = d |> Upsample(scale_factor=2)\n    let v = d |> ConvTranspose2d(4, 4, 2, stride=2)\n    return cat([x, v], 1)\n}\n",
        "E0312",
        6,
    ),
    (
        "backward_no_grad",
        "let a = ones(4)\nlet b = a.exp().sum()\nb.backward()\n",
        "E0401",
        3,
    ),
    (
        "inplace_leaf",
        "let p = zeros(2, requires_grad=true)\np.mul_(3)\n",
        "E0403",
        2,
    ),
    (
        "net_input",
        "net Gray {\n    input x: [N, 1, H, W]\n    return x |> Conv2d(1, 2, 3)\n}\nlet g = Gray()\nlet y = g(randn(2, 3, 9, 9))\n",
        "E0315",
        6,
    ),
    (
        "dim_range",
        "let m = randn(4, 4)\nlet s = m.unsqueeze(-4)\n",
        "E0309",
        2,
    ),
    (
        "unclosed",
        "let y = Linear(3, 4\nlet z = 2\n",
        "E0101|E0102",
        2,
    ),
];

#[test]
fn mistakes_are_caught_before_running() {
    for &(name, text, code, line) in MISTAKES {
        let found = check_errors(name, text);
        assert!(!found.is_empty(), "{name}: nothing reported\n{text}");
        let (got, lines) = &found[0];
        assert!(
            code.split('|').any(|c| c == got),
            "{name}: expected {code}, got {found:?}\n{text}"
        );
        if !code.contains('|') {
            assert_eq!(lines.first(), Some(&line), "{name}: {found:?}\n{text}");
        }
    }
}

#[test]
fn two_independent_mistakes_are_both_reported() {
    let text = "let w = convweights\nlet x = randn(1, 5, 8, 8)\nlet y = Conv2d(2, 4, 3)(x)\n";
    let found = check_errors("two", text);
    let codes: Vec<(&str, usize)> = found
        .iter()
        .map(|(c, l)| (c.as_str(), l.first().copied().unwrap_or(0)))
        .collect();
    assert_eq!(codes, [("E0201", 1), ("E0303", 3)], "{found:?}");
}

// ---------------------------------------------------------------------------------------
// Differential property: the checker against the engine.

#[derive(Clone, Default)]
struct Buffer(Rc<RefCell<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What the checker says about a script: its error codes and the type of the last `let`.
fn checker_view(source: &SourceFile) -> (Vec<String>, Option<Ty>) {
    let program = cnn::syntax::parse(source).expect("generated scripts parse");
    let found = cnn::check::check_program(&program);
    let codes = found
        .errors
        .into_iter()
        .map(|e| Problem::new(e, source).code().unwrap_or_default())
        .collect();
    let last = found.lets.last().map(|(_, _, t)| t.clone());
    (codes, last)
}

/// What the engine alone (no checker) does: printed output, or the code it failed with.
fn engine_view(source: &SourceFile) -> Result<String, String> {
    let program = cnn::syntax::parse(source).expect("generated scripts parse");
    let buffer = Buffer::default();
    let mut interpreter = Interpreter::new(Box::new(buffer.clone()));
    let outcome = interpreter.run(&program);
    drop(interpreter);
    let out = String::from_utf8_lossy(&buffer.0.borrow()).into_owned();
    match outcome {
        Ok(_) => Ok(out),
        Err(e) => Err(Problem::new(*e, source).code().unwrap_or_default()),
    }
}

fn predicted_shape(t: &Option<Ty>) -> Option<String> {
    match t {
        Some(Ty::Tensor(t)) => t.concrete().map(|s| {
            let dims: Vec<String> = s.iter().map(|d| d.to_string()).collect();
            format!("[{}]", dims.join(", "))
        }),
        _ => None,
    }
}

fn differential(script: String) -> Result<(), TestCaseError> {
    let source = SourceFile::new("prop.cnn", script.clone());
    let (codes, last, predicted, engine) = cnn::on_big_stack(move || {
        let (codes, last) = checker_view(&source);
        let predicted = predicted_shape(&last);
        (codes, format!("{last:?}"), predicted, engine_view(&source))
    });
    match engine {
        Ok(out) => {
            prop_assert!(codes.is_empty(), "false positive {codes:?}\n{script}");
            prop_assert!(predicted.is_some(), "shape not inferred: {last}\n{script}");
            prop_assert_eq!(out.trim(), predicted.unwrap(), "wrong shape\n{}", script);
        }
        Err(code) => {
            prop_assert_eq!(codes, vec![code], "engine and checker disagree\n{}", script);
        }
    }
    Ok(())
}

fn list(v: &[i64]) -> String {
    let s: Vec<String> = v.iter().map(|d| d.to_string()).collect();
    format!("[{}]", s.join(", "))
}

/// An int or a pair, as written in a layer's arguments.
fn int_or_pair(lo: i64, hi: i64) -> impl Strategy<Value = String> {
    prop_oneof![
        (lo..=hi).prop_map(|v| v.to_string()),
        (lo..=hi, lo..=hi).prop_map(|(a, b)| format!("[{a}, {b}]")),
    ]
}

fn input(channels: i64) -> impl Strategy<Value = String> {
    (1i64..=2, 1i64..=10, 1i64..=10, any::<bool>()).prop_map(move |(n, h, w, batched)| {
        if batched {
            format!("randn({n}, {channels}, {h}, {w})")
        } else {
            format!("randn({channels}, {h}, {w})")
        }
    })
}

fn conv2d() -> impl Strategy<Value = String> {
    (1i64..=6, 1i64..=6, 0i64..=1, int_or_pair(1, 4), int_or_pair(1, 3), int_or_pair(0, 2), int_or_pair(1, 2), 1i64..=3)
        .prop_flat_map(|(cin, cout, wrong_c, k, s, p, d, g)| {
            let xc = cin + wrong_c;
            input(xc).prop_map(move |x| {
                format!(
                    "let x = {x}\nlet y = Conv2d({cin}, {cout}, {k}, stride={s}, padding={p}, dilation={d}, groups={g})(x)\nprint(y.shape)\n"
                )
            })
        })
}

fn conv_transpose2d() -> impl Strategy<Value = String> {
    (1i64..=4, 1i64..=4, int_or_pair(1, 3), int_or_pair(1, 3), int_or_pair(0, 2), int_or_pair(0, 2), int_or_pair(1, 2), 1i64..=2)
        .prop_flat_map(|(cin, cout, k, s, p, op, d, g)| {
            input(cin).prop_map(move |x| {
                format!(
                    "let x = {x}\nlet y = ConvTranspose2d({cin}, {cout}, {k}, stride={s}, padding={p}, output_padding={op}, groups={g}, dilation={d})(x)\nprint(y.shape)\n"
                )
            })
        })
}

fn pool() -> impl Strategy<Value = String> {
    (any::<bool>(), int_or_pair(1, 4), int_or_pair(1, 3), int_or_pair(0, 2), int_or_pair(1, 2), any::<bool>())
        .prop_flat_map(|(max, k, s, p, d, ceil)| {
            input(2).prop_map(move |x| {
                if max {
                    format!("let x = {x}\nlet y = MaxPool2d({k}, stride={s}, padding={p}, dilation={d}, ceil_mode={ceil})(x)\nprint(y.shape)\n")
                } else {
                    format!("let x = {x}\nlet y = AvgPool2d({k}, stride={s}, padding={p}, ceil_mode={ceil})(x)\nprint(y.shape)\n")
                }
            })
        })
}

/// `conv2d` / `conv_transpose2d` with a weight tensor, channels sometimes off by one.
fn functional_conv() -> impl Strategy<Value = String> {
    (any::<bool>(), 1i64..=4, 1i64..=4, 0i64..=1, 1i64..=3, 1i64..=3, int_or_pair(1, 3), int_or_pair(0, 2), int_or_pair(1, 2), 1i64..=2)
        .prop_flat_map(|(transposed, a, b, wrong, kh, kw, st, p, d, g)| {
            // conv2d: weight [out, in/groups, kH, kW]; conv_transpose2d: [in, out/groups, kH, kW].
            let (xc, call) = if transposed {
                (a + wrong, format!("conv_transpose2d(x, randn({a}, {b}, {kh}, {kw}), stride={st}, padding={p}, groups={g}, dilation={d})"))
            } else {
                (b * g + wrong, format!("conv2d(x, randn({a}, {b}, {kh}, {kw}), stride={st}, padding={p}, dilation={d}, groups={g})"))
            };
            input(xc).prop_map(move |x| format!("let x = {x}\nlet y = {call}\nprint(y.shape)\n"))
        })
}

/// `max_pool2d` / `avg_pool2d`.
fn functional_pool() -> impl Strategy<Value = String> {
    (any::<bool>(), int_or_pair(1, 4), int_or_pair(1, 3), int_or_pair(0, 2), int_or_pair(1, 2), any::<bool>())
        .prop_flat_map(|(max, k, s, p, d, ceil)| {
            input(2).prop_map(move |x| {
                if max {
                    format!("let x = {x}\nlet y = max_pool2d(x, {k}, stride={s}, padding={p}, dilation={d}, ceil_mode={ceil})\nprint(y.shape)\n")
                } else {
                    format!("let x = {x}\nlet y = avg_pool2d(x, {k}, stride={s}, padding={p}, ceil_mode={ceil})\nprint(y.shape)\n")
                }
            })
        })
}

/// `linear`, `interpolate` and `pixel_shuffle`.
fn functional_other() -> impl Strategy<Value = String> {
    prop_oneof![
        (prop::collection::vec(1i64..=4, 1..=3), 1i64..=4, 0i64..=1).prop_map(|(s, out, wrong)| {
            let inf = s.last().unwrap() + wrong;
            format!("let x = randn({})\nlet y = linear(x, randn({out}, {inf}))\nprint(y.shape)\n", list(&s))
        }),
        (1i64..=3, 1i64..=3, any::<bool>()).prop_flat_map(|(c, k, bilinear)| {
            let mode = if bilinear { "bilinear" } else { "nearest" };
            input(c).prop_map(move |x| format!("let x = {x}\nlet y = interpolate(x, scale_factor={k}, mode=\"{mode}\")\nprint(y.shape)\n"))
        }),
        (1i64..=8, 1i64..=3).prop_flat_map(|(c, r)| {
            input(c).prop_map(move |x| format!("let x = {x}\nlet y = pixel_shuffle(x, {r})\nprint(y.shape)\n"))
        }),
    ]
}

fn shape(max_rank: usize, max_dim: i64) -> impl Strategy<Value = Vec<i64>> {
    prop::collection::vec(1i64..=max_dim, 1..=max_rank)
}

fn linear() -> impl Strategy<Value = String> {
    (shape(3, 5), 1i64..=5, 0i64..=1).prop_map(|(s, out, wrong)| {
        let inf = s.last().unwrap() + wrong;
        format!(
            "let x = randn({})\nlet y = Linear({inf}, {out})(x)\nprint(y.shape)\n",
            list(&s)
        )
    })
}

fn reshape() -> impl Strategy<Value = String> {
    (shape(3, 4), shape(3, 4), any::<bool>(), 0usize..3).prop_map(|(s, mut t, infer, at)| {
        if infer {
            let i = at.min(t.len() - 1);
            t[i] = -1;
        }
        format!(
            "let x = randn({})\nlet y = x.reshape({})\nprint(y.shape)\n",
            list(&s),
            list(&t)
        )
    })
}

fn cat() -> impl Strategy<Value = String> {
    (shape(3, 4), shape(3, 4), -3i64..=3).prop_map(|(a, b, dim)| {
        format!(
            "let a = randn({})\nlet b = randn({})\nlet y = cat([a, b], {dim})\nprint(y.shape)\n",
            list(&a),
            list(&b)
        )
    })
}

fn broadcast() -> impl Strategy<Value = String> {
    (shape(4, 3), shape(4, 3)).prop_map(|(a, b)| {
        format!(
            "let a = randn({})\nlet b = randn({})\nlet y = a + b\nprint(y.shape)\n",
            list(&a),
            list(&b)
        )
    })
}

fn conv2d_named_padding() -> impl Strategy<Value = String> {
    (1i64..=3, 1i64..=3, int_or_pair(1, 4), int_or_pair(1, 2), int_or_pair(1, 2), any::<bool>())
        .prop_flat_map(|(cin, cout, k, s, d, same)| {
            let pad = if same { "same" } else { "valid" };
            input(cin).prop_map(move |x| {
                format!(
                    "let x = {x}\nlet y = Conv2d({cin}, {cout}, {k}, stride={s}, padding=\"{pad}\", dilation={d})(x)\nprint(y.shape)\n"
                )
            })
        })
}

/// Window layers on inputs of any rank from 1 to 5.
fn wrong_rank() -> impl Strategy<Value = String> {
    (shape(5, 4), 0usize..4).prop_map(|(s, layer)| {
        let c = if s.len() >= 3 { s[s.len() - 3] } else { 1 };
        let l = match layer {
            0 => format!("Conv2d({c}, 2, 1)"),
            1 => "MaxPool2d(1)".to_string(),
            2 => format!("ConvTranspose2d({c}, 2, 1)"),
            _ => "AvgPool2d(1)".to_string(),
        };
        format!(
            "let x = randn({})\nlet y = {l}(x)\nprint(y.shape)\n",
            list(&s)
        )
    })
}

/// `@` over ranks 1 to 4: dot products, matrix-vector, batched with broadcast batch dims;
/// the contracted dims agree about half the time.
fn matmul() -> impl Strategy<Value = String> {
    (shape(4, 3), shape(4, 3), any::<bool>()).prop_map(|(a, mut b, agree)| {
        if agree {
            let k = *a.last().unwrap();
            let n = b.len();
            b[if n == 1 { 0 } else { n - 2 }] = k;
        }
        format!(
            "let a = randn({})\nlet b = randn({})\nlet y = a @ b\nprint(y.shape)\n",
            list(&a),
            list(&b)
        )
    })
}

/// Comparisons and `**` broadcast as `+` does.
fn broadcast_other_ops() -> impl Strategy<Value = String> {
    (shape(3, 3), shape(3, 3), 0usize..4).prop_map(|(a, b, op)| {
        let op = ["<", "==", ">=", "**"][op];
        format!(
            "let a = randn({})\nlet b = randn({})\nlet y = a {op} b\nprint(y.shape)\n",
            list(&a),
            list(&b)
        )
    })
}

/// `let y: [...] = ...` with each declared dim the value's, another size, `_` or a symbol
/// (repeated symbols must agree), and sometimes one dim too many.
fn annotated() -> impl Strategy<Value = String> {
    (
        shape(3, 3),
        prop::collection::vec(0usize..5, 4),
        any::<bool>(),
    )
        .prop_map(|(s, picks, extra)| {
            let mut dims: Vec<String> = s
                .iter()
                .zip(&picks)
                .map(|(&d, &p)| match p {
                    0 | 1 => d.to_string(),
                    2 => (d + 1).to_string(),
                    3 => "_".to_string(),
                    _ => "H".to_string(),
                })
                .collect();
            if extra && picks[3] == 0 {
                dims.push("1".to_string());
            }
            format!(
                "let y: [{}] = randn({}) * 2\nprint(y.shape)\n",
                dims.join(", "),
                list(&s)
            )
        })
}

/// Layers whose input size is `_`: the output is known from the other arguments.
fn inferred_layers() -> impl Strategy<Value = String> {
    (1i64..=3, 1i64..=4, 1i64..=3, 3i64..=7, 0usize..4).prop_map(|(c, o, k, h, which)| {
        let l = match which {
            0 => format!("Conv2d(_, {o}, {k})"),
            1 => format!("ConvTranspose2d(_, {o}, {k})"),
            2 => "BatchNorm2d(_)".to_string(),
            _ => format!("Sequential(Flatten(), Linear(_, {o}))"),
        };
        format!("let x = randn(2, {c}, {h}, {h})\nlet y = {l}(x)\nprint(y.shape)\n")
    })
}

/// A small stack: conv, pool, flatten, linear (in_features computed here, sometimes off by
/// one, sometimes `_`).
fn stack() -> impl Strategy<Value = String> {
    (1i64..=3, 1i64..=4, 1i64..=3, 1i64..=2, 1i64..=3, 3i64..=9, 3i64..=9, 0i64..=2).prop_map(
        |(c, o, k, pk, f, h, w, off)| {
            let side = |n: i64| (n - k + 1).max(0) / pk;
            let features = match off {
                2 => "_".to_string(),
                _ => ((o * side(h) * side(w)).max(1) + off).to_string(),
            };
            format!(
                "let m = Sequential(Conv2d({c}, {o}, {k}), ReLU(), MaxPool2d({pk}), Flatten(), Linear({features}, {f}))\nlet x = randn(2, {c}, {h}, {w})\nlet y = m(x)\nprint(y.shape)\n"
            )
        },
    )
}

proptest! {
    // 300 cases by default; PROPTEST_CASES=5000 for a longer hunt.
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(300)
    ))]

    #[test]
    fn checker_agrees_with_engine(script in prop_oneof![
            conv2d(), conv_transpose2d(), pool(), linear(), reshape(), cat(), broadcast(),
            conv2d_named_padding(), wrong_rank(), matmul(), stack(), broadcast_other_ops(),
            inferred_layers(), annotated(), functional_conv(), functional_pool(), functional_other()
        ]) {
        differential(script)?;
    }
}

/// Layer arguments at the edges of 64 bits (no positive 2**31: a size the machine might
/// actually allocate; the syntax fuzzer checks those without running them).
const EDGE_ARGS: &[&str] = &[
    "0",
    "-1",
    "-2147483648",
    "4611686018427387904",
    "-4611686018427387904",
    "9223372036854775807",
    "(-9223372036854775807 - 1)",
];

fn edge_arg() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => proptest::sample::select(EDGE_ARGS).prop_map(str::to_string),
        3 => (1i64..=4).prop_map(|v| v.to_string()),
    ]
}

/// Layers with any of their integer arguments at the edges, applied to a small input.
fn edge_layer() -> impl Strategy<Value = String> {
    (0usize..7, prop::collection::vec(edge_arg(), 5)).prop_map(|(which, v)| {
        let l = match which {
            0 => format!(
                "Conv2d(3, {}, {}, stride={}, padding={}, dilation={})",
                v[0], v[1], v[2], v[3], v[4]
            ),
            1 => format!(
                "ConvTranspose2d(3, {}, {}, stride={}, padding={}, output_padding={})",
                v[0], v[1], v[2], v[3], v[4]
            ),
            2 => format!("Conv2d(3, 3, 1, groups={})", v[0]),
            3 => format!(
                "MaxPool2d({}, stride={}, padding={}, dilation={})",
                v[0], v[1], v[2], v[3]
            ),
            4 => format!("AvgPool2d([{}, {}], stride={})", v[0], v[1], v[2]),
            5 => format!(
                "Sequential(Flatten({}, {}), Linear(75, {}))",
                v[0], v[1], v[2]
            ),
            _ => format!("PixelShuffle({})", v[0]),
        };
        format!("let x = randn(2, 3, 5, 5)\nlet y = {l}(x)\nprint(y.shape)\n")
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(300)
    ))]

    /// At the edges the checker may know less than the engine, never something else: any
    /// error it reports is the one the run stops with (memory aside), and a shape it infers
    /// is the run's.
    #[test]
    fn checker_is_sound_at_the_edges(script in edge_layer()) {
        let source = SourceFile::new("edge.cnn", script.clone());
        let (codes, predicted, engine) = cnn::on_big_stack(move || {
            let (codes, last) = checker_view(&source);
            (codes, predicted_shape(&last), engine_view(&source))
        });
        match engine {
            Ok(out) => {
                prop_assert!(codes.is_empty(), "false positive {codes:?}\n{script}");
                if let Some(p) = predicted {
                    prop_assert_eq!(out.trim(), p, "wrong shape\n{}", script);
                }
            }
            // Memory (E0503) is the machine's, not the program's: the checker cannot know
            // that a layer's weights will not fit, so its finding comes first there.
            Err(code) if code == "E0503" => {}
            Err(code) => {
                prop_assert!(
                    codes.is_empty() || codes == vec![code.clone()],
                    "checker says {codes:?}, engine {code}\n{script}"
                );
            }
        }
    }
}

// ---- Nets: model calls, signatures, receptive fields (LANGUAGE.md §8, §9, §11) ----

/// Each `let` of a script that checks clean, as `name : type`.
fn let_types(text: &str) -> Vec<String> {
    let source = SourceFile::new("lets.cnn", text);
    let (lets, outcome) = cnn::check_with_types(&source);
    if let Err(problems) = &outcome {
        let errors: Vec<&Problem> = problems.iter().filter(|p| p.is_error()).collect();
        assert!(errors.is_empty(), "false positive\n{text}\n{errors:?}");
    }
    lets.iter().map(|(_, n, t)| format!("{n} : {t}")).collect()
}

fn type_of(text: &str, name: &str) -> String {
    let prefix = format!("{name} : ");
    let_types(text)
        .into_iter()
        .rev()
        .find_map(|l| l.strip_prefix(&prefix).map(str::to_string))
        .unwrap_or_else(|| panic!("no `let {name}` in\n{text}"))
}

const SRCNN: &str = "net SRCNN(c=1, scale=2) {
    input x: [N, c, H, W]
    let f = x |> Conv2d(_, 64, 9, padding=4) |> ReLU()
             |> Conv2d(_, 32, 1) |> ReLU()
    return f |> ConvTranspose2d(_, c, 2*scale, stride=scale, padding=scale//2)
}
";

#[test]
fn a_built_model_has_its_signature_with_symbols_kept() {
    let text = format!(
        "{SRCNN}let model = SRCNN(scale=2)\nlet y = model(randn(4, 1, 32, 32))\nlet rgb = SRCNN(c=3, scale=3)\nlet z = rgb(randn(1, 3, 5, 5))\n"
    );
    assert_eq!(
        type_of(&text, "model"),
        "model SRCNN [N, 1, H, W] -> [N, 1, 2*H, 2*W]"
    );
    assert_eq!(type_of(&text, "y"), "tensor [4, 1, 64, 64]");
    assert_eq!(
        type_of(&text, "rgb"),
        "model SRCNN [N, 3, H, W] -> [N, 3, 3*H + 1, 3*W + 1]"
    );
    // (5 - 1)*3 - 2*1 + 6 = 16
    assert_eq!(type_of(&text, "z"), "tensor [1, 3, 16, 16]");
}

#[test]
fn preconditions_come_from_the_layers() {
    let text = "net Valid {\n    input x: [N, 1, H, W]\n    return x |> Conv2d(1, 4, 9) |> MaxPool2d(2)\n}\nlet m = Valid()\nlet y = m(randn(2, 1, 12, 30))\n";
    assert_eq!(
        type_of(text, "m"),
        "model Valid [N, 1, H, W] -> [N, 4, H//2 - 4, W//2 - 4] where H >= 10, W >= 10"
    );
    assert_eq!(type_of(text, "y"), "tensor [2, 4, 2, 11]");
}

#[test]
fn a_concrete_net_infers_a_concrete_signature() {
    let text = "net LeNet(classes=10) {
    input x: [N, 1, 28, 28]
    let h = x |> Conv2d(1, 6, 5) |> ReLU() |> MaxPool2d(2)
             |> Conv2d(6, 16, 5) |> ReLU() |> MaxPool2d(2)
    return h |> Flatten() |> Linear(16 * 4 * 4, 120) |> ReLU() |> Linear(120, classes)
}
let lenet = LeNet(classes=7)
let logits = lenet(randn(32, 1, 28, 28))
";
    assert_eq!(
        type_of(text, "lenet"),
        "model LeNet [N, 1, 28, 28] -> [N, 7]"
    );
    assert_eq!(type_of(text, "logits"), "tensor [32, 7]");
}

#[test]
fn a_loop_over_a_constant_range_is_walked_pass_by_pass() {
    let text = "net Deep(depth=3) {
    input x: [N, 8, H, W]
    let h = x
    for i in 0..depth { h = h |> Conv2d(8, 8, 3) |> ReLU() }
    return h
}
let d = Deep(depth=4)
let y = d(randn(2, 8, 20, 20))
let wide = Deep(depth=1000)
";
    assert_eq!(
        type_of(text, "d"),
        "model Deep [N, 8, H, W] -> [N, 8, H - 8, W - 8] where H >= 9, W >= 9"
    );
    assert_eq!(type_of(text, "y"), "tensor [2, 8, 12, 12]");
    // Past the unrolling bound the loop is walked once, its names widened: no hang, no
    // guess.
    assert_eq!(type_of(text, "wide"), "model Deep [N, 8, H, W] -> unknown");
}

#[test]
fn nets_call_nets() {
    let text = "net Deep(depth=3) {
    input x: [N, 8, H, W]
    let h = x
    for i in 0..depth { h = h |> Conv2d(8, 8, 3, padding=1) |> ReLU() }
    return h
}
net Down {
    input x: [N, 8, H, W]
    return x |> Conv2d(8, 8, 3) |> MaxPool2d(2)
}
net Pair {
    input x: [N, 8, H, W]
    let inner = Down()
    return x |> Deep(depth=1) |> inner |> Deep(depth=2)
}
let p = Pair()
let y = p(randn(1, 8, 10, 12))
";
    assert_eq!(
        type_of(text, "p"),
        "model Pair [N, 8, H, W] -> [N, 8, H//2 - 1, W//2 - 1] where H >= 4, W >= 4"
    );
    assert_eq!(type_of(text, "y"), "tensor [1, 8, 4, 5]");
}

#[test]
fn a_layer_applied_twice_shares_its_weights() {
    let text = "net Shared {
    input x: [N, 4, H, W]
    let conv = Conv2d(4, 4, 3, padding=1)
    return conv(relu(conv(x)))
}
let s = Shared()
";
    assert_eq!(
        type_of(text, "s"),
        "model Shared [N, 4, H, W] -> [N, 4, H, W]"
    );
    let r = report(text, "Shared", &[], None);
    assert_eq!(r.rows.len(), 2);
    assert_eq!(r.rows[0].layer_id, r.rows[1].layer_id);
    assert_eq!(r.rows[0].params, Some(4 * 4 * 9 + 4));
    assert_eq!(r.total_params, Some(4 * 4 * 9 + 4));
}

#[test]
fn a_net_that_reaches_itself_is_unknown_not_a_hang() {
    let text = "net Loop {\n    input x: [N, 1, H, W]\n    return Loop()(x)\n}\nlet l = Loop()\nlet y = l(randn(1, 1, 4, 4))\n";
    assert_eq!(type_of(text, "y"), "tensor");
}

#[test]
fn a_bad_input_size_reports_the_layer_in_the_body_and_the_call() {
    let text = format!(
        "{}let model = SRCNN()\nlet y = model(randn(1, 1, 4, 4))\n",
        SRCNN.replace("9, padding=4", "9")
    );
    let found = check_errors("small", &text);
    assert_eq!(found.len(), 1, "{found:?}");
    let (code, lines) = &found[0];
    assert_eq!(code, "E0301");
    // The kernel in the body (line 3), and the call (line 8).
    assert_eq!(lines.first(), Some(&3), "{found:?}");
    assert!(lines.contains(&8), "{found:?}");
    let source = SourceFile::new("small", text.as_str());
    let rendered = render(&cnn::check(&source).err().unwrap());
    assert!(rendered.contains("called from here"), "{rendered}");
}

#[test]
fn a_model_call_still_checks_the_declared_input() {
    let text = format!("{SRCNN}let model = SRCNN()\nlet y = model(randn(2, 3, 16, 16))\n");
    let found = check_errors("e0315", &text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "E0315");
    let text = "net Two {\n    input a: [N, C, H, W]\n    input b: [N, C, H, W]\n    return a + b\n}\nlet t = Two()\nlet y = t(randn(1, 2, 4, 4), randn(1, 2, 5, 4))\nlet ok = t(randn(1, 2, 4, 4), randn(1, 2, 4, 4))\n";
    let found = check_errors("two_inputs", text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0], ("E0315".to_string(), vec![7, 3]));
}

#[test]
fn a_shape_error_after_a_model_call_is_found() {
    let text = format!(
        "{SRCNN}let model = SRCNN()\nlet y = model(randn(2, 1, 8, 8))\nlet z = y + randn(2, 1, 8, 8)\n"
    );
    let found = check_errors("after", &text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "E0306");
}

#[test]
fn the_conformance_nets_check_clean() {
    for file in ["nets.cnn", "receptive_field.cnn"] {
        let path = format!("/work/shared/conformance/semantics/{file}");
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let found: Vec<(String, Vec<usize>)> = check_errors(file, &text)
            .into_iter()
            // `receptive_field` is a run-time builtin still to come.
            .filter(|(c, _)| c != "E0201")
            .collect();
        assert!(found.is_empty(), "{file}: {found:?}");
    }
}

// ---- The report behind `summary(model)` and `receptive_field(model)` ----

fn report(
    text: &str,
    net: &str,
    params: &[(&str, cnn::check::ParamValue)],
    input: Option<&[Vec<i64>]>,
) -> cnn::check::NetReport {
    let source = SourceFile::new("report.cnn", text);
    let program = cnn::parse(&source).unwrap_or_else(|_| panic!("parses\n{text}"));
    let def = program
        .stmts
        .iter()
        .find_map(|s| match &s.node {
            cnn::syntax::ast::StmtKind::Net(d) if &*d.name.name == net => Some(d.clone()),
            _ => None,
        })
        .expect("the net is defined");
    let params: Vec<(Rc<str>, cnn::check::ParamValue)> = params
        .iter()
        .map(|(n, v)| (Rc::from(*n), v.clone()))
        .collect();
    cnn::check::net_report(&program, &def, &params, input)
}

/// The output's receptive field as `(size, jump, start)` per axis, printed.
fn field_of(r: &cnn::check::NetReport) -> Option<[(i64, String, String); 2]> {
    r.receptive_field
        .map(|f| f.map(|a| (a.size, a.jump.to_string(), a.start.to_string())))
}

const CHAIN: &str = "net Chain {
    input x: [N, 1, H, W]
    return x |> Conv2d(1, 1, 3) |> Conv2d(1, 1, 3, stride=2) |> AvgPool2d(2) |> Conv2d(1, 1, 3, dilation=2)
}
net Up {
    input x: [N, 1, H, W]
    return x |> Conv2d(1, 1, 3, padding=1) |> ConvTranspose2d(1, 1, 4, stride=2, padding=1)
}
";

#[test]
fn receptive_fields_of_the_conformance_nets() {
    let chain = report(CHAIN, "Chain", &[], None);
    let axis = (23, "4".to_string(), "11".to_string());
    assert_eq!(field_of(&chain), Some([axis.clone(), axis]));
    assert_eq!(chain.inputs, vec!["[N, 1, H, W]"]);
    assert_eq!(chain.output, "[N, 1, (H - 3)//4 - 4, (W - 3)//4 - 4]");
    let up = report(CHAIN, "Up", &[], None);
    let axis = (4, "0.5".to_string(), "-0.25".to_string());
    assert_eq!(field_of(&up), Some([axis.clone(), axis]));
    // The same with a concrete input: the shape is concrete, the field the same.
    let chain64 = report(CHAIN, "Chain", &[], Some(&[vec![1, 1, 64, 64]]));
    assert_eq!(chain64.concrete_output, Some(vec![1, 1, 11, 11]));
    assert_eq!(chain64.receptive_field, chain.receptive_field);
    assert_eq!(chain64.rows.len(), 4);
    assert_eq!(chain64.rows[3].shape, "[1, 1, 11, 11]");
}

#[test]
fn receptive_fields_by_hand() {
    let text = "net Vgg {
    input x: [N, 3, H, W]
    return x |> Conv2d(3, 8, 3, padding=1) |> ReLU() |> Conv2d(8, 8, 3, padding=1) |> MaxPool2d(2) |> Conv2d(8, 8, 3, padding=1)
}
net Res {
    input x: [N, 4, H, W]
    return x + (x |> Conv2d(4, 4, 5, padding=2))
}
net Mixed {
    input x: [N, 4, H, W]
    let down = x |> Conv2d(4, 4, 4, stride=2, padding=1)
    return cat([down, x |> MaxPool2d(2)], 1)
}
net Flat {
    input x: [N, 1, 8, 8]
    return x |> Flatten() |> Linear(64, 2)
}
net Sub {
    input x: [N, 16, H, W]
    return x |> Conv2d(16, 16, 3, padding=1) |> PixelShuffle(2) |> BatchNorm2d(4) |> Upsample(scale_factor=2)
}
net Smooth {
    input x: [N, 1, H, W]
    return x |> MaxPool2d(2) |> Upsample(scale_factor=2, mode=\"bilinear\")
}
net Wide {
    input x: [N, 1, H, W]
    return x |> Conv2d(1, 1, [3, 5], stride=[1, 2], dilation=[2, 1])
}
";
    // 3, then 5, then the pool 6 with jump 2, then +2*2: 10.
    let vgg = report(text, "Vgg", &[], None);
    let f = vgg.receptive_field.unwrap();
    assert_eq!((f[0].size, f[0].jump.to_string()), (10, "2".to_string()));
    assert_eq!(vgg.rows.len(), 5);
    assert_eq!(vgg.rows[3].field.unwrap()[0].size, 6);
    assert_eq!(vgg.rows[0].params, Some(3 * 8 * 9 + 8));
    assert_eq!(
        vgg.total_params,
        Some((3 * 8 * 9 + 8) + 2 * (8 * 8 * 9 + 8))
    );
    // A residual: the union of the identity and a centred 5x5 window.
    let res = report(text, "Res", &[], None);
    assert_eq!(
        field_of(&res).unwrap()[0],
        (5, "1".to_string(), "0".to_string())
    );
    // Branches of equal jump: a 4-window and a 2-window, both centred on 0.5.
    let mixed = report(text, "Mixed", &[], None);
    assert_eq!(mixed.output, "[N, 8, H//2, W//2]");
    assert_eq!(
        field_of(&mixed).unwrap()[0],
        (4, "2".to_string(), "0.5".to_string())
    );
    // Linear mixes every position: no field.
    assert_eq!(report(text, "Flat", &[], None).receptive_field, None);
    // Sub-pixel and nearest upsampling divide the jump and keep the size.
    let sub = report(text, "Sub", &[], None);
    assert_eq!(sub.output, "[N, 4, 4*H, 4*W]");
    let axis = (3, "0.25".to_string(), "-0.375".to_string());
    assert_eq!(field_of(&sub), Some([axis.clone(), axis]));
    // Bilinear blends two inputs one jump apart.
    let smooth = field_of(&report(text, "Smooth", &[], None)).unwrap();
    assert_eq!(smooth[0], (4, "1".to_string(), "0".to_string()));
    // Per axis: dilation 2 on rows, stride 2 on columns.
    let wide = field_of(&report(text, "Wide", &[], None)).unwrap();
    assert_eq!(wide[0], (5, "1".to_string(), "2".to_string()));
    assert_eq!(wide[1], (5, "2".to_string(), "2".to_string()));
}

#[test]
fn a_report_groups_nested_models_and_takes_parameters() {
    let text = "net Block(c=4) {
    input x: [N, c, H, W]
    return x |> Sequential(Conv2d(c, c, 3), ReLU())
}
net Two(c=4) {
    input x: [N, c, H, W]
    return x |> Block(c=c) |> Block(c=c)
}
";
    let r = report(
        text,
        "Two",
        &[("c", cnn::check::ParamValue::Int(2))],
        Some(&[vec![1, 2, 10, 10]]),
    );
    let rows: Vec<(usize, &str, &str)> = r
        .rows
        .iter()
        .map(|row| (row.depth, row.kind.as_str(), row.shape.as_str()))
        .collect();
    assert_eq!(
        rows,
        vec![
            (0, "Block", "[1, 2, 8, 8]"),
            (1, "Sequential", "[1, 2, 8, 8]"),
            (2, "Conv2d", "[1, 2, 8, 8]"),
            (2, "ReLU", "[1, 2, 8, 8]"),
            (0, "Block", "[1, 2, 6, 6]"),
            (1, "Sequential", "[1, 2, 6, 6]"),
            (2, "Conv2d", "[1, 2, 6, 6]"),
            (2, "ReLU", "[1, 2, 6, 6]"),
        ]
    );
    let conv = 2 * 2 * 9 + 2;
    assert_eq!(r.rows[0].params, Some(conv));
    assert_eq!(r.rows[1].params, Some(conv));
    assert_eq!(r.total_params, Some(2 * conv));
    assert_eq!(r.inputs, vec!["[N, 2, H, W]"]);
    assert_eq!(r.output, "[N, 2, H - 4, W - 4]");
    assert_eq!(r.preconditions, vec!["H >= 5", "W >= 5"]);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.receptive_field.unwrap()[0].size, 5);
}

#[test]
fn a_fn_defined_in_a_net_body_does_not_return_for_the_net() {
    let text = "net Helper {\n    input x: [N, 2, H, W]\n    fn half(n) { return n // 2 }\n    return x |> Conv2d(2, 2, 3)\n}\nlet h = Helper()\nlet y = h(randn(1, 2, 6, 6))\n";
    assert_eq!(
        type_of(text, "h"),
        "model Helper [N, 2, H, W] -> [N, 2, H - 2, W - 2] where H >= 3, W >= 3"
    );
    assert_eq!(type_of(text, "y"), "tensor [1, 2, 4, 4]");
}

/// A value the checker cannot compute (`2 ** 4` is not folded) leaves the dims it decides
/// unknown: the checker never states the input's channels for a layer's output.
#[test]
fn an_unknown_out_channels_is_never_the_inputs() {
    let script = "net Straight {\n    input x: [N, 8, H, W]\n    let c = 2 ** 4\n    return x |> Conv2d(8, c, 1)\n}\nlet y = Straight()(randn(1, 8, 2, 2))\n";
    let source = SourceFile::new("straight.cnn", script);
    let (codes, dims, engine) = cnn::on_big_stack(move || {
        let (codes, last) = checker_view(&source);
        let dims = match last {
            Some(Ty::Tensor(t)) => t
                .shape
                .map(|s| s.iter().map(|d| d.as_const()).collect::<Vec<_>>()),
            _ => None,
        };
        (codes, dims, engine_view(&source))
    });
    assert!(codes.is_empty(), "{codes:?}");
    // Batch and spatial sizes are derived; the channels are not.
    assert_eq!(dims, Some(vec![Some(1), None, Some(2), Some(2)]));
    assert!(engine.is_ok());
}

// ----- Programs: the checker against the engine, statement by statement -----

/// Nets the generated programs call: one straight, one with an `if` on a parameter, one
/// nesting another.
const NETS: &str = "net Block(c) {
    input x: [N, C, H, W]
    return x |> Conv2d(_, c, 3, padding=1) |> ReLU()
}
net Down(c, pool=true) {
    input x: [N, C, H, W]
    let y = x |> Conv2d(_, c, 1)
    if pool {
        y = y |> MaxPool2d(2)
    }
    return y
}
net Outer(c) {
    input x: [N, C, H, W]
    return x |> Block(c) |> Block(c)
}
let unknown_size = len(ones(3).tolist())
";

/// One generated statement: its text, and whether everything it reads is known to the
/// checker (operands of known shape and grad flag, arguments written as literals), so a
/// mistake in it is one the checker must find.
struct Statement {
    text: String,
    decidable: bool,
}

/// A program built from random choices: tensors made with literal shapes, then layers,
/// functional forms, methods, arithmetic, indexing, losses, backward, in-place writes, a
/// loop and net calls over earlier tensors, with arguments sometimes wrong (a size off by
/// one, a string for an int, a dim out of range), sometimes unknown to the checker (`**`,
/// a size read from a tensor).
fn program(choices: &[(u8, [i64; 5])]) -> (String, Vec<Statement>) {
    let mut stmts: Vec<Statement> = Vec::new();
    // Per tensor variable: whether its shape and grad flag are known to the checker.
    let mut known: Vec<bool> = Vec::new();
    // Per tensor variable: whether it came from a reshape.
    let mut reshaped: Vec<bool> = Vec::new();
    let pick = |known: &Vec<bool>, r: i64| (r.unsigned_abs() as usize) % known.len();
    for (kind, r) in choices {
        let n = known.len();
        let v = format!("v{n}");
        let size = |x: i64| 1 + x.rem_euclid(5);
        // A size argument: a literal usually, `_`, an unknown int, or `2 ** k`.
        let arg = |x: i64, lit: i64| match x.rem_euclid(7) {
            0 => ("unknown_size".to_string(), false),
            1 => (format!("2 ** {}", x.rem_euclid(3)), false),
            _ => (lit.to_string(), true),
        };
        if n == 0 || *kind % 16 == 0 {
            let rank = 1 + r[0].rem_euclid(4) as usize;
            let dims: Vec<String> = r[1..=rank.min(4)]
                .iter()
                .map(|d| size(*d).to_string())
                .collect();
            let grad = if r[0].rem_euclid(3) == 0 {
                ", requires_grad=true"
            } else {
                ""
            };
            stmts.push(Statement {
                text: format!("let {v} = randn({}{grad})", dims.join(", ")),
                decidable: true,
            });
            known.push(true);
            reshaped.push(false);
            continue;
        }
        let a = pick(&known, r[0]);
        let b = pick(&known, r[1]);
        let ka = known[a];
        let (text, decidable) = match kind % 16 {
            1 => {
                let (cin, k1) = match r[2].rem_euclid(5) {
                    0 => ("_".to_string(), true),
                    1 => ("\"3\"".to_string(), true),
                    _ => (size(r[2]).to_string(), true),
                };
                let (cout, k2) = arg(r[3], size(r[3]));
                let k = 1 + r[4].rem_euclid(3);
                let s = 1 + r[1].rem_euclid(2);
                let p = r[2].rem_euclid(2);
                (
                    format!(
                        "let {v} = v{a} |> Conv2d({cin}, {cout}, {k}, stride={s}, padding={p})"
                    ),
                    ka && k1 && k2,
                )
            }
            2 => {
                let k = 1 + r[2].rem_euclid(3);
                let layer = if r[3] % 2 == 0 {
                    "MaxPool2d"
                } else {
                    "AvgPool2d"
                };
                (format!("let {v} = v{a} |> {layer}({k})"), ka)
            }
            3 => {
                let (c, k) = match r[2].rem_euclid(4) {
                    0 => ("_".to_string(), true),
                    _ => arg(r[3], size(r[2])),
                };
                (format!("let {v} = v{a} |> BatchNorm2d({c})"), ka && k)
            }
            4 => {
                let f = [
                    "relu(v{a})",
                    "sigmoid(v{a})",
                    "v{a} |> LeakyReLU(0.2)",
                    "v{a} |> Tanh()",
                    "v{a} |> GELU(approximate=\"tanh\")",
                    "elu(v{a}, 0.5)",
                    "v{a} |> AdaptiveAvgPool2d(2)",
                    "adaptive_max_pool2d(v{a}, [1, 3])",
                    "v{a} |> Dropout2d(0.5)",
                ][r[2].rem_euclid(9) as usize]
                    .replace("{a}", &a.to_string());
                (format!("let {v} = {f}"), ka)
            }
            5 => {
                let d = r[2].rem_euclid(9) - 4;
                let f = if r[3] % 2 == 0 {
                    "softmax"
                } else {
                    "log_softmax"
                };
                (format!("let {v} = {f}(v{a}, dim={d})"), ka)
            }
            6 => (format!("let {v} = v{a} + v{b}"), ka && known[b]),
            7 => (format!("let {v} = v{a} @ v{b}"), ka && known[b]),
            8 => {
                let (k, lit) = arg(r[2], size(r[2]));
                (format!("let {v} = v{a}.reshape(-1, {k})"), ka && lit)
            }
            9 => {
                let i = r[2].rem_euclid(13) - 6;
                (format!("let {v} = v{a}[{i}]"), ka)
            }
            10 => {
                let len = size(r[2]) as usize;
                let targets = vec!["0"; len].join(", ");
                (
                    format!("let {v} = cross_entropy(v{a}, tensor([{targets}]))"),
                    ka,
                )
            }
            11 => {
                let call = if r[2] % 2 == 0 {
                    "v{a}.sum().backward()"
                } else {
                    "v{a}.backward()"
                };
                stmts.push(Statement {
                    text: call.replace("{a}", &a.to_string()),
                    decidable: ka,
                });
                continue;
            }
            12 => {
                let write = if r[2] % 2 == 0 {
                    "v{a}.add_(1)"
                } else {
                    "v{a} += 1"
                };
                let view = if r[3] % 2 == 0 { "[0]" } else { "" };
                stmts.push(Statement {
                    text: write.replace("{a}", &format!("{a}{view}")),
                    // Whether a reshape of a view is a view depends on its strides, which
                    // the checker does not track.
                    decidable: ka && !reshaped[a],
                });
                continue;
            }
            13 => {
                stmts.push(Statement {
                    text: format!("for i in 0..2 {{ v{a} = relu(v{a}) }}"),
                    decidable: ka,
                });
                // The checker widens what a top-level loop assigns.
                known[a] = false;
                continue;
            }
            14 => {
                let (f, lit) = match r[2].rem_euclid(3) {
                    0 => ("_".to_string(), true),
                    _ => arg(r[3], size(r[2])),
                };
                let out = size(r[4]);
                (
                    format!("let {v} = v{a} |> Flatten() |> Linear({f}, {out})"),
                    ka && lit,
                )
            }
            _ => {
                let (c, lit) = arg(r[2], size(r[2]));
                let net = match r[3].rem_euclid(3) {
                    0 => format!("Block({c})"),
                    1 => format!("Down({c}, pool={})", r[4] % 2 == 0),
                    _ => format!("Outer({c})"),
                };
                (format!("let {v} = {net}(v{a})"), ka && lit)
            }
        };
        reshaped.push(text.contains(".reshape(") || (text.contains('[') && reshaped[a]));
        stmts.push(Statement { text, decidable });
        known.push(decidable);
    }
    let mut text = NETS.to_string();
    for s in &stmts {
        text.push_str(&s.text);
        text.push('\n');
    }
    (text, stmts)
}

/// A problem as these tests compare it: code, rendered text, and the line of the
/// statement it is reported at (its last label: a mistake inside a net body carries the
/// call as its last label, and generated statements build their layers on their line).
fn located(problem: &Problem) -> (String, String, usize) {
    (
        problem.code().unwrap_or_default(),
        render(std::slice::from_ref(problem)),
        problem.lines().into_iter().max().unwrap_or(0),
    )
}

/// Runs `script` without the checker: its error, if it fails.
fn engine_error(source: &SourceFile) -> Option<(String, String, usize)> {
    let program = cnn::syntax::parse(source).expect("generated programs parse");
    let mut interpreter = Interpreter::new(Box::new(std::io::sink()));
    let e = interpreter.run(&program).err()?;
    Some(located(&Problem::new(*e, source)))
}

/// The checker's errors.
fn checker_errors(source: &SourceFile) -> Vec<(String, String, usize)> {
    let program = cnn::syntax::parse(source).expect("generated programs parse");
    cnn::check::check_program(&program)
        .errors
        .into_iter()
        .map(|e| located(&Problem::new(e, source)))
        .collect()
}

/// The codes the checker owes: a statement the engine rejects with one of these, whose
/// operands the checker knew, is the checker's to report.
fn static_code(code: &str) -> bool {
    let n: u32 = code[1..].parse().unwrap_or(0);
    (201..=208).contains(&n) || (301..=315).contains(&n) || (401..=403).contains(&n)
}

fn programs_agree(choices: Vec<(u8, [i64; 5])>) -> Result<(), TestCaseError> {
    let (text, stmts) = program(&choices);
    let source = SourceFile::new("program.cnn", text.clone());
    let (checked, ran) =
        cnn::on_big_stack(move || (checker_errors(&source), engine_error(&source)));
    let first_line = NETS.lines().count() + 1;
    let decidable = |line: usize| {
        line >= first_line && stmts.get(line - first_line).is_some_and(|s| s.decidable)
    };
    // The engine stops at its error; statements after it are not compared.
    let stop = ran.as_ref().map_or(usize::MAX, |(_, _, line)| *line);
    // (3) The checker reports nothing in a statement the engine runs.
    if let Some((code, rendered, _)) = checked.iter().find(|(_, _, line)| *line < stop) {
        prop_assert!(false, "false positive {code}\n{rendered}\n{text}");
    }
    if let Some((code, engine, line)) = &ran {
        match checked.iter().find(|(_, _, l)| l == line) {
            // (2) The same mistake in the same words, where the checker knew the operands.
            Some((_, rendered, _)) if decidable(*line) => {
                prop_assert_eq!(rendered, engine, "worded differently\n{}", text);
            }
            Some(_) => {}
            // (2) A statement the checker could decide is the checker's to report.
            None => prop_assert!(
                !(decidable(*line) && static_code(code)),
                "missed {code} at line {line}\n{engine}\n{text}"
            ),
        }
    }
    Ok(())
}

fn choices() -> impl Strategy<Value = Vec<(u8, [i64; 5])>> {
    prop::collection::vec((any::<u8>(), prop::array::uniform5(-50i64..50)), 1..12)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROGRAM_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Random programs: whatever the checker reports the engine reports, in the same words;
    /// whatever the engine rejects in a statement the checker could decide, the checker
    /// reports.
    #[test]
    fn checker_and_engine_agree_on_programs(choices in choices()) {
        programs_agree(choices)?;
    }
}

// ---- Extreme integers: the checker never panics nor wraps, the run reports ----

/// Scripts at the limits of 64-bit ints and sizes: the checker finds nothing it cannot prove
/// (no panic, no false error from wrapped arithmetic), and the run gives the interpreter's
/// diagnostic (`None`: the run succeeds and prints the text given).
const EXTREMES: &[(&str, Result<&str, &str>)] = &[
    ("let y = ones(-5)[1:]", Err("E0505")),
    ("let y = full([-5, 2], 1.0)[::2]", Err("E0505")),
    ("print((-9223372036854775807 - 1) // -1)", Err("E0505")),
    ("print((-9223372036854775807 - 1) % -1)", Ok("0")),
    (
        "print((ones(3)[::9223372036854775807] + ones(2)).shape)",
        Ok("[2]"),
    ),
    (
        "print(ones(3)[-9223372036854775807 - 1:9223372036854775807].shape)",
        Ok("[3]"),
    ),
    (
        "print(len((-9223372036854775807 - 1) .. 9223372036854775807))",
        Err("E0505"),
    ),
    (
        "print(len(0 .. 9223372036854775807))",
        Ok("9223372036854775807"),
    ),
    (
        "let w = ones(1, 1, 3, 3)\nprint(conv_matrix(w, [2**40, 2**40]))",
        Err("E0503"),
    ),
    (
        "print(arange(-9223372036854775807, 9223372036854775807).shape)",
        Err("E0503"),
    ),
    (
        "print(ones(5).reshape(4611686018427387904, -4611686018427387904).shape)",
        Err("E0505"),
    ),
    (
        "print(ones(5).reshape(4611686018427387904, 4611686018427387904).numel())",
        Err("E0308"),
    ),
    (
        "print(pixel_shuffle(randn(2, 3, 4, 4), 4611686018427387904).shape)",
        Err("E0303"),
    ),
    (
        "print((randn(2, 3, 4, 4) |> ConvTranspose2d(3, 2, 3, dilation=4611686018427387904)).shape)",
        Err("E0311"),
    ),
    (
        "print((randn(1, 1, 4, 4) |> Conv2d(1, 1, 3, padding=4611686018427387904)).shape)",
        Err("E0311"),
    ),
    // The help lists the groups that would fit without counting to 2**62.
    ("print(Conv2d(3, 2**62, 3, groups=5))", Err("E0311")),
    (
        "print(ones(0, 4611686018427387904, 4611686018427387904).shape)",
        Err("E0503"),
    ),
    (
        "net M {\n    input y: [2**62, -2**62, 4, 4]\n    return y |> MaxPool2d(2**62)\n}\nprint(M()(randn(2, 3, 4, 4)).shape)",
        Err("E0315"),
    ),
];

#[test]
fn extreme_integers_check_without_panic_and_run_as_the_interpreter_says() {
    for &(text, expected) in EXTREMES {
        let source = SourceFile::new("extreme.cnn", text);
        let errors = check_errors("extreme.cnn", text);
        assert!(errors.is_empty(), "false positive {errors:?}\n{text}");
        let t = cnn::run_captured(&source);
        let codes: Vec<String> = t.problems.iter().filter_map(|p| p.code()).collect();
        match expected {
            Ok(out) => {
                assert_eq!(t.exit_code, 0, "{text}\n{}", render(&t.problems));
                assert_eq!(t.output.trim(), out, "{text}");
            }
            Err(code) => assert_eq!(codes, vec![code.to_string()], "{text}"),
        }
    }
}
