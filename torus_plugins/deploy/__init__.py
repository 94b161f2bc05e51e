"""Deploy on integers: the last linear layer and the torus head in integers, C99 and Cortex-M4.

Usage::

    from torus_plugins.deploy import integer_head_from_linear, export_integer_head_c
    head = integer_head_from_linear(linear, input_scale=s, input_zero_point=zp,
                                    geometry="torusN", bits=8)
    codes = head.codes(q_int8)                  # uint8 [N, n_angles]
    export_integer_head_c("head.h", head, codes=stored_codes)
"""

from .c_export import export_integer_head_c, integer_head_c_source
from .integer_head import (GEOMETRIES, ZERO_PAIR_CODE, IntegerHead, IntegerHeadFileError,
                           angle_codes, fixed_point_multiplier, integer_head_from_linear,
                           load_integer_head, save_integer_head, turn_codes)

__all__ = ["IntegerHead", "IntegerHeadFileError", "integer_head_from_linear", "save_integer_head",
           "load_integer_head", "angle_codes", "turn_codes", "fixed_point_multiplier",
           "ZERO_PAIR_CODE", "GEOMETRIES", "export_integer_head_c", "integer_head_c_source"]
