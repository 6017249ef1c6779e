"""The slash command's answers."""
