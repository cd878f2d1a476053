// Replays the URLs `filegate seed` wrote to urls.txt beside this script.
//
//   k6 run DIR/k6.js                          (8 virtual users, 30 s)
//   k6 run -e VUS=32 -e DURATION=2m DIR/k6.js
//   k6 run -e FILEGATE_URLS=/path/to/urls.txt DIR/k6.js
//
// Each virtual user walks urls.txt round robin from its own offset; urls.txt holds
// the IM-like mix (see the README). Every URL carries its credential (sdk_sign):
// no header is needed. The run fails (exit code 99) unless every answer is a 200.
import http from 'k6/http';
import { check } from 'k6';
import { SharedArray } from 'k6/data';

const urls = new SharedArray('filegate urls', function () {
  const list = open(__ENV.FILEGATE_URLS || './urls.txt')
    .split('\n')
    .filter((line) => line.startsWith('http'));
  if (list.length === 0) {
    throw new Error('urls.txt holds no URL: run `filegate seed` first');
  }
  return list;
});

export const options = {
  vus: Number(__ENV.VUS || 8),
  duration: __ENV.DURATION || '30s',
  discardResponseBodies: true,
  thresholds: {
    checks: ['rate==1.0'],
    http_req_failed: ['rate==0'],
  },
};

export default function () {
  const url = urls[((__VU - 1) * 7919 + __ITER) % urls.length];
  const res = http.get(url, { redirects: 0 });
  check(res, { 'status is 200': (r) => r.status === 200 });
}
