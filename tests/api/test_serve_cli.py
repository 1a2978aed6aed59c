"""``python -m dermascan serve``: bad settings and flags stop it at start with one line (exit 2)."""

from __future__ import annotations

import pytest

from dermascan.cli import main


@pytest.mark.parametrize("argv, env, word", [(["--port", "70000"], {}, "--port"),
                                             ([], {"DERMASCAN_API_KEYS": "short"}, "DERMASCAN_API_KEYS"),
                                             ([], {"DERMASCAN_API_MAX_WAIT_MS": "soon"}, "DERMASCAN_API_MAX_WAIT_MS")])
def test_serve_refuses_bad_settings_in_one_line(monkeypatch, capsys, tiny_model_path, argv, env, word):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["serve", "--model", str(tiny_model_path), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and word in err and "Traceback" not in err
