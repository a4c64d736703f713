"""Placeholder: the fan plugin is being written (issue 4)."""
