"""The package as users get it: the wheel, the version, the docs sources, the README's links."""

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import msign

ROOT = Path(__file__).resolve().parent.parent


def test_version_is_one_place_and_the_cli_prints_it():
    out = subprocess.run([sys.executable, "-m", "msign", "--version"], capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == f"msign {msign.__version__}"
    assert 'dynamic = ["version"]' in (ROOT / "pyproject.toml").read_text()
    assert f"## {msign.__version__} " in (ROOT / "CHANGELOG.md").read_text()


@pytest.mark.skipif(not (ROOT / "pyproject.toml").exists(), reason="needs the source tree")
def test_wheel_holds_the_library_only(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps",
                    "--no-build-isolation", "-q", "-w", str(tmp_path)], check=True)
    (wheel,) = tmp_path.glob("msign-*.whl")
    assert wheel.name.startswith(f"msign-{msign.__version__}-")
    names = zipfile.ZipFile(wheel).namelist()
    assert "msign/py.typed" in names and "msign/optim/muon.py" in names
    top = {n.split("/")[0] for n in names}
    assert top == {"msign", f"msign-{msign.__version__}.dist-info"}, top  # no tests, results


def test_docs_pages_exist_and_readme_links_resolve():
    index = (ROOT / "docs" / "index.md").read_text()
    pages = re.findall(r"^([\w/]+)$", index, re.M)
    generated = {"methods"}  # written by docs/conf.py at build time
    for page in pages:
        assert page in generated or any((ROOT / "docs" / f"{page}{ext}").exists()
                                        for ext in (".md", ".rst")), page
    for guide in ("convergence", "design", "muon", "distributed", "paper"):
        assert f"guides/{guide}" in pages
    for link in re.findall(r"\]\(([^)#]+)\)", (ROOT / "README.md").read_text()):
        assert (ROOT / link).exists(), link
