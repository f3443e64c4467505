//! Nets (LANGUAGE.md §8): building models, layer occurrences, names, build probes,
//! checkpoints, and the model API the summary uses.

use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;

use cnn::builtins::layers::{Layer, WindowGeometry};
use cnn::eval::{Interpreter, RuntimeError, Value};
use cnn::syntax::parse_text;
use cnn::tensor::Tensor;
use miette::Diagnostic;

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

    fn ok(&mut self, src: &str) -> String {
        let before = self.out.0.borrow().len();
        if let Err(err) = self.run(src) {
            panic!("{src}\nfailed: {err:?}");
        }
        String::from_utf8_lossy(&self.out.0.borrow()[before..]).into_owned()
    }

    fn layer(&self, name: &str) -> Rc<Layer> {
        match self.interp.global(name) {
            Some(Value::Layer(l)) => Rc::clone(l),
            other => panic!("{name} is {other:?}"),
        }
    }
}

fn ok(src: &str) -> String {
    Session::new().ok(src)
}

/// The code of the error `src` stops with, and the error.
fn fails(src: &str) -> (String, Box<RuntimeError>) {
    let mut s = Session::new();
    match s.run(src) {
        Ok(_) => panic!("{src}\nshould fail"),
        Err(e) => (e.code().map(|c| c.to_string()).unwrap_or_default(), e),
    }
}

const SRCNN: &str = "
net SRCNN(c=1, scale=2) {
    input x: [N, c, H, W]
    let f = x |> Conv2d(_, 64, 9, padding=4) |> ReLU()
             |> Conv2d(_, 32, 1) |> ReLU()
    return f |> ConvTranspose2d(_, c, 2 * scale, stride=scale, padding=scale // 2)
}
";

#[test]
fn parameters_exist_before_the_first_forward_with_pytorch_names() {
    let out = ok(&format!(
        "{SRCNN}
let model = SRCNN(scale=2)
for p in model.named_parameters() {{ print(p[0], p[1].shape) }}
let opt = SGD(model.parameters(), lr=0.1)
print(model(randn(2, 1, 6, 5)).shape)"
    ));
    assert_eq!(
        out,
        "conv2d_0.weight [64, 1, 9, 9]\nconv2d_0.bias [64]\nconv2d_2.weight [32, 64, 1, 1]\n\
         conv2d_2.bias [32]\nconvtranspose2d_4.weight [32, 1, 4, 4]\nconvtranspose2d_4.bias [1]\n\
         [2, 1, 12, 10]\n"
    );
}

#[test]
fn net_parameters_bind_like_fn_arguments() {
    let cases = [
        ("SRCNN(1, 2, 3)", "E0203"),
        ("SRCNN(scael=2)", "E0204"),
        ("SRCNN(1, c=1)", "E0206"),
        ("SRCNN()()", "E0205"),
        ("SRCNN()(1)", "E0207"),
    ];
    for (call, code) in cases {
        assert_eq!(fails(&format!("{SRCNN}{call}")).0, code, "{call}");
    }
}

#[test]
fn a_let_layer_applied_twice_shares_its_weights() {
    let out = ok("
net Shared {
    input x: [N, 4, H, W]
    let conv = Conv2d(4, 4, 3, padding=1)
    return conv(relu(conv(x)))
}
let m = Shared()
print(parameter_count(m), len(m.parameters()), m.named_parameters()[0][0])
let y = m(randn(1, 4, 5, 5))
y.sum().backward()
print(m.conv.weight.grad.shape, shares_storage(m.conv.weight, m.parameters()[0]))
");
    assert_eq!(out, "148 2 conv.weight\n[4, 4, 3, 3] true\n");
}

#[test]
fn a_constructor_in_a_loop_builds_one_layer_per_pass() {
    let out = ok("
net Deep(depth=3) {
    input x: [N, 8, H, W]
    let h = x
    for i in 0..depth {
        let block = Conv2d(8, 8, 3, padding=1)
        h = h |> block |> ReLU()
    }
    return h
}
let m = Deep()
let names = []
for p in m.named_parameters() { names = names + [p[0]] }
print(names)
print(parameter_count(Deep(depth=5)) == 5 * (8*8*9 + 8))
let before = m.block_2.weight.clone()
let y = m(randn(1, 8, 4, 4))
print(parameter_count(m) == 3 * (8*8*9 + 8), (m.block_2.weight - before).abs().sum().item() == 0)
");
    assert_eq!(
        out,
        "[\"block.weight\", \"block.bias\", \"block_2.weight\", \"block_2.bias\", \"block_4.weight\", \"block_4.bias\"]\ntrue\ntrue true\n"
    );
}

#[test]
fn nets_call_nets_and_names_nest() {
    let mut s = Session::new();
    let out = s.ok(&format!(
        "{SRCNN}
net Pair {{
    input x: [N, 1, H, W]
    let encoder = SRCNN(scale=1)
    let seq = Sequential(Conv2d(1, 2, 3, padding=1), ReLU())
    return x |> encoder |> seq |> SRCNN(c=2, scale=1)
}}
let m = Pair()
for p in m.named_parameters() {{ print(p[0]) }}
print(m(randn(1, 1, 6, 6)).shape)"
    ));
    let names: Vec<&str> = out.lines().collect();
    assert_eq!(
        names,
        [
            "encoder.conv2d_0.weight",
            "encoder.conv2d_0.bias",
            "encoder.conv2d_2.weight",
            "encoder.conv2d_2.bias",
            "encoder.convtranspose2d_4.weight",
            "encoder.convtranspose2d_4.bias",
            "seq.0.weight",
            "seq.0.bias",
            "srcnn_2.conv2d_0.weight",
            "srcnn_2.conv2d_0.bias",
            "srcnn_2.conv2d_2.weight",
            "srcnn_2.conv2d_2.bias",
            "srcnn_2.convtranspose2d_4.weight",
            "srcnn_2.convtranspose2d_4.bias",
            "[1, 2, 8, 8]",
        ]
    );
    // The flattened list: containers right before their layers, full dotted names.
    let m = s.layer("m");
    let flat = m.model().unwrap().flat_layers();
    let listed: Vec<(String, usize, bool)> = flat
        .iter()
        .map(|f| (f.name.clone(), f.depth, f.is_container))
        .collect();
    assert_eq!(listed[0], ("encoder".to_string(), 0, true));
    assert_eq!(listed[1], ("encoder.conv2d_0".to_string(), 1, false));
    assert_eq!(listed[6], ("seq".to_string(), 0, true));
    assert_eq!(listed[7], ("seq.0".to_string(), 1, false));
    assert_eq!(listed[8], ("seq.1".to_string(), 1, false));
    assert_eq!(listed[9], ("srcnn_2".to_string(), 0, true));
    assert_eq!(flat.len(), 15);
}

#[test]
fn a_model_is_a_layer_outside_nets_too() {
    let out = ok(&format!(
        "{SRCNN}
let m = SRCNN(scale=1)
let s = Sequential(m, ReLU())
print((randn(1, 1, 4, 4) |> s).shape, parameter_count(s) == parameter_count(m))
m.eval()
print(m.conv2d_0.training, m.training)
m.train()
print(m.relu_1.training)"
    ));
    // scale=1 gives ConvTranspose2d(_, 1, 2, stride=1, padding=0): one row and column more.
    assert_eq!(out, "[1, 1, 5, 5] true\nfalse false\ntrue\n");
}

#[test]
fn a_size_that_depends_on_a_symbol_waits_for_the_first_call() {
    let out = ok("
net Classifier(k=10) {
    input x: [N, 3, H, W]
    return x |> Conv2d(3, 4, 3) |> Flatten() |> Linear(_, k)
}
let m = Classifier()
print(parameter_count(m))
print(m(randn(2, 3, 6, 6)).shape, parameter_count(m) == (4*3*9 + 4) + (10*64 + 10))
net Fixed {
    input x: [N, 3, 6, 6]
    return x |> Conv2d(3, 4, 3) |> Flatten() |> Linear(_, 10)
}
print(parameter_count(Fixed()) == (4*3*9 + 4) + (10*64 + 10))
");
    assert_eq!(out, "0\n[2, 10] true\ntrue\n");
}

#[test]
fn probes_print_nothing_and_leave_the_random_stream_as_one_build_would() {
    // Built at once: the stream moves exactly as building the same layer by hand.
    let a = ok("
net One {
    input x: [N, 2, H, W]
    print(\"forward\")
    return x |> Conv2d(_, 3, 3) |> Dropout(0.5)
}
seed(1)
let m = One()
print(randn(3).tolist())
");
    let b = ok("seed(1)\nlet c = Conv2d(2, 3, 3)\nprint(randn(3).tolist())\n");
    assert_eq!(a, b);
    // Left unbuilt: nothing was drawn.
    let c = ok("
net Lazy {
    input x: [N, 3, H, W]
    return x |> Flatten() |> Linear(_, 2)
}
seed(1)
let m = Lazy()
print(randn(3).tolist())
");
    let d = ok("seed(1)\nprint(randn(3).tolist())\n");
    assert_eq!(c, d);
}

#[test]
fn probes_leave_batch_norm_statistics_alone() {
    let out = ok("
net Norm {
    input x: [N, 3, H, W]
    let bn = BatchNorm2d(_)
    return x |> Conv2d(3, 3, 1) |> bn
}
let m = Norm()
print(m.bn.running_mean.tolist(), m.bn.running_var.tolist())
let y = m(randn(4, 3, 5, 5) + 2)
print(m.bn.running_mean.abs().sum().item() > 0)
");
    assert_eq!(out, "[0.0, 0.0, 0.0] [1.0, 1.0, 1.0]\ntrue\n");
}

#[test]
fn a_changed_layer_structure_is_e0507() {
    let (code, err) = fails(
        "
net Grow {
    input x: [N, 2]
    let h = x
    for i in 0..len(x.tolist()) { h = h |> Linear(2, 2) }
    return h
}
let m = Grow()
let y = m(randn(3, 2))
",
    );
    assert_eq!(code, "E0507");
    assert!(err.to_string().contains("more layers"), "{err}");
    let (code, err) = fails(
        "
net Shrink {
    input x: [N, 2]
    let h = x
    for i in 0..len(x.tolist()) { h = h |> Linear(2, 2) }
    return h
}
let m = Shrink()
let y = m(randn(1, 2)) + m(randn(3, 2))
",
    );
    // Built on the probe with N = 1: one layer; three later is E0507.
    assert_eq!(code, "E0507", "{err}");
}

#[test]
fn errors_inside_a_net_body_carry_the_model_call() {
    let (code, err) = fails(
        "
net Bad {
    input x: [N, 2]
    return x.reshape(7)
}
let m = Bad()
let y = m(randn(3, 2))
",
    );
    assert_eq!(code, "E0308");
    assert_eq!(err.calls().len(), 1);
}

#[test]
fn input_declarations_are_checked_at_run_time() {
    let cases = [
        ("m(randn(3, 4, 5), randn(2, 3, 4, 5))", "dimensions"),
        ("m(randn(2, 3, 4, 5), randn(3, 3, 4, 5))", "`N` must agree"),
        (
            "m(randn(2, 5, 4, 5), randn(2, 3, 4, 5))",
            "size 3 in dimension 1",
        ),
    ];
    for (call, says) in cases {
        let (code, err) = fails(&format!(
            "net Two(c=3) {{
    input a: [N, c, H, _]
    input b: [N, 3, H, W]
    return a.sum() + b.sum()
}}
let m = Two()
let k = len([1, 2])
{call}"
        ));
        assert_eq!(code, "E0315", "{call}: {err}");
        assert!(err.to_string().contains(says), "{call}: {err}");
    }
    assert_eq!(
        ok(
            "net Two {\n input a: [N, 3]\n input b: [N, _]\n return a.sum() + b.sum()\n}\nprint(Two()(b=ones(2, 7), a=ones(2, 3)).item())\n"
        ),
        "20.0\n"
    );
}

fn temp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("cnn-nets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

const NORMED: &str = "
net Normed {
    input x: [N, 2, H, W]
    let bn = BatchNorm2d(4)
    return x |> Conv2d(2, 4, 3, padding=1) |> bn |> Sequential(Conv2d(4, 4, 1), ReLU())
}
";

#[test]
fn save_and_load_round_trip_through_safetensors() {
    let path = temp("round.safetensors");
    let p = path.to_str().unwrap();
    let out = ok(&format!(
        "{NORMED}
seed(1)
let a = Normed()
let y = a(randn(3, 2, 5, 5))
a.eval()
let x = randn(2, 2, 5, 5)
let want = a(x)
a.save(\"{p}\")
seed(2)
let b = Normed()
b.eval()
print((b(x) - want).abs().max().item() > 0)
let w = b.parameters()[0]
b.load(\"{p}\")
assert_close(b(x), want)
print(shares_storage(w, b.parameters()[0]), (w - a.parameters()[0]).abs().sum().item() == 0)
print(b.bn.running_mean.tolist() == a.bn.running_mean.tolist())"
    ));
    assert_eq!(out, "true\ntrue true\ntrue\n");
}

#[test]
fn checkpoints_use_pytorch_state_dict_names_dtypes_and_shapes() {
    let path = temp("names.safetensors");
    let p = path.to_str().unwrap();
    ok(&format!("{NORMED}\nNormed().save(\"{p}\")\n"));
    let bytes = std::fs::read(&path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let mut entries: Vec<(String, String, Vec<u64>)> = header
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| *k != "__metadata__")
        .map(|(k, v)| {
            let shape = v["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap())
                .collect();
            (k.clone(), v["dtype"].as_str().unwrap().to_string(), shape)
        })
        .collect();
    entries.sort();
    let f = |n: &str, d: &str, s: &[u64]| (n.to_string(), d.to_string(), s.to_vec());
    assert_eq!(
        entries,
        [
            f("bn.bias", "F32", &[4]),
            f("bn.num_batches_tracked", "I64", &[]),
            f("bn.running_mean", "F32", &[4]),
            f("bn.running_var", "F32", &[4]),
            f("bn.weight", "F32", &[4]),
            f("conv2d_1.bias", "F32", &[4]),
            f("conv2d_1.weight", "F32", &[4, 2, 3, 3]),
            f("sequential_2.0.bias", "F32", &[4]),
            f("sequential_2.0.weight", "F32", &[4, 4, 1, 1]),
        ]
    );
    // A single layer saves under its own names.
    let single = temp("single.safetensors");
    let q = single.to_str().unwrap();
    ok(&format!(
        "let s = Sequential(Linear(3, 2), ReLU())\ns.save(\"{q}\")\nlet t = Sequential(Linear(3, 2), ReLU())\nt.load(\"{q}\")\nassert_close(t.parameters()[0], s.parameters()[0])\n"
    ));
}

#[test]
fn loading_a_checkpoint_that_does_not_fit_names_what_differs() {
    let path = temp("other.safetensors");
    let p = path.to_str().unwrap();
    ok(&format!("Linear(3, 2).save(\"{p}\")\n"));
    let (code, err) = fails(&format!("Linear(4, 2).load(\"{p}\")\n"));
    assert_eq!(code, "E0502");
    assert!(err.to_string().contains("`weight`"), "{err}");
    assert!(err.to_string().contains("[2, 3]"), "{err}");
    let (code, err) = fails(&format!("Conv2d(3, 2, 1).load(\"{p}\")\n"));
    assert_eq!(code, "E0502");
    let (code, err2) = fails(&format!("Sequential(Linear(3, 2)).load(\"{p}\")\n"));
    assert_eq!(code, "E0502");
    assert!(err2.to_string().contains("missing `0.weight`"), "{err2}");
    assert!(err2.to_string().contains("unexpected `bias`"), "{err2}");
    let _ = err;
    // A failed load changes nothing.
    let mut s = Session::new();
    s.ok("let l = Sequential(Linear(3, 2))\nlet w = l.parameters()[0].clone()\n");
    assert!(s.run(&format!("l.load(\"{p}\")\n")).is_err());
    assert_eq!(
        s.ok("print((l.parameters()[0] - w).abs().sum().item() == 0)\n"),
        "true\n"
    );
    let (code, _) = fails("Linear(3, 2).load(\"/no/such/file.safetensors\")\n");
    assert_eq!(code, "E0501");
    let (code, _) = fails("Linear(3, 2).save(\"/no/such/dir/x.safetensors\")\n");
    assert_eq!(code, "E0501");
}

/// A safetensors file as bytes: the header JSON as given, then `data`.
fn safetensors_bytes(header: &str, data: &[u8]) -> Vec<u8> {
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(data);
    bytes
}

#[test]
fn a_checkpoint_naming_a_tensor_twice_is_refused() {
    let weight = r#""dtype":"F32","shape":[1,1],"data_offsets":[0,4]"#;
    let bias = r#""bias":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}"#;
    let data: Vec<u8> = [2.0f32, 3.0].iter().flat_map(|v| v.to_le_bytes()).collect();
    // Each key once: it loads.
    let good = temp("once.safetensors");
    let header = format!("{{\"weight\":{{{weight}}},{bias}}}");
    std::fs::write(&good, safetensors_bytes(&header, &data)).unwrap();
    let g = good.to_str().unwrap();
    ok(&format!(
        "let l = Linear(1, 1)\nl.load(\"{g}\")\nassert l.parameters()[0].item() == 2.0\n"
    ));
    // The same key twice, even with an escape spelling it differently: E0502.
    for twice in ["weight", "\\u0077eight"] {
        let path = temp("twice.safetensors");
        let header = format!("{{\"weight\":{{{weight}}},\"{twice}\":{{{weight}}},{bias}}}");
        std::fs::write(&path, safetensors_bytes(&header, &data)).unwrap();
        let p = path.to_str().unwrap();
        let (code, err) = fails(&format!("Linear(1, 1).load(\"{p}\")\n"));
        assert_eq!(code, "E0502", "{err}");
        assert!(err.to_string().contains("`weight` twice"), "{err}");
    }
}

#[test]
fn a_traced_forward_lists_each_layer_application_with_shapes() {
    let mut s = Session::new();
    s.ok(&format!(
        "{SRCNN}
net Twice {{
    input x: [N, 1, H, W]
    let conv = Conv2d(1, 1, 3, padding=1)
    return x |> conv |> conv |> MaxPool2d(2)
}}
let m = Twice()"
    ));
    let m = s.layer("m");
    let x = Tensor::zeros(&[1, 1, 8, 8]).unwrap();
    let span = cnn::source::Span::new(0, 0);
    let (y, trace) = s.interp.trace_forward(&m, vec![x], span).unwrap();
    let Value::Tensor(y) = y else { panic!() };
    assert_eq!(y.shape(), [1, 1, 4, 4]);
    let rows: Vec<(String, String, Vec<usize>, Vec<usize>)> = trace
        .into_iter()
        .map(|e| (e.name, e.kind, e.input, e.output))
        .collect();
    let r = |n: &str, k: &str, i: &[usize], o: &[usize]| {
        (n.to_string(), k.to_string(), i.to_vec(), o.to_vec())
    };
    assert_eq!(
        rows,
        [
            r("conv", "Conv2d", &[1, 1, 8, 8], &[1, 1, 8, 8]),
            r("conv", "Conv2d", &[1, 1, 8, 8], &[1, 1, 8, 8]),
            r("maxpool2d_1", "MaxPool2d", &[1, 1, 8, 8], &[1, 1, 4, 4]),
        ]
    );
    let layers = m.model().unwrap().layers();
    assert_eq!(
        layers[1].1.geometry(),
        Some(WindowGeometry {
            kernel: [2, 2],
            stride: [2, 2],
            padding: [0, 0],
            dilation: [1, 1],
            transposed: false,
            output_padding: [0, 0],
        })
    );
    s.ok("let t = ConvTranspose2d(1, 1, 4, stride=2, padding=1, output_padding=1, dilation=2)");
    let t = s.layer("t").geometry().unwrap();
    assert!(t.transposed);
    assert_eq!(
        (t.kernel, t.stride, t.padding, t.dilation, t.output_padding),
        ([4, 4], [2, 2], [1, 1], [2, 2], [1, 1])
    );
    s.ok("let same = Conv2d(1, 1, 5, padding=\"same\", dilation=2)");
    assert_eq!(s.layer("same").geometry().unwrap().padding, [4, 4]);
    s.ok("let r = ReLU()");
    assert_eq!(s.layer("r").geometry(), None);
}

// --- summary and receptive_field (LANGUAGE.md §11) ---

/// The table's body rows (between the second and third rule), split into columns.
fn table_rows(table: &str) -> Vec<Vec<String>> {
    let lines: Vec<&str> = table.lines().collect();
    let rules: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].starts_with('─'))
        .collect();
    assert_eq!(rules.len(), 3, "{table}");
    lines[rules[1] + 1..rules[2]]
        .iter()
        .map(|l| {
            // Columns are separated by two or more spaces; a name's type is `name (Kind)`.
            l.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect()
        })
        .collect()
}

#[test]
fn summary_lists_layers_with_symbolic_shapes_parameters_and_receptive_fields() {
    let mut s = Session::new();
    s.ok(SRCNN);
    let table = s.ok("summary(SRCNN(scale=2))");
    assert!(
        table.starts_with("SRCNN(c=1, scale=2): [N, 1, H, W] -> [N, 1, 2*H, 2*W]\n"),
        "{table}"
    );
    let rows = table_rows(&table);
    let expected = [
        ["conv2d_0 (Conv2d)", "[N, 64, H, W]", "5,248", "9x9", "1x1"],
        ["relu_1 (ReLU)", "[N, 64, H, W]", "0", "9x9", "1x1"],
        ["conv2d_2 (Conv2d)", "[N, 32, H, W]", "2,080", "9x9", "1x1"],
        ["relu_3 (ReLU)", "[N, 32, H, W]", "0", "9x9", "1x1"],
        [
            "convtranspose2d_4 (ConvTranspose2d)",
            "[N, 1, 2*H, 2*W]",
            "513",
            "10x10",
            "0.5x0.5",
        ],
    ];
    assert_eq!(rows, expected.map(|r| r.map(str::to_string)).to_vec());
    assert!(table.contains("Total params: 7,841\n"), "{table}");
    assert!(!table.contains("MACs"), "{table}");
}

#[test]
fn summary_with_an_input_counts_macs_from_the_shapes_seen() {
    let mut s = Session::new();
    s.ok(SRCNN);
    s.ok("let m = SRCNN()\nseed(5)\nlet before = randn(3)\nseed(5)");
    let table = s.ok("summary(m, [2, 1, 8, 8])");
    let rows = table_rows(&table);
    // Conv2d: output values x (in/groups x kH x kW); ConvTranspose2d: input values x
    // (out/groups x kH x kW).
    let macs: Vec<&str> = rows.iter().map(|r| r.last().unwrap().as_str()).collect();
    assert_eq!(
        macs,
        [
            (2 * 64 * 8 * 8 * 81).to_string().as_str(),
            "0",
            (2 * 32 * 8 * 8 * 64).to_string().as_str(),
            "0",
            (2 * 32 * 8 * 8 * 16).to_string().as_str(),
        ]
        .map(|n| {
            // With thousands separators.
            let digits: Vec<char> = n.chars().collect();
            let mut out = String::new();
            for (i, c) in digits.iter().enumerate() {
                if i > 0 && (digits.len() - i).is_multiple_of(3) {
                    out.push(',');
                }
                out.push(*c);
            }
            out
        })
    );
    assert_eq!(rows[4][1], "[2, 1, 16, 16]");
    assert!(table.starts_with("SRCNN(c=1, scale=2): [2, 1, 8, 8] -> [2, 1, 16, 16]\n"));
    // The forward is quiet: no gradient, no random draw, nothing printed but the table.
    s.ok("assert (randn(3) - before).abs().max().item() == 0");
    s.ok("for p in m.parameters() { assert p.grad == none }");
}

#[test]
fn summary_names_nested_models_and_marks_shared_layers() {
    let mut s = Session::new();
    s.ok("net Deep(depth=2) {
    input x: [N, 8, H, W]
    let h = x
    for i in 0..depth { h = h |> Conv2d(8, 8, 3, padding=1) }
    return h
}
net Pair {
    input x: [N, 8, H, W]
    let encoder = Deep(depth=1)
    let conv = Conv2d(8, 8, 3, padding=1)
    return x |> encoder |> conv |> conv |> Deep()
}");
    let table = s.ok("summary(Pair())");
    let rows = table_rows(&table);
    let names: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(
        names,
        [
            "encoder (Deep)",
            "encoder.conv2d_0 (Conv2d)",
            "conv (Conv2d)",
            "conv (Conv2d)",
            "deep_2 (Deep)",
            "deep_2.conv2d_0 (Conv2d)",
            "deep_2.conv2d_1 (Conv2d)",
        ]
    );
    assert_eq!(rows[3][2], "(shared)");
    let fields: Vec<&str> = rows.iter().map(|r| r[3].as_str()).collect();
    assert_eq!(
        fields,
        ["3x3", "3x3", "5x5", "7x7", "11x11", "9x9", "11x11"]
    );
    assert!(table.contains("Total params: 2,336\n"), "{table}");
}

#[test]
fn receptive_field_of_models_and_chains() {
    let mut s = Session::new();
    s.ok(SRCNN);
    s.ok("let rf = receptive_field(SRCNN())");
    s.ok("assert rf.size == [10, 10]\nassert rf.jump == [0.5, 0.5]\nassert rf.start == [-0.25, -0.25]");
    s.ok("let chain = receptive_field(Sequential(Conv2d(1, 1, 3), MaxPool2d(2), Conv2d(1, 1, 3, dilation=2)))");
    s.ok("assert chain.size == [12, 12]\nassert chain.jump == [2, 2]");
    s.ok("assert receptive_field(Conv2d(1, 1, [3, 5], stride=[1, 2])).size == [3, 5]");
    let err = s
        .run("receptive_field(Sequential(Conv2d(1, 1, 3), Flatten(), Linear(4, 2)))")
        .unwrap_err();
    assert_eq!(err.code().unwrap().to_string(), "E0505");
    assert!(err.to_string().contains("not known"), "{err}");
}

// --- receptive_field against the input gradient ---

/// One spatial layer of a random chain: its `.cnn` source, whether it is transposed, and
/// its stride.
fn chain_layer() -> impl proptest::strategy::Strategy<Value = (String, bool, i64)> {
    use proptest::prelude::*;
    prop_oneof![
        (1i64..=4, 1i64..=2, 0i64..=1, 1i64..=2).prop_map(|(k, s, p, d)| (
            format!("Conv2d(1, 1, {k}, stride={s}, padding={p}, dilation={d})"),
            false,
            s
        )),
        (2i64..=3, 1i64..=2).prop_map(|(k, s)| (format!("AvgPool2d({k}, stride={s})"), false, s)),
        (2i64..=4, 1i64..=2, 0i64..=1).prop_map(|(k, s, p)| (
            format!("ConvTranspose2d(1, 1, {k}, stride={s}, padding={p})"),
            true,
            s
        )),
    ]
}

/// The rows of the input one output pixel `(i, i)` reaches, as `last - first + 1`, with
/// every weight 1 and average pooling, so no path cancels out.
fn gradient_extent(s: &mut Session, i: i64) -> i64 {
    s.ok(&format!(
        "let x = ones(1, 1, 40, 40, requires_grad=true)
let y = m(x)
y[0, 0, {i}, {i}].backward()
let rows = (x.grad[0, 0].abs().sum(dim=1) > 0)
let idx = arange(40)
let extent = (idx * rows).max().item() - (idx + (1 - rows) * 1000).min().item() + 1"
    ));
    match s.interp.global("extent") {
        Some(Value::Float(f)) => *f as i64,
        Some(Value::Int(n)) => *n,
        other => panic!("extent is {other:?}"),
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// `receptive_field(model).size` is the extent of the input gradient of an output
    /// pixel away from the borders: exactly for convolutions and pooling; for a chain with a
    /// transposed convolution, where a pixel sees at most `ceil(k/s)` inputs, a bound on the
    /// extent of every pixel.
    #[test]
    fn receptive_field_is_the_extent_of_the_input_gradient(
        layers in proptest::collection::vec(chain_layer(), 1..=4)
    ) {
        let transposed = layers.iter().any(|(_, t, _)| *t);
        // The recursion through a transposed convolution treats its input grid as evenly
        // spread; after a stride it is not (neighbouring outputs reach inputs 0 or 2*s apart),
        // so the bound is claimed where every stride comes after the last transposed one.
        let last_transposed = layers.iter().rposition(|(_, t, _)| *t).unwrap_or(0);
        proptest::prop_assume!(layers[..last_transposed].iter().all(|(_, _, s)| *s == 1));
        let chain: Vec<&str> = layers.iter().map(|(l, _, _)| l.as_str()).collect();
        let mut s = Session::new();
        s.ok(&format!(
            "net Chain {{\n    input x: [N, 1, H, W]\n    return x |> {}\n}}\nlet m = Chain()\nlet rf = receptive_field(m)\nwith no_grad {{ for p in m.parameters() {{ p.fill_(1) }} }}",
            chain.join(" |> ")
        ));
        let size = match s.interp.global("rf") {
            Some(Value::Record(r)) => match r.get("size") {
                Some(Value::List(l)) => match l[0] { Value::Int(n) => n, _ => unreachable!() },
                other => panic!("size is {other:?}"),
            },
            other => panic!("rf is {other:?}"),
        };
        // A chain may shrink a 40 x 40 input to nothing: nothing to compare then.
        proptest::prop_assume!(s.run("let out = m(zeros(1, 1, 40, 40)).shape[2]").is_ok());
        let out = match s.interp.global("out") { Some(Value::Int(n)) => *n, other => panic!("{other:?}") };
        // A pixel whose window lies inside the input: the middle of the output.
        proptest::prop_assume!(out >= 5 && size <= 20);
        let middle = out / 2;
        let extents: Vec<i64> = if transposed {
            (middle - 2..=middle + 2).map(|i| gradient_extent(&mut s, i)).collect()
        } else {
            vec![gradient_extent(&mut s, middle)]
        };
        let widest = *extents.iter().max().unwrap();
        if transposed {
            // An upper bound: some pixel may see fewer inputs than `ceil(k/s)`.
            proptest::prop_assert!(widest <= size, "{} gave extents {:?} for size {}", chain.join(" |> "), extents, size);
        } else {
            proptest::prop_assert_eq!(widest, size, "{} gave extents {:?}", chain.join(" |> "), extents);
        }
    }
}
