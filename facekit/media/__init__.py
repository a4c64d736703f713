"""Input: what a path holds (an image, a folder, a video), its frames decoded and named."""
from facekit.media.sources import (IMAGE_SUFFIXES, VIDEO_SUFFIXES, FrameSource, decoded_image, existing_input,
                                   frame_names, load_pixels_caught, open_input, read_image)

__all__ = ["IMAGE_SUFFIXES", "VIDEO_SUFFIXES", "FrameSource", "decoded_image", "existing_input", "frame_names",
           "load_pixels_caught", "open_input", "read_image"]
