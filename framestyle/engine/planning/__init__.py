"""Planning: inputs found and named (:mod:`.inputs`), split into units
(:mod:`.plan`, :mod:`.segments`)."""
