"""A small client for the Acme Weather forecast API."""

from __future__ import annotations

import os
from dataclasses import dataclass

import requests

API_BASE = "https://api.acme-weather.example/v1"


@dataclass(frozen=True)
class Forecast:
    city: str
    temperature_c: float
    summary: str


def parse_forecast(payload: dict) -> Forecast:
    """Turn the API's JSON into a Forecast, refusing incomplete data."""
    try:
        return Forecast(
            city=str(payload["city"]),
            temperature_c=float(payload["temperature"]["celsius"]),
            summary=str(payload.get("summary", "")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"incomplete forecast payload: {exc}") from exc


class AcmeWeatherClient:
    def __init__(self, api_key: str | None = None, session: requests.Session | None = None):
        self._api_key = api_key or os.environ["ACME_API_KEY"]
        self._session = session or requests.Session()

    def forecast(self, city: str) -> Forecast:
        response = self._session.get(
            f"{API_BASE}/forecast",
            params={"city": city},
            headers={"Authorization": f"Bearer {self._api_key}"},
            timeout=10,
        )
        response.raise_for_status()
        return parse_forecast(response.json())
