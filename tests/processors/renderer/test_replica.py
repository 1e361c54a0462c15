"""Replica registration: landmarks, the content-hash cache, and bad inputs with clear errors."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from presence.framework.errors import ReplicaError
from presence.processors.renderer.replica import (
    CANONICAL_SIZE,
    create_replica_cli,
    register_replica,
)

pytestmark = pytest.mark.background


def test_registration_finds_a_plausible_face(replica):
    g = replica.geometry
    assert replica.neutral.shape == (CANONICAL_SIZE, CANONICAL_SIZE, 3)
    (lx, ly), (rx, ry) = g["eyes"]
    mx, my = g["mouth"]
    assert lx < mx < rx  # mouth between the eyes horizontally
    assert max(ly, ry) < my < g["chin"]  # below the eyes, above the chin
    for key in ("open", "width", "blink"):
        assert replica.bases[key].shape == (CANONICAL_SIZE, CANONICAL_SIZE, 2)
        assert np.abs(replica.bases[key]).max() > 0


def test_cache_miss_then_hit(portrait_path, tmp_path):
    steps: list[str] = []
    first = register_replica(portrait_path, "a", tmp_path, progress=lambda f, m: steps.append(m))
    assert "computing displacement bases" in steps and len(list(tmp_path.glob("*.npz"))) == 1
    steps.clear()
    cached = next(tmp_path.glob("*.npz"))
    written = cached.stat().st_mtime_ns
    second = register_replica(portrait_path, "b", tmp_path, progress=lambda f, m: steps.append(m))
    assert steps[-1] == "loaded from cache" and "computing displacement bases" not in steps
    assert second.name == "b" and second.content_hash == first.content_hash
    assert np.array_equal(second.neutral, first.neutral)
    assert all(np.array_equal(second.bases[k], first.bases[k]) for k in first.bases)
    assert cached.stat().st_mtime_ns == written, "a hit reads the cache, it does not rewrite it"


def test_processes_caching_the_same_face_at_once_each_write_it_whole(replica, tmp_path):
    # a call per process: several may register the same portrait at the same moment
    from concurrent.futures import ThreadPoolExecutor

    from loguru import logger

    from presence.processors.renderer.replica import _load_cached, _save

    warnings: list[str] = []
    sink = logger.add(warnings.append, level="WARNING")
    path = tmp_path / f"{replica.content_hash}.npz"
    try:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda _: _save(path, replica), range(24)))
    finally:
        logger.remove(sink)
    assert warnings == []
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no half-written leftovers
    loaded = _load_cached(path, "again", Path("portrait.png"))
    assert np.array_equal(loaded.neutral, replica.neutral)


def test_changed_content_is_a_new_entry(portrait_path, tmp_path):
    image = cv2.imread(str(portrait_path))
    other = tmp_path / "other.png"
    cv2.imwrite(str(other), cv2.flip(image, 1))
    a = register_replica(portrait_path, "a", tmp_path / "cache")
    b = register_replica(other, "b", tmp_path / "cache")
    assert a.content_hash != b.content_hash
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 2


def test_video_first_frame(portrait_path, tmp_path):
    image = cv2.imread(str(portrait_path))
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, image.shape[1::-1])
    for _ in range(3):
        writer.write(image)
    writer.release()
    replica = register_replica(path, "clip", tmp_path / "cache")
    assert replica.neutral.shape == (CANONICAL_SIZE, CANONICAL_SIZE, 3)


def test_cli_registers_with_progress(portrait_path, tmp_path, capsys):
    replica = create_replica_cli(portrait_path, "guide", tmp_path)
    assert replica.name == "guide"
    assert "ready" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d, face: d / "missing.png", "no such file"),
        (lambda d, face: _write(d / "notes.png", b"this is not an image"), "not a readable image"),
        (lambda d, face: _png(d / "tiny.png", cv2.resize(face, (100, 100))), "at least 128 px"),
        (lambda d, face: _png(d / "wall.png", _no_face()), "no face found"),
        (lambda d, face: _png(d / "two.png", np.hstack([face, face])), r"\d faces found"),
    ],
    ids=["missing", "not-an-image", "tiny", "no-face", "two-faces"],
)
def test_bad_inputs_say_what_to_change(portrait_path, tmp_path, make, message):
    face = cv2.resize(cv2.imread(str(portrait_path)), (400, 400))
    with pytest.raises(ReplicaError, match=message):
        register_replica(make(tmp_path, face), "x", tmp_path / "cache")


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def _png(path, image):
    cv2.imwrite(str(path), image)
    return path


def _no_face():
    yy, xx = np.mgrid[0:400, 0:400]
    return np.dstack(
        [
            (xx * 0.6).astype(np.uint8),
            (yy * 0.6).astype(np.uint8),
            np.full((400, 400), 90, np.uint8),
        ]
    )
