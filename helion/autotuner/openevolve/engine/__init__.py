"""What runs in OpenEvolve's process: the engine and what its spawned workers load.

This subpackage imports only the standard library and ``openevolve`` (with ``openai``, which
OpenEvolve's default client uses), never ``helion`` or ``torch``, and nothing outside itself: the
launcher (``loop/launcher.py``) puts only this folder on the engine's import path, under the
private name ``_helion_openevolve`` (:data:`.main.PACKAGE`), and ``test_engine_boundary`` imports
every module of it there with ``helion`` and ``torch`` blocked. The user's process imports it as
``helion.autotuner.openevolve.engine`` for the data both sides share.

- ``main``: the engine process (``python -c BOOTSTRAP``): OpenEvolve's controller, the
  ``Config`` built from the :mod:`.job`, the evaluator file its workers load;
- ``job``: the typed job the user's process sends (settings, system message, seed program) and
  the link back to it (socket address, key, private folders);
- ``objective``: ``evaluate`` in each worker, the client side of the user's evaluation server;
- ``program``: the evolved program as data (parsed with ``ast.literal_eval``, never executed);
- ``feedback``: the reply to one program, its score and the feedback text the LLM reads;
- ``llm_channel`` and ``llm_faults``: every LLM request of a worker, retried by what its error
  is, and reported to the user's process as events.

This file must stay free of imports.
"""
