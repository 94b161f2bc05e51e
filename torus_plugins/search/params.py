"""Search parameters, one class per index family, as faiss's ``SearchParameters`` objects.

Pass them to ``search`` / ``range_search`` as ``params=``; ``None`` uses the index's own settings.
Every field is checked when it is set (in the constructor or later), like faiss's typed fields.

Usage::

    D, I = flat.search(q, 10, params=SearchParameters(threads=1))
    D, I = ivf.search(q, 10, params=SearchParametersIVF(nprobe=64))
    D, I = milvus.search(q, 10, params=SearchParametersMilvus(consistency="Session"))
"""

from dataclasses import dataclass

from ._args import check_int

__all__ = ["SearchParameters", "SearchParametersIVF", "SearchParametersMilvus", "CONSISTENCY"]

#: Milvus's read consistency levels, strongest first.
CONSISTENCY = ("Strong", "Session", "Bounded", "Eventually")


def _threads(value):
    return check_int(value, "threads", none_ok=True)


def _nprobe(value):
    return check_int(value, "nprobe", none_ok=True)


def _batch(value):
    return check_int(value, "batch")


def _rerank(value):
    return check_int(value, "rerank", none_ok=True)


def _consistency(value):
    if value is not None and value not in CONSISTENCY:
        raise ValueError(
            f"consistency must be one of {', '.join(CONSISTENCY)} or None, got {value!r}"
        )
    return value


class _Checked:
    """Fields are checked on every assignment; a misspelt field is an AttributeError (slots)."""

    __slots__ = ()
    _checks: dict = {}

    def __setattr__(self, name, value):
        check = self._checks.get(name)
        super().__setattr__(name, value if check is None else check(value))


@dataclass(slots=True, kw_only=True)
class SearchParameters(_Checked):
    """Parameters of one search of :class:`~torus_plugins.search.TorusIndexFlat` (and the base of
    :class:`SearchParametersIVF`), like ``faiss.SearchParameters``.

    Args:
        threads: at most this many threads (None: numba's setting, ``numba.set_num_threads``).

    Raises:
        ValueError: threads not an integer >= 1 or None.
    """

    _checks = {"threads": _threads}
    threads: int | None = None


@dataclass(slots=True, kw_only=True)
class SearchParametersIVF(SearchParameters):
    """Parameters of one search of :class:`~torus_plugins.search.TorusIndexIVF`, like
    ``faiss.SearchParametersIVF``.

    Args:
        nprobe: lists probed per query (None: the index's ``nprobe``; more than ``nlist`` probes
            every list, which is exact).
        threads: accepted so that code written for any index runs unchanged; the probe and the
            list scan run on one thread.

    Raises:
        ValueError: nprobe or threads not an integer >= 1 or None.
    """

    _checks = {"threads": _threads, "nprobe": _nprobe}
    nprobe: int | None = None


@dataclass(slots=True, kw_only=True)
class SearchParametersMilvus(_Checked):
    """Parameters of one search of :class:`~torus_plugins.search.milvus.MilvusTorusIndex`.

    Args:
        batch: queries sent to Milvus per request.
        consistency: what the search sees ("Strong", "Session", "Bounded", "Eventually"; None: the
            index's ``consistency``).
        rerank: bits > 4: the Hamming shortlist holds ``rerank * k`` codes re-ranked exactly (None:
            the index's ``rerank``).

    Raises:
        ValueError: batch or rerank not an integer >= 1, or an unknown consistency level.
    """

    _checks = {"batch": _batch, "consistency": _consistency, "rerank": _rerank}
    batch: int = 1000
    consistency: str | None = None
    rerank: int | None = None
