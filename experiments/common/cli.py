"""The command-line options every experiment shares, declared once."""

from __future__ import annotations

import argparse

from msign.gemm import GEMM_MODES


def add_device(ap: argparse.ArgumentParser, default: str = "cpu") -> None:
    ap.add_argument("--device", default=default, help=f"torch device (default {default})")


def add_gemm(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--gemm", choices=GEMM_MODES, default="auto",
                    help="bf16/fp16 products: native, emulated (fp32-accumulated) or auto "
                         "(emulated where this CPU's native half-precision GEMM is slow)")


def add_out(ap: argparse.ArgumentParser, default: str | None = None, what: str = "results"
            ) -> None:
    ap.add_argument("--out", default=default,
                    help=f"where the {what} go" + (f" (default {default})" if default else ""))
