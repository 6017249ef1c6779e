"""The embedded sandbox ledger (``ledger``), a process's books of them (``books``), its connector."""
