// Serves the OHIF build on a loopback port, for the end-to-end test or to try the viewer.
//
// Usage: node serve.mjs VIEWER_DIST APP_CONFIG_JS [PORT]
//
// Listens on PORT (a free one by default) and prints `listening on http://127.0.0.1:PORT` as
// its first line. Files come from VIEWER_DIST;
// `/app-config.js` comes from APP_CONFIG_JS, read on each request (run.sh writes it once the
// DICOMweb server's port is known). A path without a file extension that names no file gets
// index.html, as OHIF's client-side routes (`/viewer`, `/local`) need; a missing file with an
// extension is a 404, so that a broken reference shows up in the test instead of as HTML.
import { createReadStream, promises as fs } from 'node:fs';
import http from 'node:http';
import path from 'node:path';

const [distDir, appConfigPath] = process.argv.slice(2, 4).map(p => path.resolve(p));
const port = Number(process.argv[4] ?? 0);

const CONTENT_TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.map': 'application/json',
  '.xml': 'application/xml',
  '.txt': 'text/plain; charset=utf-8',
  '.onnx': 'application/octet-stream',
};

async function resolveFile(urlPath) {
  if (urlPath === '/app-config.js') {
    return appConfigPath;
  }
  // Normalised against the root so no `..` leaves the build directory.
  const candidate = path.join(distDir, path.normalize(urlPath).replace(/^(\.\.[/\\])+/, ''));
  if (candidate.startsWith(distDir)) {
    const stat = await fs.stat(candidate).catch(() => null);
    if (stat?.isFile()) {
      return candidate;
    }
  }
  return path.extname(urlPath) === '' ? path.join(distDir, 'index.html') : null;
}

const server = http.createServer(async (request, response) => {
  const urlPath = decodeURIComponent(new URL(request.url, 'http://localhost').pathname);
  const file = await resolveFile(urlPath);
  if (file === null || (request.method !== 'GET' && request.method !== 'HEAD')) {
    response.writeHead(file === null ? 404 : 405, { 'Content-Type': 'text/plain' });
    response.end(file === null ? 'not found\n' : 'method not allowed\n');
    return;
  }
  const type = CONTENT_TYPES[path.extname(file)] ?? 'application/octet-stream';
  response.writeHead(200, { 'Content-Type': type, 'Cache-Control': 'no-store' });
  if (request.method === 'HEAD') {
    response.end();
    return;
  }
  createReadStream(file)
    .on('error', () => response.destroy())
    .pipe(response);
});

server.listen(port, '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
}
