"""Regenerate every figure and number from results/, then build paper/paper.pdf.

    python -m paper.build          (or: make paper)

Needs latexmk and a TeX distribution (Debian: apt install texlive-latex-extra
texlive-fonts-recommended latexmk).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from . import figures, numbers

HERE = Path(__file__).resolve().parent


def main() -> Path:
    if shutil.which("latexmk") is None:
        sys.exit("latexmk not found: apt install texlive-latex-extra texlive-fonts-recommended "
                 "latexmk (Debian), then rerun python -m paper.build")
    figures.main([])
    numbers.main([])
    subprocess.run(["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error",
                    "paper.tex"], cwd=HERE, check=True)
    return HERE / "paper.pdf"


if __name__ == "__main__":
    print(main())
