"""The public page in a real browser: headless Chromium from Debian, driven by
Selenium, on a phone-sized window (390x844). Opens /c/CODE for a legal and an
unknown cylinder, checks what each page shows, fills in and submits the report
form, checks the confirmation, and saves a screenshot of each page into ARTEFACTS
(argv[2], default ./artefacts).

    /usr/bin/python3 public_page_browser_test.py /path/to/pingma-registry ARTEFACTS
"""

import os
import sys
import tempfile
import unittest
from datetime import timedelta

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from registry_harness import (Registry, add_years, iso, take_binary_argument,
                              today_shanghai, year_month)

from chromium import headless_chromium
from selenium.common.exceptions import (NoSuchElementException,
                                        StaleElementReferenceException, WebDriverException)
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

BINARY = None
ARTEFACTS = None


class PublicPageBrowserTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        os.makedirs(ARTEFACTS, exist_ok=True)
        today = today_shanghai()
        cls.reg = Registry(BINARY)
        admin = cls.reg.token("admin", "root")
        company = cls.reg.token("company", "CO-W")
        cls.reg.start()
        far = iso(today + timedelta(days=400))
        for path, body, token in (
                ("/v1/companies", {"id": "CO-W", "name": "示例燃气有限公司 <i>x</i>",
                                   "filling_license": {"number": "L", "valid_until": far}},
                 admin),
                ("/v1/cylinders", {"code": "BRGOOD001", "model": "YSP35.5",
                                   "manufacturer": "Hebei Example Cylinder Co.",
                                   "manufactured": year_month(add_years(today, -1)),
                                   "tare_kg": 16.4, "next_inspection_due": far}, company)):
            status, answer = cls.reg.request("POST", path, body=body, token=token)
            assert status == 201, (path, status, answer)
        cls.profile = tempfile.mkdtemp(prefix="pingma-chromium-")
        cls.driver = headless_chromium(cls.profile, (390, 844))
        cls.base = "http://%s:%d" % (cls.reg.host, cls.reg.port)

    @classmethod
    def tearDownClass(cls):
        try:
            cls.driver.quit()
        finally:
            try:
                cls.reg.stop()
            finally:
                cls.reg.cleanup()

    def shot(self, name):
        # The whole page, however long, at the phone's width.
        height = self.driver.execute_script("return document.body.scrollHeight")
        self.driver.set_window_size(390, max(844, height + 40))
        path = os.path.join(ARTEFACTS, name + ".png")
        self.driver.save_screenshot(path)
        self.driver.set_window_size(390, 844)
        return path

    def report(self, category, text):
        d = self.driver
        d.find_element(By.CSS_SELECTOR, "label[for='cat-%s']" % category).click()
        d.find_element(By.ID, "text").send_keys(text)
        d.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

    def heading_becomes(self, text, timeout=30):
        """The h1 once it says `text`: the click returns before the answer's page has
        replaced the form's, whose h1 may still be found, or go stale as it is read."""
        def heading(driver):
            try:
                h1 = driver.find_element(By.TAG_NAME, "h1").text
            except (NoSuchElementException, StaleElementReferenceException):
                return False
            except WebDriverException as e:
                # Older chromedrivers (Debian 12's 150) report a node of the page
                # just replaced as an "unhandled inspector error", not as stale.
                if "does not belong to the document" in str(e):
                    return False
                raise
            return h1 if text in h1 else False
        return WebDriverWait(self.driver, timeout).until(heading)

    def test_01_legal_cylinder_and_report(self):
        d = self.driver
        d.get(self.base + "/c/brgood001")
        self.assertEqual(d.find_element(By.TAG_NAME, "html").get_attribute("lang"), "zh-CN")
        h1 = d.find_element(By.TAG_NAME, "h1").text
        self.assertIn("可以使用", h1)
        body = d.find_element(By.TAG_NAME, "body").text
        self.assertIn("示例燃气有限公司 <i>x</i>", body)  # shown as text, escaped
        self.assertEqual(d.find_elements(By.CSS_SELECTOR, "dd i"), [])
        self.assertIn("12315", body)
        self.assertGreaterEqual(
            float(d.execute_script(
                "return parseFloat(getComputedStyle(document.querySelector('h1')).fontSize)")),
            28.0, "the verdict is large")
        self.shot("public-page-legal")
        self.report("short_weight", "只有十二公斤 / only 12 kg")
        self.assertIn("已收到您的报告", self.heading_becomes("已收到您的报告"))
        self.assertIn("ev-", d.find_element(By.TAG_NAME, "body").text)
        self.shot("public-page-report-received")

    def test_02_unknown_cylinder_and_report(self):
        d = self.driver
        d.get(self.base + "/c/brblack99")
        self.assertIn("查无此瓶", d.find_element(By.TAG_NAME, "h1").text)
        self.assertIn("BRBLACK99", d.find_element(By.TAG_NAME, "body").text)
        self.shot("public-page-unknown")
        self.report("suspected_fake", "菜市场门口 / outside the market")
        self.assertIn("已收到您的报告", self.heading_becomes("已收到您的报告"))
        self.shot("public-page-unknown-report-received")


if __name__ == "__main__":
    BINARY = take_binary_argument()
    ARTEFACTS = os.path.abspath(sys.argv.pop(1) if len(sys.argv) > 1
                                and not sys.argv[1].startswith("-") else "artefacts")
    unittest.main(verbosity=2)
