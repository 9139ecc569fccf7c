.PHONY: paper test

# Figures and numbers from results/, then the PDF (needs latexmk; see README).
paper:
	python -m paper.build

test:
	python -m pytest
