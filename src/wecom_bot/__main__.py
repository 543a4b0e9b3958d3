"""``python -m wecom_bot`` runs the ``wecom-bot`` command."""

from .cli.launcher import main

main()
