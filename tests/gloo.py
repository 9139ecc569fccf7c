"""The gloo launcher the distributed tests share (experiments.common.gloo)."""

from experiments.common.gloo import run

__all__ = ["run"]
