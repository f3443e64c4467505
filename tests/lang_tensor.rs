//! Tensors, layers and optimizers as the language sees them (LANGUAGE.md §5–§7, §11):
//! semantics checked by running scripts, and finite-difference gradient checks of every
//! differentiable op a script can reach, driven through the language itself.

use cnn::report::Format;
use cnn::source::SourceFile;

/// What a script printed, its exit code and its rendered diagnostics.
struct Outcome {
    output: String,
    code: i32,
    diagnostics: String,
    codes: Vec<String>,
}

fn run(src: &str) -> Outcome {
    let source = SourceFile::new("test.cnn", src.to_string());
    cnn::on_big_stack(move || {
        let t = cnn::run_captured(&source);
        Outcome {
            output: t.output,
            code: t.exit_code,
            diagnostics: cnn::report::render_all(&t.problems, Format::Plain { width: 100 }),
            codes: t.problems.iter().filter_map(|p| p.code()).collect(),
        }
    })
}

/// Runs `src`, which must succeed; returns what it printed.
#[track_caller]
fn ok(src: &str) -> String {
    let o = run(src);
    assert_eq!(o.code, 0, "{src}\n{}", o.diagnostics);
    o.output
}

/// Runs `src`, which must stop with `code`; returns the rendered report.
#[track_caller]
fn fails(src: &str, code: &str) -> String {
    let o = run(src);
    assert_ne!(o.code, 0, "{src} should fail with {code}");
    assert_eq!(
        o.codes.last().map(String::as_str),
        Some(code),
        "{src}\n{}",
        o.diagnostics
    );
    o.diagnostics
}

#[test]
fn printing_follows_pytorch_repr() {
    let out = ok(r#"
print(tensor([[1.5, 2], [3, 4]], requires_grad=true))
let a = tensor([1.0, 2.0], requires_grad=true)
print(a * 2)
print(tensor(3))
print(zeros(2, 3).shape, zeros([2, 3]).ndim)
print(tensor([1, 2]).tolist(), tensor(2.5).item())
"#);
    assert_eq!(
        out,
        "tensor([[1.5000, 2.0000],\n        [3.0000, 4.0000]], requires_grad=true)\n\
         tensor([2., 4.], grad_fn=<MulBackward0>)\n\
         tensor(3.)\n\
         [2, 3] 2\n\
         [1.0, 2.0] 2.5\n"
    );
}

#[test]
fn constructors_take_shapes_spread_or_as_lists() {
    ok(r#"
assert zeros(2, 3).shape == zeros([2, 3]).shape
assert ones(4).shape == [4]
assert full([2, 2], 7).sum().item() == 28
assert arange(5).tolist() == [0, 1, 2, 3, 4]
assert arange(1, 7, 2).tolist() == [1, 3, 5]
assert linspace(0, 1, 5).tolist() == [0, 0.25, 0.5, 0.75, 1]
assert eye(3).sum().item() == 3
assert rand(2, 3).shape == [2, 3] and randn([3]).shape == [3]
let r = randint(0, 10, [100])
assert r.min().item() >= 0 and r.max().item() < 10
assert zeros_like(eye(2)).sum().item() == 0 and ones_like(eye(2)).sum().item() == 4
assert randn_like(eye(2)).shape == [2, 2]
assert zeros(2, requires_grad=true).requires_grad
seed(7)
let a = randn(3)
seed(7)
assert_close(a, randn(3), rtol=0, atol=0)
"#);
}

#[test]
fn operators_broadcast_and_compare() {
    ok(r#"
let x = tensor([[1, 2], [3, 4]])
assert_close(x + 1, tensor([[2, 3], [4, 5]]))
assert_close(1 - x, tensor([[0, -1], [-2, -3]]))
assert_close(2 / x, tensor([[2, 1], [2 / 3, 0.5]]))
assert_close(2 ** x, tensor([[2, 4], [8, 16]]))
assert_close(x ** 2, x * x)
assert_close(x @ eye(2), x)
assert_close(x + tensor([10, 20]), tensor([[11, 22], [13, 24]]))
assert_close(-x, x * -1)
assert_close(x > 2, tensor([[0, 0], [1, 1]]))
assert_close(2 < x, x > 2)
assert_close(x == 4, tensor([[0, 0], [0, 1]]))
assert (x == none) == false and x != none
assert [x] == [x]
assert tensor(1.0) and not tensor(0.0)
if tensor([5]) > 3 { print("one element is a condition") }
assert_close(sum([x, x, 1]), x * 2 + 1)
assert len(x) == 2 and abs(tensor([-3])).item() == 3
"#);
}

#[test]
fn views_share_storage_and_see_writes() {
    ok(r#"
let m = zeros(3, 4)
let row = m[1]
row.fill_(2)
assert m.sum().item() == 8
m[0, 1:3] = tensor([5, 6])
assert m[0].tolist() == [0, 5, 6, 0]
m[2] = [1, 2, 3, 4]
assert m[2, -1].item() == 4
m[:, 0] += 1
assert m[:, 0].tolist() == [1, 3, 2]
assert m[::2].shape == [2, 4] and m[1:, ::3].shape == [2, 2]
assert shares_storage(m, m.t()) and shares_storage(m, m.reshape(12))
assert not shares_storage(m, m.clone())
let rows = 0
for r in m { rows += 1; assert r.shape == [4] }
assert rows == 3
let v = m.view(2, 6)
v[1, 5] = 42
assert m[2, 3].item() == 42
"#);
}

#[test]
fn in_place_operators_act_on_the_tensor_behind_every_name() {
    ok(r#"
let a = tensor([1.0, 2.0])
let b = a
b += 1
b *= 2
assert_close(a, tensor([4, 6]))
b = b - 1
assert_close(a, tensor([4, 6]))
let w = ones(2, requires_grad=true)
with no_grad { w -= 0.5 }
assert_close(w, tensor([0.5, 0.5]))
assert w.is_leaf and w.requires_grad
"#);
    let report = fails("let w = ones(2, requires_grad=true)\nw[0] = 3\n", "E0403");
    assert!(report.contains("no_grad"), "{report}");
}

#[test]
fn grad_mode_follows_with_blocks() {
    ok(r#"
let x = ones(2, requires_grad=true)
let y = x * 1
with no_grad {
    y = x * 2
    with enable_grad { assert (x * 3).requires_grad }
    assert not (x * 3).requires_grad
}
assert not y.requires_grad and y.grad_fn == none
fn inside() { with no_grad { return x * 4 } }
assert not inside().requires_grad
assert (x * 5).requires_grad
"#);
}

#[test]
fn tensor_fields_and_methods() {
    ok(r#"
let x = arange(6).reshape(2, 3)
assert x.T.shape == [3, 2] and x.t().shape == [3, 2]
assert x.ndim == 2 and x.numel() == 6 and x.size() == [2, 3] and x.size(-1) == 3
assert x.flatten().shape == [6] and x.unsqueeze(1).shape == [2, 1, 3]
assert x.unsqueeze(0).squeeze().shape == [2, 3] and x.permute(1, 0).shape == [3, 2]
assert x.transpose(0, 1).contiguous().shape == [3, 2]
assert x[:1].expand(4, 3).shape == [4, 3]
assert x.sum().item() == 15 and x.sum(dim=0).tolist() == [3, 5, 7]
assert x.sum(dim=[0, 1]).item() == 15 and x.mean(dim=1, keepdim=true).shape == [2, 1]
assert x.max().item() == 5 and x.min().item() == 0
let m = x.max(dim=1)
assert m.values.tolist() == [2, 5] and m.indices.tolist() == [2, 2]
assert x.argmax().item() == 5 and x.argmin(dim=1).tolist() == [0, 0]
assert_close(x.clamp(1, 3), tensor([[1, 1, 2], [3, 3, 3]]))
assert_close(x.softmax(1).sum(dim=1), tensor([1, 1]))
assert_close(x.log_softmax(1).exp(), x.softmax(1))
assert_close(x.pow(2), x * x)
assert_close(tensor([-1, 4]).abs().sqrt(), tensor([1, 2]))
let z = zeros(3)
z.add_(2)
z.sub_(tensor([1, 1, 1]))
z.mul_(4).div_(2)
assert z.tolist() == [2, 2, 2]
z.clamp_(0, 1).zero_()
assert z.sum().item() == 0
z.uniform_(2, 3)
assert z.min().item() >= 2
z.normal_(0, 1).copy_(tensor([1, 2, 3]))
assert z.tolist() == [1, 2, 3]
"#);
}

#[test]
fn autograd_through_the_language() {
    ok(r#"
let a = tensor([1.0, 2.0], requires_grad=true)
(a * a).sum().backward()
assert_close(a.grad, tensor([2, 4]))
(a * a).sum().backward()
assert_close(a.grad, tensor([4, 8]))
a.grad = none
let b = a * 3
b.retain_grad()
b.sum().backward(retain_graph=true)
assert_close(b.grad, tensor([1, 1]))
assert_close(a.grad, tensor([3, 3]))
let v = a * a
v.backward(tensor([1.0, 0.5]))
assert_close(a.grad, tensor([5, 5]))
assert a.detach().grad_fn == none and not a.detach().requires_grad
let w = tensor(2.0).requires_grad_()
assert w.requires_grad and w.is_leaf
"#);
}

#[test]
fn non_leaf_grad_reads_warn_once() {
    let o = run(r#"
let x = tensor([1.0, 2.0], requires_grad=true)
let y = x * 2
y.sum().backward()
for i in 0..3 { assert y.grad == none }
"#);
    assert_eq!(o.code, 0, "{}", o.diagnostics);
    assert_eq!(o.codes, vec!["W0406"]);
}

#[test]
fn grad_fn_names_are_pytorchs() {
    let out = ok(r#"
let x = randn(1, 4, 6, 6, requires_grad=true)
print(conv2d(x, randn(2, 4, 3, 3)).grad_fn)
print(conv_transpose2d(x, randn(4, 2, 3, 3)).grad_fn)
print(max_pool2d(x, 2).grad_fn, avg_pool2d(x, 2).grad_fn)
print(interpolate(x, scale_factor=2).grad_fn)
print(interpolate(x, size=[3, 3], mode="bilinear").grad_fn)
print(pixel_shuffle(x, 2).grad_fn)
print(BatchNorm2d(4)(x).grad_fn)
print(Linear(6, 2)(x).grad_fn, x[0].grad_fn)
"#);
    assert_eq!(
        out,
        "ConvolutionBackward0\nConvolutionBackward0\n\
         MaxPool2DWithIndicesBackward0 AvgPool2DBackward0\n\
         UpsampleNearest2DBackward0\nUpsampleBilinear2DBackward0\n\
         PixelShuffleBackward0\nNativeBatchNormBackward0\n\
         ViewBackward0 SelectBackward0\n"
    );
}

#[test]
fn layers_have_pytorch_layouts_and_initialisation() {
    ok(r#"
let conv = Conv2d(4, 8, [3, 5], groups=2)
assert conv.weight.shape == [8, 2, 3, 5] and conv.bias.shape == [8]
let bound = 1 / (2 * 3 * 5) ** 0.5
assert conv.weight.abs().max().item() <= bound and conv.bias.abs().max().item() <= bound
assert conv.weight.requires_grad and conv.weight.is_leaf
let up = ConvTranspose2d(4, 6, 2, groups=2)
assert up.weight.shape == [4, 3, 2, 2] and up.bias.shape == [6]
assert up.weight.abs().max().item() <= 1 / 12 ** 0.5
let fc = Linear(10, 3, bias=false)
assert fc.weight.shape == [3, 10] and fc.bias == none
let bn = BatchNorm2d(3)
assert bn.weight.tolist() == [1, 1, 1] and bn.bias.tolist() == [0, 0, 0]
assert bn.running_mean.tolist() == [0, 0, 0] and bn.running_var.tolist() == [1, 1, 1]
assert not bn.running_mean.requires_grad
let model = Sequential(Conv2d(1, 2, 3), ReLU(), Flatten(), Linear(2 * 4 * 4, 3))
let names = []
for p in model.named_parameters() { names = names + [p[0]] }
assert names == ["0.weight", "0.bias", "3.weight", "3.bias"]
assert len(model.parameters()) == 4
assert parameter_count(model) == 2 * 9 + 2 + 32 * 3 + 3
assert model(randn(5, 1, 6, 6)).shape == [5, 3]
assert conv.in_channels == 4 and conv.out_channels == 8 and conv.kernel_size == [3, 5]
"#);
}

#[test]
fn underscore_sizes_are_inferred_at_the_first_call() {
    ok(r#"
let model = Sequential(Conv2d(_, 8, 3, padding=1), BatchNorm2d(_), ReLU(), Flatten(), Linear(_, 2))
assert parameter_count(model) == 0
let y = model(randn(2, 3, 4, 4))
assert y.shape == [2, 2]
assert model.parameters()[0].shape == [8, 3, 3, 3]
assert model.parameters()[4].shape == [2, 128]
"#);
}

#[test]
fn train_and_eval_switch_dropout_and_batch_norm() {
    ok(r#"
let drop = Dropout(0.5)
let x = ones(1000)
let y = drop(x)
assert y.min().item() == 0 and y.max().item() == 2
drop.eval()
assert_close(drop(x), x)
let bn = BatchNorm2d(2)
let batch = randn(8, 2, 3, 3) * 3 + 5
let out = bn(batch)
assert_close(out.mean(dim=[0, 2, 3]), zeros(2), atol=1e-4)
assert bn.running_mean.min().item() > 0.3
let model = Sequential(bn, Dropout())
model.eval()
assert not bn.training and not model.training
let before = bn.running_mean.clone()
bn(batch)
assert_close(bn.running_mean, before)
model.train()
assert bn.training
"#);
}

#[test]
fn parameters_can_be_replaced_with_a_tensor_of_their_shape() {
    ok(r#"
let conv = Conv2d(1, 1, 2, bias=false)
conv.weight = ones(1, 1, 2, 2)
assert conv.weight.requires_grad and conv.weight.is_leaf
assert conv(ones(1, 1, 2, 2)).item() == 4
with no_grad { conv.weight += 1 }
assert conv(ones(1, 1, 2, 2)).item() == 8
assert conv.weight.is_leaf
"#);
    let report = fails("let fc = Linear(2, 3)\nfc.weight = ones(2, 3)\n", "E0306");
    assert!(report.contains("[3, 2]"), "{report}");
}

#[test]
fn optimizers_update_parameters() {
    ok(r#"
let w = tensor([1.0, -2.0], requires_grad=true)
let opt = SGD([w], lr=0.1)
(w * w).sum().backward()
opt.step()
assert_close(w, tensor([0.8, -1.6]))
opt.zero_grad()
assert w.grad == none
let model = Linear(3, 1)
let adam = Adam(model.parameters(), lr=0.01)
let x = randn(16, 3)
let target = x.sum(dim=1, keepdim=true)
let first = mse_loss(model(x), target).item()
for i in 0..200 {
    adam.zero_grad()
    mse_loss(model(x), target).backward()
    adam.step()
}
assert mse_loss(model(x), target).item() < first / 10
let decay = AdamW([tensor([1.0], requires_grad=true)])
print(decay)
"#);
    fails(
        "let w = ones(2, requires_grad=true)\nlet o = SGD([w * 2], lr=0.1)\n",
        "E0505",
    );
}

#[test]
fn shape_annotations_are_checked() {
    ok("let N = 4\nlet x: [N, 3, _] = zeros(4, 3, 7)\nlet y: [B, B] = eye(2)\n");
    // A size that differs is E0312 (two dims that must be equal), a rank E0304.
    fails("let x: [2, 3] = zeros(2, 4)\n", "E0312");
    fails("let x: [B, B] = zeros(2, 4)\n", "E0312");
    fails("let x: [2, 4, 1] = zeros(2, 4)\n", "E0304");
    // What the checker cannot infer takes the annotation; the run checks it.
    fails(
        "let x: [N, 3] = zeros(2, 4) @ randn(4, 3)\nlet y = x + randn(4, 3)\n",
        "E0306",
    );
    ok(
        "fn f(t) { return t }\nlet x: [2, 3] = f(zeros(2, 3))\nassert (x + ones(2, 3)).shape == [2, 3]\n",
    );
    fails("let x: [2] = 5\n", "E0207");
}

#[test]
fn pipes_call_layers_and_functions() {
    ok(r#"
let y = randn(2, 1, 8, 8) |> Conv2d(1, 4, 3, padding="same") |> ReLU()
assert y.shape == [2, 4, 8, 8] and y.min().item() >= 0
"#);
    let out = ok("print((randn(2, 1, 8, 8) |> Conv2d(1, 4, 2, padding=\"same\")).shape)\n");
    assert_eq!(out, "[2, 4, 8, 8]\n");
}

#[test]
fn run_time_errors_point_at_the_failing_expression() {
    fails("let x = randn(2, 3)\nlet y = x.reshape(4, 2)\n", "E0308");
    fails("let x = randn(2, 3)\nlet y = x + randn(4, 3)\n", "E0306");
    fails("let x = randn(2, 3)\nlet y = x @ randn(4, 5)\n", "E0307");
    fails("let x = randn(2, 3)\nlet y = x.unsqueeze(5)\n", "E0309");
    fails("let x = randn(2, 3)\nprint(x[2])\n", "E0313");
    fails("let x = randn(2, 3)\nif x { }\n", "E0505");
    fails("let x = randn(2, 3)\nlet y = x // 2\n", "E0207");
    fails("let l = Conv2d(1, 2, 3)\nl(3)\n", "E0207");
    fails(
        "let l = Conv2d(1, 2, 3)\nl(randn(1, 1, 3, 3), 2)\n",
        "E0203",
    );
    fails("print(randn(2).norm())\n", "E0202");
    fails("print(Conv2d(1, 2, 3).wieght)\n", "E0202");
    fails(
        "let l = Conv2d(1, 2, 3, padding=\"same\", stride=2)\n",
        "E0311",
    );
    fails("let l = Conv2d(1, 2, 0)\n", "E0311");
    fails(
        "let y = conv_transpose2d(randn(1, 1, 3, 3), randn(1, 1, 3, 3), stride=2, output_padding=2)\n",
        "E0311",
    );
    fails("let y = pixel_shuffle(randn(1, 3, 2, 2), 2)\n", "E0303");
    fails("let y = BatchNorm2d(3)(randn(2, 4, 5, 5))\n", "E0303");
    fails("let y = Linear(10, 2)(randn(4, 3))\n", "E0305");
    fails("let y = tensor([[1, 2], 3])\n", "E0310");
    fails("let y = tensor([\"a\"])\n", "E0207");
    fails("let y = mse_loss(randn(4, 3), randn(4))\n", "E0314");
}

// ----- finite-difference gradient checks through the language --------------------------

/// Distinct, well-separated values (spacing `2/n` in `(-1, 1)`, none near 0), so kinks
/// (relu, max pooling, |x|) are never within a perturbation of an input.
fn spread(n: usize, salt: usize) -> Vec<f64> {
    let stride = [7919, 104729, 1299709][salt % 3] % n.max(2);
    let stride = if gcd(stride, n) == 1 { stride } else { 1 };
    (0..n)
        .map(|k| {
            let j = (k * stride + salt) % n;
            (j as f64 - n as f64 / 2.0 + 0.5) * 2.0 / n as f64
        })
        .collect()
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// A literal for a tensor of `shape` with [`spread`] values, requiring grad.
fn input(shape: &[usize], salt: usize) -> String {
    let n: usize = shape.iter().product();
    let values: Vec<String> = spread(n, salt).iter().map(|v| format!("{v:.5}")).collect();
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    format!(
        "tensor([{}]).reshape({}).requires_grad_()",
        values.join(", "),
        dims.join(", ")
    )
}

/// The checker, in the language: compares each input's `.grad` after backward of
/// `sum(f(xs) * w)` with central differences of the same sum.
const GRADCHECK: &str = r#"
fn gradcheck(f, xs, eps=0.004, tol=0.02) {
    for x in xs { x.grad = none }
    let out = f(xs)
    seed(99)
    let w = randn_like(out)
    (out * w).sum().backward()
    let k = 0
    for x in xs {
        let flat = x.detach().reshape(-1)
        let grad = zeros_like(flat)
        if x.grad != none { grad = x.grad.reshape(-1) }
        for i in 0..flat.numel() {
            let old = flat[i].item()
            let up = 0.0
            let down = 0.0
            with no_grad {
                flat[i] = old + eps
                up = (f(xs) * w).sum().item()
                flat[i] = old - eps
                down = (f(xs) * w).sum().item()
                flat[i] = old
            }
            let numeric = (up - down) / (2 * eps)
            let analytic = grad[i].item()
            assert abs(numeric - analytic) <= tol * (1 + abs(numeric)), "input " + str(k) + " element " + str(i) + ": analytic " + str(analytic) + " numeric " + str(numeric)
        }
        k += 1
    }
}
"#;

/// Checks `body` (the body of `fn f(xs)`, returning a tensor) on inputs of `shapes`.
#[track_caller]
fn gradcheck(body: &str, shapes: &[&[usize]]) {
    let inputs: Vec<String> = shapes
        .iter()
        .enumerate()
        .map(|(i, s)| input(s, i))
        .collect();
    let src = format!(
        "{GRADCHECK}\nfn f(xs) {{ {body} }}\ngradcheck(f, [{}])\n",
        inputs.join(", ")
    );
    let o = run(&src);
    assert_eq!(
        o.code, 0,
        "gradcheck of `{body}` failed:\n{}",
        o.diagnostics
    );
}

#[test]
fn gradcheck_elementwise_and_reductions() {
    let m: &[usize] = &[2, 3];
    for body in [
        "return xs[0] + xs[1]",
        "return xs[0] - xs[1] * 2",
        "return xs[0] * xs[1]",
        "return xs[0] / (xs[1].abs() + 1)",
        "return (xs[0] + 2) ** (xs[1] + 1)",
        "return 3 - xs[0] / 2 + 1 / (xs[1] + 3)",
        "return 2 ** xs[0] + xs[1] ** 2",
        "return -xs[0] + xs[1].neg()",
        "return xs[0].abs() + (xs[1] + 2).sqrt() + xs[0].exp() + (xs[1] + 2).log()",
        "return xs[0].relu() + xs[1].sigmoid() + xs[0].tanh() + xs[1].leaky_relu(0.2)",
        "return relu(xs[0]) + sigmoid(xs[1]) + tanh(xs[0]) + leaky_relu(xs[1], 0.1)",
        "return xs[0].clamp(-0.6, 0.4) + xs[1].pow(3)",
        "return xs[0].softmax(1) + xs[1].log_softmax(0) + softmax(xs[0], 0) + log_softmax(xs[1], 1)",
        "return xs[0].sum() + xs[1].sum(dim=1) + xs[0].mean(dim=0).sum() + xs[1].mean()",
        "return xs[0].sum(dim=[0, 1], keepdim=true) * xs[1]",
        "return xs[0].max() + xs[1].min() + xs[0].max(dim=1).values.sum() + xs[1].min(dim=0).values.sum()",
    ] {
        gradcheck(body, &[m, m]);
    }
}

#[test]
fn gradcheck_views_indexing_and_joins() {
    for body in [
        "return xs[0].reshape(3, 2) * xs[1].view(3, 2)",
        "return xs[0].t() + xs[1].T + xs[0].transpose(0, 1) + xs[1].permute(1, 0)",
        "return xs[0].flatten() + xs[1].unsqueeze(0).squeeze().reshape(-1).contiguous()",
        "return xs[0][1:, ::2] * xs[1][0, 1] + xs[0][:, 0].unsqueeze(1).expand(2, 2)",
        "return xs[0].clone() * 2 + xs[1].t().contiguous().t()",
    ] {
        gradcheck(body, &[&[2, 3], &[2, 3]]);
    }
    gradcheck("return cat([xs[0], xs[1] * 2], 1)", &[&[2, 3], &[2, 3]]);
    gradcheck("return stack([xs[1], xs[0]], 1)", &[&[2, 3], &[2, 3]]);
    gradcheck("return xs[0] @ xs[1]", &[&[2, 3], &[3, 4]]);
    gradcheck(
        "return matmul(xs[0], xs[1]) + xs[0].matmul(xs[1])",
        &[&[2, 2, 3], &[3, 4]],
    );
    gradcheck(
        "return linear(xs[0], xs[1], xs[2])",
        &[&[4, 3], &[2, 3], &[2]],
    );
}

#[test]
fn gradcheck_in_place_writes() {
    let m: &[usize] = &[2, 3];
    for body in [
        "let y = xs[0] * 1\ny[0, 1:3] = xs[1][1, :2]\nreturn y",
        "let y = xs[0] * 1\ny += xs[1]\ny *= xs[1]\nreturn y",
        "let y = xs[0] * 2\ny.mul_(xs[1]).add_(2)\nreturn y.exp()",
        "let y = xs[0] * 1\nlet r = y[1]\nr.mul_(xs[1][0])\nreturn y",
    ] {
        gradcheck(body, &[m, m]);
    }
}

#[test]
fn gradcheck_convolutions_on_every_axis() {
    let x: &[usize] = &[2, 4, 6, 5];
    for args in [
        "",
        ", stride=2",
        ", stride=[2, 1], padding=[1, 0]",
        ", padding=2",
        ", dilation=2, padding=1",
        ", dilation=[1, 2], stride=[1, 2]",
        ", padding=\"same\"",
    ] {
        gradcheck(
            &format!("return conv2d(xs[0], xs[1], xs[2]{args})"),
            &[x, &[3, 4, 3, 3], &[3]],
        );
    }
    gradcheck(
        "return conv2d(xs[0], xs[1], groups=2, padding=1)",
        &[x, &[4, 2, 3, 3]],
    );
    gradcheck(
        "return conv2d(xs[0], xs[1], padding=\"same\")",
        &[x, &[2, 4, 2, 2]],
    );
    gradcheck("return conv2d(xs[0], xs[1])", &[&[4, 5, 5], &[2, 4, 2, 2]]);
    let t: &[usize] = &[2, 4, 3, 3];
    for args in [
        "",
        ", stride=2",
        ", stride=2, output_padding=1",
        ", stride=[2, 3], padding=[1, 0], output_padding=[1, 2]",
        ", padding=1",
        ", dilation=2",
        ", dilation=2, stride=2, output_padding=1",
    ] {
        gradcheck(
            &format!("return conv_transpose2d(xs[0], xs[1], xs[2]{args})"),
            &[t, &[4, 3, 3, 2], &[3]],
        );
    }
    gradcheck(
        "return conv_transpose2d(xs[0], xs[1], groups=2, stride=2)",
        &[t, &[4, 1, 2, 2]],
    );
}

#[test]
fn gradcheck_pooling_on_every_axis() {
    let x: &[usize] = &[2, 2, 7, 6];
    for args in [
        "2",
        "3, stride=2",
        "[3, 2], stride=[2, 1]",
        "3, padding=1",
        "3, stride=2, ceil_mode=true",
        "2, dilation=2",
        "[2, 3], dilation=[2, 1], padding=[1, 1], ceil_mode=true",
    ] {
        gradcheck(&format!("return max_pool2d(xs[0], {args})"), &[x]);
    }
    for args in [
        "2",
        "3, stride=2",
        "[3, 2], stride=[2, 1]",
        "3, padding=1",
        "3, padding=1, count_include_pad=false",
        "3, stride=2, ceil_mode=true",
        "3, stride=2, padding=1, ceil_mode=true, count_include_pad=false",
    ] {
        gradcheck(&format!("return avg_pool2d(xs[0], {args})"), &[x]);
    }
}

#[test]
fn gradcheck_resampling_normalisation_and_losses() {
    let x: &[usize] = &[1, 2, 3, 4];
    gradcheck("return interpolate(xs[0], scale_factor=2)", &[x]);
    gradcheck("return interpolate(xs[0], size=[5, 7])", &[x]);
    gradcheck(
        "return interpolate(xs[0], scale_factor=2, mode=\"bilinear\")",
        &[x],
    );
    gradcheck(
        "return interpolate(xs[0], size=[2, 7], mode=\"bilinear\")",
        &[x],
    );
    gradcheck("return pixel_shuffle(xs[0], 2)", &[&[1, 8, 2, 3]]);
    gradcheck(
        "return batch_norm(xs[0], zeros(3), ones(3), xs[1], xs[2], training=true)",
        &[&[2, 3, 2, 2], &[3], &[3]],
    );
    gradcheck(
        "return batch_norm(xs[0], zeros(3) + 0.1, ones(3) * 2, xs[1], xs[2])",
        &[&[2, 3, 2, 2], &[3], &[3]],
    );
    gradcheck("seed(3)\nreturn dropout(xs[0], 0.4)", &[&[3, 4]]);
    gradcheck("return mse_loss(xs[0], xs[1])", &[&[3, 4], &[3, 4]]);
    gradcheck("return l1_loss(xs[0], xs[1] * 0.5)", &[&[3, 4], &[3, 4]]);
    gradcheck("return cross_entropy(xs[0], tensor([0, 3, 1]))", &[&[3, 4]]);
    gradcheck(
        "return binary_cross_entropy_with_logits(xs[0], xs[1].sigmoid())",
        &[&[3, 4], &[3, 4]],
    );
}

#[test]
fn gradcheck_layers_reach_their_parameters() {
    let src = format!(
        r#"{GRADCHECK}
seed(1)
let model = Sequential(Conv2d(2, 3, 3, padding=1), BatchNorm2d(3), Tanh(),
                       AvgPool2d(2), Flatten(), Linear(3 * 2 * 2, 2))
let ps = model.parameters()
fn f(xs) {{ return model({x}) }}
gradcheck(f, ps, tol=0.03)
"#,
        x = input(&[2, 2, 4, 4], 5).replace(".requires_grad_()", "")
    );
    let o = run(&src);
    assert_eq!(o.code, 0, "{}", o.diagnostics);
}
