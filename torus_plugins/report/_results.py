"""results.json: JSON of provenance, arguments and metrics, NaN and inf refused."""

import json
import math

import numpy as np


def to_jsonable(obj):
    """numpy / torch scalars and arrays, tuples and non-str keys -> plain JSON types.

    Dicts (keys as ``str``), lists and tuples are converted recursively; numpy and torch arrays
    become nested lists; any other object becomes its ``str()``.

    Args:
        obj: the value to convert.

    Returns:
        A structure of dicts, lists, str, int, float, bool and None.

    Raises:
        ValueError: ``obj`` holds a non-finite Python float. (NaN inside numpy or torch values is
            not checked here; :func:`write_results` refuses it when writing.)
    """
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (np.generic,)):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if hasattr(obj, "detach") and hasattr(obj, "tolist"):  # torch.Tensor
        return obj.detach().cpu().tolist()
    if isinstance(obj, float) and not math.isfinite(obj):
        raise ValueError(f"refusing to write a non-finite number ({obj}) to JSON")
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


def write_results(path, provenance: dict, args, metrics) -> str:
    """Write ``{"provenance", "args", "metrics"}`` as indented JSON (NaN/inf refused).

    Args:
        path: the file to write (str or path-like); replaced if it exists.
        provenance: a dict from :func:`finish` (or :func:`provenance`; ``_t0`` is dropped).
        args: the run's arguments, a dict, an ``argparse.Namespace`` or None.
        metrics: the results, any structure :func:`to_jsonable` converts.

    Returns:
        ``str(path)``.

    Raises:
        ValueError: a value is NaN or inf (nothing is written then).
        TypeError: ``args`` is neither a dict nor an object with ``__dict__``.
        OSError: the file cannot be written.
    """
    if args is not None and not isinstance(args, dict):
        args = vars(args)
    prov = {k: v for k, v in provenance.items() if k != "_t0"}
    doc = {
        "provenance": to_jsonable(prov),
        "args": to_jsonable(args),
        "metrics": to_jsonable(metrics),
    }
    text = json.dumps(doc, indent=2, allow_nan=False)
    with open(path, "w") as f:
        f.write(text + "\n")
    return str(path)
