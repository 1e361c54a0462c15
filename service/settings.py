"""Service settings: where data lives, which keys are accepted, webhook retry policy, session cap.

Everything has an environment variable so ``presence serve`` needs no flags:

================================= ==============================================================
``PRESENCE_DATA_DIR``             database file, uploads, recordings (default ``./presence-data``)
``PRESENCE_DATABASE_URL``         any SQLAlchemy URL (default: SQLite file in the data dir)
``PRESENCE_API_KEYS``             comma-separated API keys
``PRESENCE_API_KEYS_FILE``        a file with one key per line (``#`` comments); default
                                  ``<data dir>/api_keys`` (created with one new key when no key
                                  is configured anywhere)
``PRESENCE_WEBHOOK_SECRET``       HMAC key for webhook signatures (default: generated once into
                                  ``<data dir>/webhook_secret``)
``PRESENCE_PUBLIC_URL``           base of ``conversation_url`` (default ``http://HOST:PORT``)
``PRESENCE_MAX_SESSIONS``         live conversations at once; more get HTTP 429 (default 2)
``PRESENCE_RECORDINGS_DIR``       where recordings go (default ``<data dir>/recordings``)
``PRESENCE_ICE_HOST_ADDRESSES``   comma-separated host addresses WebRTC offers (``127.0.0.1`` on
                                  a loopback-only host; default: every interface)
``PRESENCE_SESSION_ISOLATION``    ``process`` (default): each conversation runs in a process of its
                                  own; ``inline``: as tasks of the service's event loop
``PRESENCE_PLACEMENT``            ``process`` (default: conversations run on this machine, as
                                  ``PRESENCE_SESSION_ISOLATION`` says) or ``ray``: each one is a
                                  Ray actor on a cluster (``presence[ray]``)
``PRESENCE_RAY_ADDRESS``          the Ray cluster (``ray://...`` or ``host:port``; default: start a
                                  local one)
``PRESENCE_RAY_NUM_CPUS``         CPUs each conversation asks Ray for (default 1)
``PRESENCE_RAY_NUM_GPUS``         GPU fraction asked when the pipeline uses CUDA (default 0.25)
``PRESENCE_ICE_SERVERS``          STUN/TURN servers for both peers: comma-separated URLs, or a JSON
                                  list of URLs and ``{"urls", "username", "credential"}`` objects
``PRESENCE_INSTANCE_ID``          this replica's id among replicas over one database (default:
                                  host name, port and data folder)
``PRESENCE_S3_BUCKET``            also upload recordings to this S3-compatible bucket (default:
                                  local file only); credentials come from boto3's chain
                                  (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, profile, role)
``PRESENCE_S3_PREFIX``            folder in the bucket (default ``recordings/``)
``PRESENCE_S3_ENDPOINT_URL``      S3 API endpoint for MinIO, R2, ... (default: AWS S3)
``PRESENCE_S3_REGION``            bucket region (default: boto3's, e.g. ``AWS_DEFAULT_REGION``)
================================= ==============================================================
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from presence.framework.errors import ConfigError

ISOLATION_MODES = ("process", "inline")
PLACEMENTS = ("process", "ray")


def owner_of(key: str) -> str:
    """The owner id of an API key: a digest, so keys are never stored."""
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def default_pipeline() -> Path:
    """The repo's offline pipeline, the base every persona's layers apply to."""
    import presence.pipelines

    return Path(presence.pipelines.__file__).resolve().parent / "local.yaml"


@dataclass
class ServiceSettings:
    """Everything the service reads at start-up.

    Attributes:
        data_dir: Database file, uploads and recordings live here.
        database_url: SQLAlchemy URL; ``None`` uses ``<data_dir>/presence.db``.
        api_keys: Accepted ``x-api-key`` values (at least one).
        webhook_secret: HMAC-SHA256 key for webhook signatures.
        public_url: Base of ``conversation_url`` (no trailing slash).
        max_sessions: Live conversations allowed at once.
        recordings_dir: Where MP4 recordings go.
        base_pipeline: Pipeline YAML that persona layers apply to.
        webhook_backoff_initial: Seconds before the first retry; doubles per attempt.
        webhook_backoff_max: Retry interval cap in seconds.
        webhook_retry_horizon: Seconds after which an undelivered event is marked failed.
        webhook_timeout: Seconds one delivery attempt may take.
        outbox_poll_interval: Seconds between outbox scans when idle.
        ice_host_addresses: Host addresses aiortc offers (``["127.0.0.1"]`` on loopback-only hosts).
        session_isolation: ``process`` (a process per conversation) or ``inline``.
        s3_bucket: S3-compatible bucket recordings are also uploaded to; ``None``: local only.
        s3_prefix: Folder for recordings in the bucket.
        s3_endpoint_url: S3 API endpoint (MinIO, R2, ...); ``None`` is AWS S3.
        s3_region: Bucket region; ``None`` leaves it to boto3's configuration.
        placement: ``process`` (this machine) or ``ray`` (a Ray actor per conversation).
        ray_address: Ray cluster address; ``None`` starts a local cluster.
        ray_num_cpus: CPUs each conversation's actor asks for.
        ray_num_gpus: GPU fraction each actor asks for when its pipeline uses CUDA.
        ice_servers: STUN/TURN servers for both peers: URLs or ``{urls, username, credential}``
            dicts (``None``: host candidates only).
        instance_id: This replica's id (``None``: ``instances.default_instance_id``).
        heartbeat_interval: Seconds between this replica's heartbeats.
        instance_stale_after: Seconds without a heartbeat after which a replica counts as gone.
    """

    data_dir: Path
    api_keys: list[str]
    webhook_secret: str
    database_url: str | None = None
    public_url: str = "http://127.0.0.1:8000"
    max_sessions: int = 2
    recordings_dir: Path | None = None
    base_pipeline: Path = field(default_factory=default_pipeline)
    webhook_backoff_initial: float = 1.0
    webhook_backoff_max: float = 60.0
    webhook_retry_horizon: float = 3 * 24 * 3600.0
    webhook_timeout: float = 10.0
    outbox_poll_interval: float = 0.5
    ice_host_addresses: list[str] | None = None
    session_isolation: str = "process"
    s3_bucket: str | None = None
    s3_prefix: str = "recordings/"
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    placement: str = "process"
    ray_address: str | None = None
    ray_num_cpus: float = 1.0
    ray_num_gpus: float = 0.25
    ice_servers: list[Any] | None = None
    instance_id: str | None = None
    heartbeat_interval: float = 2.0
    instance_stale_after: float = 15.0

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        if not self.api_keys:
            raise ConfigError("no API keys configured; set PRESENCE_API_KEYS=key1,key2")
        if self.recordings_dir is None:
            self.recordings_dir = self.data_dir / "recordings"
        self.public_url = self.public_url.rstrip("/")
        if self.session_isolation not in ISOLATION_MODES:
            raise ConfigError(
                f"must be one of {', '.join(ISOLATION_MODES)}, not {self.session_isolation!r}",
                field="PRESENCE_SESSION_ISOLATION",
            )
        if self.placement not in PLACEMENTS:
            raise ConfigError(
                f"must be one of {', '.join(PLACEMENTS)}, not {self.placement!r}",
                field="PRESENCE_PLACEMENT",
            )
        if self.ray_num_cpus <= 0 or self.ray_num_gpus < 0:
            raise ConfigError(
                "a conversation needs more than 0 CPUs and at least 0 GPUs",
                field="PRESENCE_RAY_NUM_CPUS",
            )
        if self.instance_id is None:
            from presence.service.instances import default_instance_id

            self.instance_id = default_instance_id(self.data_dir)

    @property
    def owners(self) -> dict[str, str]:
        """Owner id of each accepted key."""
        return {key: owner_of(key) for key in self.api_keys}

    @classmethod
    def from_env(
        cls,
        *,
        data_dir: Path | None = None,
        database_url: str | None = None,
        host: str = "127.0.0.1",
        port: int = 8000,
        announce=None,
        placement: str | None = None,
        ray_address: str | None = None,
    ) -> ServiceSettings:
        """Settings from flags (when given) and the environment (see the module docstring).

        Args:
            data_dir: Overrides ``PRESENCE_DATA_DIR``.
            database_url: Overrides ``PRESENCE_DATABASE_URL``.
            host: Listening host (for the default public URL).
            port: Listening port (for the default public URL).
            announce: Called with a message when a key or secret is generated.
            placement: Overrides ``PRESENCE_PLACEMENT``.
            ray_address: Overrides ``PRESENCE_RAY_ADDRESS``.
        """
        env = os.environ
        data = Path(data_dir or env.get("PRESENCE_DATA_DIR") or "presence-data").resolve()
        data.mkdir(parents=True, exist_ok=True)
        keys = [k.strip() for k in env.get("PRESENCE_API_KEYS", "").split(",") if k.strip()]
        keys_file = Path(env.get("PRESENCE_API_KEYS_FILE") or data / "api_keys")
        if keys_file.is_file():
            keys += read_keys_file(keys_file)
        elif env.get("PRESENCE_API_KEYS_FILE"):
            raise ConfigError(
                f"API keys file {keys_file} not found", field="PRESENCE_API_KEYS_FILE"
            )
        if not keys:
            key = "pk_" + secrets.token_urlsafe(24)
            keys_file.write_text(f"# presence API keys, one per line\n{key}\n")
            keys_file.chmod(0o600)
            if announce:
                announce(f"generated an API key in {keys_file}: {key}")
            keys = [key]
        secret = env.get("PRESENCE_WEBHOOK_SECRET") or _stored_secret(data / "webhook_secret")
        shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        return cls(
            data_dir=data,
            api_keys=keys,
            webhook_secret=secret,
            database_url=database_url or env.get("PRESENCE_DATABASE_URL") or None,
            public_url=env.get("PRESENCE_PUBLIC_URL") or f"http://{shown_host}:{port}",
            max_sessions=int(env.get("PRESENCE_MAX_SESSIONS", "2")),
            recordings_dir=Path(env["PRESENCE_RECORDINGS_DIR"])
            if env.get("PRESENCE_RECORDINGS_DIR")
            else None,
            ice_host_addresses=[
                a.strip() for a in env["PRESENCE_ICE_HOST_ADDRESSES"].split(",") if a.strip()
            ]
            if env.get("PRESENCE_ICE_HOST_ADDRESSES")
            else None,
            session_isolation=env.get("PRESENCE_SESSION_ISOLATION", "process").strip().lower(),
            s3_bucket=env.get("PRESENCE_S3_BUCKET") or None,
            s3_prefix=env.get("PRESENCE_S3_PREFIX", "recordings/"),
            s3_endpoint_url=env.get("PRESENCE_S3_ENDPOINT_URL") or None,
            s3_region=env.get("PRESENCE_S3_REGION") or None,
            placement=(placement or env.get("PRESENCE_PLACEMENT") or "process").strip().lower(),
            ray_address=ray_address or env.get("PRESENCE_RAY_ADDRESS") or None,
            ray_num_cpus=_number(env, "PRESENCE_RAY_NUM_CPUS", 1.0),
            ray_num_gpus=_number(env, "PRESENCE_RAY_NUM_GPUS", 0.25),
            ice_servers=_ice_servers(env.get("PRESENCE_ICE_SERVERS", "")),
            instance_id=env.get("PRESENCE_INSTANCE_ID") or _instance_id(data, port),
        )


def read_keys_file(path: Path) -> list[str]:
    """Keys from a file: one per line, blank lines and ``#`` comments ignored."""
    keys = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            keys.append(line)
    return keys


def _stored_secret(path: Path) -> str:
    if path.is_file():
        return path.read_text().strip()
    secret = secrets.token_hex(32)
    path.write_text(secret + "\n")
    path.chmod(0o600)
    return secret


def _number(env, name: str, default: float) -> float:
    try:
        return float(env.get(name) or default)
    except ValueError:
        raise ConfigError(f"must be a number, not {env[name]!r}", field=name) from None


def _ice_servers(value: str) -> list[Any] | None:
    value = value.strip()
    if value.startswith("["):
        try:
            return json.loads(value)
        except ValueError as exc:
            raise ConfigError(f"not valid JSON ({exc})", field="PRESENCE_ICE_SERVERS") from None
    return [u.strip() for u in value.split(",") if u.strip()] or None


def _instance_id(data_dir: Path, port: int) -> str:
    from presence.service.instances import default_instance_id

    return default_instance_id(data_dir, port)
