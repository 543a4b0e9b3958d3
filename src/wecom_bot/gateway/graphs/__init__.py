"""Alert graphs (issue 28): Prometheus charts drawn for an alert, Grafana images passed
through, both sent as image messages after the alert's text."""
