"""Deploy on integers: a trained torus encoder as an int8 ExecuTorch program + an integer head
emitting uint8 codes.

The integer head (the last linear layer in int8 with int32 accumulation, then the exact angle step)
is numpy only, with a C99 export and a Cortex-M4 harness; export and load of whole encoders need
the [edge] extra (``pip install 'torus-plugins[edge]'``: executorch, torchao).

Usage::

    from torus_plugins import deploy
    deploy.export(model, calibration_loader, "encoder_int8")   # encoder.pte, head.torh, head.h
    encoder = deploy.load("encoder_int8")
    codes = encoder(x)                                          # uint8 [N, n_angles]

    head = deploy.integer_head_from_linear(linear, input_scale=s, input_zero_point=zp,
                                           geometry="torusN", bits=8)
    codes = head.codes(q_int8)                                  # uint8 [N, n_angles]
    deploy.export_integer_head_c("head.h", head, codes=stored_codes)   # + top-k over the codes
"""

from .c_export import export_integer_head_c, integer_head_c_source
from .export import export
from .fidelity import code_agreement
from .head_file import IntegerHeadFileError, load_integer_head, save_integer_head
from .integer_head import GEOMETRIES, IntegerHead, integer_head_from_linear
from .integer_ops import ZERO_PAIR_CODE, angle_codes, fixed_point_multiplier, turn_codes
from .runtime import ExportFileError, IntegerEncoder, load, set_runtime_threads
from .split import ModelSplit, find_split

__all__ = [
    "export",
    "load",
    "code_agreement",
    "IntegerEncoder",
    "ExportFileError",
    "set_runtime_threads",
    "find_split",
    "ModelSplit",
    "IntegerHead",
    "IntegerHeadFileError",
    "integer_head_from_linear",
    "save_integer_head",
    "load_integer_head",
    "angle_codes",
    "turn_codes",
    "fixed_point_multiplier",
    "ZERO_PAIR_CODE",
    "GEOMETRIES",
    "export_integer_head_c",
    "integer_head_c_source",
]
