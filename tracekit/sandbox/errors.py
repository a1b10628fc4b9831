"""Errors of the sandbox package (own module so that every part can import them without cycles)."""

from __future__ import annotations


class SandboxUnavailable(RuntimeError):
    """The chosen sandbox cannot run on this machine (e.g. no user namespaces for bubblewrap)."""


class SandboxBroken(RuntimeError):
    """The sandbox or its harness failed (not the solution): the verdict is `error`, retried."""
