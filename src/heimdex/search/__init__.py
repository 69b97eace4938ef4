"""Hybrid scene search: query parsing, retrieval channels, fusion, snippets."""
