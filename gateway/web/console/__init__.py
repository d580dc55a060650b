"""The anti-fraud desk: a web console on the gateway's HTTP endpoint (see :class:`Console`)."""

from gateway.web.console.routes import Console

__all__ = ["Console"]
