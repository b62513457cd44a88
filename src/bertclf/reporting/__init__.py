"""What a run reports besides its scores: the data check, the TF-IDF baseline, ``report.html`` and the model card."""
