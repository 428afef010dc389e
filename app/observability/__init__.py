"""Logs, metrics, traces and error reports; each is off, or a no-op, until configured."""
