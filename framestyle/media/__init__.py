"""Pixels in and out: image files, video decoding and encoding, optical flow."""
