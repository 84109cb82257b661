"""Risk scores: a driver score per vehicle and a property score per home or site.

``features`` turns stored readings and warnings into plain figures (pure); ``model`` weighs
them into an explainable, versioned :class:`~scores.model.Score` (pure); ``daily`` reads the
stored data through ``core.db`` and writes each day's scores (the only module here with I/O).
"""
