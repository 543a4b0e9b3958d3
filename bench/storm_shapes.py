"""The storms of issue 25 as label sets: Kubernetes pods, blackbox probes, hosts.

Pure and deterministic (a fixed seed): the benchmark posts them to a real Alertmanager, and a
test can reuse them, e.g. as the examples of a property test. Each generator returns one
label dict per alert (``alertname`` included); :func:`alert_annotations` gives the
annotations the benchmark posts with an alert.

* :func:`pod_storm`: kube-prometheus-shaped, 1,000 alerts ``KubePodCrashLooping`` and a few
  ``KubePodNotReady`` over 10 namespaces; Deployment pods named
  ``<workload>-<replicaset hash>-<suffix>`` as Kubernetes names them (hash and suffix drawn
  from its alphabet of consonants and digits), a few StatefulSet pods ``<name>-<n>``;
  about 19 % critical.
* :func:`url_storm`: 500 ``ProbeFailed`` alerts of the blackbox exporter, each ``instance``
  a URL of 75 to 85 bytes.
* :func:`host_storm`: 1,000 ``HostDown`` alerts ``instance=host-N:9100``.
"""

from __future__ import annotations

import random
from collections.abc import Mapping

__all__ = [
    "CONTEXT_LABELS",
    "K8S_ALPHABET",
    "NAMESPACES",
    "alert_annotations",
    "host_storm",
    "pod_storm",
    "url_storm",
]

K8S_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
"""The characters Kubernetes draws generated name parts from (no vowels, no 0/1/3)."""

NAMESPACES = (
    "shop-prod", "shop-canary", "shop-staging", "payments-prod", "payments-canary",
    "search-prod", "auth-prod", "data-pipeline", "monitoring", "kube-system",
)  # fmt: skip

CONTEXT_LABELS: Mapping[str, tuple[str, ...]] = {
    "KubePodCrashLooping": ("namespace",),
    "KubePodNotReady": ("namespace",),
    "ProbeFailed": (),
    "HostDown": (),
}
"""The labels a reader needs besides the identity, per alertname (issue 25's definition of
an alert identifiable with its context)."""

# Deployments per namespace family, with the containers of their pods.
_WORKLOADS = {
    "shop": ("checkout", "cart", "catalog", "frontend", "recommendations", "inventory-sync"),
    "payments": ("payments-api", "ledger-writer", "fraud-scorer", "refunds"),
    "search": ("search-api", "indexer", "query-suggest"),
    "auth": ("auth-server", "token-issuer", "session-store-proxy"),
    "data": ("ingest-worker", "spark-driver", "airflow-scheduler"),
    "monitoring": ("grafana", "kube-state-metrics", "alertmanager-webhook"),
    "kube": ("coredns", "metrics-server", "cluster-autoscaler"),
}
_STATEFULSETS = {
    "shop-prod": "redis-cart", "payments-prod": "postgres-ledger", "data-pipeline": "kafka",
}  # fmt: skip
_CLUSTERS = {"prod": "eu-west-1-prod", "canary": "eu-west-1-prod", "staging": "eu-west-1-staging"}
_SIDECARS = ("istio-proxy", "log-shipper")


def _family(namespace: str) -> str:
    return namespace.split("-", 1)[0]


def _cluster(namespace: str) -> str:
    return _CLUSTERS["staging" if "staging" in namespace else "prod"]


def _draw(rng: random.Random, length: int) -> str:
    return "".join(rng.choice(K8S_ALPHABET) for _ in range(length))


def _severities(rng: random.Random, count: int, critical: float, warning: float) -> list[str]:
    """``count`` severities, exactly ``round(count × share)`` of critical and warning, shuffled."""
    n_critical, n_warning = round(count * critical), round(count * warning)
    out = ["critical"] * n_critical + ["warning"] * n_warning
    out += ["info"] * (count - len(out))
    rng.shuffle(out)
    return out


def pod_storm(count: int = 1000, not_ready: int = 24, seed: int = 25) -> list[dict[str, str]]:
    """A kube-prometheus storm: ``count`` alerts, ``not_ready`` of them ``KubePodNotReady``
    and the others ``KubePodCrashLooping``; every pod distinct, ~19 % critical.

    Labels: ``alertname``, ``namespace``, ``pod``, ``container`` (CrashLooping only),
    ``job=kube-state-metrics``, ``cluster``, ``severity``, and the constant labels a
    kube-prometheus rule carries (``endpoint``, ``service``, ``prometheus``).
    """
    rng = random.Random(seed)
    pods: list[tuple[str, str, str]] = []  # namespace, pod, container
    seen: set[tuple[str, str]] = set()
    # Namespaces are uneven in a real storm: the first ones crash the most.
    weights = [10 - i for i in range(len(NAMESPACES))]
    while len(pods) < count:
        namespace = rng.choices(NAMESPACES, weights)[0]
        if namespace in _STATEFULSETS and rng.random() < 0.04:
            name = _STATEFULSETS[namespace]
            pod, container = f"{name}-{rng.randrange(12)}", name
        else:
            workload = rng.choice(_WORKLOADS[_family(namespace)])
            # one or two ReplicaSets per Deployment (a rollout in progress), seeded by name
            rs_rng = random.Random(f"{seed}/{namespace}/{workload}/{rng.randrange(2)}")
            pod_hash = _draw(rs_rng, rs_rng.choice((9, 10)))
            pod = f"{workload}-{pod_hash}-{_draw(rng, 5)}"
            container = workload if rng.random() < 0.85 else rng.choice(_SIDECARS)
        if (namespace, pod) in seen:
            continue
        seen.add((namespace, pod))
        pods.append((namespace, pod, container))
    severities = _severities(rng, count, 0.19, 0.49)
    step = max(count // max(not_ready, 1), 1)
    ready_alerts = set(range(step // 2, count, step)[:not_ready])
    out: list[dict[str, str]] = []
    for i, ((namespace, pod, container), severity) in enumerate(zip(pods, severities, strict=True)):
        crash = i not in ready_alerts
        labels = {
            "alertname": "KubePodCrashLooping" if crash else "KubePodNotReady",
            "namespace": namespace,
            "pod": pod,
            "job": "kube-state-metrics",
            "cluster": _cluster(namespace),
            "severity": severity,
            "endpoint": "http",
            "service": "kube-prometheus-stack-kube-state-metrics",
            "prometheus": "monitoring/kube-prometheus-stack-prometheus",
        }
        if crash:
            labels["container"] = container
        out.append(labels)
    return out


def url_storm(count: int = 500, seed: int = 25) -> list[dict[str, str]]:
    """A blackbox storm: ``count`` alerts ``ProbeFailed``, each ``instance`` a URL of 75 to 85
    bytes (tenant health checks behind three edge gateways), ``job=blackbox``, severities
    mixed (~20 % critical)."""
    rng = random.Random(seed)
    shapes = (
        "https://edge-gw-eu.example-corp.internal/tenants/tenant-{n:04d}/healthz?deep=true",
        "https://edge-gw-us.example-corp.internal/tenants/tenant-{n:04d}/healthz?deep=true",
        "https://edge-gw-apac.example-corp.internal/tenants/tenant-{n:04d}/readyz?full=1",
        "https://edge-gw-eu.example-corp.internal/tenants/tenant-{n:04d}/api/v2/status?probe=1",
    )
    share = (0.5, 0.3, 0.1, 0.1)
    urls: list[str] = []
    for shape, part in zip(shapes, share, strict=True):
        # tenants are numbered, with a few gaps (decommissioned ones)
        numbers = [n for n in range(int(count * part * 1.1)) if rng.random() > 0.05]
        urls += [shape.format(n=n) for n in numbers[: round(count * part)]]
    urls = urls[:count]
    assert len(urls) == count and all(75 <= len(u.encode()) <= 85 for u in urls), "URL sizes"
    severities = _severities(rng, count, 0.2, 0.5)
    return [
        {
            "alertname": "ProbeFailed",
            "instance": url,
            "job": "blackbox",
            "module": "http_2xx",
            "severity": severity,
        }
        for url, severity in zip(urls, severities, strict=True)
    ]


def host_storm(count: int = 1000, seed: int = 25) -> list[dict[str, str]]:
    """A host storm: ``count`` alerts ``HostDown`` on ``instance=host-N:9100``,
    ``job=node-exporter``, severities mixed (~19 % critical)."""
    rng = random.Random(seed)
    severities = _severities(rng, count, 0.19, 0.49)
    return [
        {
            "alertname": "HostDown",
            "instance": f"host-{n}:9100",
            "job": "node-exporter",
            "severity": severity,
        }
        for n, severity in enumerate(severities)
    ]


def alert_annotations(labels: Mapping[str, str]) -> dict[str, str]:
    """The ``summary`` and ``description`` an alert of these storms is posted with."""
    name = labels["alertname"]
    if name == "KubePodCrashLooping":
        where = f"{labels['namespace']}/{labels['pod']}"
        return {
            "summary": "Pod is crash looping.",
            "description": f"Container {labels['container']} of pod {where} keeps restarting "
            "(CrashLoopBackOff) for 15 minutes.",
        }
    if name == "KubePodNotReady":
        where = f"{labels['namespace']}/{labels['pod']}"
        return {
            "summary": "Pod has been in a non-ready state for more than 15 minutes.",
            "description": f"Pod {where} has not been ready for 15 minutes.",
        }
    if name == "ProbeFailed":
        return {
            "summary": "Blackbox probe failed",
            "description": f"The probe of {labels['instance']} failed (module http_2xx).",
        }
    return {
        "summary": "Host unreachable",
        "description": f"{labels['instance']} has not answered a scrape for 5 minutes.",
    }
