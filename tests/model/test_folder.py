"""The models folder: only model files directly inside it are offered or resolved, whatever name is asked for."""

from __future__ import annotations

import pytest

from dermascan.errors import ModelLoadError
from dermascan.model.folder import in_folder, list_models, model_in_folder


@pytest.fixture
def folder(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    for name in ("a.keras", "b.h5", ".hidden.keras", "notes.txt", "card.json"):
        (models / name).write_bytes(b"x")
    (models / "sub.keras").mkdir()  # a folder named like a model
    (models / "sub.keras" / "c.keras").write_bytes(b"x")
    outside = tmp_path / "secret.keras"
    outside.write_bytes(b"x")
    (models / "escape.keras").symlink_to(outside)
    (models / "alias.keras").symlink_to(models / "a.keras")  # pointing inside: fine
    (models / "loop.keras").symlink_to(models / "loop.keras")
    return models


def test_only_model_files_directly_inside_are_listed(folder):
    assert list_models(folder) == ["a.keras", "alias.keras", "b.h5"]
    assert list_models(folder / "absent") == []


@pytest.mark.parametrize("name", ["escape.keras", "../secret.keras", "sub.keras/c.keras", "sub.keras", "notes.txt",
                                  ".hidden.keras", "loop.keras", "missing.keras", "", "..", "/etc/passwd",
                                  "a.keras\0", "..\\secret.keras"])
def test_anything_else_is_refused_without_saying_what_exists(folder, name):
    with pytest.raises(ModelLoadError) as info:
        model_in_folder(folder, name)
    assert str(info.value) == "The chosen model is no longer in the models folder; choose another one."


def test_a_listed_name_resolves_inside_the_folder(folder):
    assert model_in_folder(folder, "b.h5") == (folder / "b.h5").resolve()
    assert model_in_folder(folder, "alias.keras") == (folder / "a.keras").resolve()
    assert in_folder(folder, folder / "a.keras") == "a.keras"
    assert in_folder(folder, folder.parent / "secret.keras") is None
    assert in_folder(folder, folder / "escape.keras") is None
