"""cluster.yaml passes Ray's own cluster-config schema (GPU default and the documented TPU one)."""

from __future__ import annotations

import copy
import re

import jsonschema
import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from tests.conftest import REPO

CLUSTER = REPO / "cluster.yaml"


def _load() -> dict:
    return yaml.safe_load(CLUSTER.read_text())


def _tpu_variant(config: dict) -> dict:
    """The TPU node type documented in comments at the end of cluster.yaml, swapped in."""
    text = CLUSTER.read_text().split("# TPU alternative", 1)[1]
    block = "\n".join(line[2:] if line.startswith("# ") else line[1:]
                      for line in text.splitlines()[3:] if line.startswith("#"))
    extra = yaml.safe_load(block)
    out = copy.deepcopy(config)
    out["available_node_types"].pop("gpu_worker")
    out["available_node_types"].update(extra)
    return out


def test_cluster_yaml_passes_ray_schema() -> None:
    config = _load()
    validate_config(prepare_config(copy.deepcopy(config)))
    assert config["provider"]["type"] == "gcp"
    assert config["available_node_types"]["gpu_worker"]["resources"]["GPU"] == 1


def test_documented_tpu_variant_passes_ray_schema() -> None:
    config = _tpu_variant(_load())
    assert config["available_node_types"]["tpu_worker"]["resources"]["TPU"] == 4
    validate_config(prepare_config(config))


def test_schema_check_is_real() -> None:
    config = _load()
    config["available_node_types"]["gpu_worker"]["not_a_ray_key"] = 1
    with pytest.raises(jsonschema.ValidationError):
        validate_config(prepare_config(config))


def test_installs_package_binds_dashboard_locally_and_holds_no_credentials() -> None:
    config = _load()
    setup = " ".join(config["setup_commands"])
    assert "pip install" in setup and "~/xfer" in setup
    head = " ".join(config["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head and "RAY_USAGE_STATS_ENABLED=0" in head
    text = CLUSTER.read_text()
    assert not re.search(r"(private_key|BEGIN [A-Z ]*PRIVATE KEY|client_secret|password)", text)
    assert config["provider"]["project_id"] is None
