"""msign.optim.Layout: the matrix views of parameters, and their inference."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from msign.optim import Layout, Muon, infer_layout
from msign.optim.layout import shape_scale


@st.composite
def layouts_and_shapes(draw):
    ndim = draw(st.integers(2, 4))
    shape = [draw(st.integers(1, 5)) for _ in range(ndim)]
    axes = draw(st.permutations(range(ndim)))
    k = draw(st.integers(1, ndim - 1))
    n_in = draw(st.integers(1, ndim - k))
    out_axes, in_axes = tuple(axes[:k]), tuple(axes[k:k + n_in])
    along = draw(st.sampled_from(["out", "in"]))
    lay = Layout(out_axes, in_axes, split_along=along)
    _, rows, cols = lay._sizes(shape)
    total = rows if along == "out" else cols
    cut = sorted(draw(st.sets(st.integers(1, total - 1), max_size=2))) if total > 1 else []
    sizes = [b - a for a, b in zip([0, *cut], [*cut, total], strict=True)]
    return Layout(out_axes, in_axes, split=tuple(sizes), split_along=along), tuple(shape)


class TestGeometry:
    @given(layouts_and_shapes())
    def test_blocks_round_trip(self, case):
        lay, shape = case
        x = torch.arange(torch.Size(shape).numel(), dtype=torch.float64).reshape(shape)
        blocks = lay.to_blocks(x)
        assert [tuple(b.shape) for b in blocks] == lay.matrix_shapes(shape)
        assert torch.equal(lay.from_blocks(blocks, shape), x)
        # every entry is in exactly one block
        assert sorted(torch.cat([b.reshape(-1) for b in blocks]).tolist()) == x.reshape(-1).tolist()

    def test_transposed_storage_is_the_matrix_transpose(self):
        W = torch.randn(4, 6)  # Conv1D: (in=4, out=6)
        (blk,) = Layout.transposed().to_blocks(W)
        assert torch.equal(blk[0], W.T)

    def test_heads_cut_out_rows(self):
        W = torch.arange(8 * 3.0).reshape(8, 3)
        blocks = Layout.linear(heads=4).to_blocks(W)
        assert [tuple(b.shape) for b in blocks] == [(4, 2, 3)]
        assert torch.equal(blocks[0][1], W[2:4])
        # per block heads with unequal GQA blocks: q 8 rows in 4 heads, k and v 2 heads each
        shapes = Layout.linear(split=(8, 4, 4), heads=(4, 2, 2)).matrix_shapes((16, 3))
        assert shapes == [(4, 2, 3), (2, 2, 3), (2, 2, 3)]

    def test_expert_stack_and_conv(self):
        assert Layout.experts().matrix_shapes((4, 96, 32)) == [(4, 96, 32)]
        assert Layout.conv(4).matrix_shapes((8, 3, 3, 3)) == [(1, 8, 27)]

    def test_scales(self):
        assert shape_scale(96, 32, "original") == pytest.approx(3**0.5)
        assert shape_scale(32, 96, None) == 1.0  # torch's None is "original"
        assert shape_scale(32, 96, "match_rms_adamw") == pytest.approx(0.2 * 96**0.5)
        assert shape_scale(96, 32, "unscaled") == 1.0
        assert Layout.transposed().scales((32, 96), "original") == [pytest.approx(3**0.5)]
        with pytest.raises(ValueError, match="adjust_lr"):
            shape_scale(3, 4, "sqrt")


class TestChecks:
    @pytest.mark.parametrize("lay,shape,match", [
        (Layout.linear(split=(3, 3)), (7, 2), "sum"),
        (Layout((0,), (0,)), (3, 3), "overlap"),
        (Layout((0,), (5,)), (3, 3), "out of range"),
        (Layout.linear(heads=3), (8, 2), "heads"),
        (Layout.linear(split=(4, 4), heads=(2, 2, 2)), (8, 2), "one count per block"),
    ])
    def test_misfit_names_the_parameter(self, lay, shape, match):
        with pytest.raises(ValueError, match=f"blocks.0.w.*{match}"):
            lay.check(shape, "blocks.0.w")

    @pytest.mark.parametrize("kw,exc", [({"split_along": "rows"}, ValueError),
                                        ({"split": (0, 3)}, ValueError),
                                        ({"heads": "4"}, TypeError),
                                        ({"out_axes": 1.5}, TypeError)])
    def test_bad_fields(self, kw, exc):
        with pytest.raises(exc):
            Layout(**kw)

    def test_split_option_and_shape_inference(self):
        def layout_of(shape, **group):
            p = nn.Parameter(torch.zeros(shape))
            return Muon([{"params": [p], **group}]).param_groups[0]["layouts"][0]

        assert layout_of((12, 4), split=3).split == (4, 4, 4)
        assert infer_layout((3, 5, 4)) == Layout.experts()
        assert infer_layout((8, 3, 3, 3)) == Layout.conv(4)
        with pytest.raises(ValueError, match="split must be a positive int"):
            layout_of((12, 4), split=0)
        with pytest.raises(ValueError, match="does not divide"):
            layout_of((10, 4), split=3)
        with pytest.raises(TypeError, match="batch_matrices.*removed.*layout=Layout"):
            layout_of((8, 3, 3, 3), batch_matrices=True)


def test_inference_by_module():
    class Conv1D(nn.Module):  # transformers.pytorch_utils.Conv1D's shape, without importing it
        def __init__(self, nf, nx):
            super().__init__()
            self.nf = nf
            self.weight = nn.Parameter(torch.zeros(nx, nf))

    assert infer_layout((4, 12), Conv1D(12, 4)) == Layout.transposed()
    assert infer_layout((8, 3, 3, 3), nn.Conv2d(3, 8, 3)) == Layout.conv(4)
    assert infer_layout((4, 3), nn.Linear(3, 4)) == Layout.linear()
    assert infer_layout((4, 96, 32), nn.Module()) == Layout.experts()


def test_conv_scale_against_keller_jordan():
    # KJ's muon.py scales a 4-D update by sqrt(max(1, kh / kw)); msign by its flattened
    # (out, in * kh * kw) matrix (docs/guides/muon.md: where the two differ and by how much).
    def kj(shape):
        return max(1, shape[-2] / shape[-1]) ** 0.5

    def ours(shape):
        return Layout.conv(4).scales(shape, "original")[0]

    first = (64, 3, 3, 3)
    assert ours(first) / kj(first) == pytest.approx(1.54, abs=0.005)  # 54% more
    tall = (64, 64, 3, 1)
    assert 1 - ours(tall) / kj(tall) == pytest.approx(0.42, abs=0.005)  # 42% less
    assert ours((64, 64, 3, 3)) == kj((64, 64, 3, 3)) == 1.0
    # adjust_lr_fn="keller_jordan" is muon.py's formula, on every layout kind
    for shape in [first, tall, (64, 64, 3, 3), (32, 16, 5, 1), (16, 48)]:
        lay = Layout.conv(len(shape)) if len(shape) > 2 else Layout.linear()
        assert lay.scales(shape, "keller_jordan") == [kj(shape)]


def test_keller_jordan_rule_step_equals_muon_py():
    # One Muon step on a conv filter with adjust_lr_fn="keller_jordan" is muon.py's
    # muon_update (flatten, orthogonalize, scale by sqrt(max(1, kh/kw))), written out in float64
    # with the exact polar factor in place of its Newton-Schulz.
    import msign

    torch.manual_seed(0)
    for shape in [(16, 3, 3, 1), (8, 8, 3, 3), (4, 2, 5, 2)]:
        W = torch.randn(shape, dtype=torch.float64)
        G = torch.randn(shape, dtype=torch.float64)
        p = nn.Parameter(W.clone())
        opt = Muon([p], lr=0.1, momentum=0.95, nesterov=True, msign="svd",
                   msign_dtype=torch.float64, adjust_lr_fn="keller_jordan")
        p.grad = G.clone()
        opt.step()
        buf = torch.zeros_like(G).lerp_(G, 1 - 0.95)
        update = G.lerp(buf, 0.95)
        X = msign.msign(update.reshape(shape[0], -1), "svd").reshape(shape)
        expected = W - 0.1 * X * max(1, shape[-2] / shape[-1]) ** 0.5
        assert torch.allclose(p.detach(), expected, atol=1e-12, rtol=0)
