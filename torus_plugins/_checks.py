"""Argument checks shared by heads, losses, codes and the registry.

One convention: every check raises a TypeError for the wrong kind of value (a float where an int is
expected, a string where a number is, a non-tensor) and a ValueError for the right kind with a bad
value (out of range, wrong shape, not finite); the message names the argument, what was expected
and what came. Numbers given as strings, bools given as numbers and floats given as
integers are refused rather than silently converted.

Usage: ``eps = check_positive_float(eps, "eps")``; ``check_float_tensor(x, "input")``
"""

import math
import numbers

import numpy as np
import torch

#: C99 and C++ keywords plus the macros/typedefs a generated header relies on (not valid as
#: identifiers there).
C_RESERVED = frozenset(
    """
    auto break case char const continue default do double else enum extern float for goto if inline
    int long register restrict return short signed sizeof static struct switch typedef union
    unsigned void volatile while _Bool _Complex _Imaginary _Alignas _Alignof _Atomic _Generic
    _Noreturn _Static_assert _Thread_local bool true false alignas alignof asm catch class
    const_cast constexpr decltype delete dynamic_cast explicit export friend mutable namespace new
    noexcept nullptr operator private protected public reinterpret_cast static_assert static_cast
    template this thread_local throw try typeid typename using virtual wchar_t size_t uint8_t
    uint16_t uint32_t uint64_t int8_t int16_t int32_t int64_t NULL
""".split()
)


def _describe(value) -> str:
    """``repr`` of a value with its type, for messages: 1.5 (float), '2' (str)."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def check_int(value, name: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """int(value) for an integer (Python or numpy, not bool, not float) in [minimum, maximum].

    Args:
        value: the argument.
        name: its name, for messages.
        minimum: smallest accepted value (None: no bound).
        maximum: largest accepted value (None: no bound).

    Returns:
        ``value`` as a Python int.

    Raises:
        TypeError: not an integer (bools, floats, strings refused).
        ValueError: outside [minimum, maximum].
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"{name} must be an integer, got {_describe(value)}")
    value = int(value)
    if minimum is not None and maximum is not None and not minimum <= value <= maximum:
        raise ValueError(f"{name} must be an integer in [{minimum}, {maximum}], got {value}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be an integer <= {maximum}, got {value}")
    return value


def check_positive_int(value, what: str) -> int:
    """``check_int(value, what, minimum=1)``: an integer >= 1.

    Args:
        value: the argument.
        what: its name, for messages.

    Returns:
        ``value`` as a Python int.

    Raises:
        TypeError: not an integer (bools, floats, strings refused).
        ValueError: < 1.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"{what} must be a positive integer, got {_describe(value)}")
    if int(value) <= 0:
        raise ValueError(f"{what} must be a positive integer, got {int(value)}")
    return int(value)


def check_real(value, name: str) -> float:
    """A finite real number (int or float, not bool, not a string, not a tensor); returned as
    float.

    Args:
        value: the argument.
        name: its name, for messages.

    Returns:
        ``float(value)``.

    Raises:
        TypeError: not a real number (bools, strings, tensors refused).
        ValueError: NaN or inf.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (numbers.Real, np.floating, np.integer)
    ):
        raise TypeError(f"{name} must be a real number, got {_describe(value)}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


#: Smallest normalisation eps accepted by the heads: eps**2 (and k * eps**2) must not underflow to 0
#: in float32, or a zero input would give 0 / 0 = NaN.
MIN_EPS = 1e-18


def check_positive_float(value, name: str, minimum: float | None = None, why: str = "") -> float:
    """A finite real number > 0 (and >= ``minimum`` if given, ``why`` saying why); returned as
    float.

    Args:
        value: the argument.
        name: its name, for messages.
        minimum: smallest accepted value (None: any value > 0).
        why: the reason for ``minimum``, added to the message.

    Returns:
        ``float(value)``.

    Raises:
        TypeError: not a real number (bools, strings, tensors refused).
        ValueError: NaN, inf, <= 0, or below ``minimum``.
    """
    value = check_real(value, name)
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    if minimum is not None and value < minimum:
        raise ValueError(
            f"{name} must be >= {minimum:g}{f' ({why})' if why else ''}, got {value:g}"
        )
    return value


def check_non_negative_float(value, name: str) -> float:
    """A finite real number >= 0; returned as float.

    Args:
        value: the argument.
        name: its name, for messages.

    Returns:
        ``float(value)``.

    Raises:
        TypeError: not a real number (bools, strings, tensors refused).
        ValueError: NaN, inf or negative.
    """
    value = check_real(value, name)
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def check_bool(value, name: str) -> bool:
    """A bool (or numpy bool); 0/1, strings and None refused.

    Args:
        value: the argument.
        name: its name, for messages.

    Returns:
        ``bool(value)``.

    Raises:
        TypeError: not a bool or numpy bool.
    """
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {_describe(value)}")
    return bool(value)


def check_choice(value, name: str, choices) -> str:
    """One of ``choices`` (exact match).

    Args:
        value: the argument.
        name: its name, for messages.
        choices: the accepted strings.

    Returns:
        ``value`` unchanged.

    Raises:
        TypeError: not a string.
        ValueError: a string not in ``choices``.
    """
    if not isinstance(value, str):
        raise TypeError(
            f"{name} must be one of {tuple(choices)} (a string), got {_describe(value)}"
        )
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {_describe(value)}")
    return value


def check_float_tensor(x, name: str = "input") -> None:
    """Raise TypeError unless ``x`` is a floating-point torch tensor.

    Args:
        x: the argument.
        name: its name, for messages.

    Raises:
        TypeError: not a torch.Tensor, or not of a floating-point dtype.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")


def check_min_dims(x: torch.Tensor, dims: int, name: str = "input", layout: str = "") -> None:
    """Raise ValueError unless ``x`` has at least ``dims`` dimensions (``layout`` e.g. "[B, D]" for
    the message).

    Args:
        x: a tensor.
        dims: fewest dimensions accepted.
        name: its name, for messages.
        layout: the expected layout, for messages.

    Raises:
        ValueError: ``x.dim() < dims``.
    """
    if x.dim() < dims:
        want = f" {layout}" if layout else ""
        raise ValueError(
            f"{name} must have at least {dims} dimension(s){want}, got shape {tuple(x.shape)}"
        )


def check_width(x: torch.Tensor, expected: int, name: str = "input") -> None:
    """Raise ValueError unless the last dimension of ``x`` is ``expected``.

    Args:
        x: a tensor.
        expected: the required size of its last dimension.
        name: its name, for messages.

    Raises:
        ValueError: ``x`` is 0-d or its last dimension differs.
    """
    if x.dim() == 0 or x.shape[-1] != expected:
        shape = tuple(x.shape)
        raise ValueError(f"{name} must have last dimension {expected}, got shape {shape}")


def check_even(dim, what: str) -> int:
    """Raise ValueError unless ``dim`` is a positive even integer (torus layouts pair
    coordinates).

    Args:
        dim: the size to check.
        what: its name, for messages.

    Returns:
        ``dim`` as a Python int.

    Raises:
        TypeError: not an integer (bools, floats, strings refused).
        ValueError: < 1, or odd.
    """
    dim = check_positive_int(dim, what)
    if dim % 2:
        raise ValueError(
            f"{what} must be even (coordinates are read in (cos, sin) pairs), got {dim}"
        )
    return dim


def check_finite(x, name: str = "input") -> None:
    """Raise ValueError if ``x`` (torch tensor or numpy array) holds NaN or inf (nothing downstream
    can repair it).

    Args:
        x: a torch tensor or numpy array (any shape; empty passes).
        name: its name, for messages.

    Raises:
        ValueError: some element is NaN or inf (the message counts them).
    """
    if isinstance(x, torch.Tensor):
        if _sum_is_finite(x):  # one fast reduction; NaN/inf would make the sum NaN/inf
            return
        bad = int(x.numel() - torch.isfinite(x).sum())  # exact; 0 if a finite sum overflowed
    else:
        bad = int(x.size - np.isfinite(x).sum()) if x.size else 0
    if bad:
        raise ValueError(f"{name} contains {bad} NaN or inf value(s); expected finite values")


def _sum_is_finite(x: torch.Tensor) -> bool:
    """True if the sum of ``x`` is finite: then no element is NaN or inf. ``torch.isfinite(x)``
    allocates a mask through several kernels (about 8x slower on CPU); half precision is summed in
    float32."""
    if not x.numel():
        return True
    total = x.sum(dtype=torch.float32) if x.dtype in (torch.float16, torch.bfloat16) else x.sum()
    if total.is_complex():
        return bool(torch.isfinite(total))
    return math.isfinite(float(total))  # one read; torch.isfinite on a 0-d tensor runs four ops


def check_labels_finite(labels: torch.Tensor, name: str = "labels") -> None:
    """Class labels: floating labels must be finite and integral (NaN would silently become its own
    class).

    Args:
        labels: a tensor of class labels (integer dtypes always pass).
        name: its name, for messages.

    Raises:
        ValueError: floating or complex labels holding NaN, inf or a non-integer value.
    """
    if labels.is_floating_point() or labels.is_complex():
        check_finite(labels, name)
        if not bool((labels == labels.round()).all()):
            raise ValueError(
                f"{name} must hold integer class ids, "
                f"got non-integer values of dtype {labels.dtype}"
            )


def check_c_identifier(name, what: str = "name") -> str:
    """A C identifier ([A-Za-z_][A-Za-z0-9_]*) that is not a C/C++ keyword or a stdint/stddef
    name.

    Args:
        name: the identifier to check.
        what: its role, for messages.

    Returns:
        ``name`` unchanged.

    Raises:
        TypeError: not a string.
        ValueError: not an ASCII C identifier, a reserved word (:data:`C_RESERVED`), or starting
            with '_'.
    """
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a string (a C identifier), got {_describe(name)}")
    if (
        not name.isascii()
        or not (name[:1].isalpha() or name[:1] == "_")
        or not name.replace("_", "a").isalnum()
    ):
        raise ValueError(f"{what} must be a C identifier ([A-Za-z_][A-Za-z0-9_]*), got {name!r}")
    if name in C_RESERVED:
        raise ValueError(f"{what} must not be a C/C++ keyword or standard type name, got {name!r}")
    if name.startswith("_"):
        raise ValueError(
            f"{what} must not start with '_' (reserved for the C implementation at file scope), "
            f"got {name!r}"
        )
    return name
