// Unit tests of the mesh helper's perfect negotiation with a scripted RTCPeerConnection
// (the real one is exercised by the Chromium tests): who is polite, who opens the channel,
// glare resolved by the polite side rolling back, membership following the client.
import { test } from "node:test";
import assert from "node:assert/strict";

import { Emitter } from "../../clients/js/signaling.js";
import { Mesh } from "../../clients/js/mesh.js";

const description = (type, from) => ({ type, sdp: `${type} from ${from}` });

class FakePC {
  constructor(config) {
    this.config = config;
    this.signalingState = "stable";
    this.connectionState = "new";
    this.localDescription = null;
    this.remoteDescription = null;
    this.channels = [];
    this.candidates = [];
    this.rollbacks = 0;
    this.closed = false;
  }
  getConfiguration() {
    return this.config;
  }
  setConfiguration(config) {
    this.config = config;
  }
  createDataChannel(label) {
    const channel = { label, readyState: "connecting", sent: [], send(d) { this.sent.push(d); }, close() { this.readyState = "closed"; } };
    this.channels.push(channel);
    queueMicrotask(() => this.onnegotiationneeded?.());
    return channel;
  }
  async setLocalDescription() {
    await null;
    const tag = this.tag;
    const sdp = (type) => ({ ...description(type, tag), toJSON: () => description(type, tag) });
    if (this.signalingState === "stable") {
      this.signalingState = "have-local-offer";
      this.localDescription = sdp("offer");
    } else if (this.signalingState === "have-remote-offer") {
      this.signalingState = "stable";
      this.localDescription = sdp("answer");
    } else {
      throw new Error(`setLocalDescription in ${this.signalingState}`);
    }
  }
  async setRemoteDescription(desc) {
    await null;
    if (desc.type === "offer") {
      if (this.signalingState === "have-local-offer") this.rollbacks += 1; // implicit rollback
      this.signalingState = "have-remote-offer";
    } else if (this.signalingState === "have-local-offer") {
      this.signalingState = "stable";
    } else {
      throw new Error(`answer in ${this.signalingState}`);
    }
    this.remoteDescription = desc;
  }
  async addIceCandidate(candidate) {
    if (!this.remoteDescription) throw new Error("The remote description was null");
    this.candidates.push(candidate);
  }
  addTrack(track) {
    return { track };
  }
  restartIce() {}
  close() {
    this.closed = true;
    this.signalingState = "closed";
  }
}

// Clients joined by an in-memory signaling bus that delivers in order, asynchronously.
function room(...ids) {
  const clients = new Map();
  for (const id of ids) {
    const client = new Emitter();
    Object.assign(client, {
      protocol: 2, myId: id, roomId: "1234", peers: new Set(ids.filter((p) => p !== id)),
      iceServers: [{ urls: ["turn:t"], username: `1:${id}`, credential: "c" }],
      sent: [],
      signal(payload, { to }) {
        this.sent.push({ to, payload });
        setImmediate(() => clients.get(to)?.emit("signal", { from: id, payload }));
        return true;
      },
    });
    clients.set(id, client);
  }
  return clients;
}

function mesh(client, options = {}) {
  const pcs = [];
  const m = new Mesh(client, {
    RTCPeerConnection: class extends FakePC {
      constructor(config) {
        super(config);
        this.tag = client.myId;
        pcs.push(this);
      }
    },
    ...options,
  });
  const errors = [];
  m.on("error", ({ error }) => errors.push(String(error)));
  return { m, pcs, errors };
}

const settle = async () => {
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
};

test("the greater id is polite; the impolite side opens the channel: one offer per pair", async () => {
  const clients = room("a", "b");
  const A = mesh(clients.get("a"));
  const B = mesh(clients.get("b"));
  await settle();
  const [pa] = A.pcs;
  const [pb] = B.pcs;
  assert.equal(A.m.peers.get("b").polite, false);
  assert.equal(B.m.peers.get("a").polite, true);
  assert.equal(pa.channels.length, 1);
  assert.equal(pb.channels.length, 0);
  assert.equal(A.m.negotiations, 1);
  assert.equal(B.m.negotiations, 0);
  assert.equal(pa.signalingState, "stable");
  assert.equal(pb.signalingState, "stable");
  assert.deepEqual(pb.remoteDescription, description("offer", "a"));
  assert.deepEqual(pa.remoteDescription, description("answer", "b"));
  assert.deepEqual([A.errors, B.errors], [[], []]);
  // Every mesh signal is directed and wrapped, so application signals pass untouched.
  assert.ok(clients.get("a").sent.every((s) => s.to === "b" && s.payload.mesh));
});

test("glare: both offer at once, the polite side rolls back and answers", async () => {
  const clients = room("a", "b");
  const A = mesh(clients.get("a"), { dataChannel: null });
  const B = mesh(clients.get("b"), { dataChannel: null });
  await settle();
  const [pa] = A.pcs;
  const [pb] = B.pcs;
  pa.onnegotiationneeded();
  pb.onnegotiationneeded();
  await settle();
  assert.equal(pb.rollbacks, 1); // polite b gave way
  assert.equal(pa.rollbacks, 0); // impolite a ignored b's offer
  assert.equal(pa.signalingState, "stable");
  assert.equal(pb.signalingState, "stable");
  assert.deepEqual(pa.remoteDescription, description("answer", "b"));
  // Candidates of the ignored offer are dropped silently, later ones are used.
  clients.get("a").emit("signal", { from: "b", payload: { mesh: { candidate: { candidate: "c1" } } } });
  await settle();
  assert.deepEqual(pa.candidates, [{ candidate: "c1" }]);
  assert.deepEqual([A.errors, B.errors], [[], []]);
});

test("membership: joins add, leaves close, late signals from the departed are ignored", async () => {
  const clients = room("a", "b");
  const a = clients.get("a");
  const A = mesh(a);
  a.peers.add("c");
  a.emit("peer_joined", { peerId: "c" });
  assert.deepEqual([...A.m.peers.keys()], ["b", "c"]);
  const pc = A.m.peers.get("c").pc;
  a.peers.delete("c");
  a.emit("peer_left", { peerId: "c" });
  assert.ok(pc.closed);
  a.emit("signal", { from: "c", payload: { mesh: { description: description("offer", "c") } } });
  await settle();
  assert.deepEqual([...A.m.peers.keys()], ["b"]);
  // A fresh entry (create/join/rejoin) rebuilds from the member list.
  const old = A.m.peers.get("b").pc;
  a.emit("room", { peers: ["d"] });
  assert.ok(old.closed);
  assert.deepEqual([...A.m.peers.keys()], ["d"]);
  a.emit("resume_failed", {});
  assert.equal(A.m.peers.size, 0);
});

test("ICE servers come from the server and are refreshed on every connection", async () => {
  const clients = room("a", "b", "c");
  const a = clients.get("a");
  const A = mesh(a, { rtcConfig: { iceTransportPolicy: "relay" } });
  assert.equal(A.pcs[0].config.iceTransportPolicy, "relay");
  assert.equal(A.pcs[0].config.iceServers[0].username, "1:a");
  const fresh = [{ urls: ["turn:t"], username: "2:a", credential: "d" }];
  a.emit("ice_servers", { iceServers: fresh });
  for (const pc of A.pcs) assert.deepEqual(pc.config.iceServers, fresh);
  assert.equal(A.pcs[0].config.iceTransportPolicy, "relay");
  // The application's own ICE servers win over the server's.
  const own = [{ urls: ["stun:mine"] }];
  const B = mesh(clients.get("b"), { rtcConfig: { iceServers: own } });
  clients.get("b").emit("ice_servers", { iceServers: fresh });
  for (const pc of B.pcs) assert.deepEqual(pc.config.iceServers, own);
});

test("the mesh refuses a v1 client", () => {
  const client = new Emitter();
  client.protocol = 1;
  assert.throws(() => new Mesh(client, { RTCPeerConnection: FakePC }), /v2/);
});
