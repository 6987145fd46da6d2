// User journeys in a real browser: a learner uploads evidence with several files and maps it
// to criteria (with JavaScript on, with a progress bar per file, and with JavaScript off), an
// assessor reviews it, and a verifier reads a portfolio and its history. Every page visited is
// screenshotted and checked with axe-core for WCAG 2.2 A/AA.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { artifacts, checkPage, demoFile, fitsWidth, focusVisible, launchBrowser, newPage, signIn, startServer, tabTo, validateHtml } from "./harness.mjs";

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Signs in with the keyboard alone: Tab to each field, type, Enter. */
async function signInByKeyboard(page, who) {
  await page.goto(`${server.base}/login`);
  await tabTo(page, "#email");
  await page.keyboard.type(who.email);
  await tabTo(page, "#password");
  await page.keyboard.type(who.password);
  await page.keyboard.press("Enter");
  await page.waitForURL(/\/dashboard$/);
}

async function openOwnPortfolio(page) {
  await page.click("main a[href^='/enrolments/']");
  await page.waitForURL(/\/enrolments\/[0-9a-f-]+$/);
  return page.url();
}

async function fillEvidence(page, title) {
  await page.fill("#title", title);
  await page.selectOption("#method", "product");
  await page.fill("#occurred_on", "2026-11-20");
  await page.check("#criterion-1\\.2");
  await page.fill("#note-1\\.2", "I ask what the customer uses the line for before offering anything.");
  await page.check("#criterion-1\\.3");
  await page.check("#declaration");
  await page.check("#third_party_confirmed");
}

test("a learner uploads evidence with several files and maps criteria, with a progress bar per file", async () => {
  const page = await newPage(browser, { width: 390, height: 844 });
  await signIn(page, server, server.login("learner", 0));
  await checkPage(page, "learner-dashboard");
  await openOwnPortfolio(page);
  await checkPage(page, "learner-portfolio");
  await page.click("text=Add evidence");
  await page.waitForURL(/\/evidence\/new$/);
  await checkPage(page, "upload-form");

  await fillEvidence(page, "Broadband call and the week's dashboard");
  await page.setInputFiles("#file", [demoFile("sales-call-recording.wav"), demoFile("sales-dashboard-march.pdf")]);
  const listed = await page.locator(".upload-list li").allTextContents();
  assert.equal(listed.length, 2);
  assert.match(listed[0], /sales-call-recording\.wav \(\d/);
  // Slow the upload so the bars are seen moving.
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 20, downloadThroughput: -1, uploadThroughput: 40_000 });
  await page.click("button[value=submit]");
  await page.waitForFunction(() => [...document.querySelectorAll(".upload-list progress")].some((b) => !b.hidden && b.value > 0));
  assert.match(await page.locator(".upload-status").textContent(), /Uploading 2 files/);
  await checkPage(page, "upload-in-progress");
  await page.waitForURL(/\/evidence\/[0-9a-f-]+\?submitted=1$/, { timeout: 60_000 });
  const item = page.locator("main");
  await assert.doesNotReject(item.getByText("Evidence submitted").waitFor());
  assert.ok(await item.getByText("sales-call-recording.wav").count() > 0);
  assert.ok(await item.getByText("sales-dashboard-march.pdf").count() > 0);
  assert.ok(await item.getByText("I ask what the customer uses the line for").count() > 0);
  await checkPage(page, "evidence-submitted");
  await page.context().close();
});

test("a learner uploads evidence with JavaScript off: errors are summarised and linked, then it is submitted", async () => {
  const page = await newPage(browser, { javaScript: false });
  await signIn(page, server, server.login("learner", 1));
  await openOwnPortfolio(page);
  await page.click("text=Add evidence");

  // Nothing filled in: the error summary lists each problem and links to its field.
  await page.click("button[value=submit]");
  const summary = page.locator(".error-summary");
  await summary.waitFor();
  assert.match(await summary.textContent(), /Enter a title for the evidence/);
  assert.equal(await summary.locator("a[href='#title']").count(), 1);
  await checkPage(page, "upload-errors-no-javascript");

  await fillEvidence(page, "Team sales briefing photo");
  await page.setInputFiles("#file", [demoFile("team-briefing.png"), demoFile("call-log-week-12.csv")]);
  await page.click("button[value=submit]");
  await page.waitForURL(/\/evidence\/[0-9a-f-]+\?submitted=1$/);
  assert.ok(await page.getByText("team-briefing.png").count() > 0);
  assert.ok(await page.getByText("call-log-week-12.csv").count() > 0);
  await checkPage(page, "evidence-submitted-no-javascript");
  await page.context().close();
});

test("an assessor reviews the learner's evidence with the VACS confirmation, and the learner reads the feedback and replies", async () => {
  const learner = server.login("learner", 0);
  const page = await newPage(browser);
  await signIn(page, server, server.login("assessor", 0));
  await checkPage(page, "assessor-caseload");
  // The learner's row shows work waiting; their portfolio lists the item uploaded above.
  const row = page.locator("table tr", { hasText: learner.name });
  assert.ok(await row.locator(".tag-submitted").count() > 0, "the caseload shows the item waiting");
  await row.locator("a[href^='/enrolments/']").click();
  await page.waitForURL(/\/enrolments\/[0-9a-f-]+$/);
  await checkPage(page, "assessor-portfolio");
  await page.locator("main a", { hasText: "Broadband call and the week's dashboard" }).first().click();
  await page.waitForURL(/\/evidence\/[0-9a-f-]+$/);
  const item = page.url();
  assert.ok(await page.getByText("I ask what the customer uses the line for").count() > 0, "the learner's note is shown");
  await checkPage(page, "assessor-review");

  const first = page.locator("fieldset.decision-fields").first();
  await first.locator("input[value=met]").check();
  await first.locator("textarea").first().fill("Clear, well-structured evidence for this criterion.");
  await page.locator("button", { hasText: "Record decisions" }).click();
  // Without the confirmation a "met" is refused, and the summary links to the confirmation.
  await page.locator(".error-summary a[href='#confirmed']").waitFor();
  await checkPage(page, "assessor-review-needs-confirmation");
  // What the assessor entered is still there.
  const again = page.locator("fieldset.decision-fields").first();
  assert.ok(await again.locator("input[value=met]").isChecked());
  assert.equal(await again.locator("textarea").first().inputValue(), "Clear, well-structured evidence for this criterion.");
  for (const name of ["valid", "authentic", "current", "sufficient"]) await page.check(`#confirmed-${name}`);
  await page.locator("button", { hasText: "Record decisions" }).click();
  await page.waitForURL(/\?assessed=1$/);
  assert.ok(await page.getByText("Decisions recorded").count() > 0);
  assert.ok(await page.getByText("Evidence confirmed valid, authentic, current and sufficient.").count() > 0);
  await checkPage(page, "assessor-decisions-recorded");
  await page.context().close();

  // The learner is notified, reads the feedback and replies.
  const learnerPage = await newPage(browser, { width: 390, height: 844 });
  await signIn(learnerPage, server, learner);
  assert.match(await learnerPage.locator("header").textContent(), /Notifications \([1-9]\d*\)/);
  await learnerPage.click("header >> text=Notifications");
  await checkPage(learnerPage, "learner-notifications");
  await learnerPage.locator("main a", { hasText: "Broadband call and the week's dashboard" }).first().click();
  await learnerPage.waitForURL(new RegExp(item.replace(/[?]/g, "\\?")));
  assert.ok(await learnerPage.getByText("Clear, well-structured evidence for this criterion.").count() > 0);
  await learnerPage.fill("#body", "Thank you. Shall I add a second call for 1.3?");
  await learnerPage.locator("button", { hasText: "Send" }).click();
  await learnerPage.getByText("Shall I add a second call for 1.3?").first().waitFor();
  await checkPage(learnerPage, "learner-replied");
  await learnerPage.context().close();
});

test("an assessor signs off a complete unit from the caseload and the learner countersigns it", async () => {
  const assessorPage = await newPage(browser);
  await signIn(assessorPage, server, server.login("assessor", 0));
  await assessorPage.click("text=All criteria met: sign-off checklist");
  await assessorPage.waitForURL(/\/sign-off$/);
  await checkPage(assessorPage, "sign-off-checklist");
  await assessorPage.locator("button", { hasText: "Sign off this unit" }).click();
  // The declaration must be ticked: the error summary links to it.
  await assessorPage.locator(".error-summary a[href='#declaration']").waitFor();
  await assessorPage.check("#declaration-box");
  await assessorPage.locator("button", { hasText: "Sign off this unit" }).click();
  await assessorPage.getByText(/Signed off by Marcus Bell on/).first().waitFor();
  await checkPage(assessorPage, "signed-off");
  await assessorPage.context().close();

  const learnerPage = await newPage(browser);
  await signIn(learnerPage, server, server.login("learner", 4));
  await openOwnPortfolio(learnerPage);
  await learnerPage.click("text=Countersign the sign-off");
  await learnerPage.check("#declaration-box");
  await checkPage(learnerPage, "countersign");
  await learnerPage.locator("button", { hasText: "Countersign" }).click();
  await learnerPage.getByText(/countersigned by Amira Khan on/).first().waitFor();
  await checkPage(learnerPage, "countersigned");
  await learnerPage.context().close();
});

test("an IQA draws a sample from a seed and records an agreement on a sampled item", async () => {
  const page = await newPage(browser);
  await signIn(page, server, server.login("iqa", 0));
  await checkPage(page, "iqa-dashboard");
  await page.click("main >> text=Sampling plan");
  await page.waitForURL(/\/iqa\/plan$/);
  await page.fill("#seed", "browser-journey-1");
  await page.locator("button", { hasText: "Draw the sample" }).click();
  await page.waitForLoadState();
  assert.ok(await page.getByText("browser-journey-1").count() > 0, "the seed is recorded with the draw");
  const planned = page.locator("table a[href^='/iqa/samples/']");
  assert.ok(await planned.count() > 0, "the draw planned samples");
  await checkPage(page, "iqa-plan");
  await planned.first().click();
  await page.waitForURL(/\/iqa\/samples\/[0-9a-f-]+$/);
  await checkPage(page, "iqa-sample");
  await page.check("#outcome-agree");
  await page.fill("#feedback", "Decisions are well evidenced; feedback is specific and developmental.");
  await page.locator("button", { hasText: "Sign and save the sample" }).click();
  await page.waitForLoadState();
  assert.ok(await page.getByText("Decisions are well evidenced").count() > 0);
  assert.ok(await page.getByText(/SHA-256/).count() > 0, "the sample record is signed");
  await checkPage(page, "iqa-sample-recorded");
  await page.goto(`${server.base}/iqa/coverage`);
  await checkPage(page, "iqa-coverage");
  await page.context().close();
});

test("a verifier draws their own sample and filters the centre's audit trail", async () => {
  const page = await newPage(browser);
  await signIn(page, server, server.login("eqa", 0));
  await page.goto(`${server.base}/verification`);
  await page.locator("main a[href^='/verify/centres/']").first().click();
  await page.waitForURL(/\/verify\/centres\/[0-9a-f-]+$/);
  await checkPage(page, "verifier-centre-overview");
  await page.click("text=Draw your sample");
  await page.fill("#seed", "eqa-visit-2026-12");
  await page.locator("main form button").first().click();
  await page.waitForURL(/seed=eqa-visit-2026-12/);
  assert.ok(await page.locator("table a[href^='/evidence/']").count() > 0, "the sample lists evidence");
  await checkPage(page, "verifier-sample");
  await page.goto(`${server.base}/audit`);
  assert.match(await page.locator("main").textContent(), /This page: Intact/);
  await page.click("text=Check the whole chain now");
  await page.waitForURL(/checked=1/);
  assert.match(await page.locator("main").textContent(), /Whole chain: Intact Intact: \d+ events/);
  await page.selectOption("#what", { index: 1 });
  await page.locator("main form[method=get] button").first().click();
  await page.waitForURL(/what=/);
  assert.ok(await page.locator("table tbody tr").count() > 0, "the filtered trail lists events");
  await checkPage(page, "verifier-audit-trail");
  // Who, by part of an email as typed (the verifier's own views are in the trail).
  const verifier = server.login("eqa", 0);
  await page.selectOption("#what", "");
  await page.fill("#who", verifier.email.split("@")[0]);
  await page.locator("main form[method=get] button").first().click();
  await page.waitForURL(/who=/);
  assert.match(await page.locator("#who-hint").textContent(), new RegExp(`Showing .*\\(${verifier.email}\\)`));
  assert.ok(await page.locator("table tbody tr").count() > 0, "the verifier's own events are listed");
  await checkPage(page, "verifier-audit-trail-by-who");
  await page.context().close();
});

test("a verifier opens a portfolio and its history, read-only", async () => {
  const page = await newPage(browser);
  await signIn(page, server, server.login("eqa", 0));
  await checkPage(page, "verifier-dashboard");
  await page.locator("main a[href^='/enrolments/']").first().click();
  await page.waitForURL(/\/enrolments\/[0-9a-f-]+$/);
  assert.equal(await page.getByText("Add evidence").count(), 0, "a verifier cannot add evidence");
  await checkPage(page, "verifier-portfolio");
  await page.click("text=History of this portfolio");
  await page.waitForURL(/\/history$/);
  assert.ok(await page.locator("table tbody tr").count() > 0, "the history lists events");
  await checkPage(page, "verifier-history");
  await page.context().close();
});

test("pages fit a 320 px wide screen and a learner signs in and reaches upload by keyboard alone", async () => {
  const page = await newPage(browser, { width: 320, height: 640 });
  const learner = server.login("learner", 2);
  await page.goto(`${server.base}/login`);
  await page.click("text=Accessibility statement");
  assert.equal(await page.locator("h1").textContent(), "Accessibility statement");
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1));
  await checkPage(page, "accessibility-statement");
  await page.goto(`${server.base}/login`);
  // Keyboard only: skip link first, then the fields in order, Enter to sign in.
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.className), "skip-link");
  assert.ok(await focusVisible(page), "focus is visible");
  let guard = 0;
  while ((await page.evaluate(() => document.activeElement.id)) !== "email" && guard++ < 20) await page.keyboard.press("Tab");
  await page.keyboard.type(learner.email);
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.id), "password");
  assert.ok(await focusVisible(page), "focus is visible on the password field");
  await page.keyboard.type(learner.password);
  await page.keyboard.press("Enter");
  await page.waitForURL(/\/dashboard$/);

  assert.ok(await fitsWidth(page), "the dashboard fits 320 px");
  const portfolio = await page.locator("main a[href^='/enrolments/']").first().getAttribute("href");
  for (const path of [portfolio, `${portfolio}/evidence/new`, `${portfolio}/history`]) {
    await page.goto(`${server.base}${path}`);
    assert.ok(await fitsWidth(page), `${path} fits 320 px without sideways scrolling`);
    await checkPage(page, `narrow-${path.split("/").pop()}`);
  }
  await page.context().close();
});

test("each role's header leads to its own sections, marks the current one, and reflows at 200% zoom", async () => {
  // What each role's header offers, and what it must not: nobody is shown a door they cannot open.
  const expected = {
    learner: { has: ["Dashboard", "Notifications", "Your account"], not: ["Administration", "Audit trail", "Sampling plan", "Verification"] },
    assessor: { has: ["Dashboard", "Notifications", "Your account"], not: ["Administration", "Sampling plan", "Verification"] },
    iqa: { has: ["Sampling plan", "Coverage", "Standardisation"], not: ["Administration", "Verification", "Audit trail"] },
    eqa: { has: ["Verification", "Audit trail"], not: ["Administration", "Sampling plan"] },
    admin: { has: ["Administration", "Audit trail"], not: ["Sampling plan", "Verification"] },
  };
  for (const [role, { has, not }] of Object.entries(expected)) {
    // 1280 × 800 at 200%: a 640 × 400 CSS-pixel layout.
    const page = await newPage(browser, { width: 1280, height: 800, zoom: 2 });
    await signIn(page, server, server.login(role, 0));
    const labels = (await page.locator("header nav a").allTextContents()).map((t) => t.replace(/\s*\(\d+\)$/, "").trim());
    for (const label of has) assert.ok(labels.includes(label), `${role} sees "${label}" in ${labels}`);
    for (const label of not) assert.ok(!labels.includes(label), `${role} does not see "${label}"`);
    for (const label of labels) {
      const link = page.locator("header nav a", { hasText: label }).first();
      const href = await link.getAttribute("href");
      await link.click();
      await page.waitForURL((url) => url.pathname === href);
      await page.waitForLoadState();
      const current = page.locator("header nav a[aria-current=page]");
      assert.equal(await current.count(), 1, `one section is current on ${page.url()}`);
      assert.match(await current.textContent(), new RegExp(label.replace(/[()]/g, "\\$&")), `${label} is the current section`);
      assert.equal(await page.locator("h1").count(), 1, `${page.url()} has one h1`);
      assert.ok(await fitsWidth(page), `${page.url()} reflows at 200% zoom without sideways scrolling`);
      // Every link of the header is inside the window, not cut off or under something else.
      const boxes = await page.locator("header nav a").evaluateAll((links) => links.map((a) => {
        const r = a.getBoundingClientRect();
        const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
        return { text: a.textContent, right: r.right, height: r.height, width: r.width, onTop: a.contains(hit) };
      }));
      for (const box of boxes) {
        assert.ok(box.right <= 640 + 1, `${box.text} fits the zoomed window`);
        assert.ok(box.height >= 24 && box.width >= 24, `${box.text} is at least 24 × 24 px`);
        assert.ok(box.onTop, `${box.text} is not covered`);
      }
    }
    await checkPage(page, `zoom-200-${role}`);
    await page.context().close();
  }
});

test("pages are readable with CSS off: the same content, in a sensible order", async () => {
  const learner = server.login("learner", 0);
  const styled = await newPage(browser);
  const bare = await newPage(browser);
  await bare.route("**/*.css", (route) => route.abort());
  await signIn(styled, server, learner);
  await signIn(bare, server, learner);
  const portfolio = await styled.locator("main a[href^='/enrolments/']").first().getAttribute("href");
  for (const path of ["/dashboard", portfolio, `${portfolio}/evidence/new`, `${portfolio}/tracking`]) {
    await styled.goto(`${server.base}${path}`);
    await bare.goto(`${server.base}${path}`);
    const headerColour = (page) => page.evaluate(() => getComputedStyle(document.querySelector(".site-header")).backgroundColor);
    assert.equal(await headerColour(bare), "rgba(0, 0, 0, 0)", "no style applies");
    assert.notEqual(await headerColour(styled), "rgba(0, 0, 0, 0)", "the styled page is styled");
    // Nothing the page says depends on the stylesheet.
    const words = (page) => page.evaluate(() => document.querySelector("main").textContent.replace(/\s+/g, " ").trim());
    assert.equal(await words(bare), await words(styled), `${path} says the same`);
    assert.ok((await words(bare)).length > 100, `${path} has its content`);
    // Reading order: skip link, then the navigation, then the page's heading, then its content.
    const order = await bare.evaluate(() => {
      const at = (el) => [...document.querySelectorAll("body *")].indexOf(el);
      return { skip: at(document.querySelector(".skip-link")), nav: at(document.querySelector("header nav")),
        h1: at(document.querySelector("main h1")), footer: at(document.querySelector("footer")) };
    });
    assert.ok(order.skip >= 0 && order.skip < order.nav && order.nav < order.h1 && order.h1 < order.footer, `${path}: ${JSON.stringify(order)}`);
    // Every form control still has its label.
    const unlabelled = await bare.locator("main input:not([type=hidden]), main select, main textarea").evaluateAll((controls) =>
      controls.filter((c) => !(c.labels && c.labels.length) && !c.getAttribute("aria-label")).map((c) => c.id || c.name));
    assert.deepEqual(unlabelled, [], `${path}: every control has a label`);
  }
  // (No axe run here: WCAG's checks judge the styled page; this one is the browser's defaults.)
  await bare.screenshot({ path: `${artifacts}/css-off-tracking.png`, fullPage: true });
  await styled.context().close();
  await bare.context().close();
});

test("by keyboard alone, a learner uploads and submits evidence and their assessor records a decision", async () => {
  const learner = server.login("learner", 3); // Ryan Hughes, who has nothing yet; Helen Carter assesses him.
  const title = "Coaching notes from Tuesday's huddle";
  const page = await newPage(browser, { javaScript: false });
  await signInByKeyboard(page, learner);
  await tabTo(page, "main a[href^='/enrolments/']");
  await page.keyboard.press("Enter");
  await page.waitForURL(/\/enrolments\/[0-9a-f-]+$/);
  await tabTo(page, "main a[href$='/evidence/new']");
  await page.keyboard.press("Enter");
  await page.waitForURL(/\/evidence\/new$/);

  // A first try with only a title: the error summary's first link leads the keyboard to the field.
  await tabTo(page, "#title");
  await page.keyboard.type(title);
  await tabTo(page, "button[value=submit]");
  await page.keyboard.press("Enter");
  await page.locator(".error-summary").waitFor();
  await checkPage(page, "keyboard-upload-errors");
  await tabTo(page, ".error-summary a[href='#method']");
  await page.keyboard.press("Enter");
  assert.equal(await page.evaluate(() => document.activeElement.id), "method", "the summary's link moves focus to the field");
  assert.equal(await page.locator("#title").inputValue(), title, "the title typed is kept");

  await page.keyboard.press("ArrowDown");
  assert.notEqual(await page.locator("#method").inputValue(), "", "a method is chosen with an arrow key");
  // Back up to the file field (it comes earlier): the file chooser opens from the keyboard too.
  // The wait starts before the key presses that reach the field: Playwright turns on its file
  // chooser interception only once something waits, and a chooser opened before that is lost.
  const choosing = page.waitForEvent("filechooser");
  await tabTo(page, "#file", { back: true });
  await page.keyboard.press("Space");
  const chooser = await choosing;
  await chooser.setFiles([demoFile("call-log-week-12.csv")]);
  await tabTo(page, "#occurred_on");
  await page.keyboard.type("11202026"); // the date field's segments, in the browser's en-US order
  assert.equal(await page.locator("#occurred_on").inputValue(), "2026-11-20");
  await tabTo(page, "#criterion-1\\.2");
  await page.keyboard.press("Space");
  await tabTo(page, "#declaration");
  await page.keyboard.press("Space");
  await tabTo(page, "#third_party_confirmed");
  await page.keyboard.press("Space");
  await tabTo(page, "button[value=submit]");
  await page.keyboard.press("Enter");
  await page.waitForURL(/\/evidence\/[0-9a-f-]+\?submitted=1$/);
  assert.ok(await page.getByText("call-log-week-12.csv").count() > 0);
  await checkPage(page, "keyboard-evidence-submitted");
  await page.context().close();

  const assessor = await newPage(browser, { javaScript: false });
  await signInByKeyboard(assessor, server.login("assessor", 1));
  const portfolio = await assessor.locator("main tr", { hasText: learner.name }).locator("a[href^='/enrolments/']").first().getAttribute("href");
  await tabTo(assessor, `main a[href='${portfolio}']`);
  await assessor.keyboard.press("Enter");
  await assessor.waitForURL(new RegExp(`${portfolio}$`));
  const item = await assessor.locator("main a", { hasText: title }).first().getAttribute("href");
  await tabTo(assessor, `main a[href='${item}']`);
  await assessor.keyboard.press("Enter");
  await assessor.waitForURL(new RegExp(`${item}$`));
  await tabTo(assessor, "#met-1\\.2");
  await assessor.keyboard.press("Space");
  assert.ok(await assessor.locator("#met-1\\.2").isChecked(), "Space chooses the radio");
  await tabTo(assessor, "#feedback-1\\.2");
  await assessor.keyboard.type("The call log shows you asking about needs first on every call.");
  for (const name of ["valid", "authentic", "current", "sufficient"]) {
    await tabTo(assessor, `#confirmed-${name}`);
    await assessor.keyboard.press("Space");
  }
  await tabTo(assessor, "#confirmed ~ button[type=submit]");
  await assessor.keyboard.press("Enter");
  await assessor.waitForURL(/\?assessed=1$/);
  assert.ok(await assessor.getByText("Decisions recorded").count() > 0);
  assert.ok(await assessor.getByText("The call log shows you asking about needs first").count() > 0);
  await checkPage(assessor, "keyboard-decision-recorded");
  await assessor.context().close();
});

test("every page the journeys visited is valid HTML (Nu HTML Checker)", () => {
  const { files, errors, status } = validateHtml();
  assert.equal(status, 0, `${files} pages checked:\n${errors}`);
});
