"""Blob storage for originals, thumbnails, sidecars and stage artifacts: local folder or S3."""

from heimdex.blobs.base import BlobStore, open_blob_store

__all__ = ["BlobStore", "open_blob_store"]
