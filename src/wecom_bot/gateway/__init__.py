"""The alert gateway: Alertmanager, Grafana and any JSON webhook into WeCom groups."""
