import pytest

from acme_weather.client import parse_forecast


def test_parse_forecast_reads_city_and_temperature():
    forecast = parse_forecast({"city": "Paris", "temperature": {"celsius": 14.5}})
    assert forecast.city == "Paris"
    assert forecast.temperature_c == 14.5


def test_parse_forecast_refuses_incomplete_payload():
    with pytest.raises(ValueError, match="incomplete"):
        parse_forecast({"city": "Paris"})
