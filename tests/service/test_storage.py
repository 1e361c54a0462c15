"""Recordings uploaded to an S3-compatible bucket: moto's S3 server on loopback speaks the wire protocol."""

from __future__ import annotations

import socket
import sys
import threading

import boto3
import httpx
import numpy as np
import pytest
from helpers.service import make_settings
from loguru import logger
from moto.server import ThreadedMotoServer

from presence.framework.errors import ConfigError
from presence.service import storage
from presence.service.settings import ServiceSettings
from presence.service.storage import check_storage, recording_key, store_recording
from presence.transports.file.writer import Mp4Writer

SECRET_KEY = "fake-secret-key-never-logged"
BUCKET = "presence-recordings"


@pytest.fixture(scope="module")
def s3_endpoint():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(autouse=True)
def aws_env(monkeypatch, tmp_path):
    """Fake credentials from the environment; no profile, shared file or instance metadata."""
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "fake-access-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def mp4(tmp_path):
    """A real half-second H.264/AAC recording."""
    writer = Mp4Writer(tmp_path / "conv1.mp4", width=64, height=64, fps=10, sample_rate=16000)
    for i in range(5):
        writer.add_image(np.full((64, 64, 3), 40 * i, np.uint8), i / 10)
        writer.advance_video(i / 10)
    writer.write_audio((np.sin(np.arange(8000) / 5) * 8000).astype(np.int16))
    writer.close(end_s=0.5)
    return tmp_path / "conv1.mp4"


@pytest.fixture
def warnings():
    messages: list[str] = []
    sink = logger.add(lambda m: messages.append(str(m)), level="WARNING")
    yield messages
    logger.remove(sink)


def s3_settings(tmp_path, endpoint, **kwargs) -> ServiceSettings:
    return make_settings(tmp_path, s3_bucket=BUCKET, s3_endpoint_url=endpoint, **kwargs)


def make_bucket(endpoint: str, name: str = BUCKET):
    client = boto3.session.Session().client("s3", endpoint_url=endpoint)
    client.create_bucket(Bucket=name)
    return client


async def test_upload_keeps_bytes_and_type_and_the_presigned_url_serves_them(
    tmp_path, s3_endpoint, mp4
):
    client = make_bucket(s3_endpoint)
    result = await store_recording(s3_settings(tmp_path, s3_endpoint), mp4, "conv1")

    key = "recordings/conv1.mp4"
    assert result["s3_bucket"] == BUCKET and result["s3_key"] == key
    assert result["s3_uri"] == f"s3://{BUCKET}/{key}"
    obj = client.get_object(Bucket=BUCKET, Key=key)
    assert obj["ContentType"] == "video/mp4"
    assert obj["Body"].read() == mp4.read_bytes()
    download = httpx.get(result["s3_url"])
    assert download.status_code == 200 and download.content == mp4.read_bytes()
    assert "X-Amz-Expires=604800" in result["s3_url"]
    assert mp4.is_file()  # the local copy stays (served by GET /v2/conversations/{id}/recording)


async def test_missing_bucket_gives_s3_error_and_keeps_the_file(
    tmp_path, s3_endpoint, mp4, warnings
):
    before = mp4.read_bytes()
    settings = make_settings(tmp_path, s3_bucket="no-such-bucket", s3_endpoint_url=s3_endpoint)
    result = await store_recording(settings, mp4, "conv1")

    assert list(result) == ["s3_error"] and "NoSuchBucket" in result["s3_error"]
    assert mp4.read_bytes() == before
    assert any("no-such-bucket" in m for m in warnings)
    assert not any(SECRET_KEY in m for m in warnings)


async def test_no_bucket_means_local_file_only(tmp_path, mp4):
    assert await store_recording(make_settings(tmp_path), mp4, "conv1") == {}
    assert mp4.is_file()


class FlakyFront:
    """A loopback TCP front of the S3 server: closes the first ``drop`` connections, forwards the rest."""

    def __init__(self, target: str, drop: int):
        self._target = ("127.0.0.1", int(target.rsplit(":", 1)[1]))
        self._drop = drop
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self._open: list[socket.socket] = []
        self._closed = threading.Event()
        self.connections = 0
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self._closed.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            if self.connections <= self._drop:
                conn.close()
                continue
            upstream = socket.create_connection(self._target)
            self._open += [conn, upstream]
            for a, b in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self._closed.set()
        self._listener.close()
        for s in self._open:
            s.close()


@pytest.fixture
def fast_retries(monkeypatch):
    monkeypatch.setattr(storage, "RETRY_DELAYS_S", (0.01, 0.01))


async def test_an_endpoint_that_stays_down_is_tried_a_bounded_number_of_times(
    tmp_path, s3_endpoint, mp4, fast_retries, warnings
):
    front = FlakyFront(s3_endpoint, drop=10**6)
    try:
        result = await store_recording(s3_settings(tmp_path, front.url), mp4, "conv1")
    finally:
        front.close()
    assert "s3_error" in result and mp4.is_file()
    assert front.connections == storage.REQUEST_ATTEMPTS * (len(storage.RETRY_DELAYS_S) + 1)
    assert any(BUCKET in m for m in warnings)


async def test_an_endpoint_back_after_a_failed_upload_gets_the_recording(
    tmp_path, s3_endpoint, mp4, fast_retries
):
    client = make_bucket(s3_endpoint, "flaky-bucket")
    front = FlakyFront(s3_endpoint, drop=storage.REQUEST_ATTEMPTS)  # the whole first upload fails
    try:
        settings = make_settings(tmp_path, s3_bucket="flaky-bucket", s3_endpoint_url=front.url)
        result = await store_recording(settings, mp4, "conv2")
    finally:
        front.close()
    assert result["s3_key"] == "recordings/conv2.mp4", result
    body = client.get_object(Bucket="flaky-bucket", Key="recordings/conv2.mp4")["Body"].read()
    assert body == mp4.read_bytes()


async def test_without_boto3_a_configured_bucket_fails_at_start_and_uploads_report_it(
    tmp_path, mp4, monkeypatch
):
    monkeypatch.setitem(sys.modules, "boto3", None)  # import boto3 now raises ImportError
    check_storage(make_settings(tmp_path))  # no bucket: boto3 is not needed
    settings = make_settings(tmp_path, s3_bucket=BUCKET)
    with pytest.raises(ConfigError) as err:
        check_storage(settings)
    assert "PRESENCE_S3_BUCKET" in str(err.value) and "pip install 'presence[s3]'" in str(err.value)
    result = await store_recording(settings, mp4, "conv1")
    assert "presence[s3]" in result["s3_error"] and mp4.is_file()


def test_settings_come_from_the_environment_and_the_prefix_is_a_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("PRESENCE_API_KEYS", "k1")
    for var in ("PRESENCE_S3_BUCKET", "PRESENCE_S3_PREFIX", "PRESENCE_S3_ENDPOINT_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PRESENCE_S3_REGION", "eu-central-1")
    plain = ServiceSettings.from_env(data_dir=tmp_path)
    assert plain.s3_bucket is None and recording_key(plain, "c") == "recordings/c.mp4"

    monkeypatch.setenv("PRESENCE_S3_BUCKET", "b")
    monkeypatch.setenv("PRESENCE_S3_PREFIX", "/calls/2025")
    monkeypatch.setenv("PRESENCE_S3_ENDPOINT_URL", "http://127.0.0.1:9000")
    s = ServiceSettings.from_env(data_dir=tmp_path)
    assert (s.s3_bucket, s.s3_endpoint_url, s.s3_region) == (
        "b",
        "http://127.0.0.1:9000",
        "eu-central-1",
    )
    assert recording_key(s, "c") == "calls/2025/c.mp4"
    monkeypatch.setenv("PRESENCE_S3_PREFIX", "")
    assert recording_key(ServiceSettings.from_env(data_dir=tmp_path), "c") == "c.mp4"


class RecordedCallLauncher:
    """A session that has recorded ``mp4`` and reports it when the call ends."""

    def __init__(self, mp4):
        self.mp4 = mp4

    async def start(self, spec, events):
        events.joined()
        return events

    async def end(self, events, reason):
        events.recording(str(self.mp4), 0.5)
        events.left()

    def join_app(self, conversation_id):
        return None


def test_a_recorded_call_lands_in_the_bucket_and_the_webhook_says_where(tmp_path, s3_endpoint, mp4):
    from fastapi.testclient import TestClient
    from helpers.service import KEY_A, Receiver

    from presence.service.app import create_app

    client = make_bucket(s3_endpoint)
    receiver = Receiver()
    receiver.up()
    app = create_app(s3_settings(tmp_path, s3_endpoint), launcher=RecordedCallLauncher(mp4))
    try:
        with TestClient(app, headers={"x-api-key": KEY_A}) as api:
            cid = api.post(
                "/v2/conversations",
                json={"callback_url": receiver.url, "properties": {"enable_recording": True}},
            ).json()["conversation_id"]
            ended = api.post(f"/v2/conversations/{cid}/end").json()
            events = receiver.wait_for(
                lambda evs: any(e["event_type"] == "application.recording_ready" for e in evs)
            )
    finally:
        receiver.down()
    ready = next(e for e in events if e["event_type"] == "application.recording_ready")
    ready = ready["properties"]
    key = recording_key(s3_settings(tmp_path, s3_endpoint), cid)
    assert ready["s3_uri"] == f"s3://{BUCKET}/{key}" and ready["path"] == str(mp4)
    assert ended["recording_storage"]["s3_key"] == key
    stored = client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert stored == mp4.read_bytes()
    assert httpx.get(ready["s3_url"]).content == stored
