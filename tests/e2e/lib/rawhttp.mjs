// HTTP/1.1 over a plain socket, for what fetch cannot do: keep one connection open across a
// SIGTERM, or send a body the server will refuse before reading it (a server may answer 413 and
// close while the client is still writing; fetch then fails with EPIPE and loses the answer).
import net from 'node:net';

const kDefaultTimeoutMs = 5_000;

// A client connection to 127.0.0.1:port that sends requests one at a time (keep-alive).
export class RawConnection {
  static async open(port) {
    const socket = net.connect({ host: '127.0.0.1', port });
    await new Promise((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RawConnection(socket);
  }

  constructor(socket) {
    this.socket = socket;
    this.buffer = Buffer.alloc(0);
    this.closed = false;
    this.waiter = null;
    socket.on('data', (d) => {
      this.buffer = Buffer.concat([this.buffer, d]);
      this.waiter?.();
    });
    const onEnd = () => {
      this.closed = true;
      this.waiter?.();
    };
    socket.on('end', onEnd);
    socket.on('close', onEnd);
    // A reset after the answer arrived is how a server refusing a body often ends; the answer
    // already read still counts.
    socket.on('error', onEnd);
  }

  // Sends one request and reads one response. Resolves {status, headers (lower-case keys), body
  // (string)}, or null if the server closed the connection without answering.
  async request({ method = 'GET', path, headers = {}, body, timeoutMs = kDefaultTimeoutMs }) {
    const payload = body === undefined ? null : Buffer.from(body);
    const lines = [`${method} ${path} HTTP/1.1`, 'Host: 127.0.0.1'];
    for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
    if (payload && !Object.keys(headers).some((k) => k.toLowerCase() === 'transfer-encoding')) {
      lines.push(`Content-Length: ${payload.length}`);
    }
    const head = Buffer.from(lines.join('\r\n') + '\r\n\r\n');
    if (!this.closed) {
      this.socket.write(payload ? Buffer.concat([head, payload]) : head, () => {});
    }
    return this.#readResponse(timeoutMs);
  }

  async #readResponse(timeoutMs) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const parsed = parseResponse(this.buffer, this.closed);
      if (parsed) {
        this.buffer = this.buffer.subarray(parsed.consumed);
        return parsed.response;
      }
      if (this.closed) {
        if (this.buffer.length === 0) return null;
        throw new Error(`connection closed mid-response: ${this.buffer.toString()}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no complete response within ${timeoutMs} ms`);
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          this.waiter = null;
          resolve();
        };
      });
    }
  }

  close() { this.socket.destroy(); }
}

// One request on a fresh connection.
export async function rawRequest(port, req) {
  const conn = await RawConnection.open(port);
  try {
    return await conn.request(req);
  } finally {
    conn.close();
  }
}

// Parses one response from buf; null if incomplete. closed: the peer has closed (a body without
// length then ends there).
function parseResponse(buf, closed) {
  const headEnd = buf.indexOf('\r\n\r\n');
  if (headEnd < 0) return null;
  const [statusLine, ...headerLines] = buf.subarray(0, headEnd).toString('latin1').split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
  if (!m) throw new Error(`not an HTTP response: ${statusLine}`);
  const headers = {};
  for (const line of headerLines) {
    const i = line.indexOf(':');
    headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  const bodyStart = headEnd + 4;
  const response = (body, consumed) => ({
    consumed, response: { status: Number(m[1]), headers, body: body.toString('utf8') },
  });
  if (headers['transfer-encoding']?.toLowerCase().includes('chunked')) {
    const chunks = [];
    let pos = bodyStart;
    for (;;) {
      const lineEnd = buf.indexOf('\r\n', pos);
      if (lineEnd < 0) return null;
      const size = parseInt(buf.subarray(pos, lineEnd).toString('latin1'), 16);
      if (size === 0) {
        const end = buf.indexOf('\r\n\r\n', lineEnd);
        if (end < 0) return null;
        return response(Buffer.concat(chunks), end + 4);
      }
      if (buf.length < lineEnd + 2 + size + 2) return null;
      chunks.push(buf.subarray(lineEnd + 2, lineEnd + 2 + size));
      pos = lineEnd + 2 + size + 2;
    }
  }
  if (headers['content-length'] !== undefined) {
    const len = Number(headers['content-length']);
    if (buf.length < bodyStart + len) return null;
    return response(buf.subarray(bodyStart, bodyStart + len), bodyStart + len);
  }
  return closed ? response(buf.subarray(bodyStart), buf.length) : null;
}

// s framed as a chunked transfer-encoding body, in chunks of chunkSize bytes.
export function chunkedBody(s, chunkSize = 1000) {
  const buf = Buffer.from(s);
  const parts = [];
  for (let i = 0; i < buf.length; i += chunkSize) {
    const piece = buf.subarray(i, i + chunkSize);
    parts.push(Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n'));
  }
  parts.push(Buffer.from('0\r\n\r\n'));
  return Buffer.concat(parts);
}
