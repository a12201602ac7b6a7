"""OpenEvolve-driven config search for Helion: the implementation behind
``helion.autotuner.openevolve_tuner``.

The folders follow the two processes of a search and what each may import:

- ``adapters/``: the user's process, Helion's side. ``search`` (``OpenEvolveSearch``) and
  ``config_space`` (``tune_config_space``) are the two entry points; ``settings`` (one frozen
  dataclass of defaults, effort presets, environment, keyword arguments) becomes the loop's
  options; ``space`` validates configs against the kernel's ``ConfigSpec``, ``prompts`` writes
  the system message, ``helion_backend`` measures through Helion's benchmark path, ``history``
  seeds a search with earlier picks and keeps its own. Every Helion API beyond ``helion.Config``
  and ``helion.exc`` comes from ``helion_api``, the one file to read when moving to a new Helion.
- ``loop/``: the user's process, Helion-free (imports neither ``helion`` nor ``torch``).
  ``driver`` is the loop: it starts a ``session`` (the ``server`` socket and the OpenEvolve
  process from ``launcher``), measures the default and seeds while OpenEvolve's first LLM
  requests are in flight, then measures one batch per turn: LLM answers (``answers``) beside
  ``paths`` (PatternSearch-style refinement). ``measure`` keeps the table of ``result``s and the
  budget, ``compare`` is the one comparison rule every decision uses and ``retiming`` the paired
  re-timing rounds behind it; ``llm_events`` turns the LLM's events into counters and the failure
  verdict; ``stop_rule`` decides when the search stops, and why; ``record`` writes the run record
  (and reads it back); ``options`` is what the entry points tell the loop.
- ``engine/``: OpenEvolve's process (the engine and its spawned workers). It imports only the
  standard library and ``openevolve``, and nothing outside itself: the launcher puts only this
  folder on the engine's import path, under a private name. ``main`` runs OpenEvolve from a typed
  ``job``; ``objective`` parses each evolved ``program`` as data and asks the user's process;
  ``feedback`` scores the reply; ``llm_channel`` and ``llm_faults`` retry and report every LLM
  request. The user's process imports it too, for the data both sides share.
- here: ``cli`` (the ``helion-openevolve`` command: ``report`` and ``history``), ``run_view`` (a
  run record read back for the report) and ``report_plot`` (its picture).

Imports go one way: ``adapters`` may import ``loop`` and ``engine``, ``loop`` may import
``engine``, ``engine`` only itself; no module imports another that imports it back, type-only
imports included (``test_layout``). This file must stay free of imports.
"""
