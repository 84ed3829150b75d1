import http from 'k6/http';
import { check } from 'k6';

// Duration and VUs come from connector-gate's command line; these are for local runs.
export const options = { vus: 5, duration: '10s' };

export default function () {
  const res = http.get(`${__ENV.BASE_URL}/forecast?city=paris`);
  check(res, { 'status is 200': (r) => r.status === 200 });
}
