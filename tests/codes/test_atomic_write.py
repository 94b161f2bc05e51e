"""Atomic writes: concurrent writers on one path, writers killed by SIGKILL at random points, and
the temporary files such writers leave."""

import os
import random
import signal
import threading
import time

import numpy as np
import pytest

from torus_plugins.codes import load_codes, save_codes
from torus_plugins.codes.atomic import atomic_write, remove_stale_temps, temp_name_pattern
from torus_plugins.search import TorusIndexFlat, read_index, write_index

try:
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None


def _temps(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def _version_codes(v: int, n: int = 20_000) -> np.ndarray:
    return np.full((n, 64), v % 256, np.uint8)


def _check_version(path) -> int:
    """The file is one writer's complete data: the codes of the version its metadata names."""
    f = load_codes(path)
    v = f.meta["v"]
    assert np.array_equal(f.codes, _version_codes(v, len(f))), f"codes of version {v} are mixed"
    return v


def test_concurrent_writers_and_readers_on_one_path(tmp_path):
    target = tmp_path / "same.torc"
    save_codes(target, _version_codes(0), 8, meta={"v": 0})
    errors, seen = [], set()
    stop = threading.Event()

    def writer(w):
        try:
            for i in range(12):
                v = 1 + w * 100 + i
                save_codes(target, _version_codes(v), 8, meta={"v": v})
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def reader():
        try:
            while not stop.is_set():
                seen.add(_check_version(target))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    readers = [threading.Thread(target=reader) for _ in range(2)]
    writers = [threading.Thread(target=writer, args=(w,)) for w in range(6)]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    assert errors == []
    assert _check_version(target) in {1 + w * 100 + 11 for w in range(6)}  # a writer's last one
    assert len(seen) > 1 and _temps(tmp_path) == []


def test_concurrent_write_index_on_one_path(tmp_path):
    target = tmp_path / "same.tidx"
    indexes = [TorusIndexFlat(16, 8) for _ in range(4)]
    for v, index in enumerate(indexes):
        index.add(np.full((5000, 16), v, np.uint8))
    errors = []

    def run(index):
        try:
            for _ in range(10):
                write_index(index, target)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(ix,)) for ix in indexes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    codes = read_index(target).codes
    assert len(np.unique(codes)) == 1 and codes.shape == (5000, 16)
    assert _temps(tmp_path) == []


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork") or fcntl is None, reason="needs fork and flock (POSIX)")
def test_writer_killed_at_random_points_leaves_the_previous_file(tmp_path):
    target = tmp_path / "codes.torc"
    save_codes(target, _version_codes(0), 8, meta={"v": 0})
    rng = random.Random(1234)
    leftovers = 0
    last = 0
    for trial in range(12):
        pid = os.fork()
        if pid == 0:  # the writer: new versions, one after another, until killed
            try:
                v = 1000 * (trial + 1)
                while True:
                    v += 1
                    save_codes(target, _version_codes(v), 8, meta={"v": v})
            finally:
                os._exit(1)
        time.sleep(rng.uniform(0.0, 0.25))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        v = _check_version(target)  # loads (CRC ok) and is one complete version
        assert v == last or v > 1000 * (trial + 1), f"trial {trial}: version {v} after {last}"
        last = v
        leftovers += len(_temps(tmp_path))
        assert all(temp_name_pattern(target).fullmatch(name) for name in _temps(tmp_path))
    save_codes(target, _version_codes(1), 8, meta={"v": 1})  # removes the dead writers' files
    assert _temps(tmp_path) == [] and _check_version(target) == 1
    print(f"{leftovers} temporary files of killed writers over 12 kills, removed by the next write")


@pytest.mark.skipif(fcntl is None, reason="needs flock (POSIX)")
def test_stale_temp_cleanup_spares_live_writers_and_other_files(tmp_path):
    target = tmp_path / "out.torc"
    dead = tmp_path / ".out.torc.0123456789ab.tmp"
    live = tmp_path / ".out.torc.ba9876543210.tmp"
    names = ("out.torc.tmp", ".out.torc.backup.tmp", ".other.torc.0123456789ab.tmp")
    others = [tmp_path / n for n in names]
    for p in [dead, live] + others:
        p.write_bytes(b"partial")
    fd = os.open(live, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # a writer still running holds its file's lock
        atomic_write(target, b"new")
        assert not dead.exists() and live.exists() and all(p.exists() for p in others)
    finally:
        os.close(fd)
    assert remove_stale_temps(target) == [live.name]  # its writer is gone now
    assert target.read_bytes() == b"new"


def test_new_files_get_the_usual_permissions(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    atomic_write(tmp_path / "h.h", "text")
    assert (tmp_path / "h.h").stat().st_mode & 0o777 == 0o666 & ~umask
