"""Speed: the timing study and the optimizer step."""

from __future__ import annotations

from .format import tex


def timing_numbers(cpu: dict, gpu: dict) -> dict[str, str]:
    out = {"GpuName": tex(gpu["device"]), "GpuTorch": tex(gpu["torch"]), "GpuDate": gpu["date"],
           "CpuName": tex(cpu["device"]), "GpuMatmulRate": f"{gpu['matmul_rate_tflops']:.0f}",
           "GpuMatmulSize": str(gpu["matmul_size"])}

    def row(res: dict, shape: tuple, method: str = "jordan") -> dict:
        return next(r for r in res["rows"] if tuple(r["shape"]) == shape and r["method"] == method)

    for key, shape in (("Big", (8192, 8192)), ("Four", (4096, 4096)), ("Small", (1024, 1024)),
                       ("Rect", (1024, 4096)), ("Wide", (1024, 8192)),
                       ("Batch", (16, 1024, 1024))):
        r = row(gpu, shape)
        out[f"GpuNs{key}"] = f"{r['ratio_torch_ns']:.2f}"
        out[f"GpuFloor{key}"] = f"{100 * r['floor_fraction']:.0f}"
    own = [row(gpu, shape) for shape in ((8192, 8192), (1024, 4096))]
    out["GpuFloorOwn"] = (
        f"at the rate of each shape's own step products, measured in the same run, "
        f"${100 * own[0]['floor_fraction_shape']:.0f}\\%$ at $8192^2$ and "
        f"${100 * own[1]['floor_fraction_shape']:.0f}\\%$ at $1024\\times4096$"
        if all("floor_fraction_shape" in r for r in own) else
        "the benchmark now also times each shape's own step products "
        "(\\texttt{floor\\_fraction\\_shape}), but this GPU file predates it and no GPU "
        "has been lent to us since")
    sched = [r for r in cpu["rows"] if r.get("ratio_torch_ns") is not None
             and r["method"] in ("jordan", "you", "polar-express", "quintic")]
    out["CpuNsMin"] = f"{min(r['ratio_torch_ns'] for r in sched):.2f}"
    out["CpuNsMax"] = f"{max(r['ratio_torch_ns'] for r in sched):.2f}"
    out["CpuFloorMin"] = f"{100 * min(r['floor_fraction'] for r in sched):.0f}"
    out["CpuFloorMax"] = f"{100 * max(r['floor_fraction'] for r in sched):.0f}"
    return out


def optimizer_numbers(cpu: dict, gpu: dict) -> dict[str, str]:
    out = {"OptLayers": str(gpu["layers"]), "OptWidth": str(gpu["d_model"]),
           "OptMatrices": str(gpu["n_matrices"]), "OptCpuName": tex(cpu["device"])}
    for dev, res in (("Gpu", gpu), ("Cpu", cpu)):
        r = res["ratio_to_torch_muon"]
        out[f"Opt{dev}Jordan"] = f"{r['msign Muon jordan']:.2f}"
        out[f"Opt{dev}PE"] = f"{r['msign Muon polar-express']:.2f}"
    return out


LAYOUT_NAMES = {"replicated": "replicated (DDP)", "fsdp": "FSDP2", "hsdp": "HSDP ($2\\times W/2$)",
                "tp": "tensor parallel", "tp-fsdp": "TP $\\times$ FSDP ($W/2\\times2$)",
                "ep": "expert parallel (along $E$)"}


def comm_numbers(res: dict) -> dict[str, str]:
    """Distributed Muon (experiments/bench/fsdp.py): bytes each rank sends per step over the
    Muon parameter bytes, max over ranks, and the closed-form model, per layout and W."""
    by = {(r["layout"], r["world"]): r for r in res["runs"]}
    worlds = sorted({r["world"] for r in res["runs"]})
    rows = []
    for layout in dict.fromkeys(r["layout"] for r in res["runs"]):
        cells = [f"{by[layout, w]['max_ratio']:.3f} ({by[layout, w]['model_ratio']:.3f})"
                 if (layout, w) in by else "--" for w in worlds]
        rows.append(f"{LAYOUT_NAMES.get(layout, layout)} & " + " & ".join(cells) + " \\\\")
    worst = max(res["runs"], key=lambda r: r["max_ratio"])
    return {"CommRows": "\n".join(rows), "CommWorlds": " & ".join(f"$W = {w}$" for w in worlds),
            "CommCols": "l" + "c" * len(worlds), "CommDevice": tex(res["device"]),
            "CommWorst": f"{worst['max_ratio']:.3f}",
            "CommWorstWhere": f"{LAYOUT_NAMES.get(worst['layout'], worst['layout'])} at "
                              f"$W = {worst['world']}$"}
