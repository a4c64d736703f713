"""Placeholder: the sface identity plugin is being written (issue 3)."""
