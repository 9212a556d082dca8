"""Adapters by name: built-ins, presets, and a third-party package installed with pip."""
from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from adapter_traces import sample_trace
from otlp_receiver import OtlpReceiver

from observe_sdk.adapters import registry
from observe_sdk.adapters.base import Adapter
from observe_sdk.adapters.otlp import OtlpAdapter

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "tests" / "fixtures" / "plugin_pkg"
PLUGIN_DIST = "observe-sdk-example-adapter"
BUILTIN_NAMES = {"stdout", "otel-stdout", "opentelemetry", "otlp", "datadog", "zipkin", "honeycomb", "lightstep"}


def test_builtin_names() -> None:
    assert BUILTIN_NAMES <= set(registry.names())


@pytest.mark.parametrize("name", sorted(BUILTIN_NAMES - {"honeycomb", "lightstep"}))
def test_each_builtin_works_from_the_environment_alone(name, monkeypatch) -> None:
    monkeypatch.setenv("DD_TRACE_AGENT_URL", "http://127.0.0.1:9")   # nothing is sent in this test
    adapter = registry.create(name)
    assert isinstance(adapter, Adapter) and adapter.name == name
    assert adapter.shutdown(1).complete


def test_unknown_name_lists_installed() -> None:
    with pytest.raises(LookupError) as info:
        registry.create("no-such-backend")
    message = str(info.value)
    assert "unknown adapter 'no-such-backend'" in message and "datadog" in message and "otlp" in message


def test_options_an_adapter_does_not_take(monkeypatch) -> None:
    monkeypatch.setenv("DD_TRACE_AGENT_URL", "http://127.0.0.1:9")
    with pytest.raises(ValueError, match="'datadog'.*out"):
        registry.create("datadog", out="trace.txt")
    adapter = registry.create("datadog", out=None)      # None means "not given"
    adapter.shutdown(1)


def test_stdout_takes_out(tmp_path) -> None:
    out = tmp_path / "trace.txt"
    adapter = registry.create("otel-stdout", out=str(out))
    adapter.submit(sample_trace())
    assert adapter.shutdown(5).complete
    doc = json.loads(out.read_text().splitlines()[0])
    assert doc["resourceSpans"][0]["scopeSpans"][0]["spans"]


@pytest.mark.parametrize("preset,env,header", [
    ("honeycomb", {"HONEYCOMB_API_KEY": "hc-key", "HONEYCOMB_DATASET": "wasm"},
     {"x-honeycomb-team": "hc-key", "x-honeycomb-dataset": "wasm"}),
    ("lightstep", {"LS_ACCESS_TOKEN": "ls-token", "LS_SERVICE_NAME": "ls-svc"},
     {"lightstep-access-token": "ls-token"}),
])
def test_presets_send_their_auth_headers(preset, env, header, monkeypatch) -> None:
    with OtlpReceiver() as receiver:
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        endpoint_var = "HONEYCOMB_API_ENDPOINT" if preset == "honeycomb" else "LS_ENDPOINT"
        monkeypatch.setenv(endpoint_var, receiver.http_endpoint if preset == "honeycomb" else receiver.grpc_endpoint)
        adapter = registry.create(preset, flush_interval=0.01)
        assert isinstance(adapter, OtlpAdapter) and adapter.name == preset
        adapter.submit(sample_trace())
        assert adapter.shutdown(20).complete
        assert receiver.store.spans()
        for key, value in header.items():
            assert all(h.get(key) == value for h in receiver.store.headers)
        if preset == "lightstep":
            assert receiver.store.resources()[0]["service.name"] == "ls-svc"


@pytest.mark.parametrize("preset,var", [("honeycomb", "HONEYCOMB_API_KEY"), ("lightstep", "LS_ACCESS_TOKEN")])
def test_presets_without_credentials_say_so(preset, var, monkeypatch) -> None:
    monkeypatch.delenv(var, raising=False)
    with pytest.raises(ValueError, match=var):
        registry.create(preset)


# -- a third-party package -------------------------------------------------

def _pip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", "-q", "--disable-pip-version-check", *args],
                          capture_output=True, text=True, timeout=300)


def _can_build_offline() -> bool:
    """setuptools with bdist_wheel (>= 70.1) or wheel: then no build isolation is needed."""
    if importlib.util.find_spec("wheel") is not None:
        return True
    try:
        from setuptools.command import bdist_wheel  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope="module")
def plugin_installed(tmp_path_factory):
    source = tmp_path_factory.mktemp("plugin") / "plugin_pkg"     # the build writes next to the sources
    shutil.copytree(PLUGIN, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    args = ["install", "--no-deps"]
    if _can_build_offline():
        args.append("--no-build-isolation")
    result = _pip(*args, str(source))
    assert result.returncode == 0, result.stderr[-3000:]
    yield
    _pip("uninstall", "-y", PLUGIN_DIST)


def test_plugin_through_the_registry(plugin_installed, tmp_path) -> None:
    assert "example-summary" in registry.names()
    out = tmp_path / "summary.jsonl"
    adapter = registry.create("example-summary", out=str(out), label="direct")
    adapter.submit(sample_trace())
    assert adapter.shutdown(5).complete
    line = json.loads(out.read_text())
    assert line["label"] == "direct" and "main" in line["spans"]


def test_plugin_through_the_cli(plugin_installed, tmp_path) -> None:
    out = tmp_path / "summary.jsonl"
    guest = ROOT / "guest-examples" / "build" / "hello.instr.wasm"
    env = {"EXAMPLE_SUMMARY_LABEL": "from-cli", "PATH": str(Path(sys.executable).parent)}
    result = subprocess.run([sys.executable, "-m", "observe_sdk", "run", str(guest),
                             "--adapter", "example-summary", "--out", str(out)],
                            capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert lines and lines[0]["label"] == "from-cli"
    assert "main" in lines[0]["spans"] and "_start" in lines[0]["spans"]


def test_cli_unknown_adapter_lists_plugins(plugin_installed, tmp_path) -> None:
    guest = ROOT / "guest-examples" / "build" / "hello.instr.wasm"
    result = subprocess.run([sys.executable, "-m", "observe_sdk", "run", str(guest), "--adapter", "nope"],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode != 0
    assert "unknown adapter 'nope'" in result.stderr and "example-summary" in result.stderr
    assert "Traceback" not in result.stderr


def test_adapters_that_cannot_load_are_named_with_the_extra(monkeypatch) -> None:
    monkeypatch.setitem(registry.BUILTINS, "needs-extra", "msgpack_is_not_this_module_xyz:make")
    monkeypatch.setitem(registry.BUILTINS, "needs-otel", "opentelemetry.no_such_module_xyz:make")
    broken = registry.unavailable()
    assert set(broken) >= {"needs-extra", "needs-otel"} and "stdout" not in broken
    assert "pip install 'observe-sdk[otel]'" in broken["needs-otel"]
    with pytest.raises(LookupError) as info:
        registry.create("nonesuch")
    message = str(info.value)
    assert "installed adapters: " in message and "not loadable here: needs-extra, needs-otel" in message
    assert "needs-extra" not in message.split("; not loadable")[0]
