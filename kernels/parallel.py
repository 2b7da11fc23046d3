"""Running a kernel's chunks on every core.

The heavy kernels (convolution, pooling) cut a batch into chunks of a few
images. Each chunk writes its own slice of the output, so chunks can run on
different cores with no locks: numba kernels are compiled with
``nogil=True`` and NumPy's matrix product releases the GIL too, so plain
Python threads really run at once.

While chunks run in parallel, BLAS is held to one thread. Otherwise
OpenBLAS starts its own threads inside every chunk's matrix product and they
fight ours for the same cores; and after a product on 2 threads, OpenBLAS's
threads keep spinning for a while, slowing whatever runs next (the chapter's
second convolution took 28 ms inside a training step, 17 ms alone). Measured
on a 2-core machine for that convolution (batch 128): 24.6 ms one chunk after
another with 2 BLAS threads, 15.6 ms with 2 chunk threads of 1 BLAS thread
each.

Which core runs which chunk never changes a result: every output value is
computed by exactly one chunk, and where chunks' shares are added up (a
convolution's weight and bias gradients) the runs of chunks are fixed by the
data's shape, never by the number of cores, and added in order afterwards.

BLAS is held to one thread also when a call runs in the caller's thread
alone (one chunk, or one worker): some OpenBLAS builds round a product on two
threads differently from the same product on one (seen with OpenBLAS 0.3.31's
Haswell kernels on an AMD EPYC, for a (86528, 9) x (9, 32) product as for
larger ones), and a result must not depend on whether another thread held
the limit at that moment. Setting and restoring the limit costs about a
microsecond (threadpoolctl, measured on that machine).
"""
import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import threadpoolctl
from threadpoolctl import ThreadpoolController


def _cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


WORKERS = _cores()
SMALL_MATMUL = 2**18  # multiply-adds; OpenBLAS itself runs products this small on one thread

_lock = threading.Lock()  # guards everything below and WORKERS
_pool = None
_pool_pid = None
_pool_users = {}      # pool -> calls of run_chunks using it now
_retired = set()      # pools set_workers replaced, shut down when their last user is done
_blas = None          # BLAS libraries' controllers (threadpoolctl), found once
_blas_holders = 0     # calls of run_chunks (in any thread) holding BLAS to one thread now
_blas_limiter = None  # each library's own thread count, restored when the last holder is done


def _free_blas_control():
    """threadpoolctl 3.8 lets one thread alone (the first that set a limit, the
    main thread as a rule) change OpenBLAS's process-wide thread count, and
    ignores the others without a word: the limit a pool thread or a user's
    thread set did nothing, and results then depended on which thread ran
    first. The count here is process-wide and kept under ``_lock``, so each
    change frees the control before and after (older threadpoolctl has no
    such control, and nothing to free)."""
    controller = getattr(threadpoolctl, "OpenBLASController", None)
    clear = getattr(controller, "clear_controlling_thread", None)
    if clear is not None:
        clear(force=True)


def _blas_libraries():
    global _blas
    if _blas is None:
        _blas = [lib for lib in ThreadpoolController().lib_controllers if lib.user_api == "blas"]
    return _blas


def _hold_blas():
    """Hold BLAS to one thread (the first holder in the process sets the limit)."""
    global _blas_holders, _blas_limiter
    if _blas_holders == 0:
        libraries = _blas_libraries()
        _free_blas_control()
        _blas_limiter = [(lib, lib.get_num_threads()) for lib in libraries]
        for lib in libraries:
            lib.set_num_threads(1)
        _free_blas_control()
    _blas_holders += 1


def _let_go_blas():
    """The last holder restores what BLAS had."""
    global _blas_holders, _blas_limiter
    _blas_holders -= 1
    if _blas_holders == 0:
        _free_blas_control()
        for lib, threads in _blas_limiter:
            lib.set_num_threads(threads)
        _free_blas_control()
        _blas_limiter = None


@contextlib.contextmanager
def one_blas_thread():
    """BLAS on one thread for a whole model call (predict, a training step): the
    kernels inside then only count themselves in, for well under a microsecond
    each, instead of setting and restoring the limit around every product."""
    with _lock:
        _hold_blas()
    try:
        yield
    finally:
        with _lock:
            _let_go_blas()


def _acquire():
    """The shared thread pool (made anew in a forked child, whose copy has no
    threads) and the worker count, taken together under the lock, and BLAS
    held to one thread: the first holder in the process sets the limit, the
    last one restores what BLAS had, so two threads running chunks at once
    can neither leave BLAS at one thread for good nor let it run N threads
    while chunks run."""
    global _pool, _pool_pid
    with _lock:
        if _pool is None or _pool_pid != os.getpid():
            _pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="cnn-kernel")
            _pool_pid = os.getpid()
            _pool_users[_pool] = 0
        _hold_blas()
        _pool_users[_pool] = _pool_users.get(_pool, 0) + 1
        return _pool, WORKERS


def _release(pool):
    with _lock:
        _let_go_blas()
        _pool_users[pool] -= 1
        done = pool in _retired and _pool_users[pool] == 0
        if done:
            _retired.discard(pool)
            del _pool_users[pool]
    if done:
        pool.shutdown(wait=False)


def set_workers(count):
    """Run the kernels on ``count`` threads from now on (``--threads`` of the
    benchmarks); results do not depend on it (see above). Safe while other
    threads run kernels: a call already running finishes on the pool it
    started with, which is shut down after it."""
    global WORKERS, _pool
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
        raise ValueError(f"the number of worker threads must be an int >= 1, got {count!r}")
    retire = None
    with _lock:
        if _pool is not None:
            if _pool_users.get(_pool, 0):
                _retired.add(_pool)
            else:
                retire = _pool
                _pool_users.pop(_pool, None)
            _pool = None
        WORKERS = int(count)
    if retire is not None:
        retire.shutdown(wait=True)


def run_chunks(work, chunks):
    """Share ``chunks`` out over up to WORKERS threads and call ``work(group)``
    once per thread with its group of chunks.

    Parameters
    ----------
    work : callable
        Takes a list of chunks (so it can make its scratch buffers once per
        thread) and writes each chunk's results into arrays it shares with
        the caller, every chunk into its own slice. Its return value is
        ignored; an exception in any group is raised here.
    chunks : list
        Anything ``work`` accepts, usually (index, start, stop) tuples.
    """
    with _lock:
        workers = WORKERS
        inline = workers == 1 or len(chunks) == 1
        if inline:  # in this thread, BLAS on one thread all the same (see above)
            _hold_blas()
    if inline:
        try:
            work(chunks)
        finally:
            with _lock:
                _let_go_blas()
        return
    pool, workers = _acquire()
    try:
        groups = [chunks[i::workers] for i in range(min(workers, len(chunks)))]
        # the caller runs the first group itself: one hand-off fewer, and no thread sits idle waiting
        futures = [pool.submit(work, group) for group in groups[1:]]
        try:
            work(groups[0])
            errors = []
        except BaseException as error:  # noqa: BLE001 - raised below, once the other groups are done
            errors = [error]
        errors += [future.exception() for future in futures]  # waits for every group
    finally:
        _release(pool)
    for error in errors:
        if error is not None:
            raise error


def image_chunks(n, images_per_chunk):
    """(index, start, stop) ranges covering ``n`` images."""
    step = max(1, int(images_per_chunk))
    return [(index, start, min(start + step, n)) for index, start in enumerate(range(0, n, step))]


def elementwise(kernel, arrays, *scalars, split):
    """Call ``kernel(*slices, *scalars)`` on ``split``-element slices of the
    flattened ``arrays`` (all C-contiguous, one size), on every core. For
    compiled element-by-element passes, whose values are independent, so the
    split changes nothing."""
    flats = [a.reshape(-1) for a in arrays]

    def work(group):
        for _, start, stop in group:
            kernel(*(f[start:stop] for f in flats), *scalars)

    run_chunks(work, image_chunks(flats[0].size, split))


def matmul(a, b, rows_per_chunk=None):
    """``a @ b`` for 2-D float arrays, blocks of ``a``'s rows on every core.

    Blocks are at least 64 rows (a thinner block streams ``b`` from memory
    once more for too little work) and at most an eighth of the rows, so the
    blocking, and with it the rounding, depends on the shapes alone.
    """
    m = a.shape[0]
    rows = rows_per_chunk or max(64, -(-m // 8))
    if m * a.shape[1] * b.shape[1] < SMALL_MATMUL:
        rows = m  # one block: handing out work would cost more than the work
    out = np.empty((m, b.shape[1]), dtype=np.result_type(a, b))

    def work(group):
        for _, start, stop in group:
            np.matmul(a[start:stop], b, out=out[start:stop])

    run_chunks(work, image_chunks(m, rows))
    return out
