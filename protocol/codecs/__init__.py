"""Codecs: compression of flat float32 vectors for the wire and for the simulator."""
