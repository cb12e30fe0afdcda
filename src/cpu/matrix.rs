//! Matrix products on the host by the gemm crate (parallel inside one product when asked), over
//! strided views of plain slices, so that a transposed operand costs no copy.

/// A strided view into a slice: element (i, j) at `i * row_stride + j * col_stride`.
#[derive(Clone, Copy)]
pub struct Matrix<'a> {
    pub data: &'a [f32],
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a> Matrix<'a> {
    /// A dense `[rows, row_stride]` matrix.
    pub fn dense(data: &'a [f32], row_stride: usize) -> Self {
        Self {
            data,
            row_stride,
            col_stride: 1,
        }
    }

    /// The same elements read as the transpose.
    pub fn transposed(self) -> Self {
        Self {
            data: self.data,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }

    /// Whether every element of a `[rows, cols]` block lies inside the slice.
    fn holds(&self, rows: usize, cols: usize) -> bool {
        rows == 0
            || cols == 0
            || (rows - 1) * self.row_stride + (cols - 1) * self.col_stride < self.data.len()
    }
}

/// `dst [m, n] += lhs [m, k] x rhs [k, n]`, `dst`'s rows `dst_row_stride` apart.
#[allow(clippy::too_many_arguments)]
pub fn multiply(
    lhs: Matrix,
    rhs: Matrix,
    dst: &mut [f32],
    dst_row_stride: usize,
    m: usize,
    k: usize,
    n: usize,
    parallel: bool,
) {
    block_product(lhs, rhs, dst, dst_row_stride, [m, k, n], true, parallel);
}

/// `dst [m, n] = lhs [m, k] x rhs [k, n]`, `dst`'s rows `dst_row_stride` apart: written, not read.
#[allow(clippy::too_many_arguments)]
pub fn overwrite(
    lhs: Matrix,
    rhs: Matrix,
    dst: &mut [f32],
    dst_row_stride: usize,
    m: usize,
    k: usize,
    n: usize,
    parallel: bool,
) {
    block_product(lhs, rhs, dst, dst_row_stride, [m, k, n], false, parallel);
}

/// The product into the `[m, n]` block of `dst`, added to it when `accumulate`.
fn block_product(
    lhs: Matrix,
    rhs: Matrix,
    dst: &mut [f32],
    dst_row_stride: usize,
    [m, k, n]: [usize; 3],
    accumulate: bool,
    parallel: bool,
) {
    assert!(m == 0 || n == 0 || (m - 1) * dst_row_stride + n <= dst.len());
    if k == 0 {
        if !accumulate {
            for row in dst.chunks_mut(dst_row_stride).take(m) {
                row[..n].fill(0.0);
            }
        }
        return;
    }
    // SAFETY: the assert keeps every element of the [m, n] block inside `dst`.
    unsafe {
        gemm_into(
            lhs,
            rhs,
            dst.as_mut_ptr(),
            dst_row_stride,
            m,
            k,
            n,
            accumulate,
            parallel,
        )
    }
}

/// `lhs [m, k] x rhs [k, n]` as a new dense `[m, n]` matrix, computed in parallel and written
/// once: no zeroing pass before the product.
pub fn product(lhs: Matrix, rhs: Matrix, m: usize, k: usize, n: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(m * n);
    if k == 0 {
        out.resize(m * n, 0.0);
        return out;
    }
    // SAFETY: the product writes every element of the [m, n] block (it reads none: `read_dst`
    // is false), all within the capacity; only then is the length set.
    unsafe {
        gemm_into(lhs, rhs, out.as_mut_ptr(), n, m, k, n, false, true);
        out.set_len(m * n);
    }
    out
}

/// `dst = lhs x rhs`, or `dst += lhs x rhs` when `read_dst`.
///
/// # Safety
/// `dst` must be valid for writes (and reads when `read_dst`) at `i * dst_row_stride + j` for
/// every `i < m`, `j < n`.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn gemm_into(
    lhs: Matrix,
    rhs: Matrix,
    dst: *mut f32,
    dst_row_stride: usize,
    m: usize,
    k: usize,
    n: usize,
    read_dst: bool,
    parallel: bool,
) {
    assert!(lhs.holds(m, k) && rhs.holds(k, n));
    let parallelism = if parallel {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the assert keeps every index the operands' strides reach inside their slices; the
    // caller vouches for `dst`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_row_stride as isize,
            read_dst,
            lhs.data.as_ptr(),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr(),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            parallelism,
        );
    }
}
