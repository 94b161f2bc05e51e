"""Torus-aware product quantisation: faiss ``IndexPQ`` on the (cos, sin) coordinates, whole circles
per sub-space.

The k angles are embedded as the 2k-vector (cos t0, sin t0, cos t1, sin t1, ...) and faiss' PQ
splits it into M contiguous sub-spaces of 2k/M coordinates; with M dividing k each sub-space holds
k/M whole circles. Its k-means and L2 distance tables then live on the product of circles, where
squared L2 = sum_i (2 - 2 cos dtheta_i): the wrap-around is respected (an angle of 0.99 turns is
next to 0.01). Contrast :class:`ProductQuantizer` on the raw 8-bit angle values (the paper's
baseline), where 255 and 0 are the two ends of a line. Cost: ``bits_per_vector = M * nbits`` (the
same as the raw-value PQ and the sphere's PQ of the same setting).

Usage::

    tpq = TorusProductQuantizer(k=32, M=4, nbits=8).train(turns)   # turns [n, 32], any real
    tpq.add(turns)
    D, I = tpq.search(query_turns, 10)
    turns_hat = tpq.decode(tpq.encode(turns))
"""

import numpy as np
import torch

from .._checks import check_int
from ..geometry import to_clifford
from .pq import ProductQuantizer

__all__ = ["TorusProductQuantizer"]


class TorusProductQuantizer(ProductQuantizer):
    """faiss ``IndexPQ(2k, M, nbits)`` on per-circle (cos t_i, sin t_i) vectors; M divides k.

    ``train``, ``add`` and ``search`` take angles in turns [n, k] (any real, float dtype); search
    returns (squared chordal distances, ids) of the nearest stored vectors (asymmetric: the query
    is not quantised). A non-float or malformed ``turns`` is a ValueError in every method.

    Args:
        k: the number of angles per vector, in [1, 2**20].
        M: the number of sub-quantisers, in [1, k], dividing k.
        nbits: bits per sub-quantiser index, in [1, 16].
        seed: the seed of faiss' k-means.

    Raises:
        TypeError: ``k``, ``M`` or ``nbits`` is not an integer.
        ValueError: one is out of range, or ``M`` does not divide ``k``.
        ModuleNotFoundError: faiss is not installed (the message names the extra).

    Example:
        >>> tpq = TorusProductQuantizer(k=32, M=4, nbits=8).train(np.random.rand(512, 32))
        >>> tpq.encode(np.random.rand(3, 32)).shape
        (3, 4)
    """

    def __init__(self, k: int, M: int, nbits: int = 8, seed: int = 0):
        self.k = check_int(k, "k (number of angles)", 1, 1 << 20)
        M = check_int(M, "M", 1, self.k)
        nbits = check_int(nbits, "nbits", 1, 16)
        if self.k % M:
            raise ValueError(
                f"M={M} must divide the k={self.k} angles (each sub-space holds whole circles)"
            )
        super().__init__(2 * self.k, M, nbits)
        self.index.pq.cp.seed = int(seed)
        self.index.pq.cp.min_points_per_centroid = 1  # small reference sets: no faiss warning spam

    def _as_float(self, turns, name="turns") -> np.ndarray:
        if hasattr(turns, "detach"):
            turns = turns.detach().cpu().numpy()
        t = np.asarray(turns)
        if not np.issubdtype(t.dtype, np.floating):
            raise ValueError(f"{name} must be float angles in turns, got dtype {t.dtype}")
        if t.ndim != 2 or t.shape[1] != self.k:
            raise ValueError(f"{name} must have shape [n, {self.k}], got {t.shape}")
        if not np.isfinite(t).all():
            raise ValueError(f"{name} contains NaN or inf values; expected finite angles")
        z = to_clifford(torch.from_numpy(t.astype(np.float64)), unit_norm=False).numpy()
        return np.ascontiguousarray(z, dtype=np.float32)

    def encode(self, turns) -> np.ndarray:
        """Packed PQ codes of angles.

        Args:
            turns: angles in turns [n, k], floating point, a numpy array or tensor.

        Returns:
            A numpy uint8 array [n, ceil(M * nbits / 8)].

        Raises:
            ValueError: ``turns`` is not floating point, has the wrong shape, or holds NaN or inf.
        """
        return self.index.sa_encode(self._as_float(turns))

    def decode(self, codes) -> np.ndarray:
        """Angles in turns of the reconstructed (cos, sin) vectors: atan2(sin, cos) / 2 pi mod 1.

        Args:
            codes: packed PQ codes from :meth:`encode`, uint8 [n, ceil(M * nbits / 8)].

        Returns:
            A numpy float64 array [n, k] of turns in [0, 1).

        Raises:
            ValueError: ``codes`` is not uint8 of that shape.
        """
        codes = np.asarray(codes)
        width = self.index.sa_code_size()
        if codes.dtype != np.uint8 or codes.ndim != 2 or codes.shape[1] != width:
            raise ValueError(
                f"codes must be uint8 of shape [n, {width}] (from encode()), "
                f"got dtype {codes.dtype} shape {codes.shape}"
            )
        z = self.index.sa_decode(np.ascontiguousarray(codes)).astype(np.float64)
        return np.mod(np.arctan2(z[:, 1::2], z[:, 0::2]) / (2 * np.pi), 1.0)

    def subcodes(self, turns) -> np.ndarray:
        """The sub-quantiser index of each sub-space.

        Args:
            turns: angles in turns [n, k], floating point.

        Returns:
            A numpy int64 array [n, M], indices in [0, 2**nbits).

        Raises:
            ValueError: ``turns`` is not floating point, has the wrong shape, or holds NaN or inf.
        """
        return unpack_pq_codes(self.encode(turns), self.M, self.nbits)

    def __len__(self):
        return int(self.index.ntotal)


def unpack_pq_codes(packed: np.ndarray, M: int, nbits: int) -> np.ndarray:
    """[n, M] sub-quantiser indices of faiss PQ codes (bit-packed, least significant bit first)."""
    packed = np.asarray(packed, dtype=np.uint8)
    if nbits == 8:
        return packed[:, :M].astype(np.int64)
    bits = np.unpackbits(packed, axis=1, bitorder="little")[:, : M * nbits].reshape(
        len(packed), M, nbits
    )
    return (bits.astype(np.int64) << np.arange(nbits)).sum(-1)
