"""``poolscope lab``: open the example notebooks in Jupyter.

Launches, in this order of preference, whichever is installed: JupyterLab,
the classic/Notebook 7 ``jupyter notebook``, or Voilà (which runs the
notebooks as read-only apps), on the notebooks folder (``--path``; default:
``notebooks`` in the current folder, else the ``notebooks`` folder of the
poolscope checkout).  With none of them installed it says how to get one
(``pip install 'poolscope[lab]'``) and exits with status 1.

A front end importable by this Python is preferred (it is run as
``python -m jupyterlab`` etc., so the kernel sees poolscope); else one found
on ``PATH`` (``jupyter-lab``, ``jupyter-notebook``, ``voila``).

Example::

    $ poolscope lab                         # JupyterLab on ./notebooks
    $ poolscope lab --app voila --port 8866
    $ poolscope lab --dry-run               # print the command, start nothing
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

#: Front ends in order of preference: name -> (importable module, script on PATH).
APPS: dict[str, tuple[str, str]] = {
    "lab": ("jupyterlab", "jupyter-lab"),
    "notebook": ("notebook", "jupyter-notebook"),
    "voila": ("voila", "voila"),
}

#: What to ``pip install`` for each front end.
PACKAGES: dict[str, str] = {"lab": "poolscope[lab]", "notebook": "notebook", "voila": "voila"}

INSTALL_HINT = (
    "No Jupyter front end found (JupyterLab, Jupyter Notebook or Voila).\n"
    "Install one, e.g.:  pip install 'poolscope[lab]'   (JupyterLab)\n"
    "then run:           poolscope lab"
)


def default_notebooks() -> Path:
    """``./notebooks`` if it exists, else the ``notebooks`` folder beside the package (a checkout)."""
    here = Path.cwd() / "notebooks"
    if here.is_dir():
        return here
    checkout = Path(__file__).resolve().parents[1] / "notebooks"
    return checkout if checkout.is_dir() else here


def _module_available(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def find_launcher(app: str = "auto") -> tuple[str, list[str]] | None:
    """``(app, command prefix)`` of the first installed front end (or of ``app``), or ``None``.

    The prefix is ``[sys.executable, "-m", module]`` when this Python can import
    the front end, else the path of its script on ``PATH``.
    """
    names = list(APPS) if app == "auto" else [app]
    for name in names:
        module, script = APPS[name]
        if _module_available(module):
            return name, [sys.executable, "-m", module]
    for name in names:
        found = shutil.which(APPS[name][1])
        if found:
            return name, [found]
    return None


def build_command(
    app: str,
    prefix: list[str],
    path: Path,
    port: int | None = None,
    browser: bool = True,
    extra: tuple[str, ...] = (),
) -> list[str]:
    """The full command line that serves the folder ``path`` with front end ``app``."""
    command = list(prefix)
    if app == "voila":
        command.append(str(path))
        if port is not None:
            command.append(f"--port={port}")
        if not browser:
            command.append("--no-browser")
    else:
        command.append(f"--ServerApp.root_dir={path}")
        if port is not None:
            command.append(f"--ServerApp.port={port}")
        if not browser:
            command.append("--no-browser")
    command.extend(extra)
    return command


def launch(command: list[str], cwd: Path) -> int:
    """Run the server in the foreground until it exits (Ctrl-C stops it); return its exit status."""
    try:
        return subprocess.call(command, cwd=str(cwd))
    except KeyboardInterrupt:  # pragma: no cover - interactive
        return 130
