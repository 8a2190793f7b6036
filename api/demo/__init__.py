"""``trustwatch demo``: the main job in one command, on the lab captures bundled in ``lab/``.

:mod:`api.demo.run` starts a receiver for the coordination centre, the service and a sensor per
capture, each a real process on 127.0.0.1, and reports the flows ingested, the alerts and why
they fired, and the deliveries the receiver confirmed.
"""
