"""The package layout keeps its promises: light imports stay light, the engine never needs Streamlit."""

import re
import subprocess
import sys

from shared_data import REPO


def _run(code: str) -> subprocess.CompletedProcess:
    # A fresh interpreter: this test process has long imported TensorFlow through other tests.
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)


def test_the_card_and_the_review_store_import_without_tensorflow():
    proc = _run("import dermascan.model.card, dermascan.reviews, dermascan.reviews.query, dermascan.config, "
                "dermascan.intake.images, dermascan.intake.archive; import sys; "
                "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'")
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_every_engine_module_imports_without_streamlit_and_the_public_names_resolve():
    code = """
import importlib, pkgutil, sys
import dermascan
names = [m.name for m in pkgutil.walk_packages(dermascan.__path__, "dermascan.") if not m.name.endswith("__main__")]
for name in names:
    importlib.import_module(name)
assert "streamlit" not in sys.modules, "the engine imported streamlit"
missing = [n for n in dermascan.__all__ if getattr(dermascan, n, None) is None]
assert not missing, missing
print(len(names))
"""
    proc = _run(code)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert int(proc.stdout.split()[-1]) >= 40  # every subpackage was walked, not just the top level


def test_every_page_of_the_router_exists():
    pages = re.findall(r'st\.Page\("([^"]+)"', (REPO / "streamlit_app.py").read_text())
    assert len(pages) == 5
    assert [p for p in pages if not (REPO / p).is_file()] == []
