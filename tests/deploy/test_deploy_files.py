"""The deployment files: they parse, agree with each other and with the gateway they deploy.

Structural checks in Python (no kubectl, docker or systemd needed), plus two that run real
code: the gateway config shipped in the ConfigMap and the docs goes through ``load_config``,
and the image's HEALTHCHECK command runs against a real gateway over HTTP.
"""

from __future__ import annotations

import json
import re
import shlex
import socket
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from typer.testing import CliRunner

from tests.servers import serve
from wecom_bot.cli.main import build_app
from wecom_bot.gateway.app import create_app
from wecom_bot.gateway.config import GatewayConfig, load_config

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"
CONTAINERFILE = DEPLOY / "container" / "Containerfile"
UNIT = DEPLOY / "systemd" / "wecom-bot-gateway.service"
DOCS = ROOT / "docs" / "deployment.md"
# uvicorn's graceful wait (cli/gateway.py) and the dispatcher's wait for in-flight sends.
GRACEFUL_SECONDS = 15 + 10


# ------------------------------------------------------------------------ kubernetes


def manifests() -> dict[tuple[str, str], dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text("utf-8")):
            key = (doc["kind"], doc["metadata"]["name"])
            assert key not in found, f"{path.name}: {key} defined twice"
            found[key] = doc
    return found


@pytest.fixture(scope="module")
def k8s() -> dict[tuple[str, str], dict[str, Any]]:
    return manifests()


def gateway_container(k8s: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    containers = k8s[("Deployment", "wecom-bot-gateway")]["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def test_every_manifest_parses_and_the_kustomization_lists_them() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text("utf-8"))
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    # The example Secret stays out: applying must never overwrite a real key with a placeholder.
    assert set(kustomization["resources"]) == files - {"secret.example.yaml"}
    for path in K8S.glob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text("utf-8")):
            assert doc["apiVersion"] and doc["kind"], path.name
            if doc["kind"] != "Kustomization":
                assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", doc["metadata"]["name"])


def named_port(container: dict[str, Any], port: str | int) -> int:
    if isinstance(port, int):
        return port
    matches = [p["containerPort"] for p in container["ports"] if p.get("name") == port]
    assert matches, f"no container port named {port!r}"
    return int(matches[0])


def test_deployment_probes_and_replicas(k8s: dict[tuple[str, str], dict[str, Any]]) -> None:
    deployment = k8s[("Deployment", "wecom-bot-gateway")]
    assert deployment["spec"]["replicas"] == 2
    container = gateway_container(k8s)
    live = container["livenessProbe"]["httpGet"]
    ready = container["readinessProbe"]["httpGet"]
    assert live["path"] == "/healthz" and ready["path"] == "/readyz"
    assert named_port(container, live["port"]) == named_port(container, ready["port"]) == 9095
    pod = deployment["spec"]["template"]["spec"]
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    assert pod["terminationGracePeriodSeconds"] > int(pre_stop[1]) + GRACEFUL_SECONDS
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == containerfile_uid() != 0
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]


def test_the_configmap_config_loads_and_its_secrets_come_from_the_secret(
    k8s: dict[tuple[str, str], dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    text = k8s[("ConfigMap", "wecom-bot-gateway-config")]["data"]["gateway.yaml"]
    config = load_config(text=text)
    container = gateway_container(k8s)
    assert config.listen_host == "0.0.0.0"
    assert config.listen_port == named_port(container, "http")
    # The config is mounted where the container reads it.
    args = container["args"]
    config_path = Path(args[args.index("--config") + 1])
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {
        v["name"]: v
        for v in k8s[("Deployment", "wecom-bot-gateway")]["spec"]["template"]["spec"]["volumes"]
    }
    config_volume = next(n for n, v in volumes.items() if "configMap" in v)
    assert volumes[config_volume]["configMap"]["name"] == "wecom-bot-gateway-config"
    assert config_path == Path(mounts[config_volume]) / "gateway.yaml"
    # Redis is the Service of redis.yaml.
    store = urlsplit(config.store)
    assert store.scheme == "redis"
    service = k8s[("Service", str(store.hostname))]
    assert store.port in [p["port"] for p in service["spec"]["ports"]]
    # No key in the ConfigMap; every *_env it names is set from the Secret.
    from_secret = {
        e["name"]: (e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
        for e in container["env"]
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    needed = [bot.key_env for bot in config.bots.values()] + [config.auth.bearer_token_env]
    assert all(bot.key is None and bot.key_file is None for bot in config.bots.values())
    assert needed and set(needed) <= set(from_secret)
    secret_doc = yaml.safe_load((K8S / "secret.example.yaml").read_text("utf-8"))
    for env_name in needed:
        secret_name, key = from_secret[str(env_name)]
        assert secret_doc["metadata"]["name"] == secret_name
        monkeypatch.setenv(str(env_name), secret_doc["stringData"][key])
    assert config.bot_keys() == {"ops": ("REPLACE-WITH-THE-WEBHOOK-KEY",)}
    assert config.auth.token() == "REPLACE-WITH-A-LONG-RANDOM-TOKEN"


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def test_services_and_policies_select_the_right_pods(
    k8s: dict[tuple[str, str], dict[str, Any]],
) -> None:
    gateway_pods = k8s[("Deployment", "wecom-bot-gateway")]["spec"]["template"]["metadata"][
        "labels"
    ]
    redis_set = k8s[("StatefulSet", "wecom-bot-redis")]
    redis_pods = redis_set["spec"]["template"]["metadata"]["labels"]
    gateway_service = k8s[("Service", "wecom-bot-gateway")]
    assert selects(gateway_service["spec"]["selector"], gateway_pods)
    assert not selects(gateway_service["spec"]["selector"], redis_pods)
    assert (
        named_port(gateway_container(k8s), gateway_service["spec"]["ports"][0]["targetPort"])
        == 9095
    )
    for name in ("wecom-bot-redis", redis_set["spec"]["serviceName"]):
        assert selects(k8s[("Service", name)]["spec"]["selector"], redis_pods)
    assert k8s[("Service", redis_set["spec"]["serviceName"])]["spec"]["clusterIP"] == "None"
    policy = k8s[("NetworkPolicy", "wecom-bot-redis")]["spec"]
    assert selects(policy["podSelector"]["matchLabels"], redis_pods)
    (rule,) = policy["ingress"]
    assert selects(rule["from"][0]["podSelector"]["matchLabels"], gateway_pods)
    assert [p["port"] for p in rule["ports"]] == [6379]
    budget = k8s[("PodDisruptionBudget", "wecom-bot-gateway")]["spec"]
    assert selects(budget["selector"]["matchLabels"], gateway_pods)
    assert budget["minAvailable"] < k8s[("Deployment", "wecom-bot-gateway")]["spec"]["replicas"]


def test_redis_persists_what_it_acknowledged(k8s: dict[tuple[str, str], dict[str, Any]]) -> None:
    redis_set = k8s[("StatefulSet", "wecom-bot-redis")]
    (container,) = redis_set["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    options = {args[i]: args[i + 1] for i in range(1, len(args) - 1) if args[i].startswith("--")}
    assert args[0] == "redis-server"
    assert options["--appendonly"] == "yes"
    assert options["--appendfsync"] == "everysec"
    assert options["--maxmemory-policy"] == "noeviction"
    claims = {c["metadata"]["name"] for c in redis_set["spec"]["volumeClaimTemplates"]}
    mounted = {m["mountPath"] for m in container["volumeMounts"] if m["name"] in claims}
    assert options["--dir"] in mounted


# ------------------------------------------------------------------------ container image


def containerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    lines = [
        line for line in CONTAINERFILE.read_text("utf-8").splitlines() if not line.startswith("#")
    ]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    out = []
    for line in joined.splitlines():
        if line.strip():
            instruction, _, rest = line.strip().partition(" ")
            out.append((instruction.upper(), rest.strip()))
    return out


def final_stage() -> list[tuple[str, str]]:
    steps = containerfile()
    last_from = max(i for i, (instruction, _) in enumerate(steps) if instruction == "FROM")
    return steps[last_from:]


def containerfile_uid() -> int:
    users = [rest for instruction, rest in final_stage() if instruction == "USER"]
    assert users, "the final stage sets no USER: the gateway would run as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit(), "a numeric uid lets Kubernetes' runAsNonRoot check it"
    return int(uid)


def test_containerfile_structure() -> None:
    steps = containerfile()
    assert [rest.split()[0] for i, rest in steps if i == "FROM"] == ["python:3.11-slim"] * 2
    assert containerfile_uid() != 0
    final = dict(final_stage())
    assert final["EXPOSE"] == "9095"
    assert json.loads(final["VOLUME"]) == ["/var/lib/wecom-bot"]
    runs = " ".join(rest for instruction, rest in steps if instruction == "RUN")
    assert 'pip install ".[gateway,redis]"' in runs
    assert "/healthz" in final["HEALTHCHECK"]
    # Everything COPY takes from the build context exists, and the ignore file lets it through.
    ignore = (DEPLOY / "container" / "Containerfile.dockerignore").read_text("utf-8").split()
    for instruction, rest in steps:
        if instruction == "COPY" and not rest.startswith("--from"):
            for source in rest.split()[:-1]:
                assert (ROOT / source).exists(), source
                assert f"!{source.rstrip('/')}" in {i.rstrip("/") for i in ignore}, source


def healthcheck_code() -> str:
    command = dict(final_stage())["HEALTHCHECK"].split(" CMD ", 1)[1]
    argv = json.loads(command)
    assert argv[:2] == ["python", "-c"]
    return str(argv[2])


def run_healthcheck(port: int) -> int:
    code = healthcheck_code().replace("127.0.0.1:9095", f"127.0.0.1:{port}")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=30).returncode


def test_healthcheck_passes_on_a_live_gateway_and_fails_otherwise() -> None:
    assert "127.0.0.1:9095/healthz" in healthcheck_code()
    config = GatewayConfig.model_validate(
        {
            "store": "memory://",
            "base_url": "http://127.0.0.1:9",
            "auth": {"bearer_token": "t0ken-for-the-test"},
            "bots": {"ops": {"key": "00000000-0000-4000-8000-000000000000"}},
        }
    )
    with serve(create_app(config)) as url:
        port = int(url.rsplit(":", 1)[1])
        # Probes carry no credentials: /healthz and /readyz must answer without them.
        assert httpx.get(f"{url}/healthz").status_code == 200
        assert httpx.get(f"{url}/readyz").status_code == 200
        assert httpx.get(f"{url}/metrics").status_code == 401
        assert run_healthcheck(port) == 0
    unhealthy = FastAPI()

    @unhealthy.get("/healthz")
    async def sick() -> JSONResponse:
        return JSONResponse({"status": "broken"}, status_code=503)

    with serve(unhealthy) as url:
        assert run_healthcheck(int(url.rsplit(":", 1)[1])) != 0
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    assert run_healthcheck(closed) != 0


# ------------------------------------------------------------------------ systemd


def unit() -> dict[str, dict[str, list[str]]]:
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in UNIT.read_text("utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), defaultdict(list))
            continue
        key, sep, value = line.partition("=")
        assert sep, f"not key=value: {line!r}"
        current[key.strip()].append(value.strip())
    return sections


def test_systemd_unit() -> None:
    service = unit()["Service"]

    def one(key: str) -> str:
        assert len(service[key]) == 1, key
        return service[key][0]

    assert re.fullmatch(r"/(usr/)?bin/kill -(s )?HUP \$MAINPID", one("ExecReload"))
    assert one("ProtectSystem") == "strict"
    assert one("DynamicUser") == "yes" or one("User") not in ("", "root", "0")
    assert one("StateDirectory") == "wecom-bot"
    assert one("EnvironmentFile").startswith("/etc/wecom-bot/")
    assert one("Restart") == "on-failure"
    assert one("NoNewPrivileges") == "yes"
    assert one("CapabilityBoundingSet") == ""
    assert int(one("TimeoutStopSec")) > GRACEFUL_SECONDS
    # The gateway speaks sd_notify (wecom_bot.gateway.sdnotify): readiness and a watchdog.
    assert one("Type") == "notify" and one("NotifyAccess") == "main"
    assert 10 <= int(one("WatchdogSec").removesuffix("s")) <= 120
    exec_start = shlex.split(one("ExecStart"))
    assert exec_start[0].endswith("/wecom-bot") and exec_start[1] == "gateway"
    assert unit()["Install"]["WantedBy"] == ["multi-user.target"]


def test_command_lines_use_real_cli_options(k8s: dict[tuple[str, str], dict[str, Any]]) -> None:
    help_text = CliRunner().invoke(build_app(), ["gateway", "--help"], terminal_width=200).output
    command_lines = {
        "systemd": shlex.split(unit()["Service"]["ExecStart"][0])[1:],
        "Containerfile": json.loads(dict(final_stage())["CMD"]),
        "Deployment": gateway_container(k8s)["args"],
    }
    for where, argv in command_lines.items():
        assert argv[0] == "gateway", where
        for option in (a for a in argv if a.startswith("--")):
            assert option in help_text, f"{where}: {option} is not an option of `wecom-bot gateway`"


# ------------------------------------------------------------------------ docs


def test_the_configs_in_the_docs_load_and_the_systemd_one_stores_in_the_state_directory() -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", DOCS.read_text("utf-8"), flags=re.S)
    configs = [load_config(text=block) for block in blocks if "\nbots:" in "\n" + block]
    assert configs, "docs/deployment.md shows no gateway config"
    state = Path("/var/lib") / unit()["Service"]["StateDirectory"][0]
    sqlite = [c for c in configs if c.store.startswith("sqlite:")]
    assert sqlite and all(Path(c.store.removeprefix("sqlite:///")).parent == state for c in sqlite)
