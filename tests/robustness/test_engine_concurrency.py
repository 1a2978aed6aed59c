"""One shared model, eight sessions at once: the same answers as one session alone."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from shared_data import HAM, ham_sample
from tiny_models import keras_lib, save_model, tiny_cnn

import dermascan
from dermascan.inference.batch import bytes_sources, file_sources, run_batch

SESSIONS = 8
ROUNDS = 3


@pytest.fixture(scope="module")
def shared_model(tmp_path_factory):
    path = save_model(tiny_cnn(keras_lib("keras"), "nested-func", size=64), tmp_path_factory.mktemp("conc") / "m.keras")
    return dermascan.load_model(path, preprocessing="unit")


@pytest.fixture(scope="module")
def images() -> list[bytes]:
    if not HAM.is_dir():
        pytest.skip("../shared/data is not present")
    return [p.read_bytes() for p in ham_sample(SESSIONS, per_class=True)]


def test_concurrent_sessions_get_exactly_the_single_session_results(shared_model, images):
    alone = [shared_model.analyze(data) for data in images]
    start = threading.Barrier(SESSIONS)

    def session(i: int):
        start.wait()  # all sessions hit the compiled pass at the same moment
        out = []
        for r in range(ROUNDS):
            out.append(shared_model.analyze(images[i], class_label=None if r % 2 == 0 else "mel"))
        return out

    with ThreadPoolExecutor(SESSIONS) as pool:
        results = list(pool.map(session, range(SESSIONS)))
    for i, runs in enumerate(results):
        for r, a in enumerate(runs):
            assert a.sha256 == alone[i].sha256  # never another session's image
            np.testing.assert_allclose(a.probabilities, alone[i].probabilities, atol=1e-6)
            if r % 2 == 0:
                np.testing.assert_allclose(a.heatmap, alone[i].heatmap, atol=1e-5)
            else:
                assert a.explained_label == "mel"
    assert shared_model._cam._explain.experimental_get_tracing_count() == 1


def test_concurrent_batches_do_not_mix_rows(shared_model, tmp_path, images):
    folders = []
    for s in range(4):
        folder = tmp_path / f"s{s}"
        folder.mkdir()
        for j, data in enumerate(images[s : s + 4]):
            (folder / f"s{s}_{j}.jpg").write_bytes(data)
        folders.append(sorted(folder.iterdir()))

    def batch(paths):
        return [(it.name, it.analysis.sha256) for it in run_batch(shared_model, file_sources(paths), chunk_size=3)]

    with ThreadPoolExecutor(4) as pool:
        outputs = list(pool.map(batch, folders))
    for paths, rows in zip(folders, outputs):
        assert [name for name, _ in rows] == [p.name for p in paths]
        assert [h for _, h in rows] == [dermascan.intake.images.sha256_hex(p.read_bytes()) for p in paths]


def test_concurrent_sessions_with_different_options_and_a_batch_get_their_own_results(shared_model, images):
    # Sessions differ in preprocessing, resize and explained class while one batch runs beside them: the one
    # compiled pass must never mix options or images between callers, and never retrace.
    combos = [(p, r, c) for p, r, c in zip(["unit", "tf", "imagenet", "raw"] * 2,
                                          ["squash", "center-crop", "pad", "squash", "pad", "center-crop",
                                           "squash", "pad"], [None, "mel", "nv", None, "bcc", None, "df", "vasc"])]
    alone = [shared_model.analyze(images[i], preprocessing=p, resize=r, class_label=c)
             for i, (p, r, c) in enumerate(combos)]
    batch_alone = [(it.name, it.analysis.probabilities) for it in run_batch(shared_model, bytes_sources(
        [(f"b{i}.jpg", data) for i, data in enumerate(images)]), chunk_size=3)]
    start = threading.Barrier(SESSIONS + 1)

    def session(i: int):
        start.wait()
        p, r, c = combos[i]
        return [shared_model.analyze(images[i], preprocessing=p, resize=r, class_label=c) for _ in range(ROUNDS)]

    def batch():
        start.wait()
        return [(it.name, it.analysis.probabilities) for it in run_batch(shared_model, bytes_sources(
            [(f"b{i}.jpg", data) for i, data in enumerate(images)]), chunk_size=3)]

    with ThreadPoolExecutor(SESSIONS + 1) as pool:
        futures = [pool.submit(session, i) for i in range(SESSIONS)]
        batch_future = pool.submit(batch)
        results = [f.result(timeout=300) for f in futures]
        batch_rows = batch_future.result(timeout=300)
    for i, runs in enumerate(results):
        for a in runs:
            assert a.sha256 == alone[i].sha256 and (a.preprocessing, a.resize) == combos[i][:2]
            assert a.explained_label == alone[i].explained_label
            np.testing.assert_allclose(a.probabilities, alone[i].probabilities, atol=1e-6)
            np.testing.assert_allclose(a.heatmap, alone[i].heatmap, atol=1e-5)
    assert [n for n, _ in batch_rows] == [n for n, _ in batch_alone]
    for (_, got), (_, want) in zip(batch_rows, batch_alone):
        np.testing.assert_allclose(got, want, atol=1e-6)
    assert shared_model._cam._explain.experimental_get_tracing_count() == 1
