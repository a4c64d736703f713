"""Input: what a path holds (an image, a folder, a video), its frames decoded and named.

``sources`` does the work; its names are here too, where they were before the core was grouped
by layer (``facekit.media`` was one module)."""
from facekit.media.sources import (HEIF_SUFFIXES, IMAGE_SUFFIXES, MAX_FAILED_GRABS, VIDEO_SUFFIXES, FrameSource,
                                   decoded_image, existing_input, frame_names, load_pixels, load_pixels_caught,
                                   open_input, read_image, utf8_text)
from facekit.media.sampling import Sampling, parse_time

__all__ = ["HEIF_SUFFIXES", "IMAGE_SUFFIXES", "MAX_FAILED_GRABS", "VIDEO_SUFFIXES", "FrameSource", "decoded_image",
           "existing_input", "frame_names", "load_pixels", "load_pixels_caught", "open_input", "parse_time",
           "read_image", "Sampling", "utf8_text"]
