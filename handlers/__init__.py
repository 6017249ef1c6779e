"""Bolt listeners and HTTP routes: thin; they parse, authorize, call sync/, answer."""
