//! Allocation of large scratch buffers.

use rayon::prelude::*;

/// Elements below which a buffer is filled on the calling thread.
const PARALLEL_FILL: usize = 1 << 16;

/// A zero-filled buffer whose pages have been written before anything reads them.
///
/// `vec![0.0; n]` takes untouched pages from the kernel. If the first access to a page is
/// a read (as in `buffer[i] += x`), the kernel maps the shared zero page; the first write
/// then takes a copy-on-write fault that flushes the TLB of every core running the
/// process. On buffers that are accumulated into, that was half the time of a majority
/// vote over a million items. Writing zeros first costs one ordinary fault per page.
pub fn written_zeros<T: Copy + Default + Send + Sync>(n: usize) -> Vec<T> {
    let mut buffer = vec![T::default(); n];
    if n < PARALLEL_FILL {
        buffer.fill(T::default());
    } else {
        buffer
            .par_chunks_mut(PARALLEL_FILL)
            .for_each(|chunk| chunk.fill(T::default()));
    }
    buffer
}

/// Ask the CPU to start loading `slice[index..]` into cache (a hint; no effect on results).
/// Passes that read per-annotator rows in the random annotator order of each item fetch
/// the next items' rows early, which hides most of the memory latency.
#[inline(always)]
pub(crate) fn prefetch<T>(slice: &[T], index: usize) {
    #[cfg(target_arch = "x86_64")]
    if index < slice.len() {
        // SAFETY: `_mm_prefetch` is a cache hint: it reads nothing observable and cannot
        // fault; the pointer is in bounds; SSE is part of the x86_64 baseline.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                slice.as_ptr().add(index).cast::<i8>(),
            );
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (slice, index);
}

/// [`prefetch`] of `value`'s cache lines, for a value that starts a line: one hint per
/// 64 bytes (a constant count the compiler unrolls).
#[inline(always)]
pub(crate) fn prefetch_lines<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        let start = (value as *const T).cast::<i8>();
        for offset in (0..std::mem::size_of::<T>()).step_by(64) {
            // SAFETY: as in `prefetch`; every offset is inside `value`.
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                    start.add(offset),
                );
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

/// Split `data` into consecutive pieces at `bounds` (offsets, first 0, last data.len()).
pub(crate) fn split_at_bounds<'s, T>(mut data: &'s mut [T], bounds: &[usize]) -> Vec<&'s mut [T]> {
    let mut out = Vec::with_capacity(bounds.len().saturating_sub(1));
    for pair in bounds.windows(2) {
        let (head, tail) = std::mem::take(&mut data).split_at_mut(pair[1] - pair[0]);
        out.push(head);
        data = tail;
    }
    out
}

/// Small per-item scratch rows of a pass over the ratings: `[f64; K]` when the class count is known at compile time
/// (the compiler then keeps them in registers), `Vec<f64>` otherwise.
pub(crate) trait Scratch {
    /// The class count: `K` for arrays (a constant the compiler unrolls loops by).
    fn width(k: usize) -> usize;
    fn zeroed(k: usize) -> Self;
    fn values(&mut self) -> &mut [f64];
}

impl<const K: usize> Scratch for [f64; K] {
    #[inline(always)]
    fn width(_: usize) -> usize {
        K
    }
    #[inline(always)]
    fn zeroed(_: usize) -> Self {
        [0.0; K]
    }
    #[inline(always)]
    fn values(&mut self) -> &mut [f64] {
        self
    }
}

impl Scratch for Vec<f64> {
    fn width(k: usize) -> usize {
        k
    }
    fn zeroed(k: usize) -> Self {
        vec![0.0; k]
    }
    fn values(&mut self) -> &mut [f64] {
        self
    }
}

/// Evaluates `$body` with the type alias `$S` naming the [`Scratch`] for `$k` classes:
/// `[f64; K]` for the usual class counts, `Vec<f64>` for any other.
macro_rules! with_scratch {
    ($k:expr, $S:ident => $body:expr) => {
        match $k {
            2 => {
                type $S = [f64; 2];
                $body
            }
            3 => {
                type $S = [f64; 3];
                $body
            }
            4 => {
                type $S = [f64; 4];
                $body
            }
            5 => {
                type $S = [f64; 5];
                $body
            }
            6 => {
                type $S = [f64; 6];
                $body
            }
            7 => {
                type $S = [f64; 7];
                $body
            }
            8 => {
                type $S = [f64; 8];
                $body
            }
            9 => {
                type $S = [f64; 9];
                $body
            }
            10 => {
                type $S = [f64; 10];
                $body
            }
            11 => {
                type $S = [f64; 11];
                $body
            }
            12 => {
                type $S = [f64; 12];
                $body
            }
            16 => {
                type $S = [f64; 16];
                $body
            }
            _ => {
                type $S = Vec<f64>;
                $body
            }
        }
    };
}
pub(crate) use with_scratch;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_zero_and_of_the_requested_length() {
        for n in [0, 1, PARALLEL_FILL - 1, PARALLEL_FILL * 3 + 5] {
            let buffer: Vec<f64> = written_zeros(n);
            assert_eq!(buffer.len(), n);
            assert!(buffer.iter().all(|v| *v == 0.0));
        }
    }
}
