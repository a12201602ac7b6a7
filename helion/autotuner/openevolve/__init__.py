"""OpenEvolve-driven config search for Helion: the implementation behind
``helion.autotuner.openevolve_tuner``.

Two kinds of module live here:

- Engine-side modules (``program``, ``protocol``, ``engine``, ``launcher``, ``driver``,
  ``record``) use only the standard library and ``openevolve``. The OpenEvolve
  process loads this package under a private alias by file path, so it never imports
  ``helion`` or ``torch``.
- Helion-side modules (``settings``, ``space``, ``prompts``, ``search``) adapt a Helion kernel's
  ``ConfigSpec`` and benchmark path to the engine; only the user's process imports them.

This file must stay free of imports for that reason.
"""
