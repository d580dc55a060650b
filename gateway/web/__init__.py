"""The gateway's one HTTP endpoint: ``/metrics``, ``/healthz``, ``/readyz`` (and, later, the operator console).

``server`` (aiohttp) is imported only by a gateway whose configuration has an ``http`` section: a
gateway without one does not pay for loading aiohttp at every start.
"""
