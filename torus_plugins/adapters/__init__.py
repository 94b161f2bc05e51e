"""Adapters that give existing pipelines (timm, lightly, pytorch-metric-learning, SupCon-Framework,
ProtoCLR, EB-JEPA) torus heads, KoLeo and uint8 export. Installed as ``torus_plugins.adapters``.

Modules (each also an entry point of the ``torus_plugins.adapters`` group, listed by
``torus-plugins list``):

* ``normalize``: ``patch_normalize(module, mode)`` redirects a module's ``F.normalize`` to the
  torus, reversibly (``unpatch``, or use it as a context manager). The mechanism the repository
  adapters share.
* ``timm``: registers ``<arch>_torusn`` / ``<arch>_torusc`` in timm's registry
  (``timm.list_models("*torus*")``, ``timm.create_model("resnet18_torusn", dim=64)``);
  ``create_torus_model(arch, head, dim)``, ``attach_head(model, ...)``.
* ``lightly``: ``TorusSimCLRProjectionHead``, ``TorusVICRegProjectionHead``,
  ``TorusProjectionHead``; re-exports ``VICRegLoss`` and ``KoLeoLoss``.
* ``pml``: ``CliffordCosine``, ``ToroidalDistance``, ``KoLeoRegularizer``,
  ``torus_supcon_loss(...)``.
* ``supcon_framework``, ``protoclr``, ``eb_jepa``: ``patch(...)`` for the upstream modules, and
  drop-in classes with upstream's signatures.

Every adapter imports its framework on import, so import only the adapters you use; a framework that
is not installed raises an ImportError naming the extra (``pip install 'torus-plugins[timm]'``,
``[lightly]``, ``[pml]``).
"""
