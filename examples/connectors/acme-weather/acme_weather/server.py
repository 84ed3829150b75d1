"""A tiny HTTP facade of the connector, used for health checks and load tests."""

from __future__ import annotations

import argparse
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from acme_weather.client import parse_forecast

# Canned upstream answers: the load test measures the connector, not the vendor's API.
_SAMPLES = {
    "paris": {"city": "Paris", "temperature": {"celsius": 14.5}, "summary": "Cloudy"},
    "oslo": {"city": "Oslo", "temperature": {"celsius": -3.0}, "summary": "Snow"},
}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        url = urlparse(self.path)
        if url.path == "/health":
            self._send(200, {"status": "ok"})
        elif url.path == "/forecast":
            city = parse_qs(url.query).get("city", ["paris"])[0].lower()
            if city not in _SAMPLES:
                self._send(404, {"error": f"unknown city {city}"})
                return
            forecast = parse_forecast(_SAMPLES[city])
            self._send(200, {"city": forecast.city, "celsius": forecast.temperature_c})
        else:
            self._send(404, {"error": "not found"})

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # quiet under load
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
