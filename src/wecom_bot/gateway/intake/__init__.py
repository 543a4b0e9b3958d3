"""Intake: the stage where an alert enters the gateway.

:mod:`.endpoints` answers the webhook requests, reading bodies within bounds (:mod:`.bodies`)
and journaling each one before it answers 200; :mod:`.inbox` turns journal entries into
notifications; :mod:`.sources` reads the senders' formats (Alertmanager, Grafana, any JSON);
:mod:`.ingest` routes and renders them into the outbox.
"""
