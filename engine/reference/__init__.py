"""The oracle: the reference reader (marshmallow, every error by path), the expression interpreter
and the trace. Explain and the differential tests use it; the served path only falls back to it for
the facts the generated reader leaves to it."""
