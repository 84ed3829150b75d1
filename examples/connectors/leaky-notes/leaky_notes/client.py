"""Client for the Leaky Notes API."""

from __future__ import annotations

import hashlib

import requests

from leaky_notes.settings import API_BASE


def password_digest(password: str) -> str:
    return hashlib.md5(password.encode()).hexdigest()


def fetch_notes(user: str, password: str) -> list[dict]:
    response = requests.get(
        f"{API_BASE}/notes",
        auth=(user, password_digest(password)),
        verify=False,
    )
    response.raise_for_status()
    return response.json()["notes"]


def count_words(note: dict) -> int:
    return len(str(note.get("body", "")).split())
