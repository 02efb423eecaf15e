"""The dashboard in a real browser: headless Chromium (Debian's package, driven by Playwright) against a
running stack — a real gRPC server on the real embedded database, and the dashboard with the shim beside it
on one free port, as `pipelinejobs up` serves them.

The test signs in, reads the table, filters it by state, opens a job, and then, while the page is open, an
event is sent through the shim's HTTP endpoint from another thread: the timeline, the state badge and the
diagram's highlight must follow without a reload. Screenshots go to test-output/<test name>/.

Chromium is never downloaded (Playwright's own browser build cannot be fetched here): the test drives
/usr/bin/chromium, which `make test` installs (scripts/system-deps.sh). Without it the test fails and says so.
"""

from __future__ import annotations

import re
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect, sync_playwright
from prov.model import ProvDocument

from pipelinejobs_client import JobsClient
from pipelinejobs_server.shim import ShimSettings
from pipelinejobs_server.storage.embedded import EmbeddedDatabase
from pipelinejobs_server.ui import DashboardSettings
from tests.servers import DashboardThread, ServerThread, start_grpc_server
from tests.support import CALLBACK_KEY_SECRET, CLIENT_KEY

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
WAIT_MS = 10_000


@pytest.fixture(scope="module")
def stack(embedded: EmbeddedDatabase) -> Iterator[tuple[ServerThread, DashboardThread]]:
    server = start_grpc_server(embedded)
    shim = DashboardThread(
        DashboardSettings(server=server.address),
        ShimSettings(server=server.address, callback_key_secret=CALLBACK_KEY_SECRET),
    ).start()
    yield server, shim
    shim.stop()
    server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[BrowserContext]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium (scripts/system-deps.sh)")
    with (
        tempfile.TemporaryDirectory(prefix="pipelinejobs-chromium-") as profile,
        sync_playwright() as playwright,
    ):
        # A fresh profile of our own: nothing from another run (cookies, cache) can leak into this one.
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        yield context
        context.close()


def send_through_shim(shim_url: str, job_uuid: str, token: str, event: str) -> None:
    """POST a PipelineJobEvent to the shim, as an executor would."""
    body = {"uuid": job_uuid, "event": event, "token": token, "data": {"from": "the browser test"}}
    answer = httpx.post(f"{shim_url}/v1/events", json=body, timeout=10)
    assert answer.json()["outcome"] == "applied", answer.text


def test_the_dashboard_shows_jobs_and_follows_one_live(
    stack: tuple[ServerThread, DashboardThread], browser: BrowserContext, output_dir: Path
) -> None:
    server, shim = stack
    experiment = f"exp-{uuid.uuid4().hex[:8]}"
    with JobsClient(server.address, api_key=CLIENT_KEY) as client:
        pipeline = client.register_pipeline("fcs-etl", ["fcs-etl@0.4.0u2"]).pipeline.uuid
        jobs = [
            client.create_job(
                pipeline, lab="UW_BIOFAB", experiment=experiment, sample=f"sample-{n}", agent="reactor"
            )
            for n in range(5)
        ]
        for created in jobs[:3]:
            client.send_event(created.job.uuid, "run", token=created.token, data={"executor": "stampede2"})
        client.send_event(jobs[2].job.uuid, "fail", token=jobs[2].token)
        watched = jobs[0]

    page: Page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    # Sign in: the dashboard asks for a key, and keeps it only in an HttpOnly, SameSite=Strict cookie.
    page.goto(f"{shim.url}/ui/?experiment={experiment}")
    expect(page.locator("#api-key")).to_be_visible()
    page.fill("#api-key", CLIENT_KEY)
    page.click("#sign-in")
    expect(page.locator("#jobs tbody tr")).to_have_count(5)
    (cookie,) = [c for c in browser.cookies() if c["name"] == "pipelinejobs_ui_key"]
    assert cookie["httpOnly"]
    assert cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/ui"
    assert CLIENT_KEY not in page.content()
    assert CLIENT_KEY not in page.url
    expect(page.locator('#counts a[data-state="RUNNING"] strong')).to_have_text("2")
    expect(page.locator('#counts a[data-state="CREATED"] strong')).to_have_text("2")
    expect(page.locator('#counts a[data-state="FAILED"] strong')).to_have_text("1")
    page.screenshot(path=output_dir / "01-jobs.png", full_page=True)

    # Filter by state.
    page.select_option("#filter-state", "RUNNING")
    page.click("#apply-filters")
    expect(page.locator("#jobs tbody tr")).to_have_count(2)
    expect(page.locator("#jobs tbody .badge")).to_have_text(["RUNNING", "RUNNING"])
    assert "state=RUNNING" in page.url
    page.screenshot(path=output_dir / "02-filtered-running.png", full_page=True)

    # Open the job; the live stream connects.
    page.click(f'#jobs tr[data-uuid="{watched.job.uuid}"] a')
    expect(page.locator("#job-state")).to_have_text("RUNNING")
    expect(page.locator("#live")).to_have_attribute("data-status", "live", timeout=WAIT_MS)
    expect(page.locator("#archive-path")).to_have_text(watched.job.archive_path)
    expect(page.locator('#fsm g.node.current[data-state="RUNNING"]')).to_have_count(1)
    expect(page.locator('#fsm g.edge.taken[data-source="CREATED"][data-target="RUNNING"]')).to_have_count(1)
    expect(page.locator("#timeline li")).to_have_count(2)
    page.screenshot(path=output_dir / "03-job-running.png", full_page=True)

    # An executor reports the end through the shim while the page is open: no reload, the page follows.
    # The page's stream is live (data-status above), so the event is sent at once: the page must follow it.
    page.evaluate("window.notReloaded = true")
    send_through_shim(shim.url, watched.job.uuid, watched.token, "finish")
    expect(page.locator("#job-state")).to_have_text("FINISHED", timeout=WAIT_MS)
    expect(page.locator("#timeline li").first.locator(".event")).to_have_text("finish")
    expect(page.locator("#timeline li")).to_have_count(3)
    expect(page.locator('#fsm g.node.current[data-state="FINISHED"]')).to_have_count(1)
    expect(page.locator('#fsm g.node.current[data-state="RUNNING"]')).to_have_count(0)
    expect(page.locator('#fsm g.edge.taken[data-source="RUNNING"][data-target="FINISHED"]')).to_have_count(1)
    expect(page.locator("#path .badge").last).to_have_text("FINISHED")
    expect(page.locator("#legend-current")).to_have_class(re.compile(r"\bstate-FINISHED\b"))
    assert page.evaluate("window.notReloaded === true"), "the page reloaded"
    page.screenshot(path=output_dir / "04-job-finished-live.png", full_page=True)

    # The page links to the job's provenance, which the prov package reads and which names every event.
    link = page.locator("#provenance-link").get_attribute("href")
    assert link is not None
    answer = page.request.get(f"{shim.url}{link}")  # with the browser's cookie
    assert answer.ok
    assert answer.headers["content-type"].startswith("application/json")
    document = ProvDocument.deserialize(content=answer.text(), format="json")
    labels = {str(label) for record in document.get_records() for label in record.get_attribute("prov:label")}
    assert {"seq 1: create", "seq 2: run", "seq 3: finish"} <= labels
    assert errors == []
    page.close()


def signed_in(page: Page, url: str) -> None:
    """Open ``url``, signing in first when the browser has no key yet (this test may run alone)."""
    page.goto(url)
    if page.locator("#api-key").count():
        page.fill("#api-key", CLIENT_KEY)
        page.click("#sign-in")


def test_the_dashboard_filters_by_lab_and_sample_and_fits_a_narrow_window(
    stack: tuple[ServerThread, DashboardThread], browser: BrowserContext, output_dir: Path
) -> None:
    server, shim = stack
    experiment = f"exp-{uuid.uuid4().hex[:8]}"
    samples = [f"sample.uw_biofab.{uuid.uuid4().hex[:6]}/A{n}" for n in range(3)]
    with JobsClient(server.address, api_key=CLIENT_KEY) as client:
        pipeline = client.register_pipeline("fcs-etl", ["fcs-etl@0.4.0u2"]).pipeline.uuid
        for lab, sample in (("UW_BIOFAB", samples[0]), ("UW_BIOFAB", samples[1]), ("Ginkgo", samples[2])):
            client.create_job(pipeline, lab=lab, experiment=experiment, sample=sample)

    page: Page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    signed_in(page, f"{shim.url}/ui/?experiment={experiment}")
    expect(page.locator("#jobs tbody tr")).to_have_count(3)
    lab_column = page.locator("#jobs thead th").all_inner_texts().index("Lab")
    labs = page.locator(f"#jobs tbody td:nth-child({lab_column + 1})").all_inner_texts()
    assert sorted(labs) == ["Ginkgo", "UW_BIOFAB", "UW_BIOFAB"]

    # By lab, typed in the form: the counts follow.
    page.fill("#filter-lab", "UW_BIOFAB")
    page.click("#apply-filters")
    expect(page.locator("#jobs tbody tr")).to_have_count(2)
    expect(page.locator('#counts a[data-state="CREATED"] strong')).to_have_text("2")
    assert "lab=UW_BIOFAB" in page.url
    expect(page.locator("#filter-lab")).to_have_value("UW_BIOFAB")

    # And by sample, exactly: one job, the one with that sample.
    page.fill("#filter-sample", samples[1])
    page.click("#apply-filters")
    expect(page.locator("#jobs tbody tr")).to_have_count(1)
    expect(page.locator("#jobs tbody td.wrap")).to_have_text(samples[1])
    page.screenshot(path=output_dir / "01-lab-and-sample.png", full_page=True)
    page.fill("#filter-lab", "Ginkgo")
    page.click("#apply-filters")
    expect(page.locator("#no-jobs")).to_be_visible()

    # A narrow window: the table scrolls inside its card, the page itself does not widen, and a sample's
    # name is not broken a letter or two at a time.
    page.set_viewport_size({"width": 420, "height": 900})
    page.goto(f"{shim.url}/ui/?experiment={experiment}")
    expect(page.locator("#jobs tbody tr")).to_have_count(3)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    card = page.locator("#jobs").locator("xpath=ancestor::section[1]").bounding_box()
    scroller = page.locator(".table-scroll").bounding_box()
    assert card is not None
    assert scroller is not None
    assert scroller["x"] + scroller["width"] <= card["x"] + card["width"] + 0.5
    sample_cell = page.locator("#jobs tbody td.wrap").first.bounding_box()
    assert sample_cell is not None
    assert sample_cell["width"] >= 100, sample_cell
    page.screenshot(path=output_dir / "02-narrow.png", full_page=True)
    assert errors == []
    page.close()


def test_the_state_machine_drawing_keeps_its_labels_apart(
    stack: tuple[ServerThread, DashboardThread], browser: BrowserContext, output_dir: Path
) -> None:
    server, shim = stack
    with JobsClient(server.address, api_key=CLIENT_KEY) as client:
        pipeline = client.register_pipeline("fcs-etl", ["fcs-etl@0.4.0u2"]).pipeline.uuid
        created = client.create_job(pipeline, lab="UW_BIOFAB", sample=f"drawing-{uuid.uuid4().hex[:8]}")
        client.send_event(created.job.uuid, "run", token=created.token)
        client.send_event(created.job.uuid, "fail", token=created.token)

    page: Page = browser.new_page()
    page.set_viewport_size({"width": 1280, "height": 900})
    signed_in(page, f"{shim.url}/ui/jobs/{created.job.uuid}")
    expect(page.locator("#job-state")).to_have_text("FAILED")
    page.locator("#fsm").screenshot(path=output_dir / "01-state-machine.png")
    page.locator(".legend").screenshot(path=output_dir / "02-legend.png")
    # Every label inside the drawing's boxes and clear of every other label, as the browser lays them out.
    report = page.evaluate(
        """() => {
        const svg = document.getElementById("fsm");
        const box = (element) => element.getBBox();
        const labels = [...svg.querySelectorAll("g.label:not(.wildcard) text, g.edge.loop text")].map(
            (text) => ({text: text.textContent, box: box(text), loop: text.closest("g.loop") !== null,
                        state: text.closest("g").dataset.source}));
        const overlap = (a, b) => a.x < b.x + b.width && b.x < a.x + a.width &&
                                  a.y < b.y + b.height && b.y < a.y + a.height;
        const clashes = [];
        labels.forEach((a, i) => labels.slice(i + 1).forEach((b) => {
            if (overlap(a.box, b.box)) clashes.push(a.text + " / " + b.text);
        }));
        const overflows = labels.filter((label) => label.loop).filter((label) => {
            const rect = box(svg.querySelector(`g.node[data-state="${label.state}"] rect`));
            // Room for a font 15% wider than this machine's (the reviewer's spilled out of this box).
            const room = Math.max(4, 0.08 * label.box.width);
            return label.box.x < rect.x + room || label.box.x + label.box.width > rect.x + rect.width - room;
        }).map((label) => label.text);
        // Painted after every line, so that a line crossing a label passes under its white halo.
        const all = [...svg.querySelectorAll("*")];
        const lastLine = Math.max(...[...svg.querySelectorAll("g.edge path")].map((e) => all.indexOf(e)));
        const under = labels.length && [...svg.querySelectorAll("g.label text")].some(
            (e) => all.indexOf(e) < lastLine);
        return {clashes, overflows, under};
    }"""
    )
    assert report == {"clashes": [], "overflows": [], "under": False}
    # The legend's swatch for "its state now" has the colour of the job's state, as its box does.
    swatch = page.locator(".legend .key.current").evaluate("e => getComputedStyle(e).backgroundColor")
    node = page.locator("#fsm g.node.current rect").evaluate("e => getComputedStyle(e).fill")
    badge = page.locator("#job-state").evaluate("e => getComputedStyle(e).backgroundColor")
    assert swatch == node == badge == "rgb(220, 38, 38)"  # FAILED's red
    page.close()


def test_the_activity_page_follows_every_job_live_with_its_filter(
    stack: tuple[ServerThread, DashboardThread], browser: BrowserContext, output_dir: Path
) -> None:
    server, shim = stack
    lab = f"lab-{uuid.uuid4().hex[:8]}"
    page: Page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{shim.url}/ui/activity?lab={lab}&event=run,finish")
    if page.locator("#api-key").count():
        page.fill("#api-key", CLIENT_KEY)
        page.click("#sign-in")
    expect(page.locator("#live")).to_have_attribute("data-status", "live", timeout=WAIT_MS)
    with JobsClient(server.address, api_key=CLIENT_KEY) as client:
        pipeline = client.register_pipeline("activity", ["activity@1"]).pipeline.uuid
        ours = client.create_job(pipeline, lab=lab, sample="ours")
        theirs = client.create_job(pipeline, lab="another-lab", sample=f"theirs-{lab}")
        client.send_event(theirs.job.uuid, "run", token=theirs.token)  # another lab: not on this page
        client.send_event(ours.job.uuid, "run", token=ours.token)
        expect(page.locator("#activity-rows tr")).to_have_count(1, timeout=WAIT_MS)
        send_through_shim(shim.url, ours.job.uuid, ours.token, "finish")
    expect(page.locator("#activity-rows tr")).to_have_count(2, timeout=WAIT_MS)
    expect(page.locator("#activity-rows tr").first).to_have_attribute("data-event", "finish")
    expect(page.locator("#activity-rows tr").first.locator(".badge")).to_have_text("FINISHED")
    assert {page.locator("#activity-rows tr").nth(n).get_attribute("data-job") for n in range(2)} == {
        ours.job.uuid
    }
    page.screenshot(path=output_dir / "activity-live.png", full_page=True)
    assert errors == []
    page.close()
