"""Adapters that give existing pipelines (timm, lightly, pytorch-metric-learning, SupCon-Framework, ProtoCLR,
EB-JEPA) torus heads, KoLeo and uint8 export. Installed as ``torus_plugins.adapters``."""
