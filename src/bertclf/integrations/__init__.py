"""bertclf inside other frameworks: Ray Data (``ray``)."""
