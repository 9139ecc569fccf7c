"""msign.gemm: the native and the emulated (fp32-accumulated) half-precision product paths."""

import numpy as np
import pytest
import scipy.stats
import torch

import msign
from experiments.common.matrices import families
from msign import metrics
from msign.gemm import EMULATED, NATIVE, cpu_flags, native_half_is_slow, resolve_gemm


@pytest.fixture
def generic_bf16_gemm():
    """torch's generic half-precision GEMM: the path an AVX2-only CPU takes.

    (The flags() context manager: torch's test utilities, imported by another test module,
    freeze direct assignment of backend flags.)
    """
    with torch.backends.mkldnn.flags(enabled=False):
        yield


class TestPaths:
    @pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
    def test_emulated_is_one_rounding_of_the_fp32_product(self, dtype):
        g = torch.Generator().manual_seed(0)
        a, b, c = (torch.randn(s, generator=g).to(dtype) for s in ((7, 33), (33, 5), (7, 5)))
        exact = a.double() @ b.double()  # bf16 inputs: the fp32 product of 33 terms is exact
        assert torch.equal(EMULATED.mm(a, b), exact.float().to(dtype))
        fused = (0.5 * c.double() - 2.0 * exact).float().to(dtype)
        assert torch.equal(EMULATED.addmm(c, a, b, beta=0.5, alpha=-2.0), fused)
        # batched operands go through baddbmm
        A, B, C = a.expand(3, 7, 33), b.expand(3, 33, 5), c.expand(3, 7, 5)
        assert torch.equal(EMULATED.addmm(C, A, B, beta=0.5, alpha=-2.0)[1], fused)

    def test_native_is_torch(self):
        a, b = torch.randn(4, 6).bfloat16(), torch.randn(6, 3).bfloat16()
        assert torch.equal(NATIVE.mm(a, b), a @ b)

    def test_resolve(self):
        assert resolve_gemm("emulated", torch.bfloat16) is EMULATED
        assert resolve_gemm("native", torch.bfloat16) is NATIVE
        for mode in ("auto", "emulated", "native"):  # nothing to emulate in fp32/fp64
            assert resolve_gemm(mode, torch.float32) is NATIVE
            assert resolve_gemm(mode, torch.float64) is NATIVE
        auto = resolve_gemm("auto", torch.bfloat16)
        assert auto is (EMULATED if native_half_is_slow(torch.bfloat16) else NATIVE)
        with pytest.raises(ValueError, match="gemm must be one of"):
            resolve_gemm("fast", torch.bfloat16)

    def test_auto_detects_the_generic_kernel(self, generic_bf16_gemm):
        # The check itself, uncached: without oneDNN torch's bf16 GEMM is a 30-250x slower loop.
        assert native_half_is_slow.__wrapped__(torch.bfloat16)

    @pytest.mark.parametrize("flags,dtype,slow", [
        ({"avx2", "avx512_bf16"}, torch.bfloat16, False), ({"amx_bf16"}, torch.bfloat16, False),
        ({"avx2", "fma"}, torch.bfloat16, True), ({"avx512_bf16"}, torch.float16, True),
        ({"avx512_fp16"}, torch.float16, False)])
    def test_auto_follows_the_x86_flags_not_a_timing(self, monkeypatch, flags, dtype, slow):
        # A timing near the threshold flips with load; two processes of one machine must agree.
        monkeypatch.setattr(msign.gemm, "cpu_flags", lambda: frozenset(flags))
        monkeypatch.setattr(msign.gemm, "_best_time", lambda fn: pytest.fail("timed"))
        assert native_half_is_slow.__wrapped__(dtype) is slow

    def test_cpu_flags(self, tmp_path):
        info = tmp_path / "cpuinfo"
        info.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512_bf16\nbugs\t: x\n")
        assert cpu_flags(info) == {"fpu", "avx2", "avx512_bf16"}
        info.write_text("processor\t: 0\nFeatures\t: fp asimd bf16\n")  # aarch64: no flags line
        assert cpu_flags(info) is None
        assert cpu_flags(tmp_path / "absent") is None

    def test_api_edges(self):
        G = torch.randn(8, 12).bfloat16()
        X, info = msign.msign(G, "jordan", gemm="emulated", return_info=True)
        assert info["gemm"] == "emulated" and X.dtype == torch.bfloat16
        assert msign.msign(G.float(), "jordan", gemm="emulated", return_info=True)[1]["gemm"] \
            == "native"
        with pytest.raises(ValueError, match="gemm"):
            msign.msign(G, gemm="tensorcore")
        from msign.optim import Muon

        with pytest.raises(ValueError, match="msign_gemm"):
            Muon([torch.nn.Parameter(torch.zeros(3, 3))], msign_gemm="fast")


def _study_matrices():
    """The precision study's matrix families (small), plus Gaussian repeats."""
    fams = families(48, 96)
    mats = {k: fams[k] for k in ("gaussian", "kappa1e4", "lowrank_noise", "power_law")}
    g = torch.Generator().manual_seed(0)
    mats.update({f"gaussian{i}": torch.randn(48, 96, generator=g, dtype=torch.float64)
                 for i in range(6)})
    return mats


def _errors(gemm):
    errs, dists, Xs = [], [], []
    for G in _study_matrices().values():
        Gb = G.bfloat16()
        ref = msign.msign(Gb.double(), "svd")
        for name in ("jordan", "polar-express", "you", "quintic"):
            X = msign.msign(Gb, name, gemm=gemm)
            errs.append(float(metrics.max_sigma_error(X)))
            dists.append(float(metrics.relative_distance(X, ref)))
            Xs.append(X.double())
    return np.array(errs), np.array(dists), Xs


@pytest.mark.parametrize("onednn", [True, False], ids=["torch-default", "generic-kernel"])
def test_native_and_emulated_error_distributions_agree(onednn):
    """Same error distributions on the precision study's matrices, native vs emulated bf16.

    Both accumulate in fp32 and round each product once to bf16; they may differ in
    summation order, so single runs differ at bf16 rounding level, not systematically.
    """
    with torch.backends.mkldnn.flags(enabled=onednn):
        e_nat, d_nat, X_nat = _errors("native")
    e_emu, d_emu, X_emu = _errors("emulated")
    for a, b in ((e_nat, e_emu), (d_nat, d_emu)):
        assert scipy.stats.ks_2samp(a, b).pvalue > 0.05  # same distribution
        if np.any(a != b):  # and no systematic shift between the paired runs
            assert scipy.stats.wilcoxon(a, b).pvalue > 0.01
        rel = np.abs(a - b) / b
        assert np.median(rel) < 0.05 and rel.max() < 0.3
    diffs = [float((x - y).norm() / y.norm()) for x, y in zip(X_nat, X_emu, strict=True)]
    assert np.median(diffs) < 2.0**-8 and max(diffs) < 0.1  # rounding level, not a bias
