"""push events."""

from __future__ import annotations

from gidgethub import routing

router = routing.Router()
