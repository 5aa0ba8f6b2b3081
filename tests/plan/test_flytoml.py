"""fly.toml parsing: every form flyctl accepts, its normalising patches, GPU precedence, errors with file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from flymigrate.errors import ConfigError
from flymigrate.parse.flytoml import load_fly_config

from .helpers import FIXTURES, write


def load(tmp_path: Path, text: str):
    return load_fly_config(write(tmp_path, "fly.toml", text))


def codes(app):
    return [f.code for f in app.findings]


# ---- VM / GPU forms ----------------------------------------------------------------------------------

@pytest.mark.parametrize("text,kind,count,mem", [
    ('vm.size = "a100-40gb"\n', "a100-pcie-40gb", 1, 32768),
    ('[vm]\nsize = "a10"\n', "a10", 1, 32768),
    ('[[vm]]\nsize = "l40s"\n', "l40s", 1, 32768),
    ('[[vm]]\nsize = "a100-80gb"\n', "a100-sxm4-80gb", 1, 32768),
    ('[compute]\nsize = "l40s"\n', "l40s", 1, 32768),
    ('[[compute]]\nsize = "l40s"\n', "l40s", 1, 32768),
    # fly launch style: size + memory + gpu_kind
    ('[[vm]]\nsize = "performance-8x"\nmemory = "16gb"\ngpu_kind = "l40s"\n', "l40s", 1, 16384),
    # gpu_kind without size: performance-8x (16 GB), not the 32 GB preset
    ('[[vm]]\ngpu_kind = "a100-sxm4-80gb"\n', "a100-sxm4-80gb", 1, 16384),
    ('[[vm]]\ngpu_kind = "a100-pcie-40gb"\ngpus = 2\n', "a100-pcie-40gb", 2, 16384),
    # explicit fields beat size; bare memory is MB
    ('[[vm]]\nsize = "a10"\nmemory = 65536\n', "a10", 1, 65536),
    ('[[vm]]\nsize = "a10"\nmemory = "64gb"\nmemory_mb = 1024\n', "a10", 1, 1024),
    ('[[vm]]\nsize = "a10"\ngpu_kind = "l40s"\n', "l40s", 1, 32768),
    ('[[vm]]\nsize = "l40s"\ngpus = 1\n', "l40s", 1, 32768),
])
def test_gpu_forms_and_precedence(tmp_path, text, kind, count, mem):
    app = load(tmp_path, 'app = "x"\n' + text)
    assert app.gpu is not None
    assert (app.gpu.kind, app.gpu.count) == (kind, count)
    assert app.memory_mb == mem


def test_size_name_as_kind_is_understood_with_warning(tmp_path):
    app = load(tmp_path, 'app = "x"\n[[vm]]\ngpu_kind = "a100-40gb"\n')
    assert app.gpu.kind == "a100-pcie-40gb"
    f = next(f for f in app.findings if f.code == "gpu-kind-alias")
    assert f.severity == "warning" and f.where == "fly.toml:3"


def test_illegal_gpu_kind_names_the_legal_ones(tmp_path):
    with pytest.raises(ConfigError) as ei:
        load(tmp_path, 'app = "x"\n\n[[vm]]\n  gpu_kind = "a100-pcie-80gb"\n')
    msg = str(ei.value)
    assert "fly.toml:4" in msg and "a100-pcie-80gb" in msg
    for legal in ("a10", "l40s", "a100-pcie-40gb", "a100-sxm4-80gb"):
        assert legal in msg


def test_gpus_without_kind_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="gpus = 2 needs gpu_kind"):
        load(tmp_path, '[[vm]]\ngpus = 2\n')


def test_no_gpu_in_file(tmp_path):
    app = load(tmp_path, 'app = "x"\n[[vm]]\nmemory = "2gb"\ncpu_kind = "shared"\ncpus = 2\n')
    assert app.gpu is None and app.memory_mb == 2048


# ---- mounts --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text,size", [
    ('[mounts]\nsource = "d"\ndestination = "/data"\n', None),
    ('[[mounts]]\nsource = "d"\ndestination = "/data"\ninitial_size = "50G"\n', 50.0),
    ('[mount]\nsource = "d"\ndestination = "/data"\ninitial_size = 20\n', 20.0),
    ('[[mounts]]\nsource = "d"\ndestination = "/data"\ninitial_size = "100gb"\n', 100.0),
])
def test_mount_forms(tmp_path, text, size):
    app = load(tmp_path, text)
    assert len(app.mounts) == 1
    m = app.mounts[0]
    assert (m.source, m.destination, m.initial_size_gb) == ("d", "/data", size)


def test_mount_at_root_is_an_error_with_line(tmp_path):
    with pytest.raises(ConfigError) as ei:
        load(tmp_path, 'app = "x"\n[[mounts]]\nsource = "d"\ndestination = "/"\n')
    assert "fly.toml:4" in str(ei.value) and "mounted at /" in str(ei.value)


def test_vm_mounts_is_flagged(tmp_path):
    app = load(tmp_path, '[[vm]]\nsize = "a10"\n[[vm.mounts]]\nsource = "x"\ndestination = "/x"\n')
    assert "vm-mounts" in codes(app) and app.mounts == ()


# ---- services -----------------------------------------------------------------------------------------

def test_services_table_legacy_concurrency_and_string_port(tmp_path):
    app = load(tmp_path, '[services]\ninternal_port = "8080"\nconcurrency = "12,23"\n'
                         '[[services.ports]]\nport = 80\nhandlers = ["http"]\n')
    s = app.services[0]
    assert s.internal_port == 8080
    assert (s.concurrency.type, s.concurrency.soft_limit, s.concurrency.hard_limit) == ("requests", 12, 23)
    assert not s.has_tls


def test_http_service_and_services_together(tmp_path):
    app = load(tmp_path, '[http_service]\ninternal_port = 8000\n[[services]]\ninternal_port = 8000\nprotocol="tcp"\n'
                         '[[services]]\ninternal_port = 9000\n')
    assert [s.origin for s in app.services] == ["http_service", "services", "services"]
    assert app.services[0].has_tls


@pytest.mark.parametrize("raw,expected", [("true", "stop"), ("false", "off"), ('"off"', "off"), ('"stop"', "stop"),
                                          ('"suspend"', "suspend")])
def test_auto_stop_forms(tmp_path, raw, expected):
    app = load(tmp_path, f'[http_service]\ninternal_port = 8000\nauto_stop_machines = {raw}\n')
    assert app.services[0].auto_stop == expected and app.services[0].auto_stop_set


def test_auto_stop_bad_value(tmp_path):
    with pytest.raises(ConfigError, match="fly.toml:3"):
        load(tmp_path, '[http_service]\ninternal_port = 8000\nauto_stop_machines = "sometimes"\n')


def test_check_intervals_int_ms_and_durations(tmp_path):
    app = load(tmp_path, '[http_service]\ninternal_port = 8000\n[[http_service.checks]]\ninterval = 10000\n'
                         'timeout = "2s"\ngrace_period = "1m30s"\npath = "/h"\n')
    c = app.services[0].checks[0]
    assert (c.interval_s, c.timeout_s, c.grace_period_s, c.path) == (10.0, 2.0, 90.0, "/h")


@pytest.mark.parametrize("raw,seconds", [("120", 120.0), ('"5s"', 5.0), ('"2m0s"', 120.0)])
def test_kill_timeout(tmp_path, raw, seconds):
    assert load(tmp_path, f"kill_timeout = {raw}\n").kill_timeout_s == seconds


def test_experimental_kill_timeout_moves_up(tmp_path):
    assert load(tmp_path, "[experimental]\nkill_timeout = 30\n").kill_timeout_s == 30.0


@pytest.mark.parametrize("bad,line,needle", [
    ('[http_service]\ninternal_port = "eighty"\n', 2, "internal_port"),
    ('[[vm]]\nsize = "a10"\nmemory = 0\n', 3, "memory = 0"),
    ('[[vm]]\nsize = "a10"\nmemory = "lots"\n', 3, "memory"),
    ('[[vm]]\nsize = "huge-gpu"\n', 2, "unknown VM size"),
    ('[http_service]\ninternal_port = 70000\n', 2, "not a TCP port"),
    ('[[mounts]]\nsource = "d"\ndestination = "data"\n', 3, "absolute"),
    ('kill_signal = "SIGHUP"\n', 1, "kill_signal"),
    ('[http_service]\ninternal_port = 1\n[http_service.concurrency]\ntype = "bytes"\n', 4, "concurrency type"),
])
def test_impossible_values_are_errors_with_file_line(tmp_path, bad, line, needle):
    with pytest.raises(ConfigError) as ei:
        load(tmp_path, bad)
    assert f"fly.toml:{line}" in str(ei.value)
    assert needle in str(ei.value)
    assert ei.value.exit_code == 2


def test_malformed_toml_names_the_line(tmp_path):
    with pytest.raises(ConfigError) as ei:
        load(tmp_path, 'app = "x"\n[env]\nA = unquoted value\n')
    assert "fly.toml:3" in str(ei.value) and "not valid TOML" in str(ei.value)


def test_several_errors_are_reported_together(tmp_path):
    with pytest.raises(ConfigError) as ei:
        load(tmp_path, '[http_service]\ninternal_port = "x"\n[[vm]]\nmemory = 0\n')
    assert "2 problems" in str(ei.value) and "fly.toml:2" in str(ei.value) and "fly.toml:4" in str(ei.value)


# ---- env, processes, experimental, files, unknown keys -----------------------------------------------

def test_env_non_strings_coerced_like_go(tmp_path):
    app = load(tmp_path, '[env]\nA = 123\nB = true\nC = 1.5\nD = "s"\n')
    assert app.env_map == {"A": "123", "B": "true", "C": "1.5", "D": "s"}
    assert app.env_line("B") == "fly.toml:3"


def test_env_array_of_tables_merged(tmp_path):
    app = load(tmp_path, '[[env]]\nA = "1"\n[[env]]\nB = "2"\n')
    assert app.env_map == {"A": "1", "B": "2"}


def test_experimental_string_is_not_shell_split(tmp_path):
    app = load(tmp_path, '[experimental]\ncmd = "python serve.py --port 8000"\nentrypoint = "/start.sh"\n')
    assert app.experimental_cmd == ("python serve.py --port 8000",)
    assert app.experimental_entrypoint == ("/start.sh",)


def test_processes_table_and_legacy_array(tmp_path):
    assert dict(load(tmp_path, '[processes]\napp = "serve"\nworker = "work"\n').processes) == {"app": "serve",
                                                                                                "worker": "work"}
    assert dict(load(tmp_path, '[[processes]]\nname = "app"\ncommand = "serve"\n').processes) == {"app": "serve"}


def test_files_three_kinds_and_validation(tmp_path):
    app = load(tmp_path, '[[files]]\nguest_path = "/a"\nlocal_path = "a"\n[[files]]\nguest_path = "/b"\n'
                         'raw_value = "eA=="\n[[files]]\nguest_path = "/c"\nsecret_name = "C"\n')
    assert [(f.guest_path, f.local_path, f.has_raw_value, f.secret_name) for f in app.files] == [
        ("/a", "a", False, None), ("/b", None, True, None), ("/c", None, False, "C")]
    with pytest.raises(ConfigError, match="exactly one"):
        load(tmp_path, '[[files]]\nguest_path = "/a"\nlocal_path = "a"\nraw_value = "x"\n')


def test_unknown_keys_are_findings_with_line(tmp_path):
    app = load(tmp_path, 'app = "x"\n[machines]\ncpus = 2\n[http_service]\ninternal_port = 80\nmystery = 1\n')
    unknown = {f.message.split("`")[1]: f.where for f in app.findings if f.code == "unknown-key"}
    assert unknown == {"machines": "fly.toml:2", "http_service.mystery": "fly.toml:6"}


def test_untranslatable_keys_reported(tmp_path):
    app = load(tmp_path, 'swap_size_mb = 1024\n[metrics]\nport = 9091\npath = "/m"\n[[statics]]\nguest_path = "/p"\n'
                         'url_prefix = "/s"\n')
    noeq = {f.where for f in app.findings if f.code == "no-equivalent"}
    assert noeq == {"fly.toml:1", "fly.toml:2", "fly.toml:5"}


def test_app_name_forms(tmp_path):
    assert load(tmp_path, "app = ''  # change me\n").app is None
    assert "no-app-name" in codes(load(tmp_path, "primary_region = 'ord'\n"))
    assert "app-placeholder" in codes(load(tmp_path, 'app = "{{APP_NAME}}"\n'))


def test_deploy_strategy_table_warns(tmp_path):
    app = load(tmp_path, '[deploy.strategy]\nrolling = "immediate"\n')
    assert "deploy-strategy-table" in codes(app)


def test_fixture_apps_parse():
    for d in sorted(FIXTURES.iterdir()):
        app = load_fly_config(d / "fly.toml")
        assert app.config_path == "fly.toml"


def test_json_and_yaml_configs(tmp_path):
    j = write(tmp_path, "fly.json", '{"app": "j", "vm": [{"size": "l40s"}], "http_service": {"internal_port": 80}}')
    assert load_fly_config(j).gpu.kind == "l40s"
    y = write(tmp_path, "fly.yaml", "app: y\nvm:\n  size: a10\nmounts:\n  source: d\n  destination: /d\n")
    a = load_fly_config(y)
    assert a.gpu.kind == "a10" and a.mounts[0].destination == "/d"


@pytest.mark.parametrize("data,needle", [
    (b"\x00\x01\x02binary", "binary"),
    (b'app = "caf\xe9"\n', "not valid UTF-8"),
])
def test_bad_encodings(tmp_path, data, needle):
    p = tmp_path / "fly.toml"
    p.write_bytes(data)
    with pytest.raises(ConfigError, match=needle):
        load_fly_config(p)


def test_utf16_and_bom_and_crlf_are_read(tmp_path):
    p = tmp_path / "fly.toml"
    p.write_bytes('app = "u16"\r\n[[vm]]\r\nsize = "a10"\r\n'.encode("utf-16"))
    assert load_fly_config(p).app == "u16"
    p.write_bytes(b'\xef\xbb\xbfapp = "bom"\r\n[http_service]\r\ninternal_port = "x"\r\n')
    with pytest.raises(ConfigError, match="fly.toml:3"):
        load_fly_config(p)
