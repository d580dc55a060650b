"""pcap capture of the gateway's own SMPP and SIP traffic, off unless configured.

Every TCP chunk the gateway reads or writes (SMPP towards ESMEs and towards the SMSC, SIP over TCP)
and every SIP datagram is recorded as the Ethernet/IP/TCP or UDP frame a sniffer would have seen, with
the sockets' real addresses and ports: TCP connections with their handshake, consistent sequence and
acknowledgement numbers and their close (``tcp``), so that Wireshark and tshark follow each stream and
decode it as SMPP or SIP. Frames are packed with ``struct`` (``frames``) and written by a thread, in
batches, to size-rotated files (``writer``). When capture is off the transports hold ``None`` and pay
one comparison per read or write.
"""

from gateway.capture.config import CaptureConfig
from gateway.capture.tcp import TcpFlow
from gateway.capture.writer import PcapCapture, UdpTap

__all__ = ["CaptureConfig", "PcapCapture", "TcpFlow", "UdpTap"]
