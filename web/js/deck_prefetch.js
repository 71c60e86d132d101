// A lesson's deck into the browser's HTTP cache before the lesson (课前预先下载课件): its
// manifest, every page and every thumbnail, one at a time at low priority, while the standing
// page counts down. The server serves them immutable for a year with their hash as ETag, so
// when the lesson opens its pages come from the cache: nothing of the deck is fetched again.
//
//   const job = prefetchDeck(deck, { onProgress: ({ done, total }) => … });  // deck from
//   job.abort();                                                             // /api/timetable/now

const RETRY_MS = 5000; // the link is down or the server busy: try the same file again later

export function deckFiles(deck) {
  const each = (pattern) => Array.from({ length: deck.count }, (_, i) => pattern.replace('{page}', String(i + 1)));
  return [deck.manifest, ...each(deck.url), ...each(deck.thumb)].filter(Boolean);
}

// Resolves to 'done', 'gone' (the deck is no longer on the server) or 'aborted'.
export function prefetchDeck(deck, { onProgress = () => {} } = {}) {
  const controller = new AbortController();
  const files = deckFiles(deck);
  const run = (async () => {
    for (let i = 0; i < files.length; i += 1) {
      for (;;) {
        if (controller.signal.aborted) return 'aborted';
        try {
          const r = await fetch(files[i], { priority: 'low', cache: 'force-cache', signal: controller.signal });
          await r.arrayBuffer(); // into the cache whole
          if (r.ok) break;
          if (r.status === 404) return 'gone';
        } catch (err) {
          if (controller.signal.aborted) return 'aborted';
        }
        await new Promise((resolve) => { setTimeout(resolve, RETRY_MS); });
      }
      onProgress({ done: i + 1, total: files.length });
    }
    return 'done';
  })();
  return { done: run, abort: () => controller.abort() };
}
