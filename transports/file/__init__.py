"""File transport: a WAV (and optional camera clip) in, the persona's MP4 plus a JSON report out."""

from presence.transports.file.clock import SessionClock
from presence.transports.file.media import CameraReader, load_wav
from presence.transports.file.transport import FileTransport
from presence.transports.file.writer import Mp4Writer

__all__ = ["CameraReader", "FileTransport", "Mp4Writer", "SessionClock", "load_wav"]
