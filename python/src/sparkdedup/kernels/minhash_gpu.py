"""GPU kernel of the fuzzy-dedup MinHash step: cuDF when present, else a numba CUDA kernel
(a batch holding invalid UTF-8 skips cuDF: `_valid_utf8`).

Same signature and values as `minhash_cpu.minhash_arrow_cpu` (shared/reference/ALGORITHMS.md,
"Signature of one document"). cuDF's `str.minhash` / `minhash64` is the reference NeMo Curator
calls; without cuDF two `cuda.jit` kernels run over the Arrow offsets and bytes. cudf, cupy and
numba.cuda are imported only inside functions, so importing this module never needs a GPU.
"""

from __future__ import annotations

import functools
import importlib.util
from typing import Any

import numpy as np
import pyarrow as pa

from sparkdedup.errors import BackendUnavailableError
from sparkdedup.kernels.minhash_cpu import arrow_string_buffers, minhash_arrow_cpu
from sparkdedup.kernels.murmur import murmur3_32_py, murmur3_64_py

_INSTALL_HINT = (
    "install RAPIDS cuDF (https://docs.rapids.ai/install) or numba-cuda with a CUDA driver, "
    "or run with device='cpu' (identical results)"
)
_HASH_BLOCK = 256
#: Bytes of a document one block of the permutation kernel takes (documents longer than this
#: are split over several blocks).
_CHUNK = 4096
_MAX32 = np.uint32(0xFFFFFFFF)
_MAX64 = np.uint64(0xFFFFFFFFFFFFFFFF)
_MERSENNE_61 = np.uint64((1 << 61) - 1)
_S61 = np.uint64(61)

#: numba.cuda, bound by `_cuda_kernels` on first GPU use. The kernels must see it as a module
#: global: numba's CUDA simulator swaps in its fake `cuda` by rebinding function globals.
cuda: Any = None


def cudf_available() -> bool:
    """Whether cuDF can be imported (its import is not attempted)."""
    return importlib.util.find_spec("cudf") is not None


def numba_cuda_available() -> bool:
    """Whether numba's CUDA target has a usable GPU (or its simulator is enabled)."""
    try:
        from numba import cuda
    except ImportError:
        return False
    return bool(cuda.is_available())


def _minhash_cudf(
    array: pa.Array, a: np.ndarray, b: np.ndarray, murmur_seed: int, width: int, use64: bool
) -> np.ndarray:
    import cudf

    # cuDF gives null rows for null input; an empty string gives the all-zero row we want.
    texts = cudf.Series.from_arrow(array.cast(pa.large_string())).fillna("")
    dtype = np.uint64 if use64 else np.uint32
    a_col = cudf.Series(a.astype(dtype))
    b_col = cudf.Series(b.astype(dtype))
    fn = texts.str.minhash64 if use64 else texts.str.minhash
    lists = fn(int(murmur_seed), a=a_col, b=b_col, width=int(width))
    values = lists.list.leaves.values  # cupy, row-major
    return values.get().astype(dtype, copy=False).reshape(len(array), a.size)


@functools.cache
def _cuda_kernels() -> dict[str, Any]:
    global cuda
    from numba import cuda as numba_cuda

    cuda = numba_cuda

    murmur32 = cuda.jit(device=True)(murmur3_32_py)
    murmur64 = cuda.jit(device=True)(murmur3_64_py)

    def make_hash_kernel(murmur: Any, dtype: Any) -> Any:
        one = dtype(1)  # typed: numba compares uint64 with a plain int as float64

        @cuda.jit
        def shingle_hashes(
            offsets: Any, data: Any, valid: Any, width: int, seed: Any, hashes: Any
        ) -> None:
            # One thread per byte: the hash of the shingle starting there, 0 where none does
            # (hashes are >= 1 after cuDF's max(h, 1), so 0 is free as a marker).
            t = cuda.grid(1)
            if t >= hashes.size:
                return
            p = t  # offsets and data are rebased to the batch's first byte
            hashes[t] = 0
            lo, hi = 0, offsets.size - 2  # the document: largest d with offsets[d] <= p
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if offsets[mid] <= p:
                    lo = mid
                else:
                    hi = mid - 1
            start, end = offsets[lo], offsets[lo + 1]
            if valid[lo] == 0 or (data[p] & 0xC0) == 0x80:
                return
            q, count = p, 0
            while q < end and count < width:
                q += 1
                while q < end and (data[q] & 0xC0) == 0x80:
                    q += 1
                count += 1
            if count < width and p != start:
                return  # too few code points left; a short text is one shingle from its start
            hashes[t] = max(murmur(data, p, q, seed), one)

        return shingle_hashes

    # The permutations: one block row per chunk of at most _CHUNK bytes of a document, one
    # thread per hash, each taking the minimum over its chunk's shingles. A document of one
    # chunk stores its minima; a longer one has its chunks spread over the GPU, each merging
    # into the row with an atomic minimum (the row starts at the maximum, set by `start_rows`).
    # One block per document instead left a 16 MB document to three blocks: slower than a
    # CPU core.
    @cuda.jit
    def start_rows(offsets: Any, valid: Any, zero: Any, top: Any, out: Any) -> None:
        t = cuda.grid(1)
        k = out.shape[1]
        if t >= out.size:
            return
        d = t // k
        if valid[d] == 0 or offsets[d] == offsets[d + 1]:
            out[d, t - d * k] = zero  # null and empty texts: the all-zero row
        else:
            out[d, t - d * k] = top

    def make_permute_kernel(permuted: Any, top: Any) -> Any:
        @cuda.jit
        def permute(
            offsets: Any, chunk_doc: Any, chunk_start: Any, hashes: Any, a: Any, b: Any, out: Any
        ) -> None:
            c = cuda.blockIdx.x
            j = cuda.blockIdx.y * cuda.blockDim.x + cuda.threadIdx.x
            if j >= a.size:
                return
            d = chunk_doc[c]
            start, doc_end = chunk_start[c], offsets[d + 1]
            end = min(start + _CHUNK, doc_end)
            aj, bj, m = a[j], b[j], top
            for p in range(start, end):
                h = hashes[p]
                if h != 0:
                    m = min(m, permuted(h, aj, bj))
            if start == offsets[d] and end == doc_end:
                out[d, j] = m
            else:
                cuda.atomic.min(out, (d, j), m)

        return permute

    @cuda.jit(device=True)
    def permuted32(h: Any, aj: Any, bj: Any) -> Any:
        return np.uint32(h * aj + bj)

    @cuda.jit(device=True)
    def permuted64(h: Any, aj: Any, bj: Any) -> Any:
        v = h * aj + bj
        v = (v & _MERSENNE_61) + (v >> _S61)
        if v >= _MERSENNE_61:
            v = v - _MERSENNE_61
        return v

    return {
        "hash32": make_hash_kernel(murmur32, np.uint32),
        "hash64": make_hash_kernel(murmur64, np.uint64),
        "permute32": make_permute_kernel(permuted32, _MAX32),
        "permute64": make_permute_kernel(permuted64, _MAX64),
        "start_rows": start_rows,
    }


def minhash_numba_cuda(
    array: pa.Array, a: np.ndarray, b: np.ndarray, murmur_seed: int, width: int, use64: bool
) -> np.ndarray:
    """The numba CUDA kernels (used when cuDF is missing; tested under the CUDA simulator)."""
    from numba import cuda

    offsets, data, valid = arrow_string_buffers(array)
    dtype = np.uint64 if use64 else np.uint32
    n, k = len(valid), int(np.size(a))
    total = int(offsets[-1] - offsets[0])
    if n == 0 or k == 0 or total == 0:
        return np.zeros((n, k), dtype=dtype)
    kernels = _cuda_kernels()
    rebased = (offsets - offsets[0]).astype(np.int64)
    d_offsets = cuda.to_device(rebased)
    d_data = cuda.to_device(np.ascontiguousarray(data[offsets[0] : offsets[-1]]))
    d_valid = cuda.to_device(valid)
    d_hashes = cuda.device_array(total, dtype=dtype)
    seed = dtype(murmur_seed)
    hash_kernel = kernels["hash64" if use64 else "hash32"]
    blocks = (total + _HASH_BLOCK - 1) // _HASH_BLOCK
    hash_kernel[blocks, _HASH_BLOCK](d_offsets, d_data, d_valid, int(width), seed, d_hashes)
    d_out = cuda.device_array((n, k), dtype=dtype)
    top = _MAX64 if use64 else _MAX32
    blocks = (n * k + _HASH_BLOCK - 1) // _HASH_BLOCK
    kernels["start_rows"][blocks, _HASH_BLOCK](d_offsets, d_valid, dtype(0), top, d_out)
    lengths = np.diff(rebased)
    chunks = np.where((valid != 0) & (lengths > 0), (lengths + _CHUNK - 1) // _CHUNK, 0)
    chunk_doc = np.repeat(np.arange(n, dtype=np.int64), chunks)
    if chunk_doc.size:
        first = np.cumsum(chunks) - chunks
        chunk_start = rebased[chunk_doc] + _CHUNK * (np.arange(chunk_doc.size) - first[chunk_doc])
        threads = min(128, 32 * ((k + 31) // 32))
        grid = (chunk_doc.size, (k + threads - 1) // threads)
        permute = kernels["permute64" if use64 else "permute32"]
        permute[grid, threads](
            d_offsets,
            cuda.to_device(chunk_doc),
            cuda.to_device(chunk_start),
            d_hashes,
            cuda.to_device(np.ascontiguousarray(a, dtype=dtype)),
            cuda.to_device(np.ascontiguousarray(b, dtype=dtype)),
            d_out,
        )
    return d_out.copy_to_host()


def minhash_arrow_gpu(
    array: pa.Array,
    a: np.ndarray,
    b: np.ndarray,
    murmur_seed: int,
    width: int,
    use_64_bit_hash: bool,
) -> np.ndarray:
    """MinHash signatures of an Arrow string array on the GPU (same contract as the CPU kernel).

    Parameters
    ----------
    array : pyarrow string, large_string or string_view Array (may be sliced).
    a, b : permutation parameters, uint32 (32-bit mode) or uint64 (64-bit mode).
    murmur_seed : MurmurHash3 seed (NeMo Curator passes ``a[0]``).
    width : shingle width in code points.
    use_64_bit_hash : 64-bit mode.

    Returns
    -------
    numpy.ndarray
        (len(array), len(a)) uint32 or uint64 on the host; all-zero rows for null/empty texts.

    Raises
    ------
    BackendUnavailableError
        Neither cuDF nor a CUDA device usable by numba is present.
    """
    from sparkdedup.device import task_gpu

    # On the GPU Spark gave the task (as the SemDeDup kernels do): where an executor sees
    # several GPUs, its Python workers would otherwise all take device 0.
    ordinal = task_gpu()
    with_cudf = cudf_available()
    if with_cudf and _valid_utf8(array):
        import cupy

        with cupy.cuda.Device(ordinal):
            return _minhash_cudf(array, a, b, murmur_seed, width, use_64_bit_hash)
    if numba_cuda_available():
        from numba import cuda

        with cuda.gpus[ordinal]:
            return minhash_numba_cuda(array, a, b, murmur_seed, width, use_64_bit_hash)
    if with_cudf:
        return minhash_arrow_cpu(array, a, b, murmur_seed, width, use_64_bit_hash)
    raise BackendUnavailableError(f"device='gpu' MinHash needs a CUDA GPU: {_INSTALL_HINT}")


def _valid_utf8(array: pa.Array) -> bool:
    """Whether every string of `array` is valid UTF-8 (Spark strings need not be:
    ``CAST(binary AS STRING)``, Parquet from other tools).

    cuDF shingles a stray continuation byte as a character of no bytes and reads past the end
    of a string cut inside a character (into the next string of the column, so the value
    depends on the batch); sparkdedup's kernels (CPU, numba CUDA, JVM) give such a byte to the
    character before it. A batch holding one goes to those kernels, so the signatures are the
    same on every backend. Checked on the host, at memory speed (simdutf).
    """
    try:
        array.validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True
