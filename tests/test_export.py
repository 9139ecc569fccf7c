"""msign.export and ``python -m msign export``: each form runs and gives msign's result."""

import re

import pytest
import torch

import msign
from msign import Schedule, get_schedule
from msign.cli import main
from msign.export import FORMATS, export, triples
from msign.optim import TORCH_MUON_DEFAULTS


def run_triples(G: torch.Tensor, coeffs) -> torch.Tensor:
    """What optax / Emerging-Optimizers compute from a triple list, in float64."""
    X = G / G.norm()
    for a, b, c in coeffs:
        A = X @ X.T
        X = a * X + (b * A + c * A @ A) @ X
    return X


class TestForms:
    def test_torch_form_runs_in_torch_optim_muon_as_msign_does(self):
        line = export(get_schedule("jordan"), "torch").splitlines()[-1]
        torch.manual_seed(0)
        p1 = torch.nn.Parameter(torch.randn(24, 40))
        p2 = torch.nn.Parameter(p1.detach().clone())
        ref = eval(line, {"torch": torch, "params": [p1]})  # the exported call, as printed
        assert isinstance(ref, torch.optim.Muon)
        ours = msign.optim.Muon([p2], **{**TORCH_MUON_DEFAULTS, "ns_coefficients": None,
                                          "msign": "jordan", "msign_gemm": "native"})
        for _ in range(3):
            g = torch.randn(24, 40)
            p1.grad, p2.grad = g.clone(), g.clone()
            ref.step()
            ours.step()
        assert torch.equal(p1, p2)

    @pytest.mark.parametrize("name", ["jordan", "you", "polar-express", "cans", "cubic",
                                      "band-12", "deepseek-v4"])
    def test_triples_reproduce_the_schedule_safety_folded(self, name):
        s = get_schedule(name)
        G = torch.randn(16, 48, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
        torch.testing.assert_close(run_triples(G, triples(s)), msign.msign(G, s),
                                   atol=1e-12, rtol=1e-12)
        for fmt in ("optax", "emerging"):
            code = "\n".join(ln for ln in export(s, fmt).splitlines() if ln[:1] != "#")
            listed = re.findall(r"\((-?[\d.e+-]+), (-?[\d.e+-]+), (-?[\d.e+-]+)\)", code)
            assert [tuple(map(float, t)) for t in listed] == triples(s)

    @pytest.mark.parametrize("name", ["jordan", "polar-express", "turbo-muon", "deepseek-v4"])
    def test_dion_function_matches_msign_in_bf16(self, name):
        ns = {}
        exec(export(get_schedule(name), "dion"), ns)  # noqa: S102 - our own generated code
        G = torch.randn(32, 96, generator=torch.Generator().manual_seed(2))
        X = ns["newton_schulz"](G, epsilon=0.0)
        ref = msign.msign(G, name, compute_dtype=torch.bfloat16, gemm="native")
        assert X.dtype == G.dtype and X.shape == G.shape
        assert float((X - ref).norm() / ref.norm()) < 0.05
        # Against float64 msign the bf16 function is as close as msign's own bf16 run.
        exact = msign.msign(G.double(), name).float()
        assert float((X - exact).norm()) < 2 * float((ref - exact).norm()) + 1e-3
        assert torch.equal(ns["newton_schulz"](G.T, epsilon=0.0), X.T)

    def test_json_form_round_trips(self):
        s = get_schedule("turbo-muon")
        assert Schedule.from_json(export(s, "json")) == s


class TestRefusals:
    @pytest.mark.parametrize("name, fmt, match", [
        ("you", "torch", "one quintic triple"),
        ("cubic", "torch", "one quintic triple"),
        ("turbo-muon", "torch", "AOL preconditioning"),
        ("turbo-muon", "optax", "AOL preconditioning"),
    ])
    def test_a_form_that_cannot_express_the_schedule_says_why(self, name, fmt, match):
        with pytest.raises(ValueError, match=match):
            export(get_schedule(name), fmt)

    def test_degree_seven_and_unknown_formats(self):
        s = Schedule([(2.0, -1.5, 0.8, -0.3)], name="d7")
        with pytest.raises(ValueError, match="degree above 5"):
            export(s, "emerging")
        with pytest.raises(ValueError, match="format must be one of"):
            export(s, "jax")
        assert set(FORMATS) == {"torch", "optax", "dion", "emerging", "json"}

    def test_cli(self, capsys):
        assert main(["export", "jordan", "--format", "torch"]) == 0
        assert "ns_steps=5" in capsys.readouterr().out
        with pytest.raises(SystemExit):
            main(["export", "jordan", "--format", "bogus"])
        assert "format must be one of" in capsys.readouterr().err
        with pytest.raises(SystemExit):
            main(["export", "no-such-schedule", "--format", "json"])
