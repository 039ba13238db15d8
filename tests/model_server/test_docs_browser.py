"""The offline /docs page in headless chromium: it renders the OpenAPI document and
its "Try it" form really calls the API."""

from __future__ import annotations

import os

import pytest
from axe_check import assert_accessible
from server_samples import png_bytes, speckle_image

pytestmark = pytest.mark.browser


@pytest.fixture
def browser(artifacts_dir):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options

    options = Options()
    options.binary_location = os.environ.get("SONOTRACE_CHROMIUM", "/usr/bin/chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--no-first-run", "--window-size=1280,900",
                 "--force-prefers-reduced-motion"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options)
    try:
        yield driver
    finally:
        driver.save_screenshot(str(artifacts_dir / "docs.png"))
        driver.quit()


def test_docs_render_and_try_it(browser, live_model_server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{live_model_server}/docs#predict")
    wait = WebDriverWait(browser, 30)
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "details.op.post")))
    paths = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".op .path")]
    for path in ("/health", "/predict", "/classify", "/vectorize", "/models", "Schemas"):
        assert path in paths
    assert browser.find_element(By.ID, "version").text.startswith("v")
    predict = browser.find_element(By.ID, "predict")
    assert predict.get_attribute("open") is not None  # opened from the URL fragment
    assert "max_vertices" in predict.text and "413" in predict.text

    image = tmp_path / "scan.png"
    image.write_bytes(png_bytes(speckle_image(80, 100)))
    predict.find_element(By.CSS_SELECTOR, "input[type=file][name=image]").send_keys(str(image))
    predict.find_element(By.CSS_SELECTOR, "input[name=max_vertices]").send_keys("12")
    predict.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    result = wait.until(
        ec.presence_of_element_located((By.CSS_SELECTOR, "#predict .result pre"))
    )
    status = predict.find_element(By.CSS_SELECTOR, ".result .status").text
    assert status == "200"
    assert '"width": 100' in result.text and '"height": 80' in result.text
    mask = predict.find_element(By.CSS_SELECTOR, ".result img[alt=mask]")
    assert mask.get_attribute("src").startswith("data:image/png;base64,")
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors


def test_docs_pass_axe(browser, live_model_server):
    """axe-core (tests/axe_check.py) on the page with every operation open."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{live_model_server}/docs")
    WebDriverWait(browser, 30).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, "details.op.post")))
    browser.execute_script(
        "document.querySelectorAll('details').forEach(function (d) { d.open = true; });")
    assert_accessible(browser, "/docs")
