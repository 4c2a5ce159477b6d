"""Pure decoders of what devices send (bytes in, typed values out; no I/O)."""
