"""Recordings in an S3-compatible bucket (AWS S3, MinIO, Cloudflare R2, ...) through boto3.

The MP4 is always written to ``settings.recordings_dir`` first and stays there. When
``settings.s3_bucket`` is set, :func:`store_recording` also uploads it to
``s3://<bucket>/<prefix>/<conversation_id>.mp4`` (content type ``video/mp4``) and returns where
it is, with a presigned GET URL. Without a bucket it does nothing.

Credentials are never read from presence settings: boto3's own chain supplies them
(``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN``, ``AWS_PROFILE`` and the
shared files, an instance or task role). Nothing here logs them.

Failures never lose the recording and never raise: the result is ``{"s3_error": reason}`` and a
warning names the bucket. Retries are bounded at two levels: botocore retries each request
(``PutObject``, each multipart part) up to ``REQUEST_ATTEMPTS`` times in its standard mode
(connection errors, 5xx, throttling); an upload that still fails with such a transient error is
started again after each of ``RETRY_DELAYS_S``. Credential, permission and missing-bucket
errors are not retried.

Limits: an upload that fails is not retried later (the local file and the ``s3_error`` are what
remain); a presigned URL made from temporary credentials (a role, ``AWS_SESSION_TOKEN``) stops
working when those credentials expire, even before ``URL_EXPIRES_S``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlsplit

from loguru import logger

from presence.framework.errors import ConfigError
from presence.service.settings import ServiceSettings

CONTENT_TYPE = "video/mp4"
URL_EXPIRES_S = 7 * 24 * 3600  # the longest a SigV4 presigned URL may live
REQUEST_ATTEMPTS = 3  # per S3 request, botocore's standard retry mode
RETRY_DELAYS_S = (1.0, 2.0)  # before the 2nd and 3rd upload of a transiently failing file
INSTALL_HINT = "pip install 'presence[s3]'"
_THROTTLING = {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "TooManyRequests"}


def check_storage(settings: ServiceSettings) -> None:
    """Check at start-up that a configured bucket can be used (boto3 is importable).

    Args:
        settings: The service settings.

    Raises:
        ConfigError: ``PRESENCE_S3_BUCKET`` is set but boto3 is not installed.
    """
    if not settings.s3_bucket:
        return
    try:
        import boto3  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            f"recordings should go to bucket {settings.s3_bucket!r} but boto3 is not installed: "
            f"run `{INSTALL_HINT}` or unset PRESENCE_S3_BUCKET",
            field="PRESENCE_S3_BUCKET",
        ) from exc
    where = urlsplit(settings.s3_endpoint_url).hostname if settings.s3_endpoint_url else "AWS"
    logger.info(
        f"recordings are also uploaded to s3://{settings.s3_bucket}/"
        f"{recording_key(settings, '')} ({where})"
    )


def recording_key(settings: ServiceSettings, conversation_id: str) -> str:
    """The object key of a conversation's recording: ``<prefix>/<conversation_id>.mp4``.

    The prefix is a folder: surrounding slashes are ignored, an empty prefix is the bucket root.
    """
    prefix = settings.s3_prefix.strip("/")
    name = f"{conversation_id}.mp4" if conversation_id else ""
    return f"{prefix}/{name}" if prefix else name


async def store_recording(
    settings: ServiceSettings, path: str | Path, conversation_id: str
) -> dict:
    """Upload a finished recording to the configured bucket (see the module docstring).

    The upload runs in a worker thread; the event loop only waits for it.

    Args:
        settings: The service settings (``s3_*`` fields).
        path: The local MP4; it is left in place whatever happens.
        conversation_id: Names the object (``<prefix>/<conversation_id>.mp4``).

    Returns:
        ``{}`` when no bucket is configured; after an upload ``s3_bucket``, ``s3_key``,
        ``s3_uri`` (``s3://bucket/key``) and ``s3_url`` (presigned GET, valid ``URL_EXPIRES_S``);
        after a failure ``{"s3_error": reason}``.
    """
    bucket = settings.s3_bucket
    if not bucket:
        return {}
    path = Path(path)
    key = recording_key(settings, conversation_id)
    attempt = 0
    while True:  # bounded: returns once RETRY_DELAYS_S is used up
        attempt += 1
        try:
            url = await asyncio.to_thread(_upload, settings, path, key)
        except Exception as exc:  # every failure becomes s3_error: the recording must survive
            reason = _reason(exc)
            if attempt > len(RETRY_DELAYS_S) or not _transient(exc):
                logger.warning(
                    f"recording {path.name} not uploaded to bucket {bucket} after {attempt} "
                    f"attempt(s): {reason}; the local file is kept"
                )
                return {"s3_error": reason}
            delay = RETRY_DELAYS_S[attempt - 1]
            logger.debug(f"upload to bucket {bucket} failed ({reason}); again in {delay} s")
            await asyncio.sleep(delay)
            continue
        logger.info(f"recording {path.name} uploaded to s3://{bucket}/{key}")
        return {"s3_bucket": bucket, "s3_key": key, "s3_uri": f"s3://{bucket}/{key}", "s3_url": url}


def _client(settings: ServiceSettings):
    """A fresh S3 client (own session: boto3's default session is not thread-safe)."""
    import boto3
    from botocore.config import Config

    options: dict = {
        "signature_version": "s3v4",  # presigned URLs otherwise default to SigV2 in some regions
        "retries": {"mode": "standard", "total_max_attempts": REQUEST_ATTEMPTS},
        "connect_timeout": 10,
        "read_timeout": 60,
    }
    if settings.s3_endpoint_url:
        # self-hosted S3 APIs rarely resolve bucket subdomains, and many reject the CRC
        # checksums boto3 >= 1.36 adds by default
        options["s3"] = {"addressing_style": "path"}
        if "request_checksum_calculation" in Config.OPTION_DEFAULTS:
            options["request_checksum_calculation"] = "when_required"
            options["response_checksum_validation"] = "when_required"
    return boto3.session.Session().client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        region_name=settings.s3_region,
        config=Config(**options),
    )


def _upload(settings: ServiceSettings, path: Path, key: str) -> str:
    """Upload ``path`` to ``key`` and return a presigned GET URL (blocking)."""
    if not path.is_file():
        raise FileNotFoundError(f"recording file {path} not found")
    try:
        client = _client(settings)
    except ImportError as exc:
        raise RuntimeError(f"boto3 is not installed: run `{INSTALL_HINT}`") from exc
    client.upload_file(str(path), settings.s3_bucket, key, ExtraArgs={"ContentType": CONTENT_TYPE})
    return client.generate_presigned_url(
        "get_object",
        Params={"Bucket": settings.s3_bucket, "Key": key},
        ExpiresIn=URL_EXPIRES_S,
    )


def _transient(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or what caused it) is a connection error, a timeout, a 5xx or throttling."""
    try:
        from botocore.exceptions import ClientError, ConnectionError, HTTPClientError
    except ImportError:
        return False
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, ConnectionError | HTTPClientError):
            return True
        if isinstance(exc, ClientError):
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
            code = exc.response.get("Error", {}).get("Code", "")
            return status >= 500 or status == 429 or code in _THROTTLING
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def _reason(exc: BaseException) -> str:
    """One line saying what failed (boto messages carry no credentials)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]
