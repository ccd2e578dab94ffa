"""cluster.yaml passes Ray's own cluster-config schema (as a whole, GPU-only, TPU-only)."""

from __future__ import annotations

import copy
import re

import jsonschema
import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from sweeps.config import load_config
from tests.conftest import REPO

CLUSTER = REPO / "cluster.yaml"


def _load() -> dict:
    return yaml.safe_load(CLUSTER.read_text())


def _only(config: dict, worker: str) -> dict:
    """The cluster with one worker node type (GPU-only or TPU-only variant)."""
    out = copy.deepcopy(config)
    types = out["available_node_types"]
    for name in [n for n in types if n not in ("head", worker)]:
        types.pop(name)
    return out


def test_cluster_yaml_passes_ray_schema() -> None:
    config = _load()
    validate_config(prepare_config(copy.deepcopy(config)))
    assert config["provider"]["type"] == "gcp"
    assert config["available_node_types"]["gpu_worker"]["resources"]["GPU"] == 1


@pytest.mark.parametrize("worker", ["gpu_worker", "tpu_worker"])
def test_each_accelerator_variant_passes_ray_schema(worker: str) -> None:
    validate_config(prepare_config(_only(_load(), worker)))


def test_tpu_node_type_is_one_v2_8_host_with_rays_tpu_resources() -> None:
    tpu = _load()["available_node_types"]["tpu_worker"]
    # Ray's names: TPU = chips (a v2-8 has 4), accelerator_type:TPU-<GENERATION>, the pod head
    assert tpu["resources"]["TPU"] == 4
    assert tpu["resources"]["accelerator_type:TPU-V2"] == 1
    assert tpu["resources"]["TPU-v2-8-head"] == 1
    assert tpu["node_config"]["acceleratorType"] == "v2-8"
    assert any('[tpu]"' in c and "pip install" in c for c in tpu["worker_setup_commands"])


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


def test_on_premise_variant_is_loopback_with_token_auth_and_passes_ray_schema() -> None:
    """cluster-local.yaml (Ray's local provider; .ci/ray-up runs its whole up/submit/down cycle)."""
    config = yaml.safe_load((REPO / "cluster-local.yaml").read_text())
    validate_config(prepare_config(copy.deepcopy(config)))
    assert config["provider"] == {"type": "local", "head_ip": "127.0.0.1", "worker_ips": []}
    starts = config["head_start_ray_commands"] + config["worker_start_ray_commands"]
    assert sum("RAY_AUTH_MODE=token" in c and "ray start" in c for c in starts) == 2
    assert "--dashboard-host=127.0.0.1" in " ".join(config["head_start_ray_commands"])
    assert list(config["file_mounts"]) == ["~/.ray/auth_token"]  # the token, nothing else
    study = load_config(str(REPO / ".ci" / "ray-up-study.yaml"))  # the study .ci/ray-up submits
    assert study.name == "rayup"


ENV = "/opt/xfer-env"  # the Python environment with xfer on every node of both clusters


def _commands(config: dict, key: str) -> list[str]:
    """The commands under ``key``, at the top level and in each node type."""
    out = list(config.get(key, []))
    for node in config.get("available_node_types", {}).values():
        out += node.get(key, [])
    return out


@pytest.mark.parametrize("name", ["cluster.yaml", "cluster-local.yaml"])
def test_ray_and_jobs_run_on_one_named_python_environment(name: str) -> None:
    """Issue 22: a job's bare ``python`` was the login shell's (ModuleNotFoundError on a fresh
    head), and ``ray down``'s bare ``ray stop`` found no ``ray``. Both clusters start every
    ``ray`` from /opt/xfer-env by absolute path, put its bin/ first on the login PATH
    (~/.bashrc, which Ray's SSH commands source), and document the job as
    ``/opt/xfer-env/bin/python -m sweeps.grid`` (absolute: ``ray job submit`` quotes a ``~``)."""
    text = (REPO / name).read_text()
    config = yaml.safe_load(text)
    starts = config["head_start_ray_commands"] + config["worker_start_ray_commands"]
    for command in starts:
        words = command.replace(";", " ").split()
        rays = [w for w in words if w.endswith("ray") and not w.startswith("--")]
        assert rays and all(w == f"{ENV}/bin/ray" for w in rays), command
    setup = " ".join(_commands(config, "setup_commands") + _commands(config,
                                                                     "worker_setup_commands"))
    assert f"export PATH={ENV}/bin:$PATH" in setup and ">> ~/.bashrc" in setup
    if name == "cluster.yaml":  # installs into the environment, on GPU and TPU nodes alike
        for key in ("setup_commands", "worker_setup_commands"):
            assert any(f"{ENV}/bin/python -m pip install" in c and "-e" in c
                       for c in _commands(config, key)), key
    else:  # your own machines: refuses to start without it
        assert f"test -x {ENV}/bin/ray" in setup and "exit 1" in setup
    assert f"{ENV}/bin/python -m sweeps.grid" in text
    assert not re.search(r"--\s+python -m sweeps", text)


def test_ci_ray_up_installs_what_it_needs_and_submits_on_the_environment() -> None:
    """``.ci/ray-up`` installs rsync, ssh and sshd when missing, mounts the active venv where
    cluster-local.yaml expects it, and submits the job with that environment's python."""
    script = (REPO / ".ci" / "ray-up").read_text()
    for package in ("rsync", "openssh-client", "openssh-server"):
        assert f"missing+=({package})" in script
    assert f'mount --bind "$XFER_RAY_UP_ENV" {ENV}' in script
    assert f"-- {ENV}/bin/python -m sweeps.grid" in script
