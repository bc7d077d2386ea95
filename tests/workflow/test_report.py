"""`snakemake --report` builds offline from the smoke results, with the workflow description, a
section per study (plots + summary table), and the audit result."""

from __future__ import annotations

import base64
import json
import re

import pytest

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def report_html(smoke):
    out = smoke.work / "report.html"
    smoke.snakemake("--report", str(out))
    return out.read_text()


@pytest.fixture(scope="module")
def sections(report_html):
    """category -> subcategory -> files, as the report's own index lists them."""
    m = re.search(r"var categories = (\{.*?\});\n", report_html)
    assert m, "no category index in the report"
    return json.loads(m.group(1))


def embedded(report_html: str, path: str) -> str:
    m = re.search(
        re.escape(f'"{path}": {{') + r'.*?"data_uri": "data:[^,]*,([A-Za-z0-9+/=]+)"', report_html
    )
    assert m, f"{path} is not embedded in the report"
    return base64.b64decode(m.group(1)).decode()


def test_report_has_the_workflow_description(report_html):
    assert "turns five published studies" in report_html  # report/workflow.rst
    assert "Configuration of this run: seed 0" in report_html  # rendered with the config


def test_report_has_a_section_per_study_with_its_plots_and_table(smoke, sections):
    assert set(smoke.config["studies"]) | {"audit"} <= set(sections)
    for study in smoke.config["studies"]:
        assert sections[study]["tables"] == [f"results/report/tables/{study}.html"]
    plots = {
        p.relative_to(smoke.work).as_posix() for p in (smoke.work / "results/plots").glob("*.png")
    }
    listed = {f for sub in sections.values() for files in sub.values() for f in files}
    assert plots and plots <= listed


def test_report_has_the_audit_result(report_html, sections):
    assert sections["audit"] == {"tables": ["results/report/tables/audit.html"]}
    page = embedded(report_html, "results/report/tables/audit.html")
    assert "all match" in page and "<table" in page


def test_report_opens_with_the_scorecard_of_all_five_papers(report_html, sections):
    # the report lists categories by name: "0 scorecard" sorts first
    assert sorted(sections)[0] == "0 scorecard"
    page = embedded(report_html, "results/report/scorecard.html")
    for study in ("distillation", "faithfulness", "response_source", "generalization",
                  "data_scaling"):  # fmt: skip
        assert f"<td>{study}</td>" in page
    assert "not_tested" in page and "Replication scorecard" in page


def test_each_study_section_opens_with_its_claims(smoke, report_html, sections):
    for study in smoke.config["studies"]:
        assert sections[study]["claims"] == [f"results/report/claims/{study}.html"]
        page = embedded(report_html, f"results/report/claims/{study}.html")
        assert "verdict" in page and "ci_low" in page


def test_report_renders_in_a_real_browser(smoke, report_html, tmp_path):
    """Headless Chromium loads the report (its JavaScript builds the page) and shows the
    scorecard first and every study's section in the menu; a screenshot is kept for a look."""
    import shutil
    import subprocess

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("no chromium here (.ci/run installs Debian's chromium)")
    page = smoke.work / "report.html"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000"]
    dom = subprocess.run([browser, *flags, "--dump-dom", page.as_uri()], capture_output=True,
                         text=True, timeout=120).stdout  # fmt: skip
    menu = re.findall(r">(0 scorecard|[a-z_]+)<", dom)
    assert "0 scorecard" in menu, "the scorecard section is not in the rendered menu"
    for study in smoke.config["studies"]:
        assert study in menu, f"no {study} section in the rendered report"
    shot = tmp_path / "report.png"
    subprocess.run([browser, *flags, "--window-size=1400,900", f"--screenshot={shot}",
                    page.as_uri()], capture_output=True, timeout=120)  # fmt: skip
    assert shot.exists() and shot.stat().st_size > 20_000  # a rendered page, not a blank one
