"""``python -m wecom_bot`` runs the ``wecom-bot`` command."""

from .cli.main import main

main()
