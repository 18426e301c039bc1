import pytest
from pydantic import ValidationError

from callwise.cli.common import validation_message
from callwise.wiring.settings import Settings, mask_url


def test_defaults_need_no_configuration(monkeypatch):
    for var in ("DATABASE_URL", "QDRANT_URL", "OPENAI_API_KEY", "DEEPGRAM_API_KEY", "COHERE_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    s = Settings(_env_file=None)
    assert s.embedded_database
    assert s.qdrant_url is None and s.deepgram_api_key is None
    assert s.tiers == ["tier1", "tier2", "tier3"]


def test_vendor_variable_names_switch_services_on(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:pw@db:5432/callwise")
    monkeypatch.setenv("DEEPGRAM_API_KEY", "dg-0123456789abcdef")
    monkeypatch.setenv("CALLWISE_QDRANT_URL", "http://qdrant:6333")
    s = Settings(_env_file=None)
    assert not s.embedded_database
    assert s.deepgram_api_key.get_secret_value() == "dg-0123456789abcdef"
    assert s.qdrant_url == "http://qdrant:6333"


def test_masked_settings_never_show_secrets(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-proj-supersecretvalue1234")
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:hunter2pass@db:5432/callwise")
    masked = Settings(_env_file=None).masked()
    text = repr(masked)
    assert "supersecretvalue" not in text and "hunter2pass" not in text
    assert masked["openai_api_key"] == "****1234"
    assert masked["database_url"] == "postgresql://app:****@db:5432/callwise"


def test_mask_url_leaves_passwordless_urls_alone():
    assert mask_url("postgresql://postgres@127.0.0.1:5432/x") == "postgresql://postgres@127.0.0.1:5432/x"


@pytest.mark.parametrize("var,value,expected", [
    ("CALLWISE_TIERS", "tier1,tier7", "CALLWISE_TIERS"),
    ("CALLWISE_FUSION", "average", "CALLWISE_FUSION"),
    ("CALLWISE_SERVICE_HOURS_END", "25:00", "CALLWISE_SERVICE_HOURS_END"),
    ("CALLWISE_CONFIDENCE_THRESHOLD", "1.5", "CALLWISE_CONFIDENCE_THRESHOLD"),
])
def test_invalid_values_name_the_variable(monkeypatch, var, value, expected):
    monkeypatch.setenv(var, value)
    with pytest.raises(ValidationError) as info:
        Settings(_env_file=None)
    assert expected in validation_message(info.value)


def test_lists_accept_csv_and_json(monkeypatch):
    monkeypatch.setenv("CALLWISE_COMPETITORS", "Acme, Globex")
    assert Settings(_env_file=None).competitors == ["Acme", "Globex"]
    monkeypatch.setenv("CALLWISE_COMPETITORS", '["Initech"]')
    assert Settings(_env_file=None).competitors == ["Initech"]


def test_dotenv_file_is_read(tmp_path, monkeypatch):
    monkeypatch.delenv("CALLWISE_DEFAULT_ORG", raising=False)
    env = tmp_path / ".env"
    env.write_text("CALLWISE_DEFAULT_ORG=acme\n")
    assert Settings(_env_file=env).default_org == "acme"
