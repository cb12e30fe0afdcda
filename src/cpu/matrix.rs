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
    assert!(lhs.holds(m, k) && rhs.holds(k, n));
    assert!(m == 0 || n == 0 || (m - 1) * dst_row_stride + n <= dst.len());
    let parallelism = if parallel {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the asserts above keep every index the strides reach inside the three slices.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_row_stride as isize,
            true,
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
