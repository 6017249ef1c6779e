"""Sandbox mode's settings and demo script (the Slack stand-in itself is bot/local_slack/)."""
