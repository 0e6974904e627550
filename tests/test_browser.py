"""The report and the served page in a real browser: headless Chromium (Debian's chromium and chromium-driver,
driven through Selenium). Skipped, with a line saying so, where they are not installed; .ci/run installs them."""
import base64
import io
import shutil
import time

import numpy as np
import pytest
from PIL import Image

from gankit.cli import main
from gankit.run import open_run
from gankit.serve import serve_in_thread

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="no Chromium and chromedriver on this machine: "
                                "the browser tests are skipped (apt-get install chromium chromium-driver; .ci/run does)")


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1600"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    yield driver
    driver.quit()


def _wait(condition, timeout: float = 30.0):
    deadline = time.time() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.time() < deadline, "timed out"
        time.sleep(0.05)


def _errors(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def _decode(uri: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))))


def test_the_report_opens_without_errors_and_draws_its_plots(browser, share_runs, capsys):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    run = share_runs["ring"]
    assert main(["report", str(run)]) == 0
    browser.get((run / "report.html").resolve().as_uri())
    assert _errors(browser) == []
    plots = browser.find_elements(By.CSS_SELECTOR, "#plots svg")
    assert len(plots) >= 4
    shot = Image.open(io.BytesIO(browser.get_screenshot_as_png())).convert("RGB")
    scale = shot.width / browser.execute_script("return window.innerWidth")
    r = plots[0].rect
    box = [int(v * scale) for v in (r["x"], r["y"], r["x"] + r["width"], r["y"] + r["height"])]
    pixels = np.asarray(shot.crop(box)).reshape(-1, 3).astype(int)
    assert (pixels.sum(1) < 600).mean() > 0.02             # not blank: axes, text and curves drawn
    coloured = np.abs(pixels - pixels.mean(1, keepdims=True)).max(1) > 40
    assert coloured.sum() > 50                              # the curves, in colour
    # the scrubber walks the sample grids over training
    slider, frame = browser.find_element(By.ID, "scrub"), browser.find_element(By.ID, "frame")
    last = frame.get_attribute("src")
    slider.send_keys(Keys.HOME)
    assert browser.find_element(By.ID, "label").text.startswith("step 5 (1 of")
    assert frame.get_attribute("src") != last
    assert _errors(browser) == []


@pytest.fixture
def served(share_runs):
    stops = []

    def start(name):
        loaded = open_run(share_runs[name])
        base, stop = serve_in_thread(loaded, name)
        stops.append(stop)
        return base, loaded

    yield start
    for stop in stops:
        stop()


def test_the_page_draws_picks_a_class_and_slides(browser, served):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    from gankit.images import default_scale, grid_image
    from gankit.run import draw
    import torch

    base, loaded = served("cond")
    browser.get(base + "/")
    samples = browser.find_element(By.ID, "samples")
    first = _wait(lambda: samples.get_attribute("src") or None)
    Select(browser.find_element(By.ID, "class")).select_by_visible_text("7")
    shown = _wait(lambda: (samples.get_attribute("src") != first) and samples.get_attribute("src"))
    want = grid_image(draw(loaded, 16, seed=0, labels=torch.full((16,), 7)), scale=max(2, default_scale(8)))
    assert np.array_equal(_decode(shown), np.asarray(want))          # what the page shows is class 7's samples
    between = browser.find_element(By.ID, "between")
    _wait(lambda: between.get_attribute("data-t") == "0.5")
    slider = browser.find_element(By.ID, "t")
    slider.send_keys(Keys.END)
    _wait(lambda: between.get_attribute("data-t") == "1")
    z = loaded.recipe.latents(1, generator=torch.Generator().manual_seed(1))
    want = grid_image(loaded.recipe.sample(z, torch.tensor([7])).cpu(), scale=max(2, default_scale(8)))
    assert np.array_equal(_decode(between.get_attribute("src")), np.asarray(want))   # t = 1: seed B's sample
    browser.find_element(By.ID, "n").clear()
    browser.find_element(By.ID, "n").send_keys("500")
    browser.find_element(By.ID, "draw").click()
    assert "n: must be in [1, 64]" in _wait(lambda: browser.find_element(By.ID, "error").text)
    assert [e for e in _errors(browser) if "400" not in e] == []   # the refused request is the only one logged


def test_the_page_translates_an_uploaded_image(browser, served, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    base, loaded = served("stargan")
    browser.get(base + "/")
    _wait(lambda: browser.find_element(By.ID, "translate-section").is_displayed())
    Select(browser.find_element(By.ID, "to")).select_by_visible_text("bold")
    picture = tmp_path / "digit.png"
    Image.fromarray((np.random.default_rng(1).random((16, 16)) * 255).astype(np.uint8), "L").save(picture)
    browser.find_element(By.ID, "upload").send_keys(str(picture))
    out = browser.find_element(By.ID, "translated")
    shown = _wait(lambda: out.get_attribute("src"))
    from starlette.testclient import TestClient

    from gankit.serve import build_app

    api = TestClient(build_app(loaded, "stargan")).post("/api/translate", params={"to": "bold"},
                                                         content=picture.read_bytes()).json()["image"]
    assert np.array_equal(_decode(shown), _decode(api))
    assert _decode(shown).shape[1] > _decode(shown).shape[0]   # input | output side by side
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    browser.find_element(By.ID, "upload").send_keys(str(text))
    assert "not a readable image" in _wait(lambda: browser.find_element(By.ID, "error").text)
