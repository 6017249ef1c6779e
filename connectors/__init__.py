"""One module per accounting system, all behind :class:`connectors.base.Connector`."""
