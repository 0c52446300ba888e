"""From files to the index: the formats read, the driver (local engine) and the Ray engine."""
