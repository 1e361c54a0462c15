"""Offline face, attention and expression cues from one camera frame with OpenCV Haar cascades.

``HaarEngine.analyze(rgb)`` turns one RGB frame into an ``Observation``: the face box (if any),
whether it was found by the frontal or the profile detector, how many eyes and whether a smile were
found inside it, and the frame's mean brightness. It holds no state over time: debouncing, looking
away, nods and shakes are decided from a sequence of observations in ``events.py``.

Cost (2-core CPU shared with other work, one OpenCV thread): see ``presence bench perception``.
The frontal pass runs on a 240-wide copy (~7-12 ms at 320x240); eyes and smile run inside a found
face (~2-3 ms); the two profile passes (~15-20 ms, on a 160-wide copy) run only when no frontal face
is found and the caller asks for them. Larger frames are first shrunk to ``analysis_width`` so the
cost does not grow with the camera resolution.

Limits of Haar cascades (honest list):

* Faces are found only when roughly upright (about +-15 degrees of roll) and roughly frontal
  (about +-30 degrees of yaw) or in clear profile; three-quarter views are often missed, so a user
  who turns their head may briefly read as *absent* rather than *looking away*.
* Faces smaller than about 37 px (frontal) or 56 px (profile) in a 320-wide frame are not
  searched for: a user far from the camera reads as absent. A user who comes back in profile is
  seen only once they face the camera (profile search runs only while the user is present).
* "Looking away" is inferred from the head (profile, or the face far off-centre), never from the
  gaze: eyes turned away with the head still are not seen.
* The eye cascade finds open eyes unreliably behind glasses and in dim light; "eyes closed" means
  "no eye found in a frontal face for a while" and should be treated as a weak hint.
* The smile cascade fires on wide, teeth-showing smiles; a closed-mouth smile is usually missed and
  beards or moustaches give false smiles.
* Backlight, heavy shadows and low light (mean luma under ~45/255) make every detector unreliable;
  the engine reports brightness and contrast so that the tracker can give the reason no face was
  seen (*too dark*, *covered*) along with *absent*.
* Posters and photographs of faces count as faces; several people pick the largest face.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from presence.framework.errors import InputError

_CASCADES = {
    "frontal": "haarcascade_frontalface_default.xml",
    "profile": "haarcascade_profileface.xml",
    "eye": "haarcascade_eye.xml",
    "smile": "haarcascade_smile.xml",
}


@dataclass(frozen=True)
class FaceBox:
    """A face box in normalised frame coordinates (0..1, origin top-left).

    Attributes:
        x: Left edge as a fraction of the frame width.
        y: Top edge as a fraction of the frame height.
        w: Width as a fraction of the frame width.
        h: Height as a fraction of the frame height.
    """

    x: float
    y: float
    w: float
    h: float

    @property
    def cx(self) -> float:
        """Horizontal centre (fraction of the width)."""
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        """Vertical centre (fraction of the height)."""
        return self.y + self.h / 2


@dataclass(frozen=True)
class Observation:
    """What the engine saw in one frame.

    Attributes:
        face: The largest face, or ``None`` when no face was found.
        frontal: The face was found by the frontal detector (facing the camera).
        profile: The face was found only by the profile detector (head turned).
        eyes: Open eyes found in the upper half of a frontal face (0 when not searched).
        smile: A smile was found in the lower half of a frontal face.
        luma: Mean brightness of the frame, 0..255.
        contrast: Standard deviation of the frame's brightness, 0..128 (near 0: a uniform image,
            such as a covered lens).
        ms: Time the analysis took, in milliseconds.
    """

    face: FaceBox | None
    frontal: bool = False
    profile: bool = False
    eyes: int = 0
    smile: bool = False
    luma: float = 128.0
    contrast: float = 64.0
    ms: float = 0.0


def to_rgb(image: bytes, size: tuple[int, int], fmt: str | None) -> np.ndarray:
    """View raw frame bytes as an ``(h, w, 3)`` uint8 RGB array.

    Args:
        image: Raw pixel bytes as carried by a pipecat image frame.
        size: ``(width, height)``.
        fmt: ``RGB`` (default when ``None``), ``RGBA``, ``BGR``, ``BGRA`` or ``L``/``GRAY``.

    Raises:
        InputError: The format is not one of these, or the byte count does not match the size.
    """
    width, height = size
    fmt = (fmt or "RGB").upper()
    channels = {"RGB": 3, "BGR": 3, "RGBA": 4, "BGRA": 4, "L": 1, "GRAY": 1}.get(fmt)
    if channels is None:
        raise InputError(f"camera frame format {fmt!r} is not supported; send RGB, RGBA, BGR or L")
    if len(image) != width * height * channels:
        raise InputError(
            f"camera frame has {len(image)} bytes, expected {width}x{height}x{channels} for {fmt}"
        )
    arr = np.frombuffer(image, dtype=np.uint8).reshape(height, width, channels)
    if fmt == "RGB":
        return arr
    if fmt == "BGR":
        return arr[:, :, ::-1]
    if fmt == "RGBA":
        return arr[:, :, :3]
    if fmt == "BGRA":
        return arr[:, :, 2::-1]
    return np.repeat(arr, 3, axis=2)


@dataclass
class HaarEngine:
    """Haar-cascade face/eyes/smile detector for single frames.

    Thread-safe for one caller at a time (the processor runs at most one analysis at once).

    Attributes:
        analysis_width: Frames wider than this are shrunk to it first (eyes and smile run here).
        detect_width: Width of the copy the frontal detector runs on (smaller is faster).
        profile_width: Width of the copy the profile detector runs on.
        min_face_px: Smallest face searched for, in pixels of the copy searched (28 px at 240 wide
            is ~37 px at 320; at ``profile_width`` 160 it is ~56 px at 320).
        profile: Also run the profile detector (both directions) when no frontal face is found.
        threads: OpenCV worker threads. This is a process-wide OpenCV setting; 1 keeps the
            detector from competing with the event loop and audio for every core.
    """

    analysis_width: int = 320
    detect_width: int = 240
    profile_width: int = 160
    min_face_px: int = 28
    profile: bool = True
    threads: int = 1
    _cascades: dict[str, cv2.CascadeClassifier] = field(default_factory=dict, repr=False)

    def __post_init__(self):
        for key, filename in _CASCADES.items():
            cascade = cv2.CascadeClassifier(cv2.data.haarcascades + filename)
            if cascade.empty():
                raise InputError(
                    f"OpenCV cascade {filename} is missing: install opencv-python-headless<5"
                )
            self._cascades[key] = cascade
        if self.threads > 0:
            cv2.setNumThreads(self.threads)

    def analyze(
        self, rgb: np.ndarray, *, search_profile: bool = True, hint: FaceBox | None = None
    ) -> Observation:
        """Find the user's face and its cues in one RGB frame.

        Args:
            rgb: ``(h, w, 3)`` uint8 RGB image.
            search_profile: Run the profile detector when no frontal face is found. The processor
                passes False while the user is absent: a returning user is found when they face
                the camera, and an empty room costs only the frontal pass.
            hint: The face found in the previous sample: the frontal detector first searches a
                window twice its size at nearby scales (a few ms) before the whole frame.

        Returns:
            The observation; ``face`` is ``None`` when no face was found.
        """
        start = time.perf_counter()
        gray = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
        height, width = gray.shape
        if width > self.analysis_width:
            scale = self.analysis_width / width
            gray = cv2.resize(
                gray,
                (self.analysis_width, max(1, round(height * scale))),
                interpolation=cv2.INTER_AREA,
            )
            height, width = gray.shape
        mean, std = cv2.meanStdDev(gray)
        luma, contrast = float(mean[0, 0]), float(std[0, 0])
        equalized = cv2.equalizeHist(gray)
        box = self._near(equalized, hint) if hint is not None else None
        frontal, profile = box is not None, False
        if box is None:
            box, frontal, profile = self._find_face(equalized, search_profile)
        eyes, smile = 0, False
        if box is not None and frontal:
            eyes, smile = self._face_cues(equalized, box)
        face = None
        if box is not None:
            x, y, w, h = box
            face = FaceBox(x / width, y / height, w / width, h / height)
        ms = (time.perf_counter() - start) * 1000
        return Observation(face, frontal, profile, eyes, smile, luma, contrast, ms)

    def _find_face(
        self, gray: np.ndarray, search_profile: bool
    ) -> tuple[tuple[int, int, int, int] | None, bool, bool]:
        """Largest face in analysis-size pixels, and which detector found it."""
        found, scale = self._detect("frontal", gray, self.detect_width, 1.15, flip=False)
        frontal, profile = len(found) > 0, False
        if not frontal and self.profile and search_profile:
            found, scale = self._detect("profile", gray, self.profile_width, 1.2, flip=False)
            if len(found) == 0:  # the cascade knows one direction: mirror for the other
                found, scale = self._detect("profile", gray, self.profile_width, 1.2, flip=True)
            profile = len(found) > 0
        if len(found) == 0:
            return None, False, False
        x, y, w, h = max(found, key=lambda b: b[2] * b[3])
        box = tuple(int(round(v / scale)) for v in (x, y, w, h))
        return box, frontal, profile  # type: ignore[return-value]

    def _near(self, gray: np.ndarray, hint: FaceBox) -> tuple[int, int, int, int] | None:
        """Frontal face near the previous one (window twice its size, 0.7-1.4x its size)."""
        height, width = gray.shape
        w, h = hint.w * width, hint.h * height
        x0, y0 = max(0, int(hint.x * width - w / 2)), max(0, int(hint.y * height - h / 2))
        x1, y1 = (
            min(width, int(hint.x * width + 1.5 * w)),
            min(height, int(hint.y * height + 1.5 * h)),
        )
        side = int(min(w, h))
        if side < 16 or x1 - x0 < side or y1 - y0 < side:
            return None
        found = self._cascades["frontal"].detectMultiScale(
            gray[y0:y1, x0:x1],
            1.1,
            4,
            minSize=(int(side * 0.7),) * 2,
            maxSize=(int(side * 1.4),) * 2,
        )
        if len(found) == 0:
            return None
        x, y, bw, bh = max(found, key=lambda b: b[2] * b[3])
        return int(x + x0), int(y + y0), int(bw), int(bh)

    def _detect(self, key: str, gray: np.ndarray, width: int, step: float, *, flip: bool):
        """Run one cascade on a copy of ``gray`` at most ``width`` wide; boxes in that copy."""
        height, full = gray.shape
        scale = min(1.0, width / full)
        small = gray
        if scale < 1.0:
            small = cv2.resize(
                gray, (width, max(1, round(height * scale))), interpolation=cv2.INTER_AREA
            )
        if flip:
            small = cv2.flip(small, 1)
        size = (self.min_face_px, self.min_face_px)
        boxes = self._cascades[key].detectMultiScale(small, step, 4, minSize=size)
        if flip:
            boxes = [(small.shape[1] - x - w, y, w, h) for (x, y, w, h) in boxes]
        return list(boxes), scale

    def _face_cues(self, gray: np.ndarray, box: tuple[int, int, int, int]) -> tuple[int, bool]:
        """Open eyes in the upper half and a smile in the lower half of a frontal face."""
        x, y, w, h = box
        roi = gray[max(0, y) : y + h, max(0, x) : x + w]
        if roi.shape[0] < 16 or roi.shape[1] < 16:
            return 0, False
        rh, rw = roi.shape
        upper = roi[int(rh * 0.15) : int(rh * 0.55)]
        eye_min = max(6, rw // 8)
        eyes = self._cascades["eye"].detectMultiScale(upper, 1.1, 5, minSize=(eye_min, eye_min))
        lower = roi[int(rh * 0.55) :]
        smiles = self._cascades["smile"].detectMultiScale(
            lower, 1.5, 15, minSize=(max(8, rw // 4), max(4, rw // 10))
        )
        return min(len(eyes), 2), len(smiles) > 0
