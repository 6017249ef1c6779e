"""The bulk resync modal and its progress message."""
