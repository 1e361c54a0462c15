"""Registry entries: renderer providers build processors from config and reject bad params."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from presence.framework.errors import ConfigError
from presence.framework.persona import Persona
from presence.framework.registry import BuildContext, VideoSettings, get, provider_names
from presence.processors.renderer.processor import RendererProcessor

pytestmark = pytest.mark.background


def ctx_for(tmp_path, replica_path, fast=False):
    persona = Persona(name="Guide", replica=replica_path)
    return BuildContext(
        persona=persona, base_dir=tmp_path, video=VideoSettings(48, 32, 25), fast=fast
    )


def test_providers_are_registered():
    assert {"still", "warp", "wav2lip"} <= set(provider_names("renderer"))


@pytest.mark.parametrize("name", ["still", "warp"])
def test_builds_at_the_transport_size(tmp_path, portrait_path, name):
    provider = get("renderer", name)
    params = provider.params(cache_dir=tmp_path / "cache")
    proc = provider.factory(params, ctx_for(tmp_path, portrait_path))
    assert isinstance(proc, RendererProcessor)
    assert (proc._engine.width, proc._engine.height) == (48, 32)
    frame = proc._engine.next_frames(1)[0]
    assert frame.image.shape == (32, 48, 3)


def test_fast_runs_render_offline(tmp_path, portrait_path):
    provider = get("renderer", "still")
    proc = provider.factory(
        provider.params(cache_dir=tmp_path), ctx_for(tmp_path, portrait_path, fast=True)
    )
    assert proc._realtime is False


def test_bad_params_and_missing_replica(tmp_path, portrait_path):
    warp = get("renderer", "warp")
    with pytest.raises(ValidationError):
        warp.params(device="tpu")
    with pytest.raises(ValidationError):
        warp.params(colour="blue")
    with pytest.raises(ConfigError, match="replica"):
        warp.factory(warp.params(), ctx_for(tmp_path, None))
    wav2lip = get("renderer", "wav2lip")
    with pytest.raises(ConfigError, match="no such checkpoint"):
        wav2lip.factory(
            wav2lip.params(checkpoint="missing.pth", device="cpu"), ctx_for(tmp_path, portrait_path)
        )
