"""Placeholder: the cv2_dnn plugin is being written (issue 4)."""
