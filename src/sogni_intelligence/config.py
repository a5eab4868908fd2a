"""One typed settings object, read from `SOGNI_*` environment variables and an optional TOML file.

Precedence (highest first): init arguments, environment, TOML file (`SOGNI_CONFIG`), defaults.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    FilePath,
    SecretStr,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

#: Public model ids of the hosted service; by default they all resolve to the embedded model.
PUBLIC_MODEL_IDS = ("qwen3.6-35b-a3b-gguf-iq4xs", "qwen3.5-35b-a3b-abliterated-gguf-q4km")

DEFAULT_GGUF = "smollm2:SmolLM2-135M-Instruct.Q4_1.gguf"

#: Tokens one LLM round of the agent loop may generate when the request asks for no fewer.
DEFAULT_AGENT_MAX_TOKENS_PER_ROUND = 1024

#: The durable job queues media tools run on; worker processes pick which ones they serve.
QueueName = Literal["image", "video", "audio", "analysis"]
QUEUE_NAMES: tuple[QueueName, ...] = ("image", "video", "audio", "analysis")


def _check_http_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http(s) URL")
    return url


HttpUrl = Annotated[str, AfterValidator(_check_http_url)]


class UpstreamConfig(BaseModel):
    """One OpenAI-compatible server that shares a model's requests with the others listed."""

    model_config = ConfigDict(extra="forbid")

    base_url: HttpUrl = Field(
        description="The server's OpenAI API root, e.g. http://gpu-1:8000/v1."
    )
    api_key: str | None = None
    model: str | None = Field(
        default=None,
        description="The name this server knows the model by; default: the model's "
        "upstream_model, else its id.",
    )
    weight: float = Field(
        default=1.0, gt=0, description="Relative capacity: a weight-2 server takes twice the load."
    )


class ModelConfig(BaseModel):
    """One LLM the server can answer with, and the ids it answers to."""

    id: str
    engine: Literal["embedded", "upstream"] = "embedded"
    aliases: list[str] = Field(default_factory=list)
    # embedded (xllamacpp)
    path: str = DEFAULT_GGUF
    mmproj: str | None = None
    chat_template: str | None = Field(
        default=None, description="Jinja chat template (inline text or a path to a file)."
    )
    n_parallel: int = Field(default=4, ge=1, le=64)
    n_ctx: int = Field(
        default=16384,
        ge=256,
        description="Total context, split across slots (4096 tokens each by default: room for "
        "the hosted tool listing and a conversation).",
    )
    threads: int = Field(default=0, ge=0, description="0 = all cores.")
    nice: int = Field(
        default=5,
        ge=0,
        le=19,
        description="How much lower than the rest of the process the embedded engine's "
        "threads run (Linux nice levels): when the cores are busy decoding, the event loop "
        "still answers at once (new requests, events, streams); the engine takes every cycle "
        "the loop leaves. 0 = the same priority.",
    )
    cache_ram_mib: int = Field(default=128, ge=0)
    # upstream (any OpenAI-compatible server)
    base_url: HttpUrl | None = None
    api_key: str | None = None
    upstream_model: str | None = None
    vision: bool = False
    timeout_s: float = Field(default=300.0, gt=0)
    connect_timeout_s: float = Field(default=10.0, gt=0)
    # a pool: more servers that share the requests with the model's own engine
    upstreams: list[UpstreamConfig] = Field(
        default_factory=list,
        description="OpenAI-compatible servers that share this model's requests with its own "
        "engine (the embedded model, or the upstream at base_url); each request goes to the "
        "least busy healthy one.",
    )
    weight: float = Field(
        default=1.0,
        gt=0,
        description="The share of the model's own engine in a pool with upstreams.",
    )
    health_interval_s: float = Field(
        default=5.0, gt=0, description="How often each upstream of the model is checked."
    )
    health_timeout_s: float = Field(
        default=2.0, gt=0, description="How long a check waits for GET {base_url}/models."
    )
    unhealthy_after: int = Field(
        default=2,
        ge=1,
        description="Failed checks or requests in a row that take an upstream out (one that "
        "refuses connections is out at once); one passed check brings it back.",
    )

    @model_validator(mode="after")
    def _check_engine_fields(self) -> ModelConfig:
        if self.engine == "upstream" and not (self.base_url or self.upstreams):
            raise ValueError(f"model {self.id!r}: an upstream engine needs base_url or upstreams")
        seen: set[tuple[str, str]] = set()
        for upstream in self.pool_upstreams:
            key = (upstream.base_url.rstrip("/"), self.upstream_model_of(upstream))
            if key in seen:
                raise ValueError(f"model {self.id!r}: upstream {key[0]} ({key[1]}) is listed twice")
            seen.add(key)
        return self

    @property
    def pool_upstreams(self) -> list[UpstreamConfig]:
        """Every OpenAI-compatible server of the model: the one at base_url first."""
        own = []
        if self.engine == "upstream" and self.base_url:
            own.append(
                UpstreamConfig(
                    base_url=self.base_url,
                    api_key=self.api_key,
                    model=self.upstream_model,
                    weight=self.weight,
                )
            )
        return own + self.upstreams

    def upstream_model_of(self, upstream: UpstreamConfig) -> str:
        """The model name sent to `upstream`."""
        return upstream.model or self.upstream_model or self.id


#: torch device names: cpu, cuda, cuda:N, mps, xpu, xpu:N.
DEVICE_PATTERN = r"^(cpu|mps|(cuda|xpu)(:[0-9]{1,2})?)$"


class ImageBackendConfig(BaseModel):
    """An image backend the image tools can use instead of the procedural renderer: a remote
    service (OpenAI-style API, ComfyUI) or a local diffusers pipeline."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    kind: Literal["openai", "comfyui", "diffusers"]
    base_url: str | None = Field(None, description="openai, comfyui: the service's URL.")
    api_key: str | None = None
    model: str | None = Field(None, description="Model name sent to an OpenAI-style API.")
    workflow: str | None = Field(
        None,
        description="ComfyUI: path to an API-format workflow JSON with {{prompt}}, {{seed}}, "
        "{{width}}, {{height}}, {{negative_prompt}} placeholders.",
    )
    model_path: str | None = Field(
        None, description="diffusers: a local pipeline directory (as save_pretrained writes it)."
    )
    device: str = Field(
        "cpu", pattern=DEVICE_PATTERN, description="diffusers: torch device, e.g. cpu or cuda:0."
    )
    dtype: Literal["float32", "float16", "bfloat16"] = Field(
        "float32", description="diffusers: weight precision (half precision needs a GPU)."
    )
    steps: int = Field(20, ge=1, le=1000, description="diffusers: denoising steps per image.")
    guidance: float = Field(7.5, ge=0, le=30, description="diffusers: classifier-free guidance.")
    aliases: list[str] = Field(
        default_factory=list, description="Public image model ids this backend answers."
    )
    timeout_s: float = Field(300.0, gt=0)
    lora_dirs: list[Path] = Field(
        default_factory=list,
        description="Folders of LoRA .safetensors files for this backend's models; a LoRA's id "
        "is its file name without the extension.",
    )

    @model_validator(mode="after")
    def _check_kind_fields(self) -> ImageBackendConfig:
        if self.kind in ("openai", "comfyui") and not self.base_url:
            raise ValueError(f"image backend {self.name!r}: a {self.kind} backend needs base_url")
        if self.kind == "comfyui" and not self.workflow:
            raise ValueError(f"image backend {self.name!r}: a ComfyUI backend needs workflow")
        if self.kind == "diffusers" and not self.model_path:
            raise ValueError(f"image backend {self.name!r}: a diffusers backend needs model_path")
        return self


class ComfyToolBinding(BaseModel):
    """A hosted tool whose output a ComfyUI workflow makes, instead of the built-in backend
    (or instead of MODEL_UNAVAILABLE). The tool keeps its argument schema and validation."""

    tool: str = Field(description="The hosted tool's name, e.g. remove_background.")
    base_url: str = Field(description="The ComfyUI server's URL.")
    workflow: str = Field(
        description="Path to an API-format workflow JSON. Placeholders: {{prompt}}, "
        "{{negative_prompt}}, {{seed}}, {{width}}, {{height}}, {{frames}}, {{duration}}, "
        "{{fps}}, any argument by its name, and the source media {{image}}, {{image_2}}, ..., "
        "{{video}}, {{audio}} (uploaded to ComfyUI first)."
    )
    outputs: Literal["image", "video", "audio"] | None = Field(
        None, description="Keep only outputs of this kind (default: every output file)."
    )
    fps: float = Field(
        24.0, gt=0, le=240, description="{{fps}}; {{frames}} is the call's duration at this rate."
    )
    timeout_s: float = Field(600.0, gt=0)


class LocalModelConfig(BaseModel):
    """A model run in this process from a local folder (as `save_pretrained` writes it); it is
    never downloaded, so the folder must hold the weights and their processor files."""

    model_config = ConfigDict(extra="forbid")

    path: Path = Field(description="The model folder (config.json, weights, processor files).")
    device: str = Field("cpu", pattern=DEVICE_PATTERN, description="torch device, e.g. cuda:0.")
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"


class MusicModelConfig(LocalModelConfig):
    """A transformers text-to-music model (MusicGen) that generate_music runs for its aliases."""

    aliases: list[str] = Field(
        default_factory=lambda: ["musicgen"],
        min_length=1,
        description="generate_music model ids it answers (they may replace built-in ids).",
    )
    guidance: float = Field(3.0, ge=1, le=20, description="Classifier-free guidance scale.")


class ContentClassifierConfig(LocalModelConfig):
    """A transformers image-classification model that screens the images tools make while a
    request's content filter is on."""

    flagged_labels: list[str] = Field(
        min_length=1,
        description="The model's labels (its id2label names, any case) that refuse an image.",
    )
    threshold: float = Field(
        0.5, gt=0, le=1, description="The probability of a flagged label that refuses an image."
    )


class VideoModelConfig(LocalModelConfig):
    """An LTX-Video diffusers pipeline that generate_video, animate_photo, extend_video and
    video_to_video's detailer mode run for its aliases (LTX-Video 0.9.5 or later conditions on
    start and end frames best)."""

    aliases: list[str] = Field(
        default_factory=lambda: ["ltx25"],
        min_length=1,
        description="videoModel ids it answers (e.g. ltx25, ltx23; video_to_video's ltx25-v2v "
        "is ltx25); other ids keep the keyframe backend.",
    )
    steps: int = Field(30, ge=1, le=200, description="Denoising steps per video.")
    guidance: float = Field(3.0, ge=1, le=20, description="Classifier-free guidance scale.")
    fps: int = Field(24, ge=8, le=60, description="Frame rate the model renders at.")
    max_frames: int = Field(
        121,
        ge=9,
        le=1025,
        description="The most frames one render makes; longer requests are shortened.",
    )
    v2v_strength: float = Field(
        0.6,
        gt=0,
        lt=1,
        description="video_to_video detailer: how much of the source is re-noised and redrawn "
        "(the share of the denoising steps that run); lower keeps more of the source.",
    )


def _default_models() -> list[ModelConfig]:
    return [
        ModelConfig(
            id="smollm2-135m-instruct",
            engine="embedded",
            path=DEFAULT_GGUF,
            aliases=list(PUBLIC_MODEL_IDS),
        )
    ]


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "sogni-intelligence"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SOGNI_", env_nested_delimiter="__", extra="ignore"
    )

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    data_dir: Path = Field(default_factory=_default_data_dir)
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: a SQLite file in data_dir."
    )
    models: list[ModelConfig] = Field(default_factory=_default_models)
    default_model: str = PUBLIC_MODEL_IDS[0]
    max_body_bytes: int = Field(default=100 * 1024 * 1024, ge=1024)
    max_images: int = Field(default=20, ge=0)
    max_image_bytes: int = Field(default=10 * 1024 * 1024, ge=1)
    max_image_side: int = Field(default=1024, ge=16)
    key_cache_seconds: float = Field(
        default=5.0, ge=0, description="How long a checked key is trusted before re-reading it."
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "json", "text"] = Field(
        default="auto",
        description="Log lines as JSON objects (one per line, for collectors) or readable "
        "text; auto: text when stderr is a terminal, JSON otherwise.",
    )
    # metrics
    metrics_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="Serve /metrics without a key on this port of metrics_host (also in a "
        "worker process) and not on the API port; default: /metrics on the API port, for "
        "admin keys only.",
    )
    metrics_host: str = Field(
        default="127.0.0.1",
        description="The address the metrics_port listens on: keep it where only your "
        "scrapers reach it.",
    )
    # media
    public_base_url: str | None = Field(
        default=None,
        description="Absolute base of the URLs we hand out; default http://<host>:<port>.",
    )
    media_url_ttl_s: int = Field(default=24 * 3600, ge=60, description="Signed URL lifetime.")
    max_upload_bytes: int = Field(default=100 * 1024 * 1024, ge=1024)
    replay_record_max_bytes: int = Field(
        default=2 * 1024 * 1024, ge=1024, description="The largest RunRecord a client may write."
    )
    replay_records_from_runs: bool = Field(
        default=True, description="Whether every finished chat run writes its replay record."
    )
    saved_assets_per_key: int = Field(
        default=500, ge=1, description="How many saved uploads (/v1/assets) one key may keep."
    )
    asset_upload_url_ttl_s: int = Field(
        default=900, ge=30, le=24 * 3600, description="Lifetime of a saved upload's PUT URL."
    )
    personal_loras_per_key: int = Field(
        default=50, ge=1, description="How many personal LoRAs one key may import."
    )
    lora_max_bytes: int = Field(
        default=512 * 1024 * 1024, ge=1024, description="The largest personal LoRA file fetched."
    )
    media_fetch_allow_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts fetched even when they resolve to private addresses.",
    )
    media_fetch_timeout_s: float = Field(default=60.0, gt=0)
    media_fetch_max_redirects: int = Field(default=5, ge=0, le=20)
    image_backends: list[ImageBackendConfig] = Field(default_factory=list)
    segmentation_model: LocalModelConfig | None = Field(
        default=None,
        description="A transformers semantic-segmentation model (e.g. SegFormer) that runs "
        "remove_background and segment_image; unset, they answer MODEL_UNAVAILABLE.",
    )
    music_model: MusicModelConfig | None = Field(
        default=None,
        description="A MusicGen model folder; generate_music uses it for its aliases and the "
        "MIDI composer for every other model id.",
    )
    content_filter_terms_file: FilePath | None = Field(
        default=None,
        description="A text file of terms (one per line, # comments) that replaces the "
        "built-in list the content filter refuses in tool arguments.",
    )
    content_filter_extra_terms: list[str] = Field(
        default_factory=list,
        description="Terms the content filter refuses in addition to its list.",
    )
    content_filter_model: ContentClassifierConfig | None = Field(
        default=None,
        description="An image-classification model folder that screens generated images "
        "while the content filter is on; unset, only tool arguments are screened.",
    )
    video_model: VideoModelConfig | None = Field(
        default=None,
        description="An LTX-Video pipeline folder; the video tools use it for its aliases and "
        "the keyframe backend for every other videoModel id.",
    )
    comfyui_tools: list[ComfyToolBinding] = Field(
        default_factory=list, description="Hosted tools that run a ComfyUI workflow."
    )
    model_device: str | None = Field(
        default=None,
        pattern=DEVICE_PATTERN,
        description="The torch device of every local model of this process (diffusers image "
        "backends, segmentation, music, video), replacing each one's own device; "
        "`worker --device` sets it.",
    )
    model_memory_budget_mb: int | None = Field(
        default=None,
        ge=1,
        description="What this process's loaded local models may hold together; before a "
        "model loads, idle ones are unloaded, least recently used first. Default: no limit.",
    )
    media_store: Literal["local", "s3"] = Field(
        default="local",
        description="Where media files live: data_dir (shared when mounted by every host) or "
        "an S3-compatible bucket (credentials from the standard AWS environment/config).",
    )
    s3_bucket: str | None = None
    s3_prefix: str = Field(default="", description="Key prefix inside the bucket, e.g. 'media/'.")
    s3_endpoint_url: str | None = Field(
        default=None, description="For S3-compatible servers (MinIO, Ceph, R2...); default AWS."
    )
    s3_region: str | None = None
    url_signing_key: SecretStr | None = Field(
        default=None,
        min_length=32,
        description="The key that signs media URLs, for replicas that share no data_dir; "
        "default: a random key kept in data_dir.",
    )
    # durable workflows
    workflow_cost_confirmation_units: float = Field(
        default=25.0,
        ge=0,
        description="A workflow estimated above this many capacity units waits for a cost "
        "confirmation unless started with confirm_cost.",
    )
    record_sweep_s: float = Field(
        default=5.0,
        gt=0,
        description="How often an API process ends the open records whose durable workflow "
        "stopped without ending them (at most this long a record stays open after that).",
    )
    # the agent loop of chat completions
    agent_max_rounds: int = Field(
        default=8, ge=1, le=64, description="LLM rounds one turn may take with hosted tools."
    )
    agent_workflow_wait_s: float = Field(
        default=300.0,
        ge=0,
        description="How long a turn waits for a media tool's workflow before telling the "
        "model it is still running.",
    )
    agent_max_tokens_per_round: int = Field(
        default=DEFAULT_AGENT_MAX_TOKENS_PER_ROUND,
        ge=1,
        description="Tokens one LLM round of a turn with hosted tools may generate (chat "
        "completions and chat runs); a request's own lower max_tokens wins.",
    )
    worker_queues: list[QueueName] = Field(
        default_factory=lambda: list(QUEUE_NAMES),
        description="Media queues this server process also works on; [] makes it an API "
        "process that only enqueues (run 'sogni-intelligence worker' elsewhere).",
    )
    queue_concurrency: dict[QueueName, int] = Field(
        default_factory=lambda: {"image": 2, "video": 1, "audio": 2, "analysis": 2},
        description="How many jobs of each queue one worker process runs at once.",
    )
    queue_poll_s: float = Field(
        default=5.0,
        gt=0,
        le=5,
        description="How often a worker looks for jobs other processes queued (each look costs "
        "a few database queries per queue, also when idle). A process alone on its database "
        "does not look until another process beats beside it. Jobs a process makes for a queue "
        "it serves start at once, without waiting for a look; lower this when separate API "
        "processes hand their jobs to workers.",
    )

    executor_id: str = Field(
        default="local",
        min_length=1,
        max_length=128,
        description="This API process's name among the processes sharing the database (its "
        "DBOS executor id): give each replica its own, stable across its restarts, so that a "
        "restart recovers its own work.",
    )
    heartbeat_s: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description="How often each process (API or worker) records that it is alive.",
    )
    takeover_after_s: float = Field(
        default=6.0,
        gt=0,
        description="How long a process may be silent before its unfinished workflows and "
        "jobs are handed to live processes.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_path = os.environ.get("SOGNI_CONFIG")
        if toml_path:
            if not Path(toml_path).is_file():
                raise FileNotFoundError(f"SOGNI_CONFIG points to a missing file: {toml_path}")
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        return tuple(sources)

    @model_validator(mode="after")
    def _check_models(self) -> Settings:
        seen: set[str] = set()
        for model in self.models:
            for name in (model.id, *model.aliases):
                if name in seen:
                    raise ValueError(f"model id or alias {name!r} is configured twice")
                seen.add(name)
        if self.models and self.default_model not in seen:
            raise ValueError(f"default_model {self.default_model!r} is not a configured id")
        if self.media_store == "s3" and not self.s3_bucket:
            raise ValueError("media_store 's3' needs s3_bucket (SOGNI_S3_BUCKET)")
        return self

    @model_validator(mode="after")
    def _apply_model_device(self) -> Settings:
        """One device for every local model, so a worker is pointed at its GPU in one place."""
        if self.model_device is None:
            return self
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, LocalModelConfig):
                value.device = self.model_device
        for backend in self.image_backends:
            if backend.kind == "diffusers":
                backend.device = self.model_device
        return self

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'sogni.sqlite'}"

    @property
    def resolved_public_base_url(self) -> str:
        if self.public_base_url:
            return self.public_base_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"

    def ensure_data_dir(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return self.data_dir
