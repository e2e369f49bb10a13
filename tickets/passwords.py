"""Hash and check staff passwords without holding up the rest of the server.

A password hash (werkzeug's scrypt) takes about 0.1 s of CPU on purpose. Under `ivr serve`
every request of a gevent worker runs on one event loop, and a hash worked out there stops all
of them, webhooks included, for as long. So when gevent has patched threading, the hash runs
in a real thread of a small pool of this process (scrypt releases the GIL), at a lower CPU
priority than the event loop, while the loop serves other requests. Elsewhere (tests, commands)
it runs inline.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from typing import TypeVar

from werkzeug.security import check_password_hash, generate_password_hash

T = TypeVar("T")

# Hashes worked out at once per worker process: more wait their turn (each takes ~32 MB).
HASH_THREADS = 1
# The hashing thread's niceness: on a busy machine the kernel runs the event loop first.
HASH_NICENESS = 10

_pool = None
_pool_pid = 0


def hash_password(password: str) -> str:
    """Return a salted hash of a new password."""
    return _off_the_loop(generate_password_hash, password)


def password_matches(hashed: str, password: str) -> bool:
    """Return whether `password` matches a stored hash."""
    return _off_the_loop(check_password_hash, hashed, password)


def _off_the_loop(function: Callable[..., T], *args) -> T:
    """Run `function` in the hashing pool under gevent, else inline."""
    pool = _hashing_pool()
    if pool is None:
        return function(*args)
    return pool.apply(_niced, (function, *args))


def _niced(function: Callable[..., T], *args) -> T:
    # On Linux a niceness is per thread, and `who` 0 is the calling thread only.
    with contextlib.suppress(OSError):
        if os.getpriority(os.PRIO_PROCESS, 0) < HASH_NICENESS:
            os.setpriority(os.PRIO_PROCESS, 0, HASH_NICENESS)
    return function(*args)


def _hashing_pool():
    """Return this process's pool of hashing threads; None unless gevent patched threading."""
    global _pool, _pool_pid
    monkey = sys.modules.get("gevent.monkey")
    if monkey is None or not monkey.is_module_patched("threading"):
        return None
    if _pool is None or _pool_pid != os.getpid():  # a forked worker makes its own
        from gevent.threadpool import ThreadPool

        _pool, _pool_pid = ThreadPool(HASH_THREADS), os.getpid()
    return _pool
