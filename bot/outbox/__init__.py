"""The outbox's sending side: which message shows what, rebuilt from the database and sent when due."""
