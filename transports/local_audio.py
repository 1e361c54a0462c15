"""The ``local`` transport: this machine's microphone and speakers through PyAudio. Audio only.

Needs the ``local-audio`` extra (PyAudio, which needs PortAudio: ``apt-get install portaudio19-dev``
before ``pip install 'presence[local-audio]'``). Use headphones: there is no echo cancellation, so
the persona would hear itself through the speakers.
"""

from __future__ import annotations

from presence.framework.optional import require
from presence.transports.factory import LocalSpec


def build_local_audio_transport(
    spec: LocalSpec, *, audio_in_sample_rate: int = 16000, audio_out_sample_rate: int = 24000
):
    """A pipecat ``LocalAudioTransport`` on the devices of ``spec``.

    Raises:
        DependencyError: PyAudio is not installed; the message names the extra.
    """
    require("pyaudio", extra="local-audio", package="PyAudio")
    from pipecat.transports.local.audio import LocalAudioTransport, LocalAudioTransportParams

    return LocalAudioTransport(
        LocalAudioTransportParams(
            audio_in_enabled=True,
            audio_in_sample_rate=audio_in_sample_rate,
            audio_out_enabled=True,
            audio_out_sample_rate=audio_out_sample_rate,
            input_device_index=spec.input_device,
            output_device_index=spec.output_device,
        )
    )
