"""The style-transfer maths: VGG-19 and its weights, the losses, the
optimisation loop and a frame's coarse-to-fine optimisation, colour
preservation. It imports neither the plugin host nor the run."""
