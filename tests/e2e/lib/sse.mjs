// Raw SSE over fetch, for what the SDK hides: the `data: [DONE]` terminator and error events.

// POSTs body to url and reads the whole event stream. Returns {status, headers, text, events,
// done}: events are the parsed JSON payloads of `data:` lines before [DONE]; done says whether
// the stream ended with `data: [DONE]` as its last event.
export async function postSse(url, body, { headers = {}, signal } = {}) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
    signal,
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, ...parseSse(text) };
}

export function parseSse(text) {
  const events = [];
  let done = false;
  let afterDone = 0;
  for (const block of text.split(/\r?\n\r?\n/)) {
    const data = block.split(/\r?\n/)
      .filter((line) => line.startsWith('data:'))
      .map((line) => line.slice(5).replace(/^ /, ''))
      .join('\n');
    if (data === '') continue;
    if (done) {
      afterDone += 1;
      continue;
    }
    if (data === '[DONE]') {
      done = true;
      continue;
    }
    events.push(JSON.parse(data));
  }
  return { events, done: done && afterDone === 0 };
}

// The concatenated delta content of chat chunks.
export function chatContent(chunks) {
  return chunks.map((c) => c.choices?.[0]?.delta?.content ?? '').join('');
}

export function words(s) { return s.split(/\s+/).filter(Boolean); }
