"""Procountor: the HTTP adapter (``client``), receipts (``receipts``), refusals (``procountor_refusals``)."""
