"""Schedules: per-step odd-polynomial coefficients as data, with provenance.

A schedule is the list of polynomials p_1, ..., p_k that the iteration engine
(:mod:`msign.iterate`) applies to X_0 = G / (safety * ||G||_F).  Step i computes
X <- p_i(X) = c_0 X + c_1 (X X^T) X + c_2 (X X^T)^2 X + ..., i.e. the scalar map
p_i(x) = c_0 x + c_1 x^3 + c_2 x^5 + ... acts on every singular value.  So a
schedule is judged entirely by its composite scalar map f = p_k o ... o p_1 on
[lower, 1] (:meth:`Schedule.scalar_map`, :mod:`msign.scalar`).

Each named schedule cites its primary source (paper or repository) in ``source``; the
Polar Express table is recomputed from its procedure by :func:`msign.design.polar_express`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any

import mpmath
import numpy as np

from .results import write_text

__all__ = ["Schedule", "get_schedule", "SCHEDULES", "NORMALIZATIONS", "PRECONDITIONS"]

NORMALIZATIONS = ("fro", "schatten4")
#: Input rescalings before the first step (:func:`msign.iterate.start`).
PRECONDITIONS = ("aol",)


def check_steps(steps: Any) -> int:
    """``steps`` as an int, or ValueError unless it is a positive integer."""
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be a positive int or None; got {steps!r}")
    return int(steps)


def _as_coeff_tuple(step: Any, index: int) -> tuple[float, ...]:
    if isinstance(step, (str, bytes)) or not isinstance(step, Iterable):
        raise TypeError(
            f"coeffs[{index}] must be a sequence of numbers (c0, c1, ...) for "
            f"c0*x + c1*x^3 + ...; got {step!r}. A single shared tuple is written [(a, b, c)]."
        )
    out = []
    for j, c in enumerate(step):
        try:
            v = float(c)
        except (TypeError, ValueError):
            raise TypeError(f"coeffs[{index}][{j}] must be a real number; got {c!r}") from None
        if not math.isfinite(v):
            raise ValueError(f"coeffs[{index}][{j}] must be finite; got {v}")
        out.append(v)
    if not out:
        raise ValueError(f"coeffs[{index}] is empty; each step needs at least one coefficient")
    return tuple(out)


@dataclass(frozen=True)
class Schedule:
    """A per-step list of odd-polynomial coefficients, with its provenance.

    Parameters
    ----------
    coeffs : sequence of sequences of float
        ``coeffs[i] = (c0, c1, c2, ...)`` is step i's polynomial
        ``c0 x + c1 x^3 + c2 x^5 + ...`` (any odd degree; steps may differ in degree).
        Asking for more steps than the table has repeats the last tuple; fewer take
        the first ones.
    name : str
        Short name shown in tables.
    safety : float
        Safety factor s >= 1 (Polar Express uses 1.01).  The input is normalized
        as ``X_0 = G / (s * ||G||_F)`` and every table entry but the last is
        evaluated at ``x / s`` (``c_j / s^(2j+1)``), so singular values pushed
        slightly above the design interval by rounding stay controlled.
    source : str
        Where the coefficients come from (paper, repository, procedure).
    default_steps : int, optional
        Steps used when ``steps=None``; defaults to ``len(coeffs)``.
    normalization : {"fro", "schatten4"}
        The upper bound nu >= ||G||_2 that X_0 = G / (safety * nu) divides by: the
        Frobenius norm (Jordan, Polar Express), or the Schatten-4 norm
        (sum sigma^4)^(1/4) = ||G G^T||_F^(1/2), tighter by up to min(m, n)^(1/4) and free:
        the Gram matrix it needs is the first step's own.
    gram_restart : int, optional
        Run wide matrices (n >= 2m) on the Gram side: iterate R = X X^T and the
        accumulated left factor Q (both m x m) with X_k = Q X_0, and apply Q to X once at
        the end; every ``gram_restart`` steps X = Q X and R are re-formed, because R and Q
        accumulate rounding that the standard iteration corrects each step.  Same result in
        exact arithmetic, about 4m^2 n + 8k m^3 FLOPs instead of k (4m^2 n + 2m^3) for k
        quintic steps (0.6x at 1:4).  ``None`` (default): the standard iteration.
    eps : float
        Floor of the divisor: X_0 = G / max(safety * nu, eps).  0 (default) keeps every
        nonzero G scale-invariant (the zero matrix still maps to zero); torch.optim.Muon
        uses 1e-7, which leaves matrices with ||G||_F < 1e-7 short of the interval.
    precondition : {None, "aol"}
        ``"aol"``: after the Frobenius normalization, rescale the rows of X (m <= n) by
        D = diag(sum_j abs(A_ij))^(-1/2) with A = X X^T, the almost-orthogonal-layer scaling of
        Prach and Lampert (2022) that Turbo-Muon (Boissin et al. 2025) puts before
        Newton-Schulz.  ||D X||_2 <= 1 holds for every X (a theorem, so the interval's top
        stays 1), and for nearly orthogonal rows D X is much closer to orthogonal than
        X / ||X||_F: the singular values the schedule starts from are larger.  The limit is
        msign(D G), not msign(G): a different orthogonal matrix unless D is a multiple of I.
        The Gram product is the first step's own (D A D), so it costs no product.  The schedule's
        ``scalar_map`` then acts on the singular values of D X / safety, which are measured,
        not bounded, from below (:func:`msign.metrics.preconditioned_singular_values`).

    Raises
    ------
    TypeError, ValueError
        For an empty table, a non-numeric or non-finite coefficient, a safety
        factor below 1 or a non-positive ``default_steps``.

    Examples
    --------
    >>> s = Schedule([(1.5, -0.5)], name="cubic", default_steps=3)
    >>> round(float(s.scalar_map(0.5)), 6)
    0.9753
    >>> s.matmuls()
    6
    """

    coeffs: tuple[tuple[float, ...], ...]
    name: str = "custom"
    safety: float = 1.0
    source: str = ""
    default_steps: int | None = None
    normalization: str = "fro"
    gram_restart: int | None = None
    eps: float = 0.0
    precondition: str | None = None
    _table: tuple[tuple[float, ...], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.coeffs, (str, bytes)) or not isinstance(self.coeffs, Iterable):
            raise TypeError(f"coeffs must be a list of coefficient tuples; got {self.coeffs!r}")
        steps = list(self.coeffs)
        if not steps:
            raise ValueError("coeffs must hold at least one step")
        if all(isinstance(c, (int, float, Fraction)) for c in steps):
            raise TypeError(
                "coeffs must be a list of per-step tuples, e.g. [(3.4445, -4.775, 2.0315)]; "
                f"got a flat list of numbers {steps!r}"
            )
        table = tuple(_as_coeff_tuple(c, i) for i, c in enumerate(steps))
        object.__setattr__(self, "coeffs", table)
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"name must be a non-empty string; got {self.name!r}")
        safety = float(self.safety)
        if not (math.isfinite(safety) and safety >= 1.0):
            raise ValueError(f"safety must be a finite number >= 1; got {self.safety!r}")
        object.__setattr__(self, "safety", safety)
        if self.default_steps is not None and (
            isinstance(self.default_steps, bool) or not isinstance(self.default_steps, int)
            or self.default_steps < 1
        ):
            raise ValueError(f"default_steps must be a positive int; got {self.default_steps!r}")
        if self.gram_restart is not None and (
            isinstance(self.gram_restart, bool) or not isinstance(self.gram_restart, int)
            or self.gram_restart < 1
        ):
            raise ValueError(f"gram_restart must be None or a positive int; "
                             f"got {self.gram_restart!r}")
        eps = float(self.eps) if isinstance(self.eps, (int, float)) else float("nan")
        if not (math.isfinite(eps) and eps >= 0):
            raise ValueError(f"eps must be a finite number >= 0; got {self.eps!r}")
        object.__setattr__(self, "eps", eps)
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(
                f"normalization must be one of {NORMALIZATIONS}; got {self.normalization!r}")
        if self.precondition is not None and self.precondition not in PRECONDITIONS:
            raise ValueError(f"precondition must be None or one of {PRECONDITIONS}; "
                             f"got {self.precondition!r}")
        if self.precondition is not None and self.normalization != "fro":
            raise ValueError("precondition='aol' replaces the normalization's role (it bounds "
                             "||X||_2 by 1 itself); use normalization='fro'")
        n = len(table)
        # The last entry is the fixed point the iteration repeats; Polar Express leaves it
        # unscaled so that repeating it converges to 1 exactly.
        scaled = tuple(
            tuple(c / safety ** (2 * j + 1) for j, c in enumerate(step)) if i < n - 1 else step
            for i, step in enumerate(table)
        )
        object.__setattr__(self, "_table", scaled)

    @property
    def degree(self) -> int:
        """Highest polynomial degree over the steps."""
        return max(2 * len(c) - 1 for c in self.coeffs)

    def resolve_steps(self, steps: int | None) -> int:
        """Number of steps actually run for ``steps`` (``None`` -> the default)."""
        if steps is None:
            return self.default_steps or len(self.coeffs)
        return check_steps(steps)

    def step_coeffs(self, steps: int | None = None) -> list[tuple[float, ...]]:
        """Effective per-step coefficients (safety applied), ``steps`` long."""
        k = self.resolve_steps(steps)
        t = self._table
        return list(t[:k]) + [t[-1]] * max(0, k - len(t))

    def matmuls(self, steps: int | None = None) -> int:
        """Matrix products per call: a degree 2d+1 step costs d+1 (Gram, d-1 Horner, apply)."""
        return sum(len(c) if len(c) > 1 else 0 for c in self.step_coeffs(steps))

    def divisor(self, sigma: Any) -> Any:
        """safety * nu from the singular values ``sigma`` (last axis): what X_0 = G / . uses.

        The one statement of the normalization rule: nu is the Frobenius norm
        (sum sigma^2)^(1/2) or the Schatten-4 norm (sum sigma^4)^(1/4).  The engine computes
        the same quantity from the matrix (``||G||_F``, ``||G G^T||_F^(1/2)``); analyses that
        start from an SVD use this, so ``scalar_map(sigma / divisor(sigma))`` is the exact-
        arithmetic prediction of the iterate's singular values.

        Examples
        --------
        >>> Schedule([(1.5, -0.5)], safety=2.0).divisor([3.0, 4.0])
        10.0
        """
        if self.precondition is not None:
            raise ValueError(f"schedule {self.name!r} is preconditioned ({self.precondition}): "
                             "its starting singular values are not sigma / divisor; use "
                             "msign.metrics.preconditioned_singular_values")
        s = np.asarray(sigma, dtype=np.float64)
        p = 2 if self.normalization == "fro" else 4
        return self.safety * float(np.sum(s**p) ** (1 / p)) if s.ndim <= 1 \
            else self.safety * np.sum(s**p, axis=-1) ** (1 / p)

    def scalar_map(self, x: Any, steps: int | None = None) -> Any:
        """Composite map f = p_k o ... o p_1 applied to x = sigma / (safety * nu).

        nu is the ``normalization`` norm of G (Frobenius by default).

        ``x`` may be a float or array (evaluated in float64) or an ``mpmath.mpf``
        / list of them (evaluated at the current ``mpmath.mp`` precision, with the
        float coefficients converted exactly).
        """
        coeffs = self.step_coeffs(steps)
        if isinstance(x, mpmath.mpf) or (
            isinstance(x, (list, tuple)) and x and isinstance(x[0], mpmath.mpf)
        ):
            mp_coeffs = [[mpmath.mpf(c) for c in step] for step in coeffs]
            if isinstance(x, mpmath.mpf):
                return _compose(x, mp_coeffs)
            return [_compose(v, mp_coeffs) for v in x]
        return _compose(np.asarray(x, dtype=np.float64), coeffs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "coeffs": [list(c) for c in self.coeffs],
            "safety": self.safety,
            "source": self.source,
            "default_steps": self.default_steps,
            "normalization": self.normalization,
            "gram_restart": self.gram_restart,
            "eps": self.eps,
            "precondition": self.precondition,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Schedule:
        if not isinstance(d, dict) or "coeffs" not in d:
            raise ValueError("a schedule dict needs at least the key 'coeffs'")
        unknown = set(d) - {"name", "coeffs", "safety", "source", "default_steps",
                            "normalization", "gram_restart", "eps", "precondition"}
        if unknown:
            raise ValueError(f"unknown schedule keys: {sorted(unknown)}")
        return cls(**d)

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        """Serialize to JSON (floats as repr, so values round-trip exactly); write if path."""
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            write_text(path, text + "\n")
        return text

    @classmethod
    def from_json(cls, text_or_path: str | os.PathLike) -> Schedule:
        """Load from a JSON string or a file path written by :meth:`to_json`."""
        s = os.fspath(text_or_path)
        if not s.lstrip().startswith("{"):
            with open(s) as f:
                s = f.read()
        return cls.from_dict(json.loads(s))


def odd_poly(c: Sequence[Any], x: Any) -> Any:
    """c[0] x + c[1] x^3 + c[2] x^5 + ... by Horner in x^2 (floats, arrays or mpmath)."""
    x2 = x * x
    acc = c[-1]
    for cj in reversed(c[:-1]):
        acc = acc * x2 + cj
    return acc * x


def _compose(x: Any, coeffs: Sequence[Sequence[Any]]) -> Any:
    for step in coeffs:
        x = odd_poly(step, x)
    return x


def _f(*c: int, den: int = 1) -> tuple[float, ...]:
    return tuple(float(Fraction(v, den)) for v in c)


SCHEDULES: dict[str, Schedule] = {
    s.name: s
    for s in [
        Schedule(
            [_f(3, -1, den=2)],
            name="cubic",
            default_steps=21,
            source="Newton-Schulz cubic (3/2, -1/2): Taylor series of (1-t)^(-1/2), degree 3; "
            "21 steps bring every x in [1e-3, 1] to 1 within 1e-7",
        ),
        Schedule(
            [_f(15, -10, 3, den=8)],
            name="quintic",
            default_steps=14,
            source="Newton-Schulz quintic (15/8, -10/8, 3/8): Taylor series of (1-t)^(-1/2), "
            "degree 5; 14 steps bring every x in [1e-3, 1] to 1 within 1e-7",
        ),
        Schedule(
            [(3.4445, -4.7750, 2.0315)],
            name="jordan",
            default_steps=5,
            source="Keller Jordan, KellerJordan/Muon@1430c3495b60613a6bb6f035ef38456529443a14 "
            "muon.py (zeropower_via_newtonschulz5), torch.optim.Muon's default: slope-"
            "maximizing quintic, 5 steps; band about [0.68, 1.13] on [1e-2, 1]",
        ),
        Schedule(
            [
                _f(3955, -8306, 5008, den=1024),
                _f(3735, -6681, 3463, den=1024),
                _f(3799, -6499, 3211, den=1024),
                _f(4019, -6385, 2906, den=1024),
                _f(2677, -3029, 1162, den=1024),
                _f(2172, -1833, 682, den=1024),
            ],
            name="you",
            source="Jiacheng You's six-step list (Modula docs, 'Newton-Schulz')",
        ),
        Schedule(
            [
                (4.0848, -6.8946, 2.9270),
                (3.9505, -6.3029, 2.6377),
                (3.7418, -5.5913, 2.3037),
                (2.8769, -3.1427, 1.2046),
                (2.8366, -3.0525, 1.2012),
            ],
            name="you-5",
            source="Jiacheng You's five-step list, as microsoft/dion@27557c598af20b1d0e20f298047e"
            "0505972bfbec dion/newton_schulz_triton.py uses it (Gram Newton-Schulz too)",
        ),
        Schedule(
            [
                (4.6182, -12.9582, 9.3299),
                (3.8496, -7.9585, 4.3052),
                (3.5204, -7.2918, 4.0606),
                (3.2067, -6.8243, 4.2802),
                (3.2978, -5.7848, 3.8917),
            ],
            name="su-5",
            source="Su Jianlin, kexue.fm/archives/10922, five steps (Adam on top-k |f-1|)",
        ),
        Schedule(
            [
                (8.28721201814563, -23.595886519098837, 17.300387312530933),
                (4.107059111542203, -2.9478499167379106, 0.5448431082926601),
                (3.9486908534822946, -2.908902115962949, 0.5518191394370137),
                (3.3184196573706015, -2.488488024314874, 0.51004894012372),
                (2.300652019954817, -1.6689039845747493, 0.4188073119525673),
                (1.891301407787398, -1.2679958271945868, 0.37680408948524835),
                (1.8750014808534479, -1.2500016453999487, 0.3750001645474248),
                (1.875, -1.25, 0.375),
            ],
            name="polar-express",
            safety=1.01,
            source="Amsel, Persson, Musco, Gower 2025 (arXiv:2505.16932), "
            "procedure of NoahAmsel/PolarExpress@5454910920ca8c65afda28820cdf9e49b9436ed0 "
            "polar_express.py: 8 steps, degree 5, lower bound 1e-3, safety 1.01",
        ),
        Schedule(
            [
                (7.9992168742892344, -22.424142219348177, 16.18735477029588),
                (3.8711794214508894, -2.8899273156211467, 0.5556684290095345),
                (3.1429340874970944, -2.3563938409804637, 0.4951119837211896),
                (2.1853526390449987, -1.5633821905834333, 0.407477829968514),
                (1.8835703930113332, -1.2594900451125353, 0.3759502647580146),
                (1.8750721479921182, -1.2500801620991928, 0.3750080163003921),
                (1.8750643820642954, -1.2500715337664063, 0.37500715344868574),
                (1.8750643811420153, -1.2500715327417042, 0.3750071533462135),
            ],
            name="polar-express-bf16",
            source="msign.design.polar_express(lower=1e-3, steps=8, degree=5, safety=1, "
            "noise=2**-7): each step minimax on the interval widened by the bf16 noise model "
            "of msign.scalar.noise_band at c = 2 (above the largest c = 1.2 measured by "
            "experiments/matrix/rounding_model.py); certified bounded under that model up to c = 2",
        ),
        Schedule(
            [(3.4445, -4.7750, 2.0315)] * 8 + [(2.0, -1.5, 0.5)] * 2,
            name="deepseek-v4",
            source="DeepSeek-V4's hybrid Newton-Schulz (DeepSeek-AI, DeepSeek-V4 technical "
            "report, 2026, huggingface.co/deepseek-ai/DeepSeek-V4-Pro DeepSeek_V4.pdf; the same "
            "list as NVIDIA-NeMo/Emerging-Optimizers@fd7729267109a8848709e9406bf19e53e970c3f4 "
            "muon_utils.py 'deepseekv4'): 8 steps of Jordan's quintic, "
            "then 2 of the quintic (2, -1.5, 0.5) (p(1) = 1, p'(1) = 0, p''(1) = 1: quadratic "
            "convergence onto 1 from Jordan's band); 30 products",
        ),
        Schedule(
            [
                (4.6051, -9.6552, 5.6769),
                (4.7505, -6.0861, 2.1790),
                (2.7763, -2.3190, 0.5523),
                (2.4231, -2.2861, 0.8193),
            ],
            name="turbo-muon",
            precondition="aol",
            source="Turbo-Muon (Boissin, Massena, Mamalet, Serrurier 2025, arXiv:2512.04632v1): "
            "AOL row scaling, then four quintic steps, the list of "
            "thib-s/flash-newton-schulz@cdb03db0e6c59e82365426373a1601fadfdf7ab3 "
            "newton_schulz_triton.py (newton_schulz_triton_aol); 12 products, the Gram "
            "product of the scaling reused by the first step",
        ),
        Schedule(
            [
                (8.47032880384807, -25.10807470666187, 18.62927559911801),
                (4.1828341832939415, -3.108701109889241, 0.580606681350049),
                (3.9618572789615993, -2.9540637463593784, 0.5629761179538963),
                (3.28658621702796, -2.464720134531282, 0.5073576938614548),
                (2.273749994434039, -1.6446603679080696, 0.41619092749788633),
            ],
            name="cans",
            source="msign.design.cans(lower=1e-3, degree=5, steps=5): Chebyshev-optimal quintic "
            "steps on [1e-3, 1] (Grishina, Smirnov, Rakhuba 2025, arXiv:2506.10935v1), "
            "Jordan's budget of 15 products; pure greedy, no safety factor; equal to the 'cans' "
            "list of NVIDIA-NeMo/Emerging-Optimizers@fd7729267109a8848709e9406bf19e53e970c3f4 "
            "muon_utils.py to its four printed digits",
        ),
        Schedule(
            [
                (8.36416667596487, -24.371215367567213, 17.794986051292472),
                (4.0854271864479905, -2.992811584829014, 0.5536026210923274),
                (3.707808106942593, -2.7310259450060275, 0.5245649094527135),
                (2.8045048423249193, -2.065549869813591, 0.45154953274399423),
            ],
            name="band-12",
            source="msign.design.coverage(matmuls=12, delta=0.35, noise=2**-7) "
            "(experiments/lm/budget.py, results/budget/schedules/band-12.json): four quintic "
            "steps, 12 products, certified band [0.661, 1.339] on [0.00195, 1] with each "
            "step's top designed against the bf16 noise model; the fewest products whose "
            "Shakespeare-GPT loss is within Jordan's seed range (results/budget/summary.json)",
        ),
    ]
}
# The Gram-side variants (experiments/matrix/gram.py, results/gram/cpu.json): restarting every 2
# steps is the longest interval that stayed finite in bf16 on every test and captured matrix
# (3 and more blew up on power-law spectra and real gradients).  Wide matrices only.
for _s in [SCHEDULES["jordan"], SCHEDULES["polar-express"]]:
    SCHEDULES[f"{_s.name}-gram"] = replace(
        _s, name=f"{_s.name}-gram", gram_restart=2,
        source=f"{_s.source}; run on the Gram side, restarted every 2 steps")
del _s


def get_schedule(name: str) -> Schedule:
    """Return the named schedule (see ``SCHEDULES`` for the names).

    Examples
    --------
    >>> get_schedule("jordan").coeffs
    ((3.4445, -4.775, 2.0315),)
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str; got {type(name).__name__}")
    try:
        return SCHEDULES[name]
    except KeyError:
        raise ValueError(
            f"unknown schedule {name!r}; expected one of {sorted(SCHEDULES)}"
        ) from None
