"""Placeholder: the s3fd plugin is being written (issue 4)."""
