"""The SIP side of the gateway: transports, registrar, location service and the proxy (asyncio)."""

from gateway.sip.proxy import SipProxy

__all__ = ["SipProxy"]
