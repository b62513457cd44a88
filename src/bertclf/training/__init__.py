"""Training: the loop (``loop``), what it optimises (``objectives``), its checkpoints and experiment trackers."""
