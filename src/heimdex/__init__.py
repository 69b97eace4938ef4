"""Heimdex: self-hosted video search over scenes, speech, on-screen text, tags and people."""

__version__ = "0.1.0"
