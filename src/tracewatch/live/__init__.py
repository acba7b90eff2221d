"""LTTng live transport: read CTF metadata and packets from lttng-relayd as they come.

``url`` parses ``net://`` URLs, ``protocol`` packs and unpacks the viewer protocol,
``client`` holds the socket client (``LiveClient``) and the session follower
(``LiveSession``) whose ``poll()`` yields ``LiveItem`` values.  Decoding the CTF
bytes is the reader's job (``tracewatch.ctf``): ``source`` (``LiveTraceSet``, not
imported here) joins both into time-ordered event batches. Apart from ``source``, this
package imports only the standard library.
"""

from .client import (
    AttachError,
    CommandError,
    ConnectionLostError,
    Inactivity,
    LiveClient,
    LiveError,
    LiveItem,
    LiveSession,
    LiveSessionGroup,
    MetadataUpdate,
    NewStream,
    NotConnectedError,
    Packet,
    SessionBusyError,
    SessionEnd,
    SessionNotFoundError,
    StreamEnd,
)
from .protocol import (
    AttachStatus,
    DetachStatus,
    Index,
    IndexStatus,
    MetadataStatus,
    NewStreamsStatus,
    PacketStatus,
    ProtocolError,
    SessionInfo,
    StreamInfo,
    ViewerFlag,
)
from .url import DEFAULT_LIVE_PORT, LiveUrl, parse_live_url

__all__ = [
    "DEFAULT_LIVE_PORT",
    "AttachError",
    "AttachStatus",
    "CommandError",
    "ConnectionLostError",
    "DetachStatus",
    "Inactivity",
    "Index",
    "IndexStatus",
    "LiveClient",
    "LiveError",
    "LiveItem",
    "LiveSession",
    "LiveSessionGroup",
    "LiveUrl",
    "MetadataStatus",
    "MetadataUpdate",
    "NewStream",
    "NewStreamsStatus",
    "NotConnectedError",
    "Packet",
    "PacketStatus",
    "ProtocolError",
    "SessionBusyError",
    "SessionEnd",
    "SessionInfo",
    "SessionNotFoundError",
    "StreamEnd",
    "StreamInfo",
    "ViewerFlag",
    "parse_live_url",
]
