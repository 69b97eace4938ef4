"""Errors that carry a message meant for the user (CLI output, API 4xx bodies)."""


class HeimdexError(Exception):
    """Base class: the message is safe and useful to show to a user."""


class InvalidMediaError(HeimdexError):
    """The input is not a usable video (not a video, undecodable, too long, too large...)."""


class NotFoundError(HeimdexError):
    """A video, scene, person or job that does not exist (or is not the caller's)."""


class ConflictError(HeimdexError):
    """The request clashes with existing state (a duplicate name, a job already running...)."""


class InvalidRequestError(HeimdexError):
    """A request the caller can correct: times outside a video, a clip too long..."""


class ModelUnavailableError(HeimdexError):
    """A configured model cannot be loaded (missing package, bad folder, no network for a hub id)."""
