#!/usr/bin/env python3
"""Drives the page (web/dist) in headless Chromium through WebDriver, as a person would, and
prints what it saw as one JSON line; tests/web.rs checks it.

    python3 web/tests/browser.py --url http://127.0.0.1:8000/ --image ankle.png \
        --golden a.png b.png ... --timing c.png ... --screenshot page.png

Steps: wait for the page to be ready; drop --image as a File onto the drop zone; draw a stroke
on the canvas with pointer actions (and save --screenshot); drop bytes that are no image, then
--image again; drop each --golden image and read all ten probabilities; drop each --timing
image and read how long each classification took. Needs Selenium (Debian's python3-selenium or
PyPI's selenium), chromium and chromedriver.
"""

import argparse
import base64
import json
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

# A File built in the page from base64 bytes, dropped on the drop zone as a person would.
DROP = """
const [data, name] = arguments;
const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
const transfer = new DataTransfer();
transfer.items.add(new File([bytes], name, { type: "image/png" }));
document.getElementById("drop").dispatchEvent(
  new DragEvent("drop", { dataTransfer: transfer, bubbles: true, cancelable: true }));
"""


def browser(chromium, chromedriver):
    options = Options()
    options.binary_location = chromium
    for flag in [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        "--no-first-run",
        "--window-size=1100,800",
    ]:
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(chromedriver), options=options)


def counts(driver):
    return driver.execute_script("return window.ninCounts")


def wait_for_change(driver, before, timeout=30):
    """Waits until the page has shown one more classification or error than `before`."""
    WebDriverWait(driver, timeout).until(
        lambda d: counts(d) != before and d.find_element(By.TAG_NAME, "body").get_attribute("data-state") != "busy"
    )
    return counts(driver)


def shown(driver):
    """The page's state, its ranked results, all ten probabilities, its error and its time."""
    body = driver.find_element(By.TAG_NAME, "body")
    items = driver.find_elements(By.CSS_SELECTOR, "#results li[data-class]")
    results = driver.find_element(By.ID, "results")
    time_element = driver.find_element(By.ID, "time")
    probabilities = results.get_attribute("data-probabilities")
    milliseconds = time_element.get_attribute("data-milliseconds")
    return {
        "state": body.get_attribute("data-state"),
        "ranked": [
            [item.get_attribute("data-class"), float(item.get_attribute("data-probability"))]
            for item in items
        ],
        "probabilities": json.loads(probabilities) if probabilities else None,
        "error": driver.find_element(By.ID, "error").text,
        "milliseconds": float(milliseconds) if milliseconds else None,
    }


def drop_bytes(driver, data, name):
    before = counts(driver)
    driver.execute_script(DROP, base64.b64encode(data).decode(), name)
    wait_for_change(driver, before)
    return shown(driver)


def drop_file(driver, path):
    with open(path, "rb") as f:
        return drop_bytes(driver, f.read(), path.rsplit("/", 1)[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--image", required=True, help="a PNG the network should name")
    parser.add_argument("--golden", nargs="*", default=[], help="images whose probabilities to report")
    parser.add_argument("--timing", nargs="*", default=[], help="images to time one by one")
    parser.add_argument("--screenshot", required=True)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    args = parser.parse_args()

    driver = browser(args.chromium, args.chromedriver)
    report = {}
    try:
        started = time.monotonic()
        driver.get(args.url)
        WebDriverWait(driver, 120).until(
            lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state") in ("ready", "error")
        )
        report["loaded"] = shown(driver)
        report["load_seconds"] = time.monotonic() - started

        report["image"] = drop_file(driver, args.image)
        report["timings"] = driver.execute_script("return window.ninTimings")

        canvas = driver.find_element(By.ID, "canvas")
        before = counts(driver)
        # One stroke shaped like a pair of trousers: up the left leg, across, down the right.
        stroke = ActionChains(driver).move_to_element_with_offset(canvas, -45, 110).click_and_hold()
        for dx, dy in [(0, -70), (0, -70), (0, -70), (30, 0), (30, 0), (30, 0), (0, 70), (0, 70), (0, 70)]:
            stroke = stroke.move_by_offset(dx, dy)
        stroke.release().perform()
        wait_for_change(driver, before)
        report["stroke"] = shown(driver)
        driver.save_screenshot(args.screenshot)

        report["not_an_image"] = drop_bytes(driver, b"these bytes are no image at all", "notes.png")
        report["after_error"] = drop_file(driver, args.image)

        report["golden"] = [drop_file(driver, path)["probabilities"] for path in args.golden]
        report["timing_ms"] = [drop_file(driver, path)["milliseconds"] for path in args.timing]
        report["user_agent"] = driver.execute_script("return navigator.userAgent")
    finally:
        driver.quit()
    json.dump(report, sys.stdout)
    print()


if __name__ == "__main__":
    main()
