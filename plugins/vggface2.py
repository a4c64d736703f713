"""Placeholder: the vggface2 plugin is being written (issue 4)."""
