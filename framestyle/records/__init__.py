"""What a run leaves beside its outputs: the manifest and resolved settings,
a video's report, the HTML report."""
