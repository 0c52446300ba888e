"""From files to the index: ``formats`` (one loader per format family), ``stages`` (read, parse,
chunk, embed as plain functions), ``planning`` (exact duplicates and changes), ``driver`` (the one
``ingest(paths, store, engine)``) and ``engines`` (local and Ray, behind one protocol)."""
