"""The ``[push]`` section: how the HTTP pusher reaches push gateways."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PushConfig:
    # PEM certificates trusted for push gateways besides the system's (a private CA).
    gateway_ca_file: str = ""
