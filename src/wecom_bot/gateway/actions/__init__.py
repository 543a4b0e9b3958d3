"""Acting on an alert group from the message itself: signed links and the pages they open.

``tokens`` signs and checks what a link may do, ``links`` writes the links a message carries,
``alertmanager`` creates silences, ``pages`` serves ``/act/{token}``.
"""
