"""``bertclf serve``: the REST server (needs the ``serve`` extra)."""
