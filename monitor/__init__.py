"""Reputation and sentiment monitor for companies in a data-breach crisis."""

# First of all: whether the modules setup.py compiled are imported compiled or from source.
from monitor import compiled as _compiled  # noqa: F401
