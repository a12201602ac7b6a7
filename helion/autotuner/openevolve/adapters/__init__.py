"""Helion's side, in the user's process: the two entry points (``search``, ``config_space``), the
settings, and the adapters from Helion's ``ConfigSpec`` and benchmark path to the loop
(``..loop``). Every Helion API beyond ``helion.Config`` and ``helion.exc`` comes from
``helion_api``. This file must stay free of imports."""
