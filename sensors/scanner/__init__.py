"""The site-scan sensor: ``trustwatch sensor scan HOST``. See :mod:`sensors.scanner.registry`
for the checks and :mod:`sensors.scanner.runner` for how a scan runs."""
