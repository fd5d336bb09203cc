"""Alerts: rules (pure: mentions in, findings out) -> engine (cooldown, history) -> channels."""
