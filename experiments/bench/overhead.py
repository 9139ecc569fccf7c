"""The engine's own overhead: ``msign.msign(G, "jordan")`` in bf16 against torch.optim.Muon's
Newton-Schulz, the same five steps on the same matrix, in interleaved rounds.

    python -m experiments.bench.overhead [--shapes 1024x1024,512x2048] [--rounds 15] \
        [--threads 2] [--out results/timing/overhead_cpu.json]

Both calls do the same products; what differs is msign's per-call work around them (input
validation, dtype handling, the GEMM-path choice).  Each round runs torch's function and
msign's once each, so load that drifts between rounds cancels out of the ratio; the median of
the per-round ratios is reported (goal <= 1.00), beside the control: torch's function timed a
second time in the same round over its first (the harness's own noise).  torch's own
``_zeropower_via_newtonschulz`` is used where this torch has it, else the repo's
transcription of it.  With float32 input msign also returns float32 (a cast pass that
torch's function, which returns bf16, does not make).
"""

from __future__ import annotations

import argparse

import torch

import msign
from msign.bench import interleaved_ratios, torch_newton_schulz
from msign.results import provenance, write_json

from ..common.cli import add_device, add_out

JORDAN = msign.get_schedule("jordan").coeffs[0]


def torch_ns() -> tuple[str, object]:
    """torch.optim.Muon's Newton-Schulz function, and where it came from."""
    try:
        from torch.optim._muon import _zeropower_via_newtonschulz as fn
    except ImportError:
        return "msign.bench.torch_newton_schulz (transcription)", (
            lambda G: torch_newton_schulz(G, JORDAN, 5, 1e-7))
    return "torch.optim._muon._zeropower_via_newtonschulz", lambda G: fn(G, JORDAN, 5, 1e-7)


def run(shapes: list[tuple[int, int]], rounds: int, device: str = "cpu",
        dtypes: tuple[torch.dtype, ...] = (torch.bfloat16, torch.float32)) -> dict:
    dev = torch.device(device)
    source, ref = torch_ns()
    rows = []
    for dtype in dtypes:
        for shape in shapes:
            G = torch.randn(*shape, generator=torch.Generator().manual_seed(0)).to(dev, dtype)
            # torch's function divides a bf16 input in place: it gets a copy (its own cast
            # copies other dtypes).
            arg = G.clone if dtype == torch.bfloat16 else (lambda: G)  # noqa: B023
            # torch's function runs twice per round: its second call over its first is the
            # harness's own noise, the control beside the ratio.
            times, ratios = interleaved_ratios(
                [lambda: ref(arg()),  # noqa: B023
                 lambda: msign.msign(G, "jordan", compute_dtype=torch.bfloat16),  # noqa: B023
                 lambda: ref(arg())], dev, rounds)  # noqa: B023
            rows.append({"shape": list(shape), "input_dtype": str(dtype).replace("torch.", ""),
                         "torch_ns_ms": 1e3 * times[0], "msign_ms": 1e3 * times[1],
                         "ratio": ratios[1], "control": ratios[2]})
    return {**provenance(dev), "reference": source, "rounds": rounds, "rows": rows}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", default="1024x1024,512x2048")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--threads", type=int, default=2)
    add_device(ap)
    add_out(ap, "results/timing/overhead_cpu.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    shapes = [tuple(int(x) for x in s.split("x")) for s in args.shapes.split(",")]
    res = run(shapes, args.rounds, args.device)
    print(f"{res['device']}, torch {res['torch']}; reference {res['reference']}; "
          f"median of {res['rounds']} interleaved rounds")
    print(f"{'shape':<12} {'input':<9} {'torch NS ms':>11} {'msign ms':>9} {'ratio':>6} "
          f"{'control':>7}")
    for r in res["rows"]:
        print(f"{'x'.join(map(str, r['shape'])):<12} {r['input_dtype']:<9} "
              f"{r['torch_ns_ms']:>11.2f} {r['msign_ms']:>9.2f} {r['ratio']:>6.3f} "
              f"{r['control']:>7.3f}")
    write_json(args.out, res)
    return res


if __name__ == "__main__":
    main()
