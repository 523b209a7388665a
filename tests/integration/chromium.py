"""Headless Chromium from Debian for the browser tests (Selenium; import only from
/usr/bin/python3, where Debian's python3-selenium loads), and the scaffolding of a
test class around one registry and one browser."""

import os
import shutil
import unittest

from selenium import webdriver
from selenium.webdriver.chrome.service import Service


def headless_chromium(profile, window=None, extra_args=(), prefs=None, time_zone=None):
    """Debian's chromium through chromedriver: headless, its profile in `profile`,
    Chinese first; `window` (width, height) when given; `time_zone` the browser's
    (its TZ)."""
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    args = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--user-data-dir=" + profile, "--lang=zh-CN"]
    if window:
        args.append("--window-size=%d,%d" % window)
    for arg in args + list(extra_args):
        options.add_argument(arg)
    if prefs:
        options.add_experimental_option("prefs", prefs)
    env = dict(os.environ, TZ=time_zone) if time_zone else None
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver", env=env), options=options)


class RegistryBrowserCase(unittest.TestCase):
    """A test class with one registry (`reg`), one browser (`driver`) and a folder
    (`tmp`), set up by the subclass's setUpClass; tearDownClass quits the browser,
    stops the registry (asserting a clean exit) and removes its files and `tmp`."""

    reg = None
    driver = None
    tmp = None

    @classmethod
    def tearDownClass(cls):
        cls._teardown()

    @classmethod
    def _teardown(cls):
        try:
            if cls.driver is not None:
                cls.driver.quit()
        finally:
            try:
                if cls.reg.running:
                    cls.reg.stop()
            finally:
                cls.reg.cleanup()
                shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def api(cls, method, path, body=None, token=None, expect=(200, 201)):
        status, answer = cls.reg.request(method, path, body=body, token=token)
        if expect is not None:
            assert status in expect, "%s %s -> %s %r" % (method, path, status, answer)
        return status, answer
