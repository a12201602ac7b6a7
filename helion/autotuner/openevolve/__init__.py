"""OpenEvolve-driven config search for Helion: the implementation behind
``helion.autotuner.openevolve_tuner``.

Read the modules in the order the data flows:

1. ``search`` (``OpenEvolveSearch``) and ``config_space`` (``tune_config_space``): the two entry
   points. They turn ``settings`` (one frozen dataclass of defaults, effort presets, environment,
   keyword arguments) into ``options`` for the loop, and give it a backend: a Helion kernel's
   space (``space``, the system message from ``prompts``) measured through Helion's benchmark
   path (``helion_backend``), or a dict space and a Python objective. For a Helion kernel, ``history`` adds what
   earlier searches of the kernel picked (first-batch configs, the prompt's "What won before")
   and keeps this search's pick.
2. ``driver``: the loop. It starts a ``session`` (the ``server`` socket in the user's process
   and the OpenEvolve process from ``launcher``/``engine``), measures the default and seeds
   while OpenEvolve's first LLM requests are in flight, then each turn measures one batch.
3. ``proposals``: each evolved program (``program`` parses it as data) is an LLM answer; its
   candidates are validated, measured beside refinement and answered with ``feedback``.
4. ``paths``: PatternSearch-style refinement paths, started from the best configs of any source.
5. ``measure``: the table of every result and the evaluation budget, with ``compare`` (the one
   comparison rule every decision uses) and ``retiming`` (the paired re-timing rounds behind
   it); ``record`` writes each result, the time split and the summary to the run record (and
   reads records back).
6. ``llm_channel`` (in OpenEvolve's workers) owns the LLM client's retries, by what
   ``llm_faults`` makes of each error (permanent, transient, rate limit), and reports every HTTP
   attempt as an event; ``llm_events`` turns the events into counters and the failure verdict
   that ends the LLM's part of the search.
7. ``stop_rule``: the one place that decides when the search stops, and why, and when the
   paths behind a settled best that the LLM or history brought end (knowledge first).

Two kinds of module live here: engine-side modules (``program``, ``feedback``, ``server``,
``llm_channel``, ``llm_faults``, ``engine``, ``launcher``, ``session``, ``options``, ``measure``,
``compare``, ``retiming``, ``paths``,
``proposals``, ``llm_events``, ``stop_rule``, ``driver``, ``record``) use only the standard
library and ``openevolve``; the OpenEvolve process imports this package under a private name, so
it never imports ``helion`` or ``torch``. Helion-side modules (``settings``, ``space``,
``prompts``, ``history``, ``helion_backend``, ``search``, ``config_space``) adapt Helion's ``ConfigSpec`` and benchmark path;
only the user's process imports them. They take every Helion API beyond ``helion.Config`` and
``helion.exc`` from ``helion_api``, the one file to read when moving to a new Helion.

This file must stay free of imports for that reason.
"""
