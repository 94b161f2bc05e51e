"""Integer codes of torus embeddings: quantisation, circular distances, Johnson codes, baselines,
file and C export.

Usage::

    from torus_plugins.codes import quantize, save_codes, load_codes
    codes = quantize(to_turns(z), bits=8)           # [n, k] uint8
    save_codes("emb.torc", codes, bits=8)
"""

from .c_export import export_c_header
from .distance import circular_distance, coordinate_distance, pairwise_circular_distance
from .export import UInt8Encoder, encode
from .file_format import CodeFile, CodeFileError, load_codes, save_codes
from .johnson import johnson_bytes, johnson_encode
from .pack import pack_codes, packed_row_bytes, unpack_codes
from .pq import PAPER_PQ_SETTINGS, ProductQuantizer
from .quantize import dequantize, quantize
from .sphere_grid import SphereGridQuantizer
from .torus_pq import TorusProductQuantizer

__all__ = [
    "quantize",
    "dequantize",
    "pack_codes",
    "unpack_codes",
    "packed_row_bytes",
    "circular_distance",
    "pairwise_circular_distance",
    "coordinate_distance",
    "johnson_encode",
    "johnson_bytes",
    "SphereGridQuantizer",
    "ProductQuantizer",
    "TorusProductQuantizer",
    "PAPER_PQ_SETTINGS",
    "UInt8Encoder",
    "encode",
    "save_codes",
    "load_codes",
    "CodeFile",
    "CodeFileError",
    "export_c_header",
]
