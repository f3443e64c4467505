//! The engine under [`super::conv`]: a convolution seen from its *image* side (the
//! `[C_img, H_img, W_img]` array windows read from) and its *column* side (one value per
//! window position and column channel), im2col/col2im between them, and the GEMMs per batch
//! element and group.
//!
//! Two entry points cover every pass of conv2d and conv_transpose2d:
//! - [`im2col_products`]: `columns (+)= W * im2col(image)` and/or
//!   `grad_weight += columns' * im2col(image)^T`, sharing each im2col tile between them;
//! - [`col2im_products`]: `image += col2im(W^T * columns)` and/or
//!   `grad_weight += columns * im2col(image')^T`.
//!
//! The im2col matrix of a whole image is often larger than L2 (4.5 MiB for a `[32, 64, 64]`
//! image and a 3x3 kernel), so it is built in tiles of whole column rows sized to about
//! [`TILE_BYTES`], each consumed by the GEMMs while still in cache.

use rayon::prelude::*;

use super::gemm::{MatMut, MatRef, Parallelism, matmul};

/// Target size of one im2col tile: well under the 2 MiB L2 of the machines we target, so the
/// tile, the packed weight block and the output band stay resident while the GEMMs run.
/// Measured on the benchmark shapes: 256 KiB to 1 MiB perform alike; whole-image tiles
/// (4.5 MiB) slow the weight gradient by about a third.
const TILE_BYTES: usize = 512 * 1024;

/// A convolution seen from the image side and the column side (see the module docs).
#[derive(Clone, Copy, Debug)]
pub(super) struct ConvGeom {
    /// Batch elements.
    pub batch: usize,
    /// Channel groups, dividing both channel counts.
    pub groups: usize,
    /// `[C, H, W]` of the image side.
    pub img: [usize; 3],
    /// `[C, H, W]` of the column side.
    pub col: [usize; 3],
    /// `[kH, kW]`.
    pub kernel: [usize; 2],
    /// Window stride over the image.
    pub stride: [usize; 2],
    /// Zero padding of the image.
    pub padding: [usize; 2],
    /// Kernel tap spacing.
    pub dilation: [usize; 2],
}

impl ConvGeom {
    fn img_plane(&self) -> usize {
        self.img[1] * self.img[2]
    }

    fn col_plane(&self) -> usize {
        self.col[1] * self.col[2]
    }

    /// Elements of one batch element on the image side.
    fn img_len(&self) -> usize {
        self.img[0] * self.img_plane()
    }

    /// Elements of one batch element on the column side.
    fn col_len(&self) -> usize {
        self.col[0] * self.col_plane()
    }

    fn img_channels_per_group(&self) -> usize {
        self.img[0] / self.groups
    }

    fn col_channels_per_group(&self) -> usize {
        self.col[0] / self.groups
    }

    /// Rows of the im2col matrix: one per (image channel in the group, kernel tap).
    fn k(&self) -> usize {
        self.img_channels_per_group() * self.kernel[0] * self.kernel[1]
    }

    /// A 1x1 kernel with unit stride and no padding reads the image as it is: the im2col
    /// matrix would be a copy of the image, so the GEMMs use the image directly.
    fn is_pointwise(&self) -> bool {
        self.kernel == [1, 1]
            && self.stride == [1, 1]
            && self.padding == [0, 0]
            && self.img[1] == self.col[1]
            && self.img[2] == self.col[2]
    }

    /// Column rows per im2col tile, so a tile is about [`TILE_BYTES`].
    fn tile_rows(&self) -> usize {
        if self.is_pointwise() {
            // Nothing is copied, so there is nothing to keep in cache: one tile.
            return self.col[1].max(1);
        }
        let row_bytes = self.k() * self.col[2] * size_of::<f32>();
        (TILE_BYTES / row_bytes.max(1)).clamp(1, self.col[1].max(1))
    }

    /// Bytes of scratch the kernels may hold at once: one im2col tile per thread, and for a
    /// weight gradient one partial sum of `weight_len` elements per thread (checked against
    /// the memory budget before a kernel runs).
    pub(super) fn scratch_bytes(&self, weight_len: usize) -> u128 {
        let threads = match self.plan() {
            Plan::Batch => rayon::current_num_threads().min(self.batch),
            Plan::Serial => 1,
        };
        (threads as u128) * (self.scratch_len() as u128 + weight_len as u128) * 4
    }

    /// Elements of the scratch buffer one batch element needs.
    fn scratch_len(&self) -> usize {
        if self.is_pointwise() {
            0
        } else {
            self.k() * self.tile_rows() * self.col[2]
        }
    }

    /// Whether to run batch elements in parallel, each GEMM single-threaded, or one after
    /// another on this thread. The gemm crate's own threading (`Parallelism::Rayon`) is never
    /// used: rayon already splits the batch, and nesting would only add synchronisation.
    ///
    /// Measured on this project's 2-core machine, threading inside the GEMM loses even where
    /// the batch cannot be split: a `[1, 32, 128, 128] * [64, 32, 3, 3]` convolution takes
    /// 7.7 ms with `Rayon(2)` against 5.8 ms single-threaded (its fused backward 14.7 vs
    /// 12.7 ms; at 256 channels, 11.4 vs 11.1 ms): the tile-sized products are too small to
    /// split profitably. Over the batch, the benchmark convolution (`[16, 32, 64, 64]`) runs
    /// in 16 ms against 23 ms on one thread, as close to the 1.5x two independent GEMM
    /// streams reach on that machine as it gets; GEMM threading took 27 to 32 ms. The
    /// batch split also threads im2col/col2im, and each task reuses its scratch tile.
    /// An unbalanced batch (3 on 2 threads) still beats one thread.
    fn plan(&self) -> Plan {
        if rayon::current_num_threads() > 1 && self.batch > 1 {
            Plan::Batch
        } else {
            Plan::Serial
        }
    }

    /// Valid output positions along one axis for a kernel tap at `offset` (= tap index *
    /// dilation): those `o` in `0..out_len` with `0 <= o*stride + offset - padding < in_len`,
    /// as a range `lo..hi` (possibly empty).
    pub(super) fn valid_range(
        out_len: usize,
        in_len: usize,
        stride: usize,
        offset: usize,
        padding: usize,
    ) -> (usize, usize) {
        let lo = if offset >= padding {
            0
        } else {
            (padding - offset).div_ceil(stride)
        };
        let hi = if in_len + padding > offset {
            ((in_len + padding - offset - 1) / stride + 1).min(out_len)
        } else {
            0
        };
        (lo.min(hi), hi)
    }

    /// Fills `cols` (`K x (rows.len() * W_col)`, row-major) with the im2col matrix of one
    /// group's image channels for column rows `rows`: row `(c*kH + i)*kW + j`, column
    /// `(oh - rows.start)*W_col + ow` holds `image[c, oh*sH + i*dH - pH, ow*sW + j*dW - pW]`,
    /// or 0 in the padding.
    fn im2col(&self, image: &[f32], rows: std::ops::Range<usize>, cols: &mut [f32]) {
        let [_, img_h, img_w] = self.img;
        let [_, col_h, col_w] = self.col;
        let [kh, kw] = self.kernel;
        let [sh, sw] = self.stride;
        let tile = rows.len() * col_w;
        let mut row_index = 0;
        for plane in image
            .chunks_exact(self.img_plane())
            .take(self.img_channels_per_group())
        {
            for i in 0..kh {
                let (oh_lo, oh_hi) =
                    Self::valid_range(col_h, img_h, sh, i * self.dilation[0], self.padding[0]);
                for j in 0..kw {
                    let offset = j * self.dilation[1];
                    let (lo, hi) = Self::valid_range(col_w, img_w, sw, offset, self.padding[1]);
                    let dst_row = &mut cols[row_index * tile..][..tile];
                    row_index += 1;
                    for (t, oh) in rows.clone().enumerate() {
                        let dst = &mut dst_row[t * col_w..][..col_w];
                        if oh < oh_lo || oh >= oh_hi || lo == hi {
                            dst.fill(0.0);
                            continue;
                        }
                        let ih = oh * sh + i * self.dilation[0] - self.padding[0];
                        let src = &plane[ih * img_w..][..img_w];
                        let iw0 = lo * sw + offset - self.padding[1];
                        dst[..lo].fill(0.0);
                        dst[hi..].fill(0.0);
                        gather(&mut dst[lo..hi], &src[iw0..], sw);
                    }
                }
            }
        }
    }

    /// The adjoint of [`Self::im2col`]: adds every entry of `cols` into the image position
    /// it was read from (entries that came from padding are dropped).
    fn col2im(&self, cols: &[f32], rows: std::ops::Range<usize>, image: &mut [f32]) {
        let [_, img_h, img_w] = self.img;
        let [_, col_h, col_w] = self.col;
        let [kh, kw] = self.kernel;
        let [sh, sw] = self.stride;
        let tile = rows.len() * col_w;
        let img_plane = self.img_plane();
        let mut row_index = 0;
        for plane in image
            .chunks_exact_mut(img_plane)
            .take(self.img_channels_per_group())
        {
            for i in 0..kh {
                let (oh_lo, oh_hi) =
                    Self::valid_range(col_h, img_h, sh, i * self.dilation[0], self.padding[0]);
                for j in 0..kw {
                    let offset = j * self.dilation[1];
                    let (lo, hi) = Self::valid_range(col_w, img_w, sw, offset, self.padding[1]);
                    let src_row = &cols[row_index * tile..][..tile];
                    row_index += 1;
                    if lo == hi {
                        continue;
                    }
                    let iw0 = lo * sw + offset - self.padding[1];
                    for (t, oh) in rows.clone().enumerate() {
                        if oh < oh_lo || oh >= oh_hi {
                            continue;
                        }
                        let src = &src_row[t * col_w..][lo..hi];
                        let ih = oh * sh + i * self.dilation[0] - self.padding[0];
                        let dst = &mut plane[ih * img_w..][..img_w];
                        scatter_add(&mut dst[iw0..], src, sw);
                    }
                }
            }
        }
    }

    /// Column rows in tiles of [`Self::tile_rows`].
    fn tiles(&self) -> impl Iterator<Item = std::ops::Range<usize>> + use<> {
        let (step, end) = (self.tile_rows(), self.col[1]);
        (0..end)
            .step_by(step)
            .map(move |start| start..(start + step).min(end))
    }

    /// One batch element: for each group and tile, one im2col of `image` feeds
    /// `out (+)= W * cols` (when `forward` is given) and `grad_weight += columns * cols^T`
    /// (when `weight_grad` is given as `(columns, grad_weight)`).
    fn im2col_products_one(
        &self,
        image: &[f32],
        mut forward: Option<Forward<'_>>,
        mut weight_grad: Option<(&[f32], &mut [f32])>,
        scratch: &mut [f32],
    ) {
        let (k, m, col_plane) = (self.k(), self.col_channels_per_group(), self.col_plane());
        let img_group = self.img_channels_per_group() * self.img_plane();
        for g in 0..self.groups {
            let image_g = &image[g * img_group..][..img_group];
            for rows in self.tiles() {
                let width = rows.len() * self.col[2];
                let offset = g * m * col_plane + rows.start * self.col[2];
                let cols = if self.is_pointwise() {
                    // The image is its own im2col matrix: read the tile's band in place.
                    MatRef::new(&image_g[rows.start * self.col[2]..], k, width, col_plane, 1)
                } else {
                    self.im2col(image_g, rows, &mut scratch[..k * width]);
                    MatRef::row_major(&scratch[..k * width], k, width)
                };
                if let Some(Forward {
                    weight,
                    out,
                    accumulate,
                }) = forward.as_mut()
                {
                    let weight_g = MatRef::row_major(&weight[g * m * k..], m, k);
                    let dst = MatMut::with_row_stride(&mut out[offset..], m, width, col_plane);
                    matmul(dst, weight_g, cols, *accumulate, Parallelism::None);
                }
                if let Some((columns, grad_weight)) = weight_grad.as_mut() {
                    let lhs = MatRef::new(&columns[offset..], m, width, col_plane, 1);
                    let dst = MatMut::row_major(&mut grad_weight[g * m * k..], m, k);
                    matmul(dst, lhs, cols.t(), true, Parallelism::None);
                }
            }
        }
    }

    /// One batch element: `image += col2im(W^T * columns)` per group and tile.
    fn col2im_product_one(
        &self,
        columns: &[f32],
        weight: &[f32],
        image: &mut [f32],
        scratch: &mut [f32],
    ) {
        let (k, m, col_plane) = (self.k(), self.col_channels_per_group(), self.col_plane());
        let img_group = self.img_channels_per_group() * self.img_plane();
        for g in 0..self.groups {
            let image_g = &mut image[g * img_group..][..img_group];
            let weight_t = MatRef::row_major(&weight[g * m * k..], m, k).t();
            let cols_g = &columns[g * m * col_plane..][..m * col_plane];
            if self.is_pointwise() {
                let rhs = MatRef::row_major(cols_g, m, col_plane);
                matmul(
                    MatMut::row_major(image_g, k, col_plane),
                    weight_t,
                    rhs,
                    true,
                    Parallelism::None,
                );
                continue;
            }
            for rows in self.tiles() {
                let width = rows.len() * self.col[2];
                let offset = rows.start * self.col[2];
                let cols = &mut scratch[..k * width];
                let rhs = MatRef::new(&cols_g[offset..], m, width, col_plane, 1);
                matmul(
                    MatMut::row_major(cols, k, width),
                    weight_t,
                    rhs,
                    false,
                    Parallelism::None,
                );
                self.col2im(cols, rows, image_g);
            }
        }
    }
}

/// `dst[t] = src[t * stride]`: one im2col row segment. Stride 1 is a copy; stride 2 (strided
/// convs, and the usual kernel-4 stride-2 upsampling of conv_transpose2d) iterates
/// `chunks_exact(2)`, which LLVM turns into a vector deinterleave (a third faster than
/// indexing `src[2 * t]` on the convT workload); other strides use `chunks`, a plain scalar
/// loop (`step_by` was 5x slower still: its `nth` defeats the optimiser).
#[inline]
fn gather(dst: &mut [f32], src: &[f32], stride: usize) {
    match stride {
        1 => dst.copy_from_slice(&src[..dst.len()]),
        2 => gather_const::<2>(dst, src),
        _ => dst
            .iter_mut()
            .zip(src.chunks(stride))
            .for_each(|(d, s)| *d = s[0]),
    }
}

#[inline(always)]
fn gather_const<const STRIDE: usize>(dst: &mut [f32], src: &[f32]) {
    let Some((last, body)) = dst.split_last_mut() else {
        return;
    };
    // Whole chunks for all but the last element (the source may end right after it).
    for (d, s) in body.iter_mut().zip(src.chunks_exact(STRIDE)) {
        *d = s[0];
    }
    *last = src[body.len() * STRIDE];
}

/// `dst[t * stride] += src[t]`: the adjoint of [`gather`], for col2im.
#[inline]
fn scatter_add(dst: &mut [f32], src: &[f32], stride: usize) {
    match stride {
        1 => dst.iter_mut().zip(src).for_each(|(d, s)| *d += s),
        2 => scatter_add_const::<2>(dst, src),
        _ => dst.chunks_mut(stride).zip(src).for_each(|(d, s)| d[0] += s),
    }
}

#[inline(always)]
fn scatter_add_const<const STRIDE: usize>(dst: &mut [f32], src: &[f32]) {
    let Some((last, body)) = src.split_last() else {
        return;
    };
    for (d, s) in dst.chunks_exact_mut(STRIDE).zip(body) {
        d[0] += s;
    }
    dst[body.len() * STRIDE] += last;
}

/// How a batched convolution uses the threads (see [`ConvGeom::plan`]).
#[derive(Clone, Copy, Debug)]
enum Plan {
    /// Batch elements in parallel.
    Batch,
    /// Batch elements one after another on the calling thread.
    Serial,
}

/// Runs `body(n, out_n, grad_weight, scratch)` for every batch element `n`,
/// threaded as [`ConvGeom::plan`] says. `out` is split into equal per-element slices;
/// `grad_weight` is accumulated, through one partial sum per rayon task when the batch runs
/// in parallel (the weight is small next to the images, and tasks never contend for it).
fn for_each_element<F>(
    geo: &ConvGeom,
    out: Option<&mut [f32]>,
    grad_weight: Option<&mut [f32]>,
    body: F,
) where
    F: Fn(usize, Option<&mut [f32]>, Option<&mut [f32]>, &mut [f32]) + Sync,
{
    if geo.batch == 0 {
        return;
    }
    let out_chunks: Vec<Option<&mut [f32]>> = match out {
        // Callers return early on empty images and columns, so chunks are never empty.
        Some(out) => out.chunks_mut(out.len() / geo.batch).map(Some).collect(),
        None => (0..geo.batch).map(|_| None).collect(),
    };
    match geo.plan() {
        Plan::Batch => {
            let weight_len = grad_weight.as_ref().map(|g| g.len());
            let partial = out_chunks
                .into_par_iter()
                .enumerate()
                .fold(
                    || {
                        (
                            weight_len.map(|len| vec![0.0; len]),
                            vec![0.0; geo.scratch_len()],
                        )
                    },
                    |(mut acc, mut scratch), (n, out_n)| {
                        body(n, out_n, acc.as_deref_mut(), &mut scratch);
                        (acc, scratch)
                    },
                )
                .filter_map(|(acc, _)| acc)
                .reduce_with(|mut a, b| {
                    a.iter_mut().zip(&b).for_each(|(a, b)| *a += b);
                    a
                });
            if let (Some(grad_weight), Some(partial)) = (grad_weight, partial) {
                grad_weight
                    .iter_mut()
                    .zip(&partial)
                    .for_each(|(g, p)| *g += p);
            }
        }
        Plan::Serial => {
            let mut scratch = vec![0.0; geo.scratch_len()];
            let mut grad_weight = grad_weight;
            for (n, out_n) in out_chunks.into_iter().enumerate() {
                body(n, out_n, grad_weight.as_deref_mut(), &mut scratch);
            }
        }
    }
}

/// The forward product of [`im2col_products`]: `out (+)= weight * im2col(image)`.
pub(super) struct Forward<'a> {
    /// `[C_col, C_img/groups, kH, kW]`.
    pub weight: &'a [f32],
    /// The column side, one batch element (per element) or the whole batch (at the entry).
    pub out: &'a mut [f32],
    /// Add to `out` instead of overwriting it.
    pub accumulate: bool,
}

/// `forward.out (+)= W * im2col(image)` (when `forward` is given) and
/// `grad_weight += columns * im2col(image)^T` (when `weight_grad` is `(columns,
/// grad_weight)`), over the batch, one im2col per tile for both.
///
/// conv2d forward and weight gradient; conv_transpose2d input and weight gradients.
pub(super) fn im2col_products(
    geo: &ConvGeom,
    image: &[f32],
    forward: Option<Forward<'_>>,
    weight_grad: Option<(&[f32], &mut [f32])>,
) {
    if geo.img_len() == 0 || geo.col_len() == 0 {
        // No window reads anything, so every product is zero (only an output with zero
        // channels gets here).
        if let Some(Forward {
            out,
            accumulate: false,
            ..
        }) = forward
        {
            out.fill(0.0);
        }
        return;
    }
    let (img_len, col_len) = (geo.img_len(), geo.col_len());
    let (weight, out, accumulate) = match forward {
        Some(Forward {
            weight,
            out,
            accumulate,
        }) => (Some(weight), Some(out), accumulate),
        None => (None, None, false),
    };
    let (columns, grad_weight) = match weight_grad {
        Some((c, g)) => (Some(c), Some(g)),
        None => (None, None),
    };
    for_each_element(geo, out, grad_weight, |n, out, grad_weight, scratch| {
        let image_n = &image[n * img_len..][..img_len];
        let forward = weight.zip(out).map(|(weight, out)| Forward {
            weight,
            out,
            accumulate,
        });
        let weight_grad = columns
            .map(|c| &c[n * col_len..][..col_len])
            .zip(grad_weight);
        geo.im2col_products_one(image_n, forward, weight_grad, scratch);
    });
}

/// `image += col2im(W^T * columns)` (when `image` is given) and
/// `grad_weight += columns * im2col(image')^T` (when `weight_grad` is `(image',
/// grad_weight)`), over the batch.
///
/// conv2d input and weight gradients; conv_transpose2d forward.
pub(super) fn col2im_products(
    geo: &ConvGeom,
    columns: &[f32],
    weight: &[f32],
    image: Option<&mut [f32]>,
    weight_grad: Option<(&[f32], &mut [f32])>,
) {
    if geo.img_len() == 0 || geo.col_len() == 0 {
        return;
    }
    let (img_len, col_len) = (geo.img_len(), geo.col_len());
    let (image_in, grad_weight) = match weight_grad {
        Some((i, g)) => (Some(i), Some(g)),
        None => (None, None),
    };
    for_each_element(
        geo,
        image,
        grad_weight,
        |n, image_out, grad_weight, scratch| {
            let columns_n = &columns[n * col_len..][..col_len];
            if let Some(image_out) = image_out {
                geo.col2im_product_one(columns_n, weight, image_out, scratch);
            }
            if let (Some(image_in), Some(grad_weight)) = (image_in, grad_weight) {
                let image_n = &image_in[n * img_len..][..img_len];
                let weight_grad = Some((columns_n, grad_weight));
                geo.im2col_products_one(image_n, None, weight_grad, scratch);
            }
        },
    );
}

#[cfg(test)]
mod tests {
    use super::ConvGeom;

    #[test]
    fn valid_range_matches_brute_force() {
        for out_len in 1..6 {
            for in_len in 1..6 {
                for stride in 1..4 {
                    for offset in 0..5 {
                        for padding in 0..4 {
                            let (lo, hi) =
                                ConvGeom::valid_range(out_len, in_len, stride, offset, padding);
                            let valid: Vec<usize> = (0..out_len)
                                .filter(|&o| {
                                    let pos = (o * stride + offset) as isize - padding as isize;
                                    pos >= 0 && pos < in_len as isize
                                })
                                .collect();
                            assert_eq!((lo..hi).collect::<Vec<_>>(), valid);
                        }
                    }
                }
            }
        }
    }
}
