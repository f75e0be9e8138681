// Unit tests of the browser client's logic with Node's built-in runner (`node --test`):
// backoff, seq bookkeeping, exactly-once replay, resume_failed. No browser, no packages:
// a scripted fake WebSocket plays the server, fake timers play the clock.
import { test } from "node:test";
import assert from "node:assert/strict";

import {
  SignalingClient,
  SeqTracker,
  backoffDelay,
  DEFAULTS,
  V2_SUBPROTOCOL,
} from "../../clients/js/signaling.js";

class FakeSocket {
  static all = [];
  constructor(url, protocols) {
    this.url = url;
    this.protocols = protocols;
    this.sent = [];
    this.closed = null;
    FakeSocket.all.push(this);
  }
  send(text) {
    this.sent.push(JSON.parse(text));
  }
  close(code = 1000, reason = "") {
    this.closed = { code, reason };
  }
  // server side
  open() {
    this.protocol = this.protocols.includes(V2_SUBPROTOCOL) ? V2_SUBPROTOCOL : "";
    this.onopen?.({});
  }
  deliver(message) {
    this.onmessage?.({ data: typeof message === "string" ? message : JSON.stringify(message) });
  }
  drop(code = 1006) {
    this.onclose?.({ code, reason: "" });
  }
}

function fakeTimers() {
  const pending = [];
  return {
    pending,
    setTimeout: (fn, ms) => {
      const timer = { fn, ms };
      pending.push(timer);
      return timer;
    },
    clearTimeout: (timer) => {
      const i = pending.indexOf(timer);
      if (i >= 0) pending.splice(i, 1);
    },
    fire() {
      const timer = pending.shift();
      assert.ok(timer, "a timer is pending");
      timer.fn();
      return timer.ms;
    },
  };
}

function makeClient(options = {}) {
  FakeSocket.all = [];
  const timers = fakeTimers();
  const client = new SignalingClient("ws://server/", {
    WebSocket: FakeSocket,
    setTimeout: timers.setTimeout,
    clearTimeout: timers.clearTimeout,
    random: () => 0.5,
    ...options,
  });
  const events = [];
  for (const type of [
    "state", "room", "peer_joined", "peer_left", "signal", "resumed", "resume_failed",
    "room_expired", "error", "ice_servers", "rejoined",
  ]) {
    client.on(type, (detail) => events.push([type, detail]));
  }
  return { client, timers, events, socket: () => FakeSocket.all.at(-1) };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

async function joined(options) {
  const env = makeClient(options);
  const entering = env.client.join("4821");
  await tick();
  const ws = env.socket();
  ws.open();
  await tick();
  assert.deepEqual(ws.sent.at(-1), { type: "join", roomId: "4821" });
  ws.deliver({
    type: "room_joined", roomId: "4821", myId: "me", peers: ["a"], seq: 5, resumeToken: "tok",
  });
  const room = await entering;
  return { ...env, ws, room };
}

test("backoff grows exponentially, is capped, and jitter only shortens it", () => {
  const opts = { initialDelayMs: 100, maxDelayMs: 1000, factor: 2, jitter: 0.5 };
  assert.equal(backoffDelay(0, opts, () => 0), 100);
  assert.equal(backoffDelay(3, opts, () => 0), 800);
  assert.equal(backoffDelay(10, opts, () => 0), 1000);
  assert.equal(backoffDelay(3, opts, () => 1), 400);
  assert.equal(backoffDelay(0, { ...opts, jitter: 0 }, Math.random), 100);
  for (let i = 0; i < 100; i++) {
    const d = backoffDelay(4, opts);
    assert.ok(d >= 500 && d <= 1000, `${d}`);
  }
  assert.equal(DEFAULTS.protocol, 2);
});

test("SeqTracker accepts each higher seq once", () => {
  const seq = new SeqTracker(3);
  assert.equal(seq.accept(3), false);
  assert.equal(seq.accept(4), true);
  assert.equal(seq.accept(4), false);
  assert.equal(seq.accept(2), false);
  assert.equal(seq.accept(undefined), true); // messages without seq (v1) always pass
  assert.equal(seq.last, 4);
});

test("v2 by default; join resolves with the room and tracks seq", async () => {
  const { client, ws, room, events } = await joined();
  assert.deepEqual(ws.protocols, [V2_SUBPROTOCOL]);
  assert.deepEqual(room, {
    roomId: "4821", myId: "me", peers: ["a"], iceServers: [], created: false,
  });
  assert.equal(client.lastSeq, 5);
  ws.deliver({ type: "peer_joined", peerId: "b", seq: 6 });
  ws.deliver({ type: "signal", senderId: "a", payload: { x: 1 }, seq: 7 });
  ws.deliver({ type: "signal", senderId: "a", payload: { x: 1 }, seq: 7 }); // duplicate
  assert.deepEqual(events.filter(([t]) => t === "signal").map(([, d]) => d), [
    { from: "a", payload: { x: 1 }, seq: 7 },
  ]);
  assert.deepEqual([...client.peers], ["a", "b"]);
  client.signal({ hi: 1 }, { to: "b" });
  assert.deepEqual(ws.sent.at(-1), { type: "signal", payload: { hi: 1 }, to: "b" });
});

test("v1 on request: no subprotocol, no directed signals, no resume", async () => {
  const { client, socket, events } = makeClient({ protocol: 1 });
  const creating = client.create();
  await tick();
  const ws = socket();
  assert.deepEqual(ws.protocols, []);
  ws.open();
  await tick();
  ws.deliver({ type: "room_created", roomId: "1234", myId: "me" });
  assert.equal((await creating).roomId, "1234");
  assert.throws(() => client.signal({}, { to: "x" }), /v2/);
  ws.drop(1006);
  assert.equal(client.state, "closed");
  assert.equal(FakeSocket.all.length, 1);
  assert.ok(!events.some(([t]) => t === "resumed" || t === "resume_failed"));
});

test("an unexpected close resumes with token and last seq; replay is delivered exactly once", async () => {
  const { client, ws, timers, events } = await joined();
  ws.deliver({ type: "signal", senderId: "a", payload: 6, seq: 6 });
  ws.drop(1006);
  assert.equal(client.state, "reconnecting");
  // Signals sent while offline wait for the resume.
  assert.equal(client.signal(42, { to: "a" }), true);
  // First attempt fails to connect: the delay grows.
  const first = timers.fire();
  FakeSocket.all.at(-1).drop(1006);
  const second = timers.fire();
  assert.equal(first, 188); // 250 * (1 - 0.5 * 0.5), rounded
  assert.equal(second, 375); // doubled
  const ws2 = FakeSocket.all.at(-1);
  ws2.open();
  assert.deepEqual(ws2.sent[0], {
    type: "resume", roomId: "4821", peerId: "me", resumeToken: "tok", lastSeq: 6,
  });
  ws2.deliver({ type: "resumed", roomId: "4821", myId: "me", peers: ["a"], seq: 9 });
  assert.deepEqual(ws2.sent[1], { type: "signal", payload: 42, to: "a" });
  // The replay overlaps what was already delivered (seq 6): only 7 and 8 get through.
  for (const seq of [6, 7, 8]) ws2.deliver({ type: "signal", senderId: "a", payload: seq, seq });
  ws2.deliver({ type: "signal", senderId: "a", payload: 10, seq: 10 });
  const payloads = events.filter(([t]) => t === "signal").map(([, d]) => d.payload);
  assert.deepEqual(payloads, [6, 7, 8, 10]);
  assert.equal(client.state, "open");
  assert.equal(events.filter(([t]) => t === "resumed").length, 1);
  // The next blip starts from the first delay again.
  ws2.drop(1001);
  assert.equal(timers.fire(), 188);
});

test("resume_failed is an event; with rejoin the client joins the room afresh", async () => {
  const { client, ws, timers, events } = await joined({ rejoin: true });
  ws.drop(1006);
  client.signal("lost", { to: "a" });
  timers.fire();
  const ws2 = FakeSocket.all.at(-1);
  ws2.open();
  ws2.deliver({ type: "error", code: "resume_failed", message: "Resume failed" });
  const failed = events.find(([t]) => t === "resume_failed")[1];
  assert.deepEqual(failed, {
    roomId: "4821", code: "resume_failed", message: "Resume failed", dropped: 1,
  });
  assert.ok(!events.some(([t]) => t === "error"));
  await tick();
  await tick();
  assert.deepEqual(ws2.sent.at(-1), { type: "join", roomId: "4821" });
  ws2.deliver({ type: "room_joined", roomId: "4821", myId: "new", peers: ["a"], seq: 12, resumeToken: "t2" });
  await tick();
  assert.equal(events.at(-1)[0], "rejoined");
  assert.equal(client.myId, "new");
  assert.equal(client.lastSeq, 12);
});

test("without rejoin, resume_failed leaves the client out of the room", async () => {
  const { client, ws, timers } = await joined();
  ws.drop(1006);
  timers.fire();
  const ws2 = FakeSocket.all.at(-1);
  ws2.open();
  ws2.deliver({ type: "error", code: "resume_failed", message: "Resume failed" });
  await tick();
  assert.equal(client.roomId, null);
  assert.equal(ws2.sent.length, 1);
});

test("room expiry and takeover do not reconnect", async () => {
  for (const code of [4000, 4001]) {
    const { client, ws, timers, events } = await joined();
    if (code === 4000) ws.deliver({ type: "room_expired", roomId: "4821" });
    ws.drop(code);
    assert.equal(client.state, "closed");
    assert.equal(timers.pending.length, 0);
    assert.equal(client.roomId, null);
    const expected = code === 4000 ? "room_expired" : "error";
    assert.equal(events.filter(([t]) => t === expected).length, 1);
  }
});

test("errors reject the pending join and are events; the client stays usable", async () => {
  const { client, socket, events } = makeClient();
  const joining = client.join("9999");
  await tick();
  socket().open();
  await tick();
  socket().deliver({ type: "error", code: "room_not_found", message: "Room not found" });
  await assert.rejects(joining, (err) => err.code === "room_not_found");
  assert.deepEqual(events.at(-1), ["error", { code: "room_not_found", message: "Room not found" }]);
  const creating = client.create();
  await tick();
  socket().deliver({ type: "room_created", roomId: "1000", myId: "m", peers: [], seq: 1, resumeToken: "t" });
  assert.equal((await creating).created, true);
  assert.equal(FakeSocket.all.length, 1);
});

test("leave is confirmed by the server and ends the session; close never resumes", async () => {
  const { client, ws, timers } = await joined();
  const leaving = client.leave();
  await tick();
  assert.deepEqual(ws.sent.at(-1), { type: "leave" });
  ws.deliver({ type: "left", roomId: "4821" });
  await leaving;
  assert.equal(client.roomId, null);
  client.close();
  assert.deepEqual(ws.closed, { code: 1000, reason: "bye" });
  ws.drop(1000);
  assert.equal(timers.pending.length, 0);
  assert.equal(client.state, "closed");
});

test("ICE servers arrive with the room and are refreshed", async () => {
  const { client, socket, events } = makeClient();
  const creating = client.create();
  await tick();
  socket().open();
  await tick();
  const ice = [{ urls: ["turn:t"], username: "100:me", credential: "c" }];
  socket().deliver({ type: "room_created", roomId: "1", myId: "me", peers: [], seq: 1, resumeToken: "t", iceServers: ice });
  assert.deepEqual((await creating).iceServers, ice);
  const fresh = [{ urls: ["turn:t"], username: "200:me", credential: "d" }];
  socket().deliver({ type: "ice_servers", iceServers: fresh });
  assert.deepEqual(client.iceServers, fresh);
  assert.deepEqual(events.at(-1), ["ice_servers", { iceServers: fresh }]);
});

test("signals while reconnecting are bounded", async () => {
  const { client, ws, events } = await joined({ maxBuffered: 2 });
  ws.drop(1006);
  assert.equal(client.signal(1), true);
  assert.equal(client.signal(2), true);
  assert.equal(client.signal(3), false);
  assert.equal(events.at(-1)[1].code, "buffer_full");
});

test("a listener that throws does not break delivery to the others", async () => {
  const { client, ws } = await joined();
  const seen = [];
  const reported = [];
  const saved = globalThis.reportError;
  globalThis.reportError = (err) => reported.push(err); // what browsers provide
  client.on("signal", () => {
    throw new Error("listener bug");
  });
  client.on("signal", ({ payload }) => seen.push(payload));
  ws.deliver({ type: "signal", senderId: "a", payload: "p", seq: 6 });
  globalThis.reportError = saved;
  assert.deepEqual(seen, ["p"]);
  assert.deepEqual(reported.map((err) => err.message), ["listener bug"]);
  assert.equal(client.lastSeq, 6);
});

test("a token goes in the subprotocol list (v2) or the query (v1)", async () => {
  const v2 = makeClient({ token: "jwt.v2" });
  v2.client.connect();
  assert.deepEqual(v2.socket().protocols, [V2_SUBPROTOCOL, "bearer.jwt.v2"]);
  const v1 = makeClient({ protocol: 1, token: "jwt.v1" });
  v1.client.connect();
  assert.equal(v1.socket().url, "ws://server/?token=jwt.v1");
  assert.deepEqual(v1.socket().protocols, []);
});

test("a token function is asked again for every reconnect", async () => {
  let issued = 0;
  const { client, ws, timers } = await joined({ token: async () => `jwt${++issued}` });
  assert.deepEqual(ws.protocols, [V2_SUBPROTOCOL, "bearer.jwt1"]);
  ws.drop(1006);
  timers.fire();
  await tick();
  const ws2 = FakeSocket.all.at(-1);
  assert.notEqual(ws2, ws);
  assert.deepEqual(ws2.protocols, [V2_SUBPROTOCOL, "bearer.jwt2"]);
  ws2.open();
  assert.equal(ws2.sent[0].type, "resume");
  // close() while a token is being fetched: no socket is opened afterwards.
  ws2.deliver({ type: "resumed", roomId: "4821", myId: "me", peers: [], seq: 5 });
  ws2.drop(1006);
  timers.fire();
  client.close();
  await tick();
  assert.equal(FakeSocket.all.at(-1), ws2);
  assert.equal(client.state, "closed");
});

test("a busy room answering the resume is asked again, not given up", async () => {
  const { client, ws, timers, events } = await joined();
  ws.drop(1006);
  timers.fire();
  const ws2 = FakeSocket.all.at(-1);
  ws2.open();
  ws2.deliver({ type: "error", code: "rate_limited", message: "slow down", retryAfterMs: 700 });
  assert.equal(timers.fire(), 700);
  assert.equal(ws2.sent.filter((m) => m.type === "resume").length, 2);
  ws2.deliver({ type: "error", code: "unavailable", message: "journal" });
  timers.fire();
  assert.equal(ws2.sent.filter((m) => m.type === "resume").length, 3);
  ws2.deliver({ type: "resumed", roomId: "4821", myId: "me", peers: ["a"], seq: 5 });
  assert.equal(client.state, "open");
  assert.ok(!events.some(([t]) => t === "resume_failed"));
});
