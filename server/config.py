"""Settings: embedded defaults (config/defaults.toml) overlaid by an optional file."""

from __future__ import annotations

import secrets
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
DEFAULTS = CONFIG_DIR / "defaults.toml"


class ConfigError(Exception):
    pass


@dataclass
class Lesson:
    room: str
    title: str
    teacher: dict[str, str]
    classrooms: list[dict[str, str]]


@dataclass
class Consortium:
    id: str
    name: str
    campuses: dict[str, str]  # id -> name
    lessons: list[Lesson] = field(default_factory=list)


@dataclass
class Settings:
    host: str
    port: int
    public_url: str
    ice_addresses: list[str] | None
    secret: str
    token_ttl: int
    data_dir: Path
    demo: Consortium | None
    adaptive: bool = True
    ladder: bool = True
    recording: dict[str, Any] = field(default_factory=dict)  # [recording], see defaults.toml
    timetable: dict[str, Any] = field(default_factory=dict)  # [timetable], see defaults.toml
    slides: dict[str, Any] = field(default_factory=dict)  # [slides], see defaults.toml

    @property
    def base_url(self) -> str:
        return self.public_url.rstrip("/") or f"http://{self.host}:{self.port}"


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such file") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def load_consortium(path: Path) -> Consortium:
    raw = _read(path)
    try:
        info = raw["consortium"]
        campuses = {c["id"]: c["name"] for c in raw.get("campuses", [])}
        lessons = [
            Lesson(
                room=str(item["room"]),
                title=str(item["title"]),
                teacher=dict(item["teacher"]),
                classrooms=[dict(c) for c in item["classrooms"]],
            )
            for item in raw.get("lessons", [])
        ]
        for lesson in lessons:
            for who in [lesson.teacher, *lesson.classrooms]:
                if who.get("campus") not in campuses:
                    raise ConfigError(
                        f"{path}: lesson {lesson.room}: unknown campus {who.get('campus')!r}"
                    )
        return Consortium(str(info["id"]), str(info["name"]), campuses, lessons)
    except KeyError as exc:
        raise ConfigError(f"{path}: missing key {exc}") from exc


def load_settings(path: Path | None = None, overrides: dict[str, Any] | None = None) -> Settings:
    raw = _read(DEFAULTS)
    if path is not None:
        raw = _merge(raw, _read(path))
    if overrides:
        raw = _merge(raw, overrides)
    server, tokens, data = raw["server"], raw["tokens"], raw["data"]
    data_dir = Path(data["dir"])
    secret = tokens.get("secret") or _stored_secret(data_dir)
    demo_path = raw.get("demo", {}).get("consortium")
    demo = load_consortium(CONFIG_DIR / demo_path) if demo_path else None
    ice = server.get("ice_addresses")
    return Settings(
        host=str(server["host"]),
        port=int(server["port"]),
        public_url=str(server.get("public_url", "")),
        ice_addresses=list(ice) if ice else None,
        secret=secret,
        token_ttl=int(float(tokens["ttl_hours"]) * 3600),
        data_dir=data_dir,
        demo=demo,
        adaptive=bool(raw.get("media", {}).get("adaptive", True)),
        ladder=bool(raw.get("media", {}).get("ladder", True)),
        recording=dict(raw.get("recording", {})),
        timetable=dict(raw.get("timetable", {})),
        slides=dict(raw.get("slides", {})),
    )


def _stored_secret(data_dir: Path) -> str:
    """One secret per installation, so `tongke token` and the server agree across runs."""
    path = data_dir / "secret"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(32)
    path.write_text(secret)
    path.chmod(0o600)
    return secret
