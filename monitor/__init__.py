"""Reputation and sentiment monitor for companies in a data-breach crisis."""
