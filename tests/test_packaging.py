"""The wheel ships adapters/ as torus_plugins.adapters and works from a fresh venv outside the repo."""

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_wheel_installs_in_fresh_venv_and_imports_adapters(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path / "dist"), str(REPO)], check=True, cwd=tmp_path)
    wheel = next((tmp_path / "dist").glob("torus_plugins-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "torus_plugins/adapters/__init__.py" in names
    assert not any(n.startswith("adapters/") for n in names), "adapters/ must not ship as a top-level package"
    assert any(n.endswith("entry_points.txt") for n in names)

    venv = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    fresh_python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(fresh_python), "install", "--no-deps", "-q",
                    str(wheel)], check=True, cwd=tmp_path)
    # Dependencies (torch, ...) come from the dev venv, appended after the fresh site-packages, so the
    # installed wheel, not the editable checkout, provides torus_plugins.
    fresh_site = subprocess.run([str(fresh_python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                check=True, capture_output=True, text=True).stdout.strip()
    Path(fresh_site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    code = ("import torus_plugins, torus_plugins.adapters as a, torus_plugins.registry as r; "
            "print(torus_plugins.__file__); print(a.__file__); print(sorted(r.available('heads')))")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    out = subprocess.run([str(fresh_python), "-c", code], check=True, capture_output=True, text=True,
                         cwd=tmp_path, env=env).stdout.splitlines()
    assert out[0].startswith(fresh_site) and out[1].startswith(fresh_site)
    assert out[1].endswith(os.path.join("torus_plugins", "adapters", "__init__.py"))
    assert "l2p" in out[2]
