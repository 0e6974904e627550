"""k-nearest-neighbour metrics: improved precision/recall (Kynkäänniemi et al. 2019), density/coverage
(Naeem et al. 2020), k-NN radii and nearest-neighbour search.

The definitions are exactly those of the reference package ``prdc`` (``prdc.compute_prdc``), including
its numerics: it computes every distance as ``sqrt(float32(|x|² + |y|² - 2 x·y in float64))`` for
float32 inputs (float64 throughout for other inputs), takes the radius of a point as the (k+1)-th
smallest distance of its row *including* the zero self-distance (i.e. the distance to the k-th nearest
other point), and uses strict inequalities (``distance < radius``):

* precision = share of fake samples inside at least one real k-NN ball;
* recall    = share of real samples inside at least one fake k-NN ball;
* density   = (1/k) · mean over fake samples of the number of real balls that contain them;
* coverage  = share of real samples whose own k-NN ball contains a fake sample.

How it is fast and exact
------------------------
Nothing larger than one ``chunk × chunk`` tile of a distance matrix is ever held. Each tile is one
float32 GEMM on mean-centred features, ``S = |a|² + |b|² - 2 a·bᵀ`` (``torch.addmm``), which carries a
*proven* error bound ``|S - d²| ≤ τ (|a|² + |b|²)`` with ``τ ≈ (D + 64) · 2⁻²⁴`` (a worst-case
bound for any float32 summation order, plus the centring and the additions). A decision is taken in
float32 only when it cannot be changed by that error; the few pairs whose interval straddles a radius,
and the handful of candidates per row that can be the k-th neighbour, are recomputed exactly in float64
(``Σ (a - b)²``) and rounded the way ``prdc`` rounds them, so every in-ball decision — ties included — is
the one ``prdc`` takes. Rows where the cheap candidate set cannot be proven complete (e.g. many exact
duplicates) fall back to float64 GEMM rows.

* The radii need the real×real and fake×fake matrices; both are symmetric, so only the tiles on and
  above the diagonal are computed: a diagonal tile gives each row k+1+4 candidates (``torch.topk``) and
  a threshold, an off-diagonal tile contributes, in both directions, only the entries below the
  thresholds (``nonzero`` of one comparison).
* The real×fake matrix is computed once, and one pass over its tiles gives all four metrics
  (``coverage`` — nearest fake closer than the real radius — is the same event as "some fake inside the
  real ball", so it needs no extra min-reduction).

Exact duplicate rows are the one case that cannot be matched bit for bit: sklearn's
``|x|² + |y|² - 2 x·y`` gives two identical (non-integer) rows a rounding-noise distance of order
``2⁻²⁶ |x|`` (or 0), gankit gives exactly 0; only decisions between such noise values can differ.
"""
from __future__ import annotations

import contextlib
import math

import numpy as np
import torch
from torch import Tensor

__all__ = ["knn_radii", "precision_recall", "density_coverage", "prdc", "nearest"]

DEFAULT_CHUNK = 2048       # tile side: a 2048 x 2048 float32 tile is 16 MiB and runs sgemm at peak
_EXTRA = 4                 # candidates kept per row beyond the k+1 needed (absorbs float32 near-ties)
_REL = 2.0 ** -20          # relative margin on r² separating sure float32 decisions from rounding ties
_PAIR_ELEMS = 1 << 18      # elements per float64 temporary when recomputing pairs exactly
_ROW_ELEMS = 1 << 24       # elements per float64 fallback block (rows x reference points)
_PAIR_BATCH = 1 << 21      # candidate pairs gathered from tiles before they are decided


# ----------------------------------------------------------------------------------------------- helpers
def _as_tensor(x, name: str) -> Tensor:
    """(N, D) float32 or float64 CPU tensor; other dtypes become float64 (as sklearn does)."""
    if isinstance(x, np.ndarray):
        t = torch.from_numpy(np.ascontiguousarray(x))
    elif isinstance(x, Tensor):
        t = x.detach().cpu()
    else:
        t = torch.as_tensor(np.asarray(x))
    if t.dim() != 2:
        raise ValueError(f"{name} must be a 2-D (N, D) array, got shape {tuple(t.shape)}")
    if t.dtype not in (torch.float32, torch.float64):
        t = t.to(torch.float64)
    t = t.contiguous()
    return t


def _tau(dim: int) -> float:
    """Bound factor: |S_float32 - d²| <= tau * (|a_c|² + |b_c|²) for centred rows a_c, b_c.

    u = 2⁻²⁴. Dot product (any summation order): 2 γ_D Σ|a_i b_i| <= γ_D (|a|² + |b|²) with
    γ_D = D u / (1 - D u); rounding of the norms and of the two additions: < 8 u (|a|² + |b|²); centring
    a and b in float32: < 4 u (|a|² + |b|²) (+ O(u²), covered by the 1 %).
    """
    nu = (dim + 64) * 2.0 ** -24
    if nu >= 0.5:
        raise ValueError(f"feature dimension {dim} is too large for the float32 error bound")
    return nu / (1 - nu) * 1.01


def _splits(n: int, chunk: int, min_size: int = 1) -> list[tuple[int, int]]:
    nb = max(1, math.ceil(n / max(1, int(chunk))))
    nb = min(nb, max(1, n // max(1, min_size)))
    edges = [round(i * n / nb) for i in range(nb + 1)]
    return [(edges[i], edges[i + 1]) for i in range(nb) if edges[i + 1] > edges[i]]


def _f32_up(x: Tensor) -> Tensor:
    """float64 -> float32, rounded towards +inf."""
    y = x.float()
    return torch.where(y.double() < x, torch.nextafter(y, torch.full_like(y, math.inf)), y)


def _sqrt(x: Tensor) -> Tensor:
    """Correctly rounded square root (numpy's, as prdc/sklearn/scipy use; torch's vectorised CPU sqrt
    is not correctly rounded, which would move about 1 % of the distances by one ulp)."""
    return torch.from_numpy(np.sqrt(x.numpy()))


def _round(sq: Tensor, f32: bool) -> Tensor:
    """The distance prdc reports for an exact squared distance, as float64 values."""
    sq = sq.clamp_min(0)
    return _sqrt(sq.float()).double() if f32 else _sqrt(sq)


@contextlib.contextmanager
def _ieee_fp32():
    """Keep float32 matmuls in full float32 (the error bound assumes it), restoring the user's setting."""
    old = torch.get_float32_matmul_precision()
    mk = getattr(getattr(torch.backends, "mkldnn", None), "matmul", None)
    old_mk = getattr(mk, "fp32_precision", None)
    try:
        if old != "highest":
            torch.set_float32_matmul_precision("highest")
        if old_mk not in (None, "none", "ieee"):
            mk.fp32_precision = "ieee"
        yield
    finally:
        if old != "highest":
            torch.set_float32_matmul_precision(old)
        if old_mk not in (None, "none", "ieee"):
            mk.fp32_precision = old_mk


class _Set:
    """One point set: original values (for exact float64 work) and centred float32 copy (for GEMMs)."""

    def __init__(self, x: Tensor, mean: Tensor):
        self.x = x
        self.f32 = x.dtype == torch.float32
        self.n, self.d = x.shape
        # any float32 shift vector is fine: only the rounding of the subtraction enters the error bound
        self.c = x - mean.to(x.dtype) if self.f32 else (x - mean).float()
        self.sq64 = torch.empty(self.n, dtype=torch.float64)
        step = max(1, (1 << 19) // max(1, self.d))        # cache-sized float64 blocks
        for a in range(0, self.n, step):
            self.sq64[a:a + step] = self.c[a:a + step].to(torch.float64, copy=True).square_().sum(1)
        self.sq32 = self.sq64.float()
        if not bool(torch.isfinite(self.sq32).all()):
            raise ValueError("features contain NaN or infinite (or float32-overflowing) values")
        self.sq_max = float(self.sq64.max()) if self.n else 0.0
        self._x64_sq = None

    def tile(self, other: "_Set", i0: int, i1: int, j0: int, j1: int, buf: Tensor) -> Tensor:
        """float32 squared distances of rows i0:i1 of self to rows j0:j1 of other."""
        out = buf[: (i1 - i0) * (j1 - j0)].view(i1 - i0, j1 - j0)
        torch.addmm(other.sq32[j0:j1].unsqueeze(0), self.c[i0:i1], other.c[j0:j1].t(),
                     beta=1, alpha=-2, out=out)
        out.add_(self.sq32[i0:i1].unsqueeze(1))
        return out

    def x64_sq(self) -> Tensor:
        if self._x64_sq is None:
            out = torch.empty(self.n, dtype=torch.float64)
            step = max(1, (1 << 19) // max(1, self.d))
            for a in range(0, self.n, step):   # copy=True: never square the caller's float64 array
                out[a:a + step] = self.x[a:a + step].to(torch.float64, copy=True).square_().sum(1)
            self._x64_sq = out
        return self._x64_sq


def _below(t: Tensor, row: Tensor | None, col: Tensor | None, tbuf: Tensor, mbuf: Tensor) -> Tensor:
    """Boolean tile ``t < max(row threshold, column threshold)``, written into reused buffers."""
    mask = mbuf[: t.numel()].view(t.shape)
    if row is not None and col is not None:
        thr = torch.maximum(row, col, out=tbuf[: t.numel()].view(t.shape))
    else:
        thr = row if row is not None else col
    return torch.lt(t, thr, out=mask)


def _mean(*xs: Tensor) -> Tensor:
    """A rough centre (float32 accumulation is fine: distances do not depend on the shift)."""
    xs = [x for x in xs if x.shape[0]]
    if not xs:
        return torch.zeros(0)
    return sum(x.mean(0).double() * x.shape[0] for x in xs) / sum(x.shape[0] for x in xs)


def _pair_sq(a: Tensor, b: Tensor, ia: Tensor, ib: Tensor) -> Tensor:
    """Exact-as-float64 squared distances Σ (a[ia] - b[ib])² for index pairs."""
    out = torch.empty(ia.numel(), dtype=torch.float64)
    step = max(1, _PAIR_ELEMS // max(1, a.shape[1]))
    for s in range(0, ia.numel(), step):
        e = min(ia.numel(), s + step)
        diff = a.index_select(0, ia[s:e]).to(torch.float64)   # index_select made a fresh copy
        diff.sub_(b.index_select(0, ib[s:e]))          # float32 -> float64 promotion is exact
        out[s:e] = diff.square_().sum(1)
    return out


def _rows64(a: _Set, b: _Set, rows: Tensor, same: bool):
    """Yield (row indices, float64 squared distances of those rows of a to all of b), prdc/sklearn style."""
    if rows.numel() == 0:
        return
    step = max(1, _ROW_ELEMS // max(1, b.n))
    bx = b.x.double()
    bsq = b.x64_sq()
    asq = a.x64_sq()
    for s in range(0, rows.numel(), step):
        r = rows[s: s + step]
        d = torch.addmm(bsq.unsqueeze(0), a.x[r].double(), bx.t(), beta=1, alpha=-2)
        d.add_(asq[r].unsqueeze(1)).clamp_min_(0)
        if same:
            d[torch.arange(r.numel()), r] = 0.0
        yield r, d


# ----------------------------------------------------------------------------------- k-th neighbour radii
def _kth_sq(a: _Set, k: int, chunk: int, stats: dict | None = None) -> Tensor:
    """(N,) float64: the (k+1)-th smallest squared distance of each row of a to a (self included)."""
    n = a.n
    if not 1 <= k < n:
        raise ValueError(f"k={k} needs 1 <= k < number of samples ({n})")
    kc = min(n, k + 1 + _EXTRA)
    tau = _tau(a.d)
    blocks = _splits(n, chunk, min_size=kc)
    side = max(e - s for s, e in blocks)
    buf, tbuf = torch.empty(side * side), torch.empty(side * side)   # reused: fresh pages are slow
    mbuf = torch.empty(side * side, dtype=torch.bool)
    thr = torch.empty(n, dtype=torch.float32)
    rows_l, cols_l, vals_l = [], [], []
    # diagonal tiles: k+1+EXTRA candidates per row, and a threshold (the largest of them)
    for s, e in blocks:
        t = a.tile(a, s, e, s, e, buf)
        v, j = torch.topk(t, kc, dim=1, largest=False, sorted=False)
        thr[s:e] = v.amax(dim=1)
        rows_l.append(torch.arange(s, e).repeat_interleave(kc))
        cols_l.append((j + s).reshape(-1))
        vals_l.append(v.reshape(-1))
    # off-diagonal tiles (upper triangle only): entries below a row's or a column's threshold
    pi, pj, pv = [], [], []
    for bi, (s, e) in enumerate(blocks):
        for s2, e2 in blocks[bi + 1:]:
            t = a.tile(a, s, e, s2, e2, buf)
            ii, jj = torch.nonzero(_below(t, thr[s:e].unsqueeze(1), thr[s2:e2].unsqueeze(0), tbuf, mbuf),
                                   as_tuple=True)
            pv.append(t[ii, jj])
            pi.append(ii + s)
            pj.append(jj + s2)
    if pv:
        pi, pj, pv = torch.cat(pi), torch.cat(pj), torch.cat(pv)
        kr, kcol = pv < thr[pi], pv < thr[pj]
        rows_l += [pi[kr], pj[kcol]]
        cols_l += [pj[kr], pi[kcol]]
        vals_l += [pv[kr], pv[kcol]]
    rows, cols, vals = torch.cat(rows_l), torch.cat(cols_l), torch.cat(vals_l)
    if stats is not None:
        stats["radius_candidates"] = stats.get("radius_candidates", 0) + int(vals.numel())
    # the kc smallest candidates of every row (each row has at least kc: its diagonal-tile ones)
    # one int64 sort on (row, value): float32 bits mapped to an order-preserving unsigned 32-bit code
    bits = vals.view(torch.int32).to(torch.int64)
    code = torch.where(bits < 0, (~bits) & 0xFFFFFFFF, bits | 0x80000000)
    keys, order = torch.sort(rows * (1 << 32) + code)
    rows_s = keys >> 32
    counts = torch.bincount(rows_s, minlength=n)
    starts = torch.cumsum(counts, 0) - counts
    pos = torch.arange(rows_s.numel()) - starts[rows_s]
    sel = order[pos < kc]
    cv = vals[sel].view(n, kc).double()
    cc = cols[sel].view(n, kc)

    # intervals [S - eps, S + eps] hold the true d²; only overlapping ones near rank k+1 need exact values
    eps = tau * (a.sq64.unsqueeze(1) + a.sq64[cc])
    lo, hi = cv - eps, cv + eps
    lo_k = lo.kthvalue(k + 1, dim=1).values
    hi_k = hi.kthvalue(k + 1, dim=1).values
    below = hi < lo_k.unsqueeze(1)
    amb = ~below & (lo <= hi_k.unsqueeze(1))
    if kc < n:   # every non-candidate has S >= max candidate S; it must be provably above rank k+1
        ok = (cv.amax(dim=1) - tau * (a.sq64 + a.sq_max)) > hi_k
    else:
        ok = torch.ones(n, dtype=torch.bool)
    ii, jj = torch.nonzero(amb & ok.unsqueeze(1), as_tuple=True)
    vals = torch.full((n, kc), math.inf, dtype=torch.float64)
    vals[below] = -math.inf
    vals[ii, jj] = _pair_sq(a.x, a.x, ii, cc[ii, jj])
    out = vals.kthvalue(k + 1, dim=1).values
    bad = torch.nonzero(~ok).flatten()
    for r, d in _rows64(a, a, bad, same=True):
        out[r] = d.kthvalue(k + 1, dim=1).values
    if stats is not None:   # would radii taken from the float32 distances alone differ?
        plain = _round(cv.kthvalue(k + 1, dim=1).values, a.f32)
        stats["radius_float32_differs"] = stats.get("radius_float32_differs", 0) + int(
            (plain != _round(out, a.f32)).sum())
        stats["radius_exact_pairs"] = stats.get("radius_exact_pairs", 0) + int(ii.numel())
        stats["radius_fallback_rows"] = stats.get("radius_fallback_rows", 0) + int(bad.numel())
    return out


# ------------------------------------------------------------------------------------ real x fake pass
def _cross(real: _Set, fake: _Set, r_real: Tensor | None, r_fake: Tensor | None, chunk: int,
           stats: dict | None = None):
    """One pass over the real x fake tiles.

    A = {(i, j): d(real_i, fake_j) < r_real_i}, B = {(i, j): d(real_i, fake_j) < r_fake_j}.
    Returns (per-fake count of A, per-real any of A, per-real any of B); None where not requested.
    """
    f32 = real.f32 and fake.f32
    tau = _tau(real.d)
    use_a, use_b = r_real is not None, r_fake is not None
    count_a = torch.zeros(fake.n, dtype=torch.int64) if use_a else None
    any_a = torch.zeros(real.n, dtype=torch.bool) if use_a else None
    any_b = torch.zeros(real.n, dtype=torch.bool) if use_b else None
    if use_a:
        lo_a, hi_a = r_real.square() * (1 - _REL), r_real.square() * (1 + _REL)
        thr_a = _f32_up(hi_a + tau * (real.sq64 + fake.sq_max))
    else:
        lo_a = hi_a = None
    if use_b:
        lo_b, hi_b = r_fake.square() * (1 - _REL), r_fake.square() * (1 + _REL)
        thr_b = _f32_up(hi_b + tau * (real.sq_max + fake.sq64))
    else:
        lo_b = hi_b = None
    rb, fb = _splits(real.n, chunk), _splits(fake.n, chunk)
    size = max(e - s for s, e in rb) * max(e - s for s, e in fb)
    buf, tbuf, mbuf = torch.empty(size), torch.empty(size), torch.empty(size, dtype=torch.bool)
    counts = {"exact": 0, "flips": 0}

    def settle(gi, gj, sv):
        """Decide the candidate pairs: in float32 where the error bound allows it, else exactly."""
        sv = sv.double()
        eps = tau * (real.sq64[gi] + fake.sq64[gj])
        tests = []   # (inside, undecided, radius) per pair, for A and/or B
        for use, lo, hi, radius, owner in ((use_a, lo_a, hi_a, r_real, gi), (use_b, lo_b, hi_b, r_fake, gj)):
            if use:
                inside = sv + eps < lo[owner]
                tests.append((inside, ~inside & (sv - eps < hi[owner]), radius[owner]))
        amb = tests[0][1] if len(tests) == 1 else tests[0][1] | tests[1][1]
        idx = torch.nonzero(amb).flatten()
        if idx.numel():
            d = _round(_pair_sq(real.x, fake.x, gi[idx], gj[idx]), f32)
            counts["exact"] += idx.numel()
            d32 = _round(sv[idx], True) if stats is not None else None
            for inside, undecided, radius in tests:
                m, r = undecided[idx], radius[idx]
                inside[idx[m]] = (d < r)[m]
                if d32 is not None:   # decisions plain float32 distances would have got wrong
                    counts["flips"] += int(((d32 < r) != (d < r))[m].sum())
        if use_a:
            in_a = tests[0][0]
            count_a.add_(torch.bincount(gj[in_a], minlength=fake.n))
            any_a[gi[in_a]] = True
        if use_b:
            any_b[gi[tests[-1][0]]] = True

    pend, npend = [], 0
    for s, e in rb:
        for s2, e2 in fb:
            t = real.tile(fake, s, e, s2, e2, buf)
            ii, jj = torch.nonzero(_below(t, thr_a[s:e].unsqueeze(1) if use_a else None,
                                          thr_b[s2:e2].unsqueeze(0) if use_b else None, tbuf, mbuf),
                                   as_tuple=True)
            if ii.numel():
                pend.append((ii + s, jj + s2, t[ii, jj]))
                npend += ii.numel()
            if npend > _PAIR_BATCH:   # settle in batches: bounded memory, few small-op calls
                settle(*(torch.cat(z) for z in zip(*pend)))
                pend, npend = [], 0
    if pend:
        settle(*(torch.cat(z) for z in zip(*pend)))
    n_exact, n_float_flips = counts["exact"], counts["flips"]
    if stats is not None:
        stats["cross_exact_pairs"] = stats.get("cross_exact_pairs", 0) + n_exact
        stats["cross_float32_flips"] = stats.get("cross_float32_flips", 0) + n_float_flips
    return count_a, any_a, any_b


def _prepare(real, fake, chunk):
    x, y = _as_tensor(real, "real"), _as_tensor(fake, "fake")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"real and fake have different feature sizes: {x.shape[1]} vs {y.shape[1]}")
    mu = _mean(x, y)
    return _Set(x, mu), _Set(y, mu)


def _metrics(real, fake, k: int, want: set[str], chunk: int, stats: dict | None) -> dict[str, float]:
    with torch.inference_mode(), _ieee_fp32():
        r, f = _prepare(real, fake, chunk)
        r_real = _round(_kth_sq(r, k, chunk, stats), r.f32)
        r_fake = _round(_kth_sq(f, k, chunk, stats), f.f32) if "recall" in want else None
        need_a = bool(want & {"precision", "density", "coverage"})
        count_a, any_a, any_b = _cross(r, f, r_real if need_a else None, r_fake, chunk, stats)
        out = {}
        if "precision" in want:
            out["precision"] = int((count_a > 0).sum()) / f.n
        if "recall" in want:
            out["recall"] = int(any_b.sum()) / r.n
        if "density" in want:
            out["density"] = (1.0 / float(k)) * (int(count_a.sum()) / f.n)
        if "coverage" in want:
            out["coverage"] = int(any_a.sum()) / r.n
        return out


# ------------------------------------------------------------------------------------------- public API
def knn_radii(x, k: int, chunk: int = DEFAULT_CHUNK) -> Tensor:
    """(N,) distance of each row of ``x`` to its k-th nearest *other* row (prdc's
    ``compute_nearest_neighbour_distances``: the (k+1)-th smallest distance, self-distance 0 included).

    float32 for float32 input (prdc's values, bit for bit barring exact duplicate rows), else float64.
    """
    with torch.inference_mode(), _ieee_fp32():
        t = _as_tensor(x, "x")
        s = _Set(t, _mean(t))
        r = _round(_kth_sq(s, k, chunk), s.f32)
        return r.float() if s.f32 else r


def precision_recall(real, fake, k: int = 3, chunk: int = DEFAULT_CHUNK) -> dict[str, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019), as ``prdc.compute_prdc``."""
    return _metrics(real, fake, k, {"precision", "recall"}, chunk, None)


def density_coverage(real, fake, k: int = 5, chunk: int = DEFAULT_CHUNK) -> dict[str, float]:
    """Density and coverage (Naeem et al. 2020), as ``prdc.compute_prdc``; needs no fake radii."""
    return _metrics(real, fake, k, {"density", "coverage"}, chunk, None)


def prdc(real, fake, k: int = 5, chunk: int = DEFAULT_CHUNK, stats: dict | None = None) -> dict[str, float]:
    """precision, recall, density and coverage with one k — same keys and values as ``prdc.compute_prdc``.

    ``stats``, if given a dict, receives diagnostics: ``radius_candidates`` (float32 candidates kept for
    the k-th neighbour search), ``radius_exact_pairs`` / ``cross_exact_pairs`` (pairs recomputed exactly
    because the float32 error bound could not decide them), ``radius_fallback_rows`` (rows recomputed
    in float64 GEMM), ``radius_float32_differs`` (radii that plain float32 distances would have got
    wrong by at least one ulp) and ``cross_float32_flips`` (in-ball decisions among the recomputed pairs
    that plain float32 distances would have got wrong).
    """
    return _metrics(real, fake, k, {"precision", "recall", "density", "coverage"}, chunk, stats)


def nearest(query, ref, chunk: int = DEFAULT_CHUNK) -> tuple[Tensor, Tensor]:
    """(distance, index) of the nearest row of ``ref`` for each row of ``query``.

    Exact: the index is the argmin of the float64 Euclidean distances (lowest index on ties, like
    ``numpy.argmin`` over ``scipy.spatial.distance.cdist``); distances are float32 for float32 inputs.
    """
    with torch.inference_mode(), _ieee_fp32():
        q, r = _prepare(query, ref, chunk)
        n, m = q.n, r.n
        if m == 0:
            raise ValueError("ref is empty")
        kn = min(m, 1 + _EXTRA)
        tau = _tau(q.d)
        qb, rb = _splits(n, chunk), _splits(m, chunk)
        buf = torch.empty(max((e - s for s, e in qb), default=0) * max(e - s for s, e in rb),
                          dtype=torch.float32)
        cv = torch.empty(n, kn, dtype=torch.float32)
        cc = torch.empty(n, kn, dtype=torch.int64)
        for s, e in qb:
            best_v = best_i = None
            for s2, e2 in rb:
                t = q.tile(r, s, e, s2, e2, buf)
                v, j = torch.topk(t, min(kn, e2 - s2), dim=1, largest=False, sorted=False)
                j = j + s2
                if best_v is not None:
                    v, j2 = torch.cat([best_v, v], 1), torch.cat([best_i, j], 1)
                    v, p = torch.topk(v, min(kn, v.shape[1]), dim=1, largest=False, sorted=False)
                    j = j2.gather(1, p)
                best_v, best_i = v, j
            cv[s:e], cc[s:e] = best_v, best_i
        cv = cv.double()
        eps = tau * (q.sq64.unsqueeze(1) + r.sq64[cc])
        hi_min = (cv + eps).amin(dim=1)
        amb = (cv - eps) <= hi_min.unsqueeze(1)
        if kn < m:
            ok = (cv.amax(dim=1) - tau * (q.sq64 + r.sq_max)) > hi_min
        else:
            ok = torch.ones(n, dtype=torch.bool)
        ii, jj = torch.nonzero(amb & ok.unsqueeze(1), as_tuple=True)
        vals = torch.full((n, kn), math.inf, dtype=torch.float64)
        vals[ii, jj] = _pair_sq(q.x, r.x, ii, cc[ii, jj])
        best = vals.amin(dim=1)
        idx = torch.where(vals == best.unsqueeze(1), cc, torch.full_like(cc, m)).amin(dim=1)
        for rows, d in _rows64(q, r, torch.nonzero(~ok).flatten(), same=False):
            best[rows], idx[rows] = d.min(dim=1)
        dist = _sqrt(best.clamp_min(0))
        return (dist.float() if q.f32 and r.f32 else dist), idx
