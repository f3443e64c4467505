//! The tensor library on its own: the semantics the language's conformance scripts check
//! (views, detach, accumulation, retain_grad, retain_graph, every autograd error), PyTorch's
//! printing, and a finite-difference check of the gradient of every differentiable op.

use cnn::tensor::ops::adaptive_pool::adaptive_pool2d_shape;
use cnn::tensor::ops::loss::dropout2d_check;
use cnn::tensor::ops::norm::{
    InstanceNormArgs, group_norm_check, instance_norm_check, layer_norm_check,
};
use cnn::tensor::shape::ShapeError;
use cnn::tensor::{
    Comparison, GeluApproximate, IndexItem, NestedList, Result, Site, Tensor, TensorError, no_grad,
    seed, set_current_site,
};

#[rustfmt::skip]
#[path = "tensor/pytorch_layers.rs"]
mod pytorch_layers;

// ----- helpers -----

fn t(values: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_vec(values.to_vec(), shape).unwrap()
}

fn v(values: &[f32]) -> Tensor {
    t(values, &[values.len()])
}

fn leaf(values: &[f32], shape: &[usize]) -> Tensor {
    let x = t(values, shape);
    x.requires_grad_(true).unwrap();
    x
}

#[track_caller]
fn assert_close(actual: &Tensor, expected: &[f32]) {
    let values = actual.to_vec();
    assert_eq!(values.len(), expected.len(), "{actual} vs {expected:?}");
    for (a, e) in values.iter().zip(expected) {
        assert!(
            a == e || (a - e).abs() <= 1e-4 + 1e-4 * e.abs(),
            "{actual} vs {expected:?}"
        );
    }
}

#[track_caller]
fn grad_of(x: &Tensor) -> Vec<f32> {
    x.grad().expect("a gradient").to_vec()
}

fn idx(i: i64) -> IndexItem {
    IndexItem::Int(i)
}

fn range(start: Option<i64>, end: Option<i64>, step: i64) -> IndexItem {
    IndexItem::Slice { start, end, step }
}

/// Deterministic pseudo-random values in roughly [-1.5, 1.5], kept away from 0 and from
/// each other's kinks (relu, abs, clamp) by the finite-difference step.
fn values(n: usize, salt: u32) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let x = ((i as u32)
                .wrapping_mul(2_654_435_761)
                .wrapping_add(salt.wrapping_mul(40503))
                >> 8) as f32
                / (1u32 << 24) as f32;
            let y = 3.0 * x - 1.5;
            if y.abs() < 0.05 { y + 0.1 } else { y }
        })
        .collect()
}

fn input(shape: &[usize], salt: u32) -> Tensor {
    leaf(&values(shape.iter().product(), salt), shape)
}

/// Checks the gradients `f` gives each input against central differences of
/// `L = Σ w·f(inputs)` (fixed pseudo-random weights `w`), computed in f64 from f32 forwards.
#[track_caller]
fn gradcheck(inputs: Vec<Tensor>, f: impl Fn(&[Tensor]) -> Result<Tensor>) {
    let out = f(&inputs).unwrap();
    let weights = t(&values(out.numel(), 99), out.shape());
    let loss_of = |xs: &[Tensor]| -> f64 {
        let _guard = no_grad();
        let y = f(xs).unwrap().to_vec();
        y.iter()
            .zip(weights.to_vec())
            .map(|(&y, w)| f64::from(y) * f64::from(w))
            .sum()
    };
    for x in &inputs {
        x.set_grad(None);
    }
    out.mul(&weights)
        .unwrap()
        .sum()
        .unwrap()
        .backward(None, false)
        .unwrap();
    let eps = 1e-3f32;
    for (which, x) in inputs.iter().enumerate() {
        if !x.requires_grad() {
            continue;
        }
        let analytic = x
            .grad()
            .map(|g| g.to_vec())
            .unwrap_or_else(|| vec![0.0; x.numel()]);
        let base = x.to_vec();
        for i in 0..base.len() {
            let shifted = |delta: f32| -> f64 {
                let mut moved = base.clone();
                moved[i] += delta;
                let xs: Vec<Tensor> = inputs
                    .iter()
                    .enumerate()
                    .map(|(j, y)| {
                        if j == which {
                            t(&moved, x.shape())
                        } else {
                            y.detach()
                        }
                    })
                    .collect();
                loss_of(&xs)
            };
            let numeric = (shifted(eps) - shifted(-eps)) / (2.0 * f64::from(eps));
            let a = f64::from(analytic[i]);
            assert!(
                (a - numeric).abs() <= 2e-2 * (1.0 + numeric.abs()),
                "input {which} element {i}: analytic {a} vs numeric {numeric}"
            );
        }
    }
}

// ----- construction, views and storage -----

#[test]
fn constructors() {
    assert_eq!(Tensor::zeros(&[2, 3]).unwrap().to_vec(), vec![0.0; 6]);
    assert_eq!(Tensor::full(&[2], 2.5).unwrap().to_vec(), vec![2.5, 2.5]);
    assert_eq!(
        Tensor::arange(0.0, 5.0, 2.0).unwrap().to_vec(),
        vec![0.0, 2.0, 4.0]
    );
    assert_eq!(
        Tensor::arange(1.0, 0.0, -0.25).unwrap().to_vec(),
        vec![1.0, 0.75, 0.5, 0.25]
    );
    assert_eq!(
        Tensor::linspace(0.0, 1.0, 5).unwrap().to_vec(),
        vec![0.0, 0.25, 0.5, 0.75, 1.0]
    );
    assert_eq!(
        Tensor::eye(2, 3).unwrap().to_vec(),
        vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    );
    assert!(matches!(
        Tensor::arange(0.0, 1.0, 0.0),
        Err(TensorError::Value { .. })
    ));
    assert!(matches!(
        Tensor::arange(0.0, 1.0, -1.0),
        Err(TensorError::Value { .. })
    ));
    assert!(matches!(
        Tensor::randint(3, 3, &[2]),
        Err(TensorError::Value { .. })
    ));
    seed(3);
    let a = Tensor::randn(&[4]).unwrap().to_vec();
    let r = Tensor::rand(&[100]).unwrap().to_vec();
    seed(3);
    assert_eq!(Tensor::randn(&[4]).unwrap().to_vec(), a);
    assert!(r.iter().all(|&x| (0.0..1.0).contains(&x)));
    let k = Tensor::randint(-1, 2, &[50]).unwrap().to_vec();
    assert!(k.iter().all(|&x| [-1.0, 0.0, 1.0].contains(&x)));
    assert_eq!(Tensor::zeros(&[0, 3]).unwrap().numel(), 0);
}

#[test]
fn absurd_allocations_are_refused() {
    let huge = Tensor::zeros(&[1 << 20, 1 << 20, 1 << 20]);
    assert!(
        matches!(huge, Err(TensorError::TooLarge { .. })),
        "{huge:?}"
    );
    let overflow = Tensor::ones(&[usize::MAX, 4]);
    assert!(matches!(overflow, Err(TensorError::TooLarge { .. })));
    // An expanded view shares its storage, but must still fit once materialised.
    let huge_view = Tensor::zeros(&[1]).unwrap().expand(&[1 << 30, 1 << 30]);
    assert!(matches!(
        huge_view,
        Err(TensorError::TooLarge { op: "expand", .. })
    ));
    let wide = Tensor::zeros(&[1 << 20, 1]).unwrap();
    let tall = Tensor::zeros(&[1, 1 << 20]).unwrap();
    assert!(matches!(
        wide.add(&tall),
        Err(TensorError::TooLarge { op: "add", .. })
    ));
}

#[test]
fn names_are_references_and_inplace_is_seen() {
    // references_and_inplace.cnn
    let a = v(&[1.0, 1.0]);
    let c = a.clone();
    c.add_scalar_(1.0).unwrap();
    assert_close(&a, &[2.0, 2.0]);
    let c = c.add_scalar(1.0).unwrap();
    assert_close(&a, &[2.0, 2.0]);
    assert_close(&c, &[3.0, 3.0]);
    assert!(!Tensor::shares_storage(&a, &c));
    a.add_scalar_(10.0).unwrap();
    assert_close(&a, &[12.0, 12.0]);
    a.mul_scalar_(0.5).unwrap();
    assert_close(&a, &[6.0, 6.0]);

    let m = Tensor::zeros(&[2, 3]).unwrap();
    let row = m.index(&[idx(1)]).unwrap();
    row.fill_(7.0).unwrap();
    assert_eq!(m.sum().unwrap().item().unwrap(), 21.0);
    let u = m.unsqueeze(0).unwrap();
    u.index_fill_(&[idx(0), idx(0), idx(0)], -1.0).unwrap();
    assert_eq!(m.index(&[idx(0), idx(0)]).unwrap().item().unwrap(), -1.0);
    let r = m.reshape(&[3, 2]).unwrap();
    assert!(Tensor::shares_storage(&m, &r));
    r.index_fill_(&[idx(2), idx(1)], 9.0).unwrap();
    assert_eq!(m.index(&[idx(1), idx(2)]).unwrap().item().unwrap(), 9.0);
    let tcol = m.t().unwrap();
    assert_eq!(tcol.shape(), &[3, 2]);
    assert!(Tensor::shares_storage(&m, &tcol));
    let sq = m.unsqueeze(1).unwrap().squeeze();
    assert_eq!(sq.shape(), &[2, 3]);
    assert!(Tensor::shares_storage(&m, &sq));
}

#[test]
fn views_and_copies() {
    let x = t(&values(24, 1), &[2, 3, 4]);
    let p = x.permute(&[2, 0, 1]).unwrap();
    assert_eq!(p.shape(), &[4, 2, 3]);
    assert!(!p.is_contiguous());
    // reshape of non-contiguous data copies; view refuses.
    let flat = p.reshape(&[-1]).unwrap();
    assert!(!Tensor::shares_storage(&flat, &x));
    assert!(matches!(
        p.view(&[24]),
        Err(TensorError::ViewNotContiguous { .. })
    ));
    assert_eq!(p.contiguous().unwrap().to_vec(), flat.to_vec());
    // view of contiguous data shares.
    let w = x.view(&[6, -1]).unwrap();
    assert_eq!(w.shape(), &[6, 4]);
    assert!(Tensor::shares_storage(&w, &x));
    assert!(matches!(
        x.reshape(&[5, -1]),
        Err(TensorError::ReshapeNumel { .. })
    ));
    assert!(matches!(
        x.reshape(&[4, 2]),
        Err(TensorError::ReshapeNumel { .. })
    ));
    assert_eq!(x.flatten(1, -1).unwrap().shape(), &[2, 12]);
    assert_eq!(x.flatten(0, -1).unwrap().shape(), &[24]);
    let e = v(&[1.0, 2.0])
        .unsqueeze(1)
        .unwrap()
        .expand(&[2, 3])
        .unwrap();
    assert_eq!(e.to_vec(), vec![1.0, 1.0, 1.0, 2.0, 2.0, 2.0]);
    assert!(matches!(
        v(&[1.0, 2.0]).expand(&[3]),
        Err(TensorError::ShapeMismatch { .. })
    ));
    let tt = t(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])
        .numpy_t()
        .unwrap();
    assert_eq!(tt.to_vec(), vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    assert!(matches!(x.t(), Err(TensorError::Rank { .. })));
    assert_eq!(x.squeeze_dim(0).unwrap().shape(), &[2, 3, 4]);
    assert_eq!(x.transpose(0, -1).unwrap().shape(), &[4, 3, 2]);
    let c = x.clone_tensor().unwrap();
    assert!(!Tensor::shares_storage(&c, &x));
    assert_eq!(c.to_vec(), x.to_vec());
}

#[test]
fn indexing() {
    let x = t(&(0..12).map(|i| i as f32).collect::<Vec<_>>(), &[3, 4]);
    assert_eq!(
        x.index(&[idx(-1)]).unwrap().to_vec(),
        vec![8.0, 9.0, 10.0, 11.0]
    );
    assert_eq!(
        x.index(&[IndexItem::FULL, idx(1)]).unwrap().to_vec(),
        vec![1.0, 5.0, 9.0]
    );
    let s = x
        .index(&[range(Some(1), None, 1), range(None, None, 2)])
        .unwrap();
    assert_eq!(s.shape(), &[2, 2]);
    assert_eq!(s.to_vec(), vec![4.0, 6.0, 8.0, 10.0]);
    assert_eq!(
        x.index(&[range(Some(-2), Some(100), 1)]).unwrap().shape(),
        &[2, 4]
    );
    assert_eq!(
        x.index(&[range(Some(3), Some(1), 1)]).unwrap().shape(),
        &[0, 4]
    );
    assert!(matches!(
        x.index(&[idx(3)]),
        Err(TensorError::IndexOutOfRange {
            index: 3,
            size: 3,
            ..
        })
    ));
    assert!(matches!(
        x.index(&[idx(-4)]),
        Err(TensorError::IndexOutOfRange { .. })
    ));
    assert!(matches!(
        x.index(&[idx(0), idx(0), idx(0)]),
        Err(TensorError::TooManyIndices { .. })
    ));
    assert!(matches!(
        x.index(&[range(None, None, 0)]),
        Err(TensorError::Value { .. })
    ));
    // Writes through an index broadcast the value.
    x.index_put_(
        &[IndexItem::FULL, range(Some(0), Some(2), 1)],
        &v(&[-1.0, -2.0]),
    )
    .unwrap();
    assert_eq!(
        x.index(&[idx(2)]).unwrap().to_vec(),
        vec![-1.0, -2.0, 10.0, 11.0]
    );
    assert!(matches!(
        x.index_put_(&[idx(0)], &v(&[1.0, 2.0, 3.0])),
        Err(TensorError::Broadcast { .. })
    ));
    // Copy between overlapping views of one storage reads before writing.
    let y = t(&[1.0, 2.0, 3.0, 4.0], &[2, 2]);
    y.copy_(&y.t().unwrap()).unwrap();
    assert_eq!(y.to_vec(), vec![1.0, 3.0, 2.0, 4.0]);
    // Writing into an expanded view would write one element many times.
    let e = v(&[1.0]).expand(&[3]).unwrap();
    assert!(matches!(e.fill_(0.0), Err(TensorError::Value { .. })));
}

#[test]
fn dims_out_of_range() {
    // e21: randn(2, 3).unsqueeze(5)
    let x = Tensor::randn(&[2, 3]).unwrap();
    let err = x.unsqueeze(5).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unsqueeze: dimension 5 is out of range for a tensor of shape [2, 3] (expected -3 to 2)"
    );
    assert!(x.unsqueeze(-3).is_ok() && x.unsqueeze(2).is_ok());
    assert!(matches!(
        x.transpose(0, 2),
        Err(TensorError::DimOutOfRange { dim: 2, .. })
    ));
    assert!(matches!(
        x.softmax(-3),
        Err(TensorError::DimOutOfRange { .. })
    ));
    assert!(matches!(
        x.max_dim(2, false),
        Err(TensorError::DimOutOfRange { .. })
    ));
    assert!(matches!(
        x.flatten(0, 5),
        Err(TensorError::DimOutOfRange { .. })
    ));
    assert!(matches!(
        Tensor::cat(std::slice::from_ref(&x), 2),
        Err(TensorError::DimOutOfRange { .. })
    ));
    assert!(matches!(x.permute(&[0, 0]), Err(TensorError::Value { .. })));
    // A 0-dim tensor accepts dim 0 and -1, as in PyTorch, and nothing else.
    let s = Tensor::scalar(2.0);
    assert_eq!(s.sum_dims(&[0], false).unwrap().item().unwrap(), 2.0);
    assert_eq!(s.softmax(-1).unwrap().item().unwrap(), 1.0);
    assert!(matches!(
        s.sum_dims(&[1], false),
        Err(TensorError::DimOutOfRange { range: 1, .. })
    ));
}

#[test]
fn item_tolist_and_numel() {
    assert_eq!(Tensor::scalar(3.0).item().unwrap(), 3.0);
    assert_eq!(v(&[4.0]).item().unwrap(), 4.0);
    assert!(matches!(
        v(&[1.0, 2.0]).item(),
        Err(TensorError::Value { .. })
    ));
    let x = t(&[1.0, 2.0, 3.0, 4.0], &[2, 2]);
    assert_eq!(x.numel(), 4);
    use NestedList::{List, Value};
    assert_eq!(
        x.tolist(),
        List(vec![
            List(vec![Value(1.0), Value(2.0)]),
            List(vec![Value(3.0), Value(4.0)])
        ])
    );
    assert_eq!(Tensor::scalar(5.0).tolist(), Value(5.0));
}

// ----- elementwise, reductions, matmul forward -----

#[test]
fn broadcasting_arithmetic() {
    let a = t(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
    let b = v(&[10.0, 20.0, 30.0]);
    assert_close(&a.add(&b).unwrap(), &[11.0, 22.0, 33.0, 14.0, 25.0, 36.0]);
    let col = t(&[1.0, 2.0], &[2, 1]);
    assert_close(&a.mul(&col).unwrap(), &[1.0, 2.0, 3.0, 8.0, 10.0, 12.0]);
    assert_eq!(col.sub(&b).unwrap().shape(), &[2, 3]);
    let err = a.add(&Tensor::zeros(&[4, 3]).unwrap()).unwrap_err();
    assert_eq!(
        err,
        TensorError::Broadcast {
            op: "add",
            lhs: vec![2, 3],
            rhs: vec![4, 3]
        }
    );
    assert_eq!(
        err.to_string(),
        "add: shapes [2, 3] and [4, 3] cannot broadcast"
    );
    assert_close(&v(&[1.0, 2.0]).scalar_pow(2.0).unwrap(), &[2.0, 4.0]);
    assert_close(&v(&[1.0, 2.0]).rsub_scalar(1.0).unwrap(), &[0.0, -1.0]);
    assert_close(&v(&[1.0, 2.0]).rdiv_scalar(1.0).unwrap(), &[1.0, 0.5]);
    assert_close(
        &v(&[-1.0, 0.5, 2.0]).clamp(Some(0.0), Some(1.0)).unwrap(),
        &[0.0, 0.5, 1.0],
    );
    assert_close(
        &v(&[-1.0, 0.5]).clamp(None, Some(0.0)).unwrap(),
        &[-1.0, 0.0],
    );
    let cmp = a
        .compare(&b.div_scalar(10.0).unwrap(), Comparison::Gt)
        .unwrap();
    assert_eq!(cmp.to_vec(), vec![0.0, 0.0, 0.0, 1.0, 1.0, 1.0]);
    assert_eq!(
        a.compare_scalar(3.0, Comparison::Le).unwrap().to_vec(),
        vec![1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    );
    // Non-contiguous operands take the strided path.
    let at = a.t().unwrap();
    assert_close(&at.add(&at).unwrap(), &[2.0, 8.0, 4.0, 10.0, 6.0, 12.0]);
    assert_close(
        &v(&[1.0, -1.0]).div_scalar(0.0).unwrap(),
        &[f32::INFINITY, f32::NEG_INFINITY],
    );
    // In place, the result must keep the target's shape.
    assert!(matches!(b.add_(&a), Err(TensorError::Broadcast { .. })));
}

#[test]
fn reductions() {
    let x = t(&[1.0, 5.0, 3.0, 4.0, 2.0, 6.0], &[2, 3]);
    assert_eq!(x.sum().unwrap().item().unwrap(), 21.0);
    assert_close(&x.sum_dims(&[0], false).unwrap(), &[5.0, 7.0, 9.0]);
    assert_eq!(x.sum_dims(&[1], true).unwrap().shape(), &[2, 1]);
    assert_eq!(x.sum_dims(&[0, 1], false).unwrap().shape(), &[] as &[usize]);
    assert_close(&x.mean_dims(&[-1], false).unwrap(), &[3.0, 4.0]);
    assert_close(&x.mean().unwrap(), &[3.5]);
    assert_eq!(x.max().unwrap().item().unwrap(), 6.0);
    assert_eq!(x.min().unwrap().item().unwrap(), 1.0);
    let (values, indices) = x.max_dim(1, false).unwrap();
    assert_close(&values, &[5.0, 6.0]);
    assert_close(&indices, &[1.0, 2.0]);
    let (values, indices) = x.min_dim(0, true).unwrap();
    assert_eq!(values.shape(), &[1, 3]);
    assert_close(&indices, &[0.0, 1.0, 0.0]);
    assert_eq!(x.argmax(None, false).unwrap().item().unwrap(), 5.0);
    assert_close(&x.argmin(Some(1), false).unwrap(), &[0.0, 1.0]);
    assert!(matches!(
        x.sum_dims(&[2], false),
        Err(TensorError::DimOutOfRange {
            dim: 2,
            range: 2,
            ..
        })
    ));
    assert!(matches!(
        x.sum_dims(&[0, -2], false),
        Err(TensorError::Value { .. })
    ));
    let s = t(&[1.0, 2.0, 3.0, 1000.0, 1000.0, 1000.0], &[2, 3])
        .softmax(1)
        .unwrap();
    assert_close(
        &s,
        &[
            0.09003057,
            0.24472847,
            0.66524096,
            1.0 / 3.0,
            1.0 / 3.0,
            1.0 / 3.0,
        ],
    );
    let l = t(&[1.0, 2.0, 3.0], &[3]).log_softmax(0).unwrap();
    assert_close(&l, &[-2.407_606, -1.407_606, -0.407_606]);
    assert!(matches!(
        Tensor::zeros(&[0]).unwrap().max(),
        Err(TensorError::Value { .. })
    ));
}

#[test]
fn matrix_products() {
    let a = t(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
    let b = t(&[1.0, 0.0, 0.0, 1.0, 1.0, 1.0], &[3, 2]);
    assert_close(&a.matmul(&b).unwrap(), &[4.0, 5.0, 10.0, 11.0]);
    assert_close(
        &a.matmul(&a.t().unwrap()).unwrap(),
        &[14.0, 32.0, 32.0, 77.0],
    );
    assert_close(
        &v(&[1.0, 2.0, 3.0]).matmul(&v(&[4.0, 5.0, 6.0])).unwrap(),
        &[32.0],
    );
    assert_close(&a.matmul(&v(&[1.0, 1.0, 1.0])).unwrap(), &[6.0, 15.0]);
    assert_close(&v(&[1.0, 1.0]).matmul(&a).unwrap(), &[5.0, 7.0, 9.0]);
    let batch = Tensor::stack(&[a.clone(), a.mul_scalar(2.0).unwrap()], 0).unwrap();
    let out = batch.matmul(&b).unwrap();
    assert_eq!(out.shape(), &[2, 2, 2]);
    assert_close(&out, &[4.0, 5.0, 10.0, 11.0, 8.0, 10.0, 20.0, 22.0]);
    let err = a.matmul(&a).unwrap_err();
    assert!(matches!(
        err,
        TensorError::MatmulMismatch {
            lhs_inner: 3,
            rhs_inner: 2,
            ..
        }
    ));
    assert_eq!(
        err.to_string(),
        "matmul: inner dimensions differ: [2, 3] @ [2, 3] (3 vs 2)"
    );
    // One shape function for the kernels and the checker, with PyTorch's rules.
    use cnn::tensor::ops::matmul::matmul_shape;
    assert_eq!(matmul_shape(&[3], &[3]).unwrap(), Vec::<usize>::new());
    assert_eq!(matmul_shape(&[4], &[2, 4, 5]).unwrap(), [2, 5]);
    assert_eq!(
        matmul_shape(&[2, 1, 3, 4], &[5, 4, 6]).unwrap(),
        [2, 5, 3, 6]
    );
    assert_eq!(matmul_shape(&[7, 3, 4], &[4]).unwrap(), [7, 3]);
    assert!(matches!(
        matmul_shape(&[2, 3, 4], &[3, 4, 5]),
        Err(TensorError::Broadcast { .. })
    ));
    assert!(matches!(
        matmul_shape(&[], &[3]),
        Err(TensorError::Rank { .. })
    ));
    let w = t(&[1.0, 0.0, 1.0, 0.0, 1.0, 0.0], &[2, 3]);
    let y = a.linear(&w, Some(&v(&[0.5, -0.5]))).unwrap();
    assert_close(&y, &[4.5, 1.5, 10.5, 4.5]);
    let y3 = Tensor::stack(&[a.clone(), a.clone()], 0)
        .unwrap()
        .linear(&w, None)
        .unwrap();
    assert_eq!(y3.shape(), &[2, 2, 2]);
    assert!(matches!(
        a.linear(&b, None),
        Err(TensorError::MatmulMismatch { op: "linear", .. })
    ));
    // A larger product goes through gemm's parallel path.
    let big_a = t(&values(128 * 96, 3), &[128, 96]);
    let big_b = t(&values(96 * 64, 4), &[96, 64]);
    let fast = big_a.matmul(&big_b).unwrap().to_vec();
    let (av, bv) = (big_a.to_vec(), big_b.to_vec());
    for (i, j) in [(0, 0), (127, 63), (64, 17)] {
        let naive: f32 = (0..96).map(|k| av[i * 96 + k] * bv[k * 64 + j]).sum();
        assert!((fast[i * 64 + j] - naive).abs() < 1e-3);
    }
}

#[test]
fn joins_and_losses_forward() {
    let a = t(&[1.0, 2.0, 3.0, 4.0], &[2, 2]);
    let b = t(&[5.0, 6.0], &[2, 1]);
    let c = Tensor::cat(&[a.clone(), b.clone()], 1).unwrap();
    assert_eq!(c.shape(), &[2, 3]);
    assert_close(&c, &[1.0, 2.0, 5.0, 3.0, 4.0, 6.0]);
    assert!(matches!(
        Tensor::cat(&[a.clone(), b.clone()], 0),
        Err(TensorError::ShapeMismatch { .. })
    ));
    assert!(matches!(
        Tensor::cat(&[], 0),
        Err(TensorError::Value { .. })
    ));
    let s = Tensor::stack(&[v(&[1.0, 2.0]), v(&[3.0, 4.0])], 1).unwrap();
    assert_close(&s, &[1.0, 3.0, 2.0, 4.0]);
    let target = v(&[0.0, 1.0]);
    let err = a.mse_loss(&target).unwrap_err();
    assert!(matches!(err, TensorError::LossShape { op: "mse_loss", .. }));
    // Row 0: log(1 + e), row 1: log(1 + 1/e).
    let ce = a.cross_entropy(&target).unwrap();
    assert_close(&ce, &[0.8132617]);
    assert!(matches!(
        a.cross_entropy(&v(&[0.0, 2.0])),
        Err(TensorError::IndexOutOfRange {
            op: "cross_entropy",
            index: 2,
            size: 2,
            ..
        })
    ));
    assert!(matches!(
        a.cross_entropy(&v(&[0.5, 1.0])),
        Err(TensorError::Value { .. })
    ));
    assert!(matches!(
        a.cross_entropy(&v(&[0.0])),
        Err(TensorError::LossShape { .. })
    ));
    // Soft labels: a target of the logits' shape holds probabilities.
    let soft = a.cross_entropy(&t(&[1.0, 0.0, 0.0, 1.0], &[2, 2])).unwrap();
    assert_close(&soft, &[0.8132617]);
    seed(0);
    let x = Tensor::ones(&[1000]).unwrap();
    let d = x.dropout(0.25, true).unwrap().to_vec();
    let kept = d.iter().filter(|&&y| y != 0.0).count();
    assert!((650..850).contains(&kept), "{kept}");
    assert!(d.iter().all(|&y| y == 0.0 || (y - 4.0 / 3.0).abs() < 1e-6));
    assert!(Tensor::same_tensor(&x.dropout(0.5, false).unwrap(), &x));
    assert!(matches!(
        x.dropout(1.5, true),
        Err(TensorError::Value { .. })
    ));
    assert_eq!(
        x.dropout(1.0, true).unwrap().sum().unwrap().item().unwrap(),
        0.0
    );
}

// ----- autograd semantics (the conformance scripts) -----

#[test]
fn backward_accumulates() {
    // autograd_accumulates.cnn
    let a = leaf(&[1.0, 2.0], &[2]);
    assert!(a.grad().is_none());
    assert!(a.is_leaf());
    let square_sum = || a.mul(&a).unwrap().sum().unwrap();
    square_sum().backward(None, false).unwrap();
    assert_eq!(grad_of(&a), vec![2.0, 4.0]);
    square_sum().backward(None, false).unwrap();
    assert_eq!(grad_of(&a), vec![4.0, 8.0]);
    a.grad().unwrap().zero_().unwrap();
    a.mul_scalar(3.0)
        .unwrap()
        .sum()
        .unwrap()
        .backward(None, false)
        .unwrap();
    assert_eq!(grad_of(&a), vec![3.0, 3.0]);
    let b = a.mul_scalar(2.0).unwrap();
    assert!(!b.is_leaf());
    assert_eq!(b.grad_fn_name(), Some("MulBackward0"));
    b.retain_grad().unwrap();
    b.mul(&b)
        .unwrap()
        .sum()
        .unwrap()
        .backward(None, false)
        .unwrap();
    assert_eq!(grad_of(&b), vec![4.0, 8.0]);
    assert_eq!(grad_of(&a), vec![3.0 + 8.0, 3.0 + 16.0]);
    a.grad().unwrap().zero_().unwrap();
    let s = a.pow_scalar(3.0).unwrap().sum().unwrap();
    s.backward(None, true).unwrap();
    s.backward(None, false).unwrap();
    assert_eq!(grad_of(&a), vec![6.0, 24.0]);
    a.grad().unwrap().zero_().unwrap();
    let y = a.mul(&a).unwrap();
    y.backward(Some(&v(&[1.0, 0.5])), false).unwrap();
    assert_eq!(grad_of(&a), vec![2.0, 2.0]);
    // A non-leaf without retain_grad keeps no grad.
    let z = a.mul_scalar(2.0).unwrap();
    z.sum().unwrap().backward(None, false).unwrap();
    assert!(z.grad().is_none());
    assert!(!z.retains_grad());
}

#[test]
fn detach_and_truncation() {
    // detach_and_truncation.cnn
    let a = leaf(&[1.0, 2.0, 3.0], &[3]);
    let b = a.detach();
    assert!(!b.requires_grad());
    assert!(b.grad_fn_name().is_none());
    assert!(Tensor::shares_storage(&a, &b));
    b.index_fill_(&[idx(0)], 100.0).unwrap();
    assert_eq!(a.index(&[idx(0)]).unwrap().item().unwrap(), 100.0);
    assert!(a.requires_grad());
    let w = leaf(&[2.0], &[]);
    let cut = w.mul_scalar(3.0).unwrap().detach();
    let c = cut.mul_scalar(4.0).unwrap().add(&w).unwrap();
    c.backward(None, false).unwrap();
    assert_eq!(w.grad().unwrap().item().unwrap(), 1.0);
    let d = w.mul_scalar(3.0).unwrap().detach().mul_scalar(4.0).unwrap();
    assert!(!d.requires_grad());
    let frozen = Tensor::scalar(5.0);
    frozen.mul(&w).unwrap().backward(None, false).unwrap();
    assert!(frozen.grad().is_none());
    assert_eq!(w.grad().unwrap().item().unwrap(), 6.0);
    let f = {
        let _guard = no_grad();
        w.mul_scalar(10.0).unwrap()
    };
    assert!(!f.requires_grad());
    assert_eq!(f.item().unwrap(), 20.0);
    let k = a.clone_tensor().unwrap();
    assert!(!Tensor::shares_storage(&a, &k));
    assert!(k.requires_grad());
    assert_eq!(k.grad_fn_name(), Some("CloneBackward0"));
}

#[test]
fn grad_mode_guards_nest() {
    let w = leaf(&[1.0], &[1]);
    {
        let _off = no_grad();
        assert!(!w.mul_scalar(2.0).unwrap().requires_grad());
        {
            let _on = cnn::tensor::enable_grad();
            assert!(w.mul_scalar(2.0).unwrap().requires_grad());
        }
        assert!(!cnn::tensor::is_grad_enabled());
    }
    assert!(cnn::tensor::is_grad_enabled());
}

#[test]
fn requires_grad_flags() {
    let x = t(&[1.0, 2.0], &[2]);
    assert!(!x.requires_grad());
    x.requires_grad_(true).unwrap();
    let y = x.mul_scalar(2.0).unwrap();
    assert!(matches!(
        y.requires_grad_(false),
        Err(TensorError::Value { .. })
    ));
    assert!(y.requires_grad_(true).is_ok());
    x.requires_grad_(false).unwrap();
    assert!(!x.mul_scalar(2.0).unwrap().requires_grad());
    assert!(matches!(x.retain_grad(), Err(TensorError::Value { .. })));
    // A view made to require grad is a leaf of its own: writing through its views is E0403.
    let r = t(&[1.0, 2.0, 3.0, 4.0], &[4]).reshape(&[2, 2]).unwrap();
    r.requires_grad_(true).unwrap();
    assert!(r.is_leaf());
    let row = r.index(&[idx(0)]).unwrap();
    assert!(matches!(
        row.fill_(0.0),
        Err(TensorError::InPlaceOnLeaf {
            through_view: true,
            ..
        })
    ));
}

#[test]
fn backward_errors() {
    // e14: backward without grad (E0401).
    let x = Tensor::randn(&[3]).unwrap();
    let y = x.mul_scalar(2.0).unwrap().sum().unwrap();
    assert_eq!(
        y.backward(None, false),
        Err(TensorError::BackwardWithoutGrad)
    );
    // Non-scalar without a gradient (E0402), and a gradient of the wrong shape.
    let w = leaf(&[1.0, 2.0], &[2]);
    let z = w.mul_scalar(2.0).unwrap();
    assert!(matches!(
        z.backward(None, false),
        Err(TensorError::NonScalarBackward { .. })
    ));
    assert!(matches!(
        z.backward(Some(&v(&[1.0])), false),
        Err(TensorError::ShapeMismatch { .. })
    ));
    // e15: in-place on a leaf that requires grad (E0403), allowed under no_grad.
    let w = leaf(&[1.0, 2.0, 3.0], &[3]);
    assert_eq!(
        w.add_scalar_(1.0),
        Err(TensorError::InPlaceOnLeaf {
            op: "add_",
            through_view: false
        })
    );
    assert!(matches!(
        w.index(&[idx(0)]).unwrap().fill_(1.0),
        Err(TensorError::InPlaceOnLeaf { .. })
    ));
    {
        let _guard = no_grad();
        w.add_scalar_(1.0).unwrap();
        w.index(&[idx(0)]).unwrap().fill_(0.0).unwrap();
    }
    assert_eq!(w.to_vec(), vec![0.0, 3.0, 4.0]);
    // e17: backward through a freed graph (E0405), naming the node whose tensors are gone.
    let x = Tensor::ones(&[3]).unwrap();
    x.requires_grad_(true).unwrap();
    set_current_site(Site(3));
    let y = x.mul(&x).unwrap().sum().unwrap();
    set_current_site(Site(4));
    y.backward(None, false).unwrap();
    assert_eq!(
        y.backward(None, false),
        Err(TensorError::GraphFreed {
            node: "MulBackward0",
            site: Site(3)
        })
    );
    // Nodes that saved nothing can run again, as in PyTorch.
    let s = x.add_scalar(1.0).unwrap().sum().unwrap();
    s.backward(None, false).unwrap();
    s.backward(None, false).unwrap();
    set_current_site(Site::UNKNOWN);
}

#[test]
fn saved_tensor_modified_names_both_sites() {
    // e16: let y = x.exp() (site 3); y.add_(1) (site 4); y.sum().backward() (site 5).
    let x = Tensor::ones(&[3]).unwrap();
    x.requires_grad_(true).unwrap();
    set_current_site(Site(3));
    let y = x.exp().unwrap();
    set_current_site(Site(4));
    y.add_scalar_(1.0).unwrap();
    assert_eq!(y.grad_fn_name(), Some("AddBackward0"));
    set_current_site(Site(5));
    let err = y.sum().unwrap().backward(None, false).unwrap_err();
    set_current_site(Site::UNKNOWN);
    assert_eq!(
        err,
        TensorError::SavedTensorModified {
            saved_by: "ExpBackward0",
            saved_site: Site(3),
            modified_by: "add_",
            modified_site: Site(4),
            shape: vec![3],
            saved_version: 0,
            current_version: 1,
        }
    );
    assert!(err.to_string().contains("ExpBackward0") && err.to_string().contains("add_"));
    // A saved leaf changed under no_grad is caught too.
    let w = leaf(&[1.0, 2.0], &[2]);
    let loss = w.mul(&w).unwrap().sum().unwrap();
    {
        let _guard = no_grad();
        w.mul_scalar_(2.0).unwrap();
    }
    assert!(matches!(
        loss.backward(None, false),
        Err(TensorError::SavedTensorModified { .. })
    ));
    // An operand that was not saved may change freely (mul saves b only for a's grad).
    let a = leaf(&[1.0, 2.0], &[2]);
    let b = v(&[3.0, 4.0]);
    let c = a.exp().unwrap();
    let d = c.mul(&b).unwrap();
    b.add_scalar_(1.0).unwrap();
    assert!(matches!(
        d.sum().unwrap().backward(None, false),
        Err(TensorError::SavedTensorModified {
            saved_by: "MulBackward0",
            ..
        })
    ));
    let e = a.mul_scalar(2.0).unwrap().mul(&v(&[1.0, 1.0])).unwrap();
    e.sum().unwrap().backward(None, false).unwrap();
}

#[test]
fn inplace_on_non_leaf_rebases_history() {
    let a = leaf(&[1.0, 2.0], &[2]);
    let b = a.mul_scalar(2.0).unwrap();
    b.mul_(&a).unwrap(); // b = 2a·a
    assert_eq!(b.grad_fn_name(), Some("MulBackward0"));
    b.sum().unwrap().backward(None, false).unwrap();
    assert_eq!(grad_of(&a), vec![4.0, 8.0]);
    // Through a view: CopySlices on the base, the view's history rebuilt.
    let a = leaf(&[1.0, 2.0, 3.0], &[3]);
    let h = a.mul_scalar(1.0).unwrap();
    let first = h.index(&[idx(0)]).unwrap();
    first.mul_scalar_(10.0).unwrap();
    assert_eq!(h.grad_fn_name(), Some("CopySlices"));
    assert_eq!(first.grad_fn_name(), Some("AsStridedBackward0"));
    assert_eq!(h.to_vec(), vec![10.0, 2.0, 3.0]);
    h.sum().unwrap().backward(None, false).unwrap();
    assert_eq!(grad_of(&a), vec![10.0, 1.0, 1.0]);
    // Index assignment of a value that requires grad into a plain tensor.
    let w = leaf(&[5.0, 6.0], &[2]);
    let z = Tensor::zeros(&[2, 3]).unwrap();
    z.index_put_(&[IndexItem::FULL, idx(1)], &w).unwrap();
    assert!(z.requires_grad());
    assert!(!z.is_leaf());
    assert_eq!(z.grad_fn_name(), Some("CopySlices"));
    z.mul(&t(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]))
        .unwrap()
        .sum()
        .unwrap()
        .backward(None, false)
        .unwrap();
    assert_eq!(grad_of(&w), vec![2.0, 5.0]);
    // Overwriting part of a computed tensor stops gradient there.
    let a = leaf(&[1.0, 2.0, 3.0], &[3]);
    let h = a.mul_scalar(3.0).unwrap();
    h.index_fill_(&[range(Some(1), None, 1)], 0.0).unwrap();
    h.sum().unwrap().backward(None, false).unwrap();
    assert_eq!(grad_of(&a), vec![3.0, 0.0, 0.0]);
    // A view made before the in-place write of its base sees the new history.
    let a = leaf(&[1.0, 2.0], &[2]);
    let h = a.mul_scalar(1.0).unwrap();
    let view = h.unsqueeze(0).unwrap();
    h.mul_scalar_(5.0).unwrap();
    view.sum().unwrap().backward(None, false).unwrap();
    assert_eq!(grad_of(&a), vec![5.0, 5.0]);
    // retain_grad follows the tensor to its new history.
    let a = leaf(&[1.0, 2.0], &[2]);
    let h = a.mul_scalar(1.0).unwrap();
    h.retain_grad().unwrap();
    h.add_scalar_(1.0).unwrap();
    h.mul_scalar(3.0)
        .unwrap()
        .sum()
        .unwrap()
        .backward(None, false)
        .unwrap();
    assert_eq!(grad_of(&h), vec![3.0, 3.0]);
}

#[test]
fn grad_fn_names_match_pytorch() {
    let x = input(&[2, 3], 1);
    let m = input(&[3, 3], 2);
    let name = |r: Result<Tensor>| r.unwrap().grad_fn_name().unwrap();
    assert_eq!(name(x.add(&x)), "AddBackward0");
    assert_eq!(name(x.add_scalar(1.0)), "AddBackward0");
    assert_eq!(name(x.sub_scalar(1.0)), "SubBackward0");
    assert_eq!(name(x.rsub_scalar(1.0)), "RsubBackward1");
    assert_eq!(name(x.div(&x)), "DivBackward0");
    assert_eq!(name(x.pow_scalar(2.0)), "PowBackward0");
    assert_eq!(name(x.pow(&x)), "PowBackward1");
    assert_eq!(name(x.scalar_pow(2.0)), "PowBackward2");
    assert_eq!(name(x.neg()), "NegBackward0");
    assert_eq!(name(x.exp()), "ExpBackward0");
    assert_eq!(name(x.relu()), "ReluBackward0");
    assert_eq!(name(x.clamp(Some(0.0), None)), "ClampBackward1");
    assert_eq!(name(x.sum()), "SumBackward0");
    assert_eq!(name(x.sum_dims(&[1], false)), "SumBackward1");
    assert_eq!(name(x.mean()), "MeanBackward0");
    assert_eq!(name(x.mean_dims(&[0], true)), "MeanBackward1");
    assert_eq!(name(x.max()), "MaxBackward1");
    assert_eq!(name(x.max_dim(0, false).map(|(v, _)| v)), "MaxBackward0");
    assert_eq!(name(x.min_dim(0, false).map(|(v, _)| v)), "MinBackward0");
    assert_eq!(name(x.softmax(1)), "SoftmaxBackward0");
    assert_eq!(name(x.log_softmax(1)), "LogSoftmaxBackward0");
    assert_eq!(name(x.view(&[6])), "ViewBackward0");
    assert_eq!(name(x.reshape(&[3, 2])), "ViewBackward0");
    assert_eq!(name(x.t().unwrap().reshape(&[6])), "UnsafeViewBackward0");
    assert_eq!(name(x.unsqueeze(0)), "UnsqueezeBackward0");
    assert_eq!(
        name(Ok(x.unsqueeze(0).unwrap().squeeze())),
        "SqueezeBackward0"
    );
    assert_eq!(
        name(x.unsqueeze(0).unwrap().squeeze_dim(0)),
        "SqueezeBackward1"
    );
    assert_eq!(name(x.transpose(0, 1)), "TransposeBackward0");
    assert_eq!(name(x.t()), "TBackward0");
    assert_eq!(name(x.numpy_t()), "PermuteBackward0");
    assert_eq!(name(x.index(&[idx(0)])), "SelectBackward0");
    assert_eq!(name(x.index(&[range(Some(1), None, 1)])), "SliceBackward0");
    assert_eq!(
        name(x.unsqueeze(0).unwrap().expand(&[4, 2, 3])),
        "ExpandBackward0"
    );
    assert_eq!(name(x.mm(&m)), "MmBackward0");
    assert_eq!(name(x.matmul(&v(&[1.0, 2.0, 3.0]))), "MvBackward0");
    assert_eq!(
        name(
            x.index(&[idx(0)])
                .unwrap()
                .matmul(&x.index(&[idx(1)]).unwrap())
        ),
        "DotBackward0"
    );
    assert_eq!(
        name(x.linear(&m, Some(&v(&[1.0, 2.0, 3.0])))),
        "AddmmBackward0"
    );
    assert_eq!(
        name(Tensor::cat(&[x.clone(), x.clone()], 0)),
        "CatBackward0"
    );
    assert_eq!(
        name(Tensor::stack(&[x.clone(), x.clone()], 0)),
        "StackBackward0"
    );
    assert_eq!(name(x.mse_loss(&x.detach())), "MseLossBackward0");
    assert_eq!(name(x.cross_entropy(&v(&[0.0, 2.0]))), "NllLossBackward0");
    assert_eq!(
        name(x.binary_cross_entropy_with_logits(&x.detach())),
        "BinaryCrossEntropyWithLogitsBackward0"
    );
    assert_eq!(name(x.dropout(0.5, true)), "NativeDropoutBackward0");
}

// ----- the conformance op scripts, with their numbers -----

#[test]
fn conformance_op_broadcast() {
    let x = leaf(
        &[
            -0.905, -0.248, -0.477, -0.445, 0.978, 1.145, -0.615, 2.512, 1.28, -0.263, 0.524,
            -0.407,
        ],
        &[3, 4],
    );
    let y = x
        .mul(
            &Tensor::arange(0.0, 4.0, 1.0)
                .unwrap()
                .reshape(&[1, 4])
                .unwrap(),
        )
        .unwrap()
        .sub(&x.sum().unwrap())
        .unwrap();
    assert_close(
        &y,
        &[
            -3.079, -3.327, -4.033, -4.414, -3.079, -1.934, -4.309, 4.457, -3.079, -3.342, -2.031,
            -4.3,
        ],
    );
    let g = t(
        &[
            -1.363, -1.1, -1.611, -0.561, -0.092, -1.861, -0.572, -0.837, 1.063, -0.446, 0.632,
            1.31,
        ],
        &[3, 4],
    );
    y.mul(&g)
        .unwrap()
        .sum()
        .unwrap()
        .backward(None, false)
        .unwrap();
    assert_close(
        &x.grad().unwrap(),
        &[
            5.438, 4.338, 2.216, 3.755, 5.438, 3.577, 4.294, 2.927, 5.438, 4.992, 6.702, 9.368,
        ],
    );
}

#[test]
fn conformance_op_index_slice() {
    let x = leaf(
        &[
            0.668, -1.497, 0.067, 0.835, -0.44, -0.613, -0.712, -0.383, -0.323, -0.92, -0.312,
            -0.575,
        ],
        &[3, 4],
    );
    let y = x
        .index(&[range(Some(1), None, 1), range(None, None, 2)])
        .unwrap()
        .mul(&x.index(&[idx(0), idx(1)]).unwrap())
        .unwrap();
    assert_close(&y, &[0.65868, 1.06586, 0.483531, 0.467064]);
    let g = t(&[-0.158, -0.3, -1.006, 0.533], &[2, 2]);
    y.mul(&g)
        .unwrap()
        .sum()
        .unwrap()
        .backward(None, false)
        .unwrap();
    assert_close(
        &x.grad().unwrap(),
        &[
            0.0, 0.441762, 0.0, 0.0, 0.236526, 0.0, 0.4491, 0.0, 1.50598, 0.0, -0.797901, 0.0,
        ],
    );
}

#[test]
fn conformance_linear_and_losses() {
    let x = leaf(
        &[
            -0.978, 0.184, 0.022, -0.439, 0.085, 1.204, -0.188, 0.827, -0.75, 0.902,
        ],
        &[2, 5],
    );
    let w = leaf(
        &[
            1.078, -1.528, -1.413, 1.373, 1.232, -0.205, 0.548, 1.404, 0.93, -1.156, -0.91, 0.463,
            0.113, 1.045, 0.896,
        ],
        &[3, 5],
    );
    let b = leaf(&[0.16, -0.665, 1.716], &[3]);
    let y = x.linear(&w, Some(&b)).unwrap();
    assert_close(
        &y,
        &[-1.70455, -0.83932, 2.31106, 0.658139, -1.59395, 0.651209],
    );
    let g = t(&[0.251, 0.66, -0.324, 1.754, 0.678, -0.81], &[2, 3]);
    y.mul(&g)
        .unwrap()
        .sum()
        .unwrap()
        .backward(None, false)
        .unwrap();
    assert_close(&b.grad().unwrap(), &[2.005, 1.338, -1.134]);
    assert_close(
        &x.grad().unwrap(),
        &[
            0.430118, -0.17186, 0.535365, 0.619843, -0.744032, 2.48892, -2.6836, -1.61802, 2.19233,
            0.6514,
        ],
    );

    let logits = leaf(
        &[
            -0.212, -0.372, 1.423, 0.751, -0.477, -1.797, 1.521, 0.721, -1.775, 2.189, 0.73,
            -0.666, -0.696, 2.115, -1.973, -0.66, -0.85, 1.246, -0.164, 0.086,
        ],
        &[5, 4],
    );
    let loss = logits
        .cross_entropy(&v(&[0.0, 3.0, 1.0, 1.0, 2.0]))
        .unwrap();
    assert_eq!(loss.shape(), &[] as &[usize]);
    assert_close(&loss, &[1.17476]);
    loss.backward(None, false).unwrap();
    assert_close(
        &logits.grad().unwrap(),
        &[
            -0.179169, 0.0177509, 0.106851, 0.0545673, 0.0167295, 0.00446905, 0.123368, -0.144567,
            0.00290097, -0.0472129, 0.0355182, 0.00879378, 0.0105585, -0.0244485, 0.00294448,
            0.0109455, 0.0146316, 0.119007, -0.170945, 0.037307,
        ],
    );

    let a = leaf(
        &[
            0.715, -1.02, -0.697, 0.35, -0.653, 1.461, -0.309, -1.752, 1.153, 0.366, -1.088, 0.784,
        ],
        &[4, 3],
    );
    let target = t(
        &[
            0.184, 0.454, 0.948, 0.009, 0.705, 0.733, 0.387, 0.06, 0.285, 0.235, 0.637, 0.871,
        ],
        &[4, 3],
    );
    let loss = a.binary_cross_entropy_with_logits(&target).unwrap();
    assert_close(&loss, &[0.789775]);
    loss.backward(None, false).unwrap();
    assert_close(
        &a.grad().unwrap(),
        &[
            0.0406254, -0.0157477, -0.0512935, 0.0481348, -0.0302238, 0.00655713, 0.0030299,
            0.00731626, 0.0395882, 0.0296243, -0.0320837, -0.0153715,
        ],
    );

    let a = leaf(
        &[
            0.919, 0.064, -0.54, 0.53, 0.906, -2.042, -0.034, 1.129, -0.075, 0.369, -1.192, -1.242,
        ],
        &[4, 3],
    );
    let target = t(
        &[
            0.31, 0.723, 0.949, 0.939, 0.427, 0.816, 0.073, 0.735, 0.332, 0.073, 0.23, 0.656,
        ],
        &[4, 3],
    );
    let loss = a.mse_loss(&target).unwrap();
    assert_close(&loss, &[1.4693]);
    loss.backward(None, false).unwrap();
    assert_close(
        &a.grad().unwrap(),
        &[
            0.1015, -0.109833, -0.248167, -0.0681667, 0.0798333, -0.476333, -0.0178333, 0.0656667,
            -0.0678333, 0.0493333, -0.237, -0.316333,
        ],
    );
}

// ----- finite-difference gradient checks: every differentiable op -----

#[test]
fn gradcheck_binary_ops_with_broadcasting() {
    let a = input(&[2, 3], 1);
    let b = input(&[3], 2);
    let col = input(&[2, 1], 3);
    gradcheck(vec![a.clone(), b.clone()], |x| x[0].add(&x[1]));
    gradcheck(vec![a.clone(), col.clone()], |x| x[0].sub(&x[1]));
    gradcheck(vec![a.clone(), b.clone()], |x| x[0].mul(&x[1]));
    gradcheck(vec![col.clone(), b.clone()], |x| x[0].mul(&x[1]));
    gradcheck(vec![a.clone(), b.clone()], |x| x[0].div(&x[1]));
    let pos = leaf(&[0.5, 1.2, 2.0, 0.8, 1.5, 0.9], &[2, 3]);
    gradcheck(vec![pos.clone(), b.clone()], |x| x[0].pow(&x[1]));
    gradcheck(vec![a.clone()], |x| x[0].mul(&x[0]));
}

#[test]
fn gradcheck_scalar_ops() {
    let a = input(&[2, 3], 4);
    gradcheck(vec![a.clone()], |x| x[0].add_scalar(2.0));
    gradcheck(vec![a.clone()], |x| x[0].sub_scalar(2.0));
    gradcheck(vec![a.clone()], |x| x[0].rsub_scalar(2.0));
    gradcheck(vec![a.clone()], |x| x[0].mul_scalar(-3.0));
    gradcheck(vec![a.clone()], |x| x[0].div_scalar(4.0));
    gradcheck(vec![a.clone()], |x| x[0].rdiv_scalar(2.0));
    gradcheck(vec![a.clone()], |x| x[0].pow_scalar(3.0));
    gradcheck(vec![a.clone()], |x| x[0].pow_scalar(2.0));
    gradcheck(vec![a.clone()], |x| x[0].scalar_pow(2.0));
}

#[test]
fn gradcheck_unary_ops() {
    let a = input(&[3, 4], 5);
    let pos = a.detach().abs().unwrap().add_scalar(0.1).unwrap();
    pos.requires_grad_(true).unwrap();
    gradcheck(vec![a.clone()], |x| x[0].neg());
    gradcheck(vec![a.clone()], |x| x[0].abs());
    gradcheck(vec![pos.clone()], |x| x[0].sqrt());
    gradcheck(vec![a.clone()], |x| x[0].exp());
    gradcheck(vec![pos.clone()], |x| x[0].log());
    gradcheck(vec![a.clone()], |x| x[0].relu());
    gradcheck(vec![a.clone()], |x| x[0].leaky_relu(0.1));
    gradcheck(vec![a.clone()], |x| x[0].sigmoid());
    gradcheck(vec![a.clone()], |x| x[0].tanh());
    gradcheck(vec![a.clone()], |x| x[0].clamp(Some(-0.5), Some(0.7)));
}

#[test]
fn gradcheck_reductions() {
    let a = input(&[2, 3, 4], 6);
    gradcheck(vec![a.clone()], |x| x[0].sum());
    gradcheck(vec![a.clone()], |x| x[0].sum_dims(&[1], false));
    gradcheck(vec![a.clone()], |x| x[0].sum_dims(&[0, 2], true));
    gradcheck(vec![a.clone()], |x| x[0].mean());
    gradcheck(vec![a.clone()], |x| x[0].mean_dims(&[-1], false));
    gradcheck(vec![a.clone()], |x| x[0].mean_dims(&[0, 1], true));
    gradcheck(vec![a.clone()], |x| x[0].max());
    gradcheck(vec![a.clone()], |x| x[0].min());
    gradcheck(vec![a.clone()], |x| x[0].max_dim(1, false).map(|(v, _)| v));
    gradcheck(vec![a.clone()], |x| x[0].min_dim(2, true).map(|(v, _)| v));
    gradcheck(vec![a.clone()], |x| x[0].softmax(1));
    gradcheck(vec![a.clone()], |x| x[0].softmax(-1));
    gradcheck(vec![a.clone()], |x| x[0].log_softmax(0));
    gradcheck(vec![a.clone()], |x| x[0].log_softmax(2));
}

#[test]
fn gradcheck_views_and_indexing() {
    let a = input(&[2, 3, 4], 7);
    gradcheck(vec![a.clone()], |x| x[0].reshape(&[4, 6]));
    gradcheck(vec![a.clone()], |x| x[0].view(&[6, -1]));
    gradcheck(vec![a.clone()], |x| x[0].transpose(0, 2)?.reshape(&[-1]));
    gradcheck(vec![a.clone()], |x| x[0].flatten(1, 2));
    gradcheck(vec![a.clone()], |x| x[0].permute(&[1, 2, 0]));
    gradcheck(vec![a.clone()], |x| x[0].unsqueeze(1)?.squeeze_dim(1));
    gradcheck(vec![a.clone()], |x| Ok(x[0].unsqueeze(0)?.squeeze()));
    gradcheck(vec![a.clone()], |x| {
        x[0].index(&[idx(1), range(Some(0), None, 2)])
    });
    gradcheck(vec![a.clone()], |x| {
        x[0].index(&[IndexItem::FULL, idx(-1), range(Some(1), Some(3), 1)])
    });
    gradcheck(vec![a.clone()], |x| x[0].numpy_t());
    gradcheck(vec![a.clone()], |x| x[0].contiguous());
    gradcheck(vec![a.clone()], |x| x[0].clone_tensor());
    let m = input(&[3, 4], 8);
    gradcheck(vec![m.clone()], |x| x[0].t());
    let col = input(&[3, 1], 9);
    gradcheck(vec![col.clone()], |x| x[0].expand(&[2, 3, 5]));
}

#[test]
fn gradcheck_matrix_products() {
    let a = input(&[3, 4], 10);
    let b = input(&[4, 2], 11);
    let u = input(&[4], 12);
    let w = input(&[2], 13);
    gradcheck(vec![a.clone(), b.clone()], |x| x[0].matmul(&x[1]));
    gradcheck(vec![a.clone(), u.clone()], |x| x[0].matmul(&x[1]));
    gradcheck(vec![u.clone(), b.clone()], |x| x[0].matmul(&x[1]));
    gradcheck(vec![u.clone(), u.detach()], |x| x[0].matmul(&x[1]));
    gradcheck(vec![a.clone()], |x| x[0].matmul(&x[0].t()?));
    let batch = input(&[2, 3, 4], 14);
    let batch_b = input(&[2, 4, 2], 15);
    gradcheck(vec![batch.clone(), batch_b.clone()], |x| x[0].matmul(&x[1]));
    gradcheck(vec![batch.clone(), b.clone()], |x| x[0].matmul(&x[1]));
    gradcheck(vec![batch.clone(), u.clone()], |x| x[0].matmul(&x[1]));
    let broad = input(&[3, 1, 2, 4], 16);
    gradcheck(vec![broad.clone(), batch_b.clone()], |x| x[0].matmul(&x[1]));
    let weight = input(&[2, 4], 17);
    gradcheck(vec![a.clone(), weight.clone(), w.clone()], |x| {
        x[0].linear(&x[1], Some(&x[2]))
    });
    gradcheck(vec![batch.clone(), weight.clone(), w.clone()], |x| {
        x[0].linear(&x[1], Some(&x[2]))
    });
    gradcheck(vec![u.clone(), weight.clone()], |x| {
        x[0].linear(&x[1], None)
    });
}

#[test]
fn gradcheck_joins_losses_and_dropout() {
    let a = input(&[2, 3], 18);
    let b = input(&[2, 2], 19);
    gradcheck(vec![a.clone(), b.clone()], |x| {
        Tensor::cat(&[x[0].clone(), x[1].clone()], 1)
    });
    gradcheck(vec![a.clone(), a.detach().exp().unwrap()], |x| {
        Tensor::stack(&[x[0].clone(), x[1].clone()], 1)
    });
    // A target 0.3 away from the input everywhere keeps l1's kink out of the differences.
    let c = a.detach().add_scalar(0.3).unwrap();
    c.requires_grad_(true).unwrap();
    gradcheck(vec![a.clone(), c.clone()], |x| x[0].mse_loss(&x[1]));
    gradcheck(vec![a.clone(), c.clone()], |x| x[0].l1_loss(&x[1]));
    let probs = t(&[0.2, 0.9, 0.5, 0.0, 1.0, 0.3], &[2, 3]);
    probs.requires_grad_(true).unwrap();
    gradcheck(vec![a.clone(), probs.clone()], |x| {
        x[0].binary_cross_entropy_with_logits(&x[1])
    });
    gradcheck(vec![a.clone()], |x| x[0].cross_entropy(&v(&[2.0, 0.0])));
    let spatial = input(&[2, 3, 2], 21);
    gradcheck(vec![spatial.clone()], |x| {
        x[0].cross_entropy(&t(&[0.0, 2.0, 1.0, 1.0], &[2, 2]))
    });
    gradcheck(vec![a.clone()], |x| {
        x[0].cross_entropy(&t(&[0.2, 0.3, 0.5, 1.0, 0.0, 0.0], &[2, 3]))
    });
    // Dropout's mask is drawn once per call: reseed so every evaluation draws the same one.
    gradcheck(vec![a.clone()], |x| {
        seed(11);
        x[0].dropout(0.4, true)
    });
}

#[test]
fn gradcheck_inplace_and_index_assignment() {
    let a = input(&[2, 3], 22);
    let b = input(&[3], 23);
    gradcheck(vec![a.clone(), b.clone()], |x| {
        let h = x[0].mul_scalar(1.0)?;
        h.mul_(&x[1])?;
        h.add_(&x[1])?;
        Ok(h)
    });
    gradcheck(vec![a.clone(), b.clone()], |x| {
        let h = x[0].mul_scalar(2.0)?;
        h.index(&[idx(1)])?.div_(&x[1])?;
        Ok(h)
    });
    gradcheck(vec![a.clone(), b.clone()], |x| {
        let h = x[0].sub_scalar(0.0)?;
        h.index_put_(&[idx(0)], &x[1])?;
        h.clamp_(Some(-1.0), Some(1.0))?;
        Ok(h)
    });
    gradcheck(vec![a.clone()], |x| {
        let h = x[0].mul_scalar(1.0)?;
        h.t()?.index(&[range(Some(1), None, 1)])?.mul_scalar_(3.0)?;
        Ok(h)
    });
}

// ----- printing: PyTorch's repr -----

#[test]
fn printing_matches_pytorch() {
    let s = |t: &Tensor| t.to_string();
    assert_eq!(s(&v(&[1.0, 2.0])), "tensor([1., 2.])");
    assert_eq!(s(&Tensor::scalar(3.0)), "tensor(3.)");
    assert_eq!(s(&Tensor::scalar(0.5)), "tensor(0.5000)");
    assert_eq!(
        s(&leaf(&[1.5, 2.0, 3.0, 4.0], &[2, 2])),
        "tensor([[1.5000, 2.0000],\n        [3.0000, 4.0000]], requires_grad=true)"
    );
    let a = leaf(&[1.0, 2.0], &[2]);
    assert_eq!(
        s(&a.mul_scalar(2.0).unwrap()),
        "tensor([2., 4.], grad_fn=<MulBackward0>)"
    );
    assert_eq!(s(&v(&[1e-5, 1.0])), "tensor([1.0000e-05, 1.0000e+00])");
    assert_eq!(s(&v(&[1.0, 10000.0])), "tensor([1.0000e+00, 1.0000e+04])");
    assert_eq!(s(&v(&[0.0, 1.0, -2.0])), "tensor([ 0.,  1., -2.])");
    assert_eq!(
        s(&v(&[0.1, -2.25, 10.0])),
        "tensor([ 0.1000, -2.2500, 10.0000])"
    );
    assert_eq!(
        s(&v(&[f32::NAN, 1.0, f32::INFINITY])),
        "tensor([nan, 1., inf])"
    );
    assert_eq!(s(&Tensor::zeros(&[0]).unwrap()), "tensor([])");
    assert_eq!(
        s(&Tensor::zeros(&[2, 0]).unwrap()),
        "tensor([], size=(2, 0))"
    );
    assert_eq!(
        s(&Tensor::zeros(&[2, 2]).unwrap()),
        "tensor([[0., 0.],\n        [0., 0.]])"
    );
    assert_eq!(s(&v(&[123456789.0])), "tensor([1.2346e+08])");
    assert_eq!(
        s(&t(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0], &[2, 2, 2])),
        "tensor([[[1., 2.],\n         [3., 4.]],\n\n        [[5., 6.],\n         [7., 8.]]])"
    );
    // torch.arange(30.) wraps at 80 columns.
    assert_eq!(
        s(&Tensor::arange(0.0, 30.0, 1.0).unwrap()),
        "tensor([ 0.,  1.,  2.,  3.,  4.,  5.,  6.,  7.,  8.,  9., 10., 11., 12., 13.,\n        14., 15., 16., 17., 18., 19., 20., 21., 22., 23., 24., 25., 26., 27.,\n        28., 29.])"
    );
    // torch.arange(2000.): summarised, and the summary's ratio calls for scientific mode.
    assert_eq!(
        s(&Tensor::arange(0.0, 2000.0, 1.0).unwrap()),
        "tensor([0.0000e+00, 1.0000e+00, 2.0000e+00,  ..., 1.9970e+03, 1.9980e+03,\n        1.9990e+03])"
    );
    // torch.arange(100, 1300.).reshape(40, 30)
    let big = Tensor::arange(100.0, 1300.0, 1.0)
        .unwrap()
        .reshape(&[40, 30])
        .unwrap();
    assert_eq!(
        s(&big),
        "tensor([[ 100.,  101.,  102.,  ...,  127.,  128.,  129.],\n        [ 130.,  131.,  132.,  ...,  157.,  158.,  159.],\n        [ 160.,  161.,  162.,  ...,  187.,  188.,  189.],\n        ...,\n        [1210., 1211., 1212.,  ..., 1237., 1238., 1239.],\n        [1240., 1241., 1242.,  ..., 1267., 1268., 1269.],\n        [1270., 1271., 1272.,  ..., 1297., 1298., 1299.]])"
    );
    // torch.arange(1000, 3000.).reshape(2, 10, 100): summarised in two dims.
    let cube = Tensor::arange(1000.0, 3000.0, 1.0)
        .unwrap()
        .reshape(&[2, 10, 100])
        .unwrap();
    assert_eq!(
        s(&cube),
        "tensor([[[1000., 1001., 1002.,  ..., 1097., 1098., 1099.],\n         [1100., 1101., 1102.,  ..., 1197., 1198., 1199.],\n         [1200., 1201., 1202.,  ..., 1297., 1298., 1299.],\n         ...,\n         [1700., 1701., 1702.,  ..., 1797., 1798., 1799.],\n         [1800., 1801., 1802.,  ..., 1897., 1898., 1899.],\n         [1900., 1901., 1902.,  ..., 1997., 1998., 1999.]],\n\n        [[2000., 2001., 2002.,  ..., 2097., 2098., 2099.],\n         [2100., 2101., 2102.,  ..., 2197., 2198., 2199.],\n         [2200., 2201., 2202.,  ..., 2297., 2298., 2299.],\n         ...,\n         [2700., 2701., 2702.,  ..., 2797., 2798., 2799.],\n         [2800., 2801., 2802.,  ..., 2897., 2898., 2899.],\n         [2900., 2901., 2902.,  ..., 2997., 2998., 2999.]]])"
    );
    // A strided view prints its own elements.
    let transposed = cube.transpose(1, 2).unwrap();
    assert_eq!(s(&transposed), s(&transposed.contiguous().unwrap()));
    assert!(
        s(&transposed).starts_with("tensor([[[1000., 1100., 1200.,  ..., 1700., 1800., 1900.],")
    );
    // A suffix that would pass 80 columns moves to its own line.
    let long = leaf(&[1.2345, -2.5, 3.75, 4.125, -5.5, 6.0, 7.25], &[7])
        .mul_scalar(1.0)
        .unwrap();
    assert_eq!(
        s(&long),
        "tensor([ 1.2345, -2.5000,  3.7500,  4.1250, -5.5000,  6.0000,  7.2500],\n       grad_fn=<MulBackward0>)"
    );
}

// ----- extension point for kernels defined elsewhere -----

/// A backward formula as the convolution kernels will define theirs: `y = x³`.
struct CubeBackward;

impl cnn::tensor::BackwardFn for CubeBackward {
    fn name(&self) -> &'static str {
        "CubeBackward0"
    }

    fn backward(
        &self,
        grad: &Tensor,
        saved: &cnn::tensor::autograd::Saved,
        _needs: &[bool],
    ) -> Result<Vec<Option<Tensor>>> {
        // dy/dx = 3x²
        let x = saved.get(0)?;
        Ok(vec![Some(grad.mul(&x.mul(x)?.mul_scalar(3.0)?)?)])
    }
}

fn cube(x: &Tensor) -> Result<Tensor> {
    use cnn::tensor::autograd::{SavedTensor, record};
    use cnn::tensor::derivatives::Op;
    let out = x.with_slice(|values| {
        Tensor::from_vec(values.iter().map(|v| v * v * v).collect(), x.shape())
    })?;
    Ok(record(out, &[x], || {
        (
            Op::Custom(Box::new(CubeBackward)),
            vec![Some(SavedTensor::new(x))],
        )
    }))
}

#[test]
fn custom_ops_plug_into_autograd() {
    let x = input(&[2, 3], 30);
    assert_eq!(cube(&x).unwrap().grad_fn_name(), Some("CubeBackward0"));
    gradcheck(vec![x.clone()], |x| cube(&x[0].t()?));
    // The version check and freeing apply to custom nodes as to built-in ones.
    let h = x.mul_scalar(1.0).unwrap();
    let y = cube(&h).unwrap().sum().unwrap();
    h.add_scalar_(1.0).unwrap();
    assert!(matches!(
        y.backward(None, false),
        Err(TensorError::SavedTensorModified {
            saved_by: "CubeBackward0",
            modified_by: "add_",
            ..
        })
    ));
    // Reductions over empty dims give zeros, as in PyTorch.
    assert_eq!(
        Tensor::zeros(&[2, 0])
            .unwrap()
            .sum_dims(&[1], false)
            .unwrap()
            .to_vec(),
        vec![0.0, 0.0]
    );
}

// ----- activations, adaptive pooling, normalisation layers, dropout2d -----

/// An activation of a [`LayerCase`].
#[derive(Debug, Clone, Copy)]
pub enum Act {
    Relu6,
    Hardtanh(f64, f64),
    Gelu(GeluApproximate),
    Silu,
    Hardswish,
    Hardsigmoid,
    Elu(f64),
}

/// The op a [`LayerCase`] runs.
#[derive(Debug, Clone, Copy)]
pub enum Layer {
    Act(Act),
    AdaptiveAvg([usize; 2]),
    AdaptiveMax([usize; 2]),
    GroupNorm(usize),
    LayerNorm(&'static [usize]),
    InstanceNorm,
}

/// One op on fixed inputs with PyTorch's output and gradients for the upstream gradient `g`
/// (`tensor/pytorch_layers.rs`, generated by `tensor/pytorch_layers.py`).
pub struct LayerCase {
    name: &'static str,
    layer: Layer,
    x: &'static [f32],
    x_shape: &'static [usize],
    y: &'static [f32],
    y_shape: &'static [usize],
    g: &'static [f32],
    x_grad: &'static [f32],
    w: Option<&'static [f32]>,
    b: Option<&'static [f32]>,
    w_grad: Option<&'static [f32]>,
    b_grad: Option<&'static [f32]>,
}

impl Layer {
    fn apply(self, x: &Tensor, w: Option<&Tensor>, b: Option<&Tensor>) -> Result<Tensor> {
        match self {
            Layer::Act(act) => match act {
                Act::Relu6 => x.relu6(),
                Act::Hardtanh(lo, hi) => x.hardtanh(lo, hi),
                Act::Gelu(approximate) => x.gelu(approximate),
                Act::Silu => x.silu(),
                Act::Hardswish => x.hardswish(),
                Act::Hardsigmoid => x.hardsigmoid(),
                Act::Elu(alpha) => x.elu(alpha),
            },
            Layer::AdaptiveAvg(size) => x.adaptive_avg_pool2d(size),
            Layer::AdaptiveMax(size) => x.adaptive_max_pool2d(size),
            Layer::GroupNorm(groups) => x.group_norm(groups, w, b, 1e-5),
            Layer::LayerNorm(shape) => x.layer_norm(shape, w, b, 1e-5),
            Layer::InstanceNorm => x.instance_norm(InstanceNormArgs {
                weight: w,
                bias: b,
                ..InstanceNormArgs::default()
            }),
        }
    }
}

/// `|actual - expected| <= 1e-5·(1 + |expected|)` elementwise.
#[track_caller]
fn assert_pytorch(actual: &[f32], expected: &[f32], what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}: length");
    for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        assert!(
            (a - e).abs() <= 1e-5 * (1.0 + e.abs()),
            "{what}[{i}]: got {a}, PyTorch {e}"
        );
    }
}

fn run_pytorch_case(case: &LayerCase) {
    let x = leaf(case.x, case.x_shape);
    let param = |values: Option<&[f32]>| {
        values.map(|v| match case.layer {
            Layer::LayerNorm(shape) => leaf(v, shape),
            _ => leaf(v, &[v.len()]),
        })
    };
    let (w, b) = (param(case.w), param(case.b));
    let y = case.layer.apply(&x, w.as_ref(), b.as_ref()).unwrap();
    assert_eq!(y.shape(), case.y_shape, "{}: output shape", case.name);
    assert_pytorch(&y.to_vec(), case.y, case.name);
    y.backward(Some(&t(case.g, case.y_shape)), false).unwrap();
    assert_pytorch(&grad_of(&x), case.x_grad, &format!("{} x grad", case.name));
    for (p, expected, what) in [(&w, case.w_grad, "weight"), (&b, case.b_grad, "bias")] {
        if let (Some(p), Some(expected)) = (p, expected) {
            let grad = p
                .grad()
                .unwrap_or_else(|| panic!("{}: no {what} grad", case.name));
            let grad = grad.to_vec();
            assert_pytorch(&grad, expected, &format!("{} {what} grad", case.name));
        }
    }
}

#[test]
fn activations_match_pytorch() {
    for case in pytorch_layers::ACTIVATIONS {
        run_pytorch_case(case);
    }
}

#[test]
fn adaptive_pooling_matches_pytorch() {
    for case in pytorch_layers::ADAPTIVE_POOLS {
        run_pytorch_case(case);
    }
}

#[test]
fn normalisation_layers_match_pytorch() {
    for case in pytorch_layers::NORMS {
        run_pytorch_case(case);
    }
}

#[test]
fn instance_norm_running_statistics_match_pytorch() {
    use pytorch_layers::*;
    let x = t(NORMS[7].x, NORMS[7].x_shape);
    let rm = v(INSTANCE_RUNNING_MEAN_BEFORE);
    let rv = v(INSTANCE_RUNNING_VAR_BEFORE);
    let y = x
        .instance_norm(InstanceNormArgs {
            running_mean: Some(&rm),
            running_var: Some(&rv),
            momentum: 0.3,
            ..InstanceNormArgs::default()
        })
        .unwrap();
    // Input statistics normalise whether or not running ones are kept.
    assert_pytorch(&y.to_vec(), NORMS[7].y, "instance_norm with running stats");
    assert_pytorch(&rm.to_vec(), INSTANCE_RUNNING_MEAN_AFTER, "running_mean");
    assert_pytorch(&rv.to_vec(), INSTANCE_RUNNING_VAR_AFTER, "running_var");

    // Without input statistics the running ones normalise, as batch_norm in eval.
    let x = leaf(NORMS[7].x, NORMS[7].x_shape);
    let w = leaf(NORMS[8].w.unwrap(), &[3]);
    let b = leaf(NORMS[8].b.unwrap(), &[3]);
    let (rm, rv) = (
        v(INSTANCE_RUNNING_MEAN_BEFORE),
        v(INSTANCE_RUNNING_VAR_BEFORE),
    );
    let y = x
        .instance_norm(InstanceNormArgs {
            running_mean: Some(&rm),
            running_var: Some(&rv),
            weight: Some(&w),
            bias: Some(&b),
            use_input_stats: false,
            ..InstanceNormArgs::default()
        })
        .unwrap();
    assert_pytorch(&y.to_vec(), INSTANCE_EVAL_Y, "instance_norm eval");
    y.backward(Some(&t(NORMS[7].g, x.shape())), false).unwrap();
    assert_pytorch(
        &grad_of(&x),
        INSTANCE_EVAL_X_GRAD,
        "instance_norm eval x grad",
    );
    assert_pytorch(
        &grad_of(&w),
        INSTANCE_EVAL_W_GRAD,
        "instance_norm eval w grad",
    );
    assert_pytorch(
        &grad_of(&b),
        INSTANCE_EVAL_B_GRAD,
        "instance_norm eval b grad",
    );
    assert_eq!(
        rm.to_vec(),
        INSTANCE_RUNNING_MEAN_BEFORE,
        "left alone in eval"
    );
}

#[test]
fn gelu_approximate_is_named_as_in_pytorch() {
    for mode in [GeluApproximate::None, GeluApproximate::Tanh] {
        assert_eq!(GeluApproximate::from_name(mode.name()), Some(mode));
    }
    assert_eq!(GeluApproximate::from_name("erf"), None);
}

#[test]
fn gradcheck_activations() {
    // Spread over [-4.5, 4.5] so every piece of the piecewise ones is visited.
    let a = input(&[4, 6], 40).mul_scalar(3.0).unwrap().detach();
    a.requires_grad_(true).unwrap();
    let wide = a.detach().mul_scalar(1.5).unwrap();
    wide.requires_grad_(true).unwrap();
    gradcheck(vec![wide.clone()], |x| x[0].relu6());
    gradcheck(vec![a.clone()], |x| x[0].hardtanh(-1.0, 2.0));
    gradcheck(vec![a.clone()], |x| x[0].gelu(GeluApproximate::None));
    gradcheck(vec![a.clone()], |x| x[0].gelu(GeluApproximate::Tanh));
    gradcheck(vec![a.clone()], |x| x[0].silu());
    gradcheck(vec![a.clone()], |x| x[0].hardswish());
    gradcheck(vec![a.clone()], |x| x[0].hardsigmoid());
    gradcheck(vec![a.clone()], |x| x[0].elu(1.0));
    gradcheck(vec![a.clone()], |x| x[0].elu(0.3));
}

#[test]
fn gradcheck_adaptive_pooling() {
    let x = input(&[2, 3, 5, 7], 41);
    for size in [[3, 4], [2, 3], [1, 1], [5, 7], [7, 9], [1, 5]] {
        gradcheck(vec![x.clone()], |x| x[0].adaptive_avg_pool2d(size));
        gradcheck(vec![x.clone()], |x| x[0].adaptive_max_pool2d(size));
    }
    let unbatched = input(&[2, 4, 5], 42);
    gradcheck(vec![unbatched.clone()], |x| {
        x[0].adaptive_avg_pool2d([3, 2])
    });
    gradcheck(vec![unbatched.clone()], |x| {
        x[0].adaptive_max_pool2d([3, 2])
    });
}

#[test]
fn gradcheck_normalisation_layers() {
    let x = input(&[2, 6, 5], 43);
    let (w, b) = (input(&[6], 44), input(&[6], 45));
    for groups in [1, 2, 3, 6] {
        gradcheck(vec![x.clone(), w.clone(), b.clone()], |x| {
            x[0].group_norm(groups, Some(&x[1]), Some(&x[2]), 1e-5)
        });
    }
    gradcheck(vec![x.clone()], |x| x[0].group_norm(2, None, None, 1e-5));
    gradcheck(vec![x.clone(), w.clone()], |x| {
        x[0].group_norm(3, Some(&x[1]), None, 1e-5)
    });

    let (lw, lb) = (input(&[6, 5], 46), input(&[6, 5], 47));
    gradcheck(vec![x.clone(), lw.clone(), lb.clone()], |x| {
        x[0].layer_norm(&[6, 5], Some(&x[1]), Some(&x[2]), 1e-5)
    });
    let (lw, lb) = (input(&[5], 48), input(&[5], 49));
    gradcheck(vec![x.clone(), lw.clone(), lb.clone()], |x| {
        x[0].layer_norm(&[5], Some(&x[1]), Some(&x[2]), 1e-5)
    });
    gradcheck(vec![x.clone()], |x| x[0].layer_norm(&[5], None, None, 1e-5));

    let planes = input(&[2, 3, 2, 3], 50);
    let (iw, ib) = (input(&[3], 51), input(&[3], 52));
    gradcheck(vec![planes.clone(), iw.clone(), ib.clone()], |x| {
        x[0].instance_norm(InstanceNormArgs {
            weight: Some(&x[1]),
            bias: Some(&x[2]),
            ..InstanceNormArgs::default()
        })
    });
    gradcheck(vec![planes.clone()], |x| {
        x[0].instance_norm(InstanceNormArgs::default())
    });
    let (rm, rv) = (
        Tensor::zeros(&[3]).unwrap(),
        Tensor::ones(&[3]).unwrap().mul_scalar(2.0).unwrap(),
    );
    gradcheck(vec![planes.clone(), iw.clone(), ib.clone()], |x| {
        x[0].instance_norm(InstanceNormArgs {
            running_mean: Some(&rm),
            running_var: Some(&rv),
            weight: Some(&x[1]),
            bias: Some(&x[2]),
            use_input_stats: false,
            ..InstanceNormArgs::default()
        })
    });
}

#[test]
fn dropout2d_zeroes_whole_channels_from_dropouts_stream() {
    let x = input(&[3, 4, 2, 5], 53);
    seed(7);
    let y = x.dropout2d(0.5, true).unwrap();
    // The same draws, one per channel, decide dropout of a [3, 4] tensor of ones.
    seed(7);
    let kept = Tensor::ones(&[3, 4])
        .unwrap()
        .dropout(0.5, true)
        .unwrap()
        .to_vec();
    assert!(kept.contains(&0.0) && kept.contains(&2.0), "{kept:?}");
    let (xs, ys) = (x.to_vec(), y.to_vec());
    for (plane, &scale) in kept.iter().enumerate() {
        for i in plane * 10..(plane + 1) * 10 {
            assert_eq!(ys[i], xs[i] * scale, "channel {plane}");
        }
    }
    assert_eq!(y.grad_fn_name(), Some("MulBackward0"));
    y.sum().unwrap().backward(None, false).unwrap();
    let expected: Vec<f32> = kept.iter().flat_map(|&k| [k; 10]).collect();
    assert_eq!(grad_of(&x), expected);
    seed(7);
    gradcheck(vec![x.clone()], |x| {
        seed(7);
        x[0].dropout2d(0.3, true)
    });

    // A 3-D input is [N, C, L], as PyTorch's dropout2d takes it.
    seed(8);
    let y = Tensor::ones(&[4, 3, 5])
        .unwrap()
        .dropout2d(0.5, true)
        .unwrap()
        .to_vec();
    for row in y.chunks(5) {
        assert!(row.iter().all(|&v| v == row[0]), "{row:?}");
    }
    // Not training, or p = 0: the input itself.
    let same = x.dropout2d(0.5, false).unwrap();
    assert!(Tensor::same_tensor(&same, &x));
    assert!(Tensor::same_tensor(&x.dropout2d(0.0, true).unwrap(), &x));
    assert_eq!(
        x.dropout2d(1.0, true).unwrap().to_vec(),
        vec![0.0; x.numel()]
    );
}

#[test]
fn new_layers_name_their_nodes_as_pytorch() {
    let x = input(&[1, 2, 3, 3], 54);
    let names = [
        (x.relu6(), "HardtanhBackward0"),
        (x.gelu(GeluApproximate::Tanh), "GeluBackward0"),
        (x.silu(), "SiluBackward0"),
        (x.hardswish(), "HardswishBackward0"),
        (x.hardsigmoid(), "HardsigmoidBackward0"),
        (x.elu(1.0), "EluBackward0"),
        (x.adaptive_avg_pool2d([2, 2]), "AdaptiveAvgPool2DBackward0"),
        (x.adaptive_avg_pool2d([1, 1]), "MeanBackward1"),
        (x.adaptive_max_pool2d([2, 2]), "AdaptiveMaxPool2DBackward0"),
        (
            x.group_norm(2, None, None, 1e-5),
            "NativeGroupNormBackward0",
        ),
        (
            x.layer_norm(&[3, 3], None, None, 1e-5),
            "NativeLayerNormBackward0",
        ),
        (
            x.instance_norm(InstanceNormArgs::default()),
            "ViewBackward0",
        ),
    ];
    for (y, name) in names {
        assert_eq!(y.unwrap().grad_fn_name(), Some(name));
    }
}

#[test]
fn new_layers_reject_bad_input_with_typed_errors() {
    let x = Tensor::zeros(&[2, 6, 4, 4]).unwrap();
    let rank = |r: Result<Tensor>, op: &str| match r {
        Err(TensorError::Rank { op: got, .. }) => assert_eq!(got, op),
        other => panic!("{op}: expected a rank error, got {other:?}"),
    };
    let flat = Tensor::zeros(&[6]).unwrap();
    rank(flat.adaptive_avg_pool2d([2, 2]), "adaptive_avg_pool2d");
    rank(flat.adaptive_max_pool2d([2, 2]), "adaptive_max_pool2d");
    rank(flat.group_norm(2, None, None, 1e-5), "group_norm");
    rank(
        flat.instance_norm(InstanceNormArgs::default()),
        "instance_norm",
    );
    rank(flat.dropout2d(0.5, true), "dropout2d");
    rank(
        Tensor::zeros(&[1, 1, 1, 2, 2])
            .unwrap()
            .dropout2d(0.5, false),
        "dropout2d",
    );

    let err = x.adaptive_avg_pool2d([0, 3]).unwrap_err();
    assert_eq!(
        err,
        TensorError::Spatial(ShapeError::AdaptiveOutputSize {
            op: "adaptive_avg_pool2d",
            output_size: [0, 3],
        })
    );
    assert_eq!(
        err.to_string(),
        "adaptive_avg_pool2d: output_size must be at least 1 in each dimension, got [0, 3]"
    );
    let empty = Tensor::zeros(&[1, 2, 0, 3]).unwrap();
    assert_eq!(
        empty.adaptive_max_pool2d([1, 1]).unwrap_err().to_string(),
        "adaptive_max_pool2d: expected an input with non-empty spatial dimensions, got shape [1, 2, 0, 3]"
    );

    let err = x.group_norm(4, None, None, 1e-5).unwrap_err();
    assert_eq!(
        err.to_string(),
        "group_norm: num_groups (4) must be at least 1 and divide the channels (6) of an input of shape [2, 6, 4, 4]"
    );
    assert!(matches!(
        x.group_norm(0, None, None, 1e-5),
        Err(TensorError::Spatial(
            ShapeError::GroupsNotDividingChannels { .. }
        ))
    ));
    let w4 = Tensor::ones(&[4]).unwrap();
    assert_eq!(
        x.group_norm(3, Some(&w4), None, 1e-5)
            .unwrap_err()
            .to_string(),
        "group_norm: shapes [4] and [6] do not match (weight and bias need one value per channel)"
    );

    assert_eq!(
        x.layer_norm(&[3, 4], None, None, 1e-5)
            .unwrap_err()
            .to_string(),
        "layer_norm: shapes [2, 6, 4, 4] and [3, 4] do not match (normalized_shape must equal the input's last 2 dimensions)"
    );
    assert!(matches!(
        x.layer_norm(&[1, 2, 6, 4, 4], None, None, 1e-5),
        Err(TensorError::ShapeMismatch { .. })
    ));
    assert!(matches!(
        x.layer_norm(&[], None, None, 1e-5),
        Err(TensorError::Value {
            op: "layer_norm",
            ..
        })
    ));
    assert_eq!(
        x.layer_norm(&[4], Some(&Tensor::ones(&[4, 1]).unwrap()), None, 1e-5)
            .unwrap_err()
            .to_string(),
        "layer_norm: shapes [4, 1] and [4] do not match (weight and bias must have the shape normalized_shape)"
    );

    let single = Tensor::zeros(&[2, 3, 1, 1]).unwrap();
    assert!(matches!(
        single.instance_norm(InstanceNormArgs::default()),
        Err(TensorError::Value {
            op: "instance_norm",
            ..
        })
    ));
    assert!(matches!(
        x.instance_norm(InstanceNormArgs {
            use_input_stats: false,
            ..InstanceNormArgs::default()
        }),
        Err(TensorError::Value {
            op: "instance_norm",
            ..
        })
    ));
    assert!(matches!(
        x.instance_norm(InstanceNormArgs {
            weight: Some(&w4),
            ..InstanceNormArgs::default()
        }),
        Err(TensorError::ShapeMismatch {
            op: "instance_norm",
            ..
        })
    ));
    assert!(matches!(
        x.dropout2d(1.5, true),
        Err(TensorError::Value {
            op: "dropout2d",
            ..
        })
    ));
    assert!(matches!(
        x.hardtanh(2.0, 1.0),
        Err(TensorError::Value { op: "hardtanh", .. })
    ));
}

#[test]
fn shape_checks_of_the_new_layers_agree_with_the_ops() {
    let shapes: [&[usize]; 6] = [
        &[6],
        &[2, 6],
        &[6, 4, 5],
        &[2, 6, 4, 5],
        &[1, 2, 0, 3],
        &[2, 6, 1, 1],
    ];
    for shape in shapes {
        let x = Tensor::zeros(shape).unwrap();
        for size in [[2, 3], [1, 1], [0, 2]] {
            for (op, run) in [
                ("adaptive_avg_pool2d", x.adaptive_avg_pool2d(size)),
                ("adaptive_max_pool2d", x.adaptive_max_pool2d(size)),
            ] {
                assert_eq!(
                    adaptive_pool2d_shape(op, shape, size),
                    run.map(|y| y.shape().to_vec()),
                    "{op} {shape:?} to {size:?}"
                );
            }
        }
        let w6 = Tensor::ones(&[6]).unwrap();
        for groups in [0, 1, 2, 4, 6] {
            assert_eq!(
                group_norm_check(shape, groups, Some(&[6]), None).err(),
                x.group_norm(groups, Some(&w6), None, 1e-5).err(),
                "group_norm {shape:?} {groups}"
            );
        }
        for normalized in [&[5][..], &[4, 5], &[6], &[]] {
            assert_eq!(
                layer_norm_check(shape, normalized, None, None).err(),
                x.layer_norm(normalized, None, None, 1e-5).err(),
                "layer_norm {shape:?} {normalized:?}"
            );
        }
        for use_input_stats in [true, false] {
            let args = InstanceNormArgs {
                weight: Some(&w6),
                use_input_stats,
                ..InstanceNormArgs::default()
            };
            assert_eq!(
                instance_norm_check(shape, None, None, Some(&[6]), None, use_input_stats).err(),
                x.instance_norm(args).err(),
                "instance_norm {shape:?}"
            );
        }
        assert_eq!(
            dropout2d_check(shape, 0.5).err(),
            x.dropout2d(0.5, false).err(),
            "dropout2d {shape:?}"
        );
    }
    // An unbatched input's error names the shape as given.
    assert_eq!(
        adaptive_pool2d_shape("adaptive_avg_pool2d", &[2, 0, 3], [1, 1])
            .unwrap_err()
            .to_string(),
        "adaptive_avg_pool2d: expected an input with non-empty spatial dimensions, got shape [2, 0, 3]"
    );
}

// ----- The same cases through the language: layers and functional forms -----

/// A list of numbers as the language prints it (`[0.5, -1.0]`).
fn parse_list(line: &str) -> Vec<f32> {
    line.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().unwrap())
        .collect()
}

fn literal(values: &[f32]) -> String {
    let items: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
    format!("[{}]", items.join(", "))
}

/// Each activation and adaptive pooling case, as its layer and as its functional form, in
/// a `.cnn` script: PyTorch's output and input gradient to 1e-5.
#[test]
fn stateless_layers_and_functions_match_pytorch_in_the_language() {
    let pair = |[h, w]: [usize; 2]| format!("[{h}, {w}]");
    for case in pytorch_layers::ACTIVATIONS
        .iter()
        .chain(pytorch_layers::ADAPTIVE_POOLS)
    {
        let (layer, function) = match case.layer {
            Layer::Act(Act::Relu6) => ("ReLU6()".to_string(), "relu6(x)".to_string()),
            Layer::Act(Act::Gelu(a)) => (
                format!("GELU(approximate=\"{}\")", a.name()),
                format!("gelu(x, approximate=\"{}\")", a.name()),
            ),
            Layer::Act(Act::Silu) => ("SiLU()".into(), "silu(x)".into()),
            Layer::Act(Act::Hardswish) => ("Hardswish()".into(), "hardswish(x)".into()),
            Layer::Act(Act::Hardsigmoid) => ("Hardsigmoid()".into(), "hardsigmoid(x)".into()),
            Layer::Act(Act::Elu(alpha)) => (
                format!("ELU(alpha={alpha:?})"),
                format!("elu(x, {alpha:?})"),
            ),
            Layer::AdaptiveAvg(size) => (
                format!("AdaptiveAvgPool2d({})", pair(size)),
                format!("adaptive_avg_pool2d(x, {})", pair(size)),
            ),
            Layer::AdaptiveMax(size) => (
                format!("AdaptiveMaxPool2d({})", pair(size)),
                format!("adaptive_max_pool2d(x, {})", pair(size)),
            ),
            // Hardtanh is the kernel behind ReLU6, not a layer of the language; the norms
            // have parameters.
            _ => continue,
        };
        let shape: Vec<String> = case.x_shape.iter().map(usize::to_string).collect();
        for call in [format!("{layer}(x)"), function] {
            let script = format!(
                "let flat = tensor({}, requires_grad=true)\nlet x = flat.reshape({})\nlet y = {call}\n(y * tensor({}).reshape(y.shape)).sum().backward()\nprint(y.flatten().tolist())\nprint(flat.grad.tolist())\n",
                literal(case.x),
                shape.join(", "),
                literal(case.g)
            );
            let source = cnn::source::SourceFile::new("stateless.cnn", script.clone());
            let (code, output) = cnn::on_big_stack(move || {
                let ran = cnn::run_captured(&source);
                (ran.exit_code, ran.output)
            });
            assert_eq!(code, 0, "{script}\n{output}");
            let lines: Vec<&str> = output.lines().collect();
            assert_pytorch(&parse_list(lines[0]), case.y, &call);
            assert_pytorch(
                &parse_list(lines[1]),
                case.x_grad,
                &format!("{call} x grad"),
            );
        }
    }
}
