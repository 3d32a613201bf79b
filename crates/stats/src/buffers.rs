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
