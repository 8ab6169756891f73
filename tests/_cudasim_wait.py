"""A block of numba's CUDA simulator waits for its threads instead of spinning.

numba-cuda's simulator (``numba/cuda/simulator/kernel.py``, ``BlockManager.run``)
starts one Python thread per thread of a block and then polls them in a loop that
never sleeps: the polling thread competes for the GIL with the threads doing the
work. On the 2-core CI machine a 5 x 5 TS map with confidence searches took 100 s
that way, 1 s with this version. It is the same loop (``syncthreads`` barriers and
exceptions handled as numba does), with a 0.1 ms sleep between polls. Only the
waiting changes: every simulated thread runs the same code on the same data.
"""

import time

import numpy as np

__all__ = ["install"]

#: Pause between two polls of the block's threads, in seconds.
POLL_INTERVAL_S = 1e-4


def _raise_and_abort(failed, threads):
    for other in threads:  # as numba: abort the others, do not join them
        other.abort = True
        other.syncthreads_blocked = False
        other.syncthreads_event.set()
    raise failed.exception[0].with_traceback(failed.exception[1])


def _run(self, grid_point, *args):
    from numba.cuda.simulator.kernel import BlockThread

    threads = []
    for block_point in np.ndindex(*self._block_dim):

        def target():
            self._f(*args)

        thread = BlockThread(target, self, grid_point, block_point, self._debug)
        thread.start()
        threads.append(thread)
    live, blocked = set(threads), set()
    while live:
        for thread in live:
            if thread.syncthreads_blocked:
                blocked.add(thread)
            elif thread.exception:
                _raise_and_abort(thread, threads)
        if live == blocked:  # every live thread waits at the barrier: release them
            for thread in blocked:
                thread.syncthreads_blocked = False
                thread.syncthreads_event.set()
            blocked = set()
        live = {thread for thread in live if thread.is_alive()}
        if live:
            time.sleep(POLL_INTERVAL_S)
    for thread in threads:
        if thread.exception:
            raise thread.exception[0].with_traceback(thread.exception[1])


def install():
    """Replace the simulator's ``BlockManager.run`` (call only when it is enabled)."""
    from numba.cuda.simulator import kernel

    kernel.BlockManager.run = _run
