"""The search loop, in the user's process, Helion-free: it imports the standard library and the
engine subpackage's shared data (``..engine``), never ``helion``, ``torch`` or ``..adapters``.
``driver`` is the loop; the package docstring (``helion/autotuner/openevolve/__init__.py``)
tells what each module owns. This file must stay free of imports."""
