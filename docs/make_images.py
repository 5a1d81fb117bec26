"""Make README's pictures (docs/images/) from the bundled sample, sample_data/demo.db.

    .venv/bin/python docs/make_images.py                 # both pictures, into docs/images/
    .venv/bin/python docs/make_images.py --only dashboard --out /tmp/pictures

* ``dashboard.png``: ``poolscope.plot.dashboard`` of ``pool.alpha`` with the
  cursor marked at 600 (matplotlib only);
* ``explorer.png``: the explorer in Voilà under headless Chromium, as the
  browser test drives it (tests/test_browser.py; needs Debian's ``chromium``
  and the test extras: ``pip install -e '.[test]'``).

The sample is only read (a copy is explored), so rerunning gives the same
pictures for the same sample.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data" / "demo.db"
POOL = "pool.alpha"
CURSOR = 600


def dashboard(out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import poolscope
    from poolscope import plot

    with poolscope.open(SAMPLE, progress=False) as db:
        fig = plot.dashboard(db.pool(POOL), cursor=CURSOR)
        target = out / "dashboard.png"
        fig.savefig(target, dpi=100)
    return target


def explorer(out: Path) -> Path:
    """Run the browser test, which saves its screenshot of the explorer in
    tests/artifacts/, and keep it."""
    shot = ROOT / "tests" / "artifacts" / "explorer.png"
    shot.unlink(missing_ok=True)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_browser.py", "-k", "voila"]
    subprocess.run(command, cwd=ROOT, check=True, env=dict(os.environ, CI="1"))  # CI: fail, not skip, without chromium
    target = out / "explorer.png"
    shutil.copyfile(shot, target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images", help="folder to write the pictures in")
    parser.add_argument("--only", choices=["dashboard", "explorer"], help="make only this picture")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    makers = {"dashboard": dashboard, "explorer": explorer}
    for name, make in makers.items():
        if args.only in (None, name):
            print(make(args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
