"""Secrets exports: format detection, every documented quirk, and values that never print."""

from __future__ import annotations

import json

import pytest

from flymigrate.errors import ConfigError
from flymigrate.parse.secrets import detect_format, load_secrets, merge_exports, parse_secrets


def values(export):
    return {s.name: (s.value.reveal() if s.value is not None else None) for s in export.secrets}


def test_dotenv_and_fly_import_rules():
    data = (b"# comment\r\n"
            b"export HF_TOKEN=\"abc#def\" # trailing comment\r\n"
            b"PLAIN=value # comment\r\n"
            b"HASH=x#y\r\n"
            b"SINGLE='a b # c'\r\n"
            b"SPACED = spaced value  \r\n"
            b'MULTI="""line1\r\nline2\r\nline3"""\r\n'
            b'ONELINE="""inner text"""\r\n'
            b"EMPTY=\r\n"
            b"DUP=1\r\nDUP=2\r\n")
    e = parse_secrets(data, "s.env")
    assert e.format == "dotenv"
    assert values(e) == {"HF_TOKEN": "abc#def", "PLAIN": "value", "HASH": "x#y", "SINGLE": "a b # c",
                         "SPACED": "spaced value", "MULTI": "line1\nline2\nline3", "ONELINE": "inner text",
                         "EMPTY": "", "DUP": "2"}
    codes = [f.code for f in e.findings]
    assert "secret-hash" in codes and "secret-duplicate" in codes


def test_unclosed_multiline_is_an_error_not_silently_dropped():
    with pytest.raises(ConfigError, match="s.env:2"):
        parse_secrets(b'A=1\nB="""never\nclosed\n', "s.env")


def test_line_without_equals_names_line_but_not_content():
    with pytest.raises(ConfigError) as ei:
        parse_secrets(b"A=1\nsupersecretvalue\n", "s.env")
    assert "s.env:2" in str(ei.value) and "supersecretvalue" not in str(ei.value)


def test_invalid_name():
    with pytest.raises(ConfigError, match="s.env:1"):
        parse_secrets(b"1BAD=x\n", "s.env")


def test_env_dump_drops_runtime_and_env_and_image_vars():
    dump = (b"PATH=/usr/bin\nHOME=/root\nHOSTNAME=abc\nFLY_APP_NAME=x\nFLY_REGION=ord\nPRIMARY_REGION=ord\n"
            b"MODEL=foo\nLANG=C\nCUDA_VERSION=12\nHF_TOKEN=hf_x=y\nAPI_KEY=\"quoted stays\"\n")
    e = parse_secrets(dump, "env.txt", env_names=["MODEL"], image_env_names=["CUDA_VERSION"])
    assert e.format == "env-dump"
    assert values(e) == {"HF_TOKEN": "hf_x=y", "API_KEY": '"quoted stays"'}
    assert "MODEL" in e.dropped and "FLY_APP_NAME" in e.dropped and "CUDA_VERSION" in e.dropped


def test_proc_environ_nul_separated():
    e = parse_secrets(b"PATH=/bin\x00HF_TOKEN=a\nb\x00FLY_X=1\x00", "environ")
    assert values(e) == {"HF_TOKEN": "a\nb"}


@pytest.mark.parametrize("payload", [
    [{"Name": "HF_TOKEN", "Digest": "abc", "CreatedAt": "2024-01-01T00:00:00Z"}],
    [{"name": "HF_TOKEN", "digest": "abc", "updated_at": "x", "created_at": "y"}],
    [{"name": "HF_TOKEN", "digest": "abc", "status": "Deployed"}],
    [{"name": "HF_TOKEN", "digest": "abc"}],
])
def test_all_fly_secrets_list_json_shapes(payload):
    e = parse_secrets(json.dumps(payload, indent=4).encode(), "s.json")
    assert e.format == "fly-json" and values(e) == {"HF_TOKEN": None}


def test_fly_table_output():
    t = b"NAME     \tDIGEST          \tCREATED AT\nHF_TOKEN \tb9e37b7b239ee4ae\t17s ago\n* STAGED\tabc\t\n"
    e = parse_secrets(t, "t")
    assert e.format == "fly-table" and set(values(e)) == {"HF_TOKEN", "STAGED"}


def test_merge_names_from_list_values_from_dotenv():
    names = parse_secrets(b'[{"name":"A","digest":"x"},{"name":"B","digest":"y"}]', "list.json")
    vals = parse_secrets(b"A=1\nC=3\n", "vals.env")
    m = merge_exports([names, vals])
    assert values(m) == {"A": "1", "B": None}
    assert any(f.code == "not-a-fly-secret" for f in m.findings)


def test_values_never_print():
    e = parse_secrets(b"TOKEN=canary-0123456789\n", "s.env")
    s = e.secrets[0]
    for rendering in (repr(e), str(e), repr(s), f"{s.value}", str(s.value), "%s" % s.value):
        assert "canary-0123456789" not in rendering


def test_file_checks(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_secrets(tmp_path / "missing.env")
    big = tmp_path / "big.env"
    with open(big, "wb") as fh:
        fh.truncate(17 * 1024 * 1024)
    with pytest.raises(ConfigError, match="MiB"):
        load_secrets(big)
    binf = tmp_path / "bin.env"
    binf.write_bytes(b"\x00\x01\x02\x03not text")
    with pytest.raises(ConfigError, match="binary"):
        load_secrets(binf)
    loose = tmp_path / "loose.env"
    loose.write_text("A=1\n")
    loose.chmod(0o644)
    assert any(f.code == "secrets-file-permissions" for f in load_secrets(loose).findings)
    loose.chmod(0o600)
    assert not any(f.code == "secrets-file-permissions" for f in load_secrets(loose).findings)


def test_detect_format():
    assert detect_format(b"[]") == "fly-json"
    assert detect_format(b"A=1\n") == "dotenv"
    assert detect_format(b"PATH=/bin\nHOME=/root\nX=1\n") == "env-dump"
