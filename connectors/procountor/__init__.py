"""Procountor: the HTTP adapter (``client``) and its refusals (``procountor_refusals``)."""
