// The JS floor: a Worker that rebuilds the request onto ORIGIN_URL and forwards it.
// Every other worker in the bench does at least this much.
export default {
  fetch(req, env) {
    const url = new URL(req.url);
    const origin = new URL(env.ORIGIN_URL);
    url.protocol = origin.protocol;
    url.host = origin.host;
    return fetch(new Request(url, req));
  },
};
