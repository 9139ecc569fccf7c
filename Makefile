.PHONY: paper test docs

# Figures and numbers from results/, then the PDF (needs latexmk; see README).
paper:
	python -m paper.build

test:
	python -m pytest

# The documentation site (Sphinx; needs pip install -e ".[docs]"); -W: a warning is an error.
docs:
	python -m sphinx -W --keep-going -b html docs docs/_build/html
