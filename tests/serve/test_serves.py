"""Each fixture app x target, migrated with `flymigrate apply` as a user would and run the way the platform
would (tests/serve/harness.py): it must serve, or its plan must say BLOCKED with the reason.

Today's generator produces deployments that do not serve; those cases are marked ``xfail(strict=True)`` with the
reasons the harness gives (``KNOWN``). When a fix makes a case serve, the strict xfail turns into a failure that
says so: remove the case from ``KNOWN``. A case that still fails but for none of its listed reasons fails too
(the message has the new reason): update its entry. `scripts/serve_matrix` prints the whole table.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from serve import pipeline

# (app, target) -> reasons the harness gives today (any of them still present keeps the case an expected failure).
# Nothing is left: every fixture app serves on every target or its plan says BLOCKED. (A vLLM app that checks its
# own key in Authorization serves: the RunPod Deployment drops that check, rules.APP_KEY; the ollama app's static
# health adapter is built by the harness from its C stage and answers /ping; clients that sent no key send the
# RunPod key: the base_urls step adds it where they call the app, flymigrate.requestauth.)
KNOWN: dict[tuple[str, str], tuple[str, ...]] = {
}


class DoesNotServe(AssertionError):
    """Raised for a case in KNOWN that still fails for one of its listed reasons."""


def _cases() -> list[object]:
    out = []
    for app in pipeline.APPS:
        for target in pipeline.TARGETS:
            marks = []
            if (app, target) in KNOWN:
                marks.append(pytest.mark.xfail(strict=True, raises=DoesNotServe,
                                               reason="; ".join(KNOWN[(app, target)])))
            out.append(pytest.param(app, target, marks=marks, id=f"{app}-{target}"))
    return out


@pytest.mark.parametrize("app,target", _cases())
def test_deployment_serves_or_is_blocked(app: str, target: str, fakes: pipeline.Fakes, work: Path) -> None:
    case = pipeline.run_case(app, target, fakes, work)
    verdict = case.verdict
    if verdict == "serves" or verdict.startswith("BLOCKED: "):
        return
    reasons = [verdict] + (case.result.static if case.result else []) + (case.result.log if case.result else [])
    known = KNOWN.get((app, target), ())
    if any(k in r for k in known for r in reasons):
        raise DoesNotServe(verdict)
    pytest.fail(f"{app} on {target}: {verdict}" + (" (none of the reasons listed in KNOWN any more: update it)"
                                                   if known else ""))


def test_the_generated_client_auth_is_what_makes_it_serve(fakes: pipeline.Fakes, work: Path) -> None:
    """The harness is not stuck on "serves": the 2 x 80 GB app on RunPod, as generated, serves because its rewritten
    client sends the RunPod key; with the header flymigrate added taken out again, or on a queue endpoint, it does
    not."""
    import json

    case = pipeline.run_case("serve-vllm-2x80", "runpod", fakes, work)
    assert case.result is not None and case.result.serves, case.verdict
    assert any("GET /ping on PORT_HEALTH 8000 -> 200" in x for x in case.result.log)
    client = case.dir / "client.py"
    text = client.read_text()
    added = ", headers={\"Authorization\": f\"Bearer {os.environ['RUNPOD_API_KEY']}\"}"
    assert added in text and "RUNPOD_API_KEY" not in (pipeline.FIXTURES / "serve-vllm-2x80" / "client.py").read_text()
    client.write_text(text.replace(added, ""))
    r = case.rerun()
    assert not r.serves and "RunPod LB wants Authorization" in r.reason
    client.write_text(text)
    spec_path = case.dir / "runpod-endpoint.json"
    spec = json.loads(spec_path.read_text())
    spec["endpoint"]["type"] = "QB"
    spec_path.write_text(json.dumps(spec))
    r = case.rerun()
    assert not r.serves


@pytest.mark.parametrize("app,target", [("serve-tgi", "modal"), ("serve-whisper-baked", "cloudrun")])
def test_a_private_deployment_serves_its_rewritten_client(app: str, target: str, fakes: pipeline.Fakes,
                                                          work: Path) -> None:
    """``--access private``: the platform's front wants its auth (Modal proxy auth; Cloud Run IAM) and the rewritten
    client sends it, read from the environment by name (MODAL_KEY / MODAL_SECRET; CLOUD_RUN_ID_TOKEN)."""
    case = pipeline.run_case(app, target, fakes, work, apply_args=("--access", "private"))
    assert case.result is not None and case.result.serves, case.verdict
    text = (case.dir / "client.py").read_text()
    want = {"modal": "Modal-Secret", "cloudrun": "X-Serverless-Authorization"}[target]
    assert want in text and "wk-harness" not in text and "eyJ" not in text


def test_the_static_health_adapter_is_built_from_its_stage_and_answers_ping(fakes: pipeline.Fakes,
                                                                             work: Path) -> None:
    """ollama's image has no python3, so RunPod's /ping comes from the static C adapter the generated Dockerfile
    builds in an Alpine stage and copies in (``COPY --from=``). The harness plays that stage with this host's
    compiler (from the stage's own RUN line) and the adapter answers /ping: 204 while the server loads, then 200."""
    case = pipeline.run_case("serve-ollama-vol", "runpod", fakes, work)
    assert case.result is not None
    log = case.result.log
    assert "COPY --from=flymigrate-runpod-health" in (case.dir / "Dockerfile").read_text()
    assert any("stage flymigrate-runpod-health (alpine:3.20) played with this host's compiler: gcc" in x
               for x in log), log
    ping = next((x for x in log if "GET /ping on PORT_HEALTH 18080 -> 200" in x), None)
    assert ping is not None and "x 204 while the server loaded" in ping, log
