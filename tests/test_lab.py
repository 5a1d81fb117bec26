"""`poolscope lab`: the command line it builds, without ever starting a server."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from poolscope import lab as lab_module
from poolscope.cli import cli

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def launched(monkeypatch):
    """Replace the launcher: record (command, cwd) instead of starting anything."""
    calls: list[tuple[list[str], Path]] = []

    def fake_launch(command, cwd):
        calls.append((list(command), Path(cwd)))
        return 0

    monkeypatch.setattr(lab_module, "launch", fake_launch)
    return calls


def installed(monkeypatch, modules=(), scripts=()):
    """Pretend exactly these front-end modules are importable and these scripts are on PATH."""
    monkeypatch.setattr(lab_module, "_module_available", lambda name: name in modules)
    monkeypatch.setattr(lab_module.shutil, "which", lambda name: f"/opt/bin/{name}" if name in scripts else None)


def run(*args):
    return CliRunner().invoke(cli, ["lab", *args])


def test_help_works_and_lab_is_registered():
    result = CliRunner().invoke(cli, ["lab", "--help"])
    assert result.exit_code == 0, result.output
    for option in ("--path", "--app", "--port", "--no-browser", "--dry-run"):
        assert option in result.output
    top = CliRunner().invoke(cli, ["--help"])
    assert top.exit_code == 0 and "lab" in cli.commands and " lab " in top.output


def test_prefers_jupyterlab_run_by_this_python(monkeypatch, launched, tmp_path):
    installed(monkeypatch, modules={"jupyterlab", "notebook", "voila"})
    result = run("--path", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert launched == [
        ([sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={tmp_path.resolve()}"], tmp_path.resolve())
    ]


def test_falls_back_to_notebook_then_voila(monkeypatch, launched, tmp_path):
    installed(monkeypatch, modules={"notebook", "voila"})
    assert run("--path", str(tmp_path), "--port", "8899", "--no-browser").exit_code == 0
    installed(monkeypatch, modules={"voila"})
    assert run("--path", str(tmp_path), "--port", "8866", "--no-browser").exit_code == 0
    folder = str(tmp_path.resolve())
    assert [command for command, _ in launched] == [
        [sys.executable, "-m", "notebook", f"--ServerApp.root_dir={folder}", "--ServerApp.port=8899", "--no-browser"],
        [sys.executable, "-m", "voila", folder, "--port=8866", "--no-browser"],
    ]


def test_uses_a_script_on_path_when_this_python_has_no_front_end(monkeypatch, launched, tmp_path):
    installed(monkeypatch, scripts={"jupyter-notebook", "voila"})
    assert run("--path", str(tmp_path)).exit_code == 0
    assert launched[0][0] == ["/opt/bin/jupyter-notebook", f"--ServerApp.root_dir={tmp_path.resolve()}"]


def test_app_option_picks_that_front_end(monkeypatch, launched, tmp_path):
    installed(monkeypatch, modules={"jupyterlab", "voila"})
    assert run("--app", "voila", "--path", str(tmp_path)).exit_code == 0
    assert launched[0][0] == [sys.executable, "-m", "voila", str(tmp_path.resolve())]


def test_extra_arguments_are_passed_through(monkeypatch, launched, tmp_path):
    installed(monkeypatch, modules={"jupyterlab"})
    result = run("--path", str(tmp_path), "--", "--ServerApp.token=abc", "--ip=0.0.0.0")
    assert result.exit_code == 0, result.output
    assert launched[0][0][-2:] == ["--ServerApp.token=abc", "--ip=0.0.0.0"]


def test_nothing_installed_says_how_to_install(monkeypatch, launched, tmp_path):
    installed(monkeypatch)
    result = run("--path", str(tmp_path))
    assert result.exit_code == 1
    assert "pip install 'poolscope[lab]'" in result.output
    assert launched == []
    result = run("--path", str(tmp_path), "--app", "voila")
    assert result.exit_code == 1 and "pip install 'voila'" in result.output


def test_dry_run_prints_the_command_and_starts_nothing(monkeypatch, launched, tmp_path):
    installed(monkeypatch, modules={"jupyterlab"})
    result = run("--path", str(tmp_path), "--dry-run", "--port", "9999")
    assert result.exit_code == 0, result.output
    assert launched == []
    assert "-m jupyterlab" in result.output and "--ServerApp.port=9999" in result.output
    assert str(tmp_path.resolve()) in result.output


@pytest.mark.parametrize("port", ["-5", "0", "65536", "999999"])
def test_a_port_outside_1_to_65535_is_refused_before_anything_starts(monkeypatch, launched, tmp_path, port):
    """--port -5 and --port 999999 were taken (and handed to the server, which would then fail)."""
    installed(monkeypatch, modules={"jupyterlab"})
    result = run("--path", str(tmp_path), "--dry-run", "--port", port)
    assert result.exit_code == 2 and "--port" in result.output and "1<=x<=65535" in result.output
    assert launched == []


def test_exit_status_of_the_server_is_returned(monkeypatch, tmp_path):
    installed(monkeypatch, modules={"jupyterlab"})
    monkeypatch.setattr(lab_module, "launch", lambda command, cwd: 3)
    assert run("--path", str(tmp_path)).exit_code == 3


def test_default_folder_is_the_notebooks_folder(monkeypatch, launched, tmp_path):
    installed(monkeypatch, modules={"jupyterlab"})
    # from a folder with notebooks/ in it: that one
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path)
    assert run().exit_code == 0
    assert launched[-1][1] == (tmp_path / "notebooks").resolve()
    # from anywhere else: the checkout's notebooks/
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert run().exit_code == 0
    assert launched[-1][1] == (ROOT / "notebooks").resolve()


def test_missing_folder_is_an_error(monkeypatch, launched, tmp_path):
    installed(monkeypatch, modules={"jupyterlab"})
    result = run("--path", str(tmp_path / "nope"))
    assert result.exit_code == 2 and "is not a folder" in result.output
    assert launched == []


def test_launch_runs_the_server_in_the_folder(monkeypatch, tmp_path):
    seen = {}

    def fake_call(command, cwd):
        seen.update(command=command, cwd=cwd)
        return 0

    monkeypatch.setattr(lab_module.subprocess, "call", fake_call)
    assert lab_module.launch(["jupyter-lab", "--x"], tmp_path) == 0
    assert seen == {"command": ["jupyter-lab", "--x"], "cwd": str(tmp_path)}
