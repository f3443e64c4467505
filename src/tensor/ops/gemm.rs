//! A thin safe wrapper over the `gemm` crate's `f32` matrix product.
//!
//! Matrices are strided views into slices ([`MatRef`], [`MatMut`]); the constructors check
//! that every element the strides reach lies inside the slice, which is what makes the one
//! `unsafe` call below sound.

pub use gemm::Parallelism;

/// A read-only `rows x cols` matrix: element `(i, j)` is `data[i*row_stride + j*col_stride]`.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> MatRef<'a> {
    /// A strided view.
    ///
    /// # Panics
    /// If an element the strides reach lies outside `data`.
    pub fn new(
        data: &'a [f32],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Self {
        assert_in_bounds(data.len(), rows, cols, row_stride, col_stride);
        MatRef {
            data,
            rows,
            cols,
            row_stride,
            col_stride,
        }
    }

    /// The row-major `rows x cols` matrix at the start of `data`.
    ///
    /// # Panics
    /// If `data` is shorter than `rows * cols`.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self::new(data, rows, cols, cols, 1)
    }

    /// The transpose, as a view (no copy).
    pub fn t(self) -> Self {
        MatRef {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }
}

/// A writable `rows x cols` matrix with one unit stride, so distinct `(i, j)` never alias
/// (the product's threads write disjoint elements).
#[derive(Debug)]
pub struct MatMut<'a> {
    data: &'a mut [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> MatMut<'a> {
    /// A row-major view with rows `row_stride` apart (`row_stride >= cols`), e.g. a band of
    /// columns of a wider matrix.
    ///
    /// # Panics
    /// If `row_stride < cols` or an element lies outside `data`.
    pub fn with_row_stride(
        data: &'a mut [f32],
        rows: usize,
        cols: usize,
        row_stride: usize,
    ) -> Self {
        assert!(
            row_stride >= cols || rows <= 1,
            "rows of a MatMut must not overlap"
        );
        assert_in_bounds(data.len(), rows, cols, row_stride, 1);
        MatMut {
            data,
            rows,
            cols,
            row_stride,
            col_stride: 1,
        }
    }

    /// The row-major `rows x cols` matrix at the start of `data`.
    ///
    /// # Panics
    /// If `data` is shorter than `rows * cols`.
    pub fn row_major(data: &'a mut [f32], rows: usize, cols: usize) -> Self {
        Self::with_row_stride(data, rows, cols, cols)
    }
}

fn assert_in_bounds(len: usize, rows: usize, cols: usize, row_stride: usize, col_stride: usize) {
    if rows == 0 || cols == 0 {
        return;
    }
    let last = (rows - 1).checked_mul(row_stride).and_then(|r| {
        (cols - 1)
            .checked_mul(col_stride)
            .and_then(|c| r.checked_add(c))
    });
    assert!(
        matches!(last, Some(last) if last < len),
        "{rows}x{cols} matrix with strides ({row_stride}, {col_stride}) exceeds a slice of {len}"
    );
}

/// `dst = lhs * rhs`, or `dst += lhs * rhs` when `accumulate`.
///
/// `parallelism` is passed to the `gemm` crate: `Parallelism::None` when the caller already
/// runs one product per rayon task, `Parallelism::Rayon(0)` to let one big product use the
/// whole pool (never both: nested parallelism only adds scheduling overhead).
///
/// # Panics
/// If the dimensions do not agree.
pub fn matmul(
    dst: MatMut<'_>,
    lhs: MatRef<'_>,
    rhs: MatRef<'_>,
    accumulate: bool,
    parallelism: Parallelism,
) {
    let (m, n, k) = (dst.rows, dst.cols, lhs.cols);
    assert!(
        lhs.rows == m && rhs.rows == k && rhs.cols == n,
        "matmul: {}x{} = {}x{} * {}x{}",
        m,
        n,
        lhs.rows,
        lhs.cols,
        rhs.rows,
        rhs.cols
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        // An empty sum; the gemm crate's contract does not cover k = 0.
        if !accumulate {
            for i in 0..m {
                dst.data[i * dst.row_stride..][..n].fill(0.0);
            }
        }
        return;
    }
    // SAFETY: the constructors checked that every element reachable through the strides lies
    // inside its slice; `dst` is borrowed mutably, so it cannot alias `lhs` or `rhs`, and its
    // unit column stride with `row_stride >= cols` makes its elements distinct. Strides are
    // element counts below the slice length, so they fit in `isize`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.data.as_mut_ptr(),
            dst.col_stride as isize,
            dst.row_stride as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr(),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_with_transposes_and_strides() {
        // lhs 2x3, rhs 3x2 stored transposed, dst a 2x2 band of a 2x3 buffer.
        let lhs = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let rhs_t = [1.0, 0.0, 1.0, 0.0, 1.0, 0.0];
        let mut dst = [9.0; 6];
        matmul(
            MatMut::with_row_stride(&mut dst, 2, 2, 3),
            MatRef::row_major(&lhs, 2, 3),
            MatRef::row_major(&rhs_t, 2, 3).t(),
            false,
            Parallelism::None,
        );
        assert_eq!(dst, [4.0, 2.0, 9.0, 10.0, 5.0, 9.0]);
        matmul(
            MatMut::with_row_stride(&mut dst, 2, 2, 3),
            MatRef::row_major(&lhs, 2, 3),
            MatRef::row_major(&rhs_t, 2, 3).t(),
            true,
            Parallelism::None,
        );
        assert_eq!(dst, [8.0, 4.0, 9.0, 20.0, 10.0, 9.0]);
    }

    #[test]
    #[should_panic(expected = "exceeds")]
    fn out_of_bounds_views_are_rejected() {
        let data = [0.0; 5];
        let _ = MatRef::row_major(&data, 2, 3);
    }
}
