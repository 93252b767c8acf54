"""numba's cache of the compiled kernels goes to a user cache folder, not the package.

``skgroupsparse._jit.kernel`` replaces ``numba.njit(cache=True, ...)``: numba's
``*.nbi``/``*.nbc`` files must land under ``$SKGROUPSPARSE_CACHE_DIR`` (or the
XDG default), never in the ``__pycache__`` next to the source, where pip
leaves them behind on uninstall. The cache folder is read when ``_jit`` is
imported, so each case runs in a fresh interpreter (about 3 s each: importing
skgroupsparse imports torch) on a module written into a temporary package
folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from skgroupsparse import _jit

NUMBA_FILES = ("*.nbi", "*.nbc")

MODULE = """\
from skgroupsparse._jit import kernel


@kernel(nogil=True, fastmath=True)
def add(a, b):
    return a + 2.0 * b
"""

# Imports the module, calls its kernel and prints what numba did, as JSON.
SCRIPT = """\
import json, sys
sys.path.insert(0, {folder!r})
import numba.core.config
import skgroupsparse._jit as jit
import mymod

value = mymod.add(1.0, 2.0)
stats = mymod.add.stats
print(json.dumps({{
    "value": value,
    "CACHE_DIR": None if jit.CACHE_DIR is None else str(jit.CACHE_DIR),
    "cache_path": stats.cache_path,
    "hits": len(stats.cache_hits),
    "misses": len(stats.cache_misses),
    "numba_cache_dir": numba.core.config.CACHE_DIR,
}}))
"""


def _numba_files(folder: Path) -> list[Path]:
    return sorted(p for pattern in NUMBA_FILES for p in folder.rglob(pattern))


def _clean_env(**overrides: str | None) -> dict[str, str]:
    """The environment without any cache setting, then ``overrides``."""
    env = dict(os.environ)
    for name in (_jit.ENV_VAR, "NUMBA_CACHE_DIR", "NUMBA_CACHE_LOCATOR_CLASSES"):
        env.pop(name, None)
    env.pop("NUMBA_DISABLE_JIT", None)
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


@pytest.fixture
def package(tmp_path):
    """A folder with ``mymod.py``, whose kernel is decorated by ``kernel()``."""
    folder = tmp_path / "pkg"
    folder.mkdir()
    (folder / "mymod.py").write_text(MODULE)
    return folder


def _run(package: Path, cwd: Path, **env: str | None) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(folder=str(package))],
        capture_output=True,
        text=True,
        env=_clean_env(PYTHONDONTWRITEBYTECODE="1", **env),
        cwd=cwd,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["value"] == 5.0
    # numba's own setting is what it was before decorating (empty here)
    assert report["numba_cache_dir"] == ""
    return report


# --------------------------------------------------------------------------
# (a), (b): the cache is written to our folder, and read back by a new process
# --------------------------------------------------------------------------
def test_cache_goes_to_the_cache_folder_and_is_reused(tmp_path, package):
    cache = tmp_path / "cache"
    first = _run(package, tmp_path, SKGROUPSPARSE_CACHE_DIR=str(cache))
    assert first["CACHE_DIR"] == str(cache)
    assert Path(first["cache_path"]).parent == cache / "numba"
    assert first["misses"] == 1 and first["hits"] == 0  # compiled
    written = _numba_files(cache)
    assert {p.suffix for p in written} == {".nbi", ".nbc"}, written
    assert all(p.parent == Path(first["cache_path"]) for p in written)
    # nothing next to the source: not in its __pycache__, not anywhere in it
    assert _numba_files(package) == []
    stamps = {p: p.stat().st_mtime_ns for p in written}

    second = _run(package, tmp_path, SKGROUPSPARSE_CACHE_DIR=str(cache))
    assert second["cache_path"] == first["cache_path"]
    assert second["hits"] == 1 and second["misses"] == 0  # loaded, not compiled
    assert {p: p.stat().st_mtime_ns for p in _numba_files(cache)} == stamps
    assert _numba_files(package) == []


def test_home_cache_is_used_by_default(tmp_path, package):
    home = tmp_path / "home"
    report = _run(
        package,
        tmp_path,
        HOME=str(home),
        XDG_CACHE_HOME=None,
    )
    assert report["CACHE_DIR"] == str(home / ".cache" / "skgroupsparse")
    assert _numba_files(home / ".cache" / "skgroupsparse" / "numba")
    assert _numba_files(package) == []


# --------------------------------------------------------------------------
# (c), (d): no usable folder, or caching off -> compiled, nothing written
# --------------------------------------------------------------------------
def test_unwritable_folder_compiles_without_cache(tmp_path, package):
    blocker = tmp_path / "afile"
    blocker.write_text("a regular file: nothing can be created under it")
    report = _run(package, tmp_path, SKGROUPSPARSE_CACHE_DIR=str(blocker / "sub"))
    assert report["CACHE_DIR"] is None
    assert report["cache_path"] is None
    assert report["misses"] == 1
    assert _numba_files(tmp_path) == []
    assert blocker.read_text().startswith("a regular file")


@pytest.mark.parametrize("value", ["", "0", "None", "OFF"])
def test_empty_or_off_disables_the_cache(tmp_path, package, value):
    if value != "":  # one subprocess is enough for the spellings
        assert _jit.requested_cache_dir({_jit.ENV_VAR: value}) is None
        return
    home = tmp_path / "home"
    report = _run(package, tmp_path, SKGROUPSPARSE_CACHE_DIR=value, HOME=str(home))
    assert report["CACHE_DIR"] is None and report["cache_path"] is None
    assert _numba_files(tmp_path) == []
    assert not home.exists()


def test_folder_numba_cannot_use_falls_back_to_no_cache(tmp_path, package):
    # our folder is writable, but numba's own subfolder for the package's path
    # is a regular file: numba's locator would fall through to __pycache__
    from numba.core.caching import _CacheLocator

    cache = tmp_path / "cache"
    (cache / "numba").mkdir(parents=True)
    subpath = _CacheLocator.get_suitable_cache_subpath(str(package / "mymod.py"))
    (cache / "numba" / subpath).write_text("in the way")
    report = _run(package, tmp_path, SKGROUPSPARSE_CACHE_DIR=str(cache))
    assert report["CACHE_DIR"] == str(cache)
    assert report["cache_path"] is None  # decorated again, without a cache
    assert _numba_files(tmp_path) == []


# --------------------------------------------------------------------------
# (e): where the cache goes by default
# --------------------------------------------------------------------------
@pytest.fixture
def environ(monkeypatch, tmp_path):
    for name in (_jit.ENV_VAR, "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return monkeypatch


def test_default_is_home_cache(environ, tmp_path):
    expected = tmp_path / "home" / ".cache" / "skgroupsparse"
    assert _jit.requested_cache_dir() == expected
    assert not expected.exists()  # resolving touches nothing
    assert _jit.cache_dir() == expected
    assert (expected / "numba").is_dir()
    assert list((expected / "numba").iterdir()) == []  # the write test is gone


def test_xdg_cache_home_wins_over_home(environ, tmp_path):
    environ.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert _jit.cache_dir() == tmp_path / "xdg" / "skgroupsparse"
    assert not (tmp_path / "home").exists()


@pytest.mark.parametrize("xdg", ["", "relative/path"])
def test_empty_or_relative_xdg_cache_home_is_ignored(environ, tmp_path, xdg):
    environ.setenv("XDG_CACHE_HOME", xdg)
    assert _jit.cache_dir() == tmp_path / "home" / ".cache" / "skgroupsparse"


def test_env_var_wins_over_xdg(environ, tmp_path):
    environ.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    environ.setenv(_jit.ENV_VAR, str(tmp_path / "mine"))
    assert _jit.cache_dir() == tmp_path / "mine"
    assert not (tmp_path / "xdg").exists()


def test_env_var_expands_user_and_is_made_absolute(environ, tmp_path):
    environ.setenv(_jit.ENV_VAR, "~/kernels")
    assert _jit.requested_cache_dir() == tmp_path / "home" / "kernels"
    environ.chdir(tmp_path)
    environ.setenv(_jit.ENV_VAR, "here")
    assert _jit.requested_cache_dir() == tmp_path / "here"


@pytest.mark.parametrize("value", ["", "0", "none", "None", "off", "OFF", " off "])
def test_off_values(environ, value):
    environ.setenv(_jit.ENV_VAR, value)
    assert _jit.requested_cache_dir() is None
    assert _jit.cache_dir() is None


def test_unwritable_folder_is_none(environ, tmp_path):
    (tmp_path / "afile").write_text("")
    environ.setenv(_jit.ENV_VAR, str(tmp_path / "afile" / "sub"))
    assert _jit.requested_cache_dir() == tmp_path / "afile" / "sub"
    assert _jit.cache_dir() is None


# --------------------------------------------------------------------------
# (f): numba's own setting is restored after decorating
# --------------------------------------------------------------------------
def _identity(x):
    return x


def test_numba_cache_dir_restored(monkeypatch, tmp_path):
    from numba.core import config

    monkeypatch.setattr(config, "CACHE_DIR", str(tmp_path / "someone-elses"))
    monkeypatch.setattr(_jit, "CACHE_DIR", tmp_path / "ours")
    dispatcher = _jit.kernel(nogil=True)(_identity)
    assert config.CACHE_DIR == str(tmp_path / "someone-elses")
    # the locator was built while the setting was ours
    assert Path(dispatcher.stats.cache_path).parent == tmp_path / "ours" / "numba"
    assert not (tmp_path / "someone-elses").exists()

    # restored when decorating fails too
    with pytest.raises(TypeError):
        _jit.kernel()(42)
    assert config.CACHE_DIR == str(tmp_path / "someone-elses")


def test_no_cache_dir_means_no_cache(monkeypatch):
    from numba.core import config

    before = config.CACHE_DIR
    monkeypatch.setattr(_jit, "CACHE_DIR", None)
    assert _jit.kernel()(_identity).stats.cache_path is None
    assert config.CACHE_DIR == before


def test_cache_false_means_no_cache(monkeypatch, tmp_path):
    monkeypatch.setattr(_jit, "CACHE_DIR", tmp_path / "ours")
    assert _jit.kernel(cache=False)(_identity).stats.cache_path is None
    assert not (tmp_path / "ours").exists()


# --------------------------------------------------------------------------
# (g): the package's own kernels (decorated by skgroupsparse._jit.kernel; with
# numba.njit(cache=True) they would be cached in skgroupsparse/__pycache__).
# --------------------------------------------------------------------------
KERNELS_SCRIPT = """\
import json
import numpy as np
from numba.core.registry import CPUDispatcher
from skgroupsparse import _kernels

beta = np.array([0.5, -0.25, 0.0])
grad = np.zeros(3)
_kernels.add_l1_subgradient(beta, grad, np.array([1.0, 2.0, 3.0]))
print(json.dumps({
    "grad": grad.tolist(),
    "paths": {
        name: obj.stats.cache_path
        for name, obj in vars(_kernels).items()
        if isinstance(obj, CPUDispatcher)
    },
}))
"""


def test_package_kernels_cache_in_the_cache_folder(tmp_path):
    cache = tmp_path / "cache"
    result = subprocess.run(
        [sys.executable, "-c", KERNELS_SCRIPT],
        capture_output=True,
        text=True,
        env=_clean_env(SKGROUPSPARSE_CACHE_DIR=str(cache)),
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["paths"], "no numba kernels found in skgroupsparse._kernels"
    for name, path in report["paths"].items():
        assert path is not None and Path(path).parent == cache / "numba", (name, path)
    # the kernel ran and its compiled code was written to our folder
    assert report["grad"] == [1.0, -2.0, 0.0]
    assert any("add_l1_subgradient" in p.name for p in _numba_files(cache))
