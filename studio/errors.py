"""The studio's one error of its own: what the page asked for does not exist (HTTP 404)."""


class NotFound(KeyError):
    """A tub, model, job, record or file the studio does not have."""
