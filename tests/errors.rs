//! Bad input gives typed errors naming the operation and shapes — never a panic or a wgpu abort.

mod common;

use common::gpu;
use reddiff::ops::{self, Bias, Conv2d, GroupNorm, MatView, Matmul};
use reddiff::Error;

#[test]
fn shape_mismatches_are_typed_errors() {
    let g = gpu();
    let a = g.zeros(&[2, 3]).unwrap();
    let b = g.zeros(&[3, 2]).unwrap();
    match ops::add(g, &a, &b) {
        Err(Error::Shape { op: "add", msg }) => {
            assert!(msg.contains("[2, 3]") && msg.contains("[3, 2]"), "{msg}")
        }
        other => panic!("expected a shape error, got {other:?}"),
    }
    let x = g.zeros(&[1, 4, 8, 8]).unwrap();
    let w = g.zeros(&[8, 3, 3, 3]).unwrap();
    assert!(matches!(ops::conv2d(g, &x, &w, None, Conv2d::same(3)), Err(Error::Shape { op: "conv2d", .. })));
    let big_k = g.zeros(&[8, 4, 11, 11]).unwrap();
    assert!(matches!(ops::conv2d(g, &x, &big_k, None, Conv2d { stride: 1, padding: 0 }), Err(Error::Shape { op: "conv2d", .. })));
    let gamma = g.zeros(&[4]).unwrap();
    assert!(matches!(
        ops::group_norm(g, &x, &gamma, &gamma, None, GroupNorm { groups: 3, eps: 1e-5, silu: false }),
        Err(Error::Shape { op: "group_norm", .. })
    ));
    let d = Matmul { batch: 1, m: 4, n: 4, k: 4, a: MatView::rows(4, 4), b: MatView::rows(4, 4), alpha: 1.0 };
    assert!(matches!(ops::matmul(g, &a, &a, Bias::None, &d, None), Err(Error::Shape { op: "matmul", .. })));
    let ok = g.zeros(&[16 * 16]).unwrap();
    let d16 = Matmul { batch: 1, m: 16, n: 16, k: 16, a: MatView::rows(16, 16), b: MatView::rows(16, 16), alpha: 1.0 };
    assert!(matches!(ops::matmul_with(g, &ok, &ok, Bias::None, &d16, ops::MatmulKernel::Rows), Err(Error::Invalid { op: "matmul", .. })));
    if !g.shared_weights() {
        assert!(matches!(ops::matmul_with(g, &ok, &ok, Bias::None, &d16, ops::MatmulKernel::SharedA), Err(Error::Invalid { op: "matmul", .. })));
    }
    assert!(matches!(ops::fft2(g, &g.zeros(&[1, 6, 8, 2]).unwrap(), ops::FftDirection::Forward), Err(Error::Shape { op: "fft2", .. })));
    assert!(matches!(ops::slice_channels(g, &x, 3, 2), Err(Error::Shape { .. })));
    assert!(matches!(g.upload(&[2, 2], &[1.0, 2.0, 3.0]), Err(Error::Shape { op: "upload", .. })));
    assert!(matches!(x.reshape(&[3, 5]), Err(Error::Shape { op: "reshape", .. })));
    let m = g.zeros(&[4]).unwrap();
    assert!(matches!(ops::adam_step(g, &m, &m, &m, &m, Default::default(), 1), Err(Error::Invalid { .. })));
}

#[test]
fn zero_sized_tensors_are_rejected() {
    let g = gpu();
    assert!(matches!(g.zeros(&[0, 3]), Err(Error::Empty { .. })));
    assert!(matches!(g.upload(&[0], &[]), Err(Error::Empty { .. })));
    assert!(matches!(ops::normal(g, &[4, 0], 1, 0, 0.0, 1.0), Err(Error::Empty { op: "normal", .. })));
}

#[test]
fn over_limit_buffers_are_typed_errors() {
    let g = gpu();
    // Larger than any adapter's max buffer size.
    match g.zeros(&[1 << 20, 1 << 20]) {
        Err(Error::TooLarge { what: "a buffer", shape, .. }) => assert_eq!(shape, vec![1 << 20, 1 << 20]),
        other => panic!("expected TooLarge, got {other:?}"),
    }
    // Allowed as a buffer but over the storage-binding limit (when the adapter has one below its buffer limit).
    let limit = g.max_binding_bytes();
    let elems = (limit / 4 + 1024) as usize;
    if (elems as u64) * 4 <= g.adapter().max_buffer {
        let t = g.empty("test", &[elems]).unwrap();
        match ops::affine(g, &t, 1.0, 0.0) {
            Err(Error::TooLarge { op: "affine", what: "a storage binding", .. }) => {}
            other => panic!("expected a binding-size error, got {other:?}"),
        }
    }
    g.flush().unwrap();
}
