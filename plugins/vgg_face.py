"""Placeholder: the vgg_face plugin is being written (issue 4)."""
