import json

import pytest

from msign.cli import main


def test_compare_table_and_json(capsys, tmp_path):
    out = tmp_path / "r.json"
    main(["compare", "--shape", "32x64", "--dtype", "fp32", "--methods", "svd,jordan,qdwh",
          "--repeat", "1", "--json", str(out)])
    captured = capsys.readouterr()
    text = captured.out
    # progress on stderr: one line per finished method, an estimate until the last
    progress = [ln for ln in captured.err.splitlines() if ln.startswith("[")]
    assert [ln.split("]")[0] for ln in progress] == ["[1/3", "[2/3", "[3/3"]
    assert "left" in progress[0] and "left" not in progress[-1]
    lines = [ln for ln in text.splitlines() if ln.split() and ln.split()[0] in
             ("svd", "jordan", "qdwh")]
    assert len(lines) == 3
    res = json.loads(out.read_text())
    rows = {r["method"]: r for r in res["rows"]}
    assert rows["svd"]["dist_svd"] < 1e-6 and rows["jordan"]["max_sigma_err"] > 0.05
    assert rows["jordan"]["matmuls"] == 15 and res["torch"]
    assert rows["jordan"]["flops"] == 5 * (4 * 32 * 32 * 64 + 2 * 32**3)


def test_compare_streams_rows_as_they_finish():
    from msign.cli import compare

    seen = []
    res = compare((16, 24), "bf16", ["jordan", "svd"], repeat=1,
                  on_row=lambda r, row: seen.append((row["method"], len(r["rows"]))))
    assert seen == [("jordan", 1), ("svd", 2)]  # called as each row lands, not at the end
    assert res["rows"][0]["gemm"] in ("native", "emulated") and res["repeat"] == 1


def test_schedules_lists_provenance(capsys):
    main(["schedules"])
    text = capsys.readouterr().out
    for name in ("jordan", "polar-express", "you", "cubic", "quintic"):
        assert name in text
    assert "arXiv:2505.16932" in text


def test_unknown_method_is_a_clear_error(capsys):
    with pytest.raises(SystemExit):
        main(["compare", "--methods", "svd,bogus"])
    assert "bogus" in capsys.readouterr().err


def test_bench_prints_ratios(capsys, tmp_path):
    out = tmp_path / "b.json"
    main(["bench", "--shapes", "32x64,2x16x16", "--methods", "jordan,svd", "--repeat", "1",
          "--json", str(out)])
    res = json.loads(out.read_text())
    rows = {(tuple(r["shape"]), r["method"]): r for r in res["rows"]}
    jordan = rows[((32, 64), "jordan")]
    assert jordan["ratio_torch_ns"] > 0 and jordan["floor_fraction"] > 0
    assert jordan["flops"] == 5 * 4 * 32 * 32 * 64 + 5 * 2 * 32**3
    # the rate of the shape's own step products is measured for plain and batched shapes
    for key in (((32, 64), "jordan"), ((2, 16, 16), "jordan")):
        assert rows[key]["floor_fraction_shape"] > 0
    printed = capsys.readouterr().out
    assert "/torchNS" in printed and "own%" in printed


def test_design_then_certify(capsys, tmp_path):
    out = tmp_path / "pe.json"
    main(["design", "polar-express", "--lower", "1e-2", "--steps", "5", "--json", str(out)])
    capsys.readouterr()
    main(["certify", str(out), "--lower", "1e-2"])
    text = capsys.readouterr().out
    assert "certified worst-case |f - 1|" in text and "15 matmuls" in text
    with pytest.raises(SystemExit):
        main(["design", "polar-express", "--lower", "2.0"])
    assert "lower" in capsys.readouterr().err


def test_design_jordan_style_defaults(capsys):
    main(["design", "jordan-style"])
    assert '"name": "jordan-style-5"' in capsys.readouterr().out
