"""Audio input: decoding any container/codec to mono float32 at the engine rate."""
