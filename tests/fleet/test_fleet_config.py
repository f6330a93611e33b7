"""The [fleet] table's names: a treadmill on a broker names its topics with its machine id and
its gym's site; only a fleet service may follow every site ("*")."""

from __future__ import annotations

import pytest

from device.config.kinds import ConfigError
from device.config.load import config_from_mapping
from device.config.model import FleetConfig
from device.fleet.publisher import FleetError, Publisher
from device.fleet.topics import site_filter
from web.fleet.settings import fleet_settings


def test_a_machine_id_that_cannot_be_a_topic_level_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"\[machine\] id must be .* names MQTT topics"):
        config_from_mapping({"machine": {"id": "Lane 3/back"}})
    assert config_from_mapping({"machine": {"name": "Lane 3, at the back"}})  # names may


def test_a_treadmill_cannot_follow_every_site() -> None:
    with pytest.raises(FleetError, match=r"site = \"\*\" follows every site"):
        Publisher(
            FleetConfig(broker="mqtt://127.0.0.1:1883", site="*"),
            machine_id="treadmill-1",
            machine_name="Treadmill 1",
        )


def test_a_head_offices_fleet_follows_every_site() -> None:
    config = config_from_mapping({"fleet": {"broker": "mqtt://central:1883", "site": "*"}})
    settings = fleet_settings(config)
    assert settings.site is None
    assert site_filter(settings.site) == site_filter("*") == "retrotread/+/#"
    assert site_filter("gym-north") == "retrotread/gym-north/#"


def test_each_tile_links_to_its_treadmills_dashboard_by_the_configured_pattern() -> None:
    config = config_from_mapping(
        {"fleet": {"broker": "mqtt://desk:1883", "dashboards": "http://{site}-{machine_id}.lan/"}}
    )
    assert (
        fleet_settings(config).dashboard_url("gym", "treadmill-4") == "http://gym-treadmill-4.lan/"
    )
