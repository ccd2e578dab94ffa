"""One training run of the byte-level decoder, independent of Ray (see :mod:`xfer.train`)."""
