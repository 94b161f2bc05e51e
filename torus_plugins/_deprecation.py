"""Keyword arguments renamed since 0.1.0: the old name still works, with a DeprecationWarning.

Usage::

    @renamed_keywords(projection="geometry")
    def make_head(dim, geometry="torusN"): ...

    make_head(64, projection="torusC")   # warns, then calls make_head(64, geometry="torusC")
"""

import functools
import inspect
import warnings


def renamed_keywords(**renames: str):
    """Decorator: ``old=value`` in a call becomes ``new=value`` (``renames``: old -> new), warning.

    Args:
        **renames: old keyword name -> new keyword name.

    Returns:
        A decorator for a function or an ``__init__``.

    Raises:
        TypeError: (from the decorated callable) both the old and the new name are passed.
    """

    def decorate(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            for old, new in renames.items():
                if old not in kwargs:
                    continue
                if new in kwargs:
                    raise TypeError(
                        f"{func.__qualname__}() got both {old}= (deprecated) and "
                        f"{new}=; pass {new}= only"
                    )
                warnings.warn(
                    f"{func.__qualname__}(): the keyword {old}= is deprecated, use {new}=",
                    DeprecationWarning,
                    stacklevel=2,
                )
                kwargs[new] = kwargs.pop(old)
            return func(*args, **kwargs)

        return wrapper

    return decorate


def deprecated_alias(func, old_name: str):
    """``func`` under its 0.1.0 name ``old_name``: same call, with a DeprecationWarning.

    Args:
        func: the function that replaces the old one.
        old_name: the name 0.1.0 exported.

    Returns:
        A function that warns, then calls ``func``.
    """

    @functools.wraps(func)
    def alias(*args, **kwargs):
        warnings.warn(
            f"{old_name} is deprecated, use {func.__module__}.{func.__name__}",
            DeprecationWarning,
            stacklevel=2,
        )
        return func(*args, **kwargs)

    alias.__name__ = alias.__qualname__ = old_name
    # Keep the replacement's Args/Returns/Raises: the alias takes the same arguments.
    sections = (inspect.getdoc(func) or "").partition("\n\n")[2]
    alias.__doc__ = f"Deprecated alias of :func:`{func.__module__}.{func.__name__}`.\n\n{sections}"
    return alias
