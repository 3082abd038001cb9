"""The portal's version: the one source for the footer, /healthz, the API and packaging (E9)."""

__version__ = "0.42.7"
