"""Where numba caches the compiled CPU kernels: a user cache folder.

``numba.njit(cache=True)`` writes its index (``*.nbi``) and data (``*.nbc``)
files into the ``__pycache__`` folder next to the decorated function's source
file when that folder is writable, that is, into the installed package. pip
does not know those files, so uninstalling leaves ``site-packages/skgroupsparse``
behind as an empty namespace package that shadows a later editable install.
The :func:`kernel` decorator sends numba's cache to a folder of its own
instead:

1. ``$SKGROUPSPARSE_CACHE_DIR`` when set; an empty value, or ``0``, ``none``
   or ``off`` (any case), turns caching off;
2. else ``$XDG_CACHE_HOME/skgroupsparse`` when ``XDG_CACHE_HOME`` is an
   absolute path;
3. else ``~/.cache/skgroupsparse``.

numba's files go into its ``numba`` subfolder, one folder per source folder
(numba names it after the folder and a hash of its path). When the folder
cannot be created or written, the kernels are compiled without a cache in
every new process, never cached next to the source.

How: numba picks a function's cache folder once, when ``cache=True`` makes
the dispatcher build its cache (``Dispatcher.enable_caching`` creates a
``FunctionCache``, whose ``CacheImpl`` asks its locator classes in turn); the
first locator, ``UserProvidedCacheLocator`` (``_UserProvidedCacheLocator``
before numba 0.61), joins ``numba.core.config.CACHE_DIR`` as it is at that
moment with a subfolder derived from the source path, and is skipped when that
setting is empty. :func:`kernel` sets ``config.CACHE_DIR`` to our folder only
while it decorates and restores it right after, so other numba users in the
process keep their own setting (``NUMBA_CACHE_DIR`` or ``__pycache__``). When
numba still chose another folder (it falls through to ``__pycache__`` if it
cannot create its subfolder of ours, or ``NUMBA_CACHE_LOCATOR_CLASSES``
reorders the locators), the function is decorated again without a cache.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = ["CACHE_DIR", "ENV_VAR", "cache_dir", "kernel", "requested_cache_dir"]

logger = logging.getLogger(__name__)

#: The environment variable that sets the cache folder, or turns caching off.
ENV_VAR = "SKGROUPSPARSE_CACHE_DIR"

#: Values of ``ENV_VAR`` (compared lower-case, stripped) that turn caching off.
_OFF = frozenset({"", "0", "none", "off"})

#: Subfolder of the cache folder that holds numba's files.
NUMBA_SUBDIR = "numba"

#: Serializes our temporary changes of numba's process-wide setting.
_CONFIG_LOCK = threading.Lock()


def requested_cache_dir(environ: Mapping[str, str] | None = None) -> Path | None:
    """Return the cache folder the environment asks for, without touching disk.

    Parameters
    ----------
    environ : mapping of str to str, default=None
        The environment; ``None`` reads :data:`os.environ`.

    Returns
    -------
    folder : pathlib.Path or None
        An absolute path: ``$SKGROUPSPARSE_CACHE_DIR`` (``~`` expanded), else
        ``$XDG_CACHE_HOME/skgroupsparse`` when that variable is an absolute
        path, else ``~/.cache/skgroupsparse``. ``None`` when
        ``SKGROUPSPARSE_CACHE_DIR`` turns caching off (an empty value, ``0``,
        ``none`` or ``off``) or no home folder can be found.
    """
    environ = os.environ if environ is None else environ
    value = environ.get(ENV_VAR)
    if value is not None:
        if value.strip().lower() in _OFF:
            return None
        return Path(os.path.abspath(os.path.expanduser(value)))
    xdg = environ.get("XDG_CACHE_HOME", "")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "skgroupsparse"
    home = environ.get("HOME") or os.path.expanduser("~")
    if not home or home == "~":
        return None
    return Path(os.path.abspath(home)) / ".cache" / "skgroupsparse"


def _writable(folder: Path) -> bool:
    """Create ``folder`` if needed and write and delete a file in it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-") as f:
            f.write(b"ok")
            f.flush()
    except OSError as exc:
        logger.debug("numba cache folder %s is not writable: %s", folder, exc)
        return False
    return True


def cache_dir() -> Path | None:
    """Return the cache folder of the compiled kernels, or None when there is none.

    Resolves :func:`requested_cache_dir` from the current environment, then
    creates its ``numba`` subfolder and writes and deletes a file there.

    Returns
    -------
    folder : pathlib.Path or None
        The cache folder (numba's files go into ``folder / "numba"``);
        ``None`` when the environment turns caching off or the folder cannot
        be created or written.
    """
    folder = requested_cache_dir()
    if folder is None or not _writable(folder / NUMBA_SUBDIR):
        return None
    return folder


#: The cache folder of this process (resolved on import), or None: no cache.
CACHE_DIR: Path | None = cache_dir()


@contextlib.contextmanager
def _numba_cache_dir(folder: Path) -> Iterator[None]:
    """Set ``numba.core.config.CACHE_DIR`` to ``folder``; restore it on exit."""
    from numba.core import config

    with _CONFIG_LOCK:
        previous = config.CACHE_DIR
        config.CACHE_DIR = str(folder)
        try:
            yield
        finally:
            config.CACHE_DIR = previous


def _cache_path(dispatcher: Any) -> str | None:
    """The folder numba caches ``dispatcher`` in; None if it has no cache."""
    stats = getattr(dispatcher, "stats", None)
    return getattr(stats, "cache_path", None)


def kernel(*, cache: bool = True, **options: Any) -> Callable[[Callable], Any]:
    """Return a decorator that compiles a function with :func:`numba.njit`.

    The compiled code is cached in :data:`CACHE_DIR` (in its ``numba``
    subfolder), never next to the source file; without a usable cache folder
    the function is compiled without a cache. Use as
    ``@kernel(nogil=True, fastmath=...)`` in place of
    ``@njit(cache=True, nogil=True, fastmath=...)``.

    Parameters
    ----------
    cache : bool, default=True
        Whether to cache the compiled code at all; False is
        ``numba.njit(cache=False, ...)``.
    **options
        Other options of :func:`numba.njit` (``nogil``, ``fastmath``, ...).

    Returns
    -------
    decorator : callable
        Takes a Python function and returns its numba dispatcher (the function
        itself under ``NUMBA_DISABLE_JIT=1``).
    """

    def decorate(func: Callable) -> Any:
        from numba import njit

        folder = CACHE_DIR if cache else None  # read now: tests may patch it
        if folder is None:
            return njit(cache=False, **options)(func)
        target = folder / NUMBA_SUBDIR
        try:
            with _numba_cache_dir(target):
                dispatcher = njit(cache=True, **options)(func)
        except RuntimeError as exc:  # no locator: no source file, e.g. ``-c``
            logger.debug("cannot cache %s: %s", func, exc)
            return njit(cache=False, **options)(func)
        path = _cache_path(dispatcher)
        if path is not None and not Path(path).is_relative_to(target):
            logger.debug(
                "numba chose %s to cache %s, not %s; compiling it without a cache",
                path,
                getattr(func, "__qualname__", func),
                target,
            )
            return njit(cache=False, **options)(func)
        return dispatcher

    return decorate
