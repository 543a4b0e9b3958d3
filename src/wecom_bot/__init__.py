"""wecom-bot: typed SDK, CLI, alert gateway and emulator for WeCom group-robot webhooks."""
