"""The Wav2Lip tier: the public Wav2Lip generator on user-supplied weights, pasted into the warp.

Architecture: Prajwal et al., "A Lip Sync Expert Is All You Need" (ACM MM 2020) — the generator of
the public ``Wav2Lip`` repository, layer for layer (``width=1.0``; 36 M parameters), so its released
checkpoints load strictly. ``width`` scales every channel count, which only tests use (tiny random
checkpoints); the loader infers it from the checkpoint.

Front end as in that repository: 16 kHz audio, pre-emphasis 0.97, STFT (n_fft 800, hop 200,
window 800), 80 Slaney mel bands 55–7600 Hz, dB with ``ref_level_db`` 20 and ``min_level_db``
-100, scaled to [-4, 4]; each video frame sees the 16 mel frames (0.2 s) from its own time on,
hence ``look_ahead_s = 0.2``. The face crop (96×96, lower half masked, plus the reference) goes in;
the predicted lower half is feathered back into the portrait, which the warp engine then moves
(blinks, sway, nods). Real time on a GPU; on CPU it runs below real time and the processor repeats
frames to keep the audio whole.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from presence.framework.errors import ConfigError
from presence.processors.renderer.engines.base import FrameState
from presence.processors.renderer.engines.layout import Layout
from presence.processors.renderer.engines.motion import MouthShape
from presence.processors.renderer.engines.warp import WarpEngine

MEL_STEP = 16
FACE = 96


class Conv2d(nn.Module):
    """Conv + BatchNorm (+ residual) + ReLU, as in the public repository."""

    def __init__(self, cin, cout, kernel_size, stride, padding, residual=False):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.Conv2d(cin, cout, kernel_size, stride, padding), nn.BatchNorm2d(cout)
        )
        self.act = nn.ReLU()
        self.residual = residual

    def forward(self, x):
        """Apply the block."""
        out = self.conv_block(x)
        return self.act(out + x if self.residual else out)


class Conv2dTranspose(nn.Module):
    """ConvTranspose + BatchNorm + ReLU."""

    def __init__(self, cin, cout, kernel_size, stride, padding, output_padding=0):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ConvTranspose2d(cin, cout, kernel_size, stride, padding, output_padding),
            nn.BatchNorm2d(cout),
        )
        self.act = nn.ReLU()

    def forward(self, x):
        """Apply the block."""
        return self.act(self.conv_block(x))


class Wav2Lip(nn.Module):
    """The Wav2Lip generator. ``width`` scales channel counts (1.0 = the published model)."""

    def __init__(self, width: float = 1.0):
        super().__init__()
        c = {n: max(2, int(round(n * width))) for n in (16, 32, 64, 128, 256, 384, 512)}

        def res(n, k=3):
            return Conv2d(c[n], c[n], k, 1, 1, residual=True)

        self.face_encoder_blocks = nn.ModuleList(
            [
                nn.Sequential(Conv2d(6, c[16], 7, 1, 3)),
                nn.Sequential(Conv2d(c[16], c[32], 3, 2, 1), res(32), res(32)),
                nn.Sequential(Conv2d(c[32], c[64], 3, 2, 1), res(64), res(64), res(64)),
                nn.Sequential(Conv2d(c[64], c[128], 3, 2, 1), res(128), res(128)),
                nn.Sequential(Conv2d(c[128], c[256], 3, 2, 1), res(256), res(256)),
                nn.Sequential(Conv2d(c[256], c[512], 3, 2, 1), res(512)),
                nn.Sequential(Conv2d(c[512], c[512], 3, 1, 0), Conv2d(c[512], c[512], 1, 1, 0)),
            ]
        )
        self.audio_encoder = nn.Sequential(
            Conv2d(1, c[32], 3, 1, 1),
            res(32),
            res(32),
            Conv2d(c[32], c[64], 3, (3, 1), 1),
            res(64),
            res(64),
            Conv2d(c[64], c[128], 3, 3, 1),
            res(128),
            res(128),
            Conv2d(c[128], c[256], 3, (3, 2), 1),
            res(256),
            Conv2d(c[256], c[512], 3, 1, 0),
            Conv2d(c[512], c[512], 1, 1, 0),
        )
        self.face_decoder_blocks = nn.ModuleList(
            [
                nn.Sequential(Conv2d(c[512], c[512], 1, 1, 0)),
                nn.Sequential(Conv2dTranspose(2 * c[512], c[512], 3, 1, 0), res(512)),
                nn.Sequential(Conv2dTranspose(2 * c[512], c[512], 3, 2, 1, 1), res(512), res(512)),
                nn.Sequential(
                    Conv2dTranspose(c[512] + c[256], c[384], 3, 2, 1, 1), res(384), res(384)
                ),
                nn.Sequential(
                    Conv2dTranspose(c[384] + c[128], c[256], 3, 2, 1, 1), res(256), res(256)
                ),
                nn.Sequential(
                    Conv2dTranspose(c[256] + c[64], c[128], 3, 2, 1, 1), res(128), res(128)
                ),
                nn.Sequential(Conv2dTranspose(c[128] + c[32], c[64], 3, 2, 1, 1), res(64), res(64)),
            ]
        )
        self.output_block = nn.Sequential(
            Conv2d(c[64] + c[16], c[32], 3, 1, 1), nn.Conv2d(c[32], 3, 1, 1, 0), nn.Sigmoid()
        )

    def forward(self, audio: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
        """``audio`` B×1×80×16 mel, ``face`` B×6×96×96 in [0, 1] → B×3×96×96 in [0, 1]."""
        feats = []
        x = face
        for block in self.face_encoder_blocks:
            x = block(x)
            feats.append(x)
        x = self.audio_encoder(audio)
        for block in self.face_decoder_blocks:
            x = torch.cat((block(x), feats.pop()), dim=1)
        return self.output_block(x)


def load_wav2lip(checkpoint: str | Path, device: str | torch.device = "cpu") -> Wav2Lip:
    """Load a Wav2Lip checkpoint strictly (``module.`` prefixes of DataParallel are stripped).

    Raises:
        ConfigError: The file is missing, unreadable, or its weights do not match the
            architecture (the message names missing and unexpected keys).
    """
    path = Path(checkpoint)
    field = "stages.renderer.checkpoint"
    if not path.is_file():
        raise ConfigError(
            f"{path}: no such checkpoint; point `checkpoint` at a Wav2Lip .pth file", field=field
        )
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ConfigError(
            f"{path}: not a readable torch checkpoint ({exc.__class__.__name__})", field=field
        ) from exc
    state = blob.get("state_dict", blob) if isinstance(blob, dict) else None
    if not isinstance(state, dict) or not state:
        raise ConfigError(f"{path}: no state_dict in the checkpoint", field=field)
    state = {k.removeprefix("module."): v for k, v in state.items()}
    first = state.get("face_encoder_blocks.0.0.conv_block.0.weight")
    width = float(first.shape[0]) / 16 if isinstance(first, torch.Tensor) else 1.0
    model = Wav2Lip(width)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [
        f"{k} {tuple(state[k].shape)}≠{tuple(own[k].shape)}"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or wrong:
        raise ConfigError(
            f"{path} does not match the Wav2Lip generator: {len(missing)} missing keys {missing[:2]}, "
            f"{len(unexpected)} unexpected {unexpected[:2]}, {len(wrong)} wrong shapes {wrong[:2]}; "
            "use a checkpoint of the public Wav2Lip generator (not the discriminator)",
            field=field,
        )
    model.load_state_dict(state, strict=True)
    return model.to(device).eval()


def _mel_basis(sr=16000, n_fft=800, n_mels=80, fmin=55.0, fmax=7600.0) -> np.ndarray:
    """Slaney-style mel filterbank (as librosa's default), ``n_mels × (n_fft//2+1)``."""

    def hz_to_mel(f):
        f = np.asarray(f, dtype=np.float64)
        lin = f / (200.0 / 3)
        log = 15.0 + np.log(np.maximum(f, 1e-9) / 1000.0) / (np.log(6.4) / 27.0)
        return np.where(f >= 1000.0, log, lin)

    def mel_to_hz(m):
        m = np.asarray(m, dtype=np.float64)
        return np.where(
            m >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0)), m * 200.0 / 3
        )

    freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    fdiff, ramps = np.diff(edges), edges[:, None] - freqs[None, :]
    lower, upper = -ramps[:-2] / fdiff[:-1, None], ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    return (weights * (2.0 / (edges[2 : n_mels + 2] - edges[:n_mels]))[:, None]).astype(np.float32)


class Wav2LipEngine(WarpEngine):
    """Wav2Lip mouth + warp motion. ``checkpoint`` is a path, or pass ``model`` directly."""

    name = "wav2lip"
    look_ahead_s = MEL_STEP / 80.0

    def __init__(
        self,
        size=512,
        fps=25,
        sample_rate=24000,
        seed=0,
        device="cpu",
        checkpoint: str | Path | None = None,
        model: Wav2Lip | None = None,
    ):
        super().__init__(size, fps, sample_rate, seed, device)
        if model is None and checkpoint is None:
            raise ConfigError(
                "the wav2lip renderer needs `checkpoint: path/to/wav2lip.pth`",
                field="stages.renderer.checkpoint",
            )
        self._model = (model or load_wav2lip(checkpoint, self.device)).to(self.device).eval()
        self._mel = torch.from_numpy(_mel_basis()).to(self.device)
        self._hann = torch.hann_window(800, device=self.device)

    def _load(self, replica) -> None:
        super()._load(replica)
        lay = Layout.of(self.width, self.height)
        fx, fy, fw, fh = replica.geometry["face"]
        x0, y0 = lay.px(fx, fy)
        x1, y1 = lay.px(fx + fw, min(fy + fh * 1.12, 1.0))
        self._box = (int(y0), int(y1), int(x0), int(x1))
        self._neutral = self._src.clone()
        crop = self._neutral[:, :, self._box[0] : self._box[1], self._box[2] : self._box[3]]
        ref = (
            torch.nn.functional.interpolate(
                crop, size=(FACE, FACE), mode="bilinear", align_corners=False
            )
            / 255
        )
        masked = ref.clone()
        masked[:, :, FACE // 2 :] = 0
        self._face_in = torch.cat([masked, ref], dim=1)
        h, w = self._box[1] - self._box[0], self._box[3] - self._box[2]
        yy = np.linspace(0, 1, h)[:, None]
        xx = np.linspace(-1, 1, w)[None, :]
        feather = (
            np.clip((yy - 0.5) / 0.12, 0, 1)
            * np.clip((1 - np.abs(xx)) / 0.15, 0, 1)
            * np.clip((1 - yy) / 0.08, 0, 1)
        )
        self._feather = torch.from_numpy(feather.astype(np.float32)).to(self.device)

    def mel(self, window: np.ndarray) -> torch.Tensor:
        """80×16 normalised mel of the first 0.2 s of ``window`` (float32 at the engine's rate)."""
        n16 = int(round(window.size * 16000 / self.sample_rate))
        audio = (
            np.interp(np.linspace(0, window.size - 1, max(n16, 1)), np.arange(window.size), window)
            if window.size
            else np.zeros(1)
        )
        audio = np.append(audio[0], audio[1:] - 0.97 * audio[:-1]).astype(np.float32)
        spec = torch.stft(
            torch.from_numpy(audio).to(self.device),
            800,
            200,
            800,
            self._hann,
            center=True,
            pad_mode="reflect" if audio.size > 400 else "constant",
            return_complex=True,
        ).abs()
        db = 20 * torch.log10(torch.clamp(self._mel @ spec, min=1e-5)) - 20
        mel = torch.clamp(8 * (db + 100) / 100 - 4, -4, 4)
        if mel.shape[1] < MEL_STEP:
            mel = torch.nn.functional.pad(mel, (0, MEL_STEP - mel.shape[1]), value=-4.0)
        return mel[:, :MEL_STEP]

    @torch.inference_mode()
    def _draw(self, state: FrameState) -> np.ndarray:
        src = self._neutral
        if state.speaking:
            pred = self._model(self.mel(state.window)[None, None], self._face_in)
            y0, y1, x0, x1 = self._box
            patch = torch.nn.functional.interpolate(
                pred * 255, size=(y1 - y0, x1 - x0), mode="bilinear", align_corners=False
            )
            src = self._neutral.clone()
            region = src[:, :, y0:y1, x0:x1]
            region.mul_(1 - self._feather).add_(patch * self._feather)
        self._src = src
        quiet = FrameState(
            state.index, MouthShape(0.0, 0.0), state.blink, state.head, state.window, state.speaking
        )
        return super()._draw(quiet)
