"""Visma e-conomic: the HTTP adapter (``client``), ``vouchers``, ``customers`` and ``refusals``."""
