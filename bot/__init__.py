"""Everything that talks to Slack, minus the listeners."""
