// Drives headless Chromium through OHIF against dicomwebserver: the study list shows the
// uploaded study and filters by patient name, the viewer opens the study from there and
// renders its pixels.
//
// Usage: node browse.mjs OHIF_URL DICOMWEB_ROOT STUDY_JSON ARTIFACT_DIR
//
// Every request the page makes is recorded: a failed request, an answer with status >= 400 or a
// request to a host other than 127.0.0.1 fails the test, with its URL. Prints one
// 'ok   NAME' / 'FAIL NAME: detail' line per check (run.sh counts them) and 'note ...' lines
// for console errors; screenshots go to ARTIFACT_DIR. Exits non-zero on a failed check.
import { mkdtempSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { PNG } from 'pngjs';

const [ohifUrl, dicomwebRoot, studyJson, artifactDir] = process.argv.slice(2);
const study = JSON.parse(readFileSync(studyJson, 'utf8'));
const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';

/** Upper bounds of the waits; generous for a slow CI machine, short enough never to hang. */
const STUDY_LIST_TIMEOUT_MS = 60_000;
const VIEWER_TIMEOUT_MS = 60_000;
const RENDER_TIMEOUT_MS = 60_000;
/** Distinct grey levels the centre of the viewport must show: the slices hold a ramp over
 * about 240 levels at their window; a blank or text-only viewport shows a handful. */
const MIN_GREY_LEVELS = 32;
/** How long a wait goes on once a DICOMweb request has failed: OHIF does not retry, so what is
 * awaited will not come; this leaves the page a moment to show how it handles the error. */
const GIVE_UP_AFTER_FAILURE_MS = 3_000;

let failures = 0;
function check(name, condition, detail = '') {
  if (!condition) failures += 1;
  console.log((condition ? 'ok   ' : 'FAIL ') + name + (!condition && detail ? `: ${detail}` : ''));
  return condition;
}

const failedRequests = [];
const errorResponses = [];
const foreignRequests = [];
const consoleErrors = [];
const dicomwebResponses = [];
/** When the first request to the DICOMweb server failed or got a status >= 400, if one did. */
let dicomwebFailedAt = null;

/** Polls `condition` until it holds (true), or until `timeoutMs` pass or a DICOMweb request has
 * failed (false). */
async function waitUntil(condition, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return true;
    const now = Date.now();
    if (now > deadline || (dicomwebFailedAt !== null && now - dicomwebFailedAt > GIVE_UP_AFTER_FAILURE_MS)) {
      return false;
    }
    await new Promise(resolve => setTimeout(resolve, 250));
  }
}

function isLoopback(url) {
  const { protocol, hostname } = new URL(url);
  return !['http:', 'https:', 'ws:', 'wss:'].includes(protocol) || hostname === '127.0.0.1';
}

/** Grey-level statistics of the middle half of `box` on the page, where the image is and the
 * viewport's corner overlays are not. */
async function viewportStats(page, box) {
  const clip = {
    x: box.x + box.width / 4,
    y: box.y + box.height / 4,
    width: box.width / 2,
    height: box.height / 2,
  };
  const png = PNG.sync.read(await page.screenshot({ clip }));
  const levels = new Set();
  let leftSum = 0, leftN = 0, rightSum = 0, rightN = 0;
  for (let y = 0; y < png.height; y += 1) {
    for (let x = 0; x < png.width; x += 1) {
      const offset = (y * png.width + x) * 4;
      const grey = Math.round((png.data[offset] + png.data[offset + 1] + png.data[offset + 2]) / 3);
      levels.add(grey);
      if (x < png.width / 3) { leftSum += grey; leftN += 1; }
      if (x >= (2 * png.width) / 3) { rightSum += grey; rightN += 1; }
    }
  }
  return { levels: levels.size, left: leftSum / leftN, right: rightSum / rightN };
}

/** The ramp runs dark to bright from left to right: a rendered slice shows many grey levels and
 * a brighter right side, whatever the viewer draws on top. */
function showsSlice(stats) {
  return stats.levels >= MIN_GREY_LEVELS && stats.right - stats.left > 20;
}

async function main() {
  const userDataDir = mkdtempSync(path.join(artifactDir, 'chromium-profile-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: chromiumPath,
    headless: true,
    viewport: { width: 1400, height: 900 },
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
    timeout: 60_000,
  });
  try {
    await context.route('**/*', route => {
      const url = route.request().url();
      if (isLoopback(url)) return route.continue();
      foreignRequests.push(url);
      return route.abort('blockedbyclient');
    });
    const page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(30_000);
    page.on('requestfailed', request => {
      if (request.url().startsWith(dicomwebRoot)) dicomwebFailedAt ??= Date.now();
      if (isLoopback(request.url())) {
        failedRequests.push(`${request.method()} ${request.url()}: ${request.failure()?.errorText}`);
      }
    });
    page.on('response', response => {
      const request = response.request();
      if (response.status() >= 400) {
        if (response.url().startsWith(dicomwebRoot)) dicomwebFailedAt ??= Date.now();
        errorResponses.push(`${request.method()} ${response.url()}: ${response.status()}`);
      }
      if (response.url().startsWith(dicomwebRoot)) {
        dicomwebResponses.push({ url: response.url(), status: response.status() });
      }
    });
    page.on('console', message => {
      if (message.type() === 'error') consoleErrors.push(message.text());
    });
    page.on('pageerror', error => consoleErrors.push(`uncaught: ${error.message}`));

    // The study list.
    await page.goto(ohifUrl + '/', { waitUntil: 'domcontentloaded' });
    // OHIF lists patient name, date, modalities, description, accession and instance count.
    const row = page.locator('tr', { hasText: study.studyDescription }).first();
    const listed = await waitUntil(() => row.isVisible(), STUDY_LIST_TIMEOUT_MS);
    const rowText = listed ? (await row.innerText()).replace(/\s+/g, ' ') : '';
    const listShot = path.join(artifactDir, 'study-list.png');
    await page.screenshot({ path: listShot });
    console.log(`note study list screenshot: ${listShot}`);
    check('study list shows the uploaded study (description)', listed,
      `no row with "${study.studyDescription}" (waited up to ${STUDY_LIST_TIMEOUT_MS} ms; screenshot ${listShot})`);
    const [family, given] = study.patientName.split('^');
    check('study list shows the patient name', rowText.includes(family) && rowText.includes(given), `row: "${rowText}"`);
    check('study list shows modality and instance count',
      / CT /.test(` ${rowText} `) && rowText.includes(` ${study.nInstances}`), `row: "${rowText}"`);
    if (!listed) return;

    // The patient filter: OHIF sends PatientName=*value* with fuzzymatching=true; a lower-case
    // given name matches, a name of nobody empties the list (the server answers 204).
    const emptySearch = page.waitForResponse(
      response => response.url().startsWith(dicomwebRoot) && response.url().includes('PatientName=*nomatch*'),
      { timeout: STUDY_LIST_TIMEOUT_MS }).catch(() => null);
    await page.goto(ohifUrl + '/?patientName=nomatch', { waitUntil: 'domcontentloaded' });
    const emptyAnswer = await emptySearch;
    // Give the list a moment to redraw from the answer before counting rows.
    await page.waitForTimeout(1_000);
    const rowsLeft = await row.count();
    check('study list filter without a match shows no study',
      emptyAnswer !== null && emptyAnswer.status() === 204 && rowsLeft === 0,
      emptyAnswer === null ? 'no PatientName=*nomatch* search seen' : `${rowsLeft} rows, answer ${emptyAnswer.status()}`);
    const filterValue = given.toLowerCase();
    await page.goto(ohifUrl + `/?patientName=${filterValue}`, { waitUntil: 'domcontentloaded' });
    const filtered = await waitUntil(() => row.isVisible(), STUDY_LIST_TIMEOUT_MS);
    check(`study list filter "${filterValue}" (fuzzy, case-insensitive) finds the study`, filtered,
      `no row (waited up to ${STUDY_LIST_TIMEOUT_MS} ms)`);
    if (!filtered) return;

    // Open the study: a click selects the row, its "Basic Viewer" workflow opens the viewer.
    await row.click();
    const modeButton = page.getByRole('button', { name: /basic viewer/i }).first();
    const opened = await modeButton
      .click({ timeout: VIEWER_TIMEOUT_MS })
      .then(() => page.waitForURL(/\/viewer\?/, { timeout: VIEWER_TIMEOUT_MS }))
      .then(() => true, error => error);
    check('viewer opens the study from the study list', opened === true,
      opened === true ? '' : String(opened.message).split('\n')[0]);
    if (opened !== true) return;
    check('viewer URL names the study', page.url().includes(study.studyInstanceUid), page.url());

    // The viewport renders the slice.
    const canvas = page.locator('canvas.cornerstone-canvas').first();
    const hasCanvas = await waitUntil(() => canvas.isVisible(), VIEWER_TIMEOUT_MS);
    check('viewer shows a viewport', hasCanvas, `no canvas.cornerstone-canvas (waited up to ${VIEWER_TIMEOUT_MS} ms)`);
    if (hasCanvas) {
      const box = await canvas.boundingBox();
      let stats = { levels: 0, left: 0, right: 0 };
      if (box) {
        await waitUntil(async () => showsSlice((stats = await viewportStats(page, box))), RENDER_TIMEOUT_MS);
      }
      const shot = path.join(artifactDir, 'viewer.png');
      await page.screenshot({ path: shot });
      console.log(`note viewer screenshot: ${shot}`);
      check('viewport shows the slice (grey ramp inside the window)',
        showsSlice(stats),
        `${stats.levels} grey levels, mean left ${stats.left.toFixed(1)}, right ${stats.right.toFixed(1)} ` +
        `(waited up to ${RENDER_TIMEOUT_MS} ms; screenshot ${shot})`);
    }
    // Let the requests the viewer started (prefetch of the other slices) finish.
    await page.waitForLoadState('networkidle', { timeout: 15_000 }).catch(() => {});

    const ok = ({ status }) => status < 400;
    const frames = dicomwebResponses.filter(r => r.url.includes('/frames/') && ok(r));
    const metadata = dicomwebResponses.filter(r => r.url.endsWith('/metadata') && ok(r));
    check('viewer read series metadata from dicomwebserver', metadata.length > 0,
      `${dicomwebResponses.length} responses from ${dicomwebRoot}, none a metadata answer`);
    check('viewer read pixel frames from dicomwebserver', frames.length > 0,
      `${dicomwebResponses.length} responses from ${dicomwebRoot}, none a frames answer`);
  } finally {
    check('no request failed', failedRequests.length === 0, failedRequests.join('; '));
    check('no response with status >= 400', errorResponses.length === 0, errorResponses.join('; '));
    check('no request left the loopback', foreignRequests.length === 0, foreignRequests.join('; '));
    for (const text of consoleErrors) {
      console.log(`note console error: ${text.replace(/\s+/g, ' ').slice(0, 300)}`);
    }
    await context.close();
  }
}

const watchdog = setTimeout(() => {
  check('browser test finishes in time', false, 'still running after 240 s');
  process.exit(1);
}, 240_000);
main().then(
  () => { clearTimeout(watchdog); process.exit(failures ? 1 : 0); },
  error => {
    clearTimeout(watchdog);
    check('browser test runs', false, String(error?.stack ?? error).split('\n').slice(0, 3).join(' | '));
    process.exit(1);
  },
);
