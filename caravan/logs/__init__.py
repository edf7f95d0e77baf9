"""Logs: the log definitions list, allocation log reads (offset and tail strategies)."""
