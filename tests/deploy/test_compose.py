from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_compose_defines_the_production_set():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"livekit", "postgres", "qdrant", "redis", "worker"} <= set(services)
    assert "pgvector" in services["postgres"]["image"]
    assert services["worker"]["build"] == "."
    assert services["worker"]["command"][:3] == ["callwise", "worker", "start"]


def test_worker_environment_switches_on_every_production_service():
    env = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["worker"]["environment"]
    for var in ("DATABASE_URL", "QDRANT_URL", "LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET",
                "DEEPGRAM_API_KEY", "GOOGLE_API_KEY", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "COHERE_API_KEY"):
        assert var in env, var
    assert env["DATABASE_URL"].startswith("postgresql://") and "@postgres:5432/" in env["DATABASE_URL"]
    assert env["QDRANT_URL"] == "http://qdrant:6333"


def test_livekit_dev_keys_match_the_worker():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    lk = yaml.safe_load((ROOT / "deploy" / "livekit.yaml").read_text())
    env = compose["services"]["worker"]["environment"]
    key = env["LIVEKIT_API_KEY"].split(":-")[1].rstrip("}")
    secret = env["LIVEKIT_API_SECRET"].split(":-")[1].rstrip("}")
    assert lk["keys"][key] == secret


def test_dockerfile_copies_the_one_package():
    text = (ROOT / "Dockerfile").read_text()
    assert "COPY src src" in text
